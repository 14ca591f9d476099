"""`document.qa`: answers with page citations about a PDF, DOCX, TXT, Markdown or HTML document.

plan: extract the text once (CPU), store it as a working object, and choose the mode. A document
whose estimated prompt fits `document_context_tokens` is read whole: each chunk asks several
questions over the same prefix, which the engine prefills once. A longer one is answered per
question from its top BM25 passages (chosen at plan time, so chunks need no index).
The estimate is deliberately conservative (3 characters per token, plus the passage tags): the
ingest workers that plan do not load the model's tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from core.errors import InvalidInput
from core.storage import job_key
from core.usage import Usage
from worker.context import WorkerContext
from worker.documents import (
    DocumentLimits,
    ExtractedDocument,
    Page,
    Passage,
    PassageIndex,
    extract_document,
)
from worker.kinds.contract import ChunkResult, Finalized, JobInfo
from worker.kinds.document_qa.citations import citations_for, strip_citations
from worker.kinds.document_qa.prompts import question_messages
from worker.kinds.document_qa.report import answers_markdown
from worker.kinds.generation import generation_options
from worker.kinds.notice import model_marks, tiny_warning

DOCUMENT_OBJECT = "work/document.json"
_CHARS_PER_TOKEN = 3
_TOKENS_PER_PASSAGE_TAG = 16
_PROMPT_RESERVE = 512


def _estimated_tokens(doc: ExtractedDocument) -> int:
    return math.ceil(doc.char_count / _CHARS_PER_TOKEN) + _TOKENS_PER_PASSAGE_TAG * len(
        doc.passages
    )


def _save(ctx: WorkerContext, job: JobInfo, doc: ExtractedDocument) -> None:
    data = json.dumps(dataclasses.asdict(doc), ensure_ascii=False).encode()
    ctx.store.put_bytes(job_key(job.tenant_id, job.id, DOCUMENT_OBJECT), data, "application/json")


def _load(ctx: WorkerContext, job: JobInfo) -> ExtractedDocument:
    raw = json.loads(ctx.store.get_bytes(job_key(job.tenant_id, job.id, DOCUMENT_OBJECT)))
    return ExtractedDocument(
        format=raw["format"],
        pages=[Page(**p) for p in raw["pages"]],
        passages=[Passage(**p) for p in raw["passages"]],
    )


class DocumentQA:
    """The document.qa pipeline."""

    def plan(self, ctx: WorkerContext, job: JobInfo) -> list[dict[str, Any]]:
        """Extract the document, choose whole or retrieval mode, group questions into chunks."""
        if job.input_key is None or job.content_type is None:
            raise InvalidInput("document.qa needs an input file")
        limits = DocumentLimits(
            max_pages=ctx.settings.document_max_pages, max_chars=ctx.settings.document_max_chars
        )
        doc = extract_document(ctx.inputs.path(job.input_key), job.content_type, limits)
        _save(ctx, job, doc)
        questions: list[str] = job.params["questions"]
        max_tokens = job.params.get("max_tokens") or ctx.settings.max_tokens
        budget = ctx.settings.document_context_tokens - max_tokens - _PROMPT_RESERVE
        whole = _estimated_tokens(doc) <= budget
        per_chunk = ctx.settings.questions_per_chunk
        groups = [
            list(range(i, min(i + per_chunk, len(questions))))
            for i in range(0, len(questions), per_chunk)
        ]
        if whole:
            return [{"mode": "whole", "questions": g} for g in groups]
        index = PassageIndex(doc.passages)
        k = ctx.settings.document_retrieval_passages
        return [
            {
                "mode": "retrieval",
                "questions": g,
                "passages": {str(q): [p.id for p in index.top(questions[q], k)] for q in g},
            }
            for g in groups
        ]

    def infer(
        self, ctx: WorkerContext, job: JobInfo, chunk: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Answer the chunk's questions: over one shared prefix (whole) or per question."""
        engine = ctx.engine()
        doc = _load(ctx, job)
        unit = "page" if doc.page_unit == "page" else "section"
        questions: list[str] = job.params["questions"]
        options = generation_options(ctx.settings, job.params)
        by_id = {p.id: p for p in doc.passages}
        indices: list[int] = chunk["questions"]
        if chunk["mode"] == "whole":
            candidates = {q: doc.passages for q in indices}
            prompts = [
                engine.render(question_messages(doc.passages, unit, questions[q])) for q in indices
            ]
            generations = engine.generate_shared_prefix(prompts, **options)
        else:
            candidates = {q: [by_id[i] for i in chunk["passages"][str(q)]] for q in indices}
            generations = [
                engine.generate(
                    engine.render(question_messages(candidates[q], unit, questions[q])), **options
                )
                for q in indices
            ]
        answers = []
        usage = Usage()
        for q, generation in zip(indices, generations, strict=True):
            pool = candidates[q]
            citations, from_model = citations_for(
                questions[q], generation.text, pool, PassageIndex(pool)
            )
            answers.append(
                {
                    "index": q,
                    "question": questions[q],
                    "answer": strip_citations(generation.text),
                    "citations": citations,
                    "cited_by_model": from_model,
                }
            )
            usage = usage.add(generation.usage)
        output = {"mode": chunk["mode"], "answers": answers, **model_marks(engine)}
        return output, usage.to_dict()

    def finalize(self, ctx: WorkerContext, job: JobInfo, chunks: list[ChunkResult]) -> Finalized:
        """Put the answers in question order; write result.json and answers.md."""
        doc = _load(ctx, job)
        outputs = [chunk.output for chunk in chunks]
        answers = sorted((a for out in outputs for a in out["answers"]), key=lambda a: a["index"])
        result: dict[str, Any] = {
            "answers": [{k: a[k] for k in ("question", "answer", "citations")} for a in answers],
            "document": {
                "pages": len(doc.pages),
                "page_unit": doc.page_unit,
                "passages": len(doc.passages),
                "mode": outputs[0]["mode"],
                "format": doc.format,
            },
            "model": outputs[0].get("model") if outputs else None,
        }
        markdown = answers_markdown(result, job.filename, warning=tiny_warning(chunks))
        return Finalized(result, {"answers.md": (markdown.encode(), "text/markdown")})
