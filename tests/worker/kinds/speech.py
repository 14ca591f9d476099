"""A made-up stream of spoken words, and the overlapping windows that would have heard it."""

from __future__ import annotations

import random

from worker.kinds.audio.transcript import WindowText


def spoken_windows(
    words: int, seconds_per_word: float, window: float, overlap: float
) -> tuple[list[str], list[WindowText]]:
    """Distinct words, one every `seconds_per_word`, and the windows hearing them, in order."""
    rng = random.Random(7)
    stream = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 11)))
        + rng.choice(["", "", "", ",", "."])
        for _ in range(words)
    ]
    total = words * seconds_per_word
    windows: list[WindowText] = []
    start = 0.0
    while True:
        end = min(start + window, total)
        heard = [w for i, w in enumerate(stream) if start <= i * seconds_per_word < end]
        windows.append(WindowText(len(windows), start, end, " ".join(heard)))
        if end >= total:
            return stream, windows
        start = end - overlap
