"""How fast the audio kinds decode and window a long file, next to the ffmpeg CLI, and their memory.

    .venv/bin/python -m bench.audio [--minutes N] [--runs R] [--write]

Makes a 1-minute and an N-minute (default 60) 44.1 kHz mono mp3 with `testkit.media_samples` in a
temp dir, then times on the long file, alternating, R times each (default 3), median reported:
- ours: probe_audio + energy_envelope + plan_clips, what the audio planner does, in process;
- ffmpeg: `ffmpeg -i F -ac 1 -ar 16000 -f f32le -` into a pipe this process reads and discards;
- a 20 s slice near the end with decode_clip (seeks) and decoded from the start.
Then, in a fresh child per file (`bench/_audio_worker.py`), the planner's work followed by
decode_clip of every window, and the child's own peak RSS, next to an import-only child.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import textwrap
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from bench import _report
from bench._audio_worker import OVERLAP_SECONDS, WINDOW_SECONDS
from bench._ffmpeg import ffmpeg_binary, piped_bytes
from bench._report import at_least, run_child
from testkit.markdown import table
from testkit.media_samples import LONG_PATTERN_BURSTS, LONG_PATTERN_SECONDS, long_audio, tone_bursts
from worker import media
from worker.media._decoder import decode_mono, open_probed_stream

INPUT_RATE = 44100
NOISE = 0.01  # Gaussian, standard deviation; the tones are 0.5-amplitude sines
SLICE_SECONDS = 20.0
WORKER = "bench._audio_worker"  # the memory child


def make_input(path: Path, minutes: float) -> Path:
    """A mono mp3 of the long pattern (tones in [1, 4) and [6, 9) of every 10 s) with noise."""
    pattern = tone_bursts(LONG_PATTERN_BURSTS, LONG_PATTERN_SECONDS, rate=INPUT_RATE, noise=NOISE)
    return long_audio(path, minutes, pattern=pattern, rate=INPUT_RATE)


def ours(path: Path) -> float:
    """Seconds of audio decoded by what the planner does: probe + envelope + windows."""
    probe = media.probe_audio(path)
    envelope = media.energy_envelope(path, probe)
    media.plan_clips(envelope, clip_seconds=WINDOW_SECONDS, overlap_seconds=OVERLAP_SECONDS)
    return envelope.duration


def ffmpeg(exe: str, path: Path) -> float:
    """Seconds of audio ffmpeg wrote to our pipe as 16 kHz mono float32 (read and discarded)."""
    command = [exe, "-nostdin", "-v", "error", "-i", str(path)]
    command += ["-ac", "1", "-ar", str(media.SAMPLE_RATE), "-f", "f32le", "-"]
    return piped_bytes(command) / 4 / media.SAMPLE_RATE


def from_start(path: Path, probe: media.AudioProbe, start: float, end: float) -> np.ndarray:
    """The samples of [start, end) decoded from the start of the stream, without seeking."""
    first, stop = round(start * media.SAMPLE_RATE), round(end * media.SAMPLE_RATE)
    pieces, cursor = [], 0
    with open_probed_stream(path, probe) as (container, stream):
        for _time, samples in decode_mono(container, stream, probe.start_time):
            low, high = max(cursor, first), min(cursor + samples.size, stop)
            if high > low:
                pieces.append(samples[low - cursor : high - cursor].copy())
            cursor += samples.size
            if cursor >= stop:
                break
    return np.concatenate(pieces)


def seek_seconds(path: Path, probe: media.AudioProbe, at: float) -> float:
    """How long `container.seek` alone takes to reach `at` seconds in a freshly opened file."""
    with open_probed_stream(path, probe) as (container, stream):
        assert stream.time_base is not None
        target = int((probe.start_time + at) / stream.time_base)
        start = time.perf_counter()
        container.seek(target, stream=stream)
        return time.perf_counter() - start


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Make the inputs under `tmp`, measure, return the numbers."""
    r: dict[str, Any] = {"ours_s": [], "ffmpeg_s": [], "window_s": [], "start_s": [], "seek_s": []}
    made = time.perf_counter()
    short = make_input(tmp / "1min.mp3", 1)
    long = make_input(tmp / f"{args.minutes:g}min.mp3", args.minutes)
    r["make_seconds"] = time.perf_counter() - made
    r["mp3_mib"] = long.stat().st_size / 2**20
    print(f"made the inputs in {r['make_seconds']:.1f} s; memory children", flush=True)
    # Memory first, while this process is still small (see bench/_audio_worker.py).
    r["baseline"] = run_child(WORKER, "baseline")
    r["mem_short"], r["mem_long"] = (run_child(WORKER, "work", str(f)) for f in (short, long))

    exe, r["ffmpeg"] = ffmpeg_binary()
    for i in range(args.runs):
        print(f"throughput run {i + 1} of {args.runs}", flush=True)
        start = time.perf_counter()
        r["ours_audio"] = ours(long)
        r["ours_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        r["ffmpeg_audio"] = ffmpeg(exe, long)
        r["ffmpeg_s"].append(time.perf_counter() - start)

    probe = media.probe_audio(long)
    r["slice_at"] = at = max(0.0, r["ours_audio"] - SLICE_SECONDS - 10.0)
    for _ in range(args.runs):
        start = time.perf_counter()
        seeked = media.decode_clip(long, probe, at, at + SLICE_SECONDS)
        r["window_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        whole = from_start(long, probe, at, at + SLICE_SECONDS)
        r["start_s"].append(time.perf_counter() - start)
        r["seek_s"].append(seek_seconds(long, probe, at - 1.0))
    diff = seeked - whole if seeked.size == whole.size else np.ones(1, dtype=np.float32)
    r["diff_max"], r["diff_rms"] = float(np.abs(diff).max()), float(np.sqrt(np.mean(diff**2)))
    return r


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def render(r: dict[str, Any], args: argparse.Namespace) -> str:
    """The table: ours next to ffmpeg, seeking next to decoding from the start, memory."""
    n, minutes, audio = args.runs, f"{args.minutes:g}-min", args.minutes * 60
    med = {key: statistics.median(r[key]) for key in ("ours_s", "ffmpeg_s", "window_s", "start_s")}
    ours_s, ff_s, window_s, start_s = med.values()
    seek_ms = statistics.median(r["seek_s"]) * 1000
    lg, sh = r["mem_long"], r["mem_short"]
    base, short, long = int(r["baseline"]["imported_kib"]), int(sh["peak_kib"]), int(lg["peak_kib"])
    at = time.strftime("%H:%M:%S", time.gmtime(r["slice_at"]))
    rows = [
        [
            f"decode + envelope + windows, {minutes} mp3, median of {n}",
            f"{audio / ours_s:.0f}× realtime ({ours_s:.2f} s)",
            f"ffmpeg → f32le pipe: {audio / ff_s:.0f}× realtime ({ff_s:.2f} s)",
            f"{ff_s / ours_s:.2f} (ours ÷ ffmpeg)",
        ],
        [
            f"20 s slice at {at}, decode_clip, median of {n}",
            f"{window_s * 1000:.0f} ms (the seek alone: {seek_ms:.0f} ms)",
            f"same slice decoded from the start: {start_s * 1000:.0f} ms",
            f"{start_s / window_s:.0f}× faster",
        ],
        [
            f"decode_clip of every window in turn, {minutes}",
            f"{lg['ms_per_window']:.0f} ms/window ({lg['decode_seconds']:.1f} s in all)",
            f"1-min: {sh['ms_per_window']:.0f} ms/window ({sh['decode_seconds']:.2f} s in all)",
            f"{lg['ms_per_window'] / sh['ms_per_window']:.1f}× per window",
        ],
        [
            "peak RSS, plan + decode every window, 1-min",
            f"{mib(short)} (+{mib(short - base)})",
            f"import-only child: {mib(base)}",
            "",
        ],
        [
            f"peak RSS, plan + decode every window, {minutes}",
            f"{mib(long)} (+{mib(long - base)})",
            f"1-min: {mib(short)} (+{mib(short - base)})",
            f"{long / short:.2f} (Δ {mib(long - short)})",
        ],
    ]
    return table(["measure", "nightowl (PyAV)", "reference", "ratio"], rows)


def notes(r: dict[str, Any], args: argparse.Namespace) -> str:
    """What the table measured, with the numbers that check it, as wrapped Markdown bullets."""
    s, lg, m = r["mem_short"], r["mem_long"], f"{args.minutes:g}-min"
    phases = " → ".join(mib(lg[k]) for k in ("imported_kib", "envelope_peak_kib", "plan_peak_kib"))
    decode = "decode phase alone" if lg["separate"] else "whole run"
    bullets = [
        f"Inputs: mp3 (libmp3lame, CBR) at 44.1 kHz mono, made with `testkit.media_samples."
        f"long_audio` from the 10-s long pattern (0.5-amplitude 440 Hz tones in [1, 4) and [6, 9) "
        f"s) plus Gaussian noise of σ = {NOISE}. The {m} file is {r['mp3_mib']:.1f} MiB; making "
        f"both took {r['make_seconds']:.0f} s.",
        f"Throughput: realtime = audio seconds ÷ wall seconds. Ours and ffmpeg alternate, "
        f"{args.runs} runs each, median shown; all runs, ours: {_list(r['ours_s'])} s, ffmpeg: "
        f"{_list(r['ffmpeg_s'])} s. Decoded: ours {r['ours_audio']:.2f} s, ffmpeg "
        f"{r['ffmpeg_audio']:.2f} s. Ours runs in this process on one core and also probes, "
        "keeps RMS per 20 ms and plans the windows, with Python work per mp3 frame; ffmpeg only "
        "decodes and resamples, in its own process, while this process drains the pipe on "
        f"another core. ffmpeg: {r['ffmpeg']}; PyAV {av.__version__} is built on FFmpeg "
        f"{av.ffmpeg_version_info}.",
        "Slice: decode_clip opens the file, seeks 1 s before the slice and decodes from there; "
        "'from the start' decodes the same stream from 0 (decode_clip's fallback path). 'The "
        "seek alone' is `container.seek` to that point in a freshly opened file: FFmpeg's mp3 "
        "demuxer seeks exactly by reading every packet from the start (no `fastseek`), so its "
        "cost grows with the position and every window pays it again (next row). Seeked vs from "
        f"the start: max |difference| {r['diff_max']:.1e}, RMS {r['diff_rms']:.1e}, consistent "
        "with a sub-sample time shift (the resampler starts at another input sample after a seek).",
        "Memory: a fresh `python -m bench._audio_worker` child per file runs the planner's work "
        f"(probe + envelope + windows of {WINDOW_SECONDS:g} s, overlap {OVERLAP_SECONDS:g} s), "
        f"then decode_clip of every window in turn ({s['windows']} and {lg['windows']} "
        "windows). Peak = the child's own VmHWM from /proc: its ru_maxrss would include this "
        f"parent's RSS at the spawn. {m} peak after imports → probe + envelope → windows: "
        f"{phases}; {decode}: {mib(lg['decode_peak_kib'])}, from {mib(lg['decode_from_kib'])} "
        "at its start. What grows with length is the "
        "envelope (4 B per 20 ms) and the float64/int64 arrays plan_clips makes over it "
        "(about 7 × 8 B per 20 ms, freed after planning).",
    ]
    lines = (textwrap.fill(b, 98, initial_indent="- ", subsequent_indent="  ") for b in bullets)
    return "\n".join(lines)


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--minutes", type=at_least(1, float), default=60.0, help="long file (default 60)"
    )
    parser.add_argument("--runs", type=at_least(1), default=3, help="of each timing (default 3)")


def measure(args: argparse.Namespace, tmp: Path, _cleanup: contextlib.ExitStack) -> _report.Outcome:
    """Make the inputs under `tmp` and measure; the table and the notes."""
    results = run(args, tmp)
    return _report.Outcome(render(results, args), notes(results, args))


if __name__ == "__main__":
    _report.main("audio", __doc__, options, measure)
