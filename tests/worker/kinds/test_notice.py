"""The tiny model's warning: found from the chunks' marks, and shown in document.qa's Markdown."""

from __future__ import annotations

from worker.kinds.contract import ChunkResult
from worker.kinds.document_qa.report import answers_markdown
from worker.kinds.notice import TINY_WARNING, tiny_warning

RESULT = {
    "answers": [{"question": "Who?", "answer": "Someone.", "citations": []}],
    "document": {"pages": 1, "page_unit": "page", "passages": 1, "mode": "whole"},
}


def test_any_tiny_chunk_makes_the_job_warn() -> None:
    """One chunk from the tiny model is enough for the warning; none gives no warning."""
    real = ChunkResult(0, {}, {"model": "gemma", "tiny": False})
    tiny = ChunkResult(1, {}, {"model": "tiny", "tiny": True})
    assert tiny_warning([real, tiny]) == TINY_WARNING
    assert tiny_warning([real, ChunkResult(2, {}, {})]) is None


def test_answers_markdown_shows_the_warning_it_is_given() -> None:
    """The warning stands under the title when given, and is absent otherwise."""
    warned = answers_markdown(RESULT, "a.pdf", warning=TINY_WARNING)
    assert warned.splitlines()[:3] == [
        "# Answers about a.pdf",
        "",
        f"> **Warning:** {TINY_WARNING}",
    ]
    assert "Warning" not in answers_markdown(RESULT, "a.pdf")
