"""Cues from merged segments, and SRT, WebVTT and text written from them and read back."""

from __future__ import annotations

import html
import itertools

import pytest
import srt
import webvtt

from tests.worker.kinds.speech import spoken_clips
from worker.kinds.audio.transcript import full_text, merge_clips
from worker.kinds.subtitles import Cue, Segment, split_into_cues, to_srt, to_text, to_vtt

LONG = (
    "Good evening and welcome to the late edition of the evening news, where tonight we look "
    "at the harbour renovation, the results of the regional election, a surprising turn in "
    "the weather, and an interview with the conductor of the city orchestra about the season."
)


def _spoken_segments() -> tuple[list[Segment], float]:
    """Segments merged from two minutes of speech heard by 20 s clips overlapping by 1 s."""
    _, clips = spoken_clips(words=400, seconds_per_word=0.3, clip=20.0, overlap=1.0)
    return merge_clips(clips, overlap_seconds=1.0), clips[-1].end


def _check_timing(cues: list[Cue], segments: list[Segment], duration: float) -> None:
    """Every cue has text and time, cues follow each other, each inside a segment and the media."""
    for cue in cues:
        assert cue.text.strip()
        assert 0 <= cue.start < cue.end <= duration
        assert any(s.start - 5e-4 <= cue.start and cue.end <= s.end + 5e-4 for s in segments)
    for previous, following in itertools.pairwise(cues):
        assert previous.end <= following.start


def test_long_text_wraps_into_cues_of_at_most_two_lines_of_42_characters() -> None:
    """A long segment becomes several cues of at most two lines of at most 42 characters."""
    segments = [Segment(0.0, 18.0, LONG)]
    cues = split_into_cues(segments, duration=18.0)
    assert len(cues) > 1
    for cue in cues:
        lines = cue.text.split("\n")
        assert 1 <= len(lines) <= 2
        assert all(0 < len(line) <= 42 for line in lines)
    assert " ".join(cue.text for cue in cues).split() == LONG.split()
    _check_timing(cues, segments, 18.0)


def test_no_cue_lasts_longer_than_the_limit_when_the_words_allow() -> None:
    """A slow segment is split further so no cue lasts longer than max_cue_seconds."""
    segments = [Segment(2.0, 30.0, "we waited a long time in the quiet hall for someone to come")]
    cues = split_into_cues(segments, duration=30.0, max_cue_seconds=7.0)
    assert all(cue.end - cue.start <= 7.0 + 1e-3 for cue in cues)
    assert cues[0].start == 2.0
    assert cues[-1].end == 30.0
    _check_timing(cues, segments, 30.0)


def test_a_single_word_may_outlast_the_limit() -> None:
    """One word cannot be split, so it keeps its whole segment even past max_cue_seconds."""
    cues = split_into_cues([Segment(0.0, 12.0, "Yes.")], duration=12.0)
    assert cues == [Cue(0.0, 12.0, "Yes.")]


def test_short_cues_are_lengthened_to_the_minimum() -> None:
    """A cue with few characters lasts min_cue_seconds when the segment has room for it."""
    text = "x" * 40 + " ok"
    cues = split_into_cues([Segment(0.0, 4.0, text)], duration=4.0, max_lines=1)
    assert cues == [Cue(0.0, 3.2, "x" * 40), Cue(3.2, 4.0, "ok")]
    # Without room for two minimum cues, time is shared by characters alone.
    cues = split_into_cues([Segment(0.0, 1.1, text)], duration=1.1, max_lines=1)
    assert cues == [Cue(0.0, 1.025, "x" * 40), Cue(1.025, 1.1, "ok")]


def test_a_word_longer_than_a_line_is_hard_split() -> None:
    """A word longer than a line is cut into line-long pieces."""
    word = "x" * 100
    cues = split_into_cues([Segment(0.0, 5.0, word)], duration=5.0)
    lines = [line for cue in cues for line in cue.text.split("\n")]
    assert lines == ["x" * 42, "x" * 42, "x" * 16]


def test_times_are_clamped_into_the_media_duration() -> None:
    """Cues end by the media's duration, and a segment past the end gives none."""
    segments = [
        Segment(-0.5, 10.0, "before the start"),
        Segment(10.0, 20.4, "past the end"),
        Segment(20.4, 25.0, "nothing left"),
    ]
    cues = split_into_cues(segments, duration=20.0)
    assert cues[0].start == 0.0
    assert cues[-1].end == 20.0
    assert "nothing" not in " ".join(cue.text for cue in cues)
    _check_timing(cues, segments, 20.0)


def test_cues_carry_the_merged_transcript_words_in_order() -> None:
    """The words of all cues, in order, are the merged transcript's words."""
    segments, duration = _spoken_segments()
    cues = split_into_cues(segments, duration=duration)
    assert " ".join(cue.text for cue in cues).split() == full_text(segments).split()
    _check_timing(cues, segments, duration)


def test_srt_reads_back_with_the_same_texts_and_times() -> None:
    """srt.parse reads the SRT back to the cues' texts and times, to the millisecond."""
    segments, duration = _spoken_segments()
    cues = split_into_cues(segments, duration=duration)
    parsed = list(srt.parse(to_srt(cues)))
    assert [s.index for s in parsed] == list(range(1, len(cues) + 1))
    assert [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in parsed] == [
        (pytest.approx(c.start, abs=5e-4), pytest.approx(c.end, abs=5e-4), c.text) for c in cues
    ]


def test_vtt_reads_back_with_the_same_texts_and_times() -> None:
    """webvtt-py reads the WebVTT back to the cues' texts and times, to the millisecond."""
    segments, duration = _spoken_segments()
    segments.append(Segment(duration, duration + 3.0, "salt & pepper <b> --> end"))
    cues = split_into_cues(segments, duration=duration + 3.0)
    parsed = webvtt.from_string(to_vtt(cues))
    assert [
        (c.start_time.in_milliseconds(), c.end_time.in_milliseconds(), html.unescape(c.raw_text))
        for c in parsed.captions
    ] == [(round(c.start * 1000), round(c.end * 1000), c.text) for c in cues]
    assert cues[-1].text == "salt & pepper <b> --> end"


def test_srt_and_vtt_hold_the_same_cues() -> None:
    """The two subtitle files show the same cues at the same times."""
    segments, duration = _spoken_segments()
    cues = split_into_cues(segments, duration=duration)
    from_srt = [
        (round(s.start.total_seconds() * 1000), round(s.end.total_seconds() * 1000), s.content)
        for s in srt.parse(to_srt(cues))
    ]
    from_vtt = [
        (c.start_time.in_milliseconds(), c.end_time.in_milliseconds(), html.unescape(c.raw_text))
        for c in webvtt.from_string(to_vtt(cues)).captions
    ]
    assert from_srt == from_vtt


def test_text_has_one_stamped_line_per_segment() -> None:
    """The text transcript is one `[hh:mm:ss] text` line per segment, its start floored."""
    segments = [Segment(0.0, 19.5, "hello there"), Segment(19.5, 3725.9, "goodbye")]
    assert to_text(segments, duration=3725.0) == "[00:00:00] hello there\n[00:00:19] goodbye\n"
