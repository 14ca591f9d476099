"""Audio and video files the tests make themselves with PyAV: tones at known times, damaged copies.

The API is shared by the media, pipeline and end-to-end tests, so keep it stable:

- `tone_bursts(bursts, duration)` -> float32 samples with a tone in each (start, end) interval.
- `write_audio(path, samples, container=...)` -> an encoded file (see `AUDIO_CONTAINERS`).
- `write_video(path, seconds=..., audio=...)` -> an mp4 with a moving picture and optional AAC.
- `write_multitrack_audio(path, tracks)` -> a Matroska file with one audio stream per track.
- `long_audio(path, minutes)` -> a long file encoded block by block: by default 10-s blocks with
  tones in `LONG_PATTERN_BURSTS`, so tones lie in [1, 4) and [6, 9) of every 10 s.
- `truncated_copy`, `corrupt_copy` -> damaged copies of a file.

Video (colours tell when a frame was shown):
- `write_color_video(path, segments=[(seconds, rgb), ...], ...)` -> solid colours changing at known
  times; fixed GOP, codec, container, rotation (display matrix), a bottom half of another colour.
- `scheduled_color(segments, t)` -> the colour `write_color_video` shows at `t`.
- `write_vfr_video(path, frame_times, colors)` -> one frame at each given time (variable rate).
- `write_4k_video(path)` -> 4 s of 3840x2160 colours (`FOUR_K_SEGMENTS`), 1-s GOPs.
- `write_audio_with_cover(path)` -> an mp4 of audio whose only video stream is cover art.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.audio.stream import AudioStream
from av.stream import Disposition
from av.video.stream import VideoStream

SAMPLE_RATE = 16000

# container -> (PyAV muxer name, default codec); every codec here has an encoder in PyAV 18.1.
AUDIO_CONTAINERS: dict[str, tuple[str, str]] = {
    "wav": ("wav", "pcm_s16le"),
    "flac": ("flac", "flac"),
    "mp3": ("mp3", "libmp3lame"),
    "m4a": ("ipod", "aac"),
    "ogg": ("ogg", "libopus"),
    "webm": ("webm", "libopus"),
    "aac": ("adts", "aac"),
    "mka": ("matroska", "flac"),
}
# libopus takes only these rates; anything else is resampled to 48 kHz by PyAV's encoder.
_OPUS_RATES = frozenset({8000, 12000, 16000, 24000, 48000})


def tone_bursts(
    bursts: list[tuple[float, float]],
    duration: float,
    *,
    rate: int = SAMPLE_RATE,
    freq: float = 440.0,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Float32 mono samples: a 0.5-amplitude sine in each (start, end) burst, else silence.

    `noise` > 0 adds Gaussian noise of that standard deviation everywhere (seeded by `seed`).
    """
    count = round(duration * rate)
    samples = np.zeros(count, dtype=np.float64)
    for start, end in bursts:
        first, stop = max(round(start * rate), 0), min(round(end * rate), count)
        t = np.arange(first, stop, dtype=np.float64) / rate
        samples[first:stop] = 0.5 * np.sin(2 * np.pi * freq * t)
    if noise > 0:
        samples += np.random.default_rng(seed).normal(0.0, noise, count)
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def write_audio(
    path: Path,
    samples: np.ndarray,
    *,
    rate: int = SAMPLE_RATE,
    container: str,
    codec: str | None = None,
    channels: int = 1,
) -> Path:
    """Encode mono (1-D, copied to every channel) or (channels, n) samples into `container`.

    `codec` defaults to the container's entry in `AUDIO_CONTAINERS`; `codec="vorbis"` (ogg only)
    always writes stereo, the one layout FFmpeg's Vorbis encoder accepts.
    """
    muxer, default_codec = AUDIO_CONTAINERS[container]
    codec = codec or default_codec
    if codec == "vorbis" and samples.ndim == 1:
        channels = 2  # FFmpeg's own Vorbis encoder takes stereo only.
    with av.open(str(path), "w", format=muxer) as output:
        stream = _add_audio_stream(output, codec, rate, channels)
        _encode(output, stream, [_planar(samples, channels)], rate)
    return path


