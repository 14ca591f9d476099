"""One thread that owns the model while a host runs many chunks at once.

Chunks run in threads of their own (decoding media, building prompts, writing results); their
model calls meet here. Plain generations become rows of one `ContinuousBatch`, which admits
them as they come and hands each result back when its row ends; any other model work (a
shared-prefix call, a drafted call) runs on this thread between two steps of the batch. MLX and
mlx-vlm keep per-model state (the drafter's statistics, the tokenizer's stopping criteria), so
no two threads ever run the model at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from worker.engine._batch import BatchPrompt, ContinuousBatch
from worker.engine.generation import Generation

_T = TypeVar("_T")


class NotBatchable(ValueError):
    """A prompt the batch cannot take (a vision prompt past the prefill step): run it alone."""


@dataclass
class _Row:
    prompt: BatchPrompt
    future: Future[Generation]


@dataclass
class _Call:
    function: Callable[[], Any]
    future: Future[Any]


class GenerationLoop:
    """The model's thread: `submit` rows from any thread, `call` other model work."""

    def __init__(self, model: Any, processor: Any, *, max_rows: int) -> None:
        self._model = model
        self._processor = processor
        self.max_rows = max_rows
        self.peak_rows = 0
        """The most rows that decoded together, for tests and logs."""
        self._queue: queue.Queue[_Row | _Call | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="nightowl-model", daemon=True)
        self._thread.start()

    def submit(self, prompt: BatchPrompt) -> Future[Generation]:
        """Queue a row for the batch; its future holds the generation, or the error."""
        future: Future[Generation] = Future()
        self._queue.put(_Row(prompt, future))
        return future

    def call(self, function: Callable[[], _T]) -> _T:
        """Run `function` on the model's thread between two steps and return what it returns."""
        if threading.current_thread() is self._thread:
            return function()
        future: Future[_T] = Future()
        self._queue.put(_Call(function, future))
        return future.result()

    def close(self) -> None:
        """Finish the rows in flight, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        batch = self._new_batch()
        waiting: dict[int, Future[Generation]] = {}
        closing = False
        while not closing or waiting:
            block = not waiting and not closing
            for item in self._take(block):
                if item is None:
                    closing = True
                elif isinstance(item, _Call):
                    _settle(item.future, item.function)
                else:
                    self._admit(batch, item, waiting)
            if not waiting:
                continue
            self.peak_rows = max(self.peak_rows, batch.active)
            try:
                finished = batch.step()
            except Exception as exc:  # the batch is lost: every row in it fails alike
                for future in waiting.values():
                    future.set_exception(exc)
                waiting.clear()
                batch.close()
                batch = self._new_batch()
                continue
            for uid, generation in finished:
                waiting.pop(uid).set_result(generation)
        batch.close()

    def _take(self, block: bool) -> list[_Row | _Call | None]:
        items = [self._queue.get()] if block else []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _admit(
        self, batch: ContinuousBatch, row: _Row, waiting: dict[int, Future[Generation]]
    ) -> None:
        try:
            uid = batch.add(row.prompt)
        except Exception as exc:
            row.future.set_exception(exc)
            return
        if uid is None:
            row.future.set_exception(NotBatchable("this prompt must prefill in one piece"))
        else:
            waiting[uid] = row.future

    def _new_batch(self) -> ContinuousBatch:
        return ContinuousBatch(self._model, self._processor, max_rows=self.max_rows)


def _settle(future: Future[Any], function: Callable[[], Any]) -> None:
    try:
        future.set_result(function())
    except BaseException as exc:
        future.set_exception(exc)
