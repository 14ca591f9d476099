"""What one prompt produced: its text, why decoding stopped, and its `core.usage.Usage`.

The usage is counted from mlx-vlm's results and the drafter's own statistics (`_decode`).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.usage import Usage


@dataclass(frozen=True)
class Generation:
    """The text one prompt produced and what producing it cost."""

    text: str
    usage: Usage
    finish_reason: str | None = None
    """Why decoding ended: "stop" at an end-of-turn token, "length" at max_tokens."""
