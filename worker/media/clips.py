"""Cut audio into overlapping clips for the model, each cut at the quietest nearby moment.

A clip here is a slice of the audio the model hears at once (at most 30 s); it has nothing to do
with the overnight windows of `core.windows`. The job parameters keep their public names:
`params.window_seconds` is the clip length W, `params.overlap_seconds` the overlap O.

The rule, for clip length W, overlap O and search length S (S < W - O; by default 30% of W,
at least 2 s, at most (W - O) / 2):
- a file no longer than W is one clip [0, duration];
- otherwise each clip i starts at s_i (s_0 = 0) and its cut c_i is the quietest point of
  [s_i + W - O/2 - S, s_i + W - O/2] (energy = RMS squared averaged over 0.1 s; among equally
  quiet frames, the middle of the last quiet run), never later than duration - 1 s so the last
  clip is not a sliver;
- clip i ends at c_i + O/2 (so it is at most W long) and clip i + 1 starts at c_i - O/2;
- the clip that reaches the end is the last: [s_n, duration].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .envelope import Envelope

_SMOOTH_SECONDS = 0.1
# The last clip owns at least this much audio after the last cut, when the search allows.
_MIN_TAIL_SECONDS = 1.0
# Energies closer than this count as equally quiet (digital silence is exactly 0).
_QUIET_TIE = 1e-10


@dataclass(frozen=True)
class Clip:
    """One slice [start, end) of the audio, in seconds, numbered from 0."""

    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


def plan_clips(
    envelope: Envelope,
    *,
    clip_seconds: float = 20.0,
    overlap_seconds: float = 1.0,
    search_seconds: float | None = None,
) -> list[Clip]:
    """Cover the audio with clips of at most `clip_seconds`, cut in quiet moments."""
    if clip_seconds <= 0 or not 0 <= overlap_seconds < clip_seconds:
        raise ValueError("need clip_seconds > 0 and 0 <= overlap_seconds < clip_seconds")
    search = _search_seconds(clip_seconds, overlap_seconds, search_seconds)
    duration = envelope.duration
    energy = _smoothed_energy(envelope)
    half = overlap_seconds / 2
    clips: list[Clip] = []
    start = 0.0
    while duration - start > clip_seconds:
        latest = start + clip_seconds - half
        earliest = latest - search
        latest = min(latest, duration - _MIN_TAIL_SECONDS)
        cut = _quietest(energy, envelope.frame_seconds, earliest, latest)
        clips.append(Clip(len(clips), start, min(cut + half, start + clip_seconds)))
        start = cut - half
    clips.append(Clip(len(clips), start, duration))
    return clips


def cut_points(clips: list[Clip]) -> list[float]:
    """The cut between each pair of consecutive clips: the centre of their overlap."""
    return [(before.end + after.start) / 2 for before, after in pairwise(clips)]


def _search_seconds(clip: float, overlap: float, search: float | None) -> float:
    """The search length: given, or the last 30% of the clip (at least 2 s if it fits)."""
    if search is None:
        # Half of what is left after the overlap keeps every clip at least that long.
        return min(max(0.3 * clip, 2.0), (clip - overlap) / 2)
    if not 0 <= search < clip - overlap:
        raise ValueError("need 0 <= search_seconds < clip_seconds - overlap_seconds")
    return search


def _smoothed_energy(envelope: Envelope) -> np.ndarray:
    """Mean energy over about 0.1 s centred on each frame (shorter at the edges)."""
    energy = np.square(envelope.rms, dtype=np.float64)
    reach = max(0, round(_SMOOTH_SECONDS / envelope.frame_seconds) // 2)
    sums = np.concatenate(([0.0], np.cumsum(energy)))
    index = np.arange(energy.size)
    low = np.maximum(index - reach, 0)
    high = np.minimum(index + reach + 1, energy.size)
    smoothed: np.ndarray = (sums[high] - sums[low]) / (high - low)
    return smoothed


def _quietest(energy: np.ndarray, frame: float, earliest: float, latest: float) -> float:
    """The centre of the quietest frame whose centre lies in [earliest, latest]."""
    latest = max(latest, earliest)
    first = max(math.ceil(earliest / frame - 0.5), 0)
    last = min(math.floor(latest / frame - 0.5), energy.size - 1)
    if first > last:
        return latest
    segment = energy[first : last + 1]
    quiet = np.flatnonzero(segment <= segment.min() + _QUIET_TIE)
    # The last run of equally quiet frames, and its middle: as far from sound as possible.
    breaks = np.flatnonzero(np.diff(quiet) > 1)
    run_start = int(quiet[breaks[-1] + 1]) if breaks.size else int(quiet[0])
    middle = (run_start + int(quiet[-1])) // 2
    return (first + middle + 0.5) * frame
