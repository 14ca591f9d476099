"""Video frames on the tiny engine: layout, counted tokens, drafting, no shared state, limits."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx_vlm
import numpy as np
import pytest
from mlx_vlm.utils import prepare_inputs, should_add_special_tokens
from PIL import Image

from worker.engine import Engine, EngineConfig, TinyModelPaths, _decode, _video

RATE = 16_000
SYSTEM = "Answer in one sentence."
QUESTION = "Describe the video."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]


def _frames(count: int, width: int, height: int, seed: int) -> np.ndarray:
    """Seeded noise frames (T, H, W, 3): different seeds give frames the model tells apart."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def _clip(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_pair(tiny_model: TinyModelPaths) -> tuple[Any, Any]:
    """A separately loaded model and processor, for looking at mlx-vlm's own inputs.

    Its image processor gets the video budget the engine gives its own (pitfall 6).
    """
    model, processor = mlx_vlm.load(str(tiny_model.target))
    assert processor.image_processor.max_soft_tokens == 280
    processor.image_processor.max_soft_tokens = 70
    return model, processor


@pytest.fixture
def mlx_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the engine hands mlx-vlm's stream_generate: the prompt and the media."""
    calls: list[dict[str, Any]] = []
    real = _decode.stream_generate

    def spy(model: Any, processor: Any, prompt: str, **kwargs: Any) -> Any:
        calls.append({"prompt": prompt, **kwargs})
        return real(model, processor, prompt, **kwargs)

    monkeypatch.setattr(_decode, "stream_generate", spy)
    return calls


def test_render_puts_audio_then_the_video_then_the_text(tiny_engine: Engine) -> None:
    """One video placeholder after the audio placeholders; the system text folds in after."""
    video = tiny_engine.render(MESSAGES, frames=4)
    both = tiny_engine.render(MESSAGES, audio_clips=1, frames=4)

    assert video == f"<bos><|turn>user\n<|video|>{SYSTEM}\n\n{QUESTION}<turn|>\n<|turn>model\n"
    assert both.startswith(f"<bos><|turn>user\n<|audio|><|video|>{SYSTEM}\n\n{QUESTION}")
    assert tiny_engine.render([{"role": "user", "content": ""}], frames=1) == (
        "<bos><|turn>user\n<|video|><turn|>\n<|turn>model\n"
    )


def test_model_input_holds_audio_then_frames_then_text(
    tiny_engine: Engine, tiny_pair: tuple[Any, Any], mlx_calls: list[dict[str, Any]]
) -> None:
    """In the ids mlx-vlm feeds the model: the clip's soft tokens, the frames, then the text."""
    model, processor = tiny_pair
    tokenizer = processor.tokenizer
    prompt = tiny_engine.render(MESSAGES, audio_clips=1, frames=3)
    clip, frames = _clip(2.0, 1), _frames(3, 224, 224, 1)
    tiny_engine.generate(
        prompt, audio=[clip], frames=frames, frame_times=[300.0, 301.0, 302.0], max_tokens=1
    )
    call = mlx_calls[-1]
    inputs = prepare_inputs(
        processor,
        images=call["image"],
        audio=call["audio"],
        prompts=call["prompt"],
        add_special_tokens=should_add_special_tokens(model.config.model_type, processor),
    )
    ids = inputs["input_ids"][0].tolist()

    audio, image = processor.audio_token_id, processor.image_token_id
    boa, eoa, boi, eoi = (
        tokenizer.convert_tokens_to_ids(t) for t in ("<|audio>", "<audio|>", "<|image>", "<image|>")
    )
    start = ids.index(boa)
    assert tokenizer.decode(ids[:start]) == "<bos><|turn>user\n"
    assert ids[start : start + 52] == [boa, *[audio] * 50, eoa]
    frames_at = start + 52
    last_eoi = len(ids) - 1 - ids[::-1].index(eoi)
    segment = ids[frames_at : last_eoi + 1]
    # Three frames of 8 x 8 soft tokens, each after its mm:ss label, joined by spaces.
    assert segment.count(image) == 3 * 64 and segment.count(boi) == segment.count(eoi) == 3
    labels = tokenizer.decode([t for t in segment if t not in (image, boi, eoi)])
    assert labels == "05:00  05:01  05:02 "
    assert audio not in ids[frames_at:] and image not in ids[last_eoi + 1 :]
    assert tokenizer.decode(ids[last_eoi + 1 :]).startswith(f"{SYSTEM}\n\n{QUESTION}<turn|>")
    assert len(ids) == tiny_engine.count_tokens(
        prompt, audio_seconds=[2.0], frames=(3, 224, 224), frame_times=[300, 301, 302]
    )


