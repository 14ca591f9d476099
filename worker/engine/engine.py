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

An Engine serializes its calls: the drafter's statistics and the tokenizer's stopping criteria
are per-model state inside mlx-vlm.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import mlx.core as mx
from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

from core.errors import EngineError, NightowlError
from worker.engine._decode import Speculation, decode
from worker.engine._loading import LoadedModels, load_models
from worker.engine._prefix import copy_cache, prefill_prefix, shared_prefix_length
from worker.engine.config import EngineConfig
from worker.engine.usage import Generation

_ROLES = frozenset({"system", "user", "assistant"})
_T = TypeVar("_T")


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

    @classmethod
    def load(cls, config: EngineConfig, *, total_memory_bytes: int | None = None) -> Engine:
        """Check that the models fit in `total_memory_bytes` (default: this machine), then load."""
        if config.cache_limit_bytes is not None:
            mx.set_cache_limit(config.cache_limit_bytes)
        return cls(config, load_models(config, total_memory_bytes))

    def render(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The prompt text for `messages` (roles system/user) with the model's turn opened."""
        for message in messages:
            if message.get("role") not in _ROLES:
                raise ValueError(f"unknown chat role {message.get('role')!r}")
        # The tokenizer's own template, not mlx-vlm's helper, so that media parts can later
        # be placed first (mlx-vlm's puts audio after the text: pitfall 7).
        rendered = self._processor.tokenizer.apply_chat_template(
            [dict(message) for message in messages], tokenize=False, add_generation_prompt=True
        )
        return str(rendered)

    def count_tokens(self, text: str) -> int:
        """The number of tokens mlx-vlm will feed the model for `text`."""
        return int(self._encode(text).shape[1])

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        speculative: bool | None = None,
        draft_block_size: int | None = None,
    ) -> Generation:
        """Generate a continuation of the rendered `prompt`."""
        speculation = self._speculation(max_tokens, speculative, draft_block_size)
        return self._run(
            lambda: decode(
                self._model,
                self._processor,
                prompt=prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                speculation=speculation,
            )
        )

    def generate_shared_prefix(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        speculative: bool | None = None,
        draft_block_size: int | None = None,
    ) -> list[Generation]:
        """Generate for each prompt, prefilling their common token prefix only once."""
        speculation = self._speculation(max_tokens, speculative, draft_block_size)
        return self._run(
            lambda: self._shared_prefix(list(prompts), max_tokens, temperature, speculation)
        )

    def release(self) -> None:
        """Return MLX's cached buffers to the system and restart peak-memory tracking."""
        mx.clear_cache()
        mx.reset_peak_memory()

    def _shared_prefix(
        self,
        prompts: list[str],
        max_tokens: int,
        temperature: float,
        speculation: Speculation | None,
    ) -> list[Generation]:
        ids = [self._encode(prompt) for prompt in prompts]
        length = shared_prefix_length([row[0].tolist() for row in ids])
        if len(prompts) < 2 or length == 0:
            return [
                decode(
                    self._model,
                    self._processor,
                    prompt=prompt,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    speculation=speculation,
                )
                for prompt in prompts
            ]
        prefix = prefill_prefix(self._model, ids[0][:, :length])
        generations = []
        for index, row in enumerate(ids):
            generation = decode(
                self._model,
                self._processor,
                input_ids=row[:, length:],
                prompt_cache=copy_cache(self._model, prefix.cache),
                max_tokens=max_tokens,
                temperature=temperature,
                speculation=speculation,
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

    def _speculation(
        self, max_tokens: int, speculative: bool | None, draft_block_size: int | None
    ) -> Speculation | None:
        """The drafter settings for one call, or None to decode without drafting."""
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        wanted = self.config.speculative if speculative is None else speculative
        if not wanted or self._drafter is None or self._draft_kind is None:
            return None
        block_size = self.config.draft_block_size if draft_block_size is None else draft_block_size
        if block_size < 1:
            raise ValueError("draft_block_size must be at least 1")
        return Speculation(drafter=self._drafter, kind=self._draft_kind, block_size=block_size)

    def _encode(self, text: str) -> Any:
        """Token ids `[1, n]`, tokenized as mlx-vlm's generate tokenizes a text-only prompt."""
        add_special = should_add_special_tokens(self._model.config.model_type, self._processor)
        return prepare_inputs(self._processor, prompts=text, add_special_tokens=add_special)[
            "input_ids"
        ]

    def _run(self, call: Callable[[], _T]) -> _T:
        """Run one model call alone, turning the model's failures into EngineError."""
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
