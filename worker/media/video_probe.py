"""Admit a video file: its container, its video stream, its size, length and keyframe spacing.

Probing reads the header, then demuxes (without decoding) the first `_SCAN_SECONDS` of video
packets to estimate the keyframe interval and spot a variable frame rate, and decodes the first
frame to learn the rotation (FFmpeg attaches the container's display matrix to decoded frames).
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from av.container import InputContainer
from av.error import FFmpegError
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from core.errors import InvalidInput, TooLarge, UnsupportedMedia

from ._container import open_media

# "stream": the video stream's own; "container": the whole file's (perhaps a longer audio
# track); "packets": found by demuxing to the end, as the file declared none.
DurationSource = Literal["stream", "container", "packets"]

# Demux at most this much video from the start to estimate keyframe spacing and frame timing;
# the packet cap bounds the work on high-frame-rate streams.
_SCAN_SECONDS = 20.0
_SCAN_PACKETS = 2400
# Consecutive frame intervals differing by more than this (s, or fraction of the median) mean a
# variable frame rate; Matroska's millisecond timestamps jitter by 1 ms on constant-rate video.
_VFR_ABSOLUTE = 0.002
_VFR_RELATIVE = 0.1


@dataclass(frozen=True)
class VideoLimits:
    """Limits on a video file, checked while probing and again on every decoded frame."""

    max_duration_seconds: float = 4 * 3600
    # The picture may be stored in either orientation: portrait 2160x3840 passes as well.
    max_width: int = 7680
    max_height: int = 4320
    # Each stream costs FFmpeg memory while it reads the header: refuse stream bombs.
    max_streams: int = 32

    def admits(self, width: int, height: int) -> bool:
        """Whether a stored picture of `width` x `height` fits, in either orientation."""
        return (width <= self.max_width and height <= self.max_height) or (
            height <= self.max_width and width <= self.max_height
        )


@dataclass(frozen=True)
class VideoProbe:
    """What probing found: the chosen video stream and how it is displayed."""

    duration: float  # seconds from `start_time` to the end of the video (or of the container)
    stream_index: int  # index among all the container's streams
    codec: str  # FFmpeg's codec name ("h264", "hevc", "mpeg4", "vp9", "av1")
    container: str  # FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    width: int  # as displayed: after the sample aspect ratio and the rotation
    height: int
    rotation: int  # degrees the stored picture is turned clockwise for display: 0, 90, 180, 270
    fps: float  # average frame rate
    variable_frame_rate: bool | None  # from the first packets' timestamps; None if too few
    # Mean seconds between the keyframes of the scanned start, or the time after the last one
    # if longer (a lower bound, e.g. one keyframe in the scan); None if no packet is flagged.
    keyframe_interval: float | None
    has_audio: bool
    # Presentation time (s) of the first frame in the stream's own timeline: time 0 of samples.
    start_time: float = 0.0
    duration_source: DurationSource = "stream"
    pixel_aspect: Fraction = Fraction(1)  # the stored pixels' width/height (anamorphic video)
    limits: VideoLimits = field(default_factory=VideoLimits)


@dataclass
class _Scan:
    """What the first packets showed."""

    first_frame: VideoFrame | None = None
    pts: list[float] = field(default_factory=list)
    keyframes: list[float] = field(default_factory=list)  # their times (s)
    end: float | None = None  # end (s) of the last scanned packet


def probe_video(path: Path, *, limits: VideoLimits | None = None) -> VideoProbe:
    """Open `path` safely and describe its video stream, refusing what we will not read."""
    limits = limits or VideoLimits()
    with open_media(path, max_streams=limits.max_streams, kind="video") as container:
        if len(container.streams) > limits.max_streams:
            raise TooLarge(f"the file has more streams than the limit of {limits.max_streams}")
        stream = _choose_stream(container)
        context = stream.codec_context
        if context is None or not context.name:
            raise UnsupportedMedia("the video codec of the file is not supported")
        width, height = context.width, context.height
        if width <= 0 or height <= 0:
            raise InvalidInput("the video stream does not declare its picture size")
        if not limits.admits(width, height):
            limit = f"{limits.max_width}x{limits.max_height}"
            raise TooLarge(f"the video is {width}x{height}; the limit is {limit}")
        scan = _scan_start(container, stream)
        if scan.first_frame is None or scan.first_frame.pts is None:
            raise InvalidInput("the video stream has no decodable frame")
        time_base = stream.time_base or Fraction(1, 1)
        start_time = float(scan.first_frame.pts * time_base)
        duration, source = _duration(container, stream, start_time, scan, limits)
        if duration > limits.max_duration_seconds:
            raise TooLarge(
                f"the video lasts {duration:.0f} s; the limit is "
                f"{limits.max_duration_seconds:.0f} s"
            )
        # FFmpeg's angle is counter-clockwise; odd angles snap to quarter turns, flips are ignored.
        rotation = round(-scan.first_frame.rotation / 90) * 90 % 360
        pixel_aspect = stream.sample_aspect_ratio or Fraction(1)
        shown_width = max(1, round(width * pixel_aspect))
        if rotation in (90, 270):
            shown_width, height = height, shown_width
        return VideoProbe(
            duration=duration,
            stream_index=stream.index,
            codec=context.codec.canonical_name,
            container=container.format.name,
            width=shown_width,
            height=height,
            rotation=rotation,
            fps=_average_fps(stream, scan),
            variable_frame_rate=_is_variable_rate(scan.pts),
            keyframe_interval=_keyframe_interval(scan),
            has_audio=bool(container.streams.audio),
            start_time=start_time,
            duration_source=source,
            pixel_aspect=pixel_aspect,
            limits=limits,
        )


def _choose_stream(container: InputContainer) -> VideoStream:
    """The video stream FFmpeg ranks best, ignoring cover art and other attached pictures."""
    videos = [s for s in container.streams.video if not (s.disposition & Disposition.attached_pic)]
    if not videos:
        raise InvalidInput("the file has no video stream")
    best = container.streams.best("video")
    return best if isinstance(best, VideoStream) and best in videos else videos[0]


def _scan_start(container: InputContainer, stream: VideoStream) -> _Scan:
    """Demux the stream's first packets, decoding only until the first frame comes out."""
    scan = _Scan()
    time_base = stream.time_base or Fraction(1, 1)
    first: float | None = None
    try:
        for count, packet in enumerate(container.demux(stream)):
            if scan.first_frame is None:
                # The flush packet at the end returns the frames a short file left buffered.
                scan.first_frame = next(iter(packet.decode()), None)
            if packet.pts is None:
                continue
            pts = float(packet.pts * time_base)
            first = pts if first is None else min(first, pts)
            scan.pts.append(pts)
            if packet.is_keyframe:
                scan.keyframes.append(pts)
            end = pts + float(packet.duration * time_base) if packet.duration else pts
            scan.end = end if scan.end is None else max(scan.end, end)
            if scan.first_frame is not None and (
                pts - first > _SCAN_SECONDS or count >= _SCAN_PACKETS
            ):
                break
    except FFmpegError as error:
        message = "the media could not be read: its first video packets are corrupt"
        raise InvalidInput(message) from error
    return scan