def test_frames_as_images_equal_mlx_vlms_video_input(tiny_pair: tuple[Any, Any]) -> None:
    """The engine's layout gives the model exactly what mlx-vlm's video input gives it."""
    model, processor = tiny_pair
    frames = _frames(3, 320, 180, 2)
    video_prompt = f"<bos><|turn>user\n<|video|>{QUESTION}<turn|>\n<|turn>model\n"
    video = prepare_inputs(
        processor,
        videos=[np.ascontiguousarray(frames.transpose(0, 3, 1, 2))],
        prompts=video_prompt,
        fps=1.0,
    )
    layout = _video.placeholder_text(processor, [0.0, 1.0, 2.0])
    images = prepare_inputs(
        processor,
        images=_video.images(list(frames)),
        prompts=video_prompt.replace("<|video|>", layout),
    )

    as_video = model.get_input_embeddings(
        video["input_ids"],
        None,
        pixel_values_videos=video["pixel_values_videos"],
        video_position_ids=video["video_position_ids"],
    ).inputs_embeds
    as_images = model.get_input_embeddings(
        images["input_ids"], images["pixel_values"], image_position_ids=images["image_position_ids"]
    ).inputs_embeds
    # Only the placeholder id differs, and its embedding is replaced by the frame features.
    ids = video["input_ids"]
    assert mx.array_equal(
        mx.where(ids == processor.video_token_id, processor.image_token_id, ids),
        images["input_ids"],
    )
    assert mx.array_equal(as_video, as_images)


@pytest.mark.parametrize("size", [(224, 224), (320, 180)])
@pytest.mark.parametrize("count", [2, 5])
def test_prompt_tokens_match_frame_tokens(
    tiny_engine: Engine, size: tuple[int, int], count: int
) -> None:
    """mlx-vlm's reported prompt size is count_tokens', and frame_tokens' on top of the text."""
    width, height = size
    prompt = tiny_engine.render(MESSAGES, frames=count)
    times = [12.0 + 1.5 * j for j in range(count)]

    generation = tiny_engine.generate(
        prompt, frames=_frames(count, width, height, 3), frame_times=times, max_tokens=1
    )

    counted = tiny_engine.count_tokens(prompt, frames=(count, width, height), frame_times=times)
    assert generation.usage.prompt_tokens == counted
    assert counted == tiny_engine.count_tokens(prompt) - 1 + tiny_engine.frame_tokens(
        count, width, height, frame_times=times
    )
    soft = 64 if width == height else 66  # 8 x 8 patches of 48 px; 16:9 gives 6 x 11
    labels = tiny_engine.frame_tokens(count, width, height, frame_times=times) - count * (soft + 2)
    assert 0 < labels <= 8 * count


def test_soft_tokens_follow_the_image_processor(tiny_pair: tuple[Any, Any]) -> None:
    """The token arithmetic agrees with the processor's own output, odd shapes included."""
    _, processor = tiny_pair
    sizes = [(224, 224), (320, 180), (180, 320), (640, 480), (1920, 1080), (97, 53)]
    sizes += [(500, 37), (37, 500), (3000, 10), (10, 3000), (1, 1), (48, 48)]
    for budget in (70, 140, 280):
        for width, height in sizes:
            image = Image.new("RGB", (width, height))
            _, reported = processor.image_processor([image], max_soft_tokens=budget)
            assert _video.soft_tokens(processor, width, height, budget) == reported[0]
            assert reported[0] <= budget


def test_frame_count_does_not_depend_on_scale(tiny_engine: Engine) -> None:
    """Frames are resized to the token budget: only the aspect ratio matters, never more than 70."""
    assert tiny_engine.frame_tokens(1, 64, 64) == tiny_engine.frame_tokens(1, 1024, 1024)
    assert tiny_engine.frame_tokens(1, 1280, 720) == tiny_engine.frame_tokens(1, 320, 180)
    assert tiny_engine.frame_tokens(1, 1280, 720) - tiny_engine.frame_tokens(1, 640, 640) == 2


def test_speculative_greedy_output_equals_plain_output(tiny_engine: Engine) -> None:
    """After the one-piece vision prefill the drafter runs, and greedy text is unchanged."""
    prompt = tiny_engine.render(MESSAGES, frames=4)
    frames = _frames(4, 224, 224, 4)
    plain = tiny_engine.generate(prompt, frames=frames, max_tokens=24, speculative=False)
    drafted = tiny_engine.generate(
        prompt, frames=frames, max_tokens=24, speculative=True, draft_block_size=4
    )

    assert drafted.text == plain.text
    assert drafted.usage.generated_tokens == plain.usage.generated_tokens == 24
    assert drafted.usage.prompt_tokens == plain.usage.prompt_tokens
    assert plain.usage.draft_rounds == plain.usage.draft_tokens_proposed == 0
    assert drafted.usage.draft_rounds >= 23 // 4
    assert 0 < drafted.usage.draft_tokens_proposed <= 3 * drafted.usage.draft_rounds
    assert drafted.usage.draft_acceptance is not None


