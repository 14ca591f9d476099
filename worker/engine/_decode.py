"""One pass through mlx-vlm's `stream_generate`, timed, with the drafter's statistics read back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import numpy as np
from mlx_vlm import stream_generate

from core.usage import Usage
from worker.engine.generation import Generation


@dataclass(frozen=True)
class Speculation:
    """The drafter to decode with and how many tokens each verify pass covers."""

    drafter: Any
    kind: str
    block_size: int


def decode(
    model: Any,
    processor: Any,
    *,
    prompt: str = "",
    audio: Sequence[np.ndarray] = (),
    images: Sequence[Any] = (),
    input_ids: mx.array | None = None,
    prompt_cache: list[Any] | None = None,
    max_tokens: int,
    temperature: float,
    speculation: Speculation | None,
) -> Generation:
    """Generate from `prompt` (or from `input_ids` after a filled `prompt_cache`) in one pass.

    `audio` holds the checked clips for `prompt`'s placeholders, `images` the frames (PIL) for
    its image placeholders; mlx-vlm's processor expands each placeholder into the clip's or
    frame's soft tokens, and `prompt_tokens` counts them. Media prompts always start from a
    fresh cache: mlx-vlm's caches do not look at media content (notes pitfalls 2 and 3).
    The usage counts only what this pass saw: with a prompt cache, `prompt_tokens` is the
    suffix; the caller adds the reused prefix.
    """
    kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
    cached = input_ids is not None or prompt_cache is not None
    if (len(audio) or len(images)) and cached:
        raise ValueError("media need the whole prompt, not a cached prefix")
    if len(audio):
        kwargs["audio"] = list(audio)
    if len(images):
        kwargs["image"] = list(images)
    if input_ids is not None:
        kwargs["input_ids"] = input_ids
    if prompt_cache is not None:
        kwargs["prompt_cache"] = prompt_cache
    if speculation is not None:
        kwargs.update(
            draft_model=speculation.drafter,
            draft_kind=speculation.kind,
            draft_block_size=speculation.block_size,
        )
        # mlx-vlm resets these only when a round starts: a one-token answer would keep old ones.
        speculation.drafter.accept_lens = []
        speculation.drafter.draft_lens = []
    tokenizer = processor.tokenizer
    # As mlx_vlm.generate does: stop at the model's end-of-turn ids, not a previous caller's.
    tokenizer.stopping_criteria.reset(model.config.eos_token_id)

    mx.reset_peak_memory()
    pieces: list[str] = []
    last = None
    started = time.perf_counter()
    first_token_at = started
    for response in stream_generate(model, processor, prompt, **kwargs):
        if last is None:
            first_token_at = time.perf_counter()
        pieces.append(response.text)
        last = response
    finished = time.perf_counter()
    if last is None:
        raise RuntimeError("mlx-vlm produced no result")

    accepted = speculation.drafter.accept_lens if speculation else []
    proposed = speculation.drafter.draft_lens if speculation else []
    usage = Usage(
        prompt_tokens=int(last.prompt_tokens),
        generated_tokens=int(last.generation_tokens),
        draft_rounds=len(accepted),
        draft_tokens_proposed=int(sum(proposed)),
        draft_tokens_accepted=round(sum(accepted)),
        prefill_seconds=first_token_at - started,
        decode_seconds=finished - first_token_at,
        peak_memory_bytes=int(mx.get_peak_memory()),
        model_calls=1,
    )
    text = "".join(pieces)
    clean_output = getattr(processor, "clean_output", None)
    if callable(clean_output):
        text = clean_output(text)
    return Generation(text=text, usage=usage, finish_reason=last.finish_reason)
