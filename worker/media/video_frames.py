"""Decoded video frames as small RGB pictures, upright and at display proportions; thumbnails."""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation
from PIL import Image


@dataclass(frozen=True)
class SampledFrame:
    """The picture shown at one sampling instant."""

    time: float  # the frame's own presentation time (s, from the probe's start_time)
    image: np.ndarray  # HxWx3 uint8 RGB, upright, longer side <= the requested max_side


def fit_size(width: float, height: float, max_side: int, *, even: bool) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most `max_side`, keeping the aspect.

    `even` rounds both sides to even numbers (never above `max_side`), as chroma-subsampled
    formats and many encoders want; a picture that needs no scaling keeps its size.
    """
    if max_side < 2:
        raise ValueError(f"max_side must be at least 2, not {max_side}")
    scale = min(1.0, max_side / max(width, height))
    if scale == 1.0 and float(width).is_integer() and float(height).is_integer():
        return int(width), int(height)
    if not even:
        return max(1, round(width * scale)), max(1, round(height * scale))
    sides = []
    for side in (width * scale, height * scale):
        rounded = max(2, 2 * round(side / 2))
        sides.append(rounded - 2 if rounded > max_side else rounded)
    return sides[0], sides[1]


def frame_to_rgb(
    frame: VideoFrame, *, rotation: int, pixel_aspect: Fraction, max_side: int
) -> np.ndarray:
    """The frame as an upright HxWx3 RGB array whose longer side is at most `max_side`."""
    # Scale first and rotate the small picture: only one full-size frame ever exists (FFmpeg's).
    width, height = fit_size(float(frame.width * pixel_aspect), frame.height, max_side, even=True)
    small = frame.reformat(
        width=width, height=height, format="rgb24", interpolation=Interpolation.AREA
    )
    image: np.ndarray = small.to_ndarray()
    if rotation:
        # np.rot90 turns counter-clockwise; `rotation` is clockwise.
        return np.ascontiguousarray(np.rot90(image, k=-(rotation // 90)))
    return image


def jpeg_thumbnail(image: np.ndarray, *, max_side: int = 320, quality: int = 80) -> bytes:
    """A JPEG of an HxWx3 uint8 RGB picture, shrunk so its longer side is at most `max_side`."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 picture, not {image.dtype} {image.shape}")
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be in 1..95, not {quality}")
    picture = Image.fromarray(image, "RGB")
    size = fit_size(picture.width, picture.height, max_side, even=False)
    if size != picture.size:
        picture = picture.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=quality)
    return out.getvalue()
