"""Child process of `bench.audio`: the worker's audio work on one file, then its own peak RSS.

    python -m bench._audio_worker baseline      imports only
    python -m bench._audio_worker work FILE     plan (probe + envelope + windows), then
                                                decode_clip of every window, one after another

Prints one JSON line. Peaks are the kernel's high-water mark of this process's own memory
(`VmHWM`), not `ru_maxrss`: Linux carries the parent's RSS at the moment of the spawn into the
child's `ru_maxrss` across exec, so a child spawned by a big parent reports the parent's size.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from bench._memory import child_main, peak_kib, reset_peak
from worker.media import AudioLimits, decode_clip, energy_envelope, plan_clips, probe_audio

WINDOW_SECONDS = 20.0  # the planner's defaults (job params window_seconds / overlap_seconds)
OVERLAP_SECONDS = 1.0


def work(path: Path) -> dict[str, float | int | bool]:
    """What the planner and then the infer chunks do with one audio file."""
    started = time.perf_counter()
    imported = peak_kib()
    probe = probe_audio(path, limits=AudioLimits())
    envelope = energy_envelope(path, probe)
    envelope_peak = peak_kib()
    windows = plan_clips(envelope, clip_seconds=WINDOW_SECONDS, overlap_seconds=OVERLAP_SECONDS)
    plan_peak = peak_kib()
    planned = time.perf_counter()
    separate, decode_from = reset_peak(), peak_kib("VmRSS")
    samples = 0
    for window in windows:
        audio: np.ndarray = decode_clip(path, probe, window.start, window.end)
        samples += audio.size
    decoded, decode_peak = time.perf_counter() - planned, peak_kib()
    return {
        "imported_kib": imported,
        "envelope_peak_kib": envelope_peak,  # probe + envelope
        "plan_peak_kib": plan_peak,  # and plan_clips
        # With `separate`, the decode phase's own peak; else the whole run's.
        "decode_peak_kib": decode_peak,
        "decode_from_kib": decode_from,  # RSS when the decode phase began
        "peak_kib": max(plan_peak, decode_peak),
        "separate": separate,
        "windows": len(windows),
        "duration": envelope.duration,
        "decoded_seconds": samples / 16000,
        "plan_seconds": planned - started,
        "decode_seconds": decoded,
        "ms_per_window": decoded / len(windows) * 1000,
    }


if __name__ == "__main__":
    usage = "python -m bench._audio_worker baseline | work FILE"
    child_main(sys.argv[1:], usage, 1, lambda file: work(Path(file)))
