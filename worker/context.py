"""What a worker process holds: settings, database, object store, dispatcher, and the engine.

Made once per process at start-up (Celery's `worker_process_init`, or `nightowl run`); the model
is loaded on first use by processes that take `infer` work, and only once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from core.db import Database
from core.db.types import utcnow
from core.queue import Dispatcher
from core.settings import Settings
from core.storage import ObjectStore, make_store
from worker.inputs import InputCache

if TYPE_CHECKING:
    from worker.engine import Engine, EngineConfig


def engine_config_from(settings: Settings) -> EngineConfig:
    """The engine's configuration out of the service settings."""
    # Imported here: mlx and mlx-vlm take seconds to import and only model hosts need them.
    from worker.engine import EngineConfig

    return EngineConfig(
        model=settings.model,
        draft_model=settings.draft_model,
        speculative=settings.speculative,
        draft_block_size=settings.draft_block_size,
        memory_budget_bytes=settings.memory_budget_bytes,
        max_batch=settings.max_batch,
        prefill_bytes_per_token=settings.vision_prefill_bytes_per_token,
        models_dir=settings.model_store,
        video_frame_tokens=settings.video_frame_tokens,
    )


@dataclass
class WorkerContext:
    """Resources shared by every task a worker process runs."""

    settings: Settings
    db: Database
    store: ObjectStore
    dispatcher: Dispatcher
    _engine: Engine | None = field(default=None, repr=False)
    _inputs: InputCache | None = field(default=None, repr=False)
    # What "now" is for windows and the reconciler; tests move it instead of sleeping.
    clock: Callable[[], datetime] = field(default=utcnow, repr=False)

    @property
    def inputs(self) -> InputCache:
        """Local files of stored inputs (downloaded once per worker from S3)."""
        if self._inputs is None:
            cache = self.settings.home / "cache" / "inputs"
            self._inputs = InputCache(self.store, cache, self.settings.input_cache_bytes)
        return self._inputs

    @classmethod
    def create(
        cls, settings: Settings, dispatcher: Dispatcher, engine: Engine | None = None
    ) -> WorkerContext:
        """Connect to the database and the object store of `settings`; `engine` if preloaded."""
        db = Database(settings.sqlalchemy_url)
        return cls(settings, db, make_store(settings), dispatcher, engine)

    def engine(self) -> Engine:
        """The model engine, loaded on first use."""
        if self._engine is None:
            from worker.engine import Engine

            self._engine = Engine.load(engine_config_from(self.settings))
        return self._engine

    def release_model_memory(self) -> None:
        """Free MLX's cached buffers between chunks, if this process has loaded the model."""
        if self._engine is not None:
            self._engine.release()
