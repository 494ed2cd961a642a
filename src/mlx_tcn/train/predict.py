"""Using a trained checkpoint: load it with its task, evaluate a split, predict a split or a
user's file (with the columns and normalisation saved in training), write a CSV and a plot."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .baselines import class_balance, confusion_matrix, majority_class
from .checkpoint import Checkpoint, load_checkpoint
from .config import resolve_config
from .data import load_table, select_columns, series_columns
from .ensemble import load_ensemble
from .horizon import StepScores, by_step, forecast_steps, score_steps
from .losses import SEQUENCE_CLASS_KINDS, evaluate_split, model_head
from .split import Split, iterate_batches
from .tasks import TaskData, build_task
from .user_data import (
    KIND_OF_POOL,
    denormalize_targets,
    forecast_anchors,
    normalize_inputs,
    sequences_to_classify,
    target_scale,
)
from .window_norm import make_windows, relative_inputs

__all__ = [
    "class_report",
    "evaluate_checkpoint",
    "load_for_inference",
    "predict",
    "plot_forecasts",
    "predict_split",
    "predict_table",
    "prepare_user_inputs",
    "split_scores",
    "write_predictions",
]


def load_for_inference(
    path: str | Path, which: str = "best", data_path: str | None = None, members: bool = True
) -> tuple[Checkpoint, TaskData]:
    """A checkpoint and its task, normalised with the statistics saved in training.

    Args:
        path: run folder or checkpoint folder.
        which: ``"best"`` or ``"latest"`` checkpoint of a run (and of each ensemble member).
        data_path: other data of the same layout (default: the data used in training).
        members: for an ensemble's run (classify, ``folds`` > 1), make ``ckpt.model`` the
            :class:`.ensemble.Ensemble` of all its members' checkpoints; False: the run's own
            model (member 0) alone.
    """
    ckpt = load_checkpoint(path, which)
    cfg = ckpt.cfg
    if data_path:
        cfg = resolve_config({**cfg.to_dict(), "data_path": data_path, "preset": "none"})
    task = build_task(cfg, stats=ckpt.stats)
    ckpt.check_fits(cfg, task.num_inputs, task.num_outputs)
    if members:
        _attach_members(ckpt, cfg, which, task.kind)
    return ckpt, task


def load_for_input(
    path: str | Path, which: str = "best", members: bool = True
) -> tuple[Checkpoint, str]:
    """A forecast or classify checkpoint and its task's kind, for predictions on a new file
    (:func:`predict_input`): the statistics saved in training are all it needs, so the
    training data is not read (it may have moved, or be relative to another folder)."""
    ckpt = load_checkpoint(path, which)
    cfg = ckpt.cfg
    if cfg.task not in ("forecast", "classify"):
        raise ValueError(
            f"--input works for forecast/classify runs; {cfg.task!r} predicts its validation split"
        )
    kind = "regression_last" if cfg.task == "forecast" else KIND_OF_POOL[cfg.pool]
    have = ckpt.model.config  # the data's shape is the model's: check the rest agrees
    ckpt.check_fits(cfg, have["num_inputs"], have["output_projection"])
    if members:
        _attach_members(ckpt, cfg, which, kind)
    return ckpt, kind


def _attach_members(ckpt: Checkpoint, cfg: Any, which: str, kind: str) -> None:
    """For an ensemble's run (classify, ``folds`` > 1), make ``ckpt.model`` the ensemble."""
    if cfg.folds > 1 and cfg.fold == 0:
        run_dir = ckpt.path.parent.parent
        ckpt.model = load_ensemble(run_dir, cfg.folds, which, ckpt.model, kind)


