"""Sampling frames: the right frame at each instant, upright, small; thumbnails; damaged files."""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path
from typing import Literal

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from core.errors import InvalidInput
from testkit.media_samples import (
    Color,
    corrupt_copy,
    scheduled_color,
    truncated_copy,
    write_color_video,
    write_vfr_video,
)
from worker.media import (
    DecodeStats,
    jpeg_thumbnail,
    probe_video,
    sample_frames,
    sample_times,
)
from worker.media.video_sample import Strategy

Codec = Literal["h264", "mpeg4"]
RED, GREEN, BLUE, YELLOW = (220, 20, 20), (20, 220, 20), (20, 20, 220), (220, 220, 20)
# Changes at 1.55, 2.75 and 4.05 s: between frames at 10 fps, off the sampling grid; the last
# frame is at 5.3 s, so the videos last 5.4 s.
SEGMENTS: list[tuple[float, Color]] = [(1.55, RED), (1.2, GREEN), (1.3, BLUE), (1.3, YELLOW)]
VIDEO_FPS = 10
# yuv420p and limited range shift solid colours by a few levels; neighbours differ by 200.
COLOR_TOLERANCE = 40


def _color(image: np.ndarray, y: float = 0.5, x: float = 0.5) -> tuple[int, int, int]:
    """The RGB colour at a relative position of the picture."""
    row, column = int(y * (image.shape[0] - 1)), int(x * (image.shape[1] - 1))
    red, green, blue = (int(v) for v in image[row, column])
    return red, green, blue


def _close(color: tuple[int, int, int], expected: Color) -> bool:
    """Whether two colours match within the codec's tolerance."""
    return all(abs(a - b) <= COLOR_TOLERANCE for a, b in zip(color, expected, strict=True))


def test_sample_times_cover_the_half_open_range() -> None:
    """Instants start at `start`, step 1/fps and stop before `end`."""
    assert sample_times(2.0, 5.0, 1) == [2.0, 3.0, 4.0]
    assert sample_times(0.7, 1.0, 10) == [0.7, 0.8, 0.9]
    assert sample_times(1.0, 2.0, 4) == [1.0, 1.25, 1.5, 1.75]
    assert sample_times(3.0, 3.0, 1) == []


def test_sample_times_do_not_drift_over_hours() -> None:
    """Four hours at 3 fps give exactly 43,200 instants, the last one 1/3 s before the end."""
    times = sample_times(0.0, 4 * 3600.0, 3)
    assert len(times) == 43_200
    assert times[-1] == pytest.approx(4 * 3600 - 1 / 3, abs=1e-6)


@pytest.mark.parametrize(("start", "end", "fps"), [(2.0, 1.0, 1), (-1.0, 1.0, 1), (0, 1, 0)])
def test_sample_times_refuse_bad_arguments(start: float, end: float, fps: float) -> None:
    """A reversed or negative range or a rate of zero is a programming error."""
    with pytest.raises(ValueError, match=r"bad range|fps must be positive"):
        sample_times(start, end, fps)


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
@pytest.mark.parametrize("gop", [5, 100], ids=["gop0.5s", "gop10s"])
@pytest.mark.parametrize(("start", "end", "fps"), [(0.0, 5.4, 1.0), (1.3, 4.9, 4.0)])
@pytest.mark.parametrize("strategy", ["auto", "sequential", "seek"])
def test_each_sample_shows_the_scheduled_colour(
    tmp_path: Path,
    codec: Codec,
    gop: int,
    start: float,
    end: float,
    fps: float,
    strategy: Strategy,
) -> None:
    """Each sample is the last frame at or before its instant, with the colour scheduled then."""
    path = write_color_video(tmp_path / "v.mp4", segments=SEGMENTS, codec=codec, gop=gop)
    probe = probe_video(path)
    instants = sample_times(start, end, fps)
    samples = sample_frames(path, probe, start, end, fps=fps, max_side=64, strategy=strategy)
    assert len(samples) == len(instants)
    for instant, sample in zip(instants, samples, strict=True):
        # The frame shown at `instant` is the last one at or before it, within one frame.
        assert sample.time == pytest.approx(math.floor(instant * VIDEO_FPS + 1e-6) / VIDEO_FPS)
        assert instant - 1 / VIDEO_FPS < sample.time <= instant + 1e-6
        assert _close(_color(sample.image), scheduled_color(SEGMENTS, sample.time)), instant
        assert sample.image.shape == (48, 64, 3) and sample.image.dtype == np.uint8


