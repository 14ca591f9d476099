"""Streams a multipart upload to a temporary file with a size cap, without buffering it first.

Starlette's form parser spools the whole body before the handler runs; this reads the request
stream through python-multipart's push parser, so an oversized upload is refused (413) as soon as
the cap is passed, and abusive forms (many fields, huge non-file fields) fail fast with 400/413.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from core.errors import InvalidInput, TooLarge, UnsupportedMedia
from core.files import clean_filename

MAX_FIELDS = 16
MAX_FIELD_BYTES = 64 * 1024


@dataclass
class ReceivedFile:
    """An upload on local disk: its path, the client's (sanitised) name and its size."""

    path: Path
    filename: str
    size: int


class _Receiver:
    def __init__(self, max_bytes: int, spool: IO[bytes]) -> None:
        self.max_bytes = max_bytes
        self.spool = spool
        self.size = 0
        self.fields = 0
        self.filename: str | None = None
        self._field_bytes = 0
        self._in_file = False
        self._headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""

    def on_part_begin(self) -> None:
        self.fields += 1
        if self.fields > MAX_FIELDS:
            raise InvalidInput(f"too many form fields (at most {MAX_FIELDS})")
        self._headers, self._in_file, self._field_bytes = {}, False, 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and b"filename" in options:
            if self.filename is not None:
                raise InvalidInput("only one file per upload")
            self.filename = clean_filename(options[b"filename"].decode("utf-8", "replace"))
            self._in_file = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if not self._in_file:
            self._field_bytes += len(piece)
            if self._field_bytes > MAX_FIELD_BYTES:
                raise TooLarge(f"a form field without a file exceeds {MAX_FIELD_BYTES} bytes")
            return
        self.size += len(piece)
        if self.size > self.max_bytes:
            raise TooLarge(f"upload exceeds the limit of {self.max_bytes} bytes")
        self.spool.write(piece)


def _discard(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)


async def receive_file(request: Request, max_bytes: int) -> ReceivedFile:
    """Read the multipart field `file` of `request` into a temporary file; the caller deletes it."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise UnsupportedMedia("send the file as multipart/form-data in a field named 'file'")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + MAX_FIELDS * MAX_FIELD_BYTES:
        raise TooLarge(f"upload exceeds the limit of {max_bytes} bytes")
    fd, name = tempfile.mkstemp(prefix="nightowl-upload-")
    try:
        with os.fdopen(fd, "wb") as spool:
            receiver = _Receiver(max_bytes, spool)
            callbacks = {
                n: getattr(receiver, n)
                for n in (
                    "on_part_begin",
                    "on_header_field",
                    "on_header_value",
                    "on_header_end",
                    "on_headers_finished",
                    "on_part_data",
                )
            }
            parser = MultipartParser(options[b"boundary"], callbacks)  # type: ignore[arg-type]
            async for data in request.stream():
                parser.write(data)
            parser.finalize()
    except MultipartParseError as exc:
        _discard(name)
        raise InvalidInput(f"malformed multipart body: {exc}") from None
    except BaseException:
        _discard(name)
        raise
    if receiver.filename is None:
        _discard(name)
        raise InvalidInput("no file: send it in a multipart field named 'file' with a filename")
    return ReceivedFile(Path(name), receiver.filename, receiver.size)
