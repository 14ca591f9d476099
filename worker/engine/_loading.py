"""Finding, sizing and loading the target model and its drafter, failing with EngineError."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx_vlm
from mlx_vlm.speculative.drafters import load_drafter, validate_drafter_compatibility

from core.errors import EngineError
from worker.engine.config import TINY, EngineConfig
from worker.engine.memory import check_memory_fit
from worker.engine.tiny import TINY_MARKER, build_tiny_model

# The files mlx-vlm itself fetches for a model (mlx_vlm.utils.get_model_path).
_MODEL_FILES = [
    "*.json",
    "*.jsonl",
    "*.safetensors",
    "*.py",
    "*.model",
    "*.tiktoken",
    "*.txt",
    "*.jinja",
]


@dataclass(frozen=True)
class LoadedModels:
    """The loaded target, its processor, and the drafter if one was asked for."""

    model: Any
    processor: Any
    drafter: Any | None
    draft_kind: str | None
    is_tiny: bool


def load_models(config: EngineConfig, total_memory_bytes: int | None = None) -> LoadedModels:
    """Locate both models, refuse them if they do not fit, then load them once."""
    target = _locate(config.model, config.models_dir, drafter=False)
    draft = (
        _locate(config.draft_model, config.models_dir, drafter=True) if config.draft_model else None
    )
    for name, source in ((config.model, target), (config.draft_model, draft)):
        if isinstance(source, str) and not config.allow_download:
            raise EngineError(
                f"{name} is not in the local Hugging Face cache and downloads are off; fetch it "
                f"with `hf download {name}` or set NIGHTOWL_MODEL to a model folder"
            )
    check_memory_fit(target, draft, config.memory_budget_bytes, total_memory_bytes)

    target_dir = _download(target)
    try:
        model, processor = mlx_vlm.load(str(target_dir))
    except Exception as exc:
        raise EngineError(f"cannot load the model {config.model} from {target_dir}: {exc}") from exc

    drafter, kind = None, None
    if draft is not None:
        draft_dir = _download(draft)
        try:
            drafter, kind = load_drafter(str(draft_dir))
            validate_drafter_compatibility(model, drafter, kind)
        except Exception as exc:
            raise EngineError(
                f"cannot use {config.draft_model} as the drafter of {config.model}: {exc}"
            ) from exc
        if kind != "mtp":
            raise EngineError(f"{config.draft_model} is a {kind!r} drafter, not an MTP assistant")
    return LoadedModels(
        model=model,
        processor=processor,
        drafter=drafter,
        draft_kind=kind,
        is_tiny=(target_dir / TINY_MARKER).is_file(),
    )


def _locate(spec: str, models_dir: Path, *, drafter: bool) -> Path | str:
    """A local folder for `"tiny"`, folders and cached hub models; the hub id otherwise."""
    if spec == TINY:
        try:
            paths = build_tiny_model(models_dir / TINY)
        except Exception as exc:
            raise EngineError(f"cannot build the tiny model in {models_dir / TINY}: {exc}") from exc
        return paths.drafter if drafter else paths.target
    if Path(spec).is_dir():
        return Path(spec)
    cached = _cached_snapshot(spec)
    return cached if cached is not None else spec


def _cached_snapshot(repo_id: str) -> Path | None:
    """The hub model's folder in the local Hugging Face cache, if its weights are there."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(
            snapshot_download(repo_id, allow_patterns=_MODEL_FILES, local_files_only=True)
        )
    except Exception:
        return None
    has_weights = any(folder.glob("*.safetensors")) and (folder / "config.json").is_file()
    return folder if has_weights else None


def _download(source: Path | str) -> Path:
    """The local folder of `source`, downloading a hub model's files first."""
    if isinstance(source, Path):
        return source
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, allow_patterns=_MODEL_FILES))
    except Exception as exc:
        raise EngineError(f"cannot download the model {source} from the hub: {exc}") from exc
