"""Training configuration: one dataclass, presets per task, and the single place where
command-line values, a config file and the defaults are merged.

Precedence (highest first): command line > config file > task preset > dataclass defaults.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._io import read_utf8

__all__ = [
    "PRESETS",
    "TASKS",
    "TrainConfig",
    "TrainingConfig",
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

    The defaults train the adding problem (T=50) in about a minute on a laptop CPU.
    """

    # --- run ---
    #: run name: the run lives in <runs_dir>/<name> (default: the task name)
    name: str | None = None
    #: folder that holds all runs
    runs_dir: str = "runs"
    #: seeds data generation, weight initialisation, dropout and data order
    seed: int = 0
    #: per-task settings applied under the file and the CLI: "quick", "paper" or "none"
    preset: str = "quick"

    # --- task and data ---
    #: adding, copy_memory, mnist, pmnist, jsb, nottingham, forecast or classify
    task: str = "adding"
    #: adding: T; copy_memory: blank length T; forecast: window length
    seq_len: int = 50
    #: copy_memory: number of digits to recall
    memory_length: int = 10
    #: adding/copy_memory: generated training samples; mnist: first N images (0 = all)
    n_train: int = 38400
    #: adding/copy_memory: generated validation samples; mnist: first N test images (0 = all)
    n_val: int = 1000
    #: mnist: IDX folder; jsb/nottingham: .mat file; forecast/classify: .csv/.npy/.npz
    data_path: str | None = None
    #: user data: input column names or indices (None: all columns but a classify label)
    input_columns: list[str] | None = None
    #: forecast: target columns (None: all columns); classify (CSV): the label column
    target_columns: list[str] | None = None
    #: forecast: how many steps after the window's last step the target lies
    horizon: int = 1
    #: forecast: step between consecutive training windows
    stride: int = 1
    #: user data: fraction held out for validation (forecast: the end of the series)
    val_fraction: float = 0.2
    #: user data: standardise inputs (and forecast targets) with training statistics
    normalize: bool = True

    # --- model (see mlx_tcn.TCN) ---
    #: number of residual blocks
    levels: int = 3
    #: channels in every block
    hidden: int = 24
    #: convolution kernel size
    kernel_size: int = 8
    #: dropout probability inside the blocks
    dropout: float = 0.0
    #: causal convolutions (no look-ahead)
    causal: bool = True
    #: weight_norm, batch_norm, layer_norm or none
    use_norm: str = "weight_norm"
    #: block activation (see mlx_tcn.ACTIVATIONS)
    activation: str = "relu"
    #: weight initialiser (see mlx_tcn.INITIALIZERS)
    kernel_initializer: str = "xavier_uniform"
    #: sum the blocks' outputs before the head
    use_skip_connections: bool = False
    #: gated (GLU) activations
    use_gate: bool = False
    #: squeeze-and-excitation blocks
    use_se: bool = False
    #: restart the dilation doubling after this value (None: 1, 2, 4, ...)
    dilation_reset: int | None = None

    # --- optimisation ---
    #: adam, adamw, rmsprop or sgd
    optimizer: str = "adam"
    #: peak learning rate
    lr: float = 4e-3
    #: adamw/sgd weight decay
    weight_decay: float = 0.0
    #: sgd momentum
    momentum: float = 0.0
    #: clip the global gradient norm to this value (None: no clipping)
    grad_clip: float | None = None
    #: learning-rate schedule: constant, cosine or exponential (after the warm-up)
    schedule: str = "constant"
    #: linear warm-up steps before the schedule
    warmup_steps: int = 0
    #: exponential schedule: factor the learning rate has reached at the last step
    decay_rate: float = 0.1
    #: samples per step
    batch_size: int = 32
    #: passes over the training data
    epochs: int = 1
    #: stop after this many steps (None: run all epochs)
    max_steps: int | None = None
    #: mx.compile the training step (not for variable-length data; see docs/training.md)
    compile: bool = True

    # --- evaluation, logging, checkpoints ---
    #: evaluate on the validation split every N steps (and at each epoch end)
    eval_every: int = 100
    #: cap the batches per evaluation (None: the whole validation split)
    eval_batches: int | None = None
    #: report the mean training loss every N steps
    log_every: int = 10
    #: write a checkpoint every N steps (and after each evaluation and at the end)
    checkpoint_every: int = 100
    #: recent checkpoints to keep besides the best one
    keep_checkpoints: int = 2
    #: early stopping: evaluations without improvement before stopping (None: off)
    patience: int | None = None
    #: write PNG plots into the run folder
    plots: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of all fields."""
        return dataclasses.asdict(self)

    @property
    def run_dir(self) -> Path:
        """Folder of this run."""
        return Path(self.runs_dir) / (self.name or self.task)


#: The name the original project's README gives the training config; the same class.
TrainingConfig = TrainConfig


# Per-task settings. "paper": the architecture and optimiser of Bai et al. 2018 (Table 2 and
# the reference code's defaults); "quick": small enough to finish in about a minute on a CPU.
# Each task's "quick" preset is its "paper" preset with the changes that make it run in about
# a minute on a laptop CPU.
_ADDING_PAPER = dict(
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
)
_COPY_PAPER = dict(
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
)
_MNIST_PAPER = dict(
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
)
# The reference code's polyphonic-music defaults (music_test.py), used for both datasets.
_MUSIC_PAPER = dict(
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
)
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "adding": {
        "paper": _ADDING_PAPER,
        # T=50: at T=200 (and T=100) the loss sat on the 0.167 plateau for more steps than a
        # minute of CPU allows; the reference code's adding lr (4e-3) escapes it fastest.
        "quick": {
            **_ADDING_PAPER,
            "seq_len": 50,
            "n_train": 38400,
            "levels": 3,
            "lr": 4e-3,
            "epochs": 1,
        },
    },
    "copy_memory": {
        "paper": _COPY_PAPER,
        "quick": {
            **_COPY_PAPER,
            "seq_len": 100,
            "n_train": 32000,
            "n_val": 500,
            "levels": 4,
            "lr": 5e-3,
            "epochs": 1,
        },
    },
    "mnist": {
        "paper": _MNIST_PAPER,
        "quick": {**_MNIST_PAPER, "n_train": 2000, "n_val": 500, "epochs": 1, "eval_every": 50},
    },
    "jsb": {
        "paper": _MUSIC_PAPER,
        "quick": {**_MUSIC_PAPER, "batch_size": 8, "epochs": 8, "eval_every": 50},
    },
    "forecast": {"quick": dict(seq_len=64, levels=4, hidden=32, kernel_size=3, epochs=5)},
    "classify": {"quick": dict(levels=4, hidden=32, kernel_size=3, epochs=10)},
}
PRESETS["pmnist"] = PRESETS["mnist"]
PRESETS["nottingham"] = {
    "paper": _MUSIC_PAPER,
    "quick": {**PRESETS["jsb"]["quick"], "epochs": 1},  # 3x more (and longer) sequences
}


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
    text = read_utf8(path, "config file")
    parse: Callable[[str], Any]
    if suffix == ".toml":
        if sys.version_info < (3, 11):
            raise ValueError(f"TOML config {path} needs Python 3.11+ (tomllib); use JSON or YAML")
        import tomllib

        parse = tomllib.loads
    elif suffix == ".json":
        parse = json.loads
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(
                f'YAML config {path} needs pyyaml: pip install "mlx-tcn[data]" (or: pip install pyyaml)'
            ) from None

        def parse(text: str) -> Any:
            return yaml.safe_load(text) or {}
    else:
        raise ValueError(f"config file {path}: unknown format {suffix!r} (use .toml, .json, .yaml)")
    try:
        data = parse(text)
    except Exception as err:  # each format's own parse error
        raise ValueError(f"config file {path} could not be parsed: {err}") from None
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
    cfg = TrainConfig(**merged)
    validate_config(cfg)
    return cfg


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _describe(hint: Any) -> str:
    """``int | None`` -> "an integer or None", for error messages."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    text = words.get(base, "a list of column names or positions")
    return f"{text} or None" if optional else text


