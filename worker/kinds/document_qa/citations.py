"""Citations: passage ids the model named, or, when it named none, the passages that support the
answer best by BM25, each with the sentence that overlaps the question and answer most."""

from __future__ import annotations

import re

from worker.documents import Passage, PassageIndex

_CITED = re.compile(r"\[\s*(p\d+\.\d+(?:\s*,\s*p\d+\.\d+)*)\s*\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")
QUOTE_CHARS = 300


def cited_ids(answer: str, known: set[str]) -> list[str]:
    """The passage ids cited in `answer` as `[p3.2]` that exist, in first-cited order."""
    found: list[str] = []
    for group in _CITED.findall(answer):
        for pid in (part.strip() for part in group.split(",")):
            if pid in known and pid not in found:
                found.append(pid)
    return found


def best_quote(passage: Passage, query: str) -> str:
    """The sentence of `passage` sharing the most words with `query`, cut to QUOTE_CHARS."""
    words = {w.lower() for w in _WORD.findall(query)}
    sentences = [s.strip() for s in _SENTENCE.split(passage.text) if s.strip()] or [passage.text]
    best = max(sentences, key=lambda s: len(words & {w.lower() for w in _WORD.findall(s)}))
    return best if len(best) <= QUOTE_CHARS else best[: QUOTE_CHARS - 1].rstrip() + "…"


def citations_for(
    question: str, answer: str, candidates: list[Passage], index: PassageIndex, limit: int = 2
) -> tuple[list[dict[str, object]], bool]:
    """Citations `{page, passage_id, quote}` and whether the model itself chose them."""
    by_id = {p.id: p for p in candidates}
    ids = cited_ids(answer, set(by_id))
    from_model = bool(ids)
    if not ids:
        ids = [p.id for p in index.top(f"{question} {answer}", limit) if p.id in by_id]
    query = f"{question} {answer}"
    return [
        {"page": by_id[i].page, "passage_id": i, "quote": best_quote(by_id[i], query)}
        for i in ids[:limit]
    ], from_model


def strip_citations(answer: str) -> str:
    """The answer without its bracketed passage ids."""
    return re.sub(r"\s{2,}", " ", _CITED.sub("", answer)).strip()
