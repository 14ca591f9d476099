"""Audio prompts: placing the clips first, checking them, and counting their tokens.

How mlx-vlm 0.7.10 takes audio (`Gemma4Processor.__call__`, `Gemma4UnifiedAudioFeatureExtractor`):
the rendered prompt holds one placeholder per clip (the processor's `audio_token`, `<|audio|>`),
`stream_generate(..., audio=[...])` takes float32 16 kHz mono arrays (or file paths, which it
decodes and resamples), and the processor replaces the i-th placeholder with
`<|audio>` + n_i x `<|audio|>` + `<audio|>`, where

    n_i = min(ceil(samples_i / sampling_rate * 1000 / audio_ms_per_token), audio_seq_length)

which for Gemma 4 (16 kHz, 40 ms per token, at most 750) is ceil(25 x seconds). The waveform
itself is cut into frames of 640 samples (40 ms), one per soft token, and projected into the
model; frames beyond the 750-token cap would spill into the next clip's slots, which is why
clips over 30 s are refused here instead of being silently truncated (notes pitfall 5).

Audio goes first (notes pitfalls 5 and 7): the real 12B stops understanding audio placed
beyond about token 450-500, and mlx-vlm's own `apply_chat_template` puts it after the text.
So the placeholders open the first user turn, and any leading system text is folded into that
turn after them, rather than rendered as a system turn in front of the audio. A video segment
(see `_video`) goes right after the audio, before any text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def media_first_messages(
    messages: Sequence[Mapping[str, str]], clips: int, *, video: bool = False
) -> list[dict[str, Any]]:
    """Chat messages whose first user turn opens with `clips` audio parts, then the video part.

    Leading system messages are folded into that turn after the media, their text first and
    then the user's, separated by a blank line, so nothing precedes the media but the turn
    marker. The first message after them must be the user's.
    """
    chat = [dict(message) for message in messages]
    system = []
    while chat and chat[0].get("role") == "system":
        system.append(chat.pop(0)["content"])
    if not chat or chat[0].get("role") != "user":
        media = "audio" if clips else "video"
        raise ValueError(f"{media} needs a user message first (after any system messages)")
    texts = [text.strip() for text in (*system, chat[0]["content"]) if text.strip()]
    content: list[dict[str, str]] = [{"type": "audio"} for _ in range(clips)]
    if video:
        content.append({"type": "video"})
    if texts:
        content.append({"type": "text", "text": "\n\n".join(texts)})
    return [{"role": "user", "content": content}, *chat[1:]]


def sampling_rate(processor: Any) -> int:
    """The rate the processor assumes for raw waveforms (16 kHz for Gemma 4)."""
    return int(processor.feature_extractor.sampling_rate)


def max_clip_samples(processor: Any) -> int:
    """The longest clip the processor turns into tokens without truncating it (30 s)."""
    rate = sampling_rate(processor)
    return int(processor.audio_seq_length * processor.audio_ms_per_token * rate // 1000)


def soft_tokens(processor: Any, samples: int) -> int:
    """The soft tokens of one clip of `samples`, from the processor's own computation.

    `_compute_audio_num_tokens` reads only the waveform's length, so a range stands in for it.
    """
    check_samples(processor, samples)
    return int(processor._compute_audio_num_tokens(range(samples), sampling_rate(processor)))


def clip_tokens(processor: Any, samples: int) -> int:
    """Prompt tokens one clip takes in place of its placeholder: soft tokens and markers.

    The markers are `<|audio>` and `<audio|>` (single special tokens) around the soft tokens.
    """
    markers = int(bool(processor.boa_token)) + int(bool(processor.eoa_token))
    return soft_tokens(processor, samples) + markers


def check_samples(processor: Any, samples: int) -> None:
    """Refuse empty clips and clips the processor would truncate."""
    limit = max_clip_samples(processor)
    if samples < 1:
        raise ValueError("an audio clip must hold at least one sample")
    if samples > limit:
        rate = sampling_rate(processor)
        raise ValueError(
            f"an audio clip of {samples / rate:.2f} s is longer than {limit / rate:g} s, which "
            "the model would silently truncate: cut it into shorter windows"
        )


def check_clips(processor: Any, audio: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The clips as contiguous float32 mono arrays, refused if empty, too long or not 1-D."""
    clips = []
    for clip in audio:
        array = np.ascontiguousarray(clip, dtype=np.float32)
        if array.ndim != 1:
            raise ValueError(f"an audio clip must be 1-D mono samples, not shape {array.shape}")
        check_samples(processor, int(array.shape[0]))
        clips.append(array)
    return clips


def count_placeholders(processor: Any, text: str) -> int:
    """How many audio placeholders `text` holds."""
    return text.count(processor.audio_token)


def expand_placeholders(processor: Any, text: str, samples: Sequence[int]) -> str:
    """`text` with each placeholder expanded as the processor expands it for those clips."""
    token = processor.audio_token
    replacements = iter(
        processor.boa_token + token * soft_tokens(processor, n) + processor.eoa_token
        for n in samples
    )
    return re.sub(re.escape(token), lambda _: next(replacements), text)
