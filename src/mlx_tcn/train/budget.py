"""Settings that follow from the data: model depth from the window length, and the training
budget (epochs, evaluation interval, early-stopping patience) from the data set size.

The same command should work on 50 sequences and on 50,000: a fixed number of epochs is ten
steps on the first (chance-level accuracy on GunPoint) and hours on the second. So a run on a
user's data aims at a number of optimiser *steps*, spreads a fixed number of evaluations over
them, and stops early when the validation loss has not improved for a while; the best weights
are what the run keeps.

Steps alone do not bound the time: a step on 1,460-step sequences (ACSF1) costs 15 times one
on 150-step ones (GunPoint). So the steps are also capped by a compute budget, counted in the
convolutions' multiply-adds (from the data and model sizes, never from a clock, so the same
data always gets the same budget): small data sets reach their step target well within it,
long sequences and large data sets get the steps it affords.
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
    "COMPUTE_BUDGET",
    "TARGET_STEPS",
    "Budget",
    "apply_auto",
    "compute_per_model",
    "folds_for",
    "forward_cost",
    "levels_for",
    "steps_per_model",
    "training_budget",
]

logger = logging.getLogger(__name__)

#: Optimiser steps an automatic budget aims at. On the UCR sets tried (36-200 training series)
#: the best validation loss came at 25-130 steps and test accuracy kept improving to ~300;
#: 1,000 leaves room for larger or harder sets, and early stopping ends easy ones sooner.
TARGET_STEPS = 1000
#: Fewest passes over the data, so a large data set is still seen more than once (when
#: COMPUTE_BUDGET affords them).
MIN_EPOCHS = 3
#: Evaluations spread over the budget (the epoch ends of tiny data sets do not each get one).
EVALUATIONS = 40
#: Evaluations without improvement before stopping: a quarter of the budget.
PATIENCE = 10
#: Multiply-adds of the residual blocks' convolutions one model's run may spend: its training
#: steps (each counts TRAIN_PASSES forward passes of its batch) and its evaluations (one
#: forward pass of the validation part each). An ensemble's models share ENSEMBLE_COST times
#: this. Chosen so that every UCR/UEA set up to OSULeaf (5 x 400 steps on 427-step series,
#: 2.5e12 for the ensemble) keeps its step target, while ACSF1 (1,460 steps) gets about 100
#: steps per model. On one core of the 2-core development machine (x86_64, MLX on the CPU)
#: four ACSF1 ensembles that spent their whole budget trained for 6-11 minutes (docs/own_data.md):
#: the count is a deterministic proxy for time, not a clock.
COMPUTE_BUDGET = 1.5e12
#: A training step's cost in forward passes of its batch: on the CPU a compiled step took
#: 1.2-1.7 times an (uncompiled) forward pass of the same batch at width 32.
TRAIN_PASSES = 2
#: Fewest evaluations: when one evaluation is dear (a large validation part of long
#: sequences) fewer are made, so that they take at most EVAL_SHARE of the budget.
MIN_EVALUATIONS = 10
#: The largest share of COMPUTE_BUDGET that evaluations take (unless MIN_EVALUATIONS cost more).
EVAL_SHARE = 0.5
#: Fewest optimiser steps of a budget, however long the sequences: a run that learns
#: something, at the price of running past the budget on extreme data.
MIN_STEPS = 50
#: An automatic depth gives up blocks, down to MIN_STARVED_LEVELS, while the compute budget
#: affords less than this share of the step target at that depth: a block less buys more
#: steps. On ACSF1 (1,460 steps, 5 models of 80 series; one seed) 9 blocks afforded 103
#: steps per model and scored 0.50 on the test file, 7 blocks (136 steps) 0.61, 4 blocks
#: (248 steps) 0.72, against 1-NN DTW's 0.64. Sets whose budget affords the share keep the
#: depth that covers their window (OSULeaf: 0.764 with 7 blocks, 0.690 with 4). Only for
#: classification, where the evidence is.
STARVED_SHARE = 0.5
#: Fewest blocks a starved budget gives up to.
MIN_STARVED_LEVELS = 4
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
        max_steps: the step where the compute budget ends a run within its last epoch
            (None: the run does all of its epochs).
    """

    epochs: int
    eval_every: int
    patience: int
    max_steps: int | None = None

    def steps(self, per_epoch: int) -> int:
        """Optimiser steps of the run, with ``per_epoch`` steps an epoch."""
        return self.max_steps or self.epochs * per_epoch


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


def forward_cost(seq_len: int, levels: int, hidden: int, kernel_size: int) -> int:
    """Multiply-adds of the residual blocks' convolutions in one forward pass of one sample:
    two convolutions of ``kernel_size`` taps from ``hidden`` to ``hidden`` channels per block
    and step (the input and output layers, a small share, are left out)."""
    return seq_len * levels * 2 * kernel_size * hidden * hidden


def compute_per_model(folds: int) -> float:
    """The compute budget of each of ``folds`` models: ``COMPUTE_BUDGET`` for one model, the
    ensemble's ``ENSEMBLE_COST`` x ``COMPUTE_BUDGET`` shared among its models otherwise (as
    :func:`steps_per_model` shares the steps)."""
    if folds < 1:
        raise ValueError(f"folds must be positive, got {folds}")
    return COMPUTE_BUDGET if folds == 1 else ENSEMBLE_COST * COMPUTE_BUDGET / folds


def _evaluations(eval_cost: float, compute: float) -> int:
    """Evaluations of a run: ``EVALUATIONS``, fewer (down to ``MIN_EVALUATIONS``) when they
    would take more than ``EVAL_SHARE`` of ``compute``."""
    if eval_cost <= 0:
        return EVALUATIONS
    affordable = math.floor(EVAL_SHARE * compute / eval_cost)
    return min(EVALUATIONS, max(MIN_EVALUATIONS, affordable))


