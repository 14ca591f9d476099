"""Shared by the audio kinds: probe the input, cut it into windows at quiet points, keep the plan.

The plan (chosen stream, exact duration, windows) is stored as a working object of the job, so
every chunk decodes its own slice of the same stream without probing again.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InvalidInput
from core.storage import job_key
from worker.context import WorkerContext
from worker.kinds.base import JobInfo
from worker.media import (
    AudioLimits,
    AudioProbe,
    decode_window,
    energy_envelope,
    plan_windows,
    probe_audio,
)

PLAN_OBJECT = "work/audio.json"


@dataclass(frozen=True)
class AudioPlan:
    """The chosen stream, the decoded duration, and the windows as (start, end) in seconds."""

    probe: AudioProbe
    duration: float
    windows: list[tuple[float, float]]


def plan_audio(ctx: WorkerContext, job: JobInfo) -> AudioPlan:
    """Probe and window the job's input; store the plan for the chunks."""
    if job.input_key is None:
        raise InvalidInput("this job needs an input file")
    path = ctx.inputs.path(job.input_key)
    limits = AudioLimits(max_duration_seconds=ctx.settings.audio_max_duration_seconds)
    probe = probe_audio(path, stream=job.params.get("stream"), limits=limits)
    envelope = energy_envelope(path, probe)
    windows = plan_windows(
        envelope,
        window_seconds=job.params.get("window_seconds", 20.0),
        overlap_seconds=job.params.get("overlap_seconds", 1.0),
    )
    plan = AudioPlan(probe, envelope.duration, [(w.start, w.end) for w in windows])
    data = {"probe": dataclasses.asdict(probe), "duration": plan.duration, "windows": plan.windows}
    ctx.store.put_bytes(
        job_key(job.tenant_id, job.id, PLAN_OBJECT), json.dumps(data).encode(), "application/json"
    )
    return plan


def load_plan(ctx: WorkerContext, job: JobInfo) -> AudioPlan:
    """The plan `plan_audio` stored for this job."""
    raw: dict[str, Any] = json.loads(
        ctx.store.get_bytes(job_key(job.tenant_id, job.id, PLAN_OBJECT))
    )
    windows = [(float(a), float(b)) for a, b in raw["windows"]]
    probe = AudioProbe(**(raw["probe"] | {"limits": AudioLimits(**raw["probe"]["limits"])}))
    return AudioPlan(probe, float(raw["duration"]), windows)


def window_audio(
    ctx: WorkerContext, job: JobInfo, plan: AudioPlan, start: float, end: float
) -> np.ndarray:
    """The 16 kHz mono samples of [start, end): only that slice is decoded."""
    assert job.input_key is not None
    samples: np.ndarray = decode_window(ctx.inputs.path(job.input_key), plan.probe, start, end)
    return samples
