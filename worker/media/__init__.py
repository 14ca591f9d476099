"""Media reading for audio jobs: safe probing, streaming decode to 16 kHz mono, window planning.

probe_audio(path, stream=, limits=) -> AudioProbe     refuses what we will not read
energy_envelope(path, probe) -> Envelope              one streaming pass: RMS per 20 ms
plan_windows(envelope, window_seconds=...) -> [Window] cuts in the quietest moments
decode_window(path, probe, start, end) -> samples     seeks; decodes only near the slice

Video (video.caption):
probe_video(path, limits=) -> VideoProbe              size, rotation, fps, keyframe spacing
sample_times(start, end, fps) -> [float]              the sampling instants in [start, end)
sample_frames(path, probe, start, end, fps=, max_side=) -> [SampledFrame]   decodes only the range
jpeg_thumbnail(image, max_side=, quality=) -> bytes
"""

from ._decoder import SAMPLE_RATE
from .decode import decode_window
from .envelope import Envelope, energy_envelope
from .probe import AudioLimits, AudioProbe, probe_audio
from .video_frames import SampledFrame, jpeg_thumbnail
from .video_probe import VideoLimits, VideoProbe, probe_video
from .video_sample import DecodeStats, sample_frames, sample_times
from .windows import Window, cut_points, plan_windows

__all__ = [
    "SAMPLE_RATE",
    "AudioLimits",
    "AudioProbe",
    "DecodeStats",
    "Envelope",
    "SampledFrame",
    "VideoLimits",
    "VideoProbe",
    "Window",
    "cut_points",
    "decode_window",
    "energy_envelope",
    "jpeg_thumbnail",
    "plan_windows",
    "probe_audio",
    "probe_video",
    "sample_frames",
    "sample_times",
]
