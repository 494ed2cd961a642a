"""The training loop.

It knows nothing about files, plots or terminals: metrics leave through ``callback`` as plain
dicts, checkpoints through the ``save`` hook, and a stop request (Ctrl-C in the CLI) through
``should_stop``. The training step can be compiled over the model, optimiser and random state,
as in mlx-lm, so dropout masks keep changing and a resumed run continues exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

from .config import TrainConfig
from .distributed import World
from .schedule import make_optimizer, plateau_cut, set_lr_scale
from .split import TaskData, iterate_batches, num_batches

__all__ = [
    "LoopState",
    "TrainingDiverged",
    "build_step",
    "make_optimizer",
    "plateau_update",
    "total_steps",
    "train",
]

logger = logging.getLogger(__name__)

Callback = Callable[[dict[str, Any]], None]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class LoopState:
    """Progress of a run; with the model, optimiser and random state it is all a resume needs."""

    step: int = 0  # optimiser steps done
    epoch: int = 0  # current epoch (completed epochs)
    batch_in_epoch: int = 0  # batches of the current epoch already done
    best_metric: float | None = None  # best validation loss (or accuracy: cfg.select) so far
    best_step: int | None = None  # step at which it was reached
    bad_evals: int = 0  # evaluations since the last improvement (early stopping)
    last_eval_step: int | None = None  # step of the latest evaluation (none is repeated)
    evaluations: int = 0  # validation evaluations so far (schedule="plateau")
    recent_metrics: list[float] = field(default_factory=list)  # their last plateau_window values
    lr_scale: float = 1.0  # product of the plateau cuts so far (schedule="plateau")
    status: str = "running"  # running | completed | early_stopped | max_steps | interrupted
    # Best value of the *trained* model (evaluations after step 0): early stopping counts from
    # it, so the untrained model's evaluation (evaluate_first) competes for the best weights
    # without stopping a run whose training is still improving on itself.
    trained_best: float | None = None
    # The losses since the last "train" record (their sum and count), so that a run resumed
    # from a checkpoint between two records logs the same averages as one never stopped.
    window_loss: float = 0.0
    window_n: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopState:
        """Inverse of :meth:`to_dict`. States saved before ``trained_best`` existed never
        evaluated the untrained model, so their best is the trained best."""
        return cls(**{"trained_best": d.get("best_metric"), **d})


def total_steps(cfg: TrainConfig, n_train: int) -> int:
    """Optimiser steps of the whole run (epochs x batches, capped by ``max_steps``)."""
    steps = cfg.epochs * steps_per_epoch(cfg, n_train)
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def steps_per_epoch(cfg: TrainConfig, n_train: int) -> int:
    """Optimiser steps of one epoch: a shuffled epoch drops its last partial batch, an epoch
    in the samples' own order (``shuffle=False``) keeps it."""
    return num_batches(n_train, cfg.batch_size, drop_last=cfg.shuffle)


def build_step(
    model: nn.Module,
    optimizer: optim.Optimizer,
    loss: Callable[..., mx.array],
    grad_clip: float | None,
    compile: bool,
    reduce_gradients: Callable[[Any], Any] | None = None,
) -> Callable[..., mx.array]:
    """One optimiser step ``step(x, y[, mask]) -> loss``, optionally compiled.

    The optimiser state must exist (``optimizer.init``) and any checkpoint must be loaded
    before this is called: the compiled function captures the state containers.
    ``reduce_gradients`` (data-parallel training) averages the gradients over the processes
    before clipping and the update; it runs inside the compiled step.
    """
    loss_and_grad = nn.value_and_grad(model, loss)

    def step(x: mx.array, y: mx.array, mask: mx.array | None = None) -> mx.array:
        value, grads = loss_and_grad(model, x, y, mask)
        if reduce_gradients is not None:
            grads = reduce_gradients(grads)
        if grad_clip is not None:
            grads, _ = optim.clip_grad_norm(grads, grad_clip)
        optimizer.update(model, grads)
        return value

    if not compile:
        return step
    state = [model.state, optimizer.state, mx.random.state]
    compiled = partial(mx.compile, inputs=state, outputs=state)

    # mx.compile cannot take None, so the masked and unmasked steps are separate functions.
    plain = compiled(lambda x, y: step(x, y))
    masked = compiled(lambda x, y, mask: step(x, y, mask))
    return lambda x, y, mask=None: plain(x, y) if mask is None else masked(x, y, mask)


