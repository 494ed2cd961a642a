"""Checkpoints, written atomically. (Over 300 lines: writing, finding, loading and rewinding
share one on-disk format and its crash rules, which read best in one place.)

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
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_unflatten

from .config import TrainConfig, saved_config
from .loop import LoopState
from .model import model_kwargs

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "find_checkpoint",
    "load_checkpoint",
    "restore_random_state",
    "save_checkpoint",
]


REQUIRED = (
    "config.json",
    "model.safetensors",
    "trainer_state.json",
    "train_config.json",
    "data_stats.json",
)


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupted or does not fit the configuration."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON; a crash leaves the old file or the new one."""
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
    metrics_records: int | None = None,
) -> Path:
    """Write a checkpoint of step ``state.step`` and point ``index.json`` at it.

    Writing the same step again (e.g. the final save right after an evaluation) only replaces
    ``trainer_state.json``. Keeps ``cfg.keep_checkpoints`` recent checkpoints plus the best.

    Args:
        metrics_records: how many lines of the run's ``metrics.jsonl`` this state accounts
            for; a resume keeps exactly those and drops later ones, which the resumed run
            logs again (so a kill between a logged evaluation and its checkpoint does not
            leave that evaluation twice in the log).

    Returns:
        The checkpoint folder.
    """
    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{state.step:08d}"
    final = ckpt_root / name
    trainer = {"loop": state.to_dict(), "random_key": _random_key()}
    if metrics_records is not None:
        trainer["metrics_records"] = metrics_records
    if final.is_dir() and all((final / f).is_file() for f in REQUIRED):
        write_json_atomic(final / "trainer_state.json", trainer)
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
    write_json_atomic(ckpt_root / "index.json", index)
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


def _missing(folder: Path) -> list[str]:
    return [f for f in REQUIRED if not (folder / f).is_file()]


def _complete(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("step-*") if p.is_dir() and not _missing(p))


def _damaged(problem: str, root: Path, avoid: Path | None = None) -> CheckpointError:
    """An error that says what is wrong and which checkpoint folders could be passed instead.

    A damaged checkpoint is never replaced by another one silently: which one to use instead
    is the user's choice.
    """
    others = [p for p in _complete(root) if p != avoid]
    if others:
        hint = f"to use another checkpoint, pass its folder instead, e.g. {others[-1]}"
        if len(others) > 1:
            hint += f" (complete ones: {', '.join(p.name for p in others)})"
    else:
        hint = "no other complete checkpoint is left"
    return CheckpointError(f"{problem}; {hint}")


def find_checkpoint(path: str | Path, which: str = "latest") -> Path:
    """Resolve a run folder, its ``checkpoints`` folder or a checkpoint folder.

    Args:
        path: any of the three.
        which: ``"latest"`` or ``"best"`` (the latest when the run never evaluated, so has no
            best).

    Raises:
        CheckpointError: the path does not exist, ``index.json`` is missing or unreadable, or
            the checkpoint it names is missing a file. Another checkpoint is never used in its
            place; the message lists the complete ones, whose folders can be passed instead.
    """
    if which not in ("latest", "best"):
        raise ValueError(f"which must be 'latest' or 'best', got {which!r}")
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if (
        path.name.startswith("step-")
        or (path / "config.json").exists()
        or (path / "model.safetensors").exists()
    ):
        return _checked(path)
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if not (root / "index.json").exists():
        if not _complete(root):
            raise CheckpointError(f"no complete checkpoint in {root}")
        raise _damaged(f"{root / 'index.json'} is missing", root)
    index = _read_index(root)
    name = index.get(which) or index.get("latest")
    if not isinstance(name, str) or not name.startswith("step-") or Path(name).name != name:
        raise _damaged(f"{root / 'index.json'} is corrupted (no {which!r} checkpoint)", root)
    if not (root / name).is_dir():
        raise _damaged(f"{root / 'index.json'} names {name}, which does not exist", root)
    return _checked(root / name)


