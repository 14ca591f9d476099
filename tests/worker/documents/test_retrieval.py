"""BM25 passage ranking: rare terms win, ties keep document order, no-match falls back."""

from __future__ import annotations

from worker.documents import Passage, PassageIndex

PASSAGES = [
    Passage("p1.1", 1, "The owl hunts at night in the forest."),
    Passage("p1.2", 1, "The forest is quiet at night."),
    Passage("p2.1", 2, "Night falls over the forest and the owl wakes."),
    Passage("p3.1", 3, "A rare axolotl lives in the lake near the forest."),
    Passage("p3.2", 3, "The lake is cold at night."),
]


def test_rare_term_ranks_its_passage_first() -> None:
    """The only passage containing a rare query term comes first."""
    index = PassageIndex(PASSAGES)
    assert index.top("where does the axolotl live at night?", 3)[0].id == "p3.1"


def test_zero_score_passages_are_left_out() -> None:
    """Passages sharing no term with the query are not returned, even when k allows more."""
    index = PassageIndex(PASSAGES)
    assert [p.id for p in index.top("Axolotl!", 5)] == ["p3.1"]


def test_query_is_lowercased_and_stopwords_ignored() -> None:
    """Case does not matter, and stopwords alone match nothing."""
    index = PassageIndex(PASSAGES)
    assert [p.id for p in index.top("OWL", 5)] == [p.id for p in index.top("owl", 5)]
    assert {p.id for p in index.top("owl", 5)} == {"p1.1", "p2.1"}
    assert [p.id for p in index.top("the and is at", 2)] == ["p1.1", "p1.2"]


def test_ties_keep_document_order() -> None:
    """Passages with equal scores come back in their document order."""
    twins = [Passage(f"p{i}.1", i, "identical words here") for i in range(1, 6)]
    index = PassageIndex([Passage("p0.1", 0, "something else"), *twins])
    assert [p.id for p in index.top("identical", 10)] == [p.id for p in twins]


def test_no_match_returns_the_first_k() -> None:
    """A query that matches nothing returns the first k passages in document order."""
    index = PassageIndex(PASSAGES)
    assert [p.id for p in index.top("zebra giraffe", 2)] == ["p1.1", "p1.2"]
    assert [p.id for p in index.top("", 1)] == ["p1.1"]


def test_k_is_capped_at_the_number_of_passages() -> None:
    """Asking for more passages than exist returns each at most once; k of 0 returns none."""
    index = PassageIndex(PASSAGES)
    assert len(index.top("forest night", 100)) == len(PASSAGES)
    assert len({p.id for p in index.top("forest night", 100)}) == len(PASSAGES)
    assert index.top("forest", 0) == []


def test_score_order_follows_term_frequency() -> None:
    """A passage repeating the query term outranks one mentioning it once."""
    index = PassageIndex(
        [
            Passage("p1.1", 1, "owl once, and many other words about trees and rivers"),
            Passage("p1.2", 1, "owl owl owl"),
            Passage("p1.3", 1, "no match here"),
        ]
    )
    assert [p.id for p in index.top("owl", 3)] == ["p1.2", "p1.1"]


def test_index_without_tokens_still_answers() -> None:
    """An empty index, or one whose passages are all stopwords, returns the first k."""
    assert PassageIndex([]).top("anything", 3) == []
    only_stopwords = [Passage("p1.1", 1, "the and of"), Passage("p1.2", 1, "...")]
    assert [p.id for p in PassageIndex(only_stopwords).top("owl", 5)] == ["p1.1", "p1.2"]
