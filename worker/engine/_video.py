"""Video frames: one segment of sampled frames, laid out as Gemma 4 lays out a video, and counted.

How Gemma 4 takes a video (transformers' `Gemma4UnifiedProcessor.replace_video_token`, copied by
mlx-vlm 0.7.10's `Gemma4Processor.__call__`): the chat template renders a video part as one
`<|video|>` placeholder, and the processor replaces it with one entry per frame,

    "mm:ss <|image>" + n x "<|video|>" + "<image|>"    (entries joined by one space)

where mm:ss is the frame's time (whole seconds) and n its soft tokens. Each frame is resized to
the patch budget and cut into 48x48 patches, one soft token per patch, exactly as a still image.

What the engine passes to mlx-vlm instead: the same text with `<|image|>` placeholders, one per
frame, and the frames as images. mlx-vlm's video input was read and tried first; it works, but
  - it labels frame j with j / fps from 00:00, whatever the frames' real times, and takes one
    rate per clip: a segment at 05:00-05:10 would read "00:00 ... 00:09" while the caller's text
    says 05:00 (transformers labels frames with their times in the whole video);
  - it silently keeps 32 frames of a longer clip (`_sample_frames`, notes pitfall 9).
Passed as images, each frame gets exactly the same pixels, patches, positions and embedding as
through the video path (the unified image and video processors share the resize and the 48x48
patching, and the model embeds both with the same `get_image_features`); only the placeholder
id differs (`<|image|>` instead of `<|video|>`), and the model overwrites placeholder embeddings
with the frame features and treats both ids alike in its bidirectional vision mask. Checked on
the tiny model: identical input embeddings and identical greedy output for the two layouts.
So the engine keeps the video format and puts each frame's real time in front of it. (On a
real checkpoint the video processor's settings come from its processor_config.json, while
`mlx_vlm.load` installs a default image processor; both only rescale pixels to [0, 1], as
transformers' Gemma 4 unified image and video processors do, whose video normalization is the
identity.)

Soft tokens per frame (`Gemma4UnifiedImageProcessor`, pitfall 6): the image processor's
`max_soft_tokens` S, which `mlx_vlm.load` leaves at the still-image default 280, is set to the
video value (70); mlx-vlm's `get_aspect_ratio_preserving_size` then gives the resized size and

    f = sqrt(S * 9 * 16^2 / (H * W))
    n = floor(f * H / 48) * floor(f * W / 48)

(a side that rounds to 0 becomes one patch, the other min(floor(long / short), S) patches). The
frame is scaled up or down to that size, so n depends on the aspect ratio only: at S = 70 a
square frame takes 8 x 8 = 64 tokens, 16:9 takes 6 x 11 = 66, 4:3 takes 7 x 9 = 63.

Tokens of a segment of T frames: T * (n + 2) for the soft tokens and `<|image>`/`<image|>`, plus
the tokens of the timestamps and the spaces between the entries (about 7 per frame on the tiny
tokenizer). `segment_text` builds the exact text so that counts come from the tokenizer itself.

The image processor would take more than 32 frames (tried: 40 frames gave 40 x 64 soft tokens);
the engine refuses more than `MAX_FRAMES` all the same: transformers' and mlx-vlm's video
processors keep at most 32 frames per clip, which is what the model sees as a video, and the
one-piece prefill grows faster than linearly with the frames.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from mlx_vlm.models.gemma4.processing_gemma4 import get_aspect_ratio_preserving_size
from PIL import Image

MAX_FRAMES = 32
"""Frames per segment: the 32 the Gemma 4 video processors keep of a clip (pitfall 9)."""
DEFAULT_FPS = 2.0
"""The rate assumed for frames given without times, as mlx-vlm assumes for a frame array."""


def check_frames(frames: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """The frames as contiguous HxWx3 uint8 arrays of one size: 1 to MAX_FRAMES of them.

    `frames` is a (T, H, W, 3) array, one (H, W, 3) frame, or a sequence of (H, W, 3) arrays.
    """
    if isinstance(frames, np.ndarray):
        items = list(frames) if frames.ndim == 4 else [frames]
    else:
        items = list(frames)
    if not items:
        raise ValueError("a video segment needs at least one frame")
    if len(items) > MAX_FRAMES:
        raise ValueError(
            f"{len(items)} frames in one segment: at most {MAX_FRAMES} are allowed "
            "(the model's video processor keeps 32 per clip); cut the video into more segments"
        )
    checked = []
    for frame in items:
        array = np.asarray(frame)
        if array.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 RGB, not {array.dtype}")
        if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] < 1 or array.shape[1] < 1:
            raise ValueError(f"a frame must be an HxWx3 RGB array, not shape {array.shape}")
        checked.append(np.ascontiguousarray(array))
    if len({frame.shape for frame in checked}) > 1:
        raise ValueError("all frames of a segment must have the same size")
    return checked


def frame_times(count: int, times: Sequence[float] | None) -> list[float]:
    """The frames' times in seconds: `times` checked, or j / DEFAULT_FPS without them."""
    if times is None:
        return [j / DEFAULT_FPS for j in range(count)]
    values = [float(t) for t in times]
    if len(values) != count:
        raise ValueError(f"{len(values)} frame times for {count} frames")
    if not all(math.isfinite(t) and t >= 0 for t in values):
        raise ValueError("frame times must be finite and not negative")
    if any(later < earlier for earlier, later in itertools.pairwise(values)):
        raise ValueError("frame times must not decrease")
    return values


