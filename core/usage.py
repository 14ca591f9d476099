"""Adding up per-chunk usage records into a job's usage, with the derived rates recomputed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_SUMMED = (
    "prompt_tokens",
    "generated_tokens",
    "prefill_tokens_saved",
    "draft_rounds",
    "draft_tokens_proposed",
    "draft_tokens_accepted",
    "prefill_seconds",
    "decode_seconds",
    "model_calls",
)


def sum_usage(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The usage of a whole job: counters summed, peak memory the maximum, rates recomputed."""
    total: dict[str, Any] = dict.fromkeys(_SUMMED, 0)
    total["peak_memory_bytes"] = 0
    chunks = 0
    for record in records:
        chunks += 1
        for key in _SUMMED:
            total[key] += record.get(key) or 0
        total["peak_memory_bytes"] = max(
            total["peak_memory_bytes"], record.get("peak_memory_bytes") or 0
        )
    prefilled = total["prompt_tokens"] - total["prefill_tokens_saved"]
    total["prefill_tokens_per_second"] = (
        round(prefilled / total["prefill_seconds"], 1) if total["prefill_seconds"] else None
    )
    total["decode_tokens_per_second"] = (
        round(total["generated_tokens"] / total["decode_seconds"], 1)
        if total["decode_seconds"]
        else None
    )
    total["draft_acceptance"] = (
        round(total["draft_tokens_accepted"] / total["draft_tokens_proposed"], 4)
        if total["draft_tokens_proposed"]
        else None
    )
    total["chunks"] = chunks
    return total
