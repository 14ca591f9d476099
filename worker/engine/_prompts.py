"""Prompts as Gemma 4 unified reads them: rendering with media placeholders, exact token counts.

`render(..., audio_clips=n)` opens the first user turn with n audio placeholders, folding any
system text in after them (mlx-vlm's own template helper puts audio last: notes pitfall 7);
`render(..., frames=n)` adds one video segment after them. `count_tokens`, `audio_tokens` and
`frame_tokens` count what mlx-vlm will feed the model, soft tokens included, and `media` checks
a call's clips and frames against its prompt (see `_audio` and `_video` for the arithmetic).
Nothing here runs the model: only the processor's tokenizer and templates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

from core.errors import EngineError
from worker.engine import _audio, _video

_ROLES = frozenset({"system", "user", "assistant"})


class Prompts:
    """The rendering and counting side of one loaded model's processor."""

    def __init__(self, processor: Any, model_type: str, video_frame_tokens: int) -> None:
        self._processor = processor
        self._model_type = model_type
        self._video_frame_tokens = video_frame_tokens
        self.max_frames: int = _video.MAX_FRAMES
        """The most frames one video segment may hold."""

    def render(
        self, messages: Sequence[Mapping[str, str]], *, audio_clips: int = 0, frames: int = 0
    ) -> str:
        """The prompt for `messages` (roles system/user/assistant), the model's turn opened.

        With `audio_clips` > 0 the first user turn starts with that many audio placeholders,
        before any text: the prompt opens `<bos><|turn>user\n<|audio|>...`. With `frames` > 0
        (at most `max_frames`) one video placeholder follows them, standing for the segment's
        frames that `generate` takes. Leading system messages are then not rendered as a
        system turn (which would push the media back by its length) but folded into the user
        turn after the media: system text, a blank line, user text. The first message after
        the system ones must be the user's.
        """
        for message in messages:
            if message.get("role") not in _ROLES:
                raise ValueError(f"unknown chat role {message.get('role')!r}")
        if audio_clips < 0:
            raise ValueError("audio_clips must not be negative")
        if frames < 0:
            raise ValueError("frames must not be negative")
        if frames > self.max_frames:
            raise ValueError(f"{frames} frames in one segment: at most {self.max_frames}")
        chat: list[dict[str, Any]] = [dict(message) for message in messages]
        if audio_clips and any(
            _audio.count_placeholders(self._processor, m["content"]) for m in chat
        ):
            raise ValueError("message text must not contain the audio placeholder")
        if frames and any(self._vision_placeholders(m["content"]) for m in chat):
            raise ValueError("message text must not contain a video or image placeholder")
        if audio_clips or frames:
            chat = _audio.media_first_messages(messages, audio_clips, video=bool(frames))
        # The tokenizer's own template with typed content parts, as mlx-vlm's helper builds
        # them for Gemma 4, but with the audio parts first (mlx-vlm's puts them last: pitfall 7).
        rendered = str(
            self._processor.tokenizer.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=True
            )
        )
        found = _audio.count_placeholders(self._processor, rendered) if audio_clips else 0
        if found != audio_clips:
            # A template without audio parts drops them silently (notes: tiny model).
            raise EngineError(
                f"the chat template rendered {found} audio placeholders for {audio_clips} clips"
            )
        videos = _video.count_placeholders(self._processor, rendered) if frames else 0
        if videos != int(bool(frames)):
            raise EngineError(f"the chat template rendered {videos} video placeholders for one")
        return rendered

    def count_tokens(
        self,
        text: str,
        *,
        audio_seconds: Sequence[float] = (),
        frames: tuple[int, int, int] | None = None,
        frame_times: Sequence[float] | None = None,
    ) -> int:
        """The number of tokens mlx-vlm will feed the model for `text` and those media.

        With clips, `text` must hold one placeholder per clip (as `render` makes it), and each
        placeholder is expanded as mlx-vlm's processor expands it before counting: a clip of
        s seconds takes `audio_tokens(s)` tokens in place of its one-token placeholder, so the
        total is `count_tokens(text) + sum(audio_tokens(s) - 1)`. Clips over 30 s are refused.

        `frames=(count, width, height)` counts a video segment of that many frames of that
        size (with `frame_times`, as `generate` gets them) in place of the one video
        placeholder `text` must then hold: the segment's text is built as `generate` and the
        processor build it and tokenized in place, so the total is exact (and equals
        `count_tokens(text) - 1 + frame_tokens(...)` for prompts `render` makes).
        """
        if len(audio_seconds):
            samples = [self._samples(seconds) for seconds in audio_seconds]
            self._check_placeholders(text, len(samples))
            text = _audio.expand_placeholders(self._processor, text, samples)
        if frames is not None:
            count, width, height = frames
            self._check_video_placeholder(text)
            segment = self._segment_text(count, width, height, frame_times)
            text = _video.replace_placeholder(self._processor, text, segment)
        elif frame_times is not None:
            raise ValueError("frame_times need frames=(count, width, height)")
        return int(self.encode(text).shape[1])

    def frame_tokens(
        self, count: int, width: int, height: int, *, frame_times: Sequence[float] | None = None
    ) -> int:
        """Prompt tokens a video segment of `count` frames of width x height takes.

        Per frame, as the processor computes it: n soft tokens, where the frame is resized
        to the `video_frame_tokens` budget S keeping its aspect ratio and cut into 48x48
        patches (f = sqrt(S * 2304 / (w * h)), n = floor(f * h / 48) * floor(f * w / 48):
        64 for a square frame at S = 70, 66 for 16:9), plus `<|image>` and `<image|>`, plus
        its "mm:ss " label (from `frame_times`, else 2 frames per second) and the space
        between frames. The labels are tokenized, not estimated: a few tokens per frame.
        The segment replaces one placeholder token of the rendered prompt.
        """
        segment = self._segment_text(count, width, height, frame_times)
        return len(self._processor.tokenizer(segment, add_special_tokens=False)["input_ids"])

    def audio_tokens(self, seconds: float) -> int:
        """Prompt tokens one clip of `seconds` takes, its two boundary markers included.

        As mlx-vlm's processor computes it: min(ceil(seconds * 1000 / 40), 750) soft tokens
        (25 per second of 16 kHz audio, the length rounded to whole samples) plus `<|audio>`
        and `<audio|>`. Refuses clips over 30 s, which the model would truncate.
        """
        return _audio.clip_tokens(self._processor, self._samples(seconds))

    def media(
        self,
        prompt: str,
        audio: Sequence[np.ndarray] | None,
        frames: np.ndarray | Sequence[np.ndarray] | None,
        frame_times: Sequence[float] | None,
    ) -> tuple[str, list[np.ndarray], list[Any]]:
        """The prompt with its video placeholder expanded, its checked clips and its frames."""
        clips = _audio.check_clips(self._processor, audio) if audio is not None else []
        if clips:
            self._check_placeholders(prompt, len(clips))
        images: list[Any] = []
        if frames is not None:
            checked = _video.check_frames(frames)
            times = _video.frame_times(len(checked), frame_times)
            self._check_video_placeholder(prompt)
            layout = _video.placeholder_text(self._processor, times)
            prompt = _video.replace_placeholder(self._processor, prompt, layout)
            images = _video.images(checked)
        elif frame_times is not None:
            raise ValueError("frame_times were given without frames")
        return prompt, clips, images

    def _samples(self, seconds: float) -> int:
        """The whole number of samples a clip of `seconds` holds at the processor's rate."""
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"an audio clip must last more than 0 s, not {seconds!r}")
        return round(seconds * _audio.sampling_rate(self._processor))

    def _check_placeholders(self, text: str, clips: int) -> None:
        """Refuse a prompt whose audio placeholders do not match its clips one to one."""
        found = _audio.count_placeholders(self._processor, text)
        if found != clips:
            raise ValueError(
                f"the prompt holds {found} audio placeholders for {clips} clips; "
                "render it with audio_clips equal to the number of clips"
            )

    def _vision_placeholders(self, text: str) -> int:
        """How many video and image placeholders `text` holds."""
        return _video.count_placeholders(self._processor, text) + text.count(
            self._processor.image_token
        )

    def _check_video_placeholder(self, text: str) -> None:
        """Refuse a prompt without exactly one video placeholder, or with image placeholders."""
        videos = _video.count_placeholders(self._processor, text)
        if videos != 1 or text.count(self._processor.image_token):
            raise ValueError(
                f"the prompt holds {videos} video placeholders (and "
                f"{text.count(self._processor.image_token)} image placeholders) for one "
                "segment of frames; render it with frames equal to the number of frames"
            )

    def _segment_text(
        self, count: int, width: int, height: int, frame_times: Sequence[float] | None
    ) -> str:
        """The text one segment becomes in the processor, from its frame count and size."""
        if not 1 <= count <= self.max_frames:
            raise ValueError(f"a video segment holds 1 to {self.max_frames} frames, not {count}")
        times = _video.frame_times(count, frame_times)
        return _video.segment_text(self._processor, times, width, height, self._video_frame_tokens)

    def encode(self, text: str) -> Any:
        """Token ids `[1, n]`, tokenized as mlx-vlm's generate tokenizes a text-only prompt."""
        add_special = should_add_special_tokens(self._model_type, self._processor)
        return prepare_inputs(self._processor, prompts=text, add_special_tokens=add_special)[
            "input_ids"
        ]
