"""How fast video.caption samples 1 frame a second from a long file, next to ffmpeg, and its memory.

    .venv/bin/python -m bench.video [--minutes N] [--runs R] [--write]

Encodes in a temp dir an N-minute (default 10) 1280x720 30 fps h264 mp4 of a busy moving picture
(2-s GOPs, x264 superfast; it ends at the first whole minute after 90 s of making, and says so),
then times on it, alternating, R times each (default 3), median reported:
- ours: probe_video + sample_frames(0, duration, fps=1, max_side=448), strategy auto;
- ffmpeg: `ffmpeg -i F -vf fps=1 -f rawvideo -pix_fmt rgb24 -` into a pipe read and discarded;
- naive: a PyAV loop decoding every frame, converting the one nearest each second to RGB;
- ours with the strategy forced to sequential, then to seek (for reference);
then the peak RSS of a fresh child (_video_worker.py) sampling 10 s of a 1080p and a 4K file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import av
import imageio_ffmpeg
from av.codec.context import ThreadType

from bench import _report
from bench._ffmpeg import ffmpeg_version, piped_bytes
from bench._report import at_least, run_child
from bench._video_worker import FPS, GOP_SECONDS, MAX_SIDE, PRESET, RATE, make_video
from testkit.markdown import table
from worker import media
from worker.media.video_frames import fit_size
from worker.media.video_sample import SEEK_COST_FRAMES, Strategy, advance_costs

DEFAULT_MINUTES, MAKE_BUDGET = 10.0, 90.0  # past MAKE_BUDGET s, the long file ends at a minute
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}
MEMORY_SECONDS, CLIP_SECONDS, SEGMENT = 20.0, 4.0, (5.0, 15.0)
T = TypeVar("T")
WORKER = "bench._video_worker"  # the memory child


def ours(path: Path, strategy: Strategy, stats: media.DecodeStats) -> int:
    """Frames sampled by what video.caption does: probe, then sample the whole file."""
    probe = media.probe_video(path)
    frames = media.sample_frames(
        path, probe, 0, probe.duration, fps=FPS, max_side=MAX_SIDE, strategy=strategy, stats=stats
    )
    return len(frames)


def ffmpeg(exe: str, path: Path, size: tuple[int, int]) -> int:
    """Frames ffmpeg's fps filter wrote to our pipe as full-size rgb24 (read and discarded)."""
    command = [exe, "-nostdin", "-v", "error", "-i", str(path), "-vf", f"fps={FPS:g}"]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    return piped_bytes(command) // (size[0] * size[1] * 3)


def naive(path: Path, end: float) -> int:
    """Decode every frame (ours' threading); convert the one nearest each instant to RGB."""
    images, target = 0, 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = ThreadType.AUTO
        stream.codec_context.thread_count = min(os.cpu_count() or 1, 4)
        width, height = fit_size(stream.width, stream.height, MAX_SIDE, even=True)
        half = 0.5 / float(stream.average_rate or RATE)
        for frame in container.decode(stream):
            while frame.time is not None and target < end and frame.time + half >= target:
                frame.to_ndarray(width=width, height=height, format="rgb24")
                images, target = images + 1, target + 1 / FPS
    return images


