"""Build small real documents (PDF with fpdf2, DOCX with python-docx) for the document tests."""

from __future__ import annotations

import io
from pathlib import Path

import docx
from docx.document import Document
from fpdf import FPDF


def pdf_bytes(pages: list[str], user_password: str | None = None) -> bytes:
    """Return a PDF with one page per string (blank when empty), optionally password-protected."""
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    if user_password is not None:
        # A fixture's password, not a secret.
        pdf.set_encryption(owner_password="owner", user_password=user_password)  # noqa: S106
    pdf.set_font("helvetica", size=10)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 5, text)
    return bytes(pdf.output())


def write_pdf(path: Path, pages: list[str], user_password: str | None = None) -> Path:
    """Write pdf_bytes(pages) to path and return the path."""
    path.write_bytes(pdf_bytes(pages, user_password))
    return path


def new_docx() -> Document:
    """Return an empty Word document built from python-docx's default template."""
    return docx.Document()


def docx_bytes(document: Document) -> bytes:
    """Return a Word document saved to bytes."""
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
