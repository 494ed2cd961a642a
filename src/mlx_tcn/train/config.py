"""Training configuration: one dataclass, and the single place where command-line values, a
config file, the task preset (:mod:`.presets`) and the defaults are merged.

(Over 300 lines: every setting with its help text in field metadata, which the CLI's
--help and the docs both read.)

Precedence (highest first): command line > config file > task preset > dataclass defaults.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._coerce import typed
from ._io import load_config_file
from .presets import AUTO_FIELDS, PRESETS

__all__ = [
    "PRESETS",
    "TASKS",
    "TrainConfig",
    "TrainingConfig",
    "load_config_file",
    "resolve_config",
    "saved_config",
]

#: Built-in tasks (Bai, Kolter, Koltun 2018) and the two kinds of user data.
TASKS = (
    "adding",
    "copy_memory",
    "mnist",
    "pmnist",
    "jsb",
    "nottingham",
    "forecast",
    "classify",
)
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine", "exponential", "step", "plateau")
#: ``None`` is "no normalisation", as in the model (pytorch-tcn's spelling); the string
#: ``"none"`` (older train_config.json files, the command line) is read as ``None``.
NORMS = ("weight_norm", "batch_norm", "layer_norm", None)
POOLS = ("last", "mean")
ANCHOR_CHOICES = ("auto", "persistence", "seasonal_naive")
SELECTS = ("loss", "accuracy")
#: Tasks whose evaluation reports an accuracy (``select="accuracy"`` needs one).
ACCURACY_TASKS = ("copy_memory", "mnist", "pmnist", "classify")


def _help(default: Any, text: str) -> Any:
    """A field with its help text (the CLI's ``--help`` and :func:`field_comments` show it)."""
    return dataclasses.field(default=default, metadata={"help": text})


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``train_config.json`` with every run.

    The defaults train the adding problem (T=50) in about a minute on a laptop CPU.
    """

    # --- run ---
    name: str | None = _help(
        None, "run name: the run lives in <runs_dir>/<name> (default: the task name)"
    )
    runs_dir: str = _help("runs", "folder that holds all runs")
    seed: int = _help(0, "seeds data generation, weight initialisation, dropout and data order")
    preset: str = _help(
        "quick", 'per-task settings applied under the file and the CLI: "quick", "paper" or "none"'
    )

    # --- task and data ---
    task: str = _help(
        "adding", "adding, copy_memory, mnist, pmnist, jsb, nottingham, forecast or classify"
    )
    seq_len: int = _help(50, "adding: T; copy_memory: blank length T; forecast: window length")
    memory_length: int = _help(10, "copy_memory: number of digits to recall")
    n_train: int = _help(
        38400, "adding/copy_memory: generated training samples; mnist: first N images (0 = all)"
    )
    n_val: int = _help(
        1000,
        "adding/copy_memory: generated validation samples; mnist: first N test images (0 = all)",
    )
    data_path: str | None = _help(
        None,
        "mnist: IDX folder; jsb/nottingham: .mat file; forecast/classify: .csv/.npy/.npz; "
        "classify also: a UCR/UEA .ts file",
    )
    input_columns: list[str] | None = _help(
        None, "user data: input column names or indices (None: all columns but a classify label)"
    )
    target_columns: list[str] | None = _help(
        None, "forecast: target columns (None: all columns); classify (CSV): the label column"
    )
    horizon: int = _help(
        1,
        "forecast: predict every step 1..horizon after the window's last step at once (one "
        "output per step and target column); runs saved before this predicted only step horizon",
    )
    stride: int = _help(1, "forecast: step between consecutive training windows")
    val_fraction: float = _help(
        0.2, "user data: fraction held out for validation (forecast: the end of the series)"
    )
    normalize: bool = _help(
        True, "user data: standardise inputs (and forecast targets) with training statistics"
    )
    relative: bool = _help(
        True,
        "forecast (with normalize): inputs and targets relative to each window's last row, "
        "scaled by the training part's typical change, so the model predicts the change and "
        "follows a trend; off: standardise with the training mean and std",
    )
    season: int | None = _help(
        None,
        "forecast: season length in steps for the seasonal-naive baseline "
        "(None: detected from the training part's autocorrelation)",
    )
    anchor: str = _help(
        "auto",
        "forecast (window-relative): the baseline each step's forecast is a correction of (an "
        "untrained model forecasts it exactly): persistence, seasonal_naive (needs a season no "
        "longer than seq_len), or auto: seasonal naive where it clearly beats persistence on "
        "a training part of at most 40 seasons, else persistence (docs/own_data.md)",
    )
    sequence_column: str | None = _help(
        None,
        "classify (CSV): the column naming each row's sequence: one row per step, one column "
        "per channel (the long layout, for several channels); None: one row per sequence",
    )
    pool: str = _help(
        "last",
        "classify: one prediction per sequence from the last step's output (last) "
        "or from the mean of all steps' outputs (mean)",
    )
    folds: int = _help(
        1,
        "classify: train this many models, each validated on a different 1/folds of every "
        "class (cross-validation), and average their class probabilities; 1: one model "
        "validated on val_fraction (classify preset: chosen from the data size)",
    )
    fold: int = _help(0, "classify with folds > 1: the fold this run validates on (its member)")

    # --- model (see mlx_tcn.TCN) ---
    levels: int = _help(3, "number of residual blocks")
    hidden: int = _help(24, "channels in every block")
    kernel_size: int = _help(8, "convolution kernel size")
    dropout: float = _help(0.0, "dropout probability inside the blocks")
    causal: bool = _help(True, "causal convolutions (no look-ahead)")
    use_norm: str | None = _help("weight_norm", "weight_norm, batch_norm, layer_norm or none")
    activation: str = _help("relu", "block activation (see mlx_tcn.ACTIVATIONS)")
    kernel_initializer: str = _help(
        "xavier_uniform", "weight initialiser (see mlx_tcn.INITIALIZERS)"
    )
    reference_init: bool = _help(
        False,
        "draw the 1x1 downsamples' and the output head's weights from N(0, 0.01), as the "
        "paper's reference code does for the adding and copy-memory tasks (the other weights "
        "as without it)",
    )
    use_skip_connections: bool = _help(False, "sum the blocks' outputs before the head")
    use_gate: bool = _help(False, "gated (GLU) activations")
    use_se: bool = _help(False, "squeeze-and-excitation blocks")
    dilation_reset: int | None = _help(
        None, "restart the dilation doubling after this value (None: 1, 2, 4, ...)"
    )

    # --- optimisation ---
    optimizer: str = _help("adam", "adam, adamw, rmsprop or sgd")
    lr: float = _help(4e-3, "peak learning rate")
    weight_decay: float = _help(0.0, "adamw/sgd weight decay")
    momentum: float = _help(0.0, "sgd momentum")
    grad_clip: float | None = _help(
        None, "clip the global gradient norm to this value (None: no clipping)"
    )
    schedule: str = _help(
        "constant",
        "learning-rate schedule: constant, cosine, exponential (over the steps, after the "
        "warm-up), step (multiplied by step_factor every step_epochs epochs, after the warm-up) "
        "or plateau (cut by plateau_factor when a validation evaluation is worse than each of "
        "the plateau_window before it)",
    )
    warmup_steps: int = _help(0, "linear warm-up steps before the schedule")
    decay_rate: float = _help(
        0.1, "exponential schedule: factor the learning rate has reached at the last step"
    )
    step_epochs: int = _help(10, "step schedule: epochs between two cuts of the learning rate")
    step_factor: float = _help(
        0.1, "step schedule: factor each cut multiplies the learning rate by, in (0, 1]"
    )
    plateau_factor: float = _help(
        0.1, "plateau schedule: factor each cut multiplies the learning rate by, in (0, 1)"
    )
    plateau_window: int = _help(
        3, "plateau schedule: a cut when the evaluation is worse than all of the last N before it"
    )
    plateau_start: int = _help(
        10, "plateau schedule: evaluations that pass before the rule applies (0: from the 2nd)"
    )
    batch_size: int = _help(32, "samples per step")
    shuffle: bool = _help(
        True,
        "draw a new order of the training samples every epoch and drop the last partial "
        "batch; off: the samples in their own order every epoch, the last partial batch "
        "included, as the paper's reference code trains",
    )
    epochs: int = _help(1, "passes over the training data")
    max_steps: int | None = _help(None, "stop after this many steps (None: run all epochs)")
    compile: bool = _help(
        True, "mx.compile the training step (not for variable-length data; see docs/training.md)"
    )

    # --- evaluation, logging, checkpoints ---
    eval_every: int = _help(
        100,
        "evaluate on the validation split every N steps (and at each epoch end); "
        "0: once per epoch, at its end",
    )
    eval_batches: int | None = _help(
        None, "cap the batches per evaluation (None: the whole validation split)"
    )
    log_every: int = _help(10, "report the mean training loss every N steps")
    checkpoint_every: int = _help(
        100, "write a checkpoint every N steps (and after each evaluation and at the end)"
    )
    keep_checkpoints: int = _help(2, "recent checkpoints to keep besides the best one")
    patience: int | None = _help(
        None, "early stopping: evaluations without improvement before stopping (None: off)"
    )
    select: str = _help(
        "loss",
        "the validation metric that picks the best checkpoint and drives early stopping: loss "
        "(lowest) or accuracy (highest, a tie goes to the later evaluation; classify preset)",
    )
    restore_best: bool = _help(
        False,
        "at the end of a run, load the best checkpoint's weights: the summary, plots and "
        "predictions then describe them (forecast/classify presets: on)",
    )
    auto: list[str] | None = _help(
        None,
        "settings chosen from the data when a run starts (forecast/classify presets: "
        + ", ".join(AUTO_FIELDS)
        + "); a setting given in a file or on the command line is never replaced; "
        "none: keep the preset values",
    )
    plots: bool = _help(True, "write PNG plots into the run folder")

    def __post_init__(self) -> None:
        if self.use_norm == "none":  # one spelling is stored: the model's None
            self.use_norm = None
        if self.auto is not None and [str(a).lower() for a in self.auto] == ["none"]:
            self.auto = None  # --auto none

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of all fields."""
        return dataclasses.asdict(self)

    @property
    def run_dir(self) -> Path:
        """Folder of this run."""
        return Path(self.runs_dir) / (self.name or self.task)


#: The name the original project's README gives the training config; the same class.
TrainingConfig = TrainConfig


def _field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainConfig)}


