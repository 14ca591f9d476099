"""Usage records: sums, derived rates, a lossless trip through JSON, and a job's summed usage."""

from __future__ import annotations

import json

import pytest

from core.usage import Usage, sum_usage

FIRST = Usage(
    prompt_tokens=1000,
    generated_tokens=50,
    prefill_tokens_saved=0,
    draft_rounds=20,
    draft_tokens_proposed=60,
    draft_tokens_accepted=30,
    prefill_seconds=0.5,
    decode_seconds=2.0,
    peak_memory_bytes=300,
    model_calls=2,
    drafted_calls=1,
    speculation=("on: speculative=true",),
)
SECOND = Usage(
    prompt_tokens=1010,
    generated_tokens=30,
    prefill_tokens_saved=990,
    prefill_seconds=0.01,
    decode_seconds=1.0,
    peak_memory_bytes=500,
    model_calls=1,
    speculation=("auto: plain, faster for text at batch 1", "on: speculative=true"),
)


def test_add_sums_counts_and_keeps_the_larger_peak() -> None:
    """Adding two usages sums every counter and time and takes the maximum peak memory."""
    total = FIRST.add(SECOND)

    assert total.prompt_tokens == 2010
    assert total.generated_tokens == 80
    assert total.prefill_tokens_saved == 990
    assert (total.draft_rounds, total.draft_tokens_proposed, total.draft_tokens_accepted) == (
        20,
        60,
        30,
    )
    assert total.prefill_seconds == pytest.approx(0.51)
    assert total.decode_seconds == pytest.approx(3.0)
    assert total.peak_memory_bytes == 500
    assert total.model_calls == 3
    assert total.drafted_calls == 1
    # The distinct decisions, first seen first.
    assert total.speculation == ("on: speculative=true", "auto: plain, faster for text at batch 1")
    assert Usage().add(FIRST) == FIRST


def test_derived_rates() -> None:
    """Prefill speed counts only prefilled tokens; acceptance is None without drafting."""
    assert FIRST.prefill_tokens_per_second == pytest.approx(2000.0)
    assert SECOND.prefill_tokens_per_second == pytest.approx(2000.0)
    assert FIRST.decode_tokens_per_second == pytest.approx(25.0)
    assert FIRST.draft_acceptance == pytest.approx(0.5)
    assert SECOND.draft_acceptance is None
    assert Usage().prefill_tokens_per_second is None
    assert Usage().decode_tokens_per_second is None


def test_to_dict_and_from_dict_round_trip_through_json() -> None:
    """`to_dict` carries fields and rates; `from_dict` reads it back, ignoring the rates."""
    data = json.loads(json.dumps(FIRST.to_dict()))

    assert data["draft_acceptance"] == pytest.approx(0.5)
    assert data["prefill_tokens_per_second"] == pytest.approx(2000.0)
    assert Usage.from_dict(data) == FIRST
    assert Usage.from_dict(SECOND.to_dict()) == SECOND


def test_from_dict_tolerates_missing_and_unknown_keys() -> None:
    """Older or newer records load: missing counters are zero, unknown keys are skipped."""
    usage = Usage.from_dict({"prompt_tokens": 5, "chunks": 3, "draft_acceptance": None})

    assert usage == Usage(prompt_tokens=5)
    with pytest.raises(ValueError, match="generated_tokens"):
        Usage.from_dict({"generated_tokens": "many"})
    with pytest.raises(ValueError, match="speculation"):
        Usage.from_dict({"speculation": "on"})


def test_sum_usage_is_the_job_record_the_api_returns() -> None:
    """A job's usage: every counter summed, the peak the larger, rates rounded, chunks counted."""
    records = [json.loads(json.dumps(FIRST.to_dict())), SECOND.to_dict(), {"prompt_tokens": None}]

    assert sum_usage(records) == {
        "prompt_tokens": 2010,
        "generated_tokens": 80,
        "prefill_tokens_saved": 990,
        "draft_rounds": 20,
        "draft_tokens_proposed": 60,
        "draft_tokens_accepted": 30,
        "prefill_seconds": pytest.approx(0.51),
        "decode_seconds": pytest.approx(3.0),
        "peak_memory_bytes": 500,
        "model_calls": 3,
        "drafted_calls": 1,
        "prefill_tokens_per_second": 2000.0,
        "decode_tokens_per_second": 26.7,
        "draft_acceptance": 0.5,
        "chunks": 3,
    }


def test_sum_usage_of_no_records_has_no_rates() -> None:
    """Without records every counter is zero and the rates are None."""
    total = sum_usage([])

    assert total["chunks"] == 0 and total["prompt_tokens"] == 0
    assert total["prefill_tokens_per_second"] is None
    assert total["decode_tokens_per_second"] is None
    assert total["draft_acceptance"] is None
