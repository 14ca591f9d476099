"""The pipelines of each job kind, by kind name."""

from __future__ import annotations

from worker.kinds.base import Finalized, JobInfo, KindPipeline
from worker.kinds.document_qa import DocumentQA

PIPELINES: dict[str, KindPipeline] = {"document.qa": DocumentQA()}

__all__ = ["PIPELINES", "Finalized", "JobInfo", "KindPipeline"]