def write_multitrack_audio(
    path: Path, tracks: list[np.ndarray], *, rate: int = SAMPLE_RATE
) -> Path:
    """A Matroska file with one mono FLAC audio stream per entry of `tracks`, in order."""
    with av.open(str(path), "w", format="matroska") as output:
        streams = [_add_audio_stream(output, "flac", rate, 1) for _ in tracks]
        for stream, samples in zip(streams, tracks, strict=True):
            _encode(output, stream, [_planar(samples, 1)], rate, flush=False)
        for stream in streams:
            for packet in stream.encode(None):
                output.mux(packet)
    return path


def write_video(
    path: Path,
    *,
    seconds: float,
    audio: np.ndarray | None,
    size: tuple[int, int] = (160, 120),
    fps: int = 10,
    codec: Literal["h264", "mpeg4"] = "h264",
    audio_rate: int = SAMPLE_RATE,
) -> Path:
    """An mp4 whose picture changes every frame, with `audio` (mono samples) as an AAC track."""
    width, height = size
    with av.open(str(path), "w", format="mp4") as output:
        video = output.add_stream(codec, rate=fps)
        assert isinstance(video, VideoStream)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = _add_audio_stream(output, "aac", audio_rate, 1) if audio is not None else None
        for index in range(round(seconds * fps)):
            picture = np.zeros((height, width, 3), dtype=np.uint8)
            picture[:, : (index * 7) % width] = (index * 5 % 256, 80, 160)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            for packet in video.encode(frame):
                output.mux(packet)
        for packet in video.encode(None):
            output.mux(packet)
        if sound is not None and audio is not None:
            _encode(output, sound, [_planar(audio, 1)], audio_rate)
    return path


# The default pattern of `long_audio`: 10 s with tones in [1, 4) and [6, 9), silence elsewhere.
LONG_PATTERN_SECONDS = 10.0
LONG_PATTERN_BURSTS = [(1.0, 4.0), (6.0, 9.0)]


def long_audio(
    path: Path,
    minutes: float,
    *,
    container: str = "mp3",
    pattern: np.ndarray | None = None,
    rate: int = SAMPLE_RATE,
) -> Path:
    """A long mono file made by encoding `pattern` (default: the long pattern) over and over."""
    block = tone_bursts(LONG_PATTERN_BURSTS, LONG_PATTERN_SECONDS, rate=rate)
    if pattern is not None:
        block = pattern.astype(np.float32)
    total = round(minutes * 60 * rate)

    def blocks() -> Iterable[np.ndarray]:
        written = 0
        while written < total:
            piece = block[: total - written]
            written += piece.size
            yield piece[np.newaxis, :]

    muxer, codec = AUDIO_CONTAINERS[container]
    with av.open(str(path), "w", format=muxer) as output:
        stream = _add_audio_stream(output, codec, rate, 1)
        _encode(output, stream, blocks(), rate)
    return path


