"""Merging overlapping clip transcripts: overlap words kept once, cut words, segment times."""

from __future__ import annotations

import itertools

import pytest

from tests.worker.kinds.speech import spoken_clips
from worker.kinds.audio.transcript import (
    ClipText,
    Segment,
    full_text,
    merge_clips,
)


def _pair(first: str, second: str, *, overlap: float = 1.0) -> list[Segment]:
    """Merge two clips of 20 s that overlap by `overlap` seconds around the 20 s cut."""
    return merge_clips(
        [
            ClipText(0, 0.0, 20.0 + overlap / 2, first),
            ClipText(1, 20.0 - overlap / 2, 40.0, second),
        ],
        overlap_seconds=overlap,
    )


def test_duplicated_overlap_words_are_removed_exactly_once() -> None:
    """The words both clips heard around the cut appear once, in order."""
    segments = _pair("we went to the market and bought some", "and bought some apples for dinner")
    assert full_text(segments) == "we went to the market and bought some apples for dinner"
    assert [s.text for s in segments] == [
        "we went to the market and bought some",
        "apples for dinner",
    ]


def test_no_words_are_dropped_when_clips_do_not_repeat() -> None:
    """Clips whose edges share no words keep every word."""
    segments = _pair("the meeting starts at nine", "bring your notes please")
    assert full_text(segments) == "the meeting starts at nine bring your notes please"


def test_case_and_punctuation_differences_still_dedupe() -> None:
    """Repeated words that differ only in case and punctuation are still removed from the next."""
    segments = _pair("and then, she said: Hello World.", "hello, world! How are you?")
    assert full_text(segments) == "and then, she said: Hello World. How are you?"


def test_word_cut_at_the_end_of_a_clip_is_replaced_by_the_whole_word() -> None:
    """A last word cut mid-word ("bro") gives way to the next clip's whole word ("brown")."""
    segments = _pair("jumped over the quick bro", "brown fox and ran")
    assert full_text(segments) == "jumped over the quick brown fox and ran"
    assert [s.text for s in segments] == ["jumped over the quick", "brown fox and ran"]


def test_word_cut_at_the_start_of_a_clip_is_dropped() -> None:
    """A first word that lost its beginning ("own") is dropped with the rest of the repeat."""
    segments = _pair("the quick brown fox", "own fox jumps")
    assert full_text(segments) == "the quick brown fox jumps"


def test_words_cut_at_both_ends_of_a_longer_repeat_are_merged() -> None:
    """A repeat of several words whose first and last words were both cut is merged once."""
    segments = _pair("the lazy dog jumped over the fen", "umped over the fence today")
    assert full_text(segments) == "the lazy dog jumped over the fence today"
    segments = _pair("we saw the lazy dog and the quick bro", "uick brown fox ran")
    assert full_text(segments) == "we saw the lazy dog and the quick brown fox ran"


def test_short_fragments_are_not_taken_for_cut_words() -> None:
    """A boundary word shorter than three letters is kept, as it is likely a real word."""
    segments = _pair("and so I", "It is late")
    assert full_text(segments) == "and so I It is late"


def test_repetition_longer_than_the_limit_is_kept() -> None:
    """A repeat longer than ceil(overlap * words_per_second * 2) + 2 words is real speech."""
    limit = 10  # one second of overlap at four words per second
    repeat = " ".join(f"w{i}" for i in range(limit + 1))
    segments = _pair(f"start {repeat}", f"{repeat} end")
    assert full_text(segments) == f"start {repeat} {repeat} end"
    at_limit = " ".join(f"w{i}" for i in range(limit))
    assert full_text(_pair(f"start {at_limit}", f"{at_limit} end")) == f"start {at_limit} end"


@pytest.mark.parametrize("empty", ["", "   \n\t", "... — !"])
def test_empty_clips_give_no_segment(empty: str) -> None:
    """A clip with no words gives no segment, and its neighbours keep all their words."""
    segments = merge_clips(
        [
            ClipText(0, 0.0, 20.5, "first part"),
            ClipText(1, 19.5, 40.5, empty),
            ClipText(2, 39.5, 50.0, "last part"),
        ],
        overlap_seconds=1.0,
    )
    assert segments == [Segment(0.0, 20.0, "first part"), Segment(40.0, 50.0, "last part")]


def test_whitespace_is_normalised_and_segments_join_with_single_spaces() -> None:
    """Runs of whitespace inside a clip become single spaces, and segments join with one."""
    segments = _pair("  one\n two\t\tthree ", "four   five")
    assert [s.text for s in segments] == ["one two three", "four five"]
    assert full_text(segments) == "one two three four five"


def test_segment_times_follow_the_cut_points() -> None:
    """Segments run cut to cut, from the first clip's start to the last clip's end."""
    clips = [
        ClipText(2, 38.2, 51.0, "three"),
        ClipText(0, 3.0, 20.4, "one"),
        ClipText(1, 19.2, 39.4, "two"),
    ]
    segments = merge_clips(clips, overlap_seconds=1.2)
    assert [s.text for s in segments] == ["one", "two", "three"]
    assert [(s.start, s.end) for s in segments] == [
        (3.0, pytest.approx(19.8)),
        (pytest.approx(19.8), pytest.approx(38.8)),
        (pytest.approx(38.8), 51.0),
    ]


def test_merging_a_spoken_stream_gives_back_every_word_once() -> None:
    """Clips cut from one stream of words merge back to exactly that stream, in time order."""
    stream, clips = spoken_clips(words=400, seconds_per_word=0.3, clip=20.0, overlap=1.0)
    segments = merge_clips(clips, overlap_seconds=1.0)
    assert full_text(segments).split() == stream
    assert segments[0].start == clips[0].start
    assert segments[-1].end == clips[-1].end
    for previous, following in itertools.pairwise(segments):
        assert previous.start < previous.end == following.start < following.end


def test_clips_with_the_same_index_are_refused() -> None:
    """Two clips with one index are a caller error, not something to merge."""
    with pytest.raises(ValueError, match="appears twice"):
        merge_clips(
            [ClipText(0, 0.0, 20.0, "a"), ClipText(0, 19.0, 30.0, "b")],
            overlap_seconds=1.0,
        )