def _checked(folder: Path) -> Path:
    """``folder`` if it holds every file of a checkpoint, else the error naming the first gap."""
    missing = _missing(folder)
    if missing:
        problem = f"checkpoint {folder} is damaged: {missing[0]} is missing"
        raise _damaged(problem, folder.parent, folder)
    return folder


def rewind_to(ckpt: Path, best_step: int | None) -> tuple[list[str], Path | None]:
    """Make checkpoint folder ``ckpt`` the run's latest, for a resume from an older one.

    The checkpoints after it belong to a history the resumed run replaces: left in place they
    would be mistaken for its own (same step names, ``index.json``'s best, pruning by name).
    They are moved, not deleted, into ``checkpoints/superseded-N/`` (which nothing reads), so
    no work is lost. The index is rewritten first, so a crash in between leaves it pointing
    at ``ckpt``.

    Returns:
        The names of the moved folders and where they went (``[], None`` when ``ckpt``
        already is the latest).
    """
    root = ckpt.parent
    later = sorted(p for p in root.glob("step-*") if p.is_dir() and p.name > ckpt.name)
    if not later and _read_index(root).get("latest") == ckpt.name:
        return [], None
    index = {"latest": ckpt.name}
    best = f"step-{best_step:08d}" if best_step is not None else None
    if best and best <= ckpt.name and not _missing(root / best):
        index["best"] = best
    write_json_atomic(root / "index.json", index)
    if not later:
        return [], None
    n = 1
    while True:  # a fresh folder, even when an earlier resume left superseded-1
        aside = root / f"superseded-{n}"
        try:
            aside.mkdir()
            break
        except FileExistsError:
            n += 1
    for p in later:
        os.replace(p, aside / p.name)
    return [p.name for p in later], aside


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    path: Path
    model: nn.Module
    cfg: TrainConfig
    loop: LoopState
    stats: dict[str, Any] = field(default_factory=dict)
    random_key: list[int] | None = None
    metrics_records: int | None = None  # lines of metrics.jsonl this state accounts for

    def check_fits(self, cfg: TrainConfig, num_inputs: int, num_outputs: int) -> None:
        """Refuse a model that is not the one ``cfg`` builds for data of this shape.

        ``train_config.json`` is the run's one description of the architecture; the model's
        ``config.json`` (``TCN.save``) is derived from it by :func:`.model.model_kwargs`.
        Resuming, evaluating and predicting all check that the two still agree here.
        """
        have = self.model.config
        if have["num_inputs"] != num_inputs:
            raise CheckpointError(f"data has {num_inputs} input channels, the model in "
                                  f"{self.path} expects {have['num_inputs']}")  # fmt: skip
        expected = model_kwargs(cfg, num_inputs, num_outputs)
        diff = [k for k, v in expected.items() if k in have and have[k] != v]
        if diff:
            detail = ", ".join(f"{k}: checkpoint {have[k]!r}, config {expected[k]!r}" for k in diff)
            raise CheckpointError(f"checkpoint {self.path} does not fit the config ({detail})")


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
        cfg = saved_config(_read_json(ckpt / "train_config.json"))
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
    stats = _read_json(ckpt / "data_stats.json")
    try:
        loop = LoopState.from_dict(trainer["loop"])
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{ckpt / 'trainer_state.json'} is corrupted: {err}") from None
    return Checkpoint(ckpt, model, cfg, loop, stats, trainer.get("random_key"),
                      trainer.get("metrics_records"))  # fmt: skip


def load_optimizer_state(ckpt: Path, optimizer: optim.Optimizer) -> None:
    """Restore the optimiser state saved in checkpoint folder ``ckpt``."""
    file = ckpt / "optimizer.safetensors"
    if not file.is_file():
        raise _damaged(f"checkpoint {ckpt} is damaged: {file.name} is missing", ckpt.parent, ckpt)
    try:
        flat = mx.load(str(file))
    except Exception as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"optimizer state {file} could not be loaded: {msg}") from None
    optimizer.state = tree_unflatten(list(flat.items()))
