"""Open a local media file with FFmpeg so that it can read that file and nothing else.

The input is a Python file object we opened, so FFmpeg never parses its name as a URL; then two
locks, each enough against playlists (HLS, concat) on its own:
- `format_whitelist` refuses every demuxer but the plain containers below *before* it reads the
  header (the HLS and concat demuxers open the files they list while reading it); audio and video
  jobs each have their own list;
- `io_open` hands an empty file to any demuxer asking for another file, and the open is then
  refused; `protocol_whitelist` is `file` for anything that slips past.
"""

from __future__ import annotations

import io
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal

import av
import av.logging
from av.container import InputContainer
from av.error import FFmpegError

from core.errors import InvalidInput, NightowlError, UnsupportedMedia

# Demuxer names: wav, flac, mp3, ogg, mov/mp4/m4a (one demuxer), matroska/webm, raw AAC (ADTS).
ALLOWED_FORMATS = frozenset(
    {"wav", "flac", "mp3", "ogg", "mov", "mp4", "m4a", "3gp", "3g2", "mj2"}
    | {"matroska", "webm", "aac"}
)
_FORMAT_WHITELIST = ",".join(sorted(ALLOWED_FORMATS))
# Video jobs: mov/mp4 (one demuxer), matroska/webm, avi; none of them refers to other files.
VIDEO_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi"})
_VIDEO_FORMAT_WHITELIST = ",".join(sorted(VIDEO_FORMATS))
# What a refusal tells the user to send instead.
_FORMATS_NAMED = {
    "audio": "wav, flac, mp3, ogg, mp4/m4a/mov, matroska/webm or aac",
    "video": "mp4/mov, matroska/webm or avi",
}
MediaKind = Literal["audio", "video"]
_NOT_WHITELISTED = "Format not on whitelist"
_HLS_MAGIC = b"#EXTM3U"
_LOG_SETTINGS_LOCK = threading.Lock()
# Larger reads than PyAV's 32 KiB default: fewer round trips through Python per second of audio.
_BUFFER_SIZE = 256 * 1024


class _NestedOpens:
    """PyAV's `io_open`: answers every request for another file with an empty one, noting it."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str, flags: int, options: dict[str, str]) -> BinaryIO:
        """Note `url` and give the demuxer nothing to read."""
        # Raising here would leave an exception stashed in PyAV if FFmpeg swallows the failure
        # (HLS skips failed segments), to surface in some later, unrelated call.
        self.urls.append(url)
        return io.BytesIO()


@contextmanager
def open_media(
    path: Path, *, max_streams: int, log: list[str] | None = None, kind: MediaKind = "audio"
) -> Iterator[InputContainer]:
    """Open `path`, a local regular file in a container allowed for `kind`, closing it on exit.

    FFmpeg's warnings while opening (e.g. that a duration is only estimated) go to `log`.
    """
    file = _open_regular_file(path)
    try:
        container = _open_container(file, max_streams, log if log is not None else [], kind)
        try:
            yield container
        finally:
            container.close()
    finally:
        file.close()


def _open_regular_file(path: Path) -> BinaryIO:
    """Open `path` for reading, refusing anything but an existing, non-empty regular file."""
    try:
        # O_NONBLOCK: opening a FIFO must not hang; fstat then tells us what we really opened.
        # The file keeps its name, whose extension FFmpeg's probes use (HLS needs .m3u8).
        file = open(path, "rb", opener=_open_nonblocking)  # noqa: SIM115 (returned open)
    except FileNotFoundError as error:
        raise InvalidInput("the media file does not exist") from error
    except IsADirectoryError as error:
        raise InvalidInput("the media path is not a regular file") from error
    except OSError as error:
        raise InvalidInput(f"the media file could not be opened: {error.strerror}") from error
    info = os.fstat(file.fileno())
    if not stat.S_ISREG(info.st_mode):
        file.close()
        raise InvalidInput("the media path is not a regular file")
    if info.st_size == 0:
        file.close()
        raise InvalidInput("the media file is empty")
    return file


def _open_nonblocking(name: str, flags: int) -> int:
    """`os.open` with O_NONBLOCK, for `open(opener=...)`."""
    return os.open(name, flags | os.O_NONBLOCK)


def _open_container(
    file: BinaryIO, max_streams: int, log: list[str], kind: MediaKind
) -> InputContainer:
    """Open the container in `file`, mapping every refusal to a nightowl error."""
    nested = _NestedOpens()
    with _ffmpeg_warnings() as lines:
        try:
            container = _av_open(file, max_streams, nested, kind)
        except (FFmpegError, OSError) as error:
            raise _open_failure(file, nested, lines, kind) from error
    log.extend(message.strip() for _level, _name, message in lines)
    if nested.urls:
        container.close()
        raise _refers_to_other_files()
    return container


def _open_failure(
    file: BinaryIO, nested: _NestedOpens, lines: list[tuple[int, str, str]], kind: MediaKind
) -> NightowlError:
    """The error for a failed open: other files asked for, a refused format, or bad media."""
    if nested.urls:
        return _refers_to_other_files()
    for _level, name, message in lines:
        # FFmpeg names the refused demuxer only as the source of this log line.
        if message.startswith(_NOT_WHITELISTED) and name:
            return UnsupportedMedia(
                f"the media format {name!r} is not supported; use {_FORMATS_NAMED[kind]}"
            )
    file.seek(0)
    if file.read(len(_HLS_MAGIC)) == _HLS_MAGIC:
        # FFmpeg detects HLS only by its extension; say what the file is anyway.
        return UnsupportedMedia("the media format 'hls' (a playlist) is not supported")
    return InvalidInput("the media could not be read: it is corrupt, truncated or not audio/video")


def _refers_to_other_files() -> UnsupportedMedia:
    """The error for a file whose demuxer asked to open other files."""
    return UnsupportedMedia("the file refers to other files; playlists and references are refused")


def _av_open(
    file: BinaryIO, max_streams: int, nested: _NestedOpens, kind: MediaKind
) -> InputContainer:
    """Call `av.open` with every lock described in the module docstring."""
    file.seek(0)
    options = {
        "protocol_whitelist": "file",
        "format_whitelist": _VIDEO_FORMAT_WHITELIST if kind == "video" else _FORMAT_WHITELIST,
        # FFmpeg stops adding streams past this, so a stream bomb costs little to refuse.
        "max_streams": str(max_streams + 1),
    }
    return av.open(file, "r", options=options, buffer_size=_BUFFER_SIZE, io_open=nested)


@contextmanager
def _ffmpeg_warnings() -> Iterator[list[tuple[int, str, str]]]:
    """Collect FFmpeg's warnings and errors raised in this thread while the block runs."""
    # PyAV drops FFmpeg's log unless a level is set, and by default drops a line equal to the
    # previous one, even from an earlier file. Both settings are process-wide: the lock keeps
    # two threads from restoring each other's.
    with _LOG_SETTINGS_LOCK:
        previous_level, previous_skip = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.WARNING)
        av.logging.set_skip_repeated(False)
        try:
            with av.logging.Capture(local=True) as lines:
                yield lines
        finally:
            av.logging.set_skip_repeated(previous_skip)
            av.logging.set_level(previous_level)
