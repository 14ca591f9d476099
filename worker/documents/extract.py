"""Extract a document's text by pages or sections and cut it into passages: the one entry point."""

from __future__ import annotations

from pathlib import Path

from core.errors import InvalidInput, TooLarge, UnsupportedMedia
from core.sniff import DOCX, HTML, MARKDOWN, PDF, PLAIN_TEXT

from .markup import read_html_sections
from .model import DocumentLimits, ExtractedDocument, Page
from .passages import split_passages
from .pdf import read_pdf_pages
from .plaintext import decode_text, read_markdown_sections, read_text_sections
from .word import read_docx_sections

# UTF-8 spends at most 4 bytes on a character, so a text file this much larger must be too long.
_MAX_UTF8_BYTES_PER_CHAR = 4


def extract_document(path: Path, content_type: str, limits: DocumentLimits) -> ExtractedDocument:
    """Read the document at path, of the given MIME type, as pages (or sections) and passages."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == PDF:
        document_format, pages = "pdf", read_pdf_pages(path, limits)
    elif media_type == DOCX:
        document_format, pages = "docx", read_docx_sections(path, limits)
    elif media_type == HTML:
        document_format = "html"
        pages = read_html_sections(path.read_bytes(), limits.section_chars)
    elif media_type in (MARKDOWN, PLAIN_TEXT):
        if path.stat().st_size > _MAX_UTF8_BYTES_PER_CHAR * limits.max_chars:
            raise _too_many_chars(limits)
        text = decode_text(path.read_bytes())
        if media_type == MARKDOWN:
            document_format, pages = "markdown", read_markdown_sections(text, limits.section_chars)
        else:
            document_format, pages = "text", read_text_sections(text, limits.section_chars)
    else:
        raise UnsupportedMedia(f"cannot extract text from documents of type {content_type!r}")
    _check_text(pages, limits)
    passages = split_passages(pages, limits.passage_chars)
    return ExtractedDocument(document_format, pages, passages)


def _check_text(pages: list[Page], limits: DocumentLimits) -> None:
    """Refuse a document whose text is over the character limit, or that has no text at all."""
    if sum(len(page.text) for page in pages) > limits.max_chars:
        raise _too_many_chars(limits)
    if not any(page.text.strip() for page in pages):
        raise InvalidInput("document has no text")


def _too_many_chars(limits: DocumentLimits) -> TooLarge:
    """Return the error for a document with more text than the limit allows."""
    return TooLarge(f"document has more than {limits.max_chars} characters of text")
