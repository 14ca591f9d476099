"""The job kinds: their parameters and the content types each reads.

A kind is listed here when the API may accept it. Kinds from DESIGN.md that are not built yet
(`video.caption`, `audio.transcribe`, `audio.analyze`) answer 422 with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.sniff import DOCUMENT_TYPES

PLANNED_KINDS = frozenset({"video.caption", "audio.transcribe", "audio.analyze"})


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


@dataclass(frozen=True)
class KindSpec:
    """What the API needs to know about a kind to accept a job of it."""

    name: str
    params: type[GenerationParams]
    content_types: frozenset[str]


KINDS: dict[str, KindSpec] = {
    "document.qa": KindSpec("document.qa", DocumentQAParams, DOCUMENT_TYPES),
}