def _check_keys(values: dict[str, Any], origin: str) -> None:
    unknown = sorted(set(values) - _field_names())
    if unknown:
        raise ValueError(f"unknown config key(s) in {origin}: {', '.join(unknown)}")


def resolve_config(
    file_values: dict[str, Any] | None = None,
    cli_values: dict[str, Any] | None = None,
    *,
    need_data: bool = True,
) -> TrainConfig:
    """Merge defaults, the task preset, a config file and command-line values (in that order).

    Args:
        file_values: values read from a config file (see :func:`load_config_file`).
        cli_values: values given on the command line (only those the user gave).
        need_data: refuse a task that reads files without ``data_path`` (False: a
            configuration that is only described, as ``mlx-tcn summary`` does).

    Returns:
        The validated :class:`TrainConfig`.
    """
    file_values = dict(file_values or {})
    cli_values = dict(cli_values or {})
    _check_keys(file_values, "config file")
    _check_keys(cli_values, "command line")
    file_values = _typed_values(file_values, "in the config file")
    cli_values = _typed_values(cli_values, "on the command line")
    top = {**file_values, **cli_values}
    defaults = TrainConfig()
    task = top.get("task", defaults.task)
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    preset = top.get("preset", defaults.preset)
    task_presets = PRESETS.get(task, {})
    if preset != "none" and preset not in ("quick", "paper"):
        raise ValueError(f"preset must be 'quick', 'paper' or 'none', got {preset!r}")
    if preset != "none" and preset not in task_presets:
        raise ValueError(f"task {task!r} has no {preset!r} preset (has: {', '.join(task_presets)})")
    merged = {**(task_presets.get(preset, {}) if preset != "none" else {}), **top}
    if merged.get("auto"):  # what the user set is theirs: only the rest comes from the data
        merged["auto"] = [k for k in merged["auto"] if k not in top]
    cfg = TrainConfig(**merged)
    validate_config(cfg, need_data=need_data)
    return cfg


