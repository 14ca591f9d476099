"""The engine: Gemma 4 unified loaded once through mlx-vlm, with its MTP drafter when configured.

Shared-prefix generation (document Q&A): the prompts are tokenized exactly as mlx-vlm would,
their longest common token prefix is prefilled once by mlx-vlm's own `generate_step`, and each
prompt then runs through the ordinary `stream_generate` with only its own suffix and a private
copy of that cache (see `_prefix`). The drafter works on top of the reused prefix: the MTP
assistant needs only the target's KV cache and the hidden state of the last prompt token, and
both come out of the suffix pass exactly as from a cold prefill, so speculation is used there
as everywhere else. (A DFlash or EAGLE drafter would also need the prefix's hidden states; the
loader accepts only MTP drafters.) Greedy output equals separate `generate` calls token for
token in the tests. It is not bit-exact: the prompt is prefilled in other chunks than a cold
call's, which moves log-probs in the last bits (about 2e-6 on the tiny model on the CPU), so a
near-tie between two tokens could in principle still flip one.

The cache lives only inside one call, never across calls: mlx-vlm's caches do not look at media
content (notes/gemma4-mlx.md, pitfall 2), and one job's document must not leak into another's.

The first generation of a shared-prefix call carries the prefix's prefill time and one more
model call; the others report the prefix length in `prefill_tokens_saved`.

Rendering and token counting are `Engine.prompts` (`_prompts`); the engine's own `render`,
`count_tokens`, `audio_tokens` and `frame_tokens` hand over to it.

Audio (see `_audio` for how mlx-vlm takes it and counts its tokens): `render(...,
audio_clips=n)` opens the first user turn with n placeholders, folding any system text in
after them; `generate(..., audio=[...])` passes float32 16 kHz mono clips of at most 30 s to
mlx-vlm; `count_tokens(..., audio_seconds=[...])` and `audio_tokens` give their token counts.
Every audio call prefills its whole prompt afresh: no prefix cache, APC or PromptCacheState
(notes pitfalls 1 and 2), and `generate_shared_prefix` is text only. The drafter works after
an audio prefill as after a text one (the MTP assistant reads the target's KV cache and last
hidden state, whatever filled them), so speculation is used for audio prompts too.

Video (see `_video` for the layout, the choice of image placeholders and the token formula):
`render(..., frames=n)` puts one video segment after any audio placeholders and before the
text; `generate(..., frames=[...], frame_times=[...])` passes HxWx3 uint8 RGB frames (at most
32) with their times, labelled mm:ss as Gemma 4 labels video frames; `frame_tokens` and
`count_tokens(..., frames=(n, w, h))` count them. Each frame takes `video_frame_tokens` (70)
soft tokens at most: the image processor's 280-token default is replaced (notes pitfall 6).
Frame prompts are prefilled in one piece with fresh caches (bidirectional vision attention,
pitfall 3), and the drafter runs after that prefill as after any other. With audio in the same
prompt mlx-vlm prefills in chunks and keeps the frames' attention causal (its own rule for
mixed image and audio prompts).

Speculation: `speculative=True`/`False` forces the drafter on or off for a call; `"auto"` (the
default) lets this host's `SpeculationPolicy` decide per prompt shape from its own figures of
decode speed with and without the drafter (`_speculation`). Every generation's usage says what
was decided and why (`usage.speculation`, `usage.drafted_calls`).

An Engine serializes its calls: the drafter's statistics and the tokenizer's stopping criteria
are per-model state inside mlx-vlm.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal, TypeVar

import mlx.core as mx
import numpy as np

from core.errors import EngineError, NightowlError
from worker.engine._batch import PREFILL_STEP, BatchPrompt, ContinuousBatch
from worker.engine._decode import Speculation, decode
from worker.engine._loading import LoadedModels, load_models
from worker.engine._loop import GenerationLoop, NotBatchable
from worker.engine._prefix import copy_cache, prefill_prefix, shared_prefix_length
from worker.engine._prompts import Prompts
from worker.engine._speculation import Decision, SpeculationPolicy
from worker.engine.batch_size import BatchPlan, KVFootprint, measure_kv, plan_batch
from worker.engine.config import EngineConfig
from worker.engine.generation import Generation

_T = TypeVar("_T")
# `decode` with the model and one call's settings bound: takes the prompt (or ids and cache).
_Decode = Callable[..., Generation]
Speculative = bool | Literal["auto"] | None
"""A call's drafter setting: forced on or off, decided by measurement, or None for the config."""