@pytest.mark.parametrize("strategy", ["sequential", "seek"])
def test_variable_frame_rate_samples_follow_timestamps(tmp_path: Path, strategy: Strategy) -> None:
    """With frames at irregular times, each instant gets the last frame at or before it."""
    times = [0.0, 0.1, 0.5, 0.6, 2.0, 2.05, 2.9]
    colors = [RED, GREEN, BLUE, YELLOW, RED, GREEN, BLUE]
    path = write_vfr_video(tmp_path / "vfr.mp4", times, colors, end=3.5)
    probe = probe_video(path)
    samples = sample_frames(path, probe, 0.0, probe.duration, fps=4, max_side=64, strategy=strategy)
    instants = sample_times(0.0, 3.5, 4)
    assert len(samples) == len(instants) == 14
    for instant, sample in zip(instants, samples, strict=True):
        shown = max(i for i, t in enumerate(times) if t <= instant + 1e-9)
        assert sample.time == pytest.approx(times[shown], abs=1e-3), instant
        assert _close(_color(sample.image), colors[shown]), instant


@pytest.mark.parametrize(
    ("rotation", "top_left", "bottom_right"),
    [(90, BLUE, RED), (180, BLUE, RED), (270, RED, BLUE)],
)
def test_rotated_video_is_sampled_upright(
    tmp_path: Path, rotation: int, top_left: Color, bottom_right: Color
) -> None:
    """Stored red over blue, turned clockwise by the display matrix: the sample is turned too."""
    path = write_color_video(
        tmp_path / "r.mp4", segments=[(1.0, RED)], bottom=BLUE, size=(160, 96), rotation=rotation
    )
    probe = probe_video(path)
    assert probe.rotation == rotation
    turned = rotation in (90, 270)
    assert (probe.width, probe.height) == ((96, 160) if turned else (160, 96))
    image = sample_frames(path, probe, 0.0, 1.0, fps=1, max_side=80)[0].image
    assert image.shape == ((80, 48, 3) if turned else (48, 80, 3))
    assert _close(_color(image, 0.1, 0.1), top_left)
    assert _close(_color(image, 0.9, 0.9), bottom_right)


def test_rotation_matches_what_ffmpeg_displays(tmp_path: Path) -> None:
    """The ffmpeg CLI, which applies the display matrix itself, shows the same upright picture."""
    path = write_color_video(
        tmp_path / "r.mp4", segments=[(1.0, RED)], bottom=BLUE, size=(160, 96), rotation=90
    )
    probe = probe_video(path)
    ours = sample_frames(path, probe, 0.0, 1.0, fps=1, max_side=160)[0].image
    frame = tmp_path / "ffmpeg.png"
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path)]
    subprocess.run([*command, "-frames:v", "1", str(frame)], check=True, timeout=60)
    theirs = np.asarray(Image.open(frame).convert("RGB"))
    assert theirs.shape == ours.shape == (160, 96, 3)
    assert np.abs(theirs.astype(int) - ours.astype(int)).mean() < 8


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
def test_odd_sizes_scale_to_even_sizes(tmp_path: Path, codec: Codec) -> None:
    """A 161x121 video scales to 64x48; under max_side it keeps its odd size."""
    path = write_color_video(
        tmp_path / "odd.mp4", segments=[(1.0, GREEN)], size=(161, 121), codec=codec
    )
    probe = probe_video(path)
    small = sample_frames(path, probe, 0.0, 1.0, fps=1, max_side=64)[0].image
    full = sample_frames(path, probe, 0.0, 1.0, fps=1, max_side=768)[0].image
    assert small.shape == (48, 64, 3)
    assert full.shape == (121, 161, 3)
    assert _close(_color(small), GREEN) and _close(_color(full), GREEN)


