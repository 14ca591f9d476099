"""The generation loop: model calls from many threads decode together, other work in between."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from worker.engine import TINY, Engine, EngineConfig, Generation, TinyModelPaths
from worker.engine._batch import BATCHED

QUESTIONS = ["Hi", "What is in the report?", "Who signed the contract and when?", "List risks."]


def _calls(engine: Engine) -> list[dict[str, object]]:
    rng = np.random.default_rng(3)
    text = [
        {"prompt": engine.render([{"role": "user", "content": q}]), "max_tokens": 16}
        for q in QUESTIONS
    ]
    audio = [
        {
            "prompt": engine.render([{"role": "user", "content": "Transcribe."}], audio_clips=1),
            "audio": [rng.normal(0, 0.1, 16000 * s).astype(np.float32)],
            "max_tokens": 16,
        }
        for s in (2, 3)
    ]
    return text + audio


def test_generate_calls_from_many_threads_decode_as_one_batch(
    tiny_model: TinyModelPaths, tiny_models_dir: Path
) -> None:
    """Six chunks' calls at once share one batch, each with its batch-1 greedy output; a
    shared-prefix call and a drafted call run between the batch's steps."""
    engine = Engine.load(EngineConfig(model=TINY, draft_model=TINY, models_dir=tiny_models_dir))
    calls = _calls(engine)
    alone = [engine.generate(**c, speculative=False) for c in calls]  # type: ignore[arg-type]
    prefix_prompts = [engine.render([{"role": "user", "content": "Doc. " + q}]) for q in QUESTIONS]
    prefix_alone = engine.generate_shared_prefix(prefix_prompts, max_tokens=8, speculative=False)

    engine.start_loop(max_rows=8)
    barrier = threading.Barrier(len(calls) + 1)

    def run(call: dict[str, object]) -> Generation:
        barrier.wait()
        return engine.generate(**call)  # type: ignore[arg-type]

    def prefix() -> list[Generation]:
        barrier.wait()
        return engine.generate_shared_prefix(prefix_prompts, max_tokens=8, speculative=False)

    try:
        with ThreadPoolExecutor(len(calls) + 1) as pool:
            futures = [pool.submit(run, c) for c in calls]
            shared = pool.submit(prefix)
            batched = [f.result(timeout=120) for f in futures]
            prefixed = shared.result(timeout=120)
        drafted = engine.generate(**calls[0], speculative=True)  # type: ignore[arg-type]
        assert engine.loop is not None and engine.loop.peak_rows > 1
    finally:
        engine.stop_loop()
    assert engine.loop is None
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.usage.generated_tokens for g in batched] == [g.usage.generated_tokens for g in alone]
    assert all(g.usage.speculation == (BATCHED,) for g in batched)
    assert [g.text for g in prefixed] == [g.text for g in prefix_alone]
    assert drafted.usage.drafted_calls == 1 and drafted.text == alone[0].text
    # After the loop, calls run one at a time again.
    assert engine.generate(**calls[1], speculative=False).text == alone[1].text  # type: ignore[arg-type]
