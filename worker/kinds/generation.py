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
        # True/False force the drafter, "auto" lets the host measure, unset means its setting.
        "speculative": speculative if speculative in (True, False, "auto") else None,
        "draft_block_size": params.get("draft_block_size"),
    }
