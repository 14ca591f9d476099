"""The interface every job kind implements: plan into chunks, run a chunk, finalize the job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.context import WorkerContext


@dataclass(frozen=True)
class JobInfo:
    """What a pipeline may know of its job: a snapshot taken when the stage was claimed."""

    id: str
    tenant_id: str
    kind: str
    params: dict[str, Any]
    input_key: str | None
    content_type: str | None
    filename: str | None
    priority: int = 5


@dataclass
class Finalized:
    """A job's result JSON and its artifacts (name -> (bytes, content type))."""

    result: dict[str, Any]
    artifacts: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # Artifacts that chunks already stored (name -> key), such as a video's thumbnails.
    stored: dict[str, str] = field(default_factory=dict)


@dataclass
class MoreChunks:
    """Another round of model work before the job can finish (a reduce over the map's output)."""

    specs: list[dict[str, Any]]


@dataclass(frozen=True)
class ChunkResult:
    """A finished chunk as finalize sees it: its place, what it was asked, what it returned."""

    index: int
    spec: dict[str, Any]
    output: dict[str, Any]


class KindPipeline(Protocol):
    """Plain functions per stage; no Celery, no transactions: the runner owns those."""

    def plan(self, ctx: WorkerContext, job: JobInfo) -> list[dict[str, Any]]:
        """Cut the job into chunk specs (JSON); may write working objects under the job's key."""

    def infer(
        self, ctx: WorkerContext, job: JobInfo, chunk: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Run one chunk on the model; returns its output and its usage record."""

    def finalize(
        self, ctx: WorkerContext, job: JobInfo, chunks: list[ChunkResult]
    ) -> Finalized | MoreChunks:
        """Merge the finished chunks (in order) into the result, or ask for another round.

        Only model hosts run the model, so a kind that needs a model pass over merged output
        (answers over audio notes) returns MoreChunks; finalize runs again when they are done.
        """
