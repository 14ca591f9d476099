"""Media reading for audio jobs: safe probing, streaming decode to 16 kHz mono, clip planning.

probe_audio(path, stream=, limits=) -> AudioProbe     refuses what we will not read
energy_envelope(path, probe) -> Envelope              one streaming pass: RMS per 20 ms
plan_clips(envelope, clip_seconds=...) -> [Clip]      cuts in the quietest moments
decode_clip(path, probe, start, end) -> samples       seeks; decodes only near the slice

Video (video.caption):
probe_video(path, limits=) -> VideoProbe              size, rotation, fps, keyframe spacing
sample_times(start, end, fps) -> [float]              the sampling instants in [start, end)
sample_frames(path, probe, start, end, fps=, max_side=) -> [SampledFrame]   decodes only the range
jpeg_thumbnail(image, max_side=, quality=) -> bytes
"""

from ._decoder import SAMPLE_RATE
from .clips import Clip, cut_points, plan_clips
from .decode import decode_clip
from .envelope import Envelope, energy_envelope
from .probe import AudioLimits, AudioProbe, probe_audio
from .video_frames import SampledFrame, jpeg_thumbnail
from .video_probe import VideoLimits, VideoProbe, probe_video
from .video_sample import DecodeStats, sample_frames, sample_times

__all__ = [
    "SAMPLE_RATE",
    "AudioLimits",
    "AudioProbe",
    "Clip",
    "DecodeStats",
    "Envelope",
    "SampledFrame",
    "VideoLimits",
    "VideoProbe",
    "cut_points",
    "decode_clip",
    "energy_envelope",
    "jpeg_thumbnail",
    "plan_clips",
    "probe_audio",
    "probe_video",
    "sample_frames",
    "sample_times",
]
