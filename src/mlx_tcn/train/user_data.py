"""Users' own data as a task: a CSV/NumPy series cut into forecasting windows, or a table of
sequences to classify; standardised with statistics of the training part only, which are
saved with every checkpoint and reapplied at prediction time."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .config import TrainConfig
from .data import load_table, read_npz_sequences, select_columns, to_float
from .split import Split, TaskData

__all__ = [
    "classify_task",
    "denormalize_targets",
    "forecast_task",
    "make_windows",
    "normalize_inputs",
    "normalize_targets",
    "standardize_stats",
]


def forecast_task(cfg: TrainConfig, stats: dict[str, Any] | None) -> TaskData:
    """Windows of ``cfg.seq_len`` steps, each with the target ``cfg.horizon`` steps after it;
    the end of the series (``val_fraction``) is the validation part."""
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


def classify_task(cfg: TrainConfig, stats: dict[str, Any] | None) -> TaskData:
    """One label per sequence; a seeded random ``val_fraction`` of them is held out."""
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
