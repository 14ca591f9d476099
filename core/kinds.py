"""The job kinds: their parameters and the content types each reads.

A kind is listed here when the API may accept it; each has a pipeline in `worker.kinds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from core.sniff import DOCUMENT_TYPES, MEDIA_TYPES, VIDEO_TYPES


class GenerationParams(BaseModel):
    """Generation settings every kind accepts."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    speculative: bool | Literal["auto"] | None = None
    draft_block_size: int | None = Field(default=None, ge=1, le=16)


Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class DocumentQAParams(GenerationParams):
    """`document.qa`: one to fifty questions about one document."""

    questions: list[Question] = Field(min_length=1, max_length=50)


class AudioParams(GenerationParams):
    """Clips of the audio kinds: at most 30 s (the model truncates longer clips silently).

    `window_seconds` is the clip length (`worker.media.clips`); the name is public and stays.
    """

    window_seconds: float = Field(default=20.0, ge=5.0, le=30.0)
    overlap_seconds: float = Field(default=1.0, ge=0.0, le=3.0)
    stream: int | None = Field(default=None, ge=0, le=31)


class AudioTranscribeParams(AudioParams):
    """`audio.transcribe`: an optional language hint, e.g. "en" or "German"."""

    language: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None


class AudioAnalyzeParams(AudioParams):
    """`audio.analyze`: one to twenty questions, or an instruction, about a recording."""

    questions: list[Question] | None = Field(default=None, min_length=1, max_length=20)
    instruction: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
        | None
    ) = None

    @model_validator(mode="after")
    def _something_to_answer(self) -> AudioAnalyzeParams:
        if not self.questions and not self.instruction:
            raise ValueError("give params.questions (1-20) or params.instruction")
        return self


class VideoCaptionParams(GenerationParams):
    """`video.caption`: frames per second, segment length, and whether to hear the audio."""

    fps: float = Field(default=1.0, gt=0.0, le=4.0)
    segment_seconds: float = Field(default=10.0, ge=1.0, le=60.0)
    with_audio: bool | None = None  # None: yes when the file has an audio track


@dataclass(frozen=True)
class KindSpec:
    """What the API needs to know about a kind to accept a job of it."""

    name: str
    params: type[GenerationParams]
    content_types: frozenset[str]


KINDS: dict[str, KindSpec] = {
    "document.qa": KindSpec("document.qa", DocumentQAParams, DOCUMENT_TYPES),
    "audio.transcribe": KindSpec("audio.transcribe", AudioTranscribeParams, MEDIA_TYPES),
    "audio.analyze": KindSpec("audio.analyze", AudioAnalyzeParams, MEDIA_TYPES),
    "video.caption": KindSpec("video.caption", VideoCaptionParams, VIDEO_TYPES),
}