def predict_input(
    ckpt: Checkpoint, kind: str, input_path: str, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """:func:`predict_table` for a new file, from :func:`load_for_input`'s checkpoint."""
    ckpt.model.eval()
    return _predict_file(ckpt, kind, input_path, batch_size)


def _split_of(ckpt: Checkpoint, task: TaskData, split: str) -> Any:
    """``task``'s ``split``, after checking the arguments of the functions taking them."""
    if not isinstance(ckpt, Checkpoint):
        raise TypeError(f"ckpt must be a Checkpoint (load_checkpoint), got {type(ckpt).__name__}")
    if not isinstance(task, TaskData):
        raise TypeError(f"task must be a TaskData (load_for_inference), got {type(task).__name__}")
    if split not in ("val", "train", "test"):
        raise ValueError(f"split must be 'val', 'train' or 'test', got {split!r}")
    return {"val": task.val, "train": task.train, "test": task.test}[split]


def evaluate_checkpoint(
    ckpt: Checkpoint, task: TaskData, split: str = "val", batch_size: int = 256
) -> tuple[dict[str, float], int]:
    """Loss (and accuracy) of the checkpoint's model on ``split``, and the split's size."""
    data = _split_of(ckpt, task, split)
    if data is None:
        raise ValueError(f"task {ckpt.cfg.task!r} has no {split} split")
    batches = iterate_batches(data, batch_size, shuffle=False, drop_last=False)
    return evaluate_split(ckpt.model, task.kind, batches), len(data)


def class_report(
    ckpt: Checkpoint, task: TaskData, split: str = "val", batch_size: int = 256
) -> dict[str, Any] | None:
    """Confusion matrix (rows: true class, columns: predicted) of a sequence-classification
    checkpoint on ``split``, and the accuracy of always answering the majority training
    class; None for other tasks."""
    data = _split_of(ckpt, task, split)
    if task.kind not in SEQUENCE_CLASS_KINDS:
        return None
    logits, y = predict_split(ckpt.model, task, data, batch_size)
    n = task.num_outputs
    counts = ckpt.stats.get("class_counts") or class_balance(task.train.y, n).tolist()
    return {
        "confusion": confusion_matrix(y, logits.argmax(axis=-1), n),
        "majority_accuracy": majority_class(counts, y)["accuracy"],
    }


def predict_split(
    model: Any, task: TaskData, split: Split, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs (the loss's view: last step or every step) and targets for a split, in
    the data's units (a forecasting run's standardisation undone)."""
    model.eval()
    preds, targets = _outputs(model, task.kind, split, batch_size)
    unscale = partial(denormalize_targets, stats=task.stats, reference=split.reference)
    return unscale(preds), unscale(targets)


def _outputs(model: Any, kind: str, split: Split, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The loss's view of the model's output (:func:`.losses.model_head`) for every sample
    of ``split``, and its targets as batched, in batches with their masks (sequences of
    different lengths are pooled over their real steps)."""
    preds, targets = [], []
    for x, y, mask in iterate_batches(split, batch_size, shuffle=False, drop_last=False):
        preds.append(np.array(model_head(model, kind, x, mask)))
        targets.append(np.array(y))
    return np.concatenate(preds), np.concatenate(targets)


def split_scores(model: Any, task: TaskData, split: Split, batch_size: int = 256) -> StepScores:
    """A forecasting model's and the baselines' errors on ``split``, step by step."""
    pred, target = predict_split(model, task, split, batch_size)
    steps = forecast_steps(task.stats)
    scale = target_scale(task.stats, len(task.stats["target_columns"]))
    return score_steps(pred, target, split.forecasts, scale, steps)


def prepare_user_inputs(
    path: str | Path, stats: dict[str, Any], kind: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a file for ``predict`` with the columns and normalisation saved in ``stats``.

    Returns:
        Normalised inputs ``(N, L, C)`` (forecast: every window, stride 1, the last one ending
        at the file's last row, so its forecast continues the series) and extras (``ends``:
        the row where each window ends; ``rows``: ``(N, S)`` the row of each forecast step;
        ``targets``: the file's target columns where it has them; ``reference``: what turns
        window-relative outputs back into the data's units, the anchor's forecasts from the
        file's own target values; classification: ``lengths``, each sequence's real steps
        when they differ, else None).
    """
    if kind in SEQUENCE_CLASS_KINDS:
        found = sequences_to_classify(path, stats)
        return normalize_inputs(found.x, stats), {"lengths": found.lengths}
    header, table = load_table(path)
    input_idx = select_columns(header, stats["input_columns"], path, "input")
    target_idx = _target_columns(path, header, stats)
    groups = [input_idx] if target_idx is None else [input_idx, target_idx]
    raw, *found = series_columns(table, groups, header, path)
    targets = found[0] if found else None
    seq_len = stats["seq_len"]
    if len(raw) < seq_len:
        raise ValueError(
            f"{path} has {len(raw)} rows, shorter than the model's window seq_len={seq_len}"
        )
    if stats.get("relative"):
        windows, _, ends = make_windows(raw, raw, seq_len, horizon=0)
        x = relative_inputs(windows, np.asarray(stats["x_scale"]))
    else:
        x, _, ends = make_windows(normalize_inputs(raw, stats), raw, seq_len, horizon=0)
    extras: dict[str, Any] = {"ends": ends, "rows": ends[:, None] + forecast_steps(stats)}
    if targets is not None:
        extras["targets"] = targets
        if stats.get("relative"):
            extras["reference"] = forecast_anchors(targets, ends, stats)
    return x, extras


def _target_columns(path: str | Path, header: list[str], stats: dict[str, Any]) -> list[int] | None:
    """The target columns of a file given to ``predict``: optional, except that a
    window-relative forecast is a correction of a baseline's forecast from the targets' own
    values (the last one, or the last season's), so it needs them."""
    try:
        return select_columns(header, stats["target_columns"], path, "target")
    except ValueError:
        if stats.get("relative"):
            raise ValueError(
                f"{path} lacks the target column(s) {', '.join(stats['target_columns'])}: "
                "this model forecasts a correction of their last values (or last season's), "
                "so it needs them"
            ) from None
        return None


def _predict_file(
    ckpt: Checkpoint, kind: str, path: str, batch_size: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Last-step outputs for every sequence (window) of a user's file, its targets when the
    file holds the target columns (NaN where a forecast step lies past the end) and, for a
    forecast, the row where each window ends."""
    if ckpt.cfg.task not in ("forecast", "classify"):
        raise ValueError(
            f"--input works for forecast/classify runs; {ckpt.cfg.task!r} predicts its validation split"
        )
    model, stats = ckpt.model, ckpt.stats
    x, extras = prepare_user_inputs(path, stats, kind)
    # The last step of a shorter sequence sees less than in training; a mean over the steps
    # (pool="mean") is as defined for any length, as in evaluate (archive sets vary in length).
    need = min(model.receptive_field, stats["seq_len"])
    if kind == "class_last" and x.shape[1] < need:
        raise ValueError(
            f"sequences in {path} have {x.shape[1]} steps, fewer than the model needs ({need})"
        )
    unlabelled = Split(x, np.zeros(len(x), dtype=np.float32), lengths=extras.get("lengths"))
    pred = _outputs(model, kind, unlabelled, batch_size)[0]
    if kind != "regression_last":
        return pred, None, None
    pred = denormalize_targets(pred, stats, extras.get("reference"))
    if "targets" not in extras:
        return pred, None, extras["ends"]
    rows, known = extras["rows"], extras["targets"]
    targets = np.full((*rows.shape, known.shape[1]), np.nan, dtype=np.float32)
    inside = rows < len(known)
    targets[inside] = known[rows[inside]]
    return pred, targets.reshape(len(rows), -1), extras["ends"]


def predict_table(
    ckpt: Checkpoint, task: TaskData, input_path: str | None = None, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """:func:`predict`, and for a forecast the row where each window ends (in ``input_path``,
    or in the training data for the validation split; None for other tasks)."""
    ckpt.model.eval()
    if not input_path:
        pred, targets = predict_split(ckpt.model, task, task.val, batch_size)
        return pred, targets, task.val.rows
    return _predict_file(ckpt, task.kind, input_path, batch_size)


def predict(
    ckpt: Checkpoint, task: TaskData, input_path: str | None = None, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions of the checkpoint's model for ``input_path`` (default: the validation
    split) and the targets where known; forecasts in the data's units, ``(N, S * C)`` for
    ``S`` steps of ``C`` target columns (step-major, :func:`.horizon.by_step`)."""
    return predict_table(ckpt, task, input_path, batch_size)[:2]


def write_predictions(
    out: Path,
    kind: str,
    pred: np.ndarray,
    targets: np.ndarray | None,
    stats: dict[str, Any],
    ends: np.ndarray | None = None,
) -> None:
    """Write predictions as a CSV: for a forecast (``ends`` given) one row per window and step
    (:func:`_write_forecasts`); else one row per sequence (regression outputs with their
    targets, or a class with its probability), or per sequence and step for per-step tasks."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        if kind == "regression_last" and ends is not None:
            _write_forecasts(w, pred, targets, stats, ends)
        elif kind == "regression_last":
            names = stats.get("target_columns") or [f"y{i}" for i in range(pred.shape[1])]
            has_t = targets is not None
            w.writerow([f"pred_{n}" for n in names] + ([f"target_{n}" for n in names] * has_t))
            for i in range(len(pred)):
                row = pred[i] if targets is None else np.concatenate([pred[i], targets[i]])
                w.writerow([f"{v:.6g}" for v in row])
        elif kind in SEQUENCE_CLASS_KINDS:
            classes = stats.get("classes") or [str(i) for i in range(pred.shape[-1])]
            probs = np.exp(pred - pred.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            w.writerow(["prediction", "probability"] + (["target"] if targets is not None else []))
            for i in range(len(pred)):
                k = int(pred[i].argmax())
                row = [classes[k], f"{probs[i, k]:.4f}"]
                if targets is not None:
                    row.append(classes[int(targets[i])])
                w.writerow(row)
        else:  # per-step outputs: one row per sequence and step
            w.writerow(["sequence", "step", "prediction"])
            for i in range(len(pred)):
                labels = (
                    pred[i].argmax(axis=-1)
                    if kind == "class_all"
                    else (pred[i] > 0).astype(int).sum(axis=-1)
                )
                for t, v in enumerate(labels):
                    w.writerow([i, t, int(v)])


def _write_forecasts(
    w: Any, pred: np.ndarray, targets: np.ndarray | None, stats: dict[str, Any], ends: np.ndarray
) -> None:
    """One CSV row per window and forecast step: ``window_end`` (the row of the window's last
    step, 0-based data rows), ``step`` (steps ahead), ``row`` (the row forecast, ``window_end +
    step``: at or past the file's length it continues the series), then ``pred_<column>`` and,
    when known, ``target_<column>`` (``nan`` past the end of the data)."""
    steps = forecast_steps(stats)
    names = stats["target_columns"]
    p = by_step(pred, len(steps))
    t = None if targets is None else by_step(targets, len(steps))
    w.writerow(["window_end", "step", "row", *(f"pred_{n}" for n in names),
                *(f"target_{n}" for n in names if t is not None)])  # fmt: skip
    for i, end in enumerate(np.asarray(ends)):
        for j, h in enumerate(steps):
            values = p[i, j] if t is None else np.concatenate([p[i, j], t[i, j]])
            w.writerow([int(end), int(h), int(end + h), *(f"{v:.6g}" for v in values)])


def plot_forecasts(
    out: str | Path,
    kind: str,
    pred: np.ndarray,
    targets: np.ndarray | None,
    stats: dict,
    ends: np.ndarray | None = None,
) -> Path:
    """PNG of forecasts against targets (NaN where unknown), for regression/forecasting runs:
    a forecast's first and last steps, at the rows they forecast (when ``ends`` is given)."""
    if kind != "regression_last":
        raise ValueError("--plot draws forecasts; this run is not a regression/forecasting run")
    from .visualize import plot_forecast_steps, plot_predictions

    t = targets if targets is not None else np.full_like(pred, np.nan)
    if ends is None or "target_columns" not in stats:
        return plot_predictions(t, pred, out, stats.get("target_columns"))
    return plot_forecast_steps(t, pred, out, stats["target_columns"], forecast_steps(stats),
                               ends=ends)  # fmt: skip
