"""Batch size from memory: the KV cache weighed on the loaded model, and the plan's arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

from worker.engine import TINY, Engine, EngineConfig, TinyModelPaths
from worker.engine.batch_size import KVFootprint, plan_batch

_MIB = 1024**2


def test_the_tiny_models_kv_cache_is_weighed_per_layer_kind(
    tiny_engine: Engine, tiny_model: TinyModelPaths
) -> None:
    """Sliding layers are counted up to their window, global layers per token, from the config."""
    config = json.loads((Path(tiny_model.target) / "config.json").read_text())["text_config"]
    types = config["layer_types"][: config["num_hidden_layers"] - config["num_kv_shared_layers"]]
    kv_heads = config["num_key_value_heads"]
    sliding = types.count("sliding_attention") * 2 * kv_heads * config["head_dim"] * 4  # float32
    global_heads = config.get("num_global_key_value_heads") or kv_heads
    full = types.count("full_attention") * 2 * global_heads * config["global_head_dim"] * 4
    assert tiny_engine.kv == KVFootprint(sliding, full, config["sliding_window"])
    window = tiny_engine.kv.window
    assert tiny_engine.kv.sequence_bytes(window * 3) == sliding * window + full * window * 3


def test_the_real_12b_figures_give_the_notes_batch_on_a_16_gb_mac() -> None:
    """With the 12B's KV (320 KiB/token sliding, capped at 1024; 16 KiB/token global) and
    2.5 GB left, about 8 audio clips of 600 + 200 tokens fit (notes, "Real 12B arithmetic")."""
    kv = KVFootprint(320 * 1024, 16 * 1024, 1024)
    plan = plan_batch(
        kv,
        int(2.5 * 1024**3),
        context_tokens=800,
        prefill_tokens=600,
        prefill_bytes_per_token=336 * 1024,
        max_batch=64,
    )
    assert 8 <= plan.size <= 10
    assert plan.reason.startswith(f"{plan.size}: {plan.size} sequences of 800 tokens")


def test_the_plan_respects_a_small_budget_the_cap_and_a_vision_prefill() -> None:
    """A small budget holds fewer rows; the setting caps the rest; one-piece prefill costs room;
    with no room left at all the host still runs one sequence at a time."""
    kv = KVFootprint(1 * _MIB // 1024, 0, 1024)  # 1 KiB a token: 1 MiB per full-window sequence

    def size(budget_mib: int, prefill: int = 0, cap: int = 16) -> int:
        return plan_batch(
            kv,
            budget_mib * _MIB,
            context_tokens=4096,
            prefill_tokens=prefill,
            prefill_bytes_per_token=1024,
            max_batch=cap,
        ).size

    assert size(4) == 4
    assert size(64) == 16 and size(64, cap=40) == 40
    assert size(8, prefill=4096) == 4  # 4 MiB of workspace leaves room for 4
    none = plan_batch(
        kv, 0, context_tokens=10, prefill_tokens=0, prefill_bytes_per_token=1, max_batch=8
    )
    assert none.size == 1 and none.reason.startswith("1: one at a time")


def test_an_engine_plans_its_batches_from_its_own_budget(
    tiny_model: TinyModelPaths, tiny_models_dir: Path
) -> None:
    """Engine.batch_plan uses the config's budget and cap, and generate_batch stays under it."""
    config = EngineConfig(
        model=TINY, draft_model=None, models_dir=tiny_models_dir, max_batch=3, memory_budget_bytes=0
    )
    engine = Engine.load(config)
    assert engine.batch_plan(200, prompt_tokens=100).size == 1
    roomy = Engine.load(EngineConfig(model=TINY, draft_model=None, models_dir=tiny_models_dir))
    plan = roomy.batch_plan(200, prompt_tokens=100)
    assert plan.size == roomy.config.max_batch
    assert "capped by NIGHTOWL_MAX_BATCH" in plan.reason
