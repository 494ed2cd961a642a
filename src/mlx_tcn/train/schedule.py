"""The optimiser and its learning rate: schedules by step (warm-up, cosine, exponential, a
cut every few epochs) that MLX evaluates inside the training step, and the plateau rule,
which cuts the rate after a validation evaluation.

The plateau cut lives in the optimiser's state (``LR_SCALE``) rather than in a Python number,
so a compiled step, traced once, still uses the rate of today, and a checkpoint of the
optimiser brings the cut rate back on ``--resume``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import mlx.core as mx
import mlx.optimizers as optim

from .config import TrainConfig

__all__ = ["LR_SCALE", "make_optimizer", "plateau_cut", "set_lr_scale"]

#: The optimiser-state entry that multiplies the learning rate (``schedule="plateau"``). It is
#: state, not a number in the schedule's closure, so the compiled step reads its current value
#: instead of the one it was traced with, and the optimiser's checkpoint file saves it.
LR_SCALE = "lr_scale"


def _schedule(
    cfg: TrainConfig, steps: int, per_epoch: int | None
) -> float | Callable[[mx.array], mx.array]:
    """The rate by step: the warm-up, then the schedule (``plateau``: constant, scaled later)."""
    decay_steps = max(steps - cfg.warmup_steps, 1)
    if cfg.schedule == "cosine":
        main = optim.cosine_decay(cfg.lr, decay_steps)
    elif cfg.schedule == "exponential":
        main = optim.exponential_decay(cfg.lr, cfg.decay_rate ** (1.0 / decay_steps))
    elif cfg.schedule == "step":
        # The optimiser counts its updates from 0, so update number step_epochs * per_epoch
        # (the first of epoch step_epochs + 1) is the first at the cut rate, as in the
        # reference MNIST script, which divides the rate by 10 after its 10th epoch.
        if per_epoch is None or per_epoch < 1:
            raise ValueError(f"schedule='step' needs the steps per epoch, got {per_epoch!r}")
        main = optim.step_decay(cfg.lr, cfg.step_factor, cfg.step_epochs * per_epoch)
    else:
        main = None
    if cfg.warmup_steps:
        warm = optim.linear_schedule(cfg.lr / cfg.warmup_steps, cfg.lr, cfg.warmup_steps)
        return optim.join_schedules(
            [warm, main or (lambda _: mx.array(cfg.lr))], [cfg.warmup_steps]
        )
    return main or cfg.lr


def make_optimizer(cfg: TrainConfig, steps: int, per_epoch: int | None = None) -> optim.Optimizer:
    """The optimiser ``cfg`` names, with its learning-rate schedule over ``steps`` steps.

    ``per_epoch`` (optimiser steps per epoch) is needed by ``schedule="step"`` only.

    With ``schedule="plateau"`` the rate (the warm-up, then ``cfg.lr``) is multiplied by the
    optimiser's ``LR_SCALE`` state entry, which :func:`train` lowers on a plateau.
    """
    lr = _schedule(cfg, steps, per_epoch)
    if cfg.schedule == "plateau":
        return _scaled(cfg, lr)
    return _optimizer(cfg, lr)


def _scaled(cfg: TrainConfig, lr: float | Callable[[mx.array], mx.array]) -> optim.Optimizer:
    """The optimiser with the rate ``lr(step) * state[LR_SCALE]``, read at every update.

    The schedule reads the scale through the optimiser at call time, so it follows a state
    that a checkpoint load replaces, and in a compiled step it is one of the traced inputs.
    """
    optimizer: optim.Optimizer | None = None

    def rate(step: mx.array) -> mx.array:
        base = lr(step) if callable(lr) else mx.array(lr)
        return base if optimizer is None else base * optimizer.state[LR_SCALE]

    optimizer = _optimizer(cfg, rate)
    set_lr_scale(optimizer, 1.0)
    return optimizer


def set_lr_scale(optimizer: optim.Optimizer, scale: float) -> None:
    """Set the plateau multiplier of an optimiser from :func:`make_optimizer`."""
    optimizer.state[LR_SCALE] = mx.array(scale, dtype=mx.float32)


def _optimizer(cfg: TrainConfig, lr: float | Callable[[mx.array], mx.array]) -> optim.Optimizer:
    """The optimiser ``cfg.optimizer`` names, with the rate (or rate schedule) ``lr``."""
    # Bias-corrected moments, as in PyTorch's Adam that the paper's recipes were tuned with; MLX
    # leaves them uncorrected by default, which makes the first ~1,000 steps up to 3.2x larger
    # (docs/RESULTS.md: without it the adding problem, T=50, left its plateau later or never).
    if cfg.optimizer == "adam":
        return optim.Adam(learning_rate=lr, bias_correction=True)
    if cfg.optimizer == "adamw":
        return optim.AdamW(learning_rate=lr, weight_decay=cfg.weight_decay, bias_correction=True)
    if cfg.optimizer == "rmsprop":
        return optim.RMSprop(learning_rate=lr)
    return optim.SGD(learning_rate=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def plateau_cut(cfg: TrainConfig, value: float, recent: Sequence[float], evaluations: int) -> bool:
    """Whether a validation evaluation cuts the learning rate (``schedule="plateau"``).

    The rule of the TCN paper's polyphonic-music code: once ``cfg.plateau_start`` evaluations
    have passed, an evaluation whose ``value`` (of ``cfg.select``) is worse than each of the
    ``recent`` ones (the last ``cfg.plateau_window``) cuts the rate by ``cfg.plateau_factor``.
    Unlike a patience counter it compares with the recent values, not with the best one, so a
    run that drifts up slowly is cut while one that wobbles around its best is not; cuts may
    follow each other at consecutive evaluations, with no floor.

    Args:
        value: this evaluation's metric.
        recent: the metrics of the evaluations before it, oldest first (at most the last
            ``cfg.plateau_window`` are compared).
        evaluations: how many evaluations came before this one.
    """
    if evaluations < cfg.plateau_start or not recent:
        return False
    window = recent[-cfg.plateau_window :]
    return value < min(window) if cfg.select == "accuracy" else value > max(window)
