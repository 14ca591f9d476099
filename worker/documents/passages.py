"""Cut pages into passages of about a target size, at paragraph and then sentence boundaries.

Each passage is a stripped substring of its page's text, so a quote from a passage can always be
found on the page it cites. Passages never straddle pages and are never empty; none is longer
than the target, because a sentence longer than it is cut at a space (or, without one, anywhere).
Ids read `p{page}.{n}`: `p3.2` is the second passage of page 3, counted from 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .model import Page, Passage

Span = tuple[int, int]

_BLANK_LINE = re.compile(r"\n[^\S\n]*\n\s*")
# A sentence ends at . ! ? or … (and any closing quote or bracket) followed by a space, or at a
# CJK full stop, which is usually followed by no space at all.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s)|[。！？]")
_SPACE = re.compile(r"\s+")


def split_passages(pages: list[Page], target_chars: int) -> list[Passage]:
    """Return the passages of all pages in reading order, each at most target_chars long."""
    passages: list[Passage] = []
    for page in pages:
        for index, (start, end) in enumerate(_pack(page.text, target_chars), start=1):
            passages.append(Passage(f"p{page.number}.{index}", page.number, page.text[start:end]))
    return passages


def _pack(text: str, limit: int) -> Iterator[Span]:
    """Join consecutive units into spans as long as the joined span stays within the limit."""
    current: Span | None = None
    for start, end in _units(text, limit):
        if current is not None and end - current[0] <= limit:
            current = (current[0], end)
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


def _units(text: str, limit: int) -> Iterator[Span]:
    """Yield paragraphs that fit the limit, else their sentences, else hard pieces of those."""
    for paragraph in _split(text, 0, len(text), _BLANK_LINE):
        if paragraph[1] - paragraph[0] <= limit:
            yield paragraph
            continue
        for sentence in _sentences(text, *paragraph):
            if sentence[1] - sentence[0] <= limit:
                yield sentence
            else:
                yield from _hard_pieces(text, *sentence, limit)


def _split(text: str, start: int, end: int, separator: re.Pattern[str]) -> Iterator[Span]:
    """Yield the non-blank, stripped spans of text[start:end] between separator matches."""
    position = start
    for match in separator.finditer(text, start, end):
        yield from _stripped(text, position, match.start())
        position = match.end()
    yield from _stripped(text, position, end)


def _sentences(text: str, start: int, end: int) -> Iterator[Span]:
    """Yield the stripped sentences of text[start:end]."""
    position = start
    for match in _SENTENCE_END.finditer(text, start, end):
        yield from _stripped(text, position, match.end())
        position = match.end()
    yield from _stripped(text, position, end)


def _hard_pieces(text: str, start: int, end: int, limit: int) -> Iterator[Span]:
    """Cut text[start:end] into pieces of at most limit, at the last space that allows it."""
    while end - start > limit:
        cut = start + limit
        for space in _SPACE.finditer(text, start + 1, start + limit + 1):
            cut = space.start()
        yield from _stripped(text, start, cut)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    yield from _stripped(text, start, end)


def _stripped(text: str, start: int, end: int) -> Iterator[Span]:
    """Yield text[start:end] without surrounding whitespace, unless nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        yield (start, end)