def _improves(select: str, metrics: dict[str, float], best: float | None) -> bool:
    """Whether an evaluation is the new best: a lower loss, or (``select="accuracy"``) an
    accuracy at least as high; on a tie the later evaluation wins, so a small validation set
    that scores perfectly early does not keep the first, barely trained weights (BasicMotions,
    8 validation sequences: the lowest validation loss came at step 25, test accuracy 0.75
    there, 0.93 after 525 steps)."""
    if best is None:
        return True
    if select == "accuracy":
        return metrics["accuracy"] >= best
    return metrics["loss"] < best


def plateau_update(cfg: TrainConfig, state: LoopState, value: float) -> bool:
    """Record one validation evaluation's ``value`` (of ``cfg.select``) in ``state`` and apply
    the plateau rule (:func:`.schedule.plateau_cut`) to ``state.lr_scale``; True on a cut."""
    cut = plateau_cut(cfg, value, state.recent_metrics, state.evaluations)
    if cut:
        state.lr_scale *= cfg.plateau_factor
    state.recent_metrics = [*state.recent_metrics, value][-cfg.plateau_window :]
    state.evaluations += 1
    return cut


def _evaluate_at_epoch_end(cfg: TrainConfig, state: LoopState, per_epoch: int) -> bool:
    """Whether the epoch that just ended gets an evaluation of its own.

    Epochs at least ``eval_every`` steps long and the last epoch do; shorter ones do not, so a
    data set of a few dozen samples (one step per epoch) is evaluated every ``eval_every``
    steps rather than after every step. ``eval_every=0``: every epoch does, and only they.
    """
    if state.last_eval_step == state.step:
        return False
    return cfg.eval_every == 0 or per_epoch >= cfg.eval_every or state.epoch >= cfg.epochs


