"""Shared by the audio kinds: probe the input, cut it into clips at quiet points, keep the plan.

The plan (chosen stream, exact duration, clips) is stored as a working object of the job, so
every chunk decodes its own slice of the same stream without probing again. The clip length is
the public `params.window_seconds` (a name users depend on); the stored plan and the chunk specs
keep their `windows` / `window` keys, so jobs planned before a deploy still run after it.
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
from worker.kinds.contract import JobInfo
from worker.media import (
    AudioLimits,
    AudioProbe,
    decode_clip,
    energy_envelope,
    plan_clips,
    probe_audio,
)

PLAN_OBJECT = "work/audio.json"


@dataclass(frozen=True)
class AudioPlan:
    """The chosen stream, the decoded duration, and the clips as (start, end) in seconds."""

    probe: AudioProbe
    duration: float
    clips: list[tuple[float, float]]


def plan_audio(ctx: WorkerContext, job: JobInfo) -> AudioPlan:
    """Probe the job's input and cut it into clips; store the plan for the chunks."""
    if job.input_key is None:
        raise InvalidInput("this job needs an input file")
    path = ctx.inputs.path(job.input_key)
    limits = AudioLimits(max_duration_seconds=ctx.settings.audio_max_duration_seconds)
    probe = probe_audio(path, stream=job.params.get("stream"), limits=limits)
    envelope = energy_envelope(path, probe)
    clips = plan_clips(
        envelope,
        clip_seconds=job.params.get("window_seconds", 20.0),
        overlap_seconds=job.params.get("overlap_seconds", 1.0),
    )
    plan = AudioPlan(probe, envelope.duration, [(c.start, c.end) for c in clips])
    data = {"probe": dataclasses.asdict(probe), "duration": plan.duration, "windows": plan.clips}
    ctx.store.put_bytes(
        job_key(job.tenant_id, job.id, PLAN_OBJECT), json.dumps(data).encode(), "application/json"
    )
    return plan


def load_plan(ctx: WorkerContext, job: JobInfo) -> AudioPlan:
    """The plan `plan_audio` stored for this job."""
    raw: dict[str, Any] = json.loads(
        ctx.store.get_bytes(job_key(job.tenant_id, job.id, PLAN_OBJECT))
    )
    clips = [(float(a), float(b)) for a, b in raw["windows"]]
    probe = AudioProbe(**(raw["probe"] | {"limits": AudioLimits(**raw["probe"]["limits"])}))
    return AudioPlan(probe, float(raw["duration"]), clips)


def clip_audio(
    ctx: WorkerContext, job: JobInfo, plan: AudioPlan, start: float, end: float
) -> np.ndarray:
    """The 16 kHz mono samples of [start, end): only that slice is decoded."""
    assert job.input_key is not None
    samples: np.ndarray = decode_clip(ctx.inputs.path(job.input_key), plan.probe, start, end)
    return samples