def saved_config(values: dict[str, Any]) -> TrainConfig:
    """The config a run saved (``train_config.json``), validated.

    A run saves every field, so a field it lacks was added to :class:`TrainConfig` after the
    run was made, and the run did what that field's default does: it gets the default, never
    a preset's value (a preset that later sets the new field would otherwise rewrite what an
    old run says it did).
    """
    if not isinstance(values, dict):
        raise TypeError(f"a saved config must be a JSON object, got {type(values).__name__}")
    defaults = TrainConfig().to_dict()
    return resolve_config({**{k: v for k, v in defaults.items() if k not in values}, **values})


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _typed_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    hints = _field_types()
    return {k: typed(k, v, hints[k], where) for k, v in values.items()}


def validate_config(cfg: TrainConfig, *, need_data: bool = True) -> None:
    """Raise ``TypeError`` or ``ValueError`` naming the first field with an invalid value
    (``need_data``: a task that reads files must have its ``data_path``)."""
    hints = _field_types()
    for f in dataclasses.fields(cfg):
        typed(f.name, getattr(cfg, f.name), hints[f.name])
    choices = {
        "task": TASKS,
        "optimizer": OPTIMIZERS,
        "schedule": SCHEDULES,
        "use_norm": NORMS,
        "pool": POOLS,
        "select": SELECTS,
        "anchor": ANCHOR_CHOICES,
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            names = ", ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must be one of {names}, got {getattr(cfg, name)!r}")
    positive = ["seq_len", "memory_length", "horizon", "stride", "levels", "hidden",
                "kernel_size", "batch_size", "epochs", "log_every", "checkpoint_every",
                "keep_checkpoints", "plateau_window", "step_epochs"]  # fmt: skip
    for name in positive:
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
    for name in ("n_train", "n_val", "warmup_steps", "eval_every", "plateau_start"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {getattr(cfg, name)!r}")
    if cfg.task in ("adding", "copy_memory"):  # generated: a count; 0 = all only for mnist
        for name in ("n_train", "n_val"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"{name} must be a positive integer for task {cfg.task!r} "
                                 f"(0 means all only for mnist and pmnist), got {getattr(cfg, name)!r}")  # fmt: skip
    if not 0 <= cfg.seed < 2**63:  # MLX and NumPy take unsigned seeds; folds add to it
        raise ValueError(f"seed must be an integer in [0, 2**63), got {cfg.seed!r}")
    for name in ("max_steps", "patience", "eval_batches", "dilation_reset", "season"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    for name in ("weight_decay", "momentum"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be non-negative, got {getattr(cfg, name)!r}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout!r}")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {cfg.val_fraction!r}")
    if not cfg.lr > 0:
        raise ValueError(f"lr must be positive, got {cfg.lr!r}")
    if cfg.grad_clip is not None and not cfg.grad_clip > 0:
        raise ValueError(f"grad_clip must be positive or None, got {cfg.grad_clip!r}")
    if not 0.0 < cfg.decay_rate <= 1.0:
        raise ValueError(f"decay_rate must be in (0, 1], got {cfg.decay_rate!r}")
    if not 0.0 < cfg.step_factor <= 1.0:
        raise ValueError(f"step_factor must be in (0, 1], got {cfg.step_factor!r}")
    if not 0.0 < cfg.plateau_factor < 1.0:
        raise ValueError(f"plateau_factor must be in (0, 1), got {cfg.plateau_factor!r}")
    if (
        need_data
        and cfg.task in ("forecast", "classify", "mnist", "pmnist", "jsb", "nottingham")
        and not cfg.data_path
    ):
        raise ValueError(f"task {cfg.task!r} needs data_path (--data-path)")
    if cfg.name is not None and (not cfg.name or "/" in cfg.name or cfg.name.startswith(".")):
        raise ValueError(f"name must be a plain folder name, got {cfg.name!r}")
    if cfg.folds < 1 or not 0 <= cfg.fold < cfg.folds:
        raise ValueError(f"folds must be positive and fold in [0, folds), got folds={cfg.folds!r}, "
                         f"fold={cfg.fold!r}")  # fmt: skip
    if cfg.folds > 1 and cfg.task != "classify":
        raise ValueError(f"folds > 1 (an ensemble) is for task 'classify', not {cfg.task!r}")
    if cfg.select == "accuracy" and cfg.task not in ACCURACY_TASKS:
        raise ValueError(f"select='accuracy' needs a task with an accuracy, not {cfg.task!r}")
    unknown = sorted(set(cfg.auto or ()) - set(AUTO_FIELDS))
    if unknown:
        raise ValueError(
            f"auto may choose {', '.join(AUTO_FIELDS)}; got {', '.join(map(repr, unknown))}"
        )
    for name in ("input_columns", "target_columns"):
        value = getattr(cfg, name)
        if value is not None and not value:
            raise ValueError(f"{name} must be a non-empty list or None, got {value!r}")


def config_fields() -> list[dataclasses.Field]:
    """The dataclass fields, in declaration order (the CLI builds its flags from them)."""
    return list(dataclasses.fields(TrainConfig))


def field_comments() -> dict[str, str]:
    """The help text of every field (the CLI's ``--help``)."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}
