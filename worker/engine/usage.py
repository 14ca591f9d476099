"""What one generation cost, counted from mlx-vlm's results and the drafter's own statistics.

The derived rates follow `core.usage.sum_usage`: prefill speed counts only the tokens actually
prefilled (prompt minus reused prefix), and decode speed is generated tokens over decode time,
as mlx-vlm counts it (the first token comes out of the prefill pass).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

_INT_FIELDS = (
    "prompt_tokens",
    "generated_tokens",
    "prefill_tokens_saved",
    "draft_rounds",
    "draft_tokens_proposed",
    "draft_tokens_accepted",
    "peak_memory_bytes",
    "model_calls",
)
_FLOAT_FIELDS = ("prefill_seconds", "decode_seconds")


@dataclass(frozen=True)
class Usage:
    """Token counts, drafter statistics, time and memory of one or more generations."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    prefill_tokens_saved: int = 0
    """Prompt tokens not prefilled because a cached prefix was reused."""
    draft_rounds: int = 0
    draft_tokens_proposed: int = 0
    draft_tokens_accepted: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    peak_memory_bytes: int = 0
    model_calls: int = 0
    """Passes through mlx-vlm: one per generation, plus one for each shared-prefix prefill."""

    @property
    def prefill_tokens_per_second(self) -> float | None:
        """Prompt tokens actually prefilled per second of prefill, None without prefill time."""
        prefilled = self.prompt_tokens - self.prefill_tokens_saved
        return prefilled / self.prefill_seconds if self.prefill_seconds > 0 else None

    @property
    def decode_tokens_per_second(self) -> float | None:
        """Generated tokens per second of decode, None without decode time."""
        return self.generated_tokens / self.decode_seconds if self.decode_seconds > 0 else None

    @property
    def draft_acceptance(self) -> float | None:
        """The share of drafted tokens the target accepted, None when nothing was drafted."""
        if self.draft_tokens_proposed == 0:
            return None
        return self.draft_tokens_accepted / self.draft_tokens_proposed

    def add(self, other: Usage) -> Usage:
        """The usage of both: counts and times summed, peak memory the larger."""
        summed = {
            name: getattr(self, name) + getattr(other, name)
            for name in (*_INT_FIELDS, *_FLOAT_FIELDS)
            if name != "peak_memory_bytes"
        }
        return Usage(
            **summed, peak_memory_bytes=max(self.peak_memory_bytes, other.peak_memory_bytes)
        )

    def to_dict(self) -> dict[str, int | float | None]:
        """All fields and the derived rates, ready for JSON."""
        data: dict[str, int | float | None] = dict(asdict(self))
        data["prefill_tokens_per_second"] = self.prefill_tokens_per_second
        data["decode_tokens_per_second"] = self.decode_tokens_per_second
        data["draft_acceptance"] = self.draft_acceptance
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Usage:
        """Read `to_dict` output back; derived, unknown and missing keys are tolerated."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known or value is None:
                continue
            if not isinstance(value, int | float):
                raise ValueError(f"usage field {name} must be a number, not {value!r}")
            values[name] = int(value) if name in _INT_FIELDS else float(value)
        return cls(**values)


@dataclass(frozen=True)
class Generation:
    """The text one prompt produced and what producing it cost."""

    text: str
    usage: Usage
    finish_reason: str | None = None
    """Why decoding ended: "stop" at an end-of-turn token, "length" at max_tokens."""
