"""A token prefix prefilled once into a KV cache, and independent copies of that cache.

The copy is what makes reuse safe: mlx-vlm grows, rotates and (for the MTP drafter) rewraps
cache entries in place, so each prompt gets fresh cache objects over new array handles. A write
through a new handle never reaches the prefix's arrays (MLX copies a buffer another array still
holds), so the prefix stays intact for the next prompt. The price: while a prompt runs, its
global layers hold a second copy of the prefix KV (they grow by concatenation), freed when it
ends. Trimming one cache back instead would break as soon as a sliding-window layer has
wrapped, which any document longer than the window does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx_vlm.generate import generate_step
from mlx_vlm.models.cache import make_prompt_cache


@dataclass(frozen=True)
class PrefilledPrefix:
    """A KV cache holding the first `length` tokens, never decoded into directly."""

    cache: list[Any]
    length: int
    seconds: float
    peak_memory_bytes: int


def shared_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """The longest common prefix, leaving each sequence at least one token of its own."""
    if not sequences:
        return 0
    # The model must see at least the last prompt token fresh, to produce the first logits.
    limit = min(len(seq) for seq in sequences) - 1
    first = sequences[0]
    length = 0
    while length < limit and all(seq[length] == first[length] for seq in sequences):
        length += 1
    return length


def prefill_prefix(model: Any, prefix_ids: mx.array) -> PrefilledPrefix:
    """Run mlx-vlm's own (chunked) prefill over `prefix_ids` into a new cache."""
    cache = make_prompt_cache(model.language_model)
    mx.reset_peak_memory()
    started = time.perf_counter()
    # max_tokens=0 makes generate_step prefill every prompt token and stop before decoding.
    for _ in generate_step(prefix_ids, model, None, None, max_tokens=0, prompt_cache=cache):
        pass
    mx.eval([entry.state for entry in cache])
    return PrefilledPrefix(
        cache=cache,
        length=int(prefix_ids.shape[1]),
        seconds=time.perf_counter() - started,
        peak_memory_bytes=int(mx.get_peak_memory()),
    )


def copy_cache(model: Any, cache: list[Any]) -> list[Any]:
    """Fresh cache entries with the same contents, safe to extend without touching `cache`."""
    fresh: list[Any] = make_prompt_cache(model.language_model)
    if [type(entry) for entry in fresh] != [type(entry) for entry in cache]:
        raise RuntimeError("the prefix cache does not match the model's cache layout")
    for new, old in zip(fresh, cache, strict=True):
        keys, values = old.state
        if keys is not None:
            # New handles: an in-place write on the copy replaces only the copy's handle.
            new.state = (keys[:], values[:])
        if old.meta_state:
            new.meta_state = old.meta_state
    return fresh
