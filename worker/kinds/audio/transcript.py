"""Merging the transcripts of overlapping audio clips into one timed transcript.

Clip i ends at cut_i + overlap/2 and clip i+1 starts at cut_i - overlap/2, so the words
spoken around each cut were heard twice. Each clip becomes one segment running from the
previous cut to the next, and the words repeated at the start of the next clip are removed.

Dedupe rule, for each pair of clips that overlap in time: compare the words of both clips
case- and punctuation-insensitively (a word's key is its letters and digits, casefolded; tokens
with no letter or digit are skipped when comparing). Find the longest k, at most
`ceil(overlap_seconds * words_per_second * 2) + 2`, such that the last k keys of clip i equal
the first k keys of clip i+1, where only the two boundary words may be a cut word:

- the run's first word may have lost its beginning in clip i+1 (`own` for `brown`), and the
  run's last word may have lost its end in clip i (`bro` for `brown`);
- a cut word must keep at least `MIN_CUT_WORD_CHARS` characters and be strictly shorter.

Clip i+1 then loses its first k words. When clip i's last word was the cut one, clip i
loses that fragment and clip i+1 keeps its whole word instead, so no word is lost and none is
left twice. No match within the limit means nothing is removed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from worker.kinds.subtitles import Segment

# A cut-word fragment shorter than this ("a", "in") matches too many real words to trust.
MIN_CUT_WORD_CHARS = 3


@dataclass(frozen=True)
class ClipText:
    """A clip's span in media seconds and the model's transcript of it."""

    index: int
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class _Words:
    """A clip's whitespace tokens and the comparison keys of those that hold a letter or digit."""

    tokens: list[str]
    keys: list[str]
    positions: list[int]  # token index of each key


@dataclass(frozen=True)
class _Overlap:
    """How many keyed words of the next clip repeat the previous one, and which copy was cut."""

    words: int
    previous_cut: bool  # the previous clip's last word is a fragment of the next one's


def merge_clips(
    clips: list[ClipText], *, overlap_seconds: float, words_per_second: float = 4.0
) -> list[Segment]:
    """One segment per clip with text, split at the cut points, overlap words kept once."""
    if overlap_seconds < 0 or words_per_second <= 0:
        raise ValueError("overlap_seconds must be >= 0 and words_per_second > 0")
    ordered = sorted(clips, key=lambda c: c.index)
    _check_order(ordered)
    limit = math.ceil(overlap_seconds * words_per_second * 2) + 2
    words = [_split_words(w.text) for w in ordered]
    # The kept tokens of clip i are tokens[low[i]:high[i]].
    low = [0] * len(ordered)
    high = [len(w.tokens) for w in words]
    cuts: list[float | None] = []
    for i in range(len(ordered) - 1):
        previous, following = ordered[i], ordered[i + 1]
        if following.start >= previous.end:  # a gap, not an overlap: nothing was heard twice
            cuts.append(None)
            continue
        cuts.append((previous.end + following.start) / 2)
        overlap = _find_overlap(words[i].keys, words[i + 1].keys, limit)
        if overlap is None:
            continue
        if overlap.previous_cut:
            high[i] = min(high[i], words[i].positions[-1])
            low[i + 1] = words[i + 1].positions[overlap.words - 1]
        else:
            low[i + 1] = words[i + 1].positions[overlap.words - 1] + 1

    segments: list[Segment] = []
    for i, clip in enumerate(ordered):
        kept = words[i].tokens[low[i] : high[i]]
        if not any(_key(token) for token in kept):
            continue
        start_cut = cuts[i - 1] if i > 0 else None
        end_cut = cuts[i] if i < len(cuts) else None
        segments.append(
            Segment(
                start=clip.start if start_cut is None else start_cut,
                end=clip.end if end_cut is None else end_cut,
                text=" ".join(kept),
            )
        )
    return segments


def full_text(segments: list[Segment]) -> str:
    """The segments' texts joined by single spaces: clips are cut at pauses, not paragraphs."""
    return " ".join(segment.text for segment in segments)


def _check_order(ordered: list[ClipText]) -> None:
    for clip in ordered:
        if not clip.start < clip.end:
            raise ValueError(f"clip {clip.index} does not end after it starts")
    for previous, following in itertools.pairwise(ordered):
        if previous.index == following.index:
            raise ValueError(f"clip index {previous.index} appears twice")
        if not (previous.start < following.start and previous.end < following.end):
            raise ValueError(f"clip {following.index} does not come after {previous.index}")


def _key(token: str) -> str:
    return "".join(ch for ch in token.casefold() if ch.isalnum())


def _split_words(text: str) -> _Words:
    tokens = text.split()
    keys: list[str] = []
    positions: list[int] = []
    for position, token in enumerate(tokens):
        key = _key(token)
        if key:
            keys.append(key)
            positions.append(position)
    return _Words(tokens=tokens, keys=keys, positions=positions)


def _find_overlap(previous: list[str], following: list[str], limit: int) -> _Overlap | None:
    """The longest run of at most `limit` words ending `previous` and starting `following`."""
    for k in range(min(limit, len(previous), len(following)), 0, -1):
        overlap = _match_run(previous[-k:], following[:k])
        if overlap is not None:
            return overlap
    return None


def _match_run(previous: list[str], following: list[str]) -> _Overlap | None:
    k = len(previous)
    if previous[1:-1] != following[1:-1]:
        return None
    first_ok = previous[0] == following[0] or _lost_start(previous[0], following[0])
    if k == 1 and not first_ok:
        # A single word may instead be the previous clip's fragment of the next one's word.
        return _Overlap(1, previous_cut=True) if _lost_end(previous[0], following[0]) else None
    if not first_ok:
        return None
    if k == 1 or previous[-1] == following[-1]:
        return _Overlap(k, previous_cut=False)
    return _Overlap(k, previous_cut=True) if _lost_end(previous[-1], following[-1]) else None


def _lost_start(whole: str, fragment: str) -> bool:
    """Whether `fragment` is `whole` with its beginning cut off by the clip start."""
    return MIN_CUT_WORD_CHARS <= len(fragment) < len(whole) and whole.endswith(fragment)


def _lost_end(fragment: str, whole: str) -> bool:
    """Whether `fragment` is `whole` with its end cut off by the clip end."""
    return MIN_CUT_WORD_CHARS <= len(fragment) < len(whole) and whole.startswith(fragment)
