"""Child process of `bench.video`: the worker's frame sampling of one segment, then its peak RSS;
and the video files the benchmark makes (`make_video`, run by the parent).

    python -m bench._video_worker baseline                   imports only
    python -m bench._video_worker work FILE START END        probe_video, then sample_frames of
                                                             [START, END) at FPS, MAX_SIDE

Prints one JSON line. Peaks are the kernel's high-water mark of this process's own memory
(`VmHWM`), not `ru_maxrss`: Linux carries the parent's RSS at the moment of the spawn into the
child's `ru_maxrss` across exec, so a child spawned by a big parent reports the parent's size
(found by bench/_audio_worker.py; both read it with bench/_memory.py).
"""

from __future__ import annotations

import math
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.codec.context import ThreadType
from av.video.stream import VideoStream

from bench._memory import child_main, peak_kib, reset_peak
from worker.media import DecodeStats, probe_video, sample_frames

FPS = 1.0  # the sampling the benchmark measures: 1 frame a second, longer side 448
MAX_SIDE = 448
RATE, GOP_SECONDS, PRESET = 30, 2, "superfast"  # the inputs: 30 fps, 2-s GOPs, x264 preset
_PAN = 256  # pixels the texture slides back and forth


def work(path: Path, start: float, end: float) -> dict[str, float | int | bool | str]:
    """What one video.caption segment does with the file: probe it, sample the range."""
    imported = peak_kib()
    began = time.perf_counter()
    probe = probe_video(path)
    probe_peak = peak_kib()
    separate, sample_from = reset_peak(), peak_kib("VmRSS")
    stats = DecodeStats()
    frames = sample_frames(path, probe, start, end, fps=FPS, max_side=MAX_SIDE, stats=stats)
    sample_peak = peak_kib()
    return {
        "imported_kib": imported,
        "probe_peak_kib": probe_peak,
        # With `separate`, the sampling's own peak; else the whole run's.
        "sample_peak_kib": sample_peak,
        "sample_from_kib": sample_from,  # RSS when sampling began
        "peak_kib": max(probe_peak, sample_peak),
        "separate": separate,
        "size": f"{probe.width}x{probe.height}",
        "frames": len(frames),
        "image": "x".join(str(n) for n in frames[0].image.shape) if frames else "",
        "decoded": stats.decoded,
        "seeks": stats.seeks,
        "seconds": time.perf_counter() - began,
    }


class Pattern:
    """yuv420p frames: a blocky noise texture and a ramp sliding at two speeds, colour fields
    drifting, and eight 64x64 blocks of fresh noise per frame at moving places."""

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.width, self.height = width, height
        cells = rng.integers(0, 128, ((height + _PAN) // 8, (width + _PAN) // 8), dtype=np.uint8)
        self.luma = np.repeat(np.repeat(cells, 8, axis=0), 8, axis=1)
        self.ramp = (np.arange(width + _PAN) * 127 // (width + _PAN)).astype(np.uint8)
        y, x = np.mgrid[0 : (height + _PAN) // 2, 0 : (width + _PAN) // 2]
        self.u = (128 + 80 * np.sin(x / 41 + y / 67)).astype(np.uint8)
        self.v = (128 + 80 * np.cos(x / 59 - y / 37)).astype(np.uint8)
        self.noise = rng.integers(0, 256, (16, 64, 64), dtype=np.uint8)
        self.buffer = np.empty((height * 3 // 2, width), dtype=np.uint8)

    def frame(self, index: int) -> av.VideoFrame:
        w, h, buffer = self.width, self.height, self.buffer
        dx, dy, ramp = _swing(index, 3), _swing(index, 2), _swing(index, 5)
        luma = buffer[:h]
        np.add(self.luma[dy : dy + h, dx : dx + w], self.ramp[ramp : ramp + w], out=luma)
        for k in range(8):
            top, left = (index * 7 + k * 131) % (h - 64), (index * 11 + k * 257) % (w - 64)
            luma[top : top + 64, left : left + 64] = self.noise[(index + k) % 16]
        u, v = buffer[h : h + h // 4], buffer[h + h // 4 :]
        u.reshape(h // 2, w // 2)[:] = self.u[dy // 2 : (dy + h) // 2, dx // 2 : (dx + w) // 2]
        v.reshape(h // 2, w // 2)[:] = self.v[dx // 2 : (dx + h) // 2, dy // 2 : (dy + w) // 2]
        frame = av.VideoFrame.from_ndarray(buffer, format="yuv420p")
        frame.pts, frame.time_base = index, Fraction(1, RATE)
        return frame


def _swing(index: int, speed: int) -> int:
    """A position going 0 -> _PAN -> 0 at `speed` pixels a frame."""
    return _PAN - abs(index * speed % (2 * _PAN) - _PAN)


def make_video(
    path: Path, size: tuple[int, int], seconds: float, *, clip: float = 0, budget: float = math.inf
) -> float:
    """Encode `seconds` of Pattern (or a `clip` repeated by packet copies); seconds made."""
    pattern, frames = Pattern(*size), round((clip or seconds) * RATE)
    kept: list[tuple[bytes, int, int, Fraction, bool]] = []
    started, index, gop = time.perf_counter(), 0, GOP_SECONDS * RATE
    with av.open(str(path), "w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=RATE)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        stream.codec_context.options = {"preset": PRESET, "x264-params": params}
        stream.thread_type = ThreadType.FRAME  # as ffmpeg encodes: whole frames, no slices

        def emit(packets: list[av.Packet[VideoStream]]) -> None:
            for packet in packets:
                if clip:  # before muxing, which rebases the timestamps in place
                    assert packet.pts is not None and packet.dts is not None
                    data, key = bytes(packet), packet.is_keyframe
                    kept.append((data, packet.pts, packet.dts, packet.time_base, key))
                output.mux(packet)

        while index < frames:
            if index and index % (60 * RATE) == 0 and time.perf_counter() - started > budget:
                break
            emit(stream.encode(pattern.frame(index)))
            index += 1
        emit(stream.encode(None))
        copies = math.ceil(seconds / clip) if clip else 1
        for k in range(1, copies):
            for data, pts, dts, base, key in kept:
                packet, shift = av.Packet(data), round(k * clip / base)
                packet.pts, packet.dts, packet.time_base = pts + shift, dts + shift, base
                packet.is_keyframe, packet.stream = key, stream
                output.mux(packet)
    return index / RATE * copies


if __name__ == "__main__":
    usage = "python -m bench._video_worker baseline | work FILE START END"
    child_main(
        sys.argv[1:], usage, 3, lambda file, start, end: work(Path(file), float(start), float(end))
    )
