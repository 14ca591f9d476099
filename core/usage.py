"""What model work cost: one record type for a generation, a chunk and a whole job.

The engine fills a `Usage` per generation; a chunk stores `to_dict()` (rates unrounded); a job's
usage is `sum_usage` over its chunks' records (rates rounded, plus the chunk count). The derived
rates: prefill speed counts only the tokens actually prefilled (prompt minus reused prefix), and
decode speed is generated tokens over decode time, as mlx-vlm counts it (the first token comes
out of the prefill pass). `speculation` says, per distinct decision, whether the drafter ran and
why (`worker/engine/_speculation.py`); a job's usage keeps only the count, `drafted_calls`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


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
    """The largest peak of the generations added up: a maximum, never a sum."""
    model_calls: int = 0
    """Passes through mlx-vlm: one per generation, plus one for each shared-prefix prefill."""
    drafted_calls: int = 0
    """Generations decoded with the drafter."""
    speculation: tuple[str, ...] = ()
    """The distinct decisions about the drafter, with their reasons, in order (at most 8)."""

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
        summed = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        summed["peak_memory_bytes"] = max(self.peak_memory_bytes, other.peak_memory_bytes)
        summed["speculation"] = tuple(dict.fromkeys(self.speculation + other.speculation))[:8]
        return Usage(**summed)

    def to_dict(self) -> dict[str, int | float | list[str] | None]:
        """All fields and the derived rates, ready for JSON (a chunk's usage record)."""
        data: dict[str, int | float | list[str] | None] = dict(asdict(self))
        data["speculation"] = list(self.speculation)
        data["prefill_tokens_per_second"] = self.prefill_tokens_per_second
        data["decode_tokens_per_second"] = self.decode_tokens_per_second
        data["draft_acceptance"] = self.draft_acceptance
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Usage:
        """Read `to_dict` output back; derived, unknown and missing keys are tolerated."""
        zero = asdict(cls())  # each field's default: 0 for counts, 0.0 for times
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in zero or value is None:
                continue
            if name == "speculation":
                if not isinstance(value, list | tuple) or not all(
                    isinstance(v, str) for v in value
                ):
                    raise ValueError(f"usage field speculation must be a list of text: {value!r}")
                values[name] = tuple(value)
                continue
            if not isinstance(value, int | float):
                raise ValueError(f"usage field {name} must be a number, not {value!r}")
            values[name] = float(value) if isinstance(zero[name], float) else int(value)
        return cls(**values)


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"usage field speculation must be a list of text, not {value!r}")
    return tuple(value)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def sum_usage(records: Iterable[Mapping[str, object]]) -> dict[str, Any]:
    """The usage of a whole job: counters summed, peak memory the maximum, rates recomputed."""
    total, chunks = Usage(), 0
    for record in records:
        total, chunks = total.add(Usage.from_dict(record)), chunks + 1
    counts = {name: value for name, value in asdict(total).items() if name != "speculation"}
    return {
        **counts,
        "prefill_tokens_per_second": _rounded(total.prefill_tokens_per_second, 1),
        "decode_tokens_per_second": _rounded(total.decode_tokens_per_second, 1),
        "draft_acceptance": _rounded(total.draft_acceptance, 4),
        "chunks": chunks,
    }
