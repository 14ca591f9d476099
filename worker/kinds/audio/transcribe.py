"""`audio.transcribe`: a transcript with media timestamps, as JSON, SRT, WebVTT and text.

plan: clips of at most `params.window_seconds` cut at quiet points (one chunk each). infer:
decode the clip's slice only and transcribe it with the audio first in the prompt. finalize:
merge the clips (times to media time, words heard twice in an overlap kept once), split long
segments into readable cues, write the artifacts.
"""

from __future__ import annotations

from typing import Any

from worker.context import WorkerContext
from worker.kinds.audio.planning import clip_audio, load_plan, plan_audio
from worker.kinds.audio.transcript import ClipText, full_text, merge_clips
from worker.kinds.contract import ChunkResult, Finalized, JobInfo
from worker.kinds.generation import generation_options
from worker.kinds.notice import model_marks
from worker.kinds.subtitles import split_into_cues, to_srt, to_text, to_vtt


def transcribe_prompt(language: str | None) -> str:
    """The instruction that follows the audio clip."""
    hint = f" The speech is in {language}." if language else ""
    return (
        "Transcribe the speech in this audio clip verbatim." + hint + " Write only the words "
        "spoken, with punctuation, and nothing else: no timestamps, labels or comments. "
        "If nobody speaks, write nothing."
    )


class AudioTranscribe:
    """The audio.transcribe pipeline."""

    def plan(self, ctx: WorkerContext, job: JobInfo) -> list[dict[str, Any]]:
        """One chunk per clip."""
        plan = plan_audio(ctx, job)
        return [
            {"window": i, "start": start, "end": end} for i, (start, end) in enumerate(plan.clips)
        ]

    def infer(
        self, ctx: WorkerContext, job: JobInfo, chunk: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Transcribe one clip."""
        engine = ctx.engine()
        plan = load_plan(ctx, job)
        samples = clip_audio(ctx, job, plan, chunk["start"], chunk["end"])
        messages = [{"role": "user", "content": transcribe_prompt(job.params.get("language"))}]
        prompt = engine.render(messages, audio_clips=1)
        generation = engine.generate(
            prompt, audio=[samples], **generation_options(ctx.settings, job.params)
        )
        output = {
            "window": chunk["window"],
            "start": chunk["start"],
            "end": chunk["end"],
            "text": generation.text.strip(),
            **model_marks(engine),
        }
        return output, generation.usage.to_dict()

    def finalize(self, ctx: WorkerContext, job: JobInfo, chunks: list[ChunkResult]) -> Finalized:
        """Merge the clips into segments; write result.json, SRT, WebVTT and text."""
        plan = load_plan(ctx, job)
        clips = [
            ClipText(c.output["window"], c.output["start"], c.output["end"], c.output["text"])
            for c in chunks
        ]
        overlap = float(job.params.get("overlap_seconds", 1.0))
        segments = merge_clips(clips, overlap_seconds=overlap)
        cues = split_into_cues(segments, duration=plan.duration)
        result: dict[str, Any] = {
            "segments": [
                {"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text}
                for s in segments
            ],
            "text": full_text(segments),
            "duration": round(plan.duration, 3),
            "language": job.params.get("language"),
            "windows": len(clips),
            "model": chunks[0].output.get("model") if chunks else None,
        }
        return Finalized(
            result,
            {
                "transcript.srt": (to_srt(cues).encode(), "application/x-subrip"),
                "transcript.vtt": (to_vtt(cues).encode(), "text/vtt"),
                "transcript.txt": (
                    to_text(segments, duration=plan.duration).encode(),
                    "text/plain",
                ),
            },
        )
