"""Tasks: which data a config trains on, what the model's output means, and how it is scored.

A task has a *kind* that fixes the loss and metrics:

- ``regression_last``: the last step's output is compared with ``y`` ``(B, n)`` by MSE
  (adding problem, forecasting),
- ``class_last``: the last step's output are class logits, cross-entropy and accuracy
  (sequential MNIST, sequence classification),
- ``class_all``: logits at every step, cross-entropy over all steps and accuracy (copy memory),
- ``multilabel_all``: next-frame prediction of binary frames; NLL summed over the channels and
  averaged over (unpadded) frames (polyphonic music).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .config import TrainConfig
from .data import (
    Split,
    adding_problem,
    copy_memory,
    load_mnist,
    load_polyphonic,
    load_table,
    make_windows,
    mnist_transform,
    select_columns,
    standardize_stats,
    to_float,
)

__all__ = ["KINDS", "TaskData", "build_task", "evaluate_split", "loss_fn", "prepare_user_inputs"]

logger = logging.getLogger(__name__)

KINDS = ("regression_last", "class_last", "class_all", "multilabel_all")


@dataclass
class TaskData:
    """Everything the loop needs to know about a task.

    Attributes:
        kind: one of ``KINDS``.
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
        return TaskData("regression_last", 2, 1, train, val, baseline=1 / 6)
    if cfg.task == "copy_memory":
        train = Split(*copy_memory(cfg.n_train, cfg.seq_len, cfg.memory_length, rng_train))
        val = Split(*copy_memory(cfg.n_val, cfg.seq_len, cfg.memory_length, rng_val))
        # Chance: blanks are predictable, the digits are uniform over 8 values.
        base = cfg.memory_length * math.log(8) / (cfg.seq_len + 2 * cfg.memory_length)
        return TaskData("class_all", 1, 10, train, val, baseline=base)
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
        return TaskData(
            "class_last", 1, 10, train, test, test=test, stats=info, baseline=math.log(10)
        )
    if cfg.task in ("jsb", "nottingham"):
        splits = load_polyphonic(cfg.data_path)
        return TaskData(
            "multilabel_all", 88, 88, splits["train"], splits["val"], test=splits["test"]
        )
    if cfg.task == "forecast":
        return _forecast_task(cfg, stats)
    return _classify_task(cfg, stats)


def _forecast_task(cfg: TrainConfig, stats: dict[str, Any] | None) -> TaskData:
    header, table = load_table(cfg.data_path)
    target_idx = select_columns(header, cfg.target_columns, cfg.data_path, "target")
    if cfg.input_columns is None:
        input_idx = list(range(len(header)))
    else:
        input_idx = select_columns(header, cfg.input_columns, cfg.data_path, "input")
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
        if not path.is_file():
            raise FileNotFoundError(f"data file not found: {path}")
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise ValueError(
                    f"{path} must hold arrays 'x' (N, L[, C]) and 'y' (N,), has {list(z.keys())}"
                )
            x, y = np.asarray(z["x"], dtype=np.float32), np.asarray(z["y"])
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim != 3 or y.shape != (len(x),):
            raise ValueError(
                f"{path}: 'x' must be (N, L[, C]) and 'y' (N,), got {x.shape} and {y.shape}"
            )
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


def prepare_user_inputs(
    path: str | Path, stats: dict[str, Any], kind: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a file for ``predict`` with the columns and normalisation saved in ``stats``.

    Returns:
        Normalised inputs ``(N, L, C)`` (forecast: every window, stride 1) and extras
        (``rows``: each window's target row; ``targets``: actual values where available).
    """
    if kind == "class_last":
        path = Path(path)
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z:
                    raise ValueError(f"{path} must hold an array 'x' (N, L[, C])")
                x = np.asarray(z["x"], dtype=np.float32)
            x = x[..., None] if x.ndim == 2 else x
        else:
            header, table = load_table(path)
            cols = select_columns(header, stats["input_columns"], path, "input")
            x = to_float(table, cols, header, path)[..., None]
        return normalize_inputs(x, stats), {}
    header, table = load_table(path)
    input_idx = select_columns(header, stats["input_columns"], path, "input")
    inputs = normalize_inputs(to_float(table, input_idx, header, path), stats)
    seq_len = stats["seq_len"]
    if len(inputs) < seq_len:
        raise ValueError(
            f"{path} has {len(inputs)} rows, shorter than the model's window seq_len={seq_len}"
        )
    starts = np.arange(len(inputs) - seq_len + 1)
    x = np.stack([inputs[s : s + seq_len] for s in starts])
    extras: dict[str, Any] = {"rows": starts + seq_len - 1 + stats["horizon"]}
    try:
        target_idx = select_columns(header, stats["target_columns"], path, "target")
        extras["targets"] = to_float(table, target_idx, header, path)
    except ValueError:
        pass  # targets are optional at prediction time
    return x, extras


def head(kind: str, out: mx.array) -> mx.array:
    """The part of the model output that the loss sees (last step or every step)."""
    return out[:, -1, :] if kind in ("regression_last", "class_last") else out


def loss_fn(kind: str) -> Callable[..., mx.array]:
    """Scalar training loss ``f(model, x, y, mask)`` of a task kind."""

    def loss(model: nn.Module, x: mx.array, y: mx.array, mask: mx.array | None) -> mx.array:
        total, count = _loss_sum(kind, model(x), y, mask)
        return total / count

    return loss


def _loss_sum(
    kind: str, out: mx.array, y: mx.array, mask: mx.array | None
) -> tuple[mx.array, mx.array]:
    """Summed loss and the number of units it is averaged over."""
    if kind == "regression_last":
        err = (head(kind, out) - y).square().mean(axis=-1)
        return err.sum(), mx.array(err.size, dtype=mx.float32)
    if kind in ("class_last", "class_all"):
        ce = nn.losses.cross_entropy(head(kind, out), y, reduction="none")
        return ce.sum(), mx.array(ce.size, dtype=mx.float32)
    nll = nn.losses.binary_cross_entropy(out, y, with_logits=True, reduction="none").sum(axis=-1)
    if mask is None:
        return nll.sum(), mx.array(nll.size, dtype=mx.float32)
    return (nll * mask).sum(), mask.sum()


def evaluate_split(
    model: nn.Module, kind: str, batches: Any, max_batches: int | None = None
) -> dict[str, float]:
    """Loss (and accuracy for classification) of ``model`` over ``batches``, in eval mode.

    The model's previous mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    loss_total, count, correct, n_pred = 0.0, 0.0, 0.0, 0
    try:
        for i, (x, y, mask) in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            out = model(x)
            total, units = _loss_sum(kind, out, y, mask)
            if kind in ("class_last", "class_all"):
                hit = (head(kind, out).argmax(axis=-1) == y).sum()
                mx.eval(total, units, hit)
                correct += hit.item()
                n_pred += y.size
            else:
                mx.eval(total, units)
            loss_total += total.item()
            count += units.item()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluation got no batches (is the validation split empty?)")
    metrics = {"loss": loss_total / count}
    if n_pred:
        metrics["accuracy"] = correct / n_pred
    return metrics
