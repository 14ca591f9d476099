"""Read a Word (.docx) document as sections: body paragraphs and table rows, split at headings.

Body-level content controls are opened (python-docx's own iteration skips them), and tracked
insertions are read as text while deletions are not. Headers, footers, footnotes, comments and
text boxes are left out: they repeat on every page or sit outside the reading order.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import docx
from docx.document import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.exceptions import OpcError
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.styles.style import BaseStyle, CharacterStyle

from core.errors import InvalidInput, TooLarge

from .model import DocumentLimits, Page
from .sections import SectionBuilder

_NOT_A_DOCX = "document is not a valid DOCX file"
# What a damaged or foreign package raises while python-docx opens it: missing parts (KeyError),
# a non-Word main part (ValueError), bad XML (lxml's XMLSyntaxError is a SyntaxError), bad zip data.
_OPEN_ERRORS = (
    OpcError,
    KeyError,
    ValueError,
    SyntaxError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
)
# A large member inflating more than this many times its stored size is a bomb, not a document
# (Word's XML compresses about 5-20 times; a run of zeros about 1000 times).
_MAX_RATIO = 200
_RATIO_FLOOR_BYTES = 1024 * 1024
# A zip local file header: signature, version, flags, method, time, date, crc, sizes, two lengths.
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_SIGNATURE = 0x04034B50
_PIECE = 64 * 1024
_HEADING_STYLE = re.compile(r"(title|heading [1-3])", re.IGNORECASE)
_HEADING_OUTLINE_LEVELS = frozenset({"0", "1", "2"})
# Runs that are shown: not deleted or moved away, and not inside a text box nested in the paragraph.
_RUN_CONTENT = (
    ".//w:r[not(ancestor::w:del or ancestor::w:moveFrom or ancestor::w:txbxContent)]"
    "/*[self::w:t or self::w:tab or self::w:br or self::w:cr or self::w:noBreakHyphen]"
)
_CELL_PARAGRAPHS = ".//w:p[not(ancestor::w:txbxContent)]"
_RUN_TEXT = {qn("w:tab"): "\t", qn("w:br"): "\n", qn("w:cr"): "\n", qn("w:noBreakHyphen"): "-"}
_P, _TBL, _T = qn("w:p"), qn("w:tbl"), qn("w:t")
_CONTAINERS = frozenset({qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml"), qn("w:ins")})


def read_docx_sections(path: Path, limits: DocumentLimits) -> list[Page]:
    """Return the sections of a .docx file, refusing archives that expand past the limit."""
    _check_archive(path, limits.max_docx_uncompressed_bytes)
    try:
        document = docx.Document(str(path))
    except _OPEN_ERRORS as error:
        raise InvalidInput(_NOT_A_DOCX) from error
    headings = _HeadingStyles(document)
    builder = SectionBuilder(limits.section_chars)
    for block in _blocks(document.element.body):
        if block.tag == _TBL:
            for row in _table_rows(block):
                builder.paragraph(row)
        elif headings.is_heading(block):
            builder.heading(_paragraph_text(block))
        else:
            builder.paragraph(_paragraph_text(block))
    return builder.pages()


def _check_archive(path: Path, max_bytes: int) -> None:
    """Refuse a file that is not a zip, or that would inflate past `max_bytes` when opened.

    Three checks before python-docx reads a byte: the declared sizes in total, the declared ratio
    of each large member, and then each member inflated in small pieces (constant memory) to see
    that its data really ends at its declared size. The last one matters: zipfile cuts a member's
    output at its declared size, but only after inflating everything one `read()` asks for, so a
    member that lies about its size would otherwise be inflated whole, in memory.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(member.file_size for member in members)
            if total > max_bytes:
                raise TooLarge(f"document expands to {total} bytes; the limit is {max_bytes}")
            for member in members:
                if member.file_size > _RATIO_FLOOR_BYTES and (
                    member.file_size > _MAX_RATIO * max(member.compress_size, 1)
                ):
                    raise TooLarge(
                        f"document member {member.filename!r} expands {member.file_size} bytes "
                        f"from {member.compress_size}: more than {_MAX_RATIO} times"
                    )
            with path.open("rb") as raw:
                for member in members:
                    _check_member_size(raw, member)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, struct.error) as error:
        raise InvalidInput(_NOT_A_DOCX) from error


