"""Media reading for audio jobs: safe probing, streaming decode to 16 kHz mono, window planning.

probe_audio(path, stream=, limits=) -> AudioProbe     refuses what we will not read
energy_envelope(path, probe) -> Envelope              one streaming pass: RMS per 20 ms
plan_windows(envelope, window_seconds=...) -> [Window] cuts in the quietest moments
decode_window(path, probe, start, end) -> samples     seeks; decodes only near the slice
"""

from ._decoder import SAMPLE_RATE
from .decode import decode_window
from .envelope import Envelope, energy_envelope
from .probe import AudioLimits, AudioProbe, probe_audio
from .windows import Window, cut_points, plan_windows

__all__ = [
    "SAMPLE_RATE",
    "AudioLimits",
    "AudioProbe",
    "Envelope",
    "Window",
    "cut_points",
    "decode_window",
    "energy_envelope",
    "plan_windows",
    "probe_audio",
]
