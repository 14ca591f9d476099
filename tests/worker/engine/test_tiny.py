"""The tiny random-weight model: deterministic, complete, and accepted by mlx-vlm for all media."""

from __future__ import annotations

from pathlib import Path

import mlx_vlm
import numpy as np
from mlx_vlm.prompt_utils import apply_chat_template
from mlx_vlm.speculative.drafters import load_drafter, validate_drafter_compatibility
from PIL import Image

from worker.engine import TinyModelPaths, build_tiny_model


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    """Building twice with the same seed writes the same bytes: weights, tokenizer and configs."""
    first = build_tiny_model(tmp_path / "a", seed=7)
    second = build_tiny_model(tmp_path / "b", seed=7)

    assert _files(first.target.parent) == _files(second.target.parent)
    assert (first.target / "model.safetensors").stat().st_size > 1_000_000


def test_a_complete_build_is_returned_without_rebuilding(tmp_path: Path) -> None:
    """A second call finds the completion marker and leaves the files untouched."""
    paths = build_tiny_model(tmp_path)
    weights = paths.target / "model.safetensors"
    before = weights.stat().st_mtime_ns

    assert build_tiny_model(tmp_path) == paths
    assert weights.stat().st_mtime_ns == before


def test_an_incomplete_build_is_redone(tmp_path: Path) -> None:
    """Without the completion marker (a build that died), the folders are rebuilt whole."""
    paths = build_tiny_model(tmp_path)
    (tmp_path / "complete.json").unlink()
    (paths.drafter / "model.safetensors").unlink()

    build_tiny_model(tmp_path)

    assert (paths.drafter / "model.safetensors").is_file()
    assert (tmp_path / "complete.json").is_file()


def test_mlx_vlm_loads_the_pair_and_generates_text(tiny_model: TinyModelPaths) -> None:
    """mlx-vlm loads target and MTP drafter, and greedy text is the same with the drafter."""
    model, processor = mlx_vlm.load(str(tiny_model.target))
    drafter, kind = load_drafter(str(tiny_model.drafter))
    validate_drafter_compatibility(model, drafter, kind)
    prompt = apply_chat_template(processor, model.config, "Describe the weather in the city.")

    plain = mlx_vlm.generate(model, processor, prompt, max_tokens=12, temperature=0.0)
    drafted = mlx_vlm.generate(
        model,
        processor,
        prompt,
        max_tokens=12,
        temperature=0.0,
        draft_model=drafter,
        draft_kind=kind,
        draft_block_size=3,
    )

    assert kind == "mtp"
    assert plain.generation_tokens > 0
    assert drafted.token_ids == plain.token_ids


def test_image_and_audio_prompts_reach_the_model(tiny_model: TinyModelPaths) -> None:
    """Image and audio placeholders expand to real soft tokens: 25 per second of audio."""
    model, processor = mlx_vlm.load(str(tiny_model.target))
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
    one_second = (0.1 * rng.standard_normal(16_000)).astype(np.float32)
    two_seconds = np.concatenate([one_second, one_second])

    def prompt_tokens(images: int, audio: list[np.ndarray]) -> int:
        prompt = apply_chat_template(
            processor, model.config, "Describe.", num_images=images, num_audios=len(audio)
        )
        result = mlx_vlm.generate(
            model,
            processor,
            prompt,
            image=[image] * images or None,
            audio=audio or None,
            max_tokens=2,
            temperature=0.0,
        )
        assert result.generation_tokens > 0
        return int(result.prompt_tokens)

    text_only = prompt_tokens(0, [])
    assert prompt_tokens(0, [two_seconds]) - prompt_tokens(0, [one_second]) == 25
    assert prompt_tokens(1, []) - text_only > 2
    assert prompt_tokens(1, [one_second]) > prompt_tokens(1, [])
