"""Single-prompt generation on the tiny engine: speculation, counts, timings and rendering."""

from __future__ import annotations

import mlx.core as mx
import pytest

from worker.engine import Engine

QUESTION = "What is the main point of the report, and who wrote it?"


@pytest.fixture(scope="module")
def prompt(tiny_engine: Engine) -> str:
    """A rendered system + user prompt."""
    return tiny_engine.render(
        [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": QUESTION},
        ]
    )


def test_the_tiny_engine_says_it_is_tiny(tiny_engine: Engine) -> None:
    """An engine on the random model flags it, so callers can warn that output is noise."""
    assert tiny_engine.is_tiny
    assert tiny_engine.model_id == "tiny"
    assert tiny_engine.draft_model_id == "tiny"


def test_render_applies_the_chat_template(tiny_engine: Engine, prompt: str) -> None:
    """Rendering puts both turns in the template and opens the model's turn."""
    assert prompt.startswith("<bos><|turn>system\nAnswer in one sentence.<turn|>")
    assert f"<|turn>user\n{QUESTION}<turn|>" in prompt
    assert prompt.endswith("<|turn>model\n")


def test_render_refuses_unknown_roles(tiny_engine: Engine) -> None:
    """A role the template does not know is refused rather than silently dropped."""
    with pytest.raises(ValueError, match="tool"):
        tiny_engine.render([{"role": "tool", "content": "x"}])


def test_speculative_greedy_output_equals_plain_output(tiny_engine: Engine, prompt: str) -> None:
    """With the drafter, greedy text is identical, and the drafter's rounds are counted."""
    plain = tiny_engine.generate(prompt, max_tokens=24, speculative=False)
    drafted = tiny_engine.generate(prompt, max_tokens=24, speculative=True, draft_block_size=4)

    assert drafted.text == plain.text
    assert drafted.usage.generated_tokens == plain.usage.generated_tokens == 24
    assert plain.usage.draft_rounds == plain.usage.draft_tokens_proposed == 0
    assert plain.usage.draft_acceptance is None
    # Each round after the first token drafts block_size - 1 tokens (fewer near max_tokens).
    assert drafted.usage.draft_rounds >= 23 // 4
    assert 0 < drafted.usage.draft_tokens_proposed <= 3 * drafted.usage.draft_rounds
    assert drafted.usage.draft_acceptance is not None


def test_drafter_statistics_are_per_call(tiny_engine: Engine, prompt: str) -> None:
    """A one-token answer reports no drafting, not the previous call's rounds."""
    tiny_engine.generate(prompt, max_tokens=16, speculative=True)
    single = tiny_engine.generate(prompt, max_tokens=1, speculative=True)

    assert single.usage.generated_tokens == 1
    assert single.usage.draft_rounds == 0


def test_prompt_tokens_match_count_tokens(tiny_engine: Engine, prompt: str) -> None:
    """The prompt size mlx-vlm reports is what `count_tokens` predicts."""
    generation = tiny_engine.generate(prompt, max_tokens=4)

    assert generation.usage.prompt_tokens == tiny_engine.count_tokens(prompt)
    assert generation.usage.prefill_tokens_saved == 0


def test_usage_has_real_times_and_memory(tiny_engine: Engine, prompt: str) -> None:
    """Timings, rates and peak memory are measured, and one model call is counted."""
    generation = tiny_engine.generate(prompt, max_tokens=8, speculative=False)
    usage = generation.usage

    assert usage.prefill_seconds > 0
    assert usage.decode_seconds > 0
    assert usage.prefill_tokens_per_second is not None
    assert usage.prefill_tokens_per_second > 0
    assert usage.peak_memory_bytes > 0
    assert usage.model_calls == 1
    assert generation.finish_reason in {"stop", "length"}


def test_common_words_are_single_tokens(tiny_engine: Engine) -> None:
    """The tokenizer trained on the built-in corpus keeps everyday words whole."""
    assert tiny_engine.count_tokens(" the document") == 2
    assert tiny_engine.count_tokens("What is the main point of the document?") == 9


def test_max_tokens_must_be_positive(tiny_engine: Engine, prompt: str) -> None:
    """Asking for no tokens at all is a caller's mistake, refused before the model runs."""
    with pytest.raises(ValueError, match="max_tokens"):
        tiny_engine.generate(prompt, max_tokens=0)


def test_release_frees_cached_buffers(tiny_engine: Engine, prompt: str) -> None:
    """After `release`, MLX holds no cached buffers and peak memory starts again."""
    tiny_engine.generate(prompt, max_tokens=4)
    tiny_engine.release()

    assert mx.get_cache_memory() == 0
    assert mx.get_peak_memory() <= mx.get_active_memory()