def train(
    model: nn.Module,
    optimizer: optim.Optimizer,
    task: TaskData,
    cfg: TrainConfig,
    state: LoopState | None = None,
    *,
    callback: Callback | None = None,
    save: Callable[[LoopState, bool], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    world: World | None = None,
    evaluate_first: bool = False,
) -> LoopState:
    """Train ``model`` on ``task`` until the epochs, ``max_steps`` or early stopping end it.

    Args:
        model: the model, in its initial or restored state.
        optimizer: initialised (``optimizer.init``) and possibly restored.
        task: data and loss kind.
        cfg: resolved config (batch size, epochs, evaluation and checkpoint intervals, ...).
        state: progress of a resumed run; a fresh run starts from ``LoopState()``.
        callback: receives plain dicts: ``{"event": "step"|"train"|"eval"|"end", ...}``.
        save: ``save(state, is_best)`` writes a checkpoint; called every
            ``checkpoint_every`` steps, after each evaluation, and at the end.
        should_stop: polled after every step; when it returns True the loop saves and returns
            with status ``"interrupted"``.
        world: the processes of a data-parallel run (:mod:`.distributed`); each takes its
            part of every batch. None: this process alone.
        evaluate_first: a fresh run (step 0) evaluates (and checkpoints) the model before its
            first step, so that the untrained model competes for the best checkpoint: an
            anchored forecast's untrained model is its baseline, and where training never
            improves on that on validation, restoring the best weights returns to it. Early
            stopping still counts from the trained model's own best (``trained_best``): a run
            that starts below the baseline and is still improving is not stopped for it.

    Returns:
        The final :class:`LoopState`.

    Raises:
        TrainingDiverged: the loss became NaN or infinite; nothing is saved after that point.
    """
    state = state or LoopState()
    state.status = "running"
    emit = callback or (lambda _: None)
    world = world or World()
    steps = total_steps(cfg, len(task.train))
    per_epoch = steps_per_epoch(cfg, len(task.train))
    # Ragged data (polyphonic music) changes shape every batch: compiling would recompile each time.
    compile_step = cfg.compile and not task.train.ragged
    plateau = cfg.schedule == "plateau"
    if plateau:  # before build_step: the compiled step captures the state as it is now
        set_lr_scale(optimizer, state.lr_scale)
    step_fn = build_step(model, optimizer, world.loss(task.kind), cfg.grad_clip, compile_step,
                         world.reduce_gradients())  # fmt: skip
    model.train()
    # The speed of a log window counts this process's steps only (window_steps); its loss
    # also the steps before a resume (state.window_loss, state.window_n).
    window_steps, window_samples, window_t = 0, 0, time.perf_counter()

    def evaluate() -> bool:
        state.last_eval_step = state.step
        batches = iterate_batches(task.val, cfg.batch_size, shuffle=False, drop_last=False)
        metrics = world.evaluate(model, task.kind, batches, cfg.eval_batches)
        improved = _improves(cfg.select, metrics, state.best_metric)
        if improved:
            state.best_metric, state.best_step = metrics[cfg.select], state.step
        if state.step > 0:  # step 0 (evaluate_first) is a candidate, not training's progress
            if _improves(cfg.select, metrics, state.trained_best):
                state.trained_best, state.bad_evals = metrics[cfg.select], 0
            else:
                state.bad_evals += 1
        record = {"event": "eval", "step": state.step, "epoch": state.epoch,
                  **{f"val_{k}": v for k, v in metrics.items()}, "best": improved}  # fmt: skip
        if plateau:  # every rank has the same metrics (a sum over ranks), so the same cuts
            record["lr_cut"] = plateau_update(cfg, state, metrics[cfg.select])
            record["lr_scale"] = state.lr_scale
            set_lr_scale(optimizer, state.lr_scale)
        emit(record)
        if save is not None:
            save(state, improved)
        return cfg.patience is not None and state.bad_evals >= cfg.patience

    if evaluate_first and state.step == 0 and state.last_eval_step is None and len(task.val):
        evaluate()  # cannot stop the run: nothing has failed to improve yet
    if cfg.max_steps and state.step >= cfg.max_steps:
        state.status = "max_steps"  # a resumed run that had already reached max_steps
    while state.epoch < cfg.epochs and state.status == "running":
        batches = iterate_batches(
            task.train, cfg.batch_size, seed=cfg.seed, epoch=state.epoch, shuffle=cfg.shuffle,
            drop_last=cfg.shuffle, start=state.batch_in_epoch, shard=world.shard,
        )  # fmt: skip
        for x, y, mask in batches:
            loss = step_fn(x, y, mask)
            mx.eval(loss, model.parameters(), optimizer.state)
            value = world.mean(loss)
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"loss became {value} at step {state.step + 1} (epoch {state.epoch + 1}); "
                    "training stopped; checkpoints written before it are kept (try a lower lr or grad_clip)"
                )
            state.step += 1
            state.batch_in_epoch += 1
            state.window_loss += value
            state.window_n += 1
            window_steps += 1
            window_samples += x.shape[0] * world.size
            emit({"event": "step", "step": state.step, "total_steps": steps, "loss": value})
            if state.step % cfg.log_every == 0:
                elapsed = max(time.perf_counter() - window_t, 1e-9)
                emit({"event": "train", "step": state.step, "epoch": state.epoch,
                      "loss": state.window_loss / state.window_n,
                      "lr": float(optimizer.learning_rate), "samples_per_s": window_samples / elapsed,
                      "steps_per_s": window_steps / elapsed})  # fmt: skip
                state.window_loss, state.window_n = 0.0, 0
                window_steps, window_samples, window_t = 0, 0, time.perf_counter()
            if cfg.eval_every and state.step % cfg.eval_every == 0:
                if evaluate():
                    state.status = "early_stopped"
            elif save is not None and state.step % cfg.checkpoint_every == 0:
                save(state, False)
            if state.status == "running" and cfg.max_steps and state.step >= cfg.max_steps:
                state.status = "max_steps"
            if state.status == "running" and world.any(should_stop is not None and should_stop()):
                state.status = "interrupted"
            if state.status != "running":
                break
        else:
            state.epoch += 1
            state.batch_in_epoch = 0
            if _evaluate_at_epoch_end(cfg, state, per_epoch) and evaluate():
                state.status = "early_stopped"
    if state.status == "running":
        state.status = "completed"
    if state.status in ("max_steps", "early_stopped") and state.last_eval_step != state.step:
        evaluate()  # the final numbers should describe the final weights
    if save is not None:
        save(state, False)
    emit({"event": "end", "status": state.status, "step": state.step, "epoch": state.epoch,
          f"best_val_{cfg.select}": state.best_metric, "best_step": state.best_step})  # fmt: skip
    return state
