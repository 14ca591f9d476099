"""Subtitles from a merged transcript: readable cues, then SRT, WebVTT and a timestamped text.

Cue rule, per segment: clamp its span into [0, duration] (and after the previous segment), to
whole milliseconds. Split its words (a word longer than a line is first cut into line-long
pieces) into the fewest cues n, from ceil(span / max_cue_seconds) up, such that cutting the
words at the word boundaries nearest to each n-th of the characters gives cues that each wrap
into at most `max_lines` lines of at most `max_chars_per_line` and last at most
`max_cue_seconds` (a one-word cue may last longer: it cannot be split). Each cue's time is the
segment's span shared in proportion to its characters (a word counts its length plus one), then
cues shorter than `min_cue_seconds` are lengthened to it, taken from the longer ones, when the
span holds that many. Lines are balanced: the narrowest width that keeps the fewest lines.
"""

from __future__ import annotations

import html
import itertools
import math
from dataclasses import dataclass
from datetime import timedelta

import srt
import webvtt
from webvtt.models import Timestamp


@dataclass(frozen=True)
class Segment:
    """A stretch of the media, in seconds, with the words spoken in it (or a caption of it)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Cue:
    """A subtitle shown from `start` to `end` seconds; lines are separated by newlines."""

    start: float
    end: float
    text: str


def split_into_cues(
    segments: list[Segment],
    *,
    duration: float,
    max_chars_per_line: int = 42,
    max_lines: int = 2,
    max_cue_seconds: float = 7.0,
    min_cue_seconds: float = 0.8,
) -> list[Cue]:
    """Readable cues inside each segment's span, in order, within [0, duration], to the ms.

    A segment left with less than a millisecond per cue once clamped (it lies past the end of
    the media) gives no cues, as they could not be shown.
    """
    if max_chars_per_line < 1 or max_lines < 1 or max_cue_seconds <= 0 or min_cue_seconds < 0:
        raise ValueError("line, line count and cue length limits must be positive")
    duration_ms = max(_ms(duration), 0)
    cues: list[Cue] = []
    previous_end = 0
    for segment in segments:
        start = min(max(_ms(segment.start), previous_end), duration_ms)
        end = min(max(_ms(segment.end), start), duration_ms)
        words = _line_sized_words(segment.text.split(), max_chars_per_line)
        if not words:
            continue
        cue_lines = _cue_lines(
            words, (end - start) / 1000, max_chars_per_line, max_lines, max_cue_seconds
        )
        if end - start < len(cue_lines):
            continue
        weights = [len(" ".join(lines)) + 1 for lines in cue_lines]
        bounds = _boundaries(start, end, weights, min_cue_seconds)
        for lines, cue_start, cue_end in zip(cue_lines, bounds, bounds[1:], strict=False):
            cues.append(Cue(start=cue_start / 1000, end=cue_end / 1000, text="\n".join(lines)))
        previous_end = end
    return cues


def to_srt(cues: list[Cue]) -> str:
    """The cues as an SRT document, numbered from 1."""
    subtitles = [
        srt.Subtitle(
            index=number,
            start=timedelta(milliseconds=_ms(cue.start)),
            end=timedelta(milliseconds=_ms(cue.end)),
            content=cue.text,
        )
        for number, cue in enumerate(cues, start=1)
    ]
    document: str = srt.compose(subtitles)
    return document


def to_vtt(cues: list[Cue]) -> str:
    """The cues as a WebVTT document, with `&`, `<` and `>` escaped as cue text requires."""
    captions = [
        webvtt.Caption(
            start=str(Timestamp.from_seconds(_ms(cue.start) / 1000)),
            end=str(Timestamp.from_seconds(_ms(cue.end) / 1000)),
            # webvtt-py writes cue text as given; unescaped "<" would read as a tag, "-->" a cue.
            text=html.escape(cue.text, quote=False),
        )
        for cue in cues
    ]
    return webvtt.WebVTT(captions=captions).content


def to_text(segments: list[Segment], *, duration: float) -> str:
    """One `[hh:mm:ss] text` line per segment, its start clamped into [0, duration] and floored."""
    lines: list[str] = []
    for segment in segments:
        seconds = math.floor(min(max(segment.start, 0.0), max(duration, 0.0)))
        hours, rest = divmod(seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        lines.append(f"[{hours:02d}:{minutes:02d}:{seconds:02d}] {segment.text}")
    return "".join(f"{line}\n" for line in lines)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _weight(words: list[str]) -> int:
    return sum(len(word) + 1 for word in words)


def _line_sized_words(words: list[str], max_chars: int) -> list[str]:
    """The words, each longer than a line hard-split into line-long pieces."""
    return [word[i : i + max_chars] for word in words for i in range(0, len(word), max_chars)]


def _cue_lines(
    words: list[str], span: float, max_chars: int, max_lines: int, max_seconds: float
) -> list[list[str]]:
    """The lines of the fewest balanced cues that each wrap and fit their time limit."""
    total = _weight(words)
    by_chars = math.ceil(total / (max_lines * (max_chars + 1)))
    by_time = math.ceil(span / max_seconds)
    for count in range(min(max(by_chars, by_time, 1), len(words)), len(words)):
        pieces = _balanced(words, count)
        wrapped = [_wrap(piece, max_chars, max_lines) for piece in pieces]
        if all(
            lines is not None and (len(piece) == 1 or span * _weight(piece) / total <= max_seconds)
            for piece, lines in zip(pieces, wrapped, strict=True)
        ):
            return [lines for lines in wrapped if lines is not None]
    # One word per cue: each word fits a line, and a single word cannot be split in time.
    return [[word] for word in words]


def _balanced(words: list[str], count: int) -> list[list[str]]:
    """`words` cut into `count` runs at the word boundaries nearest each count-th of the chars."""
    cumulative = [0]
    for word in words:
        cumulative.append(cumulative[-1] + len(word) + 1)
    cuts = [0]
    for j in range(1, count):
        target = cumulative[-1] * j / count
        # Leave at least one word for this run and each run after it.
        candidates = range(cuts[-1] + 1, len(words) - (count - j) + 1)
        cuts.append(min(candidates, key=lambda b: abs(cumulative[b] - target)))
    cuts.append(len(words))
    return [words[a:b] for a, b in itertools.pairwise(cuts)]


def _wrap(words: list[str], max_chars: int, max_lines: int) -> list[str] | None:
    """The words in the fewest lines, as even as possible, or None if they need too many."""
    lines = _greedy_lines(words, max_chars)
    if len(lines) > max_lines:
        return None
    narrowest = max(max(len(w) for w in words), math.ceil(_weight(words) / len(lines)) - 1)
    for width in range(narrowest, max_chars):
        even = _greedy_lines(words, width)
        if len(even) <= len(lines):
            return even
    return lines


def _greedy_lines(words: list[str], width: int) -> list[str]:
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _boundaries(start: int, end: int, weights: list[int], min_seconds: float) -> list[int]:
    """Cue start/end times in ms: the span shared by weight, short cues raised to the minimum."""
    span = end - start
    minimum = min_seconds * 1000
    durations = [span * w / sum(weights) for w in weights]
    if minimum * len(weights) <= span:
        # Water-filling: fix the short ones at the minimum and share the rest by weight again.
        fixed: set[int] = set()
        while True:
            free = span - minimum * len(fixed)
            free_weight = sum(w for i, w in enumerate(weights) if i not in fixed)
            short = {
                i
                for i, w in enumerate(weights)
                if i not in fixed and free * w / free_weight < minimum
            }
            if not short:
                break
            fixed |= short
            if len(fixed) == len(weights):
                break
        if len(fixed) == len(weights):
            durations = [span / len(weights)] * len(weights)
        else:
            durations = [
                minimum if i in fixed else free * w / free_weight for i, w in enumerate(weights)
            ]
    bounds = [start]
    elapsed = 0.0
    for j, length in enumerate(durations[:-1], start=1):
        elapsed += length
        # Every cue keeps at least one millisecond, so none is empty or out of order.
        remaining = len(durations) - j
        bounds.append(min(max(start + round(elapsed), bounds[-1] + 1), end - remaining))
    bounds.append(end)
    return bounds
