"""The memory check refuses models that do not fit, before any weights are loaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.errors import EngineError
from worker.engine import Engine, EngineConfig, check_memory_fit

GIB = 1024**3


def _fake_model(folder: Path, weight_bytes: int, bits: int = 8) -> Path:
    """A model folder with a quantized config.json and a sparse safetensors file of that size."""
    folder.mkdir()
    quantization = {"group_size": 64, "bits": bits}
    config = {"model_type": "gemma4_unified", "quantization": quantization}
    (folder / "config.json").write_text(json.dumps(config))
    with (folder / "model.safetensors").open("wb") as weights:
        os.truncate(weights.fileno(), weight_bytes)  # sparse: no disk space used
    return folder


def test_a_12b_model_is_refused_on_8_gib_with_the_numbers(tmp_path: Path) -> None:
    """7 GiB of weights, 0.5 GiB of drafter and a 2 GiB budget do not fit in 8 GiB."""
    target = _fake_model(tmp_path / "gemma-12b", 7 * GIB)
    drafter = _fake_model(tmp_path / "assistant", GIB // 2, bits=4)

    with pytest.raises(EngineError) as refused:
        check_memory_fit(target, drafter, 2 * GIB, total_memory_bytes=8 * GIB)

    message = refused.value.message
    for fact in ("7.0 GiB", "8-bit", "0.5 GiB", "2.0 GiB", "9.5 GiB", "8.0 GiB"):
        assert fact in message
    assert "NIGHTOWL_MEMORY_BUDGET_BYTES" in message
    assert "gemma-4-12B-it-4bit" in message
    assert "16 GB" in message


def test_the_same_model_fits_in_32_gib(tmp_path: Path) -> None:
    """On a 32 GiB machine the plan fits and reports the real file sizes."""
    target = _fake_model(tmp_path / "gemma-12b", 7 * GIB)

    plan = check_memory_fit(target, None, 2 * GIB, total_memory_bytes=32 * GIB)

    assert plan.fits
    assert (plan.weights_bytes, plan.draft_bytes, plan.budget) == (7 * GIB, 0, 2 * GIB)
    assert plan.needed == 9 * GIB


def test_the_budget_alone_can_tip_the_balance(tmp_path: Path) -> None:
    """Weights that fit are still refused when the configured budget pushes past total memory."""
    target = _fake_model(tmp_path / "gemma-12b", 7 * GIB)

    check_memory_fit(target, None, 1 * GIB, total_memory_bytes=8 * GIB)
    with pytest.raises(EngineError, match="does not fit"):
        check_memory_fit(target, None, 2 * GIB, total_memory_bytes=8 * GIB)


def test_engine_load_checks_before_reading_weights(tmp_path: Path) -> None:
    """Engine.load refuses the fake 12B for lack of memory, never reaching its (empty) weights."""
    target = _fake_model(tmp_path / "gemma-12b", 7 * GIB)
    config = EngineConfig(model=str(target), draft_model=None, models_dir=tmp_path)

    with pytest.raises(EngineError, match="does not fit in memory"):
        Engine.load(config, total_memory_bytes=8 * GIB)


def test_engine_load_turns_a_broken_model_into_engine_error(tmp_path: Path) -> None:
    """When the weights fit but cannot be read, loading fails with EngineError, not a crash."""
    target = _fake_model(tmp_path / "broken", 1024)
    config = EngineConfig(model=str(target), draft_model=None, models_dir=tmp_path)

    with pytest.raises(EngineError, match="cannot load the model"):
        Engine.load(config, total_memory_bytes=32 * GIB)


def test_missing_folders_and_weights_are_named(tmp_path: Path) -> None:
    """A folder that does not exist, or has no weights, is reported as such."""
    with pytest.raises(EngineError, match="does not exist"):
        check_memory_fit(tmp_path / "nowhere", None, 0, total_memory_bytes=GIB)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(EngineError, match="has no weights"):
        check_memory_fit(tmp_path / "empty", None, 0, total_memory_bytes=GIB)


def test_mixed_precision_checkpoints_are_named_as_such(tmp_path: Path) -> None:
    """A '4-bit' checkpoint whose FFN layers are 8-bit says so in the refusal."""
    target = tmp_path / "it-4bit"
    _fake_model(target, 11 * GIB, bits=4)
    config = json.loads((target / "config.json").read_text())
    config["quantization"]["language_model.model.layers.0.mlp.down_proj"] = {"bits": 8}
    (target / "config.json").write_text(json.dumps(config))

    with pytest.raises(EngineError, match="4-bit, group size 64, some layers 8-bit"):
        check_memory_fit(target, None, 2 * GIB, total_memory_bytes=12 * GIB)


def test_a_hub_model_not_in_the_cache_is_refused_when_downloads_are_off(tmp_path: Path) -> None:
    """With allow_download off, a hub id missing from the cache fails at once, naming the fix."""
    config = EngineConfig(
        model="mlx-community/not-a-cached-model",
        draft_model=None,
        models_dir=tmp_path,
        allow_download=False,
    )
    with pytest.raises(EngineError, match="hf download mlx-community/not-a-cached-model"):
        Engine.load(config, total_memory_bytes=32 * GIB)
