"""Decode one slice of an audio stream, seeking near it instead of decoding from the start."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.error import FFmpegError

from ._decoder import SAMPLE_RATE, Chunk, decode_mono, open_probed_stream
from .probe import AudioProbe

# Seek this far before the slice: decoders need earlier packets to settle (mp3's bit
# reservoir, AAC and Opus overlap), and keyframe seeks land before the target anyway.
_PREROLL_SECONDS = 1.0


def decode_clip(path: Path, probe: AudioProbe, start: float, end: float) -> np.ndarray:
    """Return the 16 kHz mono float32 samples of [start, end), zero past the stream's end."""
    if not 0 <= start < end:
        raise ValueError(f"bad clip [{start}, {end})")
    first = round(start * SAMPLE_RATE)
    out = np.zeros(round((end - start) * SAMPLE_RATE), dtype=np.float32)
    seek_to = start - _PREROLL_SECONDS
    if seek_to > 0:
        with open_probed_stream(path, probe) as (container, stream):
            if _fill_after_seek(container, stream, probe, out, first, seek_to):
                return out
        out[:] = 0  # the seek failed or landed after the slice: decode from the start
    with open_probed_stream(path, probe) as (container, stream):
        _fill(decode_mono(container, stream, probe.start_time), out, first, 0)
    return out


def _fill_after_seek(
    container: InputContainer,
    stream: AudioStream,
    probe: AudioProbe,
    out: np.ndarray,
    first: int,
    seek_to: float,
) -> bool:
    """Seek to `seek_to` seconds and fill `out`; False if the audio cannot be placed by then."""
    target = probe.start_time + seek_to
    try:
        container.seek(int(target / stream.time_base) if stream.time_base else 0, stream=stream)
    except FFmpegError:
        return False
    chunks = decode_mono(container, stream, probe.start_time)
    for chunk_start, samples in chunks:
        if chunk_start is None or round(chunk_start * SAMPLE_RATE) > first:
            return False
        # Place by the first chunk's timestamp, then count samples: later timestamps may be
        # rounded (Matroska keeps milliseconds).
        cursor = round(chunk_start * SAMPLE_RATE)
        _fill(itertools.chain([(chunk_start, samples)], chunks), out, first, cursor)
        return True
    return False


def _fill(chunks: Iterator[Chunk], out: np.ndarray, first: int, cursor: int) -> None:
    """Copy decoded chunks, the first at sample `cursor`, into `out` (which starts at `first`)."""
    stop = first + out.size
    for _start, samples in chunks:
        low, high = max(cursor, first), min(cursor + samples.size, stop)
        if high > low:
            out[low - first : high - first] = samples[low - cursor : high - cursor]
        cursor += samples.size
        if cursor >= stop:
            return
