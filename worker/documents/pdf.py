"""Read the text of a PDF page by page with PDFium, refusing encrypted, broken or long files."""

from __future__ import annotations

import re
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from core.errors import InvalidInput, TooLarge

from .model import DocumentLimits, Page

# PDFium marks soft hyphens and unmappable glyphs with control characters and U+FFFE/U+FFFF.
_JUNK = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffe\uffff]")
_ENCRYPTION_ERRORS = frozenset({pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY})


def read_pdf_pages(path: Path, limits: DocumentLimits) -> list[Page]:
    """Return every page of the PDF with its text, blank pages included with empty text."""
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as error:
        if error.err_code in _ENCRYPTION_ERRORS:
            raise InvalidInput("document is encrypted") from error
        raise InvalidInput("the PDF could not be read: it is corrupt or truncated") from error
    with document:
        page_count = len(document)
        if page_count > limits.max_pages:
            raise TooLarge(f"document has {page_count} pages; the limit is {limits.max_pages}")
        pages: list[Page] = []
        chars = 0
        for index in range(page_count):
            text = _page_text(document, index)
            chars += len(text)
            # Stop early: a long PDF can hold far more text than we would go on to keep.
            if chars > limits.max_chars:
                raise TooLarge(f"document has more than {limits.max_chars} characters of text")
            pages.append(Page(index + 1, text))
    return pages


def _page_text(document: pdfium.PdfDocument, index: int) -> str:
    """Return the cleaned text of one page, closing the PDFium page objects it opens."""
    try:
        page = document[index]
        try:
            text_page = page.get_textpage()
            try:
                raw = text_page.get_text_range()
            finally:
                text_page.close()
        finally:
            page.close()
    except pdfium.PdfiumError as error:
        raise InvalidInput(f"the PDF could not be read: page {index + 1} is damaged") from error
    text = _JUNK.sub("", raw.replace("\r\n", "\n").replace("\r", "\n"))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()
