"""Rank passages against a question with BM25 (the bm25s library), to pick what the model reads."""

from __future__ import annotations

import re
from collections.abc import Sequence

import bm25s
from bm25s.stopwords import STOPWORDS_EN

from .model import Passage

_TOKEN = re.compile(r"\w+")
_STOPWORDS = frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Return the lower-case word tokens of text that are not English stopwords."""
    return [token for token in _TOKEN.findall(text.lower()) if token not in _STOPWORDS]


class PassageIndex:
    """A BM25 index over the passages of one document, built once and queried per question."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self._passages = list(passages)
        corpus = [tokenize(passage.text) for passage in self._passages]
        self._bm25: bm25s.BM25 | None = None
        # bm25s cannot index a corpus without a single token; such an index just never matches.
        if any(corpus):
            self._bm25 = bm25s.BM25()
            self._bm25.index(corpus, show_progress=False)

    def __len__(self) -> int:
        return len(self._passages)

    def top(self, query: str, k: int) -> list[Passage]:
        """Return up to k passages by falling score, ties in document order, matches only.

        When no passage matches any query term, the first k passages are returned instead, so a
        vague question still gets the start of the document.
        """
        k = max(0, min(k, len(self._passages)))
        scores = self._scores(query)
        ranked = sorted(
            (index for index, score in enumerate(scores) if score > 0),
            key=lambda index: -scores[index],
        )
        if not ranked:
            return self._passages[:k]
        return [self._passages[index] for index in ranked[:k]]

    def _scores(self, query: str) -> list[float]:
        """Return the BM25 score of every passage for the query, zero for all if nothing matches."""
        if self._bm25 is None:
            return [0.0] * len(self._passages)
        token_ids = self._bm25.get_tokens_ids(tokenize(query))
        if not token_ids:
            return [0.0] * len(self._passages)
        scores: list[float] = self._bm25.get_scores_from_ids(token_ids).tolist()
        return scores
