"""A tiny random-weight Gemma 4 unified model, its assistant drafter and a local tokenizer.

Tests and demos on machines without the real weights run the real mlx-vlm code path on it. Its
output is noise. The recipe follows notes/gemma4-mlx.md: every text size is given (the defaults
are the 12B's), the media token ids in config.json equal the tokenizer's, and the tokenizer has
`image_token`/`audio_token` and a chat template so that image and audio prompts work.

Layout of `directory`: `target/` and `drafter/` (both loadable by mlx-vlm) and `complete.json`,
written last, which makes a later call return at once instead of rebuilding.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_vlm.models.gemma4_unified import Model as TargetModel
from mlx_vlm.models.gemma4_unified import ModelConfig as TargetConfig
from mlx_vlm.speculative.drafters.gemma4_unified_assistant import Model as DrafterModel
from mlx_vlm.speculative.drafters.gemma4_unified_assistant import ModelConfig as DrafterConfig
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from worker.engine._tiny_text import CHAT_TEMPLATE, CORPUS

RECIPE = 2
"""Bumped whenever the recipe changes, so that old builds are rebuilt."""
TINY_MARKER = "nightowl-tiny.json"
"""Written into both model folders: it tells the engine the model is the random tiny one."""
_COMPLETE = "complete.json"

_SPECIAL_TOKENS = {
    "pad_token": "<pad>",
    "eos_token": "<eos>",
    "bos_token": "<bos>",
    "unk_token": "<unk>",
}
_MEDIA_TOKENS = {
    "sot_token": "<|turn>",
    "eot_token": "<turn|>",
    "image_token": "<|image|>",
    "audio_token": "<|audio|>",
    "video_token": "<|video|>",
    "boi_token": "<|image>",
    "eoi_token": "<image|>",
    "boa_token": "<|audio>",
    "eoa_token": "<audio|>",
}
_VOCAB_SIZE = 1024
"""An upper bound: the corpus yields fewer merges (about 850 tokens), and the model takes the
tokenizer's real size."""
_HIDDEN = 64
_LAYER_TYPES = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]
_SLIDING_WINDOW = 64
"""Far below the 12B's 1024, so that short test prompts already wrap the sliding-window caches."""
_POST_NORM_GAIN = 4.0
"""Random layers at gain 1 are drowned by the residual and repeat the last token forever."""


@dataclass(frozen=True)
class TinyModelPaths:
    """The folders of a built tiny target model and its drafter."""

    target: Path
    drafter: Path


def build_tiny_model(directory: Path, seed: int = 0) -> TinyModelPaths:
    """Build (or find complete) the tiny target, drafter and tokenizer under `directory`."""
    paths = TinyModelPaths(target=directory / "target", drafter=directory / "drafter")
    complete = directory / _COMPLETE
    stamp = {"recipe": RECIPE, "seed": seed}
    directory.mkdir(parents=True, exist_ok=True)
    # Workers starting together on one machine must not build over each other.
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if complete.exists() and json.loads(complete.read_text()) == stamp:
            return paths
        complete.unlink(missing_ok=True)
        for folder in (paths.target, paths.drafter):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
        token_ids = _build_tokenizer(paths.target)
        target_config = _target_config(token_ids)
        _write_weights(paths.target, target_config, seed, _target_weights)
        _write_weights(paths.drafter, _drafter_config(target_config), seed + 1, _drafter_weights)
        complete.write_text(json.dumps(stamp))
    return paths


def _build_tokenizer(folder: Path) -> dict[str, int]:
    """Train a byte-level BPE on the built-in corpus, save it with its template, return ids."""
    specials = [*_SPECIAL_TOKENS.values(), *_MEDIA_TOKENS.values()]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS.splitlines(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, extra_special_tokens=_MEDIA_TOKENS, **_SPECIAL_TOKENS
    )
    tokenizer.save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    ids = {token: int(tokenizer.convert_tokens_to_ids(token)) for token in specials}
    ids["vocab_size"] = len(tokenizer)
    return ids


