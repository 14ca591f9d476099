"""The model engine: Gemma 4 unified through mlx-vlm, with MTP speculation and prefix reuse.

A pure library (no Celery, no database): `Engine.load(EngineConfig(...))` once per process,
then `generate` (text; audio clips placed first; one video segment of frames after them) /
`generate_shared_prefix` (text) / `generate_batch` (many `PromptRequest`s decoded together on
mlx-vlm's continuous batcher), each returning `Generation`s with their `Usage` (the record type
of `core.usage`, re-exported here).
"""

from core.usage import Usage
from worker.engine.config import TINY, EngineConfig
from worker.engine.engine import Engine, PromptRequest
from worker.engine.generation import Generation
from worker.engine.memory import MemoryPlan, check_memory_fit
from worker.engine.tiny import TinyModelPaths, build_tiny_model

__all__ = [
    "TINY",
    "Engine",
    "EngineConfig",
    "Generation",
    "MemoryPlan",
    "PromptRequest",
    "TinyModelPaths",
    "Usage",
    "build_tiny_model",
    "check_memory_fit",
]
