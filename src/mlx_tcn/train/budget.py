"""Settings that follow from the data: model depth from the window length, and the training
budget (epochs, evaluation interval, early-stopping patience) from the data set size.

The same command should work on 50 sequences and on 50,000: a fixed number of epochs is ten
steps on the first (chance-level accuracy on GunPoint) and hours on the second. So a run on a
user's data aims at a number of optimiser *steps*, spreads a fixed number of evaluations over
them, and stops early when the validation loss has not improved for a while; the best weights
are what the run keeps.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

from .config import TrainConfig
from .split import num_batches

__all__ = [
    "ENSEMBLE_FOLDS",
    "ENSEMBLE_MAX_SEQUENCES",
    "ENSEMBLE_PATIENCE",
    "TARGET_STEPS",
    "Budget",
    "apply_auto",
    "folds_for",
    "levels_for",
    "steps_per_model",
    "training_budget",
]

logger = logging.getLogger(__name__)

#: Optimiser steps an automatic budget aims at. On the UCR sets tried (36-200 training series)
#: the best validation loss came at 25-130 steps and test accuracy kept improving to ~300;
#: 1,000 leaves room for larger or harder sets, and early stopping ends easy ones sooner.
TARGET_STEPS = 1000
#: Fewest passes over the data, so a large data set is still seen more than once.
MIN_EPOCHS = 3
#: Evaluations spread over the budget (the epoch ends of tiny data sets do not each get one).
EVALUATIONS = 40
#: Evaluations without improvement before stopping: a quarter of the budget.
PATIENCE = 10
#: Classification sets of up to this many labelled sequences get a cross-validated ensemble
#: (:mod:`.ensemble`): their validation part would be too small to choose a checkpoint on.
ENSEMBLE_MAX_SEQUENCES = 500
#: Models (folds) of such an ensemble.
ENSEMBLE_FOLDS = 5
#: Optimiser steps of all of an ensemble's models together, as a multiple of TARGET_STEPS.
#: On ArrowHead (5 folds, test accuracy every 25 steps of 1,000) the ensemble of the models'
#: best checkpoints up to step 400 scored 0.743 (the models alone 0.59-0.76), up to step
#: 1,000 0.731.
ENSEMBLE_COST = 2
#: Early-stopping patience of an ensemble's models: half of their shorter budget. A quarter
#: (100 steps) stopped three of the five ArrowHead models at 225-250 steps (ensemble 0.737
#: against 0.743 with 150 steps or more).
ENSEMBLE_PATIENCE = 20


@dataclass(frozen=True)
class Budget:
    """The training budget of a run.

    Attributes:
        epochs: passes over the training data.
        eval_every: steps between evaluations of the validation loss.
        patience: evaluations without improvement before early stopping.
    """

    epochs: int
    eval_every: int
    patience: int


def levels_for(seq_len: int, kernel_size: int) -> int:
    """The fewest residual blocks whose receptive field covers ``seq_len`` steps.

    With dilations 1, 2, 4, ... and two convolutions per block the receptive field of ``L``
    blocks is ``1 + 2 (k - 1) (2^L - 1)``; a model that sees only part of its window cannot use
    the rest (on ArrowHead, 251 steps: test accuracy 0.57 with 4 blocks, 0.70 with 7).
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be a positive number of steps, got {seq_len}")
    if kernel_size < 2:
        raise ValueError(
            f"kernel_size must be at least 2 to grow the receptive field, got {kernel_size}"
        )
    return max(1, math.ceil(math.log2((seq_len - 1) / (2 * (kernel_size - 1)) + 1)))


def folds_for(n_sequences: int) -> int:
    """Models of the ensemble for a classification set of ``n_sequences`` labelled sequences:
    ``ENSEMBLE_FOLDS`` up to ``ENSEMBLE_MAX_SEQUENCES`` (never more than the sequences), else
    one."""
    if n_sequences < 1:
        raise ValueError(f"n_sequences must be positive, got {n_sequences}")
    if n_sequences > ENSEMBLE_MAX_SEQUENCES:
        return 1
    return max(1, min(ENSEMBLE_FOLDS, n_sequences // 2))


def steps_per_model(folds: int) -> int:
    """The step target of each of ``folds`` models: ``TARGET_STEPS`` for one model; the
    ensemble's ``ENSEMBLE_COST`` x ``TARGET_STEPS`` shared among its models otherwise, so an
    ensemble costs a bounded multiple of one run whatever its size."""
    if folds < 1:
        raise ValueError(f"folds must be positive, got {folds}")
    if folds == 1:
        return TARGET_STEPS
    return math.ceil(ENSEMBLE_COST * TARGET_STEPS / folds)


def training_budget(
    n_train: int, batch_size: int, target_steps: int = TARGET_STEPS, epochs: int | None = None
) -> Budget:
    """Epochs, evaluation interval and patience for ``n_train`` training samples.

    Epochs are chosen so the run makes about ``target_steps`` optimiser steps (at least
    ``MIN_EPOCHS`` passes over the data), unless ``epochs`` is given; ``EVALUATIONS``
    evaluations are spread over the steps, and early stopping comes after ``PATIENCE``
    evaluations without improvement.
    """
    if n_train < 1:
        raise ValueError(f"n_train must be positive, got {n_train}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    per_epoch = num_batches(n_train, batch_size, drop_last=True)
    if epochs is None:
        epochs = max(MIN_EPOCHS, math.ceil(target_steps / per_epoch))
    eval_every = max(1, math.ceil(epochs * per_epoch / EVALUATIONS))
    return Budget(epochs=epochs, eval_every=eval_every, patience=PATIENCE)


def apply_auto(cfg: TrainConfig, n_train: int, seq_len: int) -> TrainConfig:
    """``cfg`` with the settings listed in ``cfg.auto`` chosen from the data.

    Args:
        cfg: the resolved config; ``cfg.auto`` names the settings to choose (the others,
            including any the user gave, are kept). ``folds`` is chosen before, with the
            split it implies (:func:`.ensemble.with_folds`); each model's step target
            follows from it (:func:`steps_per_model`).
        n_train: training samples (windows or sequences).
        seq_len: steps per training sample (the window, or the sequences' length).

    Returns:
        A copy with those settings filled in and ``auto`` emptied, so the saved
        ``train_config.json`` holds the values used and a resumed run keeps them.
    """
    if not cfg.auto:
        return cfg
    given_epochs = None if "epochs" in cfg.auto else cfg.epochs
    budget = training_budget(n_train, cfg.batch_size, steps_per_model(cfg.folds), given_epochs)
    if cfg.folds > 1:
        budget = dataclasses.replace(budget, patience=ENSEMBLE_PATIENCE)
    chosen = {
        "epochs": budget.epochs,
        "eval_every": budget.eval_every,
        "patience": budget.patience,
        "levels": levels_for(seq_len, cfg.kernel_size),
    }
    chosen = {k: v for k, v in chosen.items() if k in cfg.auto}
    logger.info(
        "chosen from the data (%d samples of %d steps): %s",
        n_train,
        seq_len,
        ", ".join(f"{k}={v}" for k, v in chosen.items()),
    )
    return dataclasses.replace(cfg, **chosen, auto=[])
