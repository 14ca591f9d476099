"""Refusing, before any weights are read, a model whose weights and budget exceed the machine.

The size of a model is the size of its safetensors files: a local folder's file sizes, or for a
hub id the hub's file metadata (nothing is downloaded but config.json). `config.json` tells how
the weights are quantized, which the refusal names, since the usual mistake is an 8-bit checkpoint.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import EngineError

_GIB = 1024**3
_ADVICE = (
    "Choose a smaller checkpoint (NIGHTOWL_MODEL, e.g. the 4-bit "
    "mlx-community/gemma-4-12B-it-qat-4bit), lower NIGHTOWL_MEMORY_BUDGET_BYTES, or run "
    "without the drafter (NIGHTOWL_DRAFT_MODEL empty). Note that mlx-community/"
    "gemma-4-12B-it-4bit keeps its FFN in 8-bit (about 11 GB) and does not fit 16 GB Macs."
)


@dataclass(frozen=True)
class MemoryPlan:
    """What a model needs against what the machine has."""

    weights_bytes: int
    draft_bytes: int
    budget: int
    total: int
    fits: bool

    @property
    def needed(self) -> int:
        """Weights, drafter and budget together."""
        return self.weights_bytes + self.draft_bytes + self.budget


@dataclass(frozen=True)
class _Footprint:
    bytes: int
    quantization: str


def check_memory_fit(
    target_dir_or_id: str | Path,
    draft: str | Path | None,
    memory_budget_bytes: int,
    total_memory_bytes: int | None = None,
) -> MemoryPlan:
    """Return the plan when target, drafter and budget fit in memory; raise EngineError if not."""
    total = _machine_memory() if total_memory_bytes is None else total_memory_bytes
    target = _model_footprint(target_dir_or_id)
    drafter = _model_footprint(draft) if draft is not None else _Footprint(0, "no drafter")
    plan = MemoryPlan(
        weights_bytes=target.bytes,
        draft_bytes=drafter.bytes,
        budget=memory_budget_bytes,
        total=total,
        fits=target.bytes + drafter.bytes + memory_budget_bytes <= total,
    )
    if not plan.fits:
        draft_part = (
            f"the drafter {_gib(drafter.bytes)} ({drafter.quantization})"
            if draft is not None
            else "no drafter"
        )
        raise EngineError(
            f"{target_dir_or_id} does not fit in memory: its weights need "
            f"{_gib(target.bytes)} ({target.quantization}), {draft_part}, and the memory budget "
            f"is {_gib(memory_budget_bytes)}: {_gib(plan.needed)} in all, but this machine has "
            f"{_gib(total)}. {_ADVICE}"
        )
    return plan


def _model_footprint(dir_or_id: str | Path) -> _Footprint:
    """The weight bytes and quantization of a local model folder or a hub model."""
    folder = Path(dir_or_id)
    if folder.is_dir():
        return _local_footprint(folder)
    if isinstance(dir_or_id, Path) or folder.is_absolute() or str(dir_or_id).startswith("."):
        raise EngineError(f"model folder {dir_or_id} does not exist")
    return _hub_footprint(str(dir_or_id))


def describe_quantization(config: dict[str, Any]) -> str:
    """Say how config.json's weights are quantized, e.g. '4-bit, group size 64'."""
    quant = config.get("quantization") or config.get("quantization_config")
    if not isinstance(quant, dict) or "bits" not in quant:
        return "not quantized"
    text = f"{quant['bits']}-bit, group size {quant.get('group_size', 64)}"
    # Mixed checkpoints list per-module overrides next to the defaults.
    other_bits = sorted(
        {
            v["bits"]
            for v in quant.values()
            if isinstance(v, dict) and v.get("bits") != quant["bits"]
        }
    )
    if other_bits:
        text += ", some layers " + "/".join(f"{bits}-bit" for bits in other_bits)
    return text


def _local_footprint(folder: Path) -> _Footprint:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise EngineError(f"{folder} is not a model folder: it has no config.json")
    # mlx-vlm skips consolidated.safetensors too.
    files = [p for p in folder.glob("*.safetensors") if p.name != "consolidated.safetensors"]
    if not files:
        raise EngineError(f"{folder} has no weights (no *.safetensors file)")
    config = json.loads(config_path.read_text())
    return _Footprint(sum(p.stat().st_size for p in files), describe_quantization(config))


def _hub_footprint(repo_id: str) -> _Footprint:
    from huggingface_hub import HfApi, hf_hub_download

    try:
        info = HfApi().model_info(repo_id, files_metadata=True)
        config = json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text())
    except Exception as exc:
        raise EngineError(
            f"cannot size the model {repo_id}: it is neither a local folder nor reachable on the "
            f"Hugging Face hub ({type(exc).__name__}: {exc})"
        ) from exc
    sizes = [
        s.size or 0
        for s in info.siblings or []
        if s.rfilename.endswith(".safetensors") and "/" not in s.rfilename
    ]
    if not sizes:
        raise EngineError(f"the hub model {repo_id} has no weights (no *.safetensors file)")
    return _Footprint(sum(sizes), describe_quantization(config))


def _machine_memory() -> int:
    """All physical memory of this machine, as psutil reports it."""
    # Imported by name: psutil ships no type stubs and types-psutil is not a dependency.
    psutil = importlib.import_module("psutil")
    return int(psutil.virtual_memory().total)


def _gib(n: int) -> str:
    return f"{n / _GIB:.1f} GiB"
