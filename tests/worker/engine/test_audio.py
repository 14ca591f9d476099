"""Audio prompts on the tiny engine: audio first, counted tokens, drafting, no shared state."""

from __future__ import annotations

import mlx_vlm
import numpy as np
import pytest
from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

from worker.engine import Engine, TinyModelPaths

RATE = 16_000
SYSTEM = "Answer in one sentence."
QUESTION = "Transcribe the audio."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]


def _clip(seconds: float, seed: int) -> np.ndarray:
    """Seeded noise: different seeds give clips the random model tells apart."""
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)


@pytest.fixture(scope="module")
def prompt(tiny_engine: Engine) -> str:
    """A system + user prompt with one audio clip."""
    return tiny_engine.render(MESSAGES, audio_clips=1)


def test_render_opens_the_user_turn_with_the_audio(tiny_engine: Engine, prompt: str) -> None:
    """The placeholders come first; the system text is folded in after them, then the user's."""
    assert prompt == (f"<bos><|turn>user\n<|audio|>{SYSTEM}\n\n{QUESTION}<turn|>\n<|turn>model\n")
    two = tiny_engine.render(MESSAGES, audio_clips=2)
    assert two.startswith(f"<bos><|turn>user\n<|audio|><|audio|>{SYSTEM}")
    # Without audio the system message keeps its own turn, as before.
    assert tiny_engine.render(MESSAGES).startswith(f"<bos><|turn>system\n{SYSTEM}<turn|>")


def test_render_puts_audio_in_the_first_user_turn_only(tiny_engine: Engine) -> None:
    """In a conversation the audio opens the first user turn; audio with no text works too."""
    conversation = tiny_engine.render(
        [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "The dog does not move."},
            {"role": "user", "content": "Why?"},
        ],
        audio_clips=1,
    )
    bare = tiny_engine.render([{"role": "user", "content": ""}], audio_clips=1)

    assert conversation.startswith(f"<bos><|turn>user\n<|audio|>{QUESTION}<turn|>")
    assert conversation.count("<|audio|>") == 1
    assert bare == "<bos><|turn>user\n<|audio|><turn|>\n<|turn>model\n"


def test_render_refuses_what_would_not_put_audio_first(tiny_engine: Engine) -> None:
    """No user turn to open, placeholder text in a message, or a negative count: refused."""
    with pytest.raises(ValueError, match="user message first"):
        tiny_engine.render([{"role": "assistant", "content": "Hello."}], audio_clips=1)
    with pytest.raises(ValueError, match="user message first"):
        tiny_engine.render([{"role": "system", "content": SYSTEM}], audio_clips=1)
    with pytest.raises(ValueError, match="placeholder"):
        tiny_engine.render([{"role": "user", "content": "<|audio|> again"}], audio_clips=1)
    with pytest.raises(ValueError, match="negative"):
        tiny_engine.render(MESSAGES, audio_clips=-1)


def test_audio_soft_tokens_precede_the_text_in_the_model_input(
    tiny_engine: Engine, tiny_model: TinyModelPaths
) -> None:
    """After mlx-vlm's prepare_inputs the clips' soft tokens run before the turn's first text."""
    model, processor = mlx_vlm.load(str(tiny_model.target))
    tokenizer = processor.tokenizer
    prompt = tiny_engine.render(MESSAGES, audio_clips=2)
    clips = [_clip(2.0, 1), _clip(1.5, 2)]

    inputs = prepare_inputs(
        processor,
        audio=clips,
        prompts=prompt,
        add_special_tokens=should_add_special_tokens(model.config.model_type, processor),
    )
    ids = inputs["input_ids"][0].tolist()

    audio, boa, eoa = (
        tokenizer.convert_tokens_to_ids(t) for t in ("<|audio|>", "<|audio>", "<audio|>")
    )
    assert audio == processor.audio_token_id == model.config.audio_token_id
    start = ids.index(boa)
    # 2 s -> 50 soft tokens, 1.5 s -> ceil(37.5) = 38.
    media = [boa, *[audio] * 50, eoa, boa, *[audio] * 38, eoa]
    assert tokenizer.decode(ids[:start]) == "<bos><|turn>user\n"
    assert ids[start : start + len(media)] == media
    assert audio not in ids[start + len(media) :]
    assert tokenizer.decode(ids[start + len(media) :]).startswith(f"{SYSTEM}\n\n{QUESTION}")
    assert len(ids) == tiny_engine.count_tokens(prompt, audio_seconds=[2.0, 1.5])


