"""Clip planning: cuts in silences, full coverage, bounded lengths, exact overlaps."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from testkit.media_samples import tone_bursts, write_audio
from worker.media import (
    SAMPLE_RATE,
    Clip,
    Envelope,
    cut_points,
    energy_envelope,
    plan_clips,
    probe_audio,
)

FRAME = 0.02
EPS = 1e-9


def _envelope(samples: np.ndarray) -> Envelope:
    """The envelope `energy_envelope` would compute for these 16 kHz samples."""
    size = round(FRAME * SAMPLE_RATE)
    padded = np.concatenate((samples, np.zeros(-samples.size % size, dtype=np.float32)))
    frames = padded.reshape(-1, size).astype(np.float64)
    # The last frame's RMS over its real samples only, as the decoder-side accumulator does.
    counts = np.full(frames.shape[0], size)
    counts[-1] = samples.size - size * (frames.shape[0] - 1)
    rms = np.sqrt((frames**2).sum(axis=1) / counts).astype(np.float32)
    return Envelope(rms, FRAME, samples.size / SAMPLE_RATE)


def _speech_like(duration: float, seed: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Tone bursts of 0.8-1.5 s between silences of 0.3-0.8 s, ending in 1.5 s of silence."""
    rng = np.random.default_rng(seed)
    bursts: list[tuple[float, float]] = []
    t = float(rng.uniform(0.3, 0.8))
    while t + 1.5 < duration - 1.5:
        length = float(rng.uniform(0.8, 1.5))
        bursts.append((t, t + length))
        t += length + float(rng.uniform(0.3, 0.8))
    samples = tone_bursts(bursts, duration, noise=0.003, seed=seed)
    return samples, bursts


def _check_plan(clips: list[Clip], duration: float, clip: float, overlap: float) -> None:
    """Assert the invariants every plan has: coverage, lengths, overlaps, numbering."""
    assert [c.index for c in clips] == list(range(len(clips)))
    assert clips[0].start == 0.0
    assert clips[-1].end == duration
    for c in clips:
        assert 0 < c.duration <= clip + EPS
    for before, after in pairwise(clips):
        assert after.start > before.start
        assert before.end - after.start == pytest.approx(overlap, abs=EPS)
    assert cut_points(clips) == [pytest.approx((a.end + b.start) / 2) for a, b in pairwise(clips)]


@pytest.mark.parametrize(("clip", "seed"), [(5.0, 1), (10.0, 2), (20.0, 3), (30.0, 4)])
def test_every_cut_lies_in_a_silence(clip: float, seed: int) -> None:
    """With tone bursts between known silences, every cut point falls inside a silence."""
    samples, bursts = _speech_like(300.0, seed)
    clips = plan_clips(_envelope(samples), clip_seconds=clip)
    _check_plan(clips, 300.0, clip, 1.0)
    for cut in cut_points(clips):
        assert not any(start <= cut < end for start, end in bursts), cut


def test_cuts_in_a_decoded_file_lie_in_silences(tmp_path: Path) -> None:
    """The same holds end to end: an mp3 written, decoded to an envelope, and planned."""
    samples, bursts = _speech_like(90.0, seed=7)
    path = write_audio(tmp_path / "speech.mp3", samples, container="mp3")
    probe = probe_audio(path)
    clips = plan_clips(energy_envelope(path, probe), clip_seconds=20.0)
    assert len(clips) >= 5
    for cut in cut_points(clips):
        assert not any(start <= cut < end for start, end in bursts), cut


@pytest.mark.parametrize("duration", [5.0, 20.0, 21.0, 59.0, 600.0])
@pytest.mark.parametrize("clip", [5.0, 10.0, 20.0, 30.0])
def test_clips_cover_the_audio_within_bounds(duration: float, clip: float) -> None:
    """For each length and clip size the plan covers [0, duration] with a bounded count."""
    samples = tone_bursts([(t, t + 2.0) for t in range(0, int(duration), 3)], duration, noise=0.01)
    clips = plan_clips(_envelope(samples), clip_seconds=clip)
    _check_plan(clips, duration, clip, 1.0)
    if duration <= clip:
        assert clips == [Clip(0, 0.0, duration)]
        return
    search = min(max(0.3 * clip, 2.0), (clip - 1.0) / 2)
    # Each clip but the last moves the start on by W - O - S at least and W - O at most.
    assert len(clips) >= math.ceil((duration - 1.0) / (clip - 1.0))
    assert len(clips) < 2 + (duration - clip) / (clip - 1.0 - search)


def test_twenty_one_seconds_make_two_clips() -> None:
    """21 s with 20-s clips gives two clips, the second no sliver."""
    clips = plan_clips(_envelope(tone_bursts([], 21.0, noise=0.05)), clip_seconds=20.0)
    assert len(clips) == 2
    assert clips[1].duration >= 1.5


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_pure_noise_or_digital_silence_still_gives_valid_clips(noise: float) -> None:
    """Without any quiet moment (or with nothing but), the plan is still valid and deterministic."""
    envelope = _envelope(tone_bursts([], 123.4, noise=noise, seed=5))
    clips = plan_clips(envelope, clip_seconds=20.0, overlap_seconds=2.0)
    _check_plan(clips, 123.4, 20.0, 2.0)
    assert clips == plan_clips(envelope, clip_seconds=20.0, overlap_seconds=2.0)


def test_digital_silence_is_cut_in_its_middle() -> None:
    """When a whole silence is equally quiet, the cut goes to its middle, away from both tones."""
    samples = tone_bursts([(0.0, 16.0), (18.0, 30.0)], 30.0)
    cuts = cut_points(plan_clips(_envelope(samples), clip_seconds=20.0))
    assert cuts == [pytest.approx(17.0, abs=0.06)]


def test_the_last_clip_is_not_a_sliver() -> None:
    """The quietest point would leave 0.9 s after the last cut; the cut moves to keep 1 s."""
    samples = tone_bursts([], 20.3, noise=0.05, seed=2)
    quiet = slice(round(19.3 * SAMPLE_RATE), round(19.5 * SAMPLE_RATE))
    samples[quiet] = 0.0
    clips = plan_clips(_envelope(samples), clip_seconds=20.0)
    assert len(clips) == 2
    assert 20.3 - cut_points(clips)[0] >= 1.0 - FRAME
    _check_plan(clips, 20.3, 20.0, 1.0)


def test_overlap_and_search_are_respected() -> None:
    """A 3-s overlap is exact, and a 1-s search keeps every clip at least W - O - S long."""
    envelope = _envelope(tone_bursts([(t, t + 1.0) for t in range(0, 100, 2)], 100.0, noise=0.01))
    clips = plan_clips(envelope, clip_seconds=12.0, overlap_seconds=3.0, search_seconds=1.0)
    _check_plan(clips, 100.0, 12.0, 3.0)
    assert all(c.duration >= 12.0 - 1.0 - FRAME for c in clips[:-1])


@pytest.mark.parametrize(
    ("clip", "overlap", "search"), [(0.0, 0.0, None), (5.0, 5.0, None), (10.0, 1.0, 9.0)]
)
def test_impossible_parameters_are_refused(
    clip: float, overlap: float, search: float | None
) -> None:
    """A zero clip, an overlap as long as the clip, or a search past the overlap is an error."""
    envelope = _envelope(tone_bursts([], 30.0))
    with pytest.raises(ValueError, match="need"):
        plan_clips(envelope, clip_seconds=clip, overlap_seconds=overlap, search_seconds=search)
