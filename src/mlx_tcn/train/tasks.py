"""Tasks: the arrays that :mod:`.data` reads, turned into what the loop trains on: splits,
windows, normalisation (statistics of the training part only), the loss kind (:mod:`.losses`)
and the loss of a trivial predictor.

The path of a run's data is one-way: :func:`build_task` asks :mod:`.data` for arrays and
returns a :class:`TaskData`; nothing in :mod:`.data` calls back here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import TrainConfig
from .data import (
    adding_problem,
    copy_memory,
    load_table,
    read_mnist,
    read_npz_sequences,
    read_polyphonic,
    select_columns,
    to_float,
)
from .split import Split

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "TASK_SHAPES",
    "TaskData",
    "build_task",
    "denormalize_targets",
    "load_mnist",
    "load_polyphonic",
    "make_windows",
    "normalize_inputs",
    "standardize_stats",
    "task_shape",
]

MNIST_MEAN = 0.1307  # torchvision's normalisation, used by the reference code
MNIST_STD = 0.3081

#: ``(kind, input channels, output channels)`` of the built-in tasks; user data (forecast,
#: classify) has the shape of its columns and classes.
TASK_SHAPES: dict[str, tuple[str, int, int]] = {
    "adding": ("regression_last", 2, 1),
    "copy_memory": ("class_all", 1, 10),
    "mnist": ("class_last", 1, 10),
    "pmnist": ("class_last", 1, 10),
    "jsb": ("multilabel_all", 88, 88),
    "nottingham": ("multilabel_all", 88, 88),
}


@dataclass
class TaskData:
    """Everything the loop needs to know about a task.

    Attributes:
        kind: one of :data:`mlx_tcn.train.losses.KINDS`.
        num_inputs: input channels.
        num_outputs: output channels of the model head.
        train, val: data splits; ``test`` when the task has a separate test set.
        stats: JSON-serialisable facts saved with every checkpoint (normalisation statistics,
            column names, classes, MNIST permutation) and reapplied at prediction time.
        baseline: loss of a trivial predictor, for the summary (None when not meaningful).
    """

    kind: str
    num_inputs: int
    num_outputs: int
    train: Split
    val: Split
    test: Split | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    baseline: float | None = None


def task_shape(cfg: TrainConfig) -> tuple[int, int]:
    """``(inputs, outputs)`` of the model ``cfg`` trains; reads user data only when it must."""
    if cfg.task in TASK_SHAPES:
        return TASK_SHAPES[cfg.task][1:]
    task = build_task(cfg)
    return task.num_inputs, task.num_outputs


def _builtin(task: str, train: Split, val: Split, **kw: Any) -> TaskData:
    return TaskData(*TASK_SHAPES[task], train, val, **kw)


def build_task(cfg: TrainConfig, stats: dict[str, Any] | None = None) -> TaskData:
    """Generate or load the data of ``cfg.task``.

    Args:
        cfg: the resolved training config.
        stats: statistics saved with a checkpoint; when given, user data is normalised with
            them instead of recomputing (evaluation of a trained model).
    """
    rng_train = np.random.default_rng([cfg.seed, 1])
    rng_val = np.random.default_rng([cfg.seed, 2])
    if cfg.task == "adding":
        train = Split(*adding_problem(cfg.n_train, cfg.seq_len, rng_train))
        val = Split(*adding_problem(cfg.n_val, cfg.seq_len, rng_val))
        # Always predicting 1 (the mean of the target) scores Var(u1 + u2) = 1/6.
        return _builtin("adding", train, val, baseline=1 / 6)
    if cfg.task == "copy_memory":
        train = Split(*copy_memory(cfg.n_train, cfg.seq_len, cfg.memory_length, rng_train))
        val = Split(*copy_memory(cfg.n_val, cfg.seq_len, cfg.memory_length, rng_val))
        # Chance: blanks are predictable, the digits are uniform over 8 values.
        base = cfg.memory_length * math.log(8) / (cfg.seq_len + 2 * cfg.memory_length)
        return _builtin("copy_memory", train, val, baseline=base)
    if cfg.task in ("mnist", "pmnist"):
        train, test, perm = load_mnist(
            cfg.data_path,
            permute=cfg.task == "pmnist",
            seed=cfg.seed,
            n_train=cfg.n_train,
            n_test=cfg.n_val,
        )
        if stats and stats.get("permutation") is not None:
            perm = np.asarray(stats["permutation"])
            train.transform = test.transform = mnist_transform(perm)
        info = {"permutation": None if perm is None else perm.tolist()}
        return _builtin(cfg.task, train, test, test=test, stats=info, baseline=math.log(10))
    if cfg.task in ("jsb", "nottingham"):
        splits = load_polyphonic(cfg.data_path)
        return _builtin(cfg.task, splits["train"], splits["val"], test=splits["test"])
    if cfg.task == "forecast":
        return _forecast_task(cfg, stats)
    return _classify_task(cfg, stats)


# --------------------------------------------------------------------------- MNIST, music


def load_mnist(
    folder: str | Path,
    *,
    permute: bool = False,
    seed: int = 0,
    n_train: int = 0,
    n_test: int = 0,
) -> tuple[Split, Split, np.ndarray | None]:
    """Sequential (or permuted) MNIST splits from the four standard IDX files in ``folder``.

    Each image becomes 784 steps of one pixel, scaled to ``[0, 1]`` and normalised with mean
    0.1307 and std 0.3081. With ``permute`` one fixed permutation (drawn from ``seed``) reorders
    the pixels of every image.

    Returns:
        ``(train, test, permutation)``; labels are int32 in ``0..9``.
    """
    arrays = read_mnist(folder)
    perm = np.random.default_rng(seed).permutation(784) if permute else None
    splits = []
    for name, cap in (("train", n_train), ("test", n_test)):
        x, y = arrays[name]
        if cap:
            x, y = x[:cap], y[:cap]
        splits.append(Split(x, y, transform=mnist_transform(perm)))
    return splits[0], splits[1], perm


def mnist_transform(perm: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    """Turn uint8 images ``(B, 784)`` into normalised sequences ``(B, 784, 1)``."""

    def transform(x: np.ndarray) -> np.ndarray:
        x = (x.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD
        if perm is not None:
            x = x[:, perm]
        return x[..., None]

    return transform


def load_polyphonic(path: str | Path) -> dict[str, Split]:
    """JSB Chorales / Nottingham as next-frame prediction: input frames ``0..T-2``, target
    frames ``1..T-1`` of each ``(T, 88)`` piano roll.

    Returns:
        ``{"train", "val", "test"}`` ragged splits.
    """
    out = {}
    for name, rolls in read_polyphonic(path).items():
        seqs = [s for s in rolls if len(s) > 1]
        out[name] = Split([s[:-1] for s in seqs], [s[1:] for s in seqs])
    return out


# --------------------------------------------------------------------------- user data


def _forecast_task(cfg: TrainConfig, stats: dict[str, Any] | None) -> TaskData:
    header, table = load_table(cfg.data_path)
    input_idx = select_columns(header, cfg.input_columns, cfg.data_path, "input")
    target_idx = select_columns(header, cfg.target_columns, cfg.data_path, "target")
    inputs = to_float(table, input_idx, header, cfg.data_path)
    targets = to_float(table, target_idx, header, cfg.data_path)
    cut = int(round(len(inputs) * (1 - cfg.val_fraction)))
    need = cfg.seq_len + cfg.horizon
    if cut < need or len(inputs) - cut < 1:
        raise ValueError(
            f"{cfg.data_path} has {len(inputs)} rows: with val_fraction={cfg.val_fraction} the "
            f"training part ({cut} rows) is shorter than seq_len + horizon = {need}"
        )
    if stats is None:
        stats = {"input_columns": [header[i] for i in input_idx],
                 "target_columns": [header[i] for i in target_idx],
                 "seq_len": cfg.seq_len, "horizon": cfg.horizon}  # fmt: skip
        if cfg.normalize:
            mx_, sx = standardize_stats(inputs[:cut])
            my, sy = standardize_stats(targets[:cut])
            stats.update(
                x_mean=mx_.tolist(), x_std=sx.tolist(), y_mean=my.tolist(), y_std=sy.tolist()
            )
    inputs, targets = normalize_inputs(inputs, stats), normalize_targets(targets, stats)
    x_tr, y_tr, _ = make_windows(inputs[:cut], targets[:cut], cfg.seq_len, cfg.horizon, cfg.stride)
    start = max(cut - cfg.seq_len - cfg.horizon + 1, 0)
    x_va, y_va, _ = make_windows(inputs[start:], targets[start:], cfg.seq_len, cfg.horizon, 1)
    train, val = Split(x_tr, y_tr), Split(x_va, y_va)
    # Predicting the training mean scores the variance of the (normalised) validation targets.
    base = float(np.mean((y_va - y_tr.mean(axis=0)) ** 2))
    return TaskData(
        "regression_last", len(input_idx), len(target_idx), train, val, stats=stats, baseline=base
    )


def _classify_table(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """``x`` ``(N, L, C)``, raw labels and the input column names (CSV: one row per sequence;
    ``.npz``: arrays ``x`` and ``y``, no column names)."""
    path = Path(cfg.data_path)
    if path.suffix.lower() == ".npz":
        x, y = read_npz_sequences(path, labels=True)
        return x, y, None
    header, table = load_table(path)
    if cfg.target_columns is None or len(cfg.target_columns) != 1:
        raise ValueError(
            f"classify from {path} needs exactly one label column (--target-columns NAME)"
        )
    (label_idx,) = select_columns(header, cfg.target_columns, path, "label")
    if cfg.input_columns is None:
        input_idx = [i for i in range(len(header)) if i != label_idx]
    else:
        input_idx = select_columns(header, cfg.input_columns, path, "input")
    x = to_float(table, input_idx, header, path)[..., None]
    return x, table[:, label_idx], [header[i] for i in input_idx]


def _classify_task(cfg: TrainConfig, stats: dict[str, Any] | None) -> TaskData:
    x, labels, input_names = _classify_table(cfg)
    if stats is None:
        classes = sorted({str(v) for v in labels.tolist()})
        if len(classes) < 2:
            raise ValueError(f"{cfg.data_path}: need at least 2 classes, found {classes}")
        stats = {"classes": classes, "seq_len": int(x.shape[1]), "input_columns": input_names}
    lookup = {c: i for i, c in enumerate(stats["classes"])}
    unknown = {str(v) for v in labels.tolist()} - set(lookup)
    if unknown:
        raise ValueError(f"{cfg.data_path}: labels {sorted(unknown)} were not seen in training")
    y = np.array([lookup[str(v)] for v in labels.tolist()], dtype=np.int32)
    order = np.random.default_rng([cfg.seed, 3]).permutation(len(x))
    n_val = max(1, int(round(len(x) * cfg.val_fraction)))
    if len(x) - n_val < 1:
        raise ValueError(
            f"{cfg.data_path}: {len(x)} sequences are too few to split off a validation set"
        )
    tr, va = order[n_val:], order[:n_val]
    if cfg.normalize and "x_mean" not in stats:
        m, s = standardize_stats(x[tr])
        stats.update(x_mean=m.tolist(), x_std=s.tolist())
    x = normalize_inputs(x, stats)
    train, val = Split(x[tr], y[tr]), Split(x[va], y[va])
    return TaskData("class_last", x.shape[-1], len(stats["classes"]), train, val, stats=stats,
                    baseline=math.log(len(stats["classes"])))  # fmt: skip


# --------------------------------------------------------------------------- windows, statistics


def make_windows(
    inputs: np.ndarray, targets: np.ndarray, seq_len: int, horizon: int, stride: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a series into forecasting windows.

    Window ``i`` holds ``inputs[s : s + seq_len]`` and its target is ``targets[s + seq_len - 1 +
    horizon]`` with ``s = i * stride``.

    Returns:
        ``x`` ``(N, seq_len, C_in)``, ``y`` ``(N, C_out)`` and the target rows ``(N,)``.
    """
    n = (len(inputs) - seq_len - horizon) // stride + 1
    if n < 1:
        raise ValueError(
            f"series of {len(inputs)} rows is too short for seq_len={seq_len} and horizon={horizon} "
            f"(needs at least {seq_len + horizon})"
        )
    starts = np.arange(n) * stride
    x = np.stack([inputs[s : s + seq_len] for s in starts])
    rows = starts + seq_len - 1 + horizon
    return x, targets[rows], rows


def standardize_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over all leading axes (std 0 becomes 1)."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def normalize_inputs(x: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """Apply the saved input standardisation (identity when the run did not normalise)."""
    if "x_mean" not in stats:
        return x.astype(np.float32)
    return ((x - np.asarray(stats["x_mean"])) / np.asarray(stats["x_std"])).astype(np.float32)


def normalize_targets(y: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """Apply the saved target standardisation of a forecasting run."""
    if "y_mean" not in stats:
        return y.astype(np.float32)
    return ((y - np.asarray(stats["y_mean"])) / np.asarray(stats["y_std"])).astype(np.float32)


def denormalize_targets(y: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """Undo :func:`normalize_targets` (predictions back in the data's units)."""
    if "y_mean" not in stats:
        return y
    return y * np.asarray(stats["y_std"]) + np.asarray(stats["y_mean"])
