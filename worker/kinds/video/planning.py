"""Segments of a video whose one-piece vision prompt fits the worker's memory budget.

A vision prompt is prefilled in one piece (notes/gemma4-mlx.md, pitfall 3), so its peak memory
grows with its token count: about `vision_prefill_bytes_per_token` per token on the 12B. The
frames a segment may hold are therefore `memory_budget_bytes / bytes_per_token / tokens_per_frame`
(each frame costs `video_frame_tokens` soft tokens plus its markers), capped at the processor's
32 frames per clip (pitfall 9). A segment longer than that many frames at the requested rate is
shortened, and the result says so.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from core.errors import InvalidInput
from core.settings import Settings
from core.storage import job_key
from worker.context import WorkerContext
from worker.kinds.contract import JobInfo
from worker.media import AudioLimits, AudioProbe, VideoLimits, VideoProbe, probe_audio, probe_video

PLAN_OBJECT = "work/video.json"
MAX_FRAMES_PER_SEGMENT = 32
# Each frame's markers, `mm:ss` label and separator: about 9 tokens on the tiny tokenizer; the
# soft tokens themselves are 63-66 for common aspect ratios, under the 70 budgeted.
FRAME_OVERHEAD_TOKENS = 12


@dataclass(frozen=True)
class VideoPlan:
    """The probed video, its audio track if it is to be heard, and the segments."""

    video: VideoProbe
    audio: AudioProbe | None
    fps: float
    segment_seconds: float
    segments: list[tuple[float, float]]


def frames_that_fit(settings: Settings) -> int:
    """How many frames one segment's prompt may hold within the worker's memory budget."""
    tokens = settings.memory_budget_bytes // settings.vision_prefill_bytes_per_token
    per_frame = settings.video_frame_tokens + FRAME_OVERHEAD_TOKENS
    return max(1, min(MAX_FRAMES_PER_SEGMENT, tokens // per_frame))


def cut_segments(duration: float, seconds: float, fps: float) -> list[tuple[float, float]]:
    """[start, end) segments of `seconds` covering the video; a last piece shorter than one
    frame interval joins the previous segment."""
    bounds = []
    start = 0.0
    while start < duration:
        end = min(start + seconds, duration)
        bounds.append((round(start, 6), round(end, 6)))
        start = end
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 1.0 / fps:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


def plan_video(ctx: WorkerContext, job: JobInfo) -> VideoPlan:
    """Probe the input, choose the segment length, store the plan for the chunks."""
    if job.input_key is None:
        raise InvalidInput("this job needs an input file")
    path = ctx.inputs.path(job.input_key)
    limit = ctx.settings.video_max_duration_seconds
    video = probe_video(path, limits=VideoLimits(max_duration_seconds=limit))
    with_audio = job.params.get("with_audio")
    audio = None
    if video.has_audio and with_audio is not False:
        audio = probe_audio(path, stream=None, limits=AudioLimits(max_duration_seconds=limit))
    fps = float(job.params.get("fps", 1.0))
    requested = float(job.params.get("segment_seconds", 10.0))
    seconds = min(requested, frames_that_fit(ctx.settings) / fps)
    if video.duration is None or video.duration <= 0:
        raise InvalidInput("the video has no duration: it is empty or unreadable")
    plan = VideoPlan(video, audio, fps, seconds, cut_segments(video.duration, seconds, fps))
    _save(ctx, job, plan)
    return plan


def _save(ctx: WorkerContext, job: JobInfo, plan: VideoPlan) -> None:
    data = dataclasses.asdict(plan)
    data["video"]["pixel_aspect"] = str(plan.video.pixel_aspect)
    ctx.store.put_bytes(
        job_key(job.tenant_id, job.id, PLAN_OBJECT), json.dumps(data).encode(), "application/json"
    )


def load_plan(ctx: WorkerContext, job: JobInfo) -> VideoPlan:
    """The plan `plan_video` stored for this job."""
    raw: dict[str, Any] = json.loads(
        ctx.store.get_bytes(job_key(job.tenant_id, job.id, PLAN_OBJECT))
    )
    video = VideoProbe(
        **(
            raw["video"]
            | {
                "limits": VideoLimits(**raw["video"]["limits"]),
                "pixel_aspect": Fraction(raw["video"]["pixel_aspect"]),
            }
        )
    )
    audio = None
    if raw["audio"] is not None:
        audio = AudioProbe(**(raw["audio"] | {"limits": AudioLimits(**raw["audio"]["limits"])}))
    segments = [(float(a), float(b)) for a, b in raw["segments"]]
    return VideoPlan(video, audio, raw["fps"], raw["segment_seconds"], segments)
