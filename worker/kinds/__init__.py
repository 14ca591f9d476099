"""The pipelines of each job kind, by kind name."""

from __future__ import annotations

from worker.kinds.audio import AudioAnalyze, AudioTranscribe
from worker.kinds.contract import ChunkResult, Finalized, JobInfo, KindPipeline, MoreChunks
from worker.kinds.document_qa import DocumentQA
from worker.kinds.video import VideoCaption

PIPELINES: dict[str, KindPipeline] = {
    "document.qa": DocumentQA(),
    "audio.transcribe": AudioTranscribe(),
    "audio.analyze": AudioAnalyze(),
    "video.caption": VideoCaption(),
}

__all__ = ["PIPELINES", "ChunkResult", "Finalized", "JobInfo", "KindPipeline", "MoreChunks"]
