"""PDF extraction: page numbers and texts, and every way a PDF is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidInput, TooLarge
from worker.documents import DocumentLimits, extract_document

from .builders import pdf_bytes, write_pdf

PDF = "application/pdf"
LIMITS = DocumentLimits()


def test_pages_keep_their_numbers_and_text(tmp_path: Path) -> None:
    """Each PDF page comes back with its 1-based number and exactly its own text."""
    path = write_pdf(tmp_path / "a.pdf", ["First page text.", "Second page text.", "Third."])
    document = extract_document(path, PDF, LIMITS)
    assert document.format == "pdf"
    assert document.page_unit == "page"
    assert [(page.number, page.text) for page in document.pages] == [
        (1, "First page text."),
        (2, "Second page text."),
        (3, "Third."),
    ]
    assert [(p.id, p.page, p.text) for p in document.passages] == [
        ("p1.1", 1, "First page text."),
        ("p2.1", 2, "Second page text."),
        ("p3.1", 3, "Third."),
    ]


def test_blank_page_keeps_numbering_but_has_no_passage(tmp_path: Path) -> None:
    """A blank page in the middle is kept with empty text, so later pages keep their numbers."""
    path = write_pdf(tmp_path / "a.pdf", ["Before the gap.", "", "After the gap."])
    document = extract_document(path, PDF, LIMITS)
    assert [page.text for page in document.pages] == ["Before the gap.", "", "After the gap."]
    assert [passage.id for passage in document.passages] == ["p1.1", "p3.1"]


def test_long_page_is_cut_into_passages_of_the_target_size(tmp_path: Path) -> None:
    """A page of many sentences gives several passages p1.1, p1.2, ... within passage_chars."""
    text = " ".join(f"Sentence number {i} is about owls." for i in range(60))
    path = write_pdf(tmp_path / "a.pdf", [text])
    document = extract_document(path, PDF, DocumentLimits(passage_chars=300))
    ids = [passage.id for passage in document.passages]
    assert ids == [f"p1.{i}" for i in range(1, len(ids) + 1)]
    assert len(ids) >= 6
    assert all(0 < len(passage.text) <= 300 for passage in document.passages)
    assert all(passage.text in document.pages[0].text for passage in document.passages)


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    """A PDF that needs a user password is refused as encrypted."""
    # A fixture's password, not a secret.
    path = write_pdf(tmp_path / "a.pdf", ["Secret text."], user_password="user")  # noqa: S106
    with pytest.raises(InvalidInput, match=r"^document is encrypted$"):
        extract_document(path, PDF, LIMITS)


def test_truncated_pdf_is_refused(tmp_path: Path) -> None:
    """A PDF cut in half is refused with a message that it could not be read."""
    data = pdf_bytes(["Some text.", "More text."])
    path = tmp_path / "a.pdf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match="PDF could not be read"):
        extract_document(path, PDF, LIMITS)


def test_garbage_with_pdf_header_is_refused(tmp_path: Path) -> None:
    """Bytes that only start like a PDF are refused as unreadable, not as a crash."""
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    with pytest.raises(InvalidInput, match="PDF could not be read"):
        extract_document(path, PDF, LIMITS)


def test_blank_pdf_has_no_text(tmp_path: Path) -> None:
    """A PDF whose only page is blank (like a scan without OCR) is refused as having no text."""
    path = write_pdf(tmp_path / "a.pdf", [""])
    with pytest.raises(InvalidInput, match=r"^document has no text$"):
        extract_document(path, PDF, LIMITS)


def test_too_many_pages_is_refused_before_reading_text(tmp_path: Path) -> None:
    """A PDF with more pages than max_pages is refused as too large, naming both numbers."""
    path = write_pdf(tmp_path / "a.pdf", ["one", "two", "three"])
    with pytest.raises(TooLarge, match=r"^document has 3 pages; the limit is 2$"):
        extract_document(path, PDF, DocumentLimits(max_pages=2))


def test_too_much_text_is_refused(tmp_path: Path) -> None:
    """A PDF with more characters than max_chars is refused as too large."""
    path = write_pdf(tmp_path / "a.pdf", ["x" * 40, "y" * 40])
    with pytest.raises(TooLarge, match="more than 50 characters"):
        extract_document(path, PDF, DocumentLimits(max_chars=50))
