"""Checkpoints, written atomically.

Layout of a run folder::

    runs/<name>/checkpoints/
        index.json                 {"latest": "step-00000100", "best": "step-00000080"}
        step-00000100/
            config.json            model constructor arguments   (TCN.save)
            model.safetensors      model weights                 (TCN.save)
            optimizer.safetensors  optimiser state (moments, step)
            trainer_state.json     loop progress, random state, status
            train_config.json      the resolved TrainConfig
            data_stats.json        normalisation / columns / classes / permutation

A checkpoint is written into a hidden temporary folder and renamed into place, and
``index.json`` is replaced atomically afterwards, so a crash at any point leaves the previous
checkpoint intact and ``index.json`` pointing to a complete folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_unflatten

from .config import TrainConfig, resolve_config
from .loop import LoopState

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "find_checkpoint",
    "load_checkpoint",
    "restore_random_state",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

REQUIRED = ("config.json", "model.safetensors", "trainer_state.json", "train_config.json")


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupted or does not fit the configuration."""


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _random_key() -> list[int]:
    return [int(v) for v in mx.random.state[0].tolist()]


def restore_random_state(key: list[int]) -> None:
    """Set MLX's global random key back to a saved ``[hi, lo]`` pair."""
    mx.random.seed((int(key[0]) << 32) | int(key[1]))


def save_checkpoint(
    run_dir: str | Path,
    model: nn.Module,
    optimizer: optim.Optimizer,
    state: LoopState,
    cfg: TrainConfig,
    stats: dict[str, Any],
    *,
    is_best: bool = False,
) -> Path:
    """Write a checkpoint of step ``state.step`` and point ``index.json`` at it.

    Writing the same step again (e.g. the final save right after an evaluation) only replaces
    ``trainer_state.json``. Keeps ``cfg.keep_checkpoints`` recent checkpoints plus the best.

    Returns:
        The checkpoint folder.
    """
    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{state.step:08d}"
    final = ckpt_root / name
    trainer = {"loop": state.to_dict(), "random_key": _random_key()}
    if final.is_dir() and all((final / f).is_file() for f in REQUIRED):
        _write_json_atomic(final / "trainer_state.json", trainer)
    else:
        tmp = ckpt_root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save(tmp)
        mx.save_safetensors(str(tmp / "optimizer.safetensors"), dict(tree_flatten(optimizer.state)))
        for fname, data in (("trainer_state.json", trainer), ("train_config.json", cfg.to_dict()),
                            ("data_stats.json", stats)):  # fmt: skip
            (tmp / fname).write_text(json.dumps(data, indent=2, sort_keys=True))
        if final.exists():  # an incomplete folder from an earlier crash
            shutil.rmtree(final)
        os.replace(tmp, final)
    index = _read_index(ckpt_root)
    index["latest"] = name
    if is_best:
        index["best"] = name
    _write_json_atomic(ckpt_root / "index.json", index)
    _prune(ckpt_root, cfg.keep_checkpoints, {index.get("latest"), index.get("best")})
    return final


def _read_index(ckpt_root: Path) -> dict[str, str]:
    try:
        data = json.loads((ckpt_root / "index.json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _prune(ckpt_root: Path, keep: int, protected: set[str | None]) -> None:
    steps = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in steps[:-keep] if keep else steps:
        if old.name not in protected:
            shutil.rmtree(old, ignore_errors=True)
    for stale in ckpt_root.glob(".tmp-*"):
        if stale.is_dir() and not stale.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(stale, ignore_errors=True)


def find_checkpoint(path: str | Path, which: str = "latest") -> Path:
    """Resolve a run folder, its ``checkpoints`` folder or a checkpoint folder.

    Args:
        path: any of the three.
        which: ``"latest"`` or ``"best"`` (falls back to latest when no best is recorded).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if (path / "model.safetensors").exists() or (path / "config.json").exists():
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    index = _read_index(root)
    name = index.get(which) or index.get("latest")
    if name and all((root / name / f).is_file() for f in REQUIRED):
        return root / name
    complete = sorted(p for p in root.glob("step-*") if all((p / f).is_file() for f in REQUIRED))
    if not complete:
        raise CheckpointError(f"no complete checkpoint in {root}")
    logger.warning("checkpoint index in %s is missing or stale; using %s", root, complete[-1].name)
    return complete[-1]


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    path: Path
    model: nn.Module
    cfg: TrainConfig
    loop: LoopState
    stats: dict[str, Any] = field(default_factory=dict)
    random_key: list[int] | None = None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file missing: {path}") from None
    except ValueError as err:
        raise CheckpointError(f"checkpoint file {path} is corrupted: {err}") from None


def load_checkpoint(path: str | Path, which: str = "latest") -> Checkpoint:
    """Load model, config, loop state and data statistics from a checkpoint.

    Raises:
        CheckpointError: missing or corrupted files, or weights that do not fit the config.
    """
    from mlx_tcn.tcn import TCN

    ckpt = find_checkpoint(path, which)
    try:
        cfg = resolve_config(_read_json(ckpt / "train_config.json"))
    except CheckpointError:
        raise
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{ckpt / 'train_config.json'} is not a valid config: {err}"
        ) from None
    try:
        model = TCN.load(ckpt)
    except Exception as err:  # safetensors/JSON errors or a strict-load mismatch
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"model in {ckpt} could not be loaded: {msg}") from None
    trainer = _read_json(ckpt / "trainer_state.json")
    stats = _read_json(ckpt / "data_stats.json") if (ckpt / "data_stats.json").exists() else {}
    try:
        loop = LoopState.from_dict(trainer["loop"])
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{ckpt / 'trainer_state.json'} is corrupted: {err}") from None
    return Checkpoint(ckpt, model, cfg, loop, stats, trainer.get("random_key"))


def load_optimizer_state(ckpt: Path, optimizer: optim.Optimizer) -> None:
    """Restore the optimiser state saved in checkpoint folder ``ckpt``."""
    file = ckpt / "optimizer.safetensors"
    try:
        flat = mx.load(str(file))
    except Exception as err:
        raise CheckpointError(f"optimizer state {file} could not be loaded: {err}") from None
    optimizer.state = tree_unflatten(list(flat.items()))