def test_each_frame_is_converted_once(tmp_path: Path) -> None:
    """A 1-fps video sampled at 4 fps converts each frame once and shares it across instants."""
    path = write_color_video(tmp_path / "v.mp4", segments=[(3.0, RED)], fps=1)
    probe = probe_video(path)
    stats = DecodeStats()
    samples = sample_frames(path, probe, 0.0, 3.0, fps=4, max_side=64, stats=stats)
    assert [s.time for s in samples] == [0.0] * 4 + [1.0] * 4 + [2.0] * 4
    assert stats.converted == 3
    assert samples[0].image is samples[3].image


def test_instants_past_the_end_are_not_sampled(tmp_path: Path) -> None:
    """Sampling beyond the declared duration returns samples only up to it."""
    path = write_color_video(tmp_path / "v.mp4", segments=[(2.0, RED)])
    probe = probe_video(path)
    samples = sample_frames(path, probe, 1.0, 10.0, fps=1, max_side=64)
    assert [s.time for s in samples] == [1.0]


def test_thumbnail_is_a_jpeg_of_the_expected_size() -> None:
    """A 768x432 picture gives a 320x180 JPEG that Pillow decodes to the same colour."""
    image = np.zeros((432, 768, 3), dtype=np.uint8)
    image[:] = BLUE
    data = jpeg_thumbnail(image)
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "JPEG"
    assert picture.size == (320, 180)
    assert _close(_color(np.asarray(picture.convert("RGB"))), BLUE)


def test_thumbnail_of_a_small_or_portrait_picture() -> None:
    """A picture under max_side keeps its size; a portrait one is fitted by its height."""
    small = jpeg_thumbnail(np.full((50, 70, 3), 128, dtype=np.uint8))
    portrait = jpeg_thumbnail(np.full((768, 432, 3), 128, dtype=np.uint8), max_side=100)
    assert Image.open(io.BytesIO(small)).size == (70, 50)
    assert Image.open(io.BytesIO(portrait)).size == (56, 100)


def test_thumbnail_refuses_what_is_not_an_rgb_picture() -> None:
    """A grey or float array is a programming error."""
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        jpeg_thumbnail(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        jpeg_thumbnail(np.zeros((10, 10, 3), dtype=np.float32))


def test_truncated_matroska_is_refused_where_it_ends(tmp_path: Path) -> None:
    """A Matroska file cut in half still declares its length; sampling past the cut fails."""
    source = write_color_video(tmp_path / "v.mkv", segments=SEGMENTS, container="mkv", gop=5)
    path = truncated_copy(source, tmp_path / "cut.mkv", keep=0.5)
    probe = probe_video(path)
    assert probe.duration == pytest.approx(5.4, abs=0.01)
    with pytest.raises(InvalidInput, match=r"ends at \d\.\d s but the file declares 5\.\d s"):
        sample_frames(path, probe, 0.0, probe.duration, fps=1, max_side=64)


def test_corrupt_frames_fail_to_decode(tmp_path: Path) -> None:
    """Garbage over part of an h264 mp4's frames is a decode error located in seconds."""
    source = write_color_video(tmp_path / "v.mp4", segments=SEGMENTS, gop=10)
    path = corrupt_copy(source, tmp_path / "bad.mp4", start=0.3, length=0.1)
    probe = probe_video(path)
    with pytest.raises(InvalidInput, match=r"could not be decoded at \d+\.\d s: .*corrupt"):
        sample_frames(path, probe, 0.0, probe.duration, fps=1, max_side=64)
