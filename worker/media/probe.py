"""Admit an audio or video file: its container, its audio stream, its length, against limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from av.audio.stream import AudioStream
from av.container import InputContainer
from av.error import FFmpegError
from av.stream import Disposition

from core.errors import InvalidInput, TooLarge, UnsupportedMedia

from ._container import open_media

DurationSource = Literal["stream", "container", "bitrate"]
# FFmpeg's warning when it guessed the duration from the file size.
_ESTIMATED = "Estimating duration from bitrate"
# Packets read from the start to find the first decoded sample's timestamp before giving up.
_FIRST_FRAME_PACKETS = 64


@dataclass(frozen=True)
class AudioLimits:
    """Limits on a media file, checked while probing and again while decoding."""

    max_duration_seconds: float = 4 * 3600
    # Each stream costs FFmpeg memory while it reads the header: refuse stream bombs.
    max_streams: int = 32


@dataclass(frozen=True)
class AudioProbe:
    """What probing found: the chosen audio stream and what the container says about it."""

    duration: float | None  # seconds as declared by the stream or container; None if neither
    stream_index: int  # index among all the container's streams, not only the audio ones
    codec: str  # FFmpeg's codec name ("mp3", "aac", "opus"), not its decoder's ("mp3float")
    container: str  # FFmpeg's demuxer name, e.g. "wav" or "mov,mp4,m4a,3gp,3g2,mj2"
    sample_rate: int
    channels: int
    has_video: bool  # a real video track; cover art in an mp3 or m4a does not count
    # Timestamp (s) of the first decoded sample: time 0 of envelopes and clips.
    start_time: float = 0.0
    # Where `duration` came from: "stream" (this audio stream), "container" (the longest
    # stream, perhaps a video), "bitrate" (FFmpeg's guess from file size and bitrate, as for
    # raw AAC or an mp3 without a VBR header) or None. Decoding checks the first two.
    duration_source: DurationSource | None = None
    limits: AudioLimits = field(default_factory=AudioLimits)


def probe_audio(
    path: Path, *, stream: int | None = None, limits: AudioLimits | None = None
) -> AudioProbe:
    """Open `path` safely and describe its audio stream (`stream` counts audio streams from 0)."""
    limits = limits or AudioLimits()
    log: list[str] = []
    with open_media(path, max_streams=limits.max_streams, log=log) as container:
        if len(container.streams) > limits.max_streams:
            raise TooLarge(f"the file has more streams than the limit of {limits.max_streams}")
        chosen = _choose_stream(container, stream)
        context = chosen.codec_context
        if context is None or not context.name:
            raise UnsupportedMedia("the audio codec of the file is not supported")
        duration, source = _declared_duration(container, chosen)
        if duration is not None and any(line.startswith(_ESTIMATED) for line in log):
            source = "bitrate"
        # A guess can be off many times over (VBR audio starting quiet); decoding enforces the
        # limit on real time anyway.
        if duration is not None and source != "bitrate" and duration > limits.max_duration_seconds:
            raise TooLarge(
                f"the audio lasts {duration:.0f} s; the limit is "
                f"{limits.max_duration_seconds:.0f} s"
            )
        return AudioProbe(
            duration=duration,
            stream_index=chosen.index,
            codec=context.codec.canonical_name,
            container=container.format.name,
            sample_rate=context.sample_rate,
            channels=context.channels,
            has_video=any(
                not (s.disposition & Disposition.attached_pic) for s in container.streams.video
            ),
            start_time=_first_frame_time(container, chosen),
            duration_source=source,
            limits=limits,
        )


def _choose_stream(container: InputContainer, stream: int | None) -> AudioStream:
    """Return the requested audio stream, or the one FFmpeg ranks best (default tracks first)."""
    audio = list(container.streams.audio)
    if not audio:
        raise InvalidInput("the file has no audio stream")
    if stream is None:
        best = container.streams.best("audio")
        return best if isinstance(best, AudioStream) else audio[0]
    if not 0 <= stream < len(audio):
        count = f"{len(audio)} audio stream" + ("" if len(audio) == 1 else "s")
        raise InvalidInput(f"audio stream {stream} does not exist: the file has {count}")
    return audio[stream]


def _declared_duration(
    container: InputContainer, stream: AudioStream
) -> tuple[float | None, DurationSource | None]:
    """The stream's duration in seconds, else the container's, else None; and which it was."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base), "stream"
    if container.duration is not None:
        return container.duration / 1_000_000, "container"  # AV_TIME_BASE units
    return None, None


def _first_frame_time(container: InputContainer, stream: AudioStream) -> float:
    """The timestamp of the stream's first decoded frame; encoder delay makes it differ from 0."""
    try:
        for count, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                if frame.pts is not None and frame.time_base is not None:
                    return float(frame.pts * frame.time_base)
            if count >= _FIRST_FRAME_PACKETS:
                break
    except FFmpegError as error:
        message = "the media could not be read: its first audio packets are corrupt"
        raise InvalidInput(message) from error
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0