def timestamp(seconds: float) -> str:
    """A frame's label as transformers writes it: mm:ss in whole seconds."""
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


def soft_tokens(processor: Any, width: int, height: int, budget: int) -> int:
    """Soft tokens of one frame of that size at `budget` (the processor's `max_soft_tokens`).

    The image processor's own arithmetic: mlx-vlm's resize rule, then whole 48x48 patches.
    """
    if width < 1 or height < 1:
        raise ValueError(f"a frame must be at least 1x1 pixels, not {width}x{height}")
    images = processor.image_processor
    patch, pooling = int(images.patch_size), int(images.pooling_kernel_size)
    if images.do_resize:
        max_patches = budget * pooling**2
        height, width = get_aspect_ratio_preserving_size(height, width, patch, max_patches, pooling)
    model_patch = int(getattr(images, "model_patch_size", None) or patch * pooling)
    return (int(height) // model_patch) * (int(width) // model_patch)


def placeholder_text(processor: Any, times: Sequence[float]) -> str:
    """What replaces the video placeholder before mlx-vlm: one timestamped image per frame."""
    return " ".join(f"{timestamp(t)} {processor.image_token}" for t in times)


def segment_text(
    processor: Any, times: Sequence[float], width: int, height: int, budget: int
) -> str:
    """The text the processor finally tokenizes for the segment: markers and soft tokens."""
    soft = processor.image_token * soft_tokens(processor, width, height, budget)
    frame = processor.boi_token + soft + processor.eoi_token
    return " ".join(f"{timestamp(t)} {frame}" for t in times)


def count_placeholders(processor: Any, text: str) -> int:
    """How many video placeholders `text` holds."""
    return text.count(video_token(processor))


def video_token(processor: Any) -> str:
    """The video placeholder the chat template renders (`<|video|>`)."""
    return str(processor.video_token)


def replace_placeholder(processor: Any, text: str, replacement: str) -> str:
    """`text` with its one video placeholder replaced by `replacement`."""
    return re.sub(re.escape(video_token(processor)), lambda _: replacement, text, count=1)


def images(frames: Sequence[np.ndarray]) -> list[Image.Image]:
    """The frames as PIL images, which the image processor never mistakes for channels-first."""
    return [Image.fromarray(frame) for frame in frames]
