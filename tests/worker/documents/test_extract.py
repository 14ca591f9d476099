"""The extraction entry point: dispatch by content type, refusals, and limit validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import UnsupportedMedia
from worker.documents import DocumentLimits, PassageIndex, extract_document

from .builders import write_pdf


def test_unsupported_content_type_is_refused(tmp_path: Path) -> None:
    """A content type no document reader handles is refused as unsupported media."""
    path = tmp_path / "a.wav"
    path.write_bytes(b"RIFF")
    with pytest.raises(UnsupportedMedia, match="'audio/wav'"):
        extract_document(path, "audio/wav", DocumentLimits())


def test_limits_must_be_positive() -> None:
    """A zero or negative limit is a programming error caught when the limits are made."""
    with pytest.raises(ValueError, match="passage_chars must be positive"):
        DocumentLimits(passage_chars=0)


def test_pdf_question_finds_its_page(tmp_path: Path) -> None:
    """End to end: the passage with a rare word is found on the PDF page that holds it."""
    pages = [f"Page {i} talks about ordinary topics like weather and food." for i in range(1, 6)]
    pages[3] = "Page 4 mentions the quokka, a small marsupial."
    path = write_pdf(tmp_path / "a.pdf", pages)
    document = extract_document(path, "application/pdf", DocumentLimits())
    best = PassageIndex(document.passages).top("What is a quokka?", 2)
    assert [(p.id, p.page) for p in best] == [("p4.1", 4)]
    assert document.char_count == sum(len(page) for page in pages)
