"""The loudness of a whole audio stream, frame by frame, read in one streaming pass."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InvalidInput, TooLarge

from ._decoder import SAMPLE_RATE, decode_mono, open_probed_stream
from .probe import AudioProbe

_STAGING_FRAMES = 64
_TRUNCATION_SLACK_SECONDS = 0.25
_TRUNCATION_SLACK_FRACTION = 0.01


@dataclass(frozen=True, eq=False)
class Envelope:
    """Root-mean-square level per frame of the decoded 16 kHz mono audio."""

    rms: np.ndarray  # float32, one value per frame; the last frame may be partial
    frame_seconds: float
    duration: float  # decoded samples / 16000: the exact length of the decoded audio


def energy_envelope(path: Path, probe: AudioProbe, *, frame_seconds: float = 0.02) -> Envelope:
    """Decode the probed stream once and keep only its RMS level per `frame_seconds`."""
    frame = round(frame_seconds * SAMPLE_RATE)
    if frame < 1:
        raise ValueError("frame_seconds is shorter than one sample")
    expected = math.ceil((probe.duration or 0.0) * SAMPLE_RATE / frame)
    accumulator = _RmsAccumulator(frame, expected)
    limit = probe.limits.max_duration_seconds
    with open_probed_stream(path, probe) as (container, stream):
        for _start, samples in decode_mono(container, stream, probe.start_time):
            accumulator.add(samples)
            if accumulator.samples > limit * SAMPLE_RATE:
                raise TooLarge(f"the audio lasts longer than the limit of {limit:.0f} s")
    if accumulator.samples == 0:
        raise InvalidInput("the audio stream is empty")
    duration = accumulator.samples / SAMPLE_RATE
    _check_complete(probe, duration)
    return Envelope(accumulator.finish(), frame / SAMPLE_RATE, duration)


def _check_complete(probe: AudioProbe, decoded: float) -> None:
    """Refuse audio that ends well before the duration its file declares: truncated or damaged."""
    declared = probe.duration
    # A container's duration may be its video's, which can outlast the audio legitimately;
    # a duration guessed from the bitrate can be off many times over.
    source = probe.duration_source
    trusted = source == "stream" or (source == "container" and not probe.has_video)
    if declared is None or not trusted:
        return
    # Encoder delay and padding move the decoded end by tens of milliseconds, never seconds.
    if declared - decoded > max(_TRUNCATION_SLACK_SECONDS, _TRUNCATION_SLACK_FRACTION * declared):
        raise InvalidInput(
            f"the audio ends at {decoded:.1f} s but the file declares {declared:.1f} s: "
            "it is truncated or corrupt"
        )


class _RmsAccumulator:
    """Turns a stream of sample chunks into RMS per frame through a fixed staging buffer."""

    def __init__(self, frame: int, expected_frames: int) -> None:
        self._frame = frame
        # Chunks are small (one codec frame); batching them makes one numpy call per ~1.3 s.
        self._staging = np.empty(frame * _STAGING_FRAMES, dtype=np.float32)
        self._staged = 0
        # Sized from the declared duration so the array rarely grows (growing copies it).
        self._rms = np.empty(max(expected_frames + 2, 64), dtype=np.float32)
        self._count = 0
        self.samples = 0

    def add(self, samples: np.ndarray) -> None:
        """Take the next chunk of samples."""
        self.samples += samples.size
        while samples.size:
            taken = min(samples.size, self._staging.size - self._staged)
            self._staging[self._staged : self._staged + taken] = samples[:taken]
            self._staged += taken
            samples = samples[taken:]
            if self._staged == self._staging.size:
                self._drain()

    def finish(self) -> np.ndarray:
        """Return the RMS array, the last partial frame included."""
        self._drain()
        if self._staged:
            self._append(_rms(self._staging[: self._staged].reshape(1, -1)))
            self._staged = 0
        if self._rms.size - self._count > 1024:
            return self._rms[: self._count].copy()
        return self._rms[: self._count]

    def _drain(self) -> None:
        """Turn the whole frames in the staging buffer into RMS values, keeping the rest."""
        whole = self._staged - self._staged % self._frame
        if whole:
            self._append(_rms(self._staging[:whole].reshape(-1, self._frame)))
            rest = self._staged - whole
            self._staging[:rest] = self._staging[whole : self._staged]
            self._staged = rest

    def _append(self, values: np.ndarray) -> None:
        """Append RMS values, growing the array by half when it is full."""
        end = self._count + values.size
        if end > self._rms.size:
            grown = np.empty(max(end, self._rms.size * 3 // 2), dtype=np.float32)
            grown[: self._count] = self._rms[: self._count]
            self._rms = grown
        self._rms[self._count : end] = values
        self._count = end


def _rms(blocks: np.ndarray) -> np.ndarray:
    """Root mean square of each row."""
    squares: np.ndarray = np.einsum("ij,ij->i", blocks, blocks)
    rms: np.ndarray = np.sqrt(squares / blocks.shape[1]).astype(np.float32)
    return rms