def test_speculation_also_runs_after_audio_and_frames(tiny_engine: Engine) -> None:
    """With the audio first (a chunked, causal prefill in mlx-vlm) drafting changes nothing."""
    prompt = tiny_engine.render(MESSAGES, audio_clips=1, frames=2)
    media: dict[str, Any] = {"audio": [_clip(1.0, 5)], "frames": _frames(2, 224, 224, 5)}
    plain = tiny_engine.generate(prompt, **media, max_tokens=16, speculative=False)
    drafted = tiny_engine.generate(prompt, **media, max_tokens=16, speculative=True)

    assert drafted.text == plain.text
    assert drafted.usage.draft_rounds > 0


@pytest.mark.parametrize("speculative", [False, True])
def test_calls_with_different_frames_share_no_state(tiny_engine: Engine, speculative: bool) -> None:
    """Frames A, then B in the same layout, then A again: A's answer does not change."""
    prompt = tiny_engine.render(MESSAGES, frames=3)
    first, other = _frames(3, 224, 224, 6), _frames(3, 224, 224, 7)

    def answer(frames: np.ndarray) -> str:
        return tiny_engine.generate(
            prompt, frames=frames, max_tokens=16, speculative=speculative
        ).text

    a = answer(first)
    b = answer(other)

    assert answer(first) == a
    assert b != a


def test_frame_times_change_the_labels(
    tiny_engine: Engine, mlx_calls: list[dict[str, Any]]
) -> None:
    """Each frame is labelled with its own time; without times, two frames per second."""
    prompt = tiny_engine.render(MESSAGES, frames=3)
    frames = _frames(3, 96, 96, 8)
    tiny_engine.generate(prompt, frames=frames, frame_times=[59.9, 61.0, 3600.0], max_tokens=1)
    tiny_engine.generate(prompt, frames=frames, max_tokens=1)

    timed, untimed = (call["prompt"] for call in mlx_calls)
    assert "<|turn>user\n00:59 <|image|> 01:01 <|image|> 60:00 <|image|>Answer" in timed
    assert "<|turn>user\n00:00 <|image|> 00:00 <|image|> 00:01 <|image|>Answer" in untimed
    assert [len(call["image"]) for call in mlx_calls] == [3, 3]


def test_more_than_32_frames_are_refused(tiny_engine: Engine) -> None:
    """A 33rd frame is refused everywhere: the model's video processor keeps 32 per clip."""
    prompt = tiny_engine.render(MESSAGES, frames=32)

    with pytest.raises(ValueError, match="at most 32"):
        tiny_engine.generate(prompt, frames=_frames(33, 48, 48, 9), max_tokens=1)
    with pytest.raises(ValueError, match="at most 32"):
        tiny_engine.render(MESSAGES, frames=33)
    with pytest.raises(ValueError, match="1 to 32 frames"):
        tiny_engine.frame_tokens(33, 224, 224)
    with pytest.raises(ValueError, match="1 to 32 frames"):
        tiny_engine.count_tokens(prompt, frames=(33, 224, 224))
    assert tiny_engine.max_frames == 32


def test_frames_must_fit_the_prompt(tiny_engine: Engine) -> None:
    """Frames need one video placeholder, one size, uint8 RGB and matching times."""
    prompt = tiny_engine.render(MESSAGES, frames=2)
    text_only = tiny_engine.render(MESSAGES)
    frames = _frames(2, 64, 64, 10)

    with pytest.raises(ValueError, match="0 video placeholders"):
        tiny_engine.generate(text_only, frames=frames, max_tokens=1)
    with pytest.raises(ValueError, match="without frames"):
        tiny_engine.generate(text_only, frame_times=[0.0], max_tokens=1)
    with pytest.raises(ValueError, match="same size"):
        tiny_engine.generate(prompt, frames=[frames[0], _frames(1, 32, 64, 11)[0]], max_tokens=1)
    with pytest.raises(ValueError, match="uint8"):
        tiny_engine.generate(prompt, frames=frames.astype(np.float32), max_tokens=1)
    with pytest.raises(ValueError, match="HxWx3"):
        tiny_engine.generate(prompt, frames=[frames[0][..., :2]], max_tokens=1)
    with pytest.raises(ValueError, match="3 frame times for 2 frames"):
        tiny_engine.generate(prompt, frames=frames, frame_times=[0, 1, 2], max_tokens=1)
    with pytest.raises(ValueError, match="decrease"):
        tiny_engine.generate(prompt, frames=frames, frame_times=[2, 1], max_tokens=1)
    with pytest.raises(ValueError, match="at least one frame"):
        tiny_engine.generate(prompt, frames=[], max_tokens=1)
    with pytest.raises(ValueError, match="placeholder"):
        tiny_engine.render([{"role": "user", "content": "<|video|> again"}], frames=1)
    with pytest.raises(ValueError, match="user message first"):
        tiny_engine.render([{"role": "assistant", "content": "Hello."}], frames=1)


def test_the_frame_budget_is_a_gemma_4_value() -> None:
    """Only the soft-token budgets Gemma 4's processors accept can be configured."""
    assert EngineConfig(model="tiny", draft_model=None).video_frame_tokens == 70
    with pytest.raises(ValueError, match="video_frame_tokens"):
        EngineConfig(model="tiny", draft_model=None, video_frame_tokens=64)