def truncated_copy(source: Path, target: Path, *, keep: float = 0.5) -> Path:
    """A copy of `source` cut after the first `keep` fraction of its bytes."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def corrupt_copy(
    source: Path, target: Path, *, start: float = 0.4, length: float = 0.2, seed: int = 0
) -> Path:
    """A copy of `source` with `length` of its bytes, from `start` (fractions), set to garbage."""
    data = bytearray(source.read_bytes())
    first, count = int(len(data) * start), int(len(data) * length)
    data[first : first + count] = np.random.default_rng(seed).bytes(count)
    target.write_bytes(bytes(data))
    return target


def _add_audio_stream(
    output: av.container.OutputContainer, codec: str, rate: int, channels: int
) -> AudioStream:
    """Add an audio stream, moving opus to 48 kHz when it cannot take `rate`."""
    is_opus = av.Codec(codec, "w").name == "libopus"
    stream_rate = 48000 if is_opus and rate not in _OPUS_RATES else rate
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
    stream = output.add_stream(codec, rate=stream_rate, layout=layout)
    assert isinstance(stream, AudioStream)
    if codec == "vorbis":
        # FFmpeg's own Vorbis encoder is marked experimental.
        stream.codec_context.options = {"strict": "experimental"}
    return stream


def _planar(samples: np.ndarray, channels: int) -> np.ndarray:
    """Samples as a (channels, n) float32 array, copying a 1-D signal to every channel."""
    if samples.ndim == 1:
        return np.tile(samples.astype(np.float32), (channels, 1))
    return samples.astype(np.float32)


def _encode(
    output: av.container.OutputContainer,
    stream: AudioStream,
    blocks: Iterable[np.ndarray],
    rate: int,
    *,
    flush: bool = True,
) -> None:
    """Encode planar float blocks in 1-second frames (PyAV resamples to the codec's needs)."""
    layout = stream.layout.name
    pts = 0
    # Write the header even if no packet follows: zero samples still make a valid (empty) file.
    output.start_encoding()
    for block in blocks:
        for first in range(0, block.shape[1], rate):
            piece = np.ascontiguousarray(block[:, first : first + rate])
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts, frame.time_base = pts, Fraction(1, rate)
            pts += piece.shape[1]
            for packet in stream.encode(frame):
                output.mux(packet)
    if flush:
        for packet in stream.encode(None):
            output.mux(packet)


# Video: solid colours that change at known times, so a sampled frame's colour tells when it was
# shown. Colours are RGB; decoding through yuv420p shifts them by a few levels.
Color = tuple[int, int, int]
# container -> PyAV muxer name for `write_color_video`.
VIDEO_CONTAINERS = {"mp4": "mp4", "mkv": "matroska", "avi": "avi"}


def scheduled_color(segments: list[tuple[float, Color]], t: float) -> Color:
    """The colour `write_color_video(segments=...)` shows at `t` seconds (the last one after)."""
    end = 0.0
    for seconds, color in segments:
        end += seconds
        if t < end:
            return color
    return segments[-1][1]


def write_color_video(
    path: Path,
    *,
    segments: list[tuple[float, Color]],
    fps: int = 10,
    size: tuple[int, int] = (160, 120),
    codec: Literal["h264", "mpeg4"] = "h264",
    gop: int | None = None,
    audio: np.ndarray | None = None,
    rotation: int = 0,
    bottom: Color | None = None,
    container: str = "mp4",
    preset: str = "veryfast",
    audio_rate: int = SAMPLE_RATE,
) -> Path:
    """A video of solid colours: each (seconds, colour) segment follows the previous one.

    `gop` fixes the keyframe interval in frames (no extra keyframes at colour changes); None
    keeps the encoder's default (x264: 250 and a keyframe at each change). `rotation` (0, 90,
    180, 270) is written as the stream's display matrix (mp4 only): players turn the stored
    picture that many degrees clockwise, as FFmpeg's `-display_rotation -rotation` would.
    `bottom` paints the lower half of every stored frame in that colour (to see rotations).
    `audio` (mono samples) becomes an AAC track. Odd sizes are stored as yuv444p with h264
    (x264 refuses them in yuv420p) and as yuv420p with mpeg4.
    """
    width, height = size
    odd = width % 2 or height % 2
    with av.open(str(path), "w", format=VIDEO_CONTAINERS[container]) as output:
        video = output.add_stream(codec, rate=fps)
        assert isinstance(video, VideoStream)
        video.width, video.height = width, height
        video.pix_fmt = "yuv444p" if odd and codec == "h264" else "yuv420p"
        _set_gop(video, codec, gop, preset)
        if rotation:
            # PyAV's angle is counter-clockwise: the one FFmpeg reads back from the frames.
            video.set_display_rotation(-rotation)
        sound = _add_audio_stream(output, "aac", audio_rate, 1) if audio is not None else None
        index, end = 0, 0.0
        for seconds, color in segments:
            picture = np.empty((height, width, 3), dtype=np.uint8)
            picture[:] = color
            if bottom is not None:
                picture[height // 2 :] = bottom
            end += seconds
            # Frame i is shown from i / fps: it takes the colour scheduled then.
            while index / fps < end - 1e-9:
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, fps)
                for packet in video.encode(frame):
                    output.mux(packet)
                index += 1
        for packet in video.encode(None):
            output.mux(packet)
        if sound is not None and audio is not None:
            _encode(output, sound, [_planar(audio, 1)], audio_rate)
    return path


def write_vfr_video(
    path: Path,
    frame_times: list[float],
    colors: list[Color],
    *,
    end: float | None = None,
    size: tuple[int, int] = (160, 120),
    codec: Literal["h264", "mpeg4"] = "h264",
) -> Path:
    """An mp4 with one frame of `colors[i]` at each `frame_times[i]` (s, millisecond timestamps).

    The last frame lasts until `end` (default: one average interval later). No B-frames: with
    them x264's decoding timestamps make the mp4 muxer declare a wrong track duration.
    """
    width, height = size
    ticks = [round(t * 1000) for t in frame_times]
    last = round(end * 1000) if end is not None else ticks[-1] + max(ticks[-1] // len(ticks), 1)
    with av.open(str(path), "w", format="mp4") as output:
        video = output.add_stream(codec, rate=max(1, round(len(ticks) / max(last / 1000, 1e-3))))
        assert isinstance(video, VideoStream)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        video.codec_context.max_b_frames = 0
        _set_gop(video, codec, None, "veryfast")
        packets = []
        for tick, color in zip(ticks, colors, strict=True):
            picture = np.empty((height, width, 3), dtype=np.uint8)
            picture[:] = color
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = tick, Fraction(1, 1000)
            packets += video.encode(frame)
        packets += video.encode(None)
        # x264 does not carry frame durations over; the muxer takes the track's end from them.
        following = dict(zip(ticks, [*ticks[1:], last], strict=True))
        for packet in packets:
            assert packet.pts is not None
            packet.duration = following[packet.pts] - packet.pts
            output.mux(packet)
    return path


# The 4K sample: a few seconds of colours, encoded fast (about a second per second of video).
FOUR_K_SEGMENTS: list[tuple[float, Color]] = [
    (1.0, (200, 30, 30)),
    (1.0, (30, 200, 30)),
    (1.0, (30, 30, 200)),
    (1.0, (200, 200, 30)),
]


def write_4k_video(path: Path, *, fps: int = 24) -> Path:
    """A 4-second 3840x2160 h264 mp4 of `FOUR_K_SEGMENTS` with 1-s GOPs, preset ultrafast."""
    return write_color_video(
        path,
        segments=FOUR_K_SEGMENTS,
        fps=fps,
        size=(3840, 2160),
        gop=fps,
        preset="ultrafast",
    )


def _set_gop(video: VideoStream, codec: str, gop: int | None, preset: str) -> None:
    """Fix the keyframe interval to `gop` frames (None: the encoder's default) and the preset."""
    if codec == "h264":
        options = {"preset": preset}
        if gop is not None:
            options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        video.codec_context.options = options
    elif gop is not None:
        # FFmpeg's mpeg4 encoder adds keyframes at scene changes unless the threshold is huge.
        video.codec_context.options = {"sc_threshold": "1000000000"}
    if gop is not None:
        video.codec_context.gop_size = gop


def write_audio_with_cover(path: Path, *, seconds: float = 1.0) -> Path:
    """An mp4 of silent AAC with a 64x64 JPEG cover (a video stream flagged attached_pic)."""
    with av.open(str(path), "w", format="mp4") as output:
        sound = _add_audio_stream(output, "aac", SAMPLE_RATE, 1)
        cover = output.add_stream("mjpeg", rate=1)
        assert isinstance(cover, VideoStream)
        cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
        cover.disposition = Disposition.attached_pic
        picture = np.full((64, 64, 3), 100, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        for packet in [*cover.encode(frame), *cover.encode(None)]:
            output.mux(packet)
        _encode(output, sound, [_planar(tone_bursts([], seconds), 1)], SAMPLE_RATE)
    return path
