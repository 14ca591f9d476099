"""The engine's generation arguments from a job's params, the same for every kind."""

from __future__ import annotations

from typing import Any

from core.settings import Settings


def generation_options(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """max_tokens, temperature, speculative and draft_block_size for `Engine.generate`."""
    speculative = params.get("speculative")
    return {
        "max_tokens": params.get("max_tokens") or settings.max_tokens,
        "temperature": params.get("temperature", 0.0),
        # "auto" uses the worker's configured default until per-machine measurement lands.
        "speculative": speculative if isinstance(speculative, bool) else None,
        "draft_block_size": params.get("draft_block_size"),
    }
