"""Decode one audio stream to 16 kHz mono float32, chunk by chunk, with each chunk's time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.error import FFmpegError

from core.errors import InvalidInput

from ._container import open_media
from .probe import AudioProbe

SAMPLE_RATE = 16000

# (start in seconds from the probe's start_time, or None if unknown; float32 mono samples)
Chunk = tuple[float | None, np.ndarray]


@contextmanager
def open_probed_stream(
    path: Path, probe: AudioProbe
) -> Iterator[tuple[InputContainer, AudioStream]]:
    """Reopen the probed file and return its container and the probed audio stream."""
    with open_media(path, max_streams=probe.limits.max_streams) as container:
        streams = container.streams
        stream = streams[probe.stream_index] if probe.stream_index < len(streams) else None
        if not isinstance(stream, AudioStream):
            raise InvalidInput("the media file changed after it was probed")
        yield container, stream


def decode_mono(container: InputContainer, stream: AudioStream, origin: float) -> Iterator[Chunk]:
    """Yield the stream from the container's current position as 16 kHz mono float32 chunks."""
    resampler: av.AudioResampler | None = None
    source: tuple[str, str, int] | None = None
    position = 0.0
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base is not None:
                position = float(packet.pts * packet.time_base) - origin
            for frame in packet.decode():
                shape = (frame.format.name, frame.layout.name, frame.sample_rate)
                if resampler is None or shape != source:
                    # A stream may change rate or layout midway; PyAV's resampler cannot follow.
                    if resampler is not None:
                        yield from _resample(resampler, None, origin)
                    resampler, source = _new_resampler(), shape
                yield from _resample(resampler, frame, origin)
        if resampler is not None:
            yield from _resample(resampler, None, origin)
    except FFmpegError as error:
        raise InvalidInput(
            f"the audio could not be decoded at {max(position, 0.0):.1f} s: "
            "the file is corrupt or truncated"
        ) from error


def _new_resampler() -> av.AudioResampler:
    """A resampler to the one format every caller wants."""
    return av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)


def _resample(
    resampler: av.AudioResampler, frame: AudioFrame | None, origin: float
) -> Iterator[Chunk]:
    """Resample one frame (None flushes) and yield the resulting chunks with their times."""
    for out in resampler.resample(frame):
        start = None
        if out.pts is not None and out.time_base is not None:
            start = float(out.pts * out.time_base) - origin
        # Packed float mono: one row of samples.
        yield start, out.to_ndarray()[0]
