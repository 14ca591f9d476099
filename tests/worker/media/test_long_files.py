"""Long files: envelope memory does not grow with length; slices seek instead of scanning."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from av.audio.stream import AudioStream
from av.container import InputContainer

import worker.media.decode as decode_module
from testkit.media_samples import AUDIO_CONTAINERS, tone_bursts, write_audio
from worker.media import SAMPLE_RATE, decode_clip, energy_envelope, probe_audio
from worker.media._decoder import Chunk, decode_mono

# Memory a 30-minute decode may need beyond a 1-minute one, besides the larger envelope.
MEMORY_MARGIN = 64 * 1024


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Print a measurement into the test output even when pytest captures it."""
    with capsys.disabled():
        print(f"\n    {line}")


def _peak_bytes(path: Path) -> tuple[int, int]:
    """Peak traced memory of one `energy_envelope` call, and the envelope's own size."""
    probe = probe_audio(path)
    tracemalloc.start()
    try:
        envelope = energy_envelope(path, probe)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, envelope.rms.nbytes


def test_envelope_memory_does_not_grow_with_length(
    one_minute_mp3: Path, thirty_minute_mp3: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From 1 to 30 minutes, peak traced memory grows by the envelope's growth and little more."""
    peak_short, envelope_short = _peak_bytes(one_minute_mp3)
    peak_long, envelope_long = _peak_bytes(thirty_minute_mp3)
    _report(
        capsys,
        f"envelope peak memory: 1 min {peak_short / 1024:.0f} KiB, "
        f"30 min {peak_long / 1024:.0f} KiB "
        f"(envelopes {envelope_short / 1024:.0f} and {envelope_long / 1024:.0f} KiB)",
    )
    assert peak_long - peak_short <= envelope_long - envelope_short + MEMORY_MARGIN


def test_slice_near_the_end_seeks_instead_of_decoding_everything(
    thirty_minute_mp3: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 20-s slice at 29 min decodes a few hundred chunks, not the whole file, and far faster."""
    probe = probe_audio(thirty_minute_mp3)
    chunks = 0
    real_decode_mono = decode_mono

    def counting_decode_mono(
        container: InputContainer, stream: AudioStream, origin: float
    ) -> Iterator[Chunk]:
        nonlocal chunks
        for chunk in real_decode_mono(container, stream, origin):
            chunks += 1
            yield chunk

    started = time.perf_counter()
    envelope = energy_envelope(thirty_minute_mp3, probe)
    full_seconds = time.perf_counter() - started
    monkeypatch.setattr(decode_module, "decode_mono", counting_decode_mono)
    started = time.perf_counter()
    samples = decode_clip(thirty_minute_mp3, probe, 1740.5, 1760.5)
    slice_seconds = time.perf_counter() - started
    # An mp3 frame at 16 kHz holds 576 samples: the whole file is about 50,000 of them.
    full_chunks = round(envelope.duration * SAMPLE_RATE / 576)
    _report(
        capsys,
        f"30-min mp3: full decode {full_seconds:.2f} s ({envelope.duration / full_seconds:.0f}x "
        f"real time), slice at 29 min {slice_seconds * 1000:.0f} ms, "
        f"{chunks} of ~{full_chunks} chunks",
    )
    assert samples.size == 20 * SAMPLE_RATE
    assert chunks < full_chunks / 50
    assert slice_seconds * 10 < full_seconds


def test_slice_of_a_long_file_is_sample_accurate(thirty_minute_mp3: Path) -> None:
    """At 29 min, the pattern's tones start and stop at the right sample (within 3 ms)."""
    probe = probe_audio(thirty_minute_mp3)
    samples = decode_clip(thirty_minute_mp3, probe, 1740.5, 1760.5)
    # The pattern (10 s) has tones in [1, 4) and [6, 9): here from 0.5, 5.5, 10.5 and 15.5 s.
    for expected in (0.5, 5.5, 10.5, 15.5):
        quiet = round((expected - 0.4) * SAMPLE_RATE)  # inside the silence before the tone
        onset = quiet + int(np.argmax(np.abs(samples[quiet:]) > 0.05))
        assert onset / SAMPLE_RATE == pytest.approx(expected, abs=0.003)


SEEK_CASES = sorted(set(AUDIO_CONTAINERS) - {"aac"})


@pytest.mark.parametrize("container", SEEK_CASES)
def test_slice_after_a_seek_matches_the_written_tone(tmp_path: Path, container: str) -> None:
    """In every container, a slice that needs a seek finds a tone onset within 3 ms."""
    samples = tone_bursts([(7.25, 8.0)], 12.0)
    path = write_audio(tmp_path / f"a.{container}", samples, container=container)
    probe = probe_audio(path)
    clip = decode_clip(path, probe, 6.0, 9.0)
    onset = float(np.argmax(np.abs(clip) > 0.05)) / SAMPLE_RATE
    assert clip.size == 3 * SAMPLE_RATE
    assert onset == pytest.approx(1.25, abs=0.003)
    # The seeking decode and a decode from the start agree on the tone's level.
    start = decode_clip(path, probe, 0.0, 9.0)[6 * SAMPLE_RATE :]
    assert float(np.sqrt(np.mean(clip**2))) == pytest.approx(
        float(np.sqrt(np.mean(start**2))), rel=0.02
    )


def test_slice_past_the_end_is_padded_with_zeros(tmp_path: Path) -> None:
    """A slice running 1 s past the end has exactly the asked length, zeros after the end."""
    path = write_audio(tmp_path / "a.flac", tone_bursts([(0.0, 4.0)], 4.0), container="flac")
    clip = decode_clip(path, probe_audio(path), 3.0, 5.0)
    assert clip.size == 2 * SAMPLE_RATE
    assert np.abs(clip[: SAMPLE_RATE - 16]).min() >= 0.0
    assert float(np.abs(clip[:SAMPLE_RATE]).max()) > 0.4
    assert not clip[SAMPLE_RATE:].any()


def test_slice_length_is_exact_for_fractional_bounds(tmp_path: Path) -> None:
    """The slice has round((end - start) * 16000) samples for bounds off the sample grid."""
    path = write_audio(tmp_path / "a.wav", tone_bursts([], 5.0, noise=0.1), container="wav")
    probe = probe_audio(path)
    for start, end in [(0.0, 1.23456), (1.5000001, 3.7), (2.99999, 4.99999)]:
        assert decode_clip(path, probe, start, end).size == round((end - start) * SAMPLE_RATE)


def test_bad_slice_bounds_are_refused(tmp_path: Path) -> None:
    """An empty or negative slice is a programming error, not bad input."""
    path = write_audio(tmp_path / "a.wav", tone_bursts([], 1.0), container="wav")
    probe = probe_audio(path)
    with pytest.raises(ValueError, match="bad clip"):
        decode_clip(path, probe, 1.0, 1.0)
    with pytest.raises(ValueError, match="bad clip"):
        decode_clip(path, probe, -1.0, 1.0)
