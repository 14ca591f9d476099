"""Sample a video's frames at a steady rate over [start, end), decoding only that range.

For each instant we want the frame shown then: the last one whose timestamp is <= the instant
(timestamps, not frame counts, so variable frame rates are right). One decode loop serves every
file: it seeks to the keyframe before `start`, then for each next instant either decodes forward
or seeks again, whichever the cost model says decodes fewer frames (`advance_costs`):

    forward  = gap * fps                                  every frame up to the instant
    seek     = SEEK_COST_FRAMES + fps * (phase of the instant after its keyframe)

With constant gaps this picks, per file, between decoding sequentially and seeking per sample.
SEEK_COST_FRAMES was measured on 60-s 720p30 h264 files at 5.6 Mbit/s (2 cores): a seek plus
the frames it had to decode took 8-12 average frames' time beyond those frames. Sampling [0, 60):

    GOP    every   sequential            seek per sample          auto picks
    2 s    1 s     4.5 s (1,772 frames)  3.8 s (1,020 fr, 60 sk)  sequential (+16%)
    2 s    2 s     4.4 s                 1.0 s (60 fr, 30 sk)     seek
    10 s   1 s     4.1 s                 19.1 s (8,220 fr)        sequential
    10 s   4 s     3.7 s                 4.3 s (1,830 fr)         sequential

These rows used the average phase (keyframe_interval / 2); the first row was the one miss,
instants falling on keyframes every other second. The model now uses each instant's own phase
in the keyframe grid, so it seeks to the instants on keyframes and decodes forward to the others.
tests/worker/media/test_video_cost.py repeats the comparison on small files.

Every decoded frame is scaled to the sample size as soon as it is known to be shown, so at most
two full-size frames (the candidate and the next) are held outside the decoder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from av.codec.context import ThreadType
from av.container import InputContainer
from av.error import FFmpegError
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from core.errors import InvalidInput, TooLarge

from ._container import open_media
from .video_frames import SampledFrame, frame_to_rgb
from .video_probe import VideoProbe

# A seek's cost in average decoded frames: demuxer seek, decoder flush, refilling the frame
# threads, and a keyframe costing several times an average frame (measured 8-12; see above).
SEEK_COST_FRAMES = 10.0
# Frame threads make decoding about 1.5x faster on 2 cores; each holds one frame in flight.
_MAX_THREADS = 4
# A frame is shown until the next one; past the last one by more than this, the file is cut.
_TRUNCATION_SLACK = 1.0

Strategy = Literal["auto", "sequential", "seek"]
_Decoded = tuple[float, VideoFrame]
_Frames = Generator[_Decoded, None, None]


@dataclass
class DecodeStats:
    """What one `sample_frames` call did, for logs and tests."""

    decoded: int = 0  # frames out of the decoder
    seeks: int = 0
    converted: int = 0  # frames scaled to RGB samples


def sample_times(start: float, end: float, fps: float) -> list[float]:
    """The sampling instants start, start + 1/fps, ... that lie in [start, end)."""
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, not {fps}")
    if not 0 <= start <= end:
        raise ValueError(f"bad range [{start}, {end})")
    count = math.ceil((end - start) * fps)
    # Computed from k, not accumulated, so long ranges do not drift.
    times = (round(start + k / fps, 6) for k in range(count + 1))
    return [t for t in times if t < end]


def advance_costs(probe: VideoProbe, gap: float, at: float | None = None) -> tuple[float, float]:
    """Estimated frames decoded to move `gap` seconds ahead: (decoding forward, seeking).

    Without `at` a seek lands on average half a keyframe interval before the instant. With the
    instant `at`, its phase in a regular keyframe grid is used instead: instants on or just
    after a keyframe are cheap to seek to (1-fps sampling of 2-s GOPs hits a keyframe every
    other second, which the average misjudged by 40 % in bench/video.py).
    """
    forward = gap * probe.fps
    interval = probe.keyframe_interval
    if interval is None:
        return forward, math.inf  # keyframes unknown: a seek may land anywhere before
    if at is None:
        return forward, SEEK_COST_FRAMES + probe.fps * interval / 2
    phase = (at - probe.start_time) % interval
    if interval - phase < 1e-6:
        phase = 0.0  # on a keyframe, up to rounding
    return forward, SEEK_COST_FRAMES + probe.fps * phase


def sample_frames(
    path: Path,
    probe: VideoProbe,
    start: float,
    end: float,
    *,
    fps: float,
    max_side: int,
    strategy: Strategy = "auto",
    stats: DecodeStats | None = None,
) -> list[SampledFrame]:
    """The frame shown at each instant of `sample_times(start, end, fps)` before the video ends.

    Images are upright RGB with the longer side at most `max_side`. `strategy` forces decoding
    forward or seeking for every sample (for measurements); `stats` receives the counts.
    """
    if max_side < 2:
        raise ValueError(f"max_side must be at least 2, not {max_side}")
    instants = [t for t in sample_times(start, end, fps) if t < probe.duration]
    if not instants:
        return []
    with open_media(path, max_streams=probe.limits.max_streams, kind="video") as container:
        streams = container.streams
        stream = streams[probe.stream_index] if probe.stream_index < len(streams) else None
        if not isinstance(stream, VideoStream):
            raise InvalidInput("the media file changed after it was probed")
        stream.thread_type = ThreadType.AUTO
        stream.codec_context.thread_count = min(os.cpu_count() or 1, _MAX_THREADS)
        sampler = _Sampler(container, stream, probe, max_side, strategy, stats or DecodeStats())
        return [sampler.frame_at(t) for t in instants]


class _Sampler:
    """One decode position in one open stream, moved forward or by seeking."""

    def __init__(
        self,
        container: InputContainer,
        stream: VideoStream,
        probe: VideoProbe,
        max_side: int,
        strategy: Strategy,
        stats: DecodeStats,
    ) -> None:
        self._container, self._stream, self._probe = container, stream, probe
        self._max_side, self._strategy, self._stats = max_side, strategy, stats
        self._time_base = stream.time_base or Fraction(1, 1)
        self._frames: _Frames | None = None
        self._pending: _Decoded | None = None  # decoded, later than every instant so far
        self._shown: SampledFrame | None = None  # at the last instant, in this decode run
        self._cache: SampledFrame | None = None  # the last conversion, reused across seeks
        self._ended = False
        self._last_time = -math.inf  # of the last decoded frame
        self._last_end = 0.0  # when the last decoded frame stops being shown

    def frame_at(self, t: float) -> SampledFrame:
        """The frame shown at `t`: decode forward or seek, then take the last frame <= t."""
        if self._should_seek(t):
            self._seek(t)
        candidate: _Decoded | None = None
        while True:
            if self._pending is None:
                self._pending = self._next()
                if self._pending is None:
                    break
            if self._pending[0] > t:
                break
            candidate, self._pending = self._pending, None
        if candidate is not None:
            self._shown = self._convert(candidate)
        if self._shown is not None:
            if self._pending is None and self._cut_short(t):
                raise InvalidInput(
                    f"the video stream ends at {self._last_end:.1f} s but the file declares "
                    f"{self._probe.duration:.1f} s: it is truncated"
                )
            return self._shown
        if self._pending is not None:
            return self._convert(self._pending)  # `t` precedes the first frame: show that
        raise InvalidInput(f"the video has no frame at {t:.1f} s: the file is truncated")

    def _cut_short(self, t: float) -> bool:
        """Whether the stream, having ended, ended too early for the duration it declared."""
        # A container's duration also covers other streams: audio may outlast the picture.
        declared = self._probe.duration_source == "stream" or (
            self._probe.duration_source == "container" and not self._probe.has_audio
        )
        return declared and t >= self._last_end + _TRUNCATION_SLACK

    def _should_seek(self, t: float) -> bool:
        """Whether to seek before looking for the frame at `t` (the docstring's rule)."""
        if self._frames is None:
            return True  # to the keyframe before the range: never decode from the file start
        if self._ended or (self._pending is not None and self._pending[0] > t):
            return False  # the frame shown at `t` is already decoded
        if self._strategy != "auto":
            return self._strategy == "seek"
        forward, seek = advance_costs(self._probe, t - self._last_time, at=t)
        return seek < forward

    def _seek(self, t: float) -> None:
        """Seek so that the first decoded frame is at or before `t`, backing off if it is not."""
        back = 0.0
        while True:
            target = t - back
            self._restart()
            try:
                if target <= 0:
                    self._container.seek(0)  # the file's start, in AV_TIME_BASE
                else:
                    offset = (target + self._probe.start_time) / self._time_base
                    self._container.seek(math.floor(offset), stream=self._stream)
            except FFmpegError as error:
                if target <= 0:
                    raise InvalidInput("the video could not be read: seeking failed") from error
                back = math.inf
                continue
            self._stats.seeks += 1
            self._pending = self._next()
            if target <= 0 or (self._pending is not None and self._pending[0] <= t):
                return
            # Landed after `t` (B-frame reordering, sparse index) or past a truncated end.
            back = max(2 * back, self._probe.keyframe_interval or 1.0, 1.0)

    def _restart(self) -> None:
        """Forget the decode run: the next frames come after a seek."""
        if self._frames is not None:
            self._frames.close()
        self._frames = self._decode()
        self._pending, self._shown, self._ended = None, None, False

    def _next(self) -> _Decoded | None:
        """The next decoded frame, or None at the end of the stream."""
        assert self._frames is not None
        decoded = next(self._frames, None)
        self._ended = decoded is None
        return decoded

    def _decode(self) -> _Frames:
        """Decoded frames with their times (s from the probe's start_time) from here on."""
        limits, origin = self._probe.limits, self._probe.start_time
        try:
            for packet in self._container.demux(self._stream):
                for frame in packet.decode():
                    self._stats.decoded += 1
                    if not limits.admits(frame.width, frame.height):
                        raise TooLarge(
                            f"a video frame is {frame.width}x{frame.height}; the limit is "
                            f"{limits.max_width}x{limits.max_height}"
                        )
                    if frame.pts is not None:
                        time = round(float(frame.pts * self._time_base) - origin, 6)
                    else:  # no timestamp (some AVI): one frame after the previous one
                        time = round(max(self._last_time + 1 / self._probe.fps, 0.0), 6)
                    length = float(frame.duration * self._time_base) or 1 / self._probe.fps
                    self._last_time, self._last_end = time, time + length
                    yield time, frame
        except FFmpegError as error:
            raise InvalidInput(
                f"the video could not be decoded at {max(self._last_time, 0.0):.1f} s: "
                "the file is corrupt or truncated"
            ) from error

    def _convert(self, decoded: _Decoded) -> SampledFrame:
        """The decoded frame as a sample, converted once even if shown at many instants."""
        time, frame = decoded
        if self._cache is None or self._cache.time != time:
            image = frame_to_rgb(
                frame,
                rotation=self._probe.rotation,
                pixel_aspect=self._probe.pixel_aspect,
                max_side=self._max_side,
            )
            self._stats.converted += 1
            self._cache = SampledFrame(time=time, image=image)
        return self._cache
