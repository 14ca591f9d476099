"""Passage cutting: readable ids, bounded sizes, paragraph and sentence boundaries, hard splits."""

from __future__ import annotations

import pytest

from worker.documents import Page, Passage, split_passages


def _check_invariants(pages: list[Page], passages: list[Passage], target: int) -> None:
    """Every passage is non-empty, within the target, a substring of its page, and numbered."""
    texts = {page.number: page.text for page in pages}
    counters: dict[int, int] = {}
    for passage in passages:
        counters[passage.page] = counters.get(passage.page, 0) + 1
        assert passage.id == f"p{passage.page}.{counters[passage.page]}"
        assert passage.text.strip() == passage.text != ""
        assert len(passage.text) <= target
        assert passage.text in texts[passage.page]


def test_short_paragraphs_are_packed_together() -> None:
    """Paragraphs that fit together share a passage; the next one that does not starts a new one."""
    page = Page(3, "One.\n\nTwo.\n\n" + "x" * 25)
    passages = split_passages([page], target_chars=30)
    assert [(p.id, p.text) for p in passages] == [("p3.1", "One.\n\nTwo."), ("p3.2", "x" * 25)]


def test_long_paragraph_is_cut_at_sentences() -> None:
    """A paragraph over the target is cut between sentences, never inside one that fits."""
    sentences = [f"This is sentence {i}." for i in range(10)]
    page = Page(1, " ".join(sentences))
    passages = split_passages([page], target_chars=50)
    _check_invariants([page], passages, 50)
    for passage in passages:
        assert passage.text.endswith(".")
        assert passage.text.startswith("This")


def test_very_long_sentence_is_hard_split_at_spaces() -> None:
    """A sentence longer than the target is cut at spaces into pieces within the target."""
    page = Page(1, " ".join(["word"] * 100))
    passages = split_passages([page], target_chars=42)
    _check_invariants([page], passages, 42)
    assert all(set(p.text.split(" ")) == {"word"} for p in passages)
    assert sum(len(p.text.split(" ")) for p in passages) == 100


def test_text_without_spaces_is_hard_split_anywhere() -> None:
    """A run of characters without any space is cut at exactly the target size."""
    page = Page(2, "a" * 95)
    passages = split_passages([page], target_chars=30)
    assert [(p.id, len(p.text)) for p in passages] == [
        ("p2.1", 30),
        ("p2.2", 30),
        ("p2.3", 30),
        ("p2.4", 5),
    ]


def test_cjk_sentences_are_cut_at_full_stops() -> None:
    """Chinese or Japanese sentences, which have no spaces, are cut after their full stops."""
    page = Page(1, "これは文です。" * 6)
    passages = split_passages([page], target_chars=15)
    assert [p.text for p in passages] == ["これは文です。これは文です。"] * 3


def test_blank_pages_give_no_passages() -> None:
    """Pages of only whitespace give no passages, and numbering of the others is unaffected."""
    pages = [Page(1, ""), Page(2, "  \n\n "), Page(3, "Text.")]
    assert [p.id for p in split_passages(pages, target_chars=100)] == ["p3.1"]


@pytest.mark.parametrize("target", [1, 7, 64, 1200])
def test_invariants_hold_on_mixed_text(target: int) -> None:
    """On text mixing paragraphs, sentences, long words and odd spacing, all invariants hold."""
    text = (
        "Intro paragraph. It has two sentences!\n\n\n   Indented paragraph with a "
        + "verylongwordwithoutanyspaces" * 5
        + " and a tail.\n \n"
        + "Line one\nline two? Yes.\t Tabs\tand «quotes». "
        + "End (of text)."
    )
    pages = [Page(1, text), Page(2, text.upper())]
    passages = split_passages(pages, target_chars=target)
    _check_invariants(pages, passages, target)
    assert {p.page for p in passages} == {1, 2}
    joined = "".join("".join(p.text.split()) for p in passages if p.page == 1)
    assert joined == "".join(text.split())
