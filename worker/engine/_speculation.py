"""Automatic speculation: whether the drafter pays is measured on this host, not assumed.

The MTP drafter wins or loses by chip, prompt shape and batch size (0.8-1.7x at batch 1 for the
12B, a loss when batched; a random drafter on the tiny model is 0.4-0.6x: notes/gemma4-mlx.md).
So `speculative="auto"` keeps, per (prompt shape, batch size class), running figures of decode
tokens/s with and without the drafter and uses whichever is faster:

- each arm is tried `MIN_TRIES` times first (the drafter first, the plain arm next);
- then the faster arm runs, and the slower one runs again only on a small share of the calls,
  so that a figure that went stale (a warmer machine, longer prompts) can still win back. The
  share is what costs about `EXPLORE_COST` of the time: an arm at a ratio r of the winner's
  speed costs 1/r - 1 extra calls' worth per run, so it runs on EXPLORE_COST * r / (1 - r) of
  the calls (2 % at half speed, more the closer it is), at most `MAX_EXPLORE_SHARE`;
- the figures decay (`DECAY` per observation of that arm), so they follow the machine.

Decode speed counts the tokens after the first (the first comes out of the prefill pass) over
decode time; generations too short to measure (one token, no drafter round) are not observed.
`true` and `false` force the drafter on or off and leave the figures alone.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

MIN_TRIES = 2
EXPLORE_COST = 0.02
MAX_EXPLORE_SHARE = 0.1
DECAY = 0.8


def batch_class(batch: int) -> str:
    """The batch-size class figures are kept for: "1", "2-4", "5-8" or "9+"."""
    if batch <= 1:
        return "1"
    if batch <= 4:
        return "2-4"
    return "5-8" if batch <= 8 else "9+"


@dataclass(frozen=True)
class Decision:
    """Whether one call decodes with the drafter, and why (recorded in the call's usage)."""

    drafter: bool
    reason: str
    measured: bool = False
    """Whether the call's speed is to be observed (auto decisions only)."""


@dataclass
class _Arm:
    tokens: float = 0.0
    seconds: float = 0.0
    tries: int = 0

    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def observe(self, tokens: int, seconds: float) -> None:
        self.tokens = self.tokens * DECAY + tokens
        self.seconds = self.seconds * DECAY + seconds
        self.tries += 1


class SpeculationPolicy:
    """One host's running figures of decode speed with and without its drafter."""

    def __init__(self, *, min_tries: int = MIN_TRIES, explore_cost: float = EXPLORE_COST) -> None:
        self._min_tries = min_tries
        self._explore_cost = explore_cost
        self._arms: dict[tuple[str, str, bool], _Arm] = {}
        self._decisions: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def decide(self, shape: str, batch: int = 1) -> Decision:
        """Whether the next `shape` call at this batch size should use the drafter."""
        size = batch_class(batch)
        where = f"{shape} at batch {size}"
        with self._lock:
            self._decisions[shape, size] += 1
            made = self._decisions[shape, size]
            drafted, plain = self._arm(shape, size, True), self._arm(shape, size, False)
            for arm, with_drafter in ((drafted, True), (plain, False)):
                if arm.tries < self._min_tries:
                    label = "drafter" if with_drafter else "plain"
                    return Decision(with_drafter, f"auto: trying {label} for {where}", True)
            figures = f"plain {plain.rate():.0f} tok/s, drafter {drafted.rate():.0f} tok/s"
            use_drafter = drafted.rate() > plain.rate()
            slower, faster = (plain, drafted) if use_drafter else (drafted, plain)
            ratio = slower.rate() / faster.rate() if faster.rate() else 1.0
            if slower.tries < self._explore_share(ratio) * made:
                label = "plain" if use_drafter else "drafter"
                return Decision(not use_drafter, f"auto: re-measuring {label} for {where}", True)
            label = "drafter" if use_drafter else "plain"
            return Decision(use_drafter, f"auto: {label}, faster for {where} ({figures})", True)

    def _explore_share(self, ratio: float) -> float:
        """The share of calls the slower arm runs on, at `ratio` of the faster one's speed."""
        if ratio >= 1:
            return MAX_EXPLORE_SHARE
        return min(MAX_EXPLORE_SHARE, self._explore_cost * ratio / (1 - ratio))

    def observe(
        self, shape: str, batch: int, drafter: bool, tokens: int, decode_seconds: float
    ) -> None:
        """Record what one call decoded: `tokens` after the first, in `decode_seconds`."""
        if tokens < 1 or decode_seconds <= 0:
            return
        with self._lock:
            self._arm(shape, batch_class(batch), drafter).observe(tokens, decode_seconds)

    def figures(self, shape: str, batch: int = 1) -> dict[str, float]:
        """The current decode tokens/s of each arm (0 until measured), for logs and tests."""
        size = batch_class(batch)
        with self._lock:
            return {
                "plain": self._arm(shape, size, False).rate(),
                "drafter": self._arm(shape, size, True).rate(),
            }

    def _arm(self, shape: str, size: str, drafter: bool) -> _Arm:
        return self._arms.setdefault((shape, size, drafter), _Arm())
