"""The ffmpeg CLI that the media benchmarks measure against: its binary, its version, and what it
writes to a pipe."""

from __future__ import annotations

import io
import shutil
import subprocess
from typing import cast

import imageio_ffmpeg

_PIPE_CHUNK = 1 << 20


def ffmpeg_binary() -> tuple[str, str]:
    """(path, description): Debian's `ffmpeg` if on PATH, else imageio-ffmpeg's static build."""
    exe, source = shutil.which("ffmpeg"), "`ffmpeg` on PATH"
    if exe is None:
        exe, source = imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg's binary"
    return exe, f"{source} ({ffmpeg_version(exe)})"


def ffmpeg_version(exe: str) -> str:
    """The first words of `exe -version`, e.g. `ffmpeg version 7.1.1`."""
    first = subprocess.run([exe, "-version"], capture_output=True, text=True, check=True)
    return " ".join(first.stdout.split()[:3])


def piped_bytes(command: list[str]) -> int:
    """Run the ffmpeg `command`, reading its stdout to the end and discarding it; the bytes read."""
    buffer, total = bytearray(_PIPE_CHUNK), 0
    with subprocess.Popen(command, stdout=subprocess.PIPE) as child:
        pipe = cast(io.BufferedReader, child.stdout)
        while count := pipe.readinto(buffer):
            total += count
    if child.returncode != 0:
        raise RuntimeError(f"ffmpeg exited with {child.returncode}")
    return total
