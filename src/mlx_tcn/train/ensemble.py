"""Cross-validated ensembles for small classification data sets.

With a few dozen training sequences the validation part is a handful of them: which
checkpoint it picks, and which sequences it takes away from training, moves the test
accuracy by several points from one seed to the next (docs/own_data.md). A run with
``folds = K`` therefore trains K models instead of one. Every class is dealt into K folds;
model k is validated on fold k (its checkpoint choice and early stopping) and trained on the
rest, so every sequence trains K - 1 models and validates one. ``predict`` and ``evaluate``
average the K models' class probabilities.

Layout: model 0 is the run itself (``RUN/checkpoints``, ``RUN/metrics.jsonl``); model k > 0
is a run of its own in ``RUN/members/fold-k``. ``RUN/ensemble.json`` is written when all K are
trained, with each one's best step and validation accuracy on its fold, and their pooled
(cross-validated) accuracy. A killed run resumes member by member (``train --resume RUN``):
finished members are kept, a started one continues from its latest checkpoint.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .budget import folds_for
from .checkpoint import CheckpointError, load_checkpoint, write_json_atomic
from .config import TrainConfig
from .split import TaskData
from .tasks import build_task

__all__ = [
    "ENSEMBLE_FILE",
    "FINISHED",
    "Ensemble",
    "load_ensemble",
    "member_dir",
    "member_seed",
    "stratified_folds",
    "train_members",
    "with_folds",
]

#: Written into the run folder once every member is trained.
ENSEMBLE_FILE = "ensemble.json"
#: A member's run is finished in these states (an interrupted one is resumed).
FINISHED = ("completed", "early_stopped", "max_steps")


def stratified_folds(
    labels: np.ndarray, folds: int, seed: int, fold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices of ``fold`` (of ``folds``): every class is shuffled
    (by ``seed``) and dealt into the folds in turn, so each fold holds about ``1/folds`` of
    each class and the folds of one seed do not overlap.

    A class with fewer sequences than folds is missing from the validation part of some
    folds; every training part holds every class when ``folds >= 2`` and the class has two or
    more sequences.
    """
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, {folds}), got {fold}")
    rng = np.random.default_rng([seed, 5])
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold_of[idx] = (np.arange(len(idx)) + offset) % folds  # small classes spread out
        offset += len(idx)
    val = rng.permutation(np.flatnonzero(fold_of == fold))
    train = rng.permutation(np.flatnonzero(fold_of != fold))
    return train, val


def with_folds(
    cfg: TrainConfig, task: TaskData, processes: int = 1
) -> tuple[TrainConfig, TaskData]:
    """``cfg`` with ``folds`` chosen from the data when ``cfg.auto`` lists it
    (:func:`.budget.folds_for`: an ensemble for small classification sets, one model
    otherwise and in a data-parallel run), and the task split for member 0 of those folds."""
    if "folds" not in (cfg.auto or ()):
        return cfg, task
    folds = 1
    if cfg.task == "classify" and processes == 1:
        folds = folds_for(len(task.train) + len(task.val))
    cfg = dataclasses.replace(cfg, folds=folds, auto=[a for a in cfg.auto or () if a != "folds"])
    return cfg, (build_task(cfg) if folds > 1 else task)


def member_seed(cfg: TrainConfig) -> int:
    """The random seed of member ``cfg.fold``'s initial weights and dropout; member 0 (and a
    run without folds) keeps ``cfg.seed``, the others get seeds of their own, so the members
    differ by more than their data."""
    return cfg.seed + 7919 * cfg.fold


def member_dir(run_dir: Path, fold: int) -> Path:
    """The run folder of member ``fold`` (member 0 is the run itself)."""
    return run_dir if fold == 0 else run_dir / "members" / f"fold-{fold}"


def _member_config(cfg: TrainConfig, run_dir: Path, fold: int) -> TrainConfig:
    folder = member_dir(run_dir, fold)
    return dataclasses.replace(cfg, fold=fold, runs_dir=str(folder.parent), name=folder.name,
                               plots=False)  # fmt: skip


def _finished(folder: Path) -> bool:
    try:
        return load_checkpoint(folder, "latest").loop.status in FINISHED
    except CheckpointError:
        return False


