"""A made-up stream of spoken words, and the overlapping clips that would have heard it."""

from __future__ import annotations

import random

from worker.kinds.audio.transcript import ClipText


def spoken_clips(
    words: int, seconds_per_word: float, clip: float, overlap: float
) -> tuple[list[str], list[ClipText]]:
    """Distinct words, one every `seconds_per_word`, and the clips hearing them, in order."""
    rng = random.Random(7)
    stream = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 11)))
        + rng.choice(["", "", "", ",", "."])
        for _ in range(words)
    ]
    total = words * seconds_per_word
    clips: list[ClipText] = []
    start = 0.0
    while True:
        end = min(start + clip, total)
        heard = [w for i, w in enumerate(stream) if start <= i * seconds_per_word < end]
        clips.append(ClipText(len(clips), start, end, " ".join(heard)))
        if end >= total:
            return stream, clips
        start = end - overlap
