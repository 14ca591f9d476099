"""DOCX extraction: sections at headings, tables as rows, and refusals of non-Word or huge zips."""

from __future__ import annotations

import copy
import zipfile
from pathlib import Path

import pytest
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from core.errors import InvalidInput, TooLarge
from worker.documents import DocumentLimits, extract_document

from .builders import docx_bytes, new_docx

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
LIMITS = DocumentLimits()


def _save(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "a.docx"
    path.write_bytes(data)
    return path


def test_headings_start_sections_and_tables_become_rows(tmp_path: Path) -> None:
    """Headings split sections, a title over a heading stays with it, and tables read as rows."""
    document = new_docx()
    document.add_paragraph("Preamble before any heading.")
    document.add_heading("Annual Report", level=0)
    document.add_heading("Summary", level=1)
    document.add_paragraph("Revenue grew.")
    document.add_heading("Figures", level=2)
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {(0, 0): "Year", (0, 1): "Revenue", (1, 0): "2024"}.items():
        table.cell(row, col).text = text
    document.add_paragraph("Closing remark.")
    document.add_heading("Minor point", level=4)
    document.add_paragraph("Level 4 is not a section break.")

    extracted = extract_document(_save(tmp_path, docx_bytes(document)), DOCX, LIMITS)

    assert extracted.format == "docx"
    assert extracted.page_unit == "section"
    assert [(page.number, page.text) for page in extracted.pages] == [
        (1, "Preamble before any heading."),
        (2, "Annual Report\n\nSummary\n\nRevenue grew."),
        (
            3,
            "Figures\n\nYear | Revenue\n\n2024\n\nClosing remark.\n\nMinor point\n\n"
            "Level 4 is not a section break.",
        ),
    ]
    assert [passage.id for passage in extracted.passages] == ["p1.1", "p2.1", "p3.1"]


def test_custom_style_based_on_a_heading_is_a_heading(tmp_path: Path) -> None:
    """A paragraph style derived from Heading 1 splits sections like Heading 1 itself."""
    document = new_docx()
    chapter = document.styles.add_style("Chapter", WD_STYLE_TYPE.PARAGRAPH)
    chapter.base_style = document.styles["Heading 1"]
    document.add_paragraph("Chapter one", style="Chapter")
    document.add_paragraph("Body one.")
    document.add_paragraph("Chapter two", style="Chapter")
    document.add_paragraph("Body two.")

    extracted = extract_document(_save(tmp_path, docx_bytes(document)), DOCX, LIMITS)

    assert [page.text for page in extracted.pages] == [
        "Chapter one\n\nBody one.",
        "Chapter two\n\nBody two.",
    ]


def test_content_controls_and_tracked_insertions_are_read(tmp_path: Path) -> None:
    """Paragraphs inside a content control and runs inside a tracked insertion are text too."""
    document = new_docx()
    wrapped = document.add_paragraph("Inside a content control.")
    sdt, content = OxmlElement("w:sdt"), OxmlElement("w:sdtContent")
    wrapped._p.addprevious(sdt)
    sdt.append(content)
    content.append(wrapped._p)
    edited = document.add_paragraph("Accepted ")
    insertion = OxmlElement("w:ins")
    insertion.set(qn("w:id"), "1")
    insertion.set(qn("w:author"), "tester")
    run = copy.deepcopy(edited.runs[0]._r)
    run.find(qn("w:t")).text = "insertion."
    insertion.append(run)
    edited._p.append(insertion)

    extracted = extract_document(_save(tmp_path, docx_bytes(document)), DOCX, LIMITS)

    assert extracted.pages[0].text == "Inside a content control.\n\nAccepted insertion."


def test_document_without_headings_is_grouped_into_sections(tmp_path: Path) -> None:
    """Without headings, paragraphs are grouped into sections of at most section_chars."""
    document = new_docx()
    paragraphs = [f"Paragraph {i} " + "word " * 30 for i in range(10)]
    for text in paragraphs:
        document.add_paragraph(text)

    extracted = extract_document(
        _save(tmp_path, docx_bytes(document)), DOCX, DocumentLimits(section_chars=400)
    )

    assert len(extracted.pages) == 5
    assert all(len(page.text) <= 400 for page in extracted.pages)
    assert "\n\n".join(page.text for page in extracted.pages) == "\n\n".join(
        text.strip() for text in paragraphs
    )


def test_zip_that_is_not_a_docx_is_refused(tmp_path: Path) -> None:
    """A valid zip without a Word document inside is refused as not a DOCX."""
    path = tmp_path / "a.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "just a zip")
    with pytest.raises(InvalidInput, match=r"^document is not a valid DOCX file$"):
        extract_document(path, DOCX, LIMITS)


def test_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    """Bytes that are not a zip at all are refused as not a DOCX."""
    path = _save(tmp_path, b"PK\x03\x04 but then nothing like a zip" * 10)
    with pytest.raises(InvalidInput, match=r"^document is not a valid DOCX file$"):
        extract_document(path, DOCX, LIMITS)


def test_archive_expanding_past_the_limit_is_refused_before_opening(tmp_path: Path) -> None:
    """A zip that inflates past the limit is refused as too large before python-docx reads it."""
    path = tmp_path / "a.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\x00" * 1_000_000)
    assert path.stat().st_size < 10_000
    with pytest.raises(TooLarge, match=r"^document expands to 1000000 bytes; the limit is 100000$"):
        extract_document(path, DOCX, DocumentLimits(max_docx_uncompressed_bytes=100_000))


def test_docx_without_text_is_refused(tmp_path: Path) -> None:
    """A Word document with only empty paragraphs has no text."""
    document = new_docx()
    document.add_paragraph("")
    with pytest.raises(InvalidInput, match=r"^document has no text$"):
        extract_document(_save(tmp_path, docx_bytes(document)), DOCX, LIMITS)
