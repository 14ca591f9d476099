"""Automatic speculation: the policy's rules on given figures, and auto on the tiny engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.engine import TINY, Engine, EngineConfig, TinyModelPaths
from worker.engine._speculation import EXPLORE_COST, MIN_TRIES, SpeculationPolicy, batch_class


def _run(policy: SpeculationPolicy, calls: int, plain: float, drafter: float) -> list[bool]:
    """Let `policy` decide `calls` text calls whose arms decode at the given tokens/s."""
    used = []
    for _ in range(calls):
        decision = policy.decide("text")
        speed = drafter if decision.drafter else plain
        policy.observe("text", 1, decision.drafter, 100, 100 / speed)
        used.append(decision.drafter)
    return used


def test_each_arm_is_tried_then_the_faster_one_runs() -> None:
    """Both arms get MIN_TRIES calls (drafter first), then the measured winner is used."""
    slow_drafter = _run(SpeculationPolicy(), 2 * MIN_TRIES + 10, plain=500, drafter=250)
    assert slow_drafter[:MIN_TRIES] == [True] * MIN_TRIES
    assert slow_drafter[MIN_TRIES : 2 * MIN_TRIES] == [False] * MIN_TRIES
    assert not any(slow_drafter[2 * MIN_TRIES :])
    fast_drafter = _run(SpeculationPolicy(), 2 * MIN_TRIES + 10, plain=250, drafter=400)
    assert all(fast_drafter[2 * MIN_TRIES :])


def test_the_slower_arm_is_re_measured_rarely_and_can_win_back() -> None:
    """At half the speed, the loser re-runs on EXPLORE_COST of the calls (costing about that
    much time); when the machine changes, re-measuring finds the new winner."""
    policy = SpeculationPolicy()
    used = _run(policy, 400, plain=500, drafter=250)
    drafted = sum(used)
    assert MIN_TRIES < drafted <= MIN_TRIES + EXPLORE_COST * 400 + 1
    # A close loser is re-measured more often: exploring it costs little.
    close = SpeculationPolicy()
    assert sum(_run(close, 400, plain=500, drafter=450)) > drafted
    # The drafter becomes much faster (say, a workload it suits): re-measuring finds it.
    later = _run(policy, 400, plain=500, drafter=2000)
    assert all(later[-100:])


def test_figures_are_kept_per_shape_and_batch_class() -> None:
    """What text prompts measured decides nothing for audio, nor batch 1 for batch 8."""
    policy = SpeculationPolicy()
    _run(policy, 20, plain=500, drafter=250)
    assert policy.decide("audio").reason.startswith("auto: trying drafter for audio at batch 1")
    assert policy.decide("text", batch=8).reason.startswith("auto: trying drafter")
    assert policy.figures("text")["plain"] == pytest.approx(500)
    assert policy.figures("text")["drafter"] == pytest.approx(250)
    classes = [batch_class(b) for b in (1, 2, 4, 5, 8, 9, 64)]
    assert classes == ["1", "2-4", "2-4", "5-8", "5-8", "9+", "9+"]


def test_calls_too_short_to_measure_are_not_counted() -> None:
    """A one-token answer (no decode time) leaves the figures and the tries as they were."""
    policy = SpeculationPolicy()
    policy.observe("text", 1, True, 0, 0.0)
    assert policy.decide("text").reason == "auto: trying drafter for text at batch 1"
    assert policy.figures("text") == {"plain": 0.0, "drafter": 0.0}


@pytest.fixture
def fresh_engine(tiny_model: TinyModelPaths, tiny_models_dir: Path) -> Engine:
    """A tiny engine of its own (auto is the default), so no other test's figures count."""
    return Engine.load(EngineConfig(model=TINY, draft_model=TINY, models_dir=tiny_models_dir))


def test_auto_turns_a_random_drafter_off_on_the_tiny_model(fresh_engine: Engine) -> None:
    """The tiny model's random drafter accepts almost nothing: auto measures it, then decodes
    plain, and every generation's usage says what was decided and why."""
    prompt = fresh_engine.render([{"role": "user", "content": "Tell me about the observatory."}])
    runs = [fresh_engine.generate(prompt, max_tokens=32) for _ in range(2 * MIN_TRIES + 4)]

    assert fresh_engine.config.speculative == "auto"
    tried = runs[: 2 * MIN_TRIES]
    assert [r.usage.drafted_calls for r in tried] == [1] * MIN_TRIES + [0] * MIN_TRIES
    assert tried[0].usage.draft_rounds > 0 and tried[-1].usage.draft_rounds == 0
    figures = fresh_engine.speculation_policy.figures("text")
    assert figures["plain"] > figures["drafter"] > 0
    for run in runs[2 * MIN_TRIES :]:
        assert run.usage.drafted_calls == 0 and run.usage.draft_rounds == 0
        (reason,) = run.usage.speculation
        assert reason.startswith("auto: plain, faster for text at batch 1 (plain ")
    # Greedy output does not depend on the decision.
    assert len({run.text for run in runs}) == 1


def test_forced_settings_and_a_missing_drafter_are_recorded(
    fresh_engine: Engine, tiny_model: TinyModelPaths, tiny_models_dir: Path
) -> None:
    """true and false override auto and leave its figures alone; no drafter means plain."""
    prompt = fresh_engine.render([{"role": "user", "content": "Hello there."}])
    on = fresh_engine.generate(prompt, max_tokens=8, speculative=True)
    off = fresh_engine.generate(prompt, max_tokens=8, speculative=False)
    assert (on.usage.drafted_calls, on.usage.speculation) == (1, ("on: speculative=true",))
    assert (off.usage.drafted_calls, off.usage.speculation) == (0, ("off: speculative=false",))
    assert fresh_engine.speculation_policy.figures("text") == {"plain": 0.0, "drafter": 0.0}

    config = EngineConfig(model=TINY, draft_model=None, models_dir=tiny_models_dir)
    alone = Engine.load(config).generate(prompt, max_tokens=8, speculative="auto")
    assert alone.usage.speculation == ("off: no drafter loaded",)
    assert alone.usage.drafted_calls == 0