def _typed(name: str, value: Any, hint: Any, where: str = "") -> Any:
    """``value`` as the type of field ``name`` (an int where a float goes becomes a float,
    NumPy scalars become Python ones), or a ``TypeError`` naming the setting and the value.

    Uses only the :mod:`numbers` ABCs, so NumPy is not imported here.
    """
    full, args = hint, typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    ok: Any = None
    is_bool = isinstance(value, bool) or (  # NumPy's bool (np.bool_ before NumPy 2)
        type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    )
    if hint is bool:
        ok = bool(value) if is_bool else None
    elif is_bool:
        ok = None  # True is an int in Python, but never a count or a rate
    elif hint is int and isinstance(value, numbers.Integral):
        ok = int(value)
    elif hint is float and isinstance(value, numbers.Real):
        ok = float(value)
    elif hint is str and isinstance(value, (str, os.PathLike)):
        ok = os.fspath(value)
    elif typing.get_origin(hint) is list or isinstance(hint, types.GenericAlias):
        if isinstance(value, (list, tuple)) and all(
            isinstance(v, (str, numbers.Integral)) and not isinstance(v, bool) for v in value
        ):
            ok = [v if isinstance(v, str) else str(int(v)) for v in value]
    place = f" {where}" if where else ""
    if ok is None:
        raise TypeError(
            f"{name}{place} must be {_describe(full)}, got {value!r} ({type(value).__name__})"
        )
    if isinstance(ok, float) and not math.isfinite(ok):
        raise ValueError(f"{name}{place} must be finite, got {value!r}")
    return ok


def _typed_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    hints = _field_types()
    return {k: _typed(k, v, hints[k], where) for k, v in values.items()}


def validate_config(cfg: TrainConfig) -> None:
    """Raise ``TypeError`` or ``ValueError`` naming the first field with an invalid value."""
    hints = _field_types()
    for f in dataclasses.fields(cfg):
        _typed(f.name, getattr(cfg, f.name), hints[f.name])
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
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
    for name in ("n_train", "n_val", "warmup_steps"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {getattr(cfg, name)!r}")
    for name in ("max_steps", "patience", "eval_batches", "dilation_reset"):
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
    if (
        cfg.task in ("forecast", "classify", "mnist", "pmnist", "jsb", "nottingham")
        and not cfg.data_path
    ):
        raise ValueError(f"task {cfg.task!r} needs data_path (--data-path)")
    if cfg.name is not None and (not cfg.name or "/" in cfg.name or cfg.name.startswith(".")):
        raise ValueError(f"name must be a plain folder name, got {cfg.name!r}")
    for name in ("input_columns", "target_columns"):
        value = getattr(cfg, name)
        if value is not None and not value:
            raise ValueError(f"{name} must be a non-empty list or None, got {value!r}")


def config_fields() -> list[dataclasses.Field]:
    """The dataclass fields, in declaration order (the CLI builds its flags from them)."""
    return list(dataclasses.fields(TrainConfig))


def field_comments() -> dict[str, str]:
    """The ``#:`` comment above every field, used as the CLI's help text."""
    import inspect

    comments: dict[str, str] = {}
    pending = ""
    for line in inspect.getsource(TrainConfig).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending = stripped[2:].strip()
        elif pending and ":" in stripped:
            comments[stripped.split(":", 1)[0].strip()] = pending
            pending = ""
    return comments
