"""How many sequences a model host decodes at once: the largest batch its memory budget holds.

The weights and the drafter are outside the budget (`memory.check_memory_fit` refuses a host
whose weights plus `memory_budget_bytes` exceed the machine). Inside it, per sequence, the KV
cache of its whole context (prompt plus `max_tokens`): sliding-window layers hold at most their
window, global layers every token (the real 12B in bf16: about 320 KiB a token over its 40
sliding layers, capped at 1024 tokens, and 16 KiB a token over its 8 global ones; notes,
"Real 12B arithmetic"). And once, the prefill workspace of the largest prompt: a vision prompt
prefills in one piece, so all its tokens count; text and audio prefill in chunks of
`prefill_step` tokens. The workspace per prompt token is the settings' measured
`vision_prefill_bytes_per_token` (336 KiB on the 12B), used for both kinds of prefill.

The KV bytes per token are read from the loaded model, not from a table: `measure_kv` prefills a
few tokens into a fresh cache and weighs its arrays, so the dtype, KV-sharing layers and any KV
quantization count as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx_vlm.generate import generate_step
from mlx_vlm.models.cache import make_prompt_cache

_MIB = 1024**2
_PROBE_TOKENS = 8


@dataclass(frozen=True)
class KVFootprint:
    """KV cache bytes per token of context: all sliding layers together, all global ones."""

    sliding_bytes_per_token: int
    global_bytes_per_token: int
    window: int
    """The sliding layers' window in tokens (0 without sliding layers)."""

    def sequence_bytes(self, tokens: int) -> int:
        """The KV cache of one sequence of `tokens` tokens of context."""
        return (
            self.sliding_bytes_per_token * min(tokens, self.window)
            + self.global_bytes_per_token * tokens
        )


@dataclass(frozen=True)
class BatchPlan:
    """The batch size chosen for sequences of one context length, and why."""

    size: int
    reason: str


def measure_kv(model: Any) -> KVFootprint:
    """Weigh the KV cache of a few prefilled tokens in a fresh cache of `model`."""
    cache = make_prompt_cache(model.language_model)
    ids = mx.zeros((1, _PROBE_TOKENS), dtype=mx.int32)
    # max_tokens=0: prefill only, as `_prefix.prefill_prefix` does.
    for _ in generate_step(ids, model, None, None, max_tokens=0, prompt_cache=cache):
        pass
    sliding = global_ = window = 0
    for entry in cache:
        keys, values = entry.state
        per_token = (keys.nbytes + values.nbytes) // keys.shape[-2]
        size = getattr(entry, "max_size", None)
        if size:
            sliding += per_token
            window = max(window, int(size))
        else:
            global_ += per_token
    return KVFootprint(sliding, global_, window)


def plan_batch(
    kv: KVFootprint,
    budget_bytes: int,
    *,
    context_tokens: int,
    prefill_tokens: int,
    prefill_bytes_per_token: int,
    max_batch: int,
) -> BatchPlan:
    """The most sequences of `context_tokens` whose KV caches fit in the budget left after the
    prefill workspace of `prefill_tokens`; at least 1, at most `max_batch`."""
    per_sequence = kv.sequence_bytes(context_tokens)
    workspace = prefill_tokens * prefill_bytes_per_token
    room = budget_bytes - workspace
    fitting = room // per_sequence if room > 0 and per_sequence > 0 else 0
    memory = (
        f"{fitting} sequences of {context_tokens} tokens ({per_sequence / _MIB:.1f} MiB of KV "
        f"cache each) fit in the {budget_bytes / _MIB:.0f} MiB budget after a "
        f"{workspace / _MIB:.0f} MiB prefill workspace"
    )
    if fitting > max_batch:
        return BatchPlan(max_batch, f"{max_batch}: capped by NIGHTOWL_MAX_BATCH ({memory})")
    if fitting < 1:
        return BatchPlan(1, f"1: one at a time, memory holds no batch ({memory})")
    return BatchPlan(int(fitting), f"{fitting}: {memory}")