def _target_config(ids: dict[str, int]) -> dict[str, Any]:
    """A complete gemma4_unified config.json of about half a million parameters."""
    vocab = ids["vocab_size"]
    return {
        "model_type": "gemma4_unified",
        "text_config": {
            "model_type": "gemma4_unified_text",
            "hidden_size": _HIDDEN,
            "num_hidden_layers": len(_LAYER_TYPES),
            "intermediate_size": 2 * _HIDDEN,
            "num_attention_heads": 2,
            "head_dim": 32,
            "global_head_dim": 64,
            "num_key_value_heads": 1,
            "num_global_key_value_heads": 1,
            "vocab_size": vocab,
            "vocab_size_per_layer_input": vocab,
            "hidden_size_per_layer_input": 0,
            "num_kv_shared_layers": 0,
            "sliding_window": _SLIDING_WINDOW,
            "sliding_window_pattern": 2,
            "_sliding_window_pattern": 2,
            "layer_types": _LAYER_TYPES,
            "max_position_embeddings": 32768,
            "use_double_wide_mlp": False,
            "attention_k_eq_v": True,
            "final_logit_softcapping": 30.0,
            "rms_norm_eps": 1e-6,
        },
        # model_patch_size must stay 48 and output_proj_dims must equal mm_embed_dim.
        "vision_config": {
            "model_type": "gemma4_unified_vision",
            "patch_size": 16,
            "pooling_kernel_size": 3,
            "model_patch_size": 48,
            "mm_embed_dim": 32,
            "output_proj_dims": 32,
            "mm_posemb_size": 1120,
            "num_soft_tokens": 280,
        },
        # output_proj_dims must equal audio_samples_per_token.
        "audio_config": {
            "model_type": "gemma4_unified_audio",
            "audio_samples_per_token": 640,
            "audio_embed_dim": 640,
            "hidden_size": 640,
            "output_proj_dims": 640,
        },
        "vocab_size": vocab,
        "hidden_size": _HIDDEN,
        # Without these the 12B's ids (258880...) are used and media silently vanish.
        "image_token_id": ids["<|image|>"],
        "audio_token_id": ids["<|audio|>"],
        "video_token_id": ids["<|video|>"],
        "boi_token_id": ids["<|image>"],
        "eoi_token_id": ids["<image|>"],
        "boa_token_id": ids["<|audio>"],
        "eoa_token_id": ids["<audio|>"],
        "eoa_token_index": ids["<audio|>"],
        "pad_token_id": ids["<pad>"],
        "bos_token_id": ids["<bos>"],
        "eos_token_id": [ids["<eos>"], ids["<turn|>"]],
        "tie_word_embeddings": True,
    }


def _drafter_config(target: dict[str, Any]) -> dict[str, Any]:
    """A gemma4_unified_assistant config that reads the target's KV cache."""
    text = target["text_config"]
    return {
        "model_type": "gemma4_unified_assistant",
        "backbone_hidden_size": text["hidden_size"],
        "block_size": 4,
        "tie_word_embeddings": True,
        "use_ordered_embeddings": False,
        "text_config": {
            "model_type": "gemma4_text",
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "intermediate_size": 64,
            "num_attention_heads": 2,
            "head_dim": text["head_dim"],
            "global_head_dim": text["global_head_dim"],
            "num_key_value_heads": 1,
            "num_global_key_value_heads": 1,
            "vocab_size": text["vocab_size"],
            "vocab_size_per_layer_input": 0,
            "hidden_size_per_layer_input": 0,
            "num_kv_shared_layers": 2,
            "sliding_window": text["sliding_window"],
            "layer_types": ["sliding_attention", "full_attention"],
            "use_double_wide_mlp": False,
            "attention_k_eq_v": True,
            "final_logit_softcapping": 30.0,
        },
    }


def _target_weights(config: dict[str, Any]) -> dict[str, mx.array]:
    """Seeded random weights of the target, with the adjustments that make it usable."""
    model = TargetModel(TargetConfig.from_dict(config))
    # The positional embedding starts at zero; random values make image positions matter.
    embedder = model.vision_embedder
    embedder.pos_embedding = 0.02 * mx.random.normal(embedder.pos_embedding.shape)
    weights = dict(tree_flatten(model.parameters()))
    for name, value in weights.items():
        if name.endswith(("post_attention_layernorm.weight", "post_feedforward_layernorm.weight")):
            weights[name] = value * _POST_NORM_GAIN
    return weights


def _drafter_weights(config: dict[str, Any]) -> dict[str, mx.array]:
    """Seeded random weights of the drafter."""
    return dict(tree_flatten(DrafterModel(DrafterConfig.from_dict(config)).parameters()))


def _write_weights(
    folder: Path,
    config: dict[str, Any],
    seed: int,
    make: Callable[[dict[str, Any]], dict[str, mx.array]],
) -> None:
    """Write config.json, the seeded weights and the tiny marker into `folder`."""
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    mx.random.seed(seed)
    weights = make(config)
    mx.save_safetensors(str(folder / "model.safetensors"), weights, metadata={"format": "mlx"})
    marker = {"recipe": RECIPE, "seed": seed, "note": "random weights: the output is noise"}
    (folder / TINY_MARKER).write_text(json.dumps(marker))
