"""Read a Word (.docx) document as sections: body paragraphs and table rows, split at headings.

Body-level content controls are opened (python-docx's own iteration skips them), and tracked
insertions are read as text while deletions are not. Headers, footers, footnotes, comments and
text boxes are left out: they repeat on every page or sit outside the reading order.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

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
    """Refuse a file that is not a zip, or whose members declare more than max_bytes in total."""
    try:
        with zipfile.ZipFile(path) as archive:
            # zipfile never inflates a member past its declared size, so the sum bounds the work.
            total = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise InvalidInput(_NOT_A_DOCX) from error
    if total > max_bytes:
        raise TooLarge(f"document expands to {total} bytes; the limit is {max_bytes}")


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
