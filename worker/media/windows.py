"""Cut audio into overlapping windows for the model, each cut at the quietest nearby moment.

The rule, for window length W, overlap O and search length S (S < W - O; by default 30% of W,
at least 2 s, at most (W - O) / 2):
- a file no longer than W is one window [0, duration];
- otherwise each window i starts at s_i (s_0 = 0) and its cut c_i is the quietest point of
  [s_i + W - O/2 - S, s_i + W - O/2] (energy = RMS squared averaged over 0.1 s; among equally
  quiet frames, the middle of the last quiet run), never later than duration - 1 s so the last
  window is not a sliver;
- window i ends at c_i + O/2 (so it is at most W long) and window i + 1 starts at c_i - O/2;
- the window that reaches the end is the last: [s_n, duration].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .envelope import Envelope

_SMOOTH_SECONDS = 0.1
# The last window owns at least this much audio after the last cut, when the search allows.
_MIN_TAIL_SECONDS = 1.0
# Energies closer than this count as equally quiet (digital silence is exactly 0).
_QUIET_TIE = 1e-10


@dataclass(frozen=True)
class Window:
    """One slice [start, end) of the audio, in seconds, numbered from 0."""

    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


def plan_windows(
    envelope: Envelope,
    *,
    window_seconds: float = 20.0,
    overlap_seconds: float = 1.0,
    search_seconds: float | None = None,
) -> list[Window]:
    """Cover the audio with windows of at most `window_seconds`, cut in quiet moments."""
    if window_seconds <= 0 or not 0 <= overlap_seconds < window_seconds:
        raise ValueError("need window_seconds > 0 and 0 <= overlap_seconds < window_seconds")
    search = _search_seconds(window_seconds, overlap_seconds, search_seconds)
    duration = envelope.duration
    energy = _smoothed_energy(envelope)
    half = overlap_seconds / 2
    windows: list[Window] = []
    start = 0.0
    while duration - start > window_seconds:
        latest = start + window_seconds - half
        earliest = latest - search
        latest = min(latest, duration - _MIN_TAIL_SECONDS)
        cut = _quietest(energy, envelope.frame_seconds, earliest, latest)
        windows.append(Window(len(windows), start, min(cut + half, start + window_seconds)))
        start = cut - half
    windows.append(Window(len(windows), start, duration))
    return windows


def cut_points(windows: list[Window]) -> list[float]:
    """The cut between each pair of consecutive windows: the centre of their overlap."""
    return [(before.end + after.start) / 2 for before, after in pairwise(windows)]


def _search_seconds(window: float, overlap: float, search: float | None) -> float:
    """The search length: given, or the last 30% of the window (at least 2 s if it fits)."""
    if search is None:
        # Half of what is left after the overlap keeps every window at least that long.
        return min(max(0.3 * window, 2.0), (window - overlap) / 2)
    if not 0 <= search < window - overlap:
        raise ValueError("need 0 <= search_seconds < window_seconds - overlap_seconds")
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
