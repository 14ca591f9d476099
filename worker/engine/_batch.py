"""Several prompts decoded together on mlx-vlm's own continuous batcher, `BatchGenerator`.

`ContinuousBatch` admits rows while others decode (`add`), drops them (`cancel`), and advances
every row by one step (`step`), returning the rows that finished as `Generation`s; a generation
loop feeds it. Each row is prepared as mlx-vlm's `stream_generate` prepares a prompt (so as
`Engine.generate` does), embedded on its own, and handed to the batcher as its embeddings only:

- Checked with the tiny model (mlx-vlm 0.7.10): text, audio clips of different lengths, video
  segments and any mix of them batch, and each row's greedy tokens equal its batch-1 tokens
  (`tests/worker/engine/test_batch.py`). Log-probs differ in the last bits (left padding and
  batched matmuls round differently), so a near-tie could in principle flip a token.
- A row passes only `inputs_embeds`, `per_layer_inputs` and `mm_token_type_ids`: the audio and
  vision features are inside the embeddings already, and the processor's `input_features` of
  clips of different lengths cannot be concatenated by mlx-vlm's prefill merge (the HTTP 500 of
  its server). Text rows get all-zero `mm_token_type_ids`: without them the merge broadcasts a
  vision row's bidirectional blocks onto every row.
- A vision prompt must be prefilled in one piece (bidirectional attention over its frames,
  notes pitfall 3); the batcher cuts prefill into `prefill_step` tokens when audio rows are in
  the same prefill, so a vision prompt longer than `prefill_step` is not batched (`add`
  answers None): the caller runs it alone.
- No drafter: with one, the batcher runs statically (no admission until every row ends, every
  row advancing only as far as the slowest row's accepted drafts), and batched speculation
  measured as a loss (notes, "Throughput"). Batched rows decode plain and say so in their usage.
- One sampler serves the whole batch, so one batch has one temperature.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import numpy as np
from mlx_vlm.generate.ar import BatchGenerator
from mlx_vlm.sample_utils import make_sampler
from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

from core.usage import Usage
from worker.engine.generation import Generation

PREFILL_STEP = 2048
BATCHED = "off: batched decoding (the drafter would make the batch static)"
_LM_KEYS = ("inputs_embeds", "per_layer_inputs", "mm_token_type_ids")


@dataclass(frozen=True)
class BatchPrompt:
    """One row: a rendered prompt with its checked audio clips and PIL frames, if any."""

    prompt: str
    audio: Sequence[np.ndarray] = ()
    images: Sequence[Any] = ()
    max_tokens: int = 256


@dataclass
class _Row:
    prompt_tokens: int
    max_tokens: int
    added: float
    tokens: list[int] = field(default_factory=list)
    prefill_seconds: float = 0.0
    first_token: float | None = None


def embed(model: Any, processor: Any, request: BatchPrompt) -> tuple[list[int], dict[str, Any]]:
    """The row's token ids and the prompt inputs the batcher needs (its embeddings)."""
    inputs = prepare_inputs(
        processor,
        images=list(request.images) or None,
        audio=list(request.audio) or None,
        prompts=request.prompt,
        image_token_index=getattr(model.config, "image_token_index", None),
        add_special_tokens=should_add_special_tokens(model.config.model_type, processor),
    )
    ids = inputs["input_ids"]
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values")}
    extra.pop("attention_mask", None)
    embedded = model.get_input_embeddings(
        ids, inputs.get("pixel_values"), mask=inputs.get("attention_mask"), **extra
    )
    given = {**extra, **{k: v for k, v in embedded.to_dict().items() if v is not None}}
    kwargs = {k: v for k, v in given.items() if k in _LM_KEYS}
    kwargs.setdefault("mm_token_type_ids", mx.zeros(ids.shape, dtype=mx.int64))
    mx.eval(list(kwargs.values()))
    return list(ids[0].tolist()), kwargs


class ContinuousBatch:
    """Rows decoding together; rows join and leave between steps."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        max_rows: int,
        temperature: float = 0.0,
        prefill_rows: int | None = None,
        prefill_step: int = PREFILL_STEP,
    ) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self._model = model
        self._processor = processor
        self.prefill_step = prefill_step
        # Fewer prefill rows than places, or new rows would wait for the whole batch to end.
        prefill = prefill_rows or max(1, max_rows // 2)
        processor.tokenizer.stopping_criteria.reset(model.config.eos_token_id)
        self._generator = BatchGenerator(
            model.language_model,
            processor,
            sampler=make_sampler(temperature) if temperature > 0 else None,
            completion_batch_size=max_rows,
            prefill_batch_size=min(prefill, max_rows),
            prefill_step_size=prefill_step,
        )
        self._rows: dict[int, _Row] = {}

    def add(self, request: BatchPrompt) -> int | None:
        """Queue a row, prefilled between the next steps; returns its id, or None when it cannot
        be batched (a vision prompt longer than `prefill_step` must prefill in one piece)."""
        if request.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        ids, kwargs = embed(self._model, self._processor, request)
        if request.images and len(ids) > self.prefill_step:
            return None
        (uid,) = self._generator.insert(
            [ids], max_tokens=[request.max_tokens], prompt_kwargs=[kwargs]
        )
        self._rows[uid] = _Row(len(ids), request.max_tokens, time.perf_counter())
        return int(uid)

    def cancel(self, uid: int) -> None:
        """Drop a row, queued, prefilling or decoding; the others go on unchanged."""
        if self._rows.pop(uid, None) is not None:
            self._generator.remove(uid)

    @property
    def active(self) -> int:
        """Rows queued, prefilling or decoding."""
        return len(self._rows)

    def step(self) -> list[tuple[int, Generation]]:
        """Advance every row by one step; returns the rows that finished, by id."""
        if not self._rows:
            return []
        prompts, responses = self._generator.next()
        now = time.perf_counter()
        for progress in prompts:
            row = self._rows.get(progress.uid)
            if row is not None:
                row.prefill_seconds = float(progress.prompt_time)
        finished = []
        for response in responses:
            row = self._rows.get(response.uid)
            if row is None or response.token is None:
                continue
            if row.first_token is None:
                row.first_token = now
            if response.finish_reason != "stop":
                row.tokens.append(int(response.token))
            if response.finish_reason is not None:
                del self._rows[response.uid]
                finished.append((int(response.uid), self._generation(row, response, now)))
        return finished

    def close(self) -> None:
        """Release the batcher's caches."""
        self._generator.close()
        self._rows.clear()

    def _generation(self, row: _Row, response: Any, now: float) -> Generation:
        detokenizer = self._processor.detokenizer
        detokenizer.reset()
        for token in row.tokens:
            detokenizer.add_token(token)
        detokenizer.finalize()
        generated = len(row.tokens) + (response.finish_reason == "stop")
        first = row.first_token or now
        usage = Usage(
            prompt_tokens=row.prompt_tokens,
            generated_tokens=generated,
            prefill_seconds=row.prefill_seconds or first - row.added,
            decode_seconds=now - first,
            peak_memory_bytes=int(mx.get_peak_memory()),
            model_calls=1,
            speculation=(BATCHED,),
        )
        text = detokenizer.text
        clean_output = getattr(self._processor, "clean_output", None)
        if callable(clean_output):
            text = clean_output(text)
        return Generation(text=text, usage=usage, finish_reason=response.finish_reason)