@pytest.mark.parametrize("speculative", [False, True])
def test_prompt_tokens_grow_by_25_per_second(
    tiny_engine: Engine, prompt: str, speculative: bool
) -> None:
    """mlx-vlm's prompt count includes the soft tokens, 25 per second, as count_tokens says."""
    counts = {}
    for seconds in (5.0, 10.0, 30.0):
        generation = tiny_engine.generate(
            prompt, audio=[_clip(seconds, 3)], max_tokens=2, speculative=speculative
        )
        counts[seconds] = generation.usage.prompt_tokens
        assert counts[seconds] == tiny_engine.count_tokens(prompt, audio_seconds=[seconds])
        # The placeholder's one token becomes the markers and the soft tokens.
        assert counts[seconds] == tiny_engine.count_tokens(prompt) - 1 + tiny_engine.audio_tokens(
            seconds
        )

    assert counts[10.0] - counts[5.0] == 5 * 25
    assert tiny_engine.audio_tokens(5.0) == 125 + 2
    assert tiny_engine.audio_tokens(30.0) == 750 + 2


def test_partial_frames_round_up(tiny_engine: Engine, prompt: str) -> None:
    """A clip that ends inside a 40 ms frame gets a token for that frame."""
    clip = _clip(3.0, 4)[: 3 * RATE - 5]
    generation = tiny_engine.generate(prompt, audio=[clip], max_tokens=1)

    assert tiny_engine.audio_tokens(len(clip) / RATE) == 75 + 2
    assert generation.usage.prompt_tokens == tiny_engine.count_tokens(
        prompt, audio_seconds=[len(clip) / RATE]
    )


def test_speculative_greedy_output_equals_plain_output(tiny_engine: Engine, prompt: str) -> None:
    """After an audio prefill the drafter runs, and greedy text is the same as without it."""
    clip = _clip(4.0, 5)
    plain = tiny_engine.generate(prompt, audio=[clip], max_tokens=24, speculative=False)
    drafted = tiny_engine.generate(
        prompt, audio=[clip], max_tokens=24, speculative=True, draft_block_size=4
    )

    assert drafted.text == plain.text
    assert drafted.usage.generated_tokens == plain.usage.generated_tokens == 24
    assert drafted.usage.prompt_tokens == plain.usage.prompt_tokens
    assert plain.usage.draft_rounds == plain.usage.draft_tokens_proposed == 0
    assert drafted.usage.draft_rounds >= 23 // 4
    assert 0 < drafted.usage.draft_tokens_proposed <= 3 * drafted.usage.draft_rounds
    assert drafted.usage.draft_acceptance is not None


@pytest.mark.parametrize("speculative", [False, True])
def test_calls_with_different_clips_share_no_state(
    tiny_engine: Engine, prompt: str, speculative: bool
) -> None:
    """Clip A, then clip B in the same layout, then A again: A's answer does not change."""
    first, other = _clip(3.0, 6), _clip(3.0, 7)

    def answer(clip: np.ndarray) -> str:
        return tiny_engine.generate(
            prompt, audio=[clip], max_tokens=16, speculative=speculative
        ).text

    a = answer(first)
    b = answer(other)

    assert answer(first) == a
    # The seeded model tells these clips apart, so B's state would show if it leaked into A.
    assert b != a


def test_clips_over_30_seconds_are_refused(tiny_engine: Engine, prompt: str) -> None:
    """One sample more than 30 s is refused everywhere instead of being truncated."""
    too_long = np.zeros(30 * RATE + 1, dtype=np.float32)

    with pytest.raises(ValueError, match="30 s"):
        tiny_engine.generate(prompt, audio=[too_long], max_tokens=1)
    with pytest.raises(ValueError, match="30 s"):
        tiny_engine.count_tokens(prompt, audio_seconds=[30.01])
    with pytest.raises(ValueError, match="30 s"):
        tiny_engine.audio_tokens(31.0)


def test_clips_must_match_the_placeholders(tiny_engine: Engine, prompt: str) -> None:
    """One clip per placeholder, mono, non-empty; otherwise refused before the model runs."""
    clip = _clip(1.0, 8)
    text_only = tiny_engine.render(MESSAGES)

    with pytest.raises(ValueError, match="2 clips"):
        tiny_engine.generate(prompt, audio=[clip, clip], max_tokens=1)
    with pytest.raises(ValueError, match="0 audio placeholders"):
        tiny_engine.generate(text_only, audio=[clip], max_tokens=1)
    with pytest.raises(ValueError, match="2 clips"):
        tiny_engine.count_tokens(prompt, audio_seconds=[1.0, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        tiny_engine.generate(prompt, audio=[np.stack([clip, clip], axis=1)], max_tokens=1)
    with pytest.raises(ValueError, match="at least one sample"):
        tiny_engine.generate(prompt, audio=[np.zeros(0, dtype=np.float32)], max_tokens=1)
    with pytest.raises(ValueError, match="more than 0 s"):
        tiny_engine.audio_tokens(0.0)
