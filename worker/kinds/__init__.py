"""The pipelines of each job kind, by kind name."""

from __future__ import annotations

from worker.kinds.base import ChunkResult, Finalized, JobInfo, KindPipeline, MoreChunks
from worker.kinds.document_qa import DocumentQA

PIPELINES: dict[str, KindPipeline] = {"document.qa": DocumentQA()}

__all__ = ["PIPELINES", "ChunkResult", "Finalized", "JobInfo", "KindPipeline", "MoreChunks"]
