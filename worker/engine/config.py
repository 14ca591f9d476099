"""What the engine loads and how it generates by default: one frozen record, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

TINY = "tiny"
"""The model name that means the tiny random-weight model built locally (its output is noise)."""

DEFAULT_MEMORY_BUDGET_BYTES = 2 * 1024**3
VIDEO_FRAME_TOKENS = (70, 140, 280, 560, 1120)
"""The soft-token budgets per image or frame that Gemma 4's vision processors accept."""


@dataclass(frozen=True)
class EngineConfig:
    """The target model, its drafter and the memory and speculation settings of one engine."""

    model: str
    """A hub id, a local model folder, or `"tiny"`."""
    draft_model: str | None
    """A hub id, a local folder, `"tiny"`, or None for no drafter."""
    speculative: bool | Literal["auto"] = "auto"
    """Whether calls that do not say decode with the drafter: always, never, or where this
    host measured it faster ("auto")."""
    draft_block_size: int = 4
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES
    """Workspace and KV cache allowed on top of the weights."""
    max_batch: int = 16
    """The most sequences decoded at once, whatever the memory would hold."""
    prefill_bytes_per_token: int = 336 * 1024
    """Prefill workspace per prompt token (the 12B's one-piece vision prefill, measured)."""
    models_dir: Path = field(default_factory=lambda: Path("models"))
    """Where `"tiny"` is built, as `models_dir / "tiny"`."""
    cache_limit_bytes: int | None = None
    """MLX buffer-cache limit (`mx.set_cache_limit`); None leaves MLX's default."""
    allow_download: bool = True
    """Whether a hub model missing from the local cache may be downloaded (the demo says no)."""
    video_frame_tokens: int = 70
    """Soft-token budget of one video frame (Gemma 4 takes 70, 140, 280, 560 or 1120); the
    still-image default of 280 would quadruple a segment's prompt (notes pitfall 6)."""

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("model must name a hub id, a folder or 'tiny'")
        if self.speculative not in (True, False, "auto"):
            raise ValueError(f"speculative must be true, false or 'auto', not {self.speculative!r}")
        if self.draft_block_size < 1:
            raise ValueError("draft_block_size must be at least 1")
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if self.memory_budget_bytes < 0:
            raise ValueError("memory_budget_bytes must not be negative")
        if self.cache_limit_bytes is not None and self.cache_limit_bytes < 0:
            raise ValueError("cache_limit_bytes must not be negative")
        if self.video_frame_tokens not in VIDEO_FRAME_TOKENS:
            raise ValueError(
                f"video_frame_tokens must be one of {VIDEO_FRAME_TOKENS}, "
                f"not {self.video_frame_tokens}"
            )