def _duration(
    container: InputContainer,
    stream: VideoStream,
    start_time: float,
    scan: _Scan,
    limits: VideoLimits,
) -> tuple[float, DurationSource]:
    """Seconds of video after `start_time`: the stream's, else the container's, else scanned."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base), "stream"
    if container.duration is not None:
        # AV_TIME_BASE units, counted from the container's start.
        start = (container.start_time or 0) / 1_000_000
        return max(container.duration / 1_000_000 + start - start_time, 0.0), "container"
    # A live recording (WebM from a browser) declares no length: demux to the end.
    end = scan.end or start_time
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and stream.time_base is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * stream.time_base))
                if end - start_time > limits.max_duration_seconds:
                    break  # long enough to refuse: no need to read the rest
    except FFmpegError as error:
        raise InvalidInput("the media could not be read: its video packets are corrupt") from error
    return max(end - start_time, 0.0), "packets"


def _average_fps(stream: VideoStream, scan: _Scan) -> float:
    """The declared average frame rate, else the scanned packets' rate, else 25."""
    rate = stream.average_rate or stream.guessed_rate
    if rate:
        return float(rate)
    if len(scan.pts) >= 2 and scan.end is not None and scan.end > min(scan.pts):
        return len(scan.pts) / (scan.end - min(scan.pts))
    return 25.0


def _is_variable_rate(pts: list[float]) -> bool | None:
    """Whether the intervals between consecutive frames differ; None below three frames."""
    times = sorted(pts)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if len(gaps) < 2:
        return None
    median = statistics.median(gaps)
    tolerance = max(_VFR_ABSOLUTE, _VFR_RELATIVE * median)
    return any(abs(gap - median) > tolerance for gap in gaps)


def _keyframe_interval(scan: _Scan) -> float | None:
    """Mean seconds between scanned keyframes, or after the last one if longer; None if none."""
    if not scan.keyframes or scan.end is None:
        return None
    first, last = min(scan.keyframes), max(scan.keyframes)
    mean = (last - first) / (len(scan.keyframes) - 1) if len(scan.keyframes) > 1 else 0.0
    return max(mean, scan.end - last)
