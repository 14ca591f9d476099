"""Decoding every supported container to 16 kHz mono float32, and choosing the audio stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidInput
from testkit.media_samples import (
    tone_bursts,
    write_audio,
    write_multitrack_audio,
    write_video,
)
from worker.media import SAMPLE_RATE, Envelope, decode_clip, energy_envelope, probe_audio

BURSTS = [(0.5, 1.5), (2.5, 3.0)]
SECONDS = 4.0
# AAC adds up to a frame of padding at the end (1024 samples = 64 ms at 16 kHz) that the mp4
# demuxer does not trim; FFmpeg's own CLI decodes the same length.
AAC_PADDING = 1024 / SAMPLE_RATE

# (container, codec or None for the default, input rate, duration and onset tolerance in s)
CASES = [
    ("wav", None, 16000, 0.03, 0.003),
    ("wav", None, 44100, 0.03, 0.003),
    ("flac", None, 16000, 0.03, 0.003),
    ("flac", None, 48000, 0.03, 0.003),
    ("mp3", None, 16000, 0.03, 0.003),
    ("mp3", None, 44100, 0.03, 0.003),
    ("m4a", None, 16000, 0.03 + AAC_PADDING, 0.003),
    ("ogg", None, 16000, 0.03, 0.003),
    ("ogg", "vorbis", 16000, 0.03, 0.003),
    ("webm", None, 16000, 0.03, 0.003),
    ("mka", None, 16000, 0.03, 0.003),
    # Raw ADTS has nowhere to record the encoder's 1024-sample priming: it stays in the audio.
    ("aac", None, 16000, 0.03 + 2 * AAC_PADDING, 0.003 + AAC_PADDING),
]


# The codec each container's default encoder writes, as the probe names it.
CODEC_NAMES = {
    "wav": "pcm_s16le",
    "flac": "flac",
    "mp3": "mp3",
    "m4a": "aac",
    "ogg": "opus",
    "webm": "opus",
    "mka": "flac",
    "aac": "aac",
}


def _onset(samples: np.ndarray, after: float = 0.0) -> float:
    """Seconds from `after` to the first sample louder than 0.05."""
    first = round(after * SAMPLE_RATE)
    return float(np.argmax(np.abs(samples[first:]) > 0.05)) / SAMPLE_RATE + after


def _level(envelope: Envelope, start: float, end: float) -> float:
    """Largest RMS of the envelope's frames inside [start, end)."""
    frames = envelope.rms[
        round(start / envelope.frame_seconds) : round(end / envelope.frame_seconds)
    ]
    return float(frames.max())


@pytest.mark.parametrize(
    ("container", "codec", "rate", "duration_tolerance", "onset_tolerance"),
    CASES,
    ids=[f"{c[0]}-{c[1] or 'default'}-{c[2]}" for c in CASES],
)
def test_container_decodes_to_mono_16k_with_tones_in_place(
    tmp_path: Path,
    container: str,
    codec: str | None,
    rate: int,
    duration_tolerance: float,
    onset_tolerance: float,
) -> None:
    """Each container decodes to 16 kHz mono float32 of the written length, tones where written."""
    samples = tone_bursts(BURSTS, SECONDS, rate=rate)
    path = write_audio(
        tmp_path / f"a.{container}", samples, rate=rate, container=container, codec=codec
    )
    probe = probe_audio(path)
    envelope = energy_envelope(path, probe)
    decoded = decode_clip(path, probe, 0.0, envelope.duration)

    assert probe.has_video is False
    assert probe.codec == (codec or CODEC_NAMES[container])
    assert decoded.dtype == np.float32
    assert decoded.size == round(envelope.duration * SAMPLE_RATE)
    assert abs(envelope.duration - SECONDS) <= duration_tolerance, envelope.duration
    # A 0.5-amplitude sine has an RMS of 0.354; silence is digital zero plus codec noise.
    assert _level(envelope, 0.6, 1.4) > 0.3
    assert _level(envelope, 2.6, 2.9) > 0.3
    assert _level(envelope, 1.6, 2.4) < 0.01
    assert _level(envelope, 3.1, 3.9) < 0.01
    assert abs(_onset(decoded) - 0.5) <= onset_tolerance
    assert abs(_onset(decoded, after=1.6) - 2.5) <= onset_tolerance


