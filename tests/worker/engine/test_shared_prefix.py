"""Document Q&A: one prefill of the shared document, the same answers as separate calls."""

from __future__ import annotations

import pytest

from worker.engine import Engine, Generation

# Longer than the tiny model's 64-token sliding window, so reuse crosses a wrapped cache.
DOCUMENT = (
    "The report describes the results of a study that was done over three years. "
    "In the first section, the authors explain the question and the method they used. "
    "In the second section, they show the results in a table and in a figure. "
) * 8
QUESTIONS = [
    "What is the main point of the document?",
    "Who wrote it, and when was it written?",
    "Why did the authors choose this method?",
    "How many people took part in the study?",
]


def _prompts(engine: Engine, document: str, questions: list[str]) -> tuple[list[str], int]:
    """Rendered prompts, and the token length of their shared part (up to 'Question:')."""
    prompts = [
        engine.render(
            [
                {"role": "system", "content": "Answer from the document."},
                {"role": "user", "content": f"{document}\nQuestion: {question}"},
            ]
        )
        for question in questions
    ]
    shared = prompts[0][: prompts[0].index("Question:") + len("Question:")]
    return prompts, engine.count_tokens(shared)


def _texts(generations: list[Generation]) -> list[str]:
    return [generation.text for generation in generations]


@pytest.mark.parametrize("speculative", [False, True])
def test_shared_prefix_gives_the_same_answers(tiny_engine: Engine, speculative: bool) -> None:
    """Reusing the prefilled document changes no greedy token, with or without the drafter."""
    prompts, shared = _prompts(tiny_engine, DOCUMENT, QUESTIONS)
    separate = [
        tiny_engine.generate(prompt, max_tokens=20, speculative=speculative) for prompt in prompts
    ]

    reused = tiny_engine.generate_shared_prefix(prompts, max_tokens=20, speculative=speculative)

    assert _texts(reused) == _texts(separate)
    # Long answers, so that equality says something about decoding after the reused prefix.
    assert sum(g.usage.generated_tokens for g in reused) > 4 * 10
    assert [g.usage.generated_tokens for g in reused] == [
        g.usage.generated_tokens for g in separate
    ]
    assert shared > 200
    assert [g.usage.prefill_tokens_saved for g in reused] == [0] + [shared] * 3
    assert sum(g.usage.prefill_tokens_saved for g in reused) == 3 * shared
    assert [g.usage.prompt_tokens for g in reused] == [tiny_engine.count_tokens(p) for p in prompts]
    assert [g.usage.model_calls for g in reused] == [2, 1, 1, 1]
    if speculative:
        assert all(g.usage.draft_rounds > 0 for g in reused if g.usage.generated_tokens > 1)
        assert sum(g.usage.draft_tokens_proposed for g in reused) > 0


def test_identical_prompts_reuse_all_but_the_last_token(tiny_engine: Engine) -> None:
    """Two copies of one prompt share everything but their last token, which is prefilled anew."""
    prompts, _ = _prompts(tiny_engine, DOCUMENT, QUESTIONS[:1] * 2)
    alone = tiny_engine.generate(prompts[0], max_tokens=16, speculative=True)

    reused = tiny_engine.generate_shared_prefix(prompts, max_tokens=16, speculative=True)

    assert _texts(reused) == [alone.text, alone.text]
    assert reused[1].usage.prefill_tokens_saved == tiny_engine.count_tokens(prompts[0]) - 1


def test_calls_do_not_share_a_cache(tiny_engine: Engine) -> None:
    """A second call with another document answers from that document, not the first one's."""
    first, _ = _prompts(tiny_engine, DOCUMENT, QUESTIONS[:2])
    other_document = "The children were playing in the park near the old bridge. " * 20
    second, _ = _prompts(tiny_engine, other_document, QUESTIONS[:2])
    expected = [tiny_engine.generate(prompt, max_tokens=12).text for prompt in second]

    first_answers = tiny_engine.generate_shared_prefix(first, max_tokens=12)
    answers = tiny_engine.generate_shared_prefix(second, max_tokens=12)

    assert _texts(answers) == expected
    assert _texts(answers) != _texts(first_answers)


def test_prompts_without_a_common_prefix_run_separately(tiny_engine: Engine) -> None:
    """With nothing shared (or a single prompt) no prefix is prefilled and nothing is saved."""
    lone = tiny_engine.generate_shared_prefix(["Describe the image."], max_tokens=6)
    unrelated = tiny_engine.generate_shared_prefix(["What", "Why"], max_tokens=6)

    assert lone[0].text == tiny_engine.generate("Describe the image.", max_tokens=6).text
    assert [g.usage.prefill_tokens_saved for g in lone + unrelated] == [0, 0, 0]
    assert [g.usage.model_calls for g in lone + unrelated] == [1, 1, 1]
    assert tiny_engine.generate_shared_prefix([], max_tokens=6) == []
