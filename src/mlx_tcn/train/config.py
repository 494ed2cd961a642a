"""Training configuration: one dataclass, presets per task, and the single place where
command-line values, a config file and the defaults are merged.

Precedence (highest first): command line > config file > task preset > dataclass defaults.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PRESETS",
    "TASKS",
    "TrainConfig",
    "load_config_file",
    "resolve_config",
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
SCHEDULES = ("constant", "cosine", "exponential")
NORMS = ("weight_norm", "batch_norm", "layer_norm", "none")


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``train_config.json`` with every run.

    The defaults train the adding problem (T=200) in about a minute on a laptop CPU.
    """

    # --- run ---
    name: str | None = None  # run name: the run lives in <runs_dir>/<name>; default: the task name
    runs_dir: str = "runs"  # folder that holds all runs
    seed: int = 0  # seeds data generation, weight initialisation, dropout and data order
    preset: str = (
        "quick"  # per-task settings applied under file and CLI: "quick", "paper" or "none"
    )

    # --- task and data ---
    task: str = "adding"  # one of TASKS
    seq_len: int = 200  # adding: T; copy_memory: blank length T; forecast/classify: window length
    memory_length: int = 10  # copy_memory: number of digits to recall
    n_train: int = 10000  # adding/copy_memory: generated training samples; mnist: cap (0 = all)
    n_val: int = 1000  # adding/copy_memory: generated validation samples; mnist: test cap (0 = all)
    data_path: str | None = (
        None  # mnist: IDX folder; jsb/nottingham: .mat file; user data: .csv/.npy/.npz
    )
    input_columns: list[str] | None = (
        None  # user data: input column names or indices (None = all but targets)
    )
    target_columns: list[str] | None = (
        None  # forecast: target columns (None = all inputs); classify: label column
    )
    horizon: int = 1  # forecast: how many steps ahead the target lies
    stride: int = 1  # forecast: step between consecutive windows
    val_fraction: float = (
        0.2  # user data: fraction held out for validation (the last part of a series)
    )
    normalize: bool = (
        True  # user data: standardise inputs (and forecast targets) with training statistics
    )

    # --- model (see mlx_tcn.TCN) ---
    levels: int = 4  # number of residual blocks
    hidden: int = 24  # channels in every block
    kernel_size: int = 8  # convolution kernel size
    dropout: float = 0.0  # dropout probability inside the blocks
    causal: bool = True  # causal convolutions (no look-ahead)
    use_norm: str = "weight_norm"  # one of NORMS
    activation: str = "relu"  # block activation
    kernel_initializer: str = "xavier_uniform"  # weight initialiser
    use_skip_connections: bool = False  # sum the blocks' outputs before the head
    use_gate: bool = False  # gated (GLU) activations
    use_se: bool = False  # squeeze-and-excitation blocks
    dilation_reset: int | None = None  # restart the dilation doubling at this value

    # --- optimisation ---
    optimizer: str = "adam"  # one of OPTIMIZERS
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 0.0  # adamw/sgd weight decay
    momentum: float = 0.0  # sgd momentum
    grad_clip: float | None = None  # clip the global gradient norm to this value (None = off)
    schedule: str = "constant"  # learning-rate schedule, one of SCHEDULES
    warmup_steps: int = 0  # linear warm-up steps before the schedule
    decay_rate: float = 0.1  # exponential: factor the learning rate reaches at the last step
    batch_size: int = 32  # samples per step
    epochs: int = 1  # passes over the training data
    max_steps: int | None = None  # stop after this many steps (None = run all epochs)
    compile: bool = False  # mx.compile the training step (on CPU it did not pay off, see docs)

    # --- evaluation, logging, checkpoints ---
    eval_every: int = 100  # evaluate on the validation set every N steps (and at each epoch end)
    eval_batches: int | None = None  # cap the batches per evaluation (None = whole validation set)
    log_every: int = 10  # report the training loss every N steps
    checkpoint_every: int = 100  # write a checkpoint every N steps (and at each evaluation/end)
    keep_checkpoints: int = 2  # how many recent checkpoints to keep besides the best one
    patience: int | None = None  # early stopping: evaluations without improvement (None = off)
    plots: bool = True  # write PNG plots into the run folder

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of all fields."""
        return dataclasses.asdict(self)

    @property
    def run_dir(self) -> Path:
        """Folder of this run."""
        return Path(self.runs_dir) / (self.name or self.task)


# Per-task settings. "paper": the architecture and optimiser of Bai et al. 2018 (Table 2 and
# the reference code's defaults); "quick": small enough to finish in about a minute on a CPU.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "adding": {
        "paper": dict(
            seq_len=600,
            n_train=50000,
            n_val=1000,
            levels=8,
            hidden=24,
            kernel_size=8,
            dropout=0.0,
            optimizer="adam",
            lr=2e-3,
            batch_size=32,
            epochs=10,
        ),
        "quick": dict(
            seq_len=200,
            n_train=10000,
            n_val=1000,
            levels=4,
            hidden=24,
            kernel_size=8,
            dropout=0.0,
            optimizer="adam",
            lr=2e-3,
            batch_size=32,
            epochs=1,
        ),
    },
    "copy_memory": {
        "paper": dict(
            seq_len=1000,
            memory_length=10,
            n_train=10000,
            n_val=1000,
            levels=8,
            hidden=10,
            kernel_size=8,
            dropout=0.0,
            optimizer="rmsprop",
            lr=5e-4,
            grad_clip=1.0,
            batch_size=32,
            epochs=50,
        ),
        "quick": dict(
            seq_len=100,
            memory_length=10,
            n_train=4000,
            n_val=500,
            levels=4,
            hidden=10,
            kernel_size=8,
            dropout=0.0,
            optimizer="rmsprop",
            lr=5e-3,
            grad_clip=1.0,
            batch_size=32,
            epochs=1,
        ),
    },
    "mnist": {
        "paper": dict(
            n_train=0,
            n_val=0,
            levels=8,
            hidden=25,
            kernel_size=7,
            dropout=0.05,
            optimizer="adam",
            lr=2e-3,
            batch_size=64,
            epochs=20,
            eval_every=500,
        ),
        "quick": dict(
            n_train=2000,
            n_val=500,
            levels=8,
            hidden=25,
            kernel_size=7,
            dropout=0.05,
            optimizer="adam",
            lr=2e-3,
            batch_size=64,
            epochs=1,
            eval_every=50,
        ),
    },
    # The reference code's polyphonic-music defaults (music_test.py), used for both datasets.
    "jsb": {
        "paper": dict(
            levels=4,
            hidden=150,
            kernel_size=5,
            dropout=0.25,
            optimizer="adam",
            lr=1e-3,
            grad_clip=0.2,
            batch_size=1,
            epochs=100,
            eval_every=1000,
        ),
        "quick": dict(
            levels=4,
            hidden=150,
            kernel_size=5,
            dropout=0.25,
            optimizer="adam",
            lr=1e-3,
            grad_clip=0.2,
            batch_size=8,
            epochs=2,
            eval_every=50,
        ),
    },
    "forecast": {"quick": dict(seq_len=64, levels=4, hidden=32, kernel_size=3, epochs=5)},
    "classify": {"quick": dict(levels=4, hidden=32, kernel_size=3, epochs=10)},
}
PRESETS["pmnist"] = PRESETS["mnist"]
PRESETS["nottingham"] = PRESETS["jsb"]


def _field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainConfig)}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, JSON or YAML config file into a dict (keys are checked later).

    A TOML/YAML file may put the fields at top level or under a ``[train]`` table.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    text = path.read_text()
    try:
        if suffix == ".toml":
            if sys.version_info < (3, 11):
                raise ValueError(
                    f"TOML config {path} needs Python 3.11+ (tomllib); use JSON or YAML instead"
                )
            import tomllib

            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as err:
                raise ValueError(f"YAML config {path} needs pyyaml: pip install pyyaml") from err
            data = yaml.safe_load(text) or {}
        else:
            raise ValueError(
                f"config file {path}: unknown format {suffix!r} (use .toml, .json, .yaml)"
            )
    except ValueError:
        raise
    except Exception as err:  # parser errors of the three formats
        raise ValueError(f"config file {path} could not be parsed: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table/mapping, got {type(data).__name__}")
    if set(data) == {"train"} and isinstance(data["train"], dict):
        data = data["train"]
    return data


def _check_keys(values: dict[str, Any], origin: str) -> None:
    unknown = sorted(set(values) - _field_names())
    if unknown:
        raise ValueError(f"unknown config key(s) in {origin}: {', '.join(unknown)}")


def resolve_config(
    file_values: dict[str, Any] | None = None, cli_values: dict[str, Any] | None = None
) -> TrainConfig:
    """Merge defaults, the task preset, a config file and command-line values (in that order).

    Args:
        file_values: values read from a config file (see :func:`load_config_file`).
        cli_values: values given on the command line (only those the user gave).

    Returns:
        The validated :class:`TrainConfig`.
    """
    file_values = dict(file_values or {})
    cli_values = dict(cli_values or {})
    _check_keys(file_values, "config file")
    _check_keys(cli_values, "command line")
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
    cfg = TrainConfig(**merged)
    validate_config(cfg)
    return cfg


def validate_config(cfg: TrainConfig) -> None:
    """Raise ``ValueError`` naming the first field with an invalid value."""
    choices = {
        "task": TASKS,
        "optimizer": OPTIMIZERS,
        "schedule": SCHEDULES,
        "use_norm": NORMS,
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ValueError(
                f"{name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}"
            )
    positive = ["seq_len", "memory_length", "horizon", "stride", "levels", "hidden",
                "kernel_size", "batch_size", "epochs", "eval_every", "log_every",
                "checkpoint_every", "keep_checkpoints"]  # fmt: skip
    for name in positive:
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name in ("n_train", "n_val", "warmup_steps"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    for name in ("max_steps", "patience", "eval_batches", "dilation_reset"):
        value = getattr(cfg, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
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
    if (
        cfg.task in ("forecast", "classify", "mnist", "pmnist", "jsb", "nottingham")
        and not cfg.data_path
    ):
        raise ValueError(f"task {cfg.task!r} needs data_path (--data-path)")
    if cfg.name is not None and (not cfg.name or "/" in cfg.name or cfg.name.startswith(".")):
        raise ValueError(f"name must be a plain folder name, got {cfg.name!r}")
    for name in ("input_columns", "target_columns"):
        value = getattr(cfg, name)
        if value is not None and (not isinstance(value, list) or not value):
            raise ValueError(f"{name} must be a non-empty list or None, got {value!r}")


def config_fields() -> list[dataclasses.Field]:
    """The dataclass fields, in declaration order (the CLI builds its flags from them)."""
    return list(dataclasses.fields(TrainConfig))


def field_comments() -> dict[str, str]:
    """The ``# comment`` after every field, used as CLI help text."""
    import inspect

    comments: dict[str, str] = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        stripped = line.strip()
        if ":" in stripped and "#" in stripped and not stripped.startswith("#"):
            name = stripped.split(":", 1)[0].strip()
            if name.isidentifier():
                comments[name] = stripped.split("#", 1)[1].strip()
    return comments
