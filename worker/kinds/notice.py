"""The tiny random-weight model standing in for the real one: marked on chunks, warned on jobs.

Each chunk output carries `model_marks(engine)`: the model id, and `tiny` when its text is noise.
The stage runner adds `TINY_WARNING` to a job's result when any of its chunks was tiny, once for
every kind (`worker.stages`); a kind only reads `tiny_warning` for its own artifacts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from worker.kinds.contract import ChunkResult

if TYPE_CHECKING:
    from worker.engine import Engine

TINY_WARNING = (
    "produced by the tiny random-weight test model (no real weights were available): "
    "the text is noise"
)


def model_marks(engine: Engine) -> dict[str, Any]:
    """The `model` and `tiny` fields every chunk output starts with."""
    return {"model": engine.model_id, "tiny": engine.is_tiny}


def tiny_warning(chunks: Iterable[ChunkResult]) -> str | None:
    """`TINY_WARNING` when the tiny model produced any of these chunks, else None."""
    return TINY_WARNING if any(c.output.get("tiny") for c in chunks) else None