def _check_member_size(raw: BinaryIO, member: zipfile.ZipInfo) -> None:
    """Inflate one member's stored data piece by piece; TooLarge if it passes its declared size."""
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InvalidInput(_NOT_A_DOCX)  # Word writes only these two
    raw.seek(member.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    signature, *_fields, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if signature != _LOCAL_SIGNATURE:
        raise InvalidInput(_NOT_A_DOCX)
    raw.seek(member.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if member.compress_type else None
    left, produced = member.compress_size, 0
    while left > 0:
        data = raw.read(min(left, _PIECE))
        if not data:
            raise EOFError(f"{member.filename} is truncated")
        left -= len(data)
        while data:
            if inflater is None:
                produced += len(data)
                break
            produced += len(inflater.decompress(data, _PIECE))
            data = inflater.unconsumed_tail
            if produced > member.file_size:
                break
        if inflater is not None and left == 0 and produced <= member.file_size:
            produced += len(inflater.flush())  # what a full last piece left inside zlib
        if produced > member.file_size:
            raise TooLarge(
                f"document member {member.filename!r} inflates past its declared "
                f"{member.file_size} bytes"
            )


def _blocks(container: BaseOxmlElement) -> Iterator[BaseOxmlElement]:
    """Yield the paragraph and table elements of the body in order, inside content controls too."""
    for child in container.iterchildren():
        if child.tag in (_P, _TBL):
            yield child
        elif child.tag in _CONTAINERS:
            yield from _blocks(child)


def _paragraph_text(paragraph: BaseOxmlElement) -> str:
    """Return the visible text of a paragraph element, with tabs and line breaks."""
    parts: list[str] = []
    for node in paragraph.xpath(_RUN_CONTENT):
        parts.append((node.text or "") if node.tag == _T else _RUN_TEXT[node.tag])
    return "".join(parts)


def _table_rows(table: BaseOxmlElement) -> Iterator[str]:
    """Yield each row of a table as its non-empty cells joined by ` | `."""
    for row in table.xpath("./w:tr"):
        cells = []
        for cell in row.xpath("./w:tc"):
            texts = (_paragraph_text(p).strip() for p in cell.xpath(_CELL_PARAGRAPHS))
            text = " ".join(t for t in texts if t)
            if text:
                cells.append(text)
        if cells:
            yield " | ".join(cells)


class _HeadingStyles:
    """Decides which paragraphs are section headings, caching the answer per style id."""

    def __init__(self, document: Document) -> None:
        self._part = document.part
        self._by_style_id: dict[str | None, bool] = {}

    def is_heading(self, paragraph: BaseOxmlElement) -> bool:
        """Return whether a paragraph is a title or level 1-3 heading, by style or outline level."""
        if set(paragraph.xpath("./w:pPr/w:outlineLvl/@w:val")) & _HEADING_OUTLINE_LEVELS:
            return True
        style_id = paragraph.style
        if style_id not in self._by_style_id:
            style = self._part.get_style(style_id, WD_STYLE_TYPE.PARAGRAPH)
            self._by_style_id[style_id] = _is_heading_style(style)
        return self._by_style_id[style_id]


def _is_heading_style(style: BaseStyle | None) -> bool:
    """Return whether a style, or a style it is based on, is a title or level 1-3 heading."""
    for _ in range(16):  # styles can be based on each other in a cycle in broken files
        if not isinstance(style, CharacterStyle):  # None, or a style that has no base
            return False
        if _HEADING_STYLE.fullmatch(style.name or ""):
            return True
        levels = style.element.xpath("./w:pPr/w:outlineLvl/@w:val")
        if set(levels) & _HEADING_OUTLINE_LEVELS:
            return True
        style = style.base_style
    return False
