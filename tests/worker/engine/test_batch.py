"""Batched generation on mlx-vlm's BatchGenerator: every prompt shape batches, each row's greedy
output equals its batch-1 output, and rows join and leave a running batch."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine import Engine, Generation, PromptRequest
from worker.engine._batch import BATCHED, BatchPrompt, ContinuousBatch

QUESTIONS = [
    "Hi",
    "What does the report say about the new telescope and its mirror?",
    "Who signed the contract, when was it signed, and who witnessed it?",
    "List the risks.",
]


def _noise(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, 0.1, int(16000 * seconds))).astype(np.float32)


def _frames(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(count)]


def _text(engine: Engine, question: str, tokens: int = 24) -> PromptRequest:
    return PromptRequest(engine.render([{"role": "user", "content": question}]), max_tokens=tokens)


def _audio(engine: Engine, seconds: float, seed: int) -> PromptRequest:
    prompt = engine.render([{"role": "user", "content": "Transcribe."}], audio_clips=1)
    return PromptRequest(prompt, audio=[_noise(seconds, seed)], max_tokens=24)


def _video(engine: Engine, count: int, seed: int) -> PromptRequest:
    prompt = engine.render([{"role": "user", "content": "Describe."}], frames=count)
    return PromptRequest(prompt, frames=_frames(count, seed), max_tokens=24)


def _alone(engine: Engine, request: PromptRequest) -> Generation:
    return engine.generate(
        request.prompt,
        audio=request.audio,
        frames=request.frames,
        max_tokens=request.max_tokens,
        speculative=False,
    )


def _assert_same_as_alone(engine: Engine, requests: list[PromptRequest]) -> list[Generation]:
    batched = engine.generate_batch(requests)
    assert len(batched) == len(requests)
    for request, row in zip(requests, batched, strict=True):
        alone = _alone(engine, request)
        assert row.text == alone.text
        assert row.finish_reason == alone.finish_reason
        assert row.usage.generated_tokens == alone.usage.generated_tokens
        assert row.usage.prompt_tokens == alone.usage.prompt_tokens
    return batched


def test_text_prompts_of_different_lengths_batch_to_their_batch_1_output(
    tiny_engine: Engine,
) -> None:
    """Four text prompts (left-padded to one length) give each its own greedy output."""
    rows = _assert_same_as_alone(tiny_engine, [_text(tiny_engine, q) for q in QUESTIONS])
    for row in rows:
        assert row.usage.speculation == (BATCHED,)
        assert row.usage.drafted_calls == 0 and row.usage.draft_rounds == 0
        assert row.usage.model_calls == 1 and row.usage.decode_seconds >= 0


def test_audio_clips_of_different_lengths_batch(tiny_engine: Engine) -> None:
    """Clips of 3, 5 and 7 s in one batch: no shape error (mlx-vlm's server answers 500 here)."""
    _assert_same_as_alone(tiny_engine, [_audio(tiny_engine, s, i) for i, s in enumerate([3, 5, 7])])


def test_video_audio_and_text_rows_batch_together(tiny_engine: Engine) -> None:
    """Mixed shapes share one batch, and a text row is not given a vision row's attention."""
    requests = [
        _video(tiny_engine, 3, 1),
        _text(tiny_engine, QUESTIONS[1]),
        _audio(tiny_engine, 4, 2),
        _video(tiny_engine, 2, 3),
    ]
    _assert_same_as_alone(tiny_engine, requests)


def test_rows_join_and_leave_a_running_batch(tiny_engine: Engine) -> None:
    """Continuous admission: rows added after others started, and a row cancelled mid-way,
    leave every other row's output as it is alone."""
    requests = [_text(tiny_engine, q, 20) for q in QUESTIONS]
    late = _audio(tiny_engine, 3, 4)
    batch = ContinuousBatch(tiny_engine._model, tiny_engine._processor, max_rows=4)
    finished: dict[int, Generation] = {}
    try:
        ids = [_add(batch, tiny_engine, r) for r in requests[:3]]
        for _ in range(4):
            finished.update(batch.step())
        cancelled = ids[1]
        batch.cancel(cancelled)
        ids += [_add(batch, tiny_engine, requests[3]), _add(batch, tiny_engine, late)]
        while batch.active:
            finished.update(batch.step())
    finally:
        batch.close()
    assert cancelled not in finished
    kept = [(ids[0], requests[0]), (ids[2], requests[2]), (ids[3], requests[3]), (ids[4], late)]
    for uid, request in kept:
        assert finished[uid].text == _alone(tiny_engine, request).text


def _add(batch: ContinuousBatch, engine: Engine, request: PromptRequest) -> int:
    prompt, clips, images = engine.prompts.media(
        request.prompt, request.audio, request.frames, None
    )
    uid = batch.add(BatchPrompt(prompt, clips, images, request.max_tokens))
    assert uid is not None
    return uid


def test_a_vision_prompt_too_long_to_prefill_in_one_piece_runs_alone(tiny_engine: Engine) -> None:
    """Past the prefill step a vision prompt is not batched (`add` says None); generate_batch
    then runs it on its own, and it still gets its batch-1 output."""
    video, text = _video(tiny_engine, 3, 5), _text(tiny_engine, "Hi")
    prompt, clips, images = tiny_engine.prompts.media(video.prompt, None, video.frames, None)
    small = ContinuousBatch(tiny_engine._model, tiny_engine._processor, max_rows=2, prefill_step=64)
    try:
        assert small.add(BatchPrompt(prompt, clips, images, 8)) is None
        assert small.add(BatchPrompt(text.prompt, max_tokens=8)) is not None
    finally:
        small.close()
    rows = tiny_engine.generate_batch([video, text], prefill_step=64)
    assert [r.text for r in rows] == [
        _alone(tiny_engine, video).text,
        _alone(tiny_engine, text).text,
    ]
    assert rows[0].usage.speculation == ("off: speculative=false",)  # it ran alone, plain


@pytest.mark.parametrize("max_rows", [1, 2])
def test_fewer_places_than_rows_still_runs_every_row(tiny_engine: Engine, max_rows: int) -> None:
    """With fewer places than prompts, rows wait for places and all finish in order."""
    requests = [_text(tiny_engine, q, 12) for q in QUESTIONS]
    rows = tiny_engine.generate_batch(requests, max_rows=max_rows)
    assert [r.text for r in rows] == [_alone(tiny_engine, q).text for q in requests]