def test_stereo_is_mixed_down_to_mono(tmp_path: Path) -> None:
    """A stereo file with one tone on both channels decodes to one channel, FFmpeg's -3 dB mix."""
    samples = tone_bursts(BURSTS, SECONDS)
    path = write_audio(tmp_path / "s.wav", samples, container="wav", channels=2)
    probe = probe_audio(path)
    envelope = energy_envelope(path, probe)
    assert probe.channels == 2
    # FFmpeg's default downmix (as `ffmpeg -ac 1`) adds each channel at -3 dB: 0.354 * 1.414.
    assert _level(envelope, 0.6, 1.4) == pytest.approx(0.5, abs=0.01)


def test_video_with_audio_decodes_its_audio_track(tmp_path: Path) -> None:
    """In an mp4 with H.264 video and AAC audio, the audio stream is found and decoded."""
    audio = tone_bursts([(0.5, 1.5)], 3.0)
    path = write_video(tmp_path / "v.mp4", seconds=3.0, audio=audio)
    probe = probe_audio(path)
    envelope = energy_envelope(path, probe)
    assert probe.has_video is True
    assert probe.codec == "aac"
    assert probe.stream_index == 1  # the video is stream 0
    assert abs(envelope.duration - 3.0) <= 0.03 + AAC_PADDING
    assert _level(envelope, 0.6, 1.4) > 0.3
    assert _level(envelope, 1.6, 2.9) < 0.01


def test_video_without_audio_is_refused(tmp_path: Path) -> None:
    """An mp4 with only MPEG-4 video is refused: there is nothing to listen to."""
    path = write_video(tmp_path / "v.mp4", seconds=2.0, audio=None, codec="mpeg4")
    with pytest.raises(InvalidInput, match="the file has no audio stream"):
        probe_audio(path)


@pytest.fixture
def two_tracks(tmp_path: Path) -> Path:
    """A Matroska file whose first audio stream has a tone early and the second a tone late."""
    first = tone_bursts([(0.5, 1.5)], SECONDS)
    second = tone_bursts([(2.5, 3.5)], SECONDS)
    return write_multitrack_audio(tmp_path / "two.mka", [first, second])


def test_first_audio_stream_is_the_default(two_tracks: Path) -> None:
    """Without `stream`, the first of two equal audio streams is chosen."""
    probe = probe_audio(two_tracks)
    envelope = energy_envelope(two_tracks, probe)
    assert probe.stream_index == 0
    assert _level(envelope, 0.6, 1.4) > 0.3
    assert _level(envelope, 2.6, 3.4) < 0.01


def test_stream_one_picks_the_second_audio_stream(two_tracks: Path) -> None:
    """`stream=1` counts audio streams from 0 and decodes the second one."""
    probe = probe_audio(two_tracks, stream=1)
    envelope = energy_envelope(two_tracks, probe)
    assert probe.stream_index == 1
    assert _level(envelope, 0.6, 1.4) < 0.01
    assert _level(envelope, 2.6, 3.4) > 0.3


def test_missing_stream_number_names_the_count(two_tracks: Path) -> None:
    """`stream=5` in a file with two audio streams is refused, saying there are two."""
    with pytest.raises(InvalidInput, match="audio stream 5 does not exist: the file has 2 audio"):
        probe_audio(two_tracks, stream=5)


def test_stream_index_is_global_among_all_streams(tmp_path: Path) -> None:
    """`stream=0` in a video file is its first audio stream, reported by its global index."""
    path = write_video(tmp_path / "v.mp4", seconds=1.0, audio=tone_bursts([], 1.0))
    assert probe_audio(path, stream=0).stream_index == 1
    with pytest.raises(InvalidInput, match=r"the file has 1 audio stream$"):
        probe_audio(path, stream=1)


def test_probe_reports_the_container_and_codec(tmp_path: Path) -> None:
    """The probe names the demuxer, codec, rate, channels and the declared duration."""
    path = write_audio(
        tmp_path / "a.flac", tone_bursts([], 2.0, rate=44100), rate=44100, container="flac"
    )
    probe = probe_audio(path)
    assert (probe.container, probe.codec, probe.sample_rate, probe.channels) == (
        "flac",
        "flac",
        44100,
        1,
    )
    assert probe.duration == pytest.approx(2.0, abs=0.001)
    assert probe.duration_source == "stream"
