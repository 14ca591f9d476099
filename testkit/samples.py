"""Sample inputs the tests make themselves: PDFs with known text per page."""

from __future__ import annotations

from fpdf import FPDF

OBSERVATORY_PAGES = [
    "The Nightowl Observatory was founded in 1987 by Ines Barrow on Cerro Lechuza.",
    "The observing season runs from April to October. About 290 nights are clear.",
    "In 2019 the team discovered the asteroid 2019 NX4, which returns every eleven years.",
]


def pdf_bytes(pages: list[str]) -> bytes:
    """A PDF with one page per string."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