@dataclass(frozen=True)
class PromptRequest:
    """One prompt of `Engine.generate_batch`, with its media as `Engine.generate` takes them."""

    prompt: str
    audio: Sequence[np.ndarray] | None = None
    frames: np.ndarray | Sequence[np.ndarray] | None = None
    frame_times: Sequence[float] | None = None
    max_tokens: int = 256


class Engine:
    """A loaded target model (and drafter) that turns prompts into Generations."""

    def __init__(self, config: EngineConfig, models: LoadedModels) -> None:
        self.config = config
        self.model_id: str = config.model
        self.draft_model_id: str | None = config.draft_model if models.drafter is not None else None
        self.is_tiny: bool = models.is_tiny
        """True for the tiny random-weight model: its output is noise."""
        self._model = models.model
        self._processor = models.processor
        self._drafter = models.drafter
        self._draft_kind = models.draft_kind
        self._lock = threading.Lock()
        self._loop: GenerationLoop | None = None
        self.kv: KVFootprint = measure_kv(self._model)
        """KV cache bytes per token of this model, weighed at load (`batch_size`)."""
        self.speculation_policy = SpeculationPolicy()
        """This host's figures for `speculative="auto"`."""
        self.prompts = Prompts(
            models.processor, models.model.config.model_type, config.video_frame_tokens
        )
        self.max_frames: int = self.prompts.max_frames
        """The most frames one video segment may hold."""
        self._set_frame_budget()

    @classmethod
    def load(cls, config: EngineConfig, *, total_memory_bytes: int | None = None) -> Engine:
        """Check that the models fit in `total_memory_bytes` (default: this machine), then load."""
        if config.cache_limit_bytes is not None:
            mx.set_cache_limit(config.cache_limit_bytes)
        return cls(config, load_models(config, total_memory_bytes))

    def render(
        self, messages: Sequence[Mapping[str, str]], *, audio_clips: int = 0, frames: int = 0
    ) -> str:
        """The prompt for `messages`, the model's turn opened, media first (`Prompts.render`)."""
        return self.prompts.render(messages, audio_clips=audio_clips, frames=frames)

    def count_tokens(
        self,
        text: str,
        *,
        audio_seconds: Sequence[float] = (),
        frames: tuple[int, int, int] | None = None,
        frame_times: Sequence[float] | None = None,
    ) -> int:
        """The number of tokens mlx-vlm will feed the model (`Prompts.count_tokens`)."""
        return self.prompts.count_tokens(
            text, audio_seconds=audio_seconds, frames=frames, frame_times=frame_times
        )

    def frame_tokens(
        self, count: int, width: int, height: int, *, frame_times: Sequence[float] | None = None
    ) -> int:
        """Prompt tokens a video segment of `count` frames takes (`Prompts.frame_tokens`)."""
        return self.prompts.frame_tokens(count, width, height, frame_times=frame_times)

    def audio_tokens(self, seconds: float) -> int:
        """Prompt tokens one clip of `seconds` takes (`Prompts.audio_tokens`)."""
        return self.prompts.audio_tokens(seconds)

    def generate(
        self,
        prompt: str,
        *,
        audio: Sequence[np.ndarray] | None = None,
        frames: np.ndarray | Sequence[np.ndarray] | None = None,
        frame_times: Sequence[float] | None = None,
        max_tokens: int,
        temperature: float = 0.0,
        speculative: Speculative = None,
        draft_block_size: int | None = None,
    ) -> Generation:
        """Generate a continuation of the rendered `prompt`.

        `audio`: float32 mono clips at 16 kHz, one per placeholder in `prompt`, in order, each
        at most 30 s long (ValueError otherwise: cut longer audio into windows).

        `frames`: one video segment for the prompt's video placeholder (`render(...,
        frames=n)`): HxWx3 uint8 RGB arrays of one size, or a (T, H, W, 3) array, at most
        `max_frames` (ValueError beyond). `frame_times`: their times in seconds, written in
        front of each frame as mm:ss (default: 2 frames per second from 00:00). Each frame
        takes at most `video_frame_tokens` soft tokens, whatever its scale.

        The prompt is prefilled whole with fresh caches every call, and the drafter runs after
        an audio or vision prefill as after a text one. `usage.prompt_tokens` counts the soft
        tokens.
        """
        prompt, clips, images = self.prompts.media(prompt, audio, frames, frame_times)
        loop = self._loop
        if loop is not None and temperature == 0 and speculative is not True:
            if max_tokens < 1:
                raise ValueError("max_tokens must be at least 1")
            with _as_engine_error():
                try:
                    return loop.submit(BatchPrompt(prompt, clips, images, max_tokens)).result()
                except NotBatchable:
                    pass  # decoded alone below, between two steps of the batch
        shape = "+".join(name for name, used in (("audio", clips), ("video", images)) if used)
        run = self._decoder(max_tokens, temperature, speculative, draft_block_size, shape or "text")

        def call() -> Generation:
            if images:
                self._set_frame_budget()
            return run(prompt=prompt, audio=clips, images=images)

        return self._run(call)

    def generate_shared_prefix(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        speculative: Speculative = None,
        draft_block_size: int | None = None,
    ) -> list[Generation]:
        """Generate for each text prompt, prefilling their common token prefix only once."""
        run = self._decoder(max_tokens, temperature, speculative, draft_block_size, "text")
        return self._run(lambda: self._shared_prefix(list(prompts), run))

    def generate_batch(
        self,
        requests: Sequence[PromptRequest],
        *,
        temperature: float = 0.0,
        max_rows: int | None = None,
        prefill_step: int = PREFILL_STEP,
    ) -> list[Generation]:
        """Generate for every request, decoding them together on mlx-vlm's batcher; in order.

        Up to `max_rows` rows decode at once (default: all, at most `max_batch`; a scheduler
        sizes it with `batch_plan`), joining as others finish. Prompts
        are prefilled `prefill_step` tokens at a time; a vision prompt longer than that must
        prefill in one piece and runs alone (`_batch`). Batched rows decode without the drafter.
        """
        prepared = [
            (r, *self.prompts.media(r.prompt, r.audio, r.frames, r.frame_times)) for r in requests
        ]
        for request, *_ in prepared:
            if request.max_tokens < 1:
                raise ValueError("max_tokens must be at least 1")

        def call() -> list[Generation]:
            self._set_frame_budget()
            batch = ContinuousBatch(
                self._model,
                self._processor,
                max_rows=max_rows or max(1, min(len(prepared), self.config.max_batch)),
                temperature=temperature,
                prefill_step=prefill_step,
            )
            results: dict[int, Generation] = {}
            order: dict[int, int] = {}
            alone: list[int] = []
            try:
                for index, (request, prompt, clips, images) in enumerate(prepared):
                    uid = batch.add(BatchPrompt(prompt, clips, images, request.max_tokens))
                    if uid is None:
                        alone.append(index)
                    else:
                        order[uid] = index
                while batch.active:
                    for uid, generation in batch.step():
                        results[order[uid]] = generation
            finally:
                batch.close()
            for index in alone:
                request, prompt, clips, images = prepared[index]
                run = self._decoder(request.max_tokens, temperature, False, None, "video")
                results[index] = run(prompt=prompt, audio=clips, images=images)
            return [results[index] for index in range(len(prepared))]

        return self._run(call)

    def batch_plan(
        self, context_tokens: int, *, prompt_tokens: int, vision: bool = False
    ) -> BatchPlan:
        """How many sequences of `context_tokens` (prompt plus max_tokens) to decode at once
        within the memory budget, for prompts of `prompt_tokens` (`vision`: one-piece prefill)."""
        prefill = prompt_tokens if vision else min(prompt_tokens, PREFILL_STEP)
        return plan_batch(
            self.kv,
            self.config.memory_budget_bytes,
            context_tokens=context_tokens,
            prefill_tokens=prefill,
            prefill_bytes_per_token=self.config.prefill_bytes_per_token,
            max_batch=self.config.max_batch,
        )

    def release(self) -> None:
        """Return MLX's cached buffers to the system and restart peak-memory tracking."""
        mx.clear_cache()
        mx.reset_peak_memory()

    def _shared_prefix(self, prompts: list[str], run: _Decode) -> list[Generation]:
        ids = [self.prompts.encode(prompt) for prompt in prompts]
        length = shared_prefix_length([row[0].tolist() for row in ids])
        if len(prompts) < 2 or length == 0:
            return [run(prompt=prompt) for prompt in prompts]
        prefix = prefill_prefix(self._model, ids[0][:, :length])
        generations = []
        for index, row in enumerate(ids):
            generation = run(
                input_ids=row[:, length:], prompt_cache=copy_cache(self._model, prefix.cache)
            )
            usage = replace(
                generation.usage,
                prompt_tokens=generation.usage.prompt_tokens + length,
                prefill_tokens_saved=length if index else 0,
                peak_memory_bytes=max(generation.usage.peak_memory_bytes, prefix.peak_memory_bytes),
            )
            if index == 0:
                usage = replace(
                    usage,
                    prefill_seconds=usage.prefill_seconds + prefix.seconds,
                    model_calls=usage.model_calls + 1,
                )
            generations.append(replace(generation, usage=usage))
        return generations

    def _decoder(
        self,
        max_tokens: int,
        temperature: float,
        speculative: Speculative,
        draft_block_size: int | None,
        shape: str,
    ) -> _Decode:
        """`decode` on this engine's model with one call's sampling settings bound; each
        generation decides on the drafter, and auto decisions feed the policy's figures."""
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        block_size = self.config.draft_block_size if draft_block_size is None else draft_block_size
        if block_size < 1:
            raise ValueError("draft_block_size must be at least 1")
        run = partial(
            decode, self._model, self._processor, max_tokens=max_tokens, temperature=temperature
        )

        def call(**inputs: Any) -> Generation:
            decision = self._decide(speculative, shape)
            speculation = None
            if decision.drafter and self._drafter is not None and self._draft_kind is not None:
                speculation = Speculation(self._drafter, self._draft_kind, block_size)
            generation = run(speculation=speculation, **inputs)
            usage = generation.usage
            if decision.measured:
                tokens, seconds = usage.generated_tokens - 1, usage.decode_seconds
                if not decision.drafter or usage.draft_rounds:
                    self.speculation_policy.observe(shape, 1, decision.drafter, tokens, seconds)
            usage = replace(
                usage, drafted_calls=int(speculation is not None), speculation=(decision.reason,)
            )
            return replace(generation, usage=usage)

        return call

    def _decide(self, speculative: Speculative, shape: str) -> Decision:
        """Whether one call decodes with the drafter: forced, decided by measurement, or none."""
        wanted = self.config.speculative if speculative is None else speculative
        if self._drafter is None or self._draft_kind is None:
            return Decision(False, "off: no drafter loaded")
        if wanted is True:
            return Decision(True, "on: speculative=true")
        if wanted is False:
            return Decision(False, "off: speculative=false")
        return self.speculation_policy.decide(shape)

    def _set_frame_budget(self) -> None:
        """Give frames the video soft-token budget, not `mlx_vlm.load`'s 280 (pitfall 6)."""
        self._processor.image_processor.max_soft_tokens = self.config.video_frame_tokens

    def start_loop(self, max_rows: int | None = None) -> None:
        """From now on, plain greedy `generate` calls from any thread decode together in one
        continuous batch of at most `max_rows` (default `max_batch`) rows; other model work
        runs between its steps. For a host running many chunks at once."""
        with self._lock:
            if self._loop is None:
                self._set_frame_budget()
                rows = max_rows or self.config.max_batch
                self._loop = GenerationLoop(self._model, self._processor, max_rows=rows)

    def stop_loop(self) -> None:
        """Let the rows in flight finish, then go back to one call at a time."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()

    @property
    def loop(self) -> GenerationLoop | None:
        """The running generation loop, if `start_loop` started one."""
        return self._loop

    def _run(self, call: Callable[[], _T]) -> _T:
        """Run one model call alone (between two steps of the loop's batch, if one runs),
        turning the model's failures into EngineError."""
        loop = self._loop
        if loop is not None:
            with _as_engine_error():
                return loop.call(call)
        with self._lock, _as_engine_error():
            return call()


@contextmanager
def _as_engine_error() -> Iterator[None]:
    try:
        yield
    except NightowlError:
        raise
    except Exception as exc:
        raise EngineError(f"the model failed: {type(exc).__name__}: {exc}") from exc
