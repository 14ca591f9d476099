"""What sampling costs: memory on 4K, decoding only the range, and seeking only when it pays."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from testkit.media_samples import (
    FOUR_K_SEGMENTS,
    Color,
    scheduled_color,
    write_4k_video,
    write_color_video,
)
from worker.media import DecodeStats, VideoProbe, probe_video, sample_frames
from worker.media.video_sample import Strategy, advance_costs

MIB = 1024 * 1024
# One full-size 4K RGB frame: what keeping even one decoded frame as an array would cost.
FOUR_K_RGB_BYTES = 3840 * 2160 * 3
RSS_CAP = 200 * MIB
LONG_SEGMENTS: list[tuple[float, Color]] = [(10.0, (200, 30, 30)), (10.0, (30, 30, 200))] * 6


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Print a measurement into the test output even when pytest captures it."""
    with capsys.disabled():
        print(f"\n    {line}")


@contextmanager
def _peak_rss() -> Iterator[list[int]]:
    """Poll this process's RSS every millisecond; yields [baseline, peak] filled on exit."""
    process = psutil.Process()
    result = [process.memory_info().rss, 0]
    peak = result[0]
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            done.wait(0.001)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        yield result
    finally:
        done.set()
        poller.join()
        result[1] = max(peak, process.memory_info().rss)


@pytest.fixture(scope="module")
def four_k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-s 3840x2160 h264 mp4 with 1-s GOPs (a few seconds to encode)."""
    return write_4k_video(tmp_path_factory.mktemp("4k") / "4k.mp4")


@pytest.mark.parametrize("strategy", ["auto", "sequential"])
def test_4k_sampling_keeps_memory_bounded(
    four_k: Path, strategy: Strategy, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sampling 4K at 1 fps to 768 px stays far under 200 MB of RSS and holds no 4K array."""
    probe = probe_video(four_k)
    sample_frames(four_k, probe, 0.0, 1.0, fps=1, max_side=768)  # warm up FFmpeg's pools
    stats = DecodeStats()
    tracemalloc.start()
    try:
        with _peak_rss() as rss:
            samples = sample_frames(
                four_k, probe, 0.0, 4.0, fps=1, max_side=768, strategy=strategy, stats=stats
            )
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    baseline, peak = rss
    _report(
        capsys,
        f"4K {strategy}: RSS +{(peak - baseline) / MIB:.0f} MiB at peak, Python-traced peak "
        f"{traced_peak / MIB:.1f} MiB ({stats.decoded} frames decoded, {stats.seeks} seeks)",
    )
    assert [s.image.shape for s in samples] == [(432, 768, 3)] * 4
    for sample, (_, color) in zip(samples, FOUR_K_SEGMENTS, strict=True):
        assert all(abs(int(a) - b) < 40 for a, b in zip(sample.image[200, 400], color, strict=True))
    assert peak - baseline < RSS_CAP
    assert traced_peak < FOUR_K_RGB_BYTES


@pytest.fixture(scope="module")
def two_minutes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-s 160x120 h264 mp4 at 10 fps with 2-s GOPs, colours changing every 10 s."""
    return write_color_video(
        tmp_path_factory.mktemp("long") / "long.mp4", segments=LONG_SEGMENTS, gop=20
    )


def test_segment_near_the_end_decodes_only_its_range(
    two_minutes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 10-s segment at 105 s decodes about its own 100 frames, not the file's 1,200."""
    probe = probe_video(two_minutes)
    stats = DecodeStats()
    started = time.perf_counter()
    samples = sample_frames(
        two_minutes, probe, 105.0, 115.0, fps=1, max_side=64, strategy="sequential", stats=stats
    )
    elapsed = time.perf_counter() - started
    _report(capsys, f"segment [105, 115): {stats.decoded} frames decoded in {elapsed:.3f} s")
    assert [s.time for s in samples] == [float(t) for t in range(105, 115)]
    assert all(
        abs(int(s.image[30, 30][2]) - scheduled_color(LONG_SEGMENTS, s.time)[2]) < 40
        for s in samples
    )
    # The range (100 frames), the GOP before it (up to 20) and frames in flight in the threads.
    assert stats.decoded <= 130
    assert stats.seeks == 1


def _measure(
    path: Path, probe: VideoProbe, strategy: Strategy
) -> tuple[float, DecodeStats, list[float]]:
    """Time one sampling of [0.25, 30) at 1 fps with `strategy`: best of two runs."""
    best, stats, times = float("inf"), DecodeStats(), []
    for _ in range(2):
        stats = DecodeStats()
        started = time.perf_counter()
        samples = sample_frames(
            path, probe, 0.25, 30.0, fps=1, max_side=64, strategy=strategy, stats=stats
        )
        best = min(best, time.perf_counter() - started)
        times = [s.time for s in samples]
    return best, stats, times


@pytest.mark.parametrize(("gop", "expected"), [(15, "seek"), (300, "sequential")])
def test_auto_strategy_decodes_the_fewest_frames(
    tmp_path: Path, gop: int, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 1 sample/s of 30 fps, auto seeks on 0.5-s GOPs, decodes through 10-s GOPs: the cheaper."""
    path = write_color_video(
        tmp_path / "v.mp4",
        segments=[(0.5, (200, 30, 30)), (0.5, (30, 30, 200))] * 30,
        fps=30,
        gop=gop,
    )
    probe = probe_video(path)
    forward, seek = advance_costs(probe, 1.0)
    runs = {
        strategy: _measure(path, probe, strategy) for strategy in ("sequential", "seek", "auto")
    }
    _report(
        capsys,
        f"GOP {gop / 30:.1f} s, estimated frames per sample: forward {forward:.0f}, seek "
        f"{seek:.0f} | "
        + " | ".join(
            f"{name} {seconds * 1000:.0f} ms, {stats.decoded} frames, {stats.seeks} seeks"
            for name, (seconds, stats, _) in runs.items()
        ),
    )
    assert runs["sequential"][2] == runs["seek"][2] == runs["auto"][2]
    chosen = "seek" if seek < forward else "sequential"
    assert chosen == expected
    # Auto follows the cheaper strategy, and seeks besides wherever an instant is on a keyframe.
    assert runs["auto"][1].decoded <= runs[expected][1].decoded
    other = "sequential" if expected == "seek" else "seek"
    assert runs[expected][1].decoded < runs[other][1].decoded


def test_auto_seeks_to_instants_on_keyframes_and_decodes_forward_to_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1 sample/s of 2-s GOPs: auto decodes fewer frames than both pure strategies."""
    path = write_color_video(
        tmp_path / "v.mp4",
        segments=[(0.5, (200, 30, 30)), (0.5, (30, 30, 200))] * 30,
        fps=30,
        gop=60,
    )
    probe = probe_video(path)
    runs = {
        strategy: _measure(path, probe, strategy) for strategy in ("sequential", "seek", "auto")
    }
    _report(
        capsys,
        "GOP 2.0 s, 1 sample/s | "
        + " | ".join(
            f"{name} {seconds * 1000:.0f} ms, {stats.decoded} frames, {stats.seeks} seeks"
            for name, (seconds, stats, _) in runs.items()
        ),
    )
    assert runs["sequential"][2] == runs["seek"][2] == runs["auto"][2]
    auto = runs["auto"][1].decoded
    assert auto < runs["sequential"][1].decoded
    assert auto <= runs["seek"][1].decoded