def training_budget(
    n_train: int,
    batch_size: int,
    target_steps: int = TARGET_STEPS,
    epochs: int | None = None,
    *,
    sample_cost: float = 0.0,
    n_val: int = 0,
    compute: float = math.inf,
    patience: int = PATIENCE,
    evaluate_first: bool = False,
) -> Budget:
    """Epochs, evaluation interval and patience for ``n_train`` training samples.

    Epochs are chosen so the run makes about ``target_steps`` optimiser steps (at least
    ``MIN_EPOCHS`` passes over the data), unless ``epochs`` is given; ``EVALUATIONS``
    evaluations are spread over the steps, and early stopping comes after ``patience``
    evaluations without improvement.

    With ``sample_cost`` (:func:`forward_cost` of one sample) the steps chosen are also
    capped by ``compute``: the evaluations of the ``n_val`` validation samples are paid first
    (fewer of them, down to ``MIN_EVALUATIONS``, when they are dear; ``patience`` shrinks in
    proportion), the training steps get the rest, at least ``MIN_STEPS``. When the cap ends
    the run within an epoch, ``max_steps`` says where. Epochs the user gave are not capped.
    ``evaluate_first``: the run also evaluates before its first step (an anchored forecast,
    :func:`.loop.train`), one more evaluation to pay for.
    """
    if n_train < 1:
        raise ValueError(f"n_train must be positive, got {n_train}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    per_epoch = num_batches(n_train, batch_size, drop_last=True)
    evaluations = _evaluations(n_val * sample_cost, compute)
    max_steps = None
    if epochs is None:
        wanted = max(target_steps, MIN_EPOCHS * per_epoch)
        step_cost = TRAIN_PASSES * min(batch_size, n_train) * sample_cost
        left = compute - (evaluations + evaluate_first) * n_val * sample_cost
        affordable = math.floor(left / step_cost) if step_cost > 0 else wanted
        steps = min(wanted, max(MIN_STEPS, affordable))
        epochs = math.ceil(steps / per_epoch)
        if steps < wanted and steps < epochs * per_epoch:
            max_steps = steps
    steps = max_steps or epochs * per_epoch
    eval_every = max(1, math.ceil(steps / evaluations))
    scaled = max(1, round(patience * evaluations / EVALUATIONS))
    return Budget(epochs=epochs, eval_every=eval_every, patience=scaled, max_steps=max_steps)


def apply_auto(
    cfg: TrainConfig, n_train: int, seq_len: int, n_val: int = 0, evaluate_first: bool = False
) -> TrainConfig:
    """``cfg`` with the settings listed in ``cfg.auto`` chosen from the data.

    Args:
        cfg: the resolved config; ``cfg.auto`` names the settings to choose (the others,
            including any the user gave, are kept). ``folds`` is chosen before, with the
            split it implies (:func:`.ensemble.with_folds`); each model's step target and
            compute budget follow from it (:func:`steps_per_model`,
            :func:`compute_per_model`).
        n_train: training samples (windows or sequences).
        seq_len: steps per training sample (the window, or the sequences' length).
        n_val: validation samples (their evaluations count against the compute budget).
        evaluate_first: the run evaluates before its first step too (paid for as well).

    Returns:
        A copy with those settings filled in and ``auto`` emptied, so the saved
        ``train_config.json`` holds the values used and a resumed run keeps them. When the
        compute budget ends the run within an epoch, ``max_steps`` is set too (unless given).
    """
    if not cfg.auto:
        return cfg
    levels = levels_for(seq_len, cfg.kernel_size) if "levels" in cfg.auto else cfg.levels
    given_epochs = None if "epochs" in cfg.auto else cfg.epochs

    def budget_at(levels: int) -> Budget:
        return training_budget(
            n_train,
            cfg.batch_size,
            steps_per_model(cfg.folds),
            given_epochs,
            sample_cost=forward_cost(seq_len, levels, cfg.hidden, cfg.kernel_size),
            n_val=n_val,
            compute=compute_per_model(cfg.folds),
            patience=ENSEMBLE_PATIENCE if cfg.folds > 1 else PATIENCE,
            evaluate_first=evaluate_first,
        )

    budget = budget_at(levels)
    if cfg.task == "classify" and {"levels", "epochs"} <= set(cfg.auto):
        # depth is what a starved classifier gives up first: a block less buys more steps.
        # (A forecast keeps the depth that covers its window: its last step reads all of it.)
        per_epoch = num_batches(n_train, cfg.batch_size, drop_last=True)
        wanted = training_budget(n_train, cfg.batch_size, steps_per_model(cfg.folds))
        enough = STARVED_SHARE * wanted.steps(per_epoch)
        while levels > MIN_STARVED_LEVELS and budget.steps(per_epoch) < enough:
            levels -= 1
            budget = budget_at(levels)
    chosen: dict[str, int | None] = {
        "epochs": budget.epochs,
        "eval_every": budget.eval_every,
        "patience": budget.patience,
        "levels": levels,
    }
    chosen = {k: v for k, v in chosen.items() if k in cfg.auto}
    if "epochs" in chosen and budget.max_steps is not None and cfg.max_steps is None:
        chosen["max_steps"] = budget.max_steps
    logger.info(
        "chosen from the data (%d samples of %d steps): %s",
        n_train,
        seq_len,
        ", ".join(f"{k}={v}" for k, v in chosen.items()),
    )
    return dataclasses.replace(cfg, **chosen, auto=[])