def timed(function: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Make the inputs under `tmp`, measure, return the numbers."""
    r: dict[str, Any] = {}
    long = tmp / "720p.mp4"
    r["make_long"], made = timed(
        lambda: make_video(long, SIZES["720p"], args.minutes * 60, budget=MAKE_BUDGET)
    )
    r["minutes"], r["mbps"] = made / 60, long.stat().st_size * 8 / made / 1e6
    r["fewer"] = ""
    if made < 60 * args.minutes:
        r["fewer"] = f" (not {args.minutes:g}: making passed {MAKE_BUDGET:g} s)"
    elif args.minutes < DEFAULT_MINUTES:
        r["fewer"] = f" (--minutes {args.minutes:g}, not {DEFAULT_MINUTES:g}, for a shorter run)"
    print(f"made {made / 60:g} min of 720p{r['fewer']} in {r['make_long']:.0f} s", flush=True)
    short = {name: tmp / f"{name}.mp4" for name in ("1080p", "4K")}
    started = time.perf_counter()
    for name, path in short.items():
        make_video(path, SIZES[name], MEMORY_SECONDS, clip=CLIP_SECONDS)
    r["make_short"], r["baseline"] = time.perf_counter() - started, run_child(WORKER, "baseline")
    segment = [str(s) for s in SEGMENT]
    r["memory"] = {n: run_child(WORKER, "work", str(p), *segment) for n, p in short.items()}
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    r["ffmpeg_version"] = ffmpeg_version(exe)
    r["probe_s"], probe = timed(lambda: media.probe_video(long))
    r["probe"] = {k: getattr(probe, k) for k in ("duration", "fps", "keyframe_interval")}
    forward, seek = advance_costs(probe, 1 / FPS)
    r["costs"] = (forward, seek)
    measures: dict[str, Callable[[], int]] = {
        "ours": lambda: ours(long, "auto", r["stats"]["auto"]),
        "ffmpeg": lambda: ffmpeg(exe, long, SIZES["720p"]),
        "naive": lambda: naive(long, probe.duration),
        "sequential": lambda: ours(long, "sequential", r["stats"]["sequential"]),
        "seek": lambda: ours(long, "seek", r["stats"]["seek"]),
    }
    for i in range(args.runs):
        print(f"round {i + 1} of {args.runs}: {', '.join(measures)}", flush=True)
        r["stats"] = {k: media.DecodeStats() for k in ("auto", "sequential", "seek")}
        for name, measure in measures.items():
            r.setdefault(name, []).append(timed(measure))
    r["stats"] = {k: vars(v) for k, v in r["stats"].items()}
    auto_seeks, instants = r["stats"]["auto"]["seeks"], r["stats"]["auto"]["converted"]
    if auto_seeks <= 1:
        r["auto"] = "sequential"
    elif auto_seeks >= instants:
        r["auto"] = "seek"
    else:
        r["auto"] = f"seeks at {auto_seeks - 1} of {instants} instants"
    return r


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def render(r: dict[str, Any]) -> str:
    """The table: ours next to ffmpeg and the naive loop, the forced strategies, memory."""
    names = ("ours", "ffmpeg", "naive", "sequential", "seek")
    med = {k: statistics.median(s for s, _ in r[k]) for k in names}
    fps = {k: r[k][0][1] / med[k] for k in med}
    cell = {k: f"{fps[k]:.1f} frames/s ({med[k]:.1f} s)" for k in fps}
    base = int(r["baseline"]["imported_kib"])
    hd, uhd = (int(r["memory"][k]["peak_kib"]) - base for k in ("1080p", "4K"))
    mem = [f"+{mib(kib)} (peak {mib(kib + base)})" for kib in (hd, uhd)]
    segment = f"sample {SEGMENT[1] - SEGMENT[0]:g} s at {FPS:g} fps, max_side {MAX_SIDE}"
    rows = [
        [
            f"1 fps from 720p {r['minutes']:g}-min h264, median of {len(r['ours'])}",
            f"auto ({r['auto']}): {cell['ours']}",
            f"ffmpeg -vf fps=1 → rgb24 pipe: {cell['ffmpeg']}",
            f"{fps['ours'] / fps['ffmpeg']:.2f} (ours ÷ ffmpeg)",
        ],
        [
            "same, same rounds",
            "auto: as above",
            f"naive PyAV, decode all: {cell['naive']}",
            f"{fps['ours'] / fps['naive']:.2f} (ours ÷ naive)",
        ],
        [
            "strategy forced, same rounds",
            f"seek: {cell['seek']}",
            f"sequential: {cell['sequential']}",
            f"{fps['seek'] / fps['sequential']:.2f} (seek ÷ sequential)",
        ],
        [f"peak RSS, {segment}, 1080p", mem[0], f"import-only child: {mib(base)}", ""],
        [f"peak RSS, {segment}, 4K", mem[1], f"1080p: {mem[0]}", f"{uhd / hd:.2f} (over imports)"],
    ]
    return table(["measure", "nightowl (PyAV)", "reference", "ratio"], rows)


def notes(r: dict[str, Any]) -> str:
    """What the table measured, with the numbers that check it, as wrapped Markdown bullets."""
    p, (forward, seek) = r["probe"], r["costs"]
    hd, uhd, sk = r["memory"]["1080p"], r["memory"]["4K"], r["stats"]["seek"]
    runs = {
        k: ", ".join(f"{s:.1f}" for s, _ in r[k])
        for k in ("ours", "ffmpeg", "naive", "sequential", "seek")
    }
    frames = ", ".join(f"{k} {r[k][0][1]}" for k in ("ours", "ffmpeg", "naive"))
    stats = "; ".join(
        f"{k}: decoded {d['decoded']}, seeks {d['seeks']}, converted {d['converted']}"
        for k, d in r["stats"].items()
    )
    bullets = [
        f"Input: {r['minutes']:g} min{r['fewer']} of 1280x720 {RATE} fps h264 (x264 {PRESET}, "
        f"CRF 23, keyframes every {GOP_SECONDS} s, B-frames) in mp4, {r['mbps']:.1f} Mbit/s, "
        f"made in {r['make_long']:.0f} s by `bench._video_worker.make_video`: a blocky noise "
        "texture and a ramp sliding back and forth, drifting colour fields, eight 64x64 blocks "
        "of fresh noise per frame. The 1080p and 4K files are a 4-s clip of the same picture "
        f"repeated (packets copied) to {MEMORY_SECONDS:g} s, made in {r['make_short']:.0f} s.",
        f"Throughput = sampled frames ÷ wall seconds; each round runs ours, ffmpeg, naive, "
        f"sequential, seek. All runs (s), ours: {runs['ours']}; ffmpeg: {runs['ffmpeg']}; naive: "
        f"{runs['naive']}; sequential: {runs['sequential']}; seek: {runs['seek']}. Frames: "
        f"{frames}. Ours = probe_video ({r['probe_s'] * 1000:.0f} ms: {p['fps']:g} fps, keyframes "
        f"every {p['keyframe_interval']:g} s) + sample_frames of [0, {p['duration']:g}). Stats: "
        f"{stats}. Auto's cost model per 1-s step: forward {forward:g} frames; seek "
        f"{SEEK_COST_FRAMES:g} + the instant's distance after its keyframe in frames (0 to "
        f"{2 * (seek - SEEK_COST_FRAMES):g}; {seek:g} on average), so auto {r['auto']}; "
        "forced seeks decoded "
        f"{sk['decoded'] / sk['seeks']:.1f} frames each ({GOP_SECONDS}-s instants are keyframes).",
        f"ffmpeg: {r['ffmpeg_version']} (imageio-ffmpeg; PyAV {av.__version__} is on FFmpeg "
        f"{av.ffmpeg_version_info}), its own threads and process, full-size RGB; we drain the "
        f"pipe. Naive: `container.decode` with ours' threading (frame, {os.cpu_count()} cores), "
        "`to_ndarray` at ours' 448-px size for the frame nearest each second.",
        "Memory: a fresh `python -m bench._video_worker` child per file runs probe_video + "
        f"sample_frames of [{SEGMENT[0]:g}, {SEGMENT[1]:g}) s ({hd['seeks']}/{uhd['seeks']} "
        f"seek, {hd['decoded']}/{uhd['decoded']} frames decoded, 1080p/4K). Peak = the child's "
        "own VmHWM, minus the import-only child's (ru_maxrss would include this parent's RSS). "
        f"Sampling alone (VmHWM reset after probing), 1080p: {mib(hd['sample_peak_kib'])} from "
        f"{mib(hd['sample_from_kib'])}; 4K: {mib(uhd['sample_peak_kib'])} from "
        f"{mib(uhd['sample_from_kib'])}.",
    ]
    lines = (textwrap.fill(b, 98, initial_indent="- ", subsequent_indent="  ") for b in bullets)
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--minutes", type=at_least(1, float), default=DEFAULT_MINUTES, help="long file (10)"
    )
    parser.add_argument("--runs", type=at_least(1), default=3, help="of each timing (default 3)")


def measure(args: argparse.Namespace, tmp: Path, _cleanup: contextlib.ExitStack) -> _report.Outcome:
    """Make the inputs under `tmp` and measure; the table and the notes."""
    results = run(args, tmp)
    return _report.Outcome(render(results), notes(results))


if __name__ == "__main__":
    _report.main("video", __doc__, options, measure)