def train_members(
    run_dir: Path,
    cfg: TrainConfig,
    *,
    train_one: Callable[..., Any],
    callbacks: list[Callable[[dict[str, Any]], None]] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any] | None:
    """Train members 1..K-1 of the ensemble whose member 0 is ``run_dir``, then write
    ``ensemble.json``; finished members are kept, a started one is resumed.

    Args:
        run_dir: member 0's (the run's) folder, already trained.
        cfg: member 0's resolved config (``folds`` > 1, ``fold`` 0).
        train_one: :func:`.runner.run_training` (passed in: the runner imports this module).
        callbacks, should_stop: as for :func:`.runner.run_training`.

    Returns:
        The ensemble record, or None when a member was interrupted (resume the run).
    """
    for fold in range(1, cfg.folds):
        folder = member_dir(run_dir, fold)
        if _finished(folder):
            continue
        for cb in callbacks or ():
            cb({"event": "member", "fold": fold, "folds": cfg.folds})
        try:
            resume = load_checkpoint(folder, "latest")
        except CheckpointError:  # not started, or killed before its first checkpoint
            resume = None
            shutil.rmtree(folder, ignore_errors=True)
        member_cfg = _member_config(cfg, run_dir, fold)
        if resume is not None:
            member_cfg = dataclasses.replace(resume.cfg, runs_dir=member_cfg.runs_dir,
                                             name=member_cfg.name)  # fmt: skip
        result = train_one(member_cfg, resume=resume, callbacks=callbacks,
                           should_stop=should_stop)  # fmt: skip
        if result.state.status not in FINISHED:
            return None
    record = _ensemble_record(run_dir, cfg)
    write_json_atomic(run_dir / ENSEMBLE_FILE, record)
    return record


def _ensemble_record(run_dir: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Each member's best step and validation accuracy on its own fold, and the pooled
    accuracy over all folds (each training sequence scored by the one model that did not
    train on it)."""
    from .predict import evaluate_checkpoint, load_for_inference

    members, correct, total = [], 0.0, 0
    for fold in range(cfg.folds):
        ckpt, task = load_for_inference(member_dir(run_dir, fold), "best", members=False)
        metrics, size = evaluate_checkpoint(ckpt, task, "val")
        members.append({"fold": fold, "folder": str(member_dir(run_dir, fold).relative_to(run_dir)),
                        "best_step": ckpt.loop.step, "val_sequences": size,
                        "val_accuracy": metrics["accuracy"], "val_loss": metrics["loss"]})  # fmt: skip
        correct += metrics["accuracy"] * size
        total += size
    return {"folds": cfg.folds, "cv_accuracy": correct / max(total, 1), "members": members}


class Ensemble(nn.Module):
    """The members' average class probability, as a model: ``model(x)`` is ``(B, 1, C)``
    log-probabilities, which every caller of a classifier reads as logits (their argmax is
    the ensemble's class, their softmax its probabilities, their cross-entropy its loss);
    ``pooled(x, mask)`` is the same ``(B, C)`` with each member pooled over the real steps
    of sequences of different lengths (:func:`.losses.model_head`).

    Args:
        members: the trained models (all of one run, fed the same normalised inputs).
        head: the task's view of a model's output (the mean over steps, or the last step);
            called as ``head(out)``, and as ``head(out, mask)`` when a mask is given.
    """

    def __init__(self, members: list[nn.Module], head: Callable[..., mx.array]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = members
        self._head = head

    @property
    def receptive_field(self) -> float:
        """The widest member's receptive field (all are built alike)."""
        return max(m.receptive_field for m in self.members)

    def pooled(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        """``(B, C)``: the log of the members' mean class probability, each member's logits
        pooled over the steps ``mask`` marks (all steps when None)."""
        pool = self._head if mask is None else (lambda out: self._head(out, mask))
        probs = sum(mx.softmax(pool(m(x)), axis=-1) for m in self.members)
        return mx.log(probs / len(self.members))

    def __call__(self, x: mx.array) -> mx.array:
        return self.pooled(x)[:, None, :]


def load_ensemble(run_dir: Path, folds: int, which: str, first: nn.Module, kind: str) -> Ensemble:
    """The ``folds`` models of the run in ``run_dir`` (member 0, already loaded, is ``first``)
    as one; refuses an ensemble whose members are not all trained."""
    from .losses import head

    if not (run_dir / ENSEMBLE_FILE).is_file():
        raise CheckpointError(
            f"{run_dir} is an ensemble whose members are not all trained ({ENSEMBLE_FILE} is "
            f"missing); finish it with: mlx-tcn train --resume {run_dir}"
        )
    models = [first]
    for fold in range(1, folds):
        models.append(load_checkpoint(member_dir(run_dir, fold), which).model)
    return Ensemble(models, partial(head, kind))
