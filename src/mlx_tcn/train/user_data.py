"""Users' own data as a task: a CSV/NumPy series cut into forecasting windows (each with its
targets at every step of the horizon, :mod:`.horizon`), or a table of
sequences to classify; normalised (forecasts: relative to each window by default) with
statistics of the training part only, which are saved with every checkpoint and reapplied at
prediction time; with the baselines a model has to beat.

(Over 300 lines: the forecast and classify tasks share reading, column selection, splits
and the statistics saved with checkpoints; split by task they would each repeat them.)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .baselines import class_balance, detect_season, majority_class, step_baseline_forecasts
from .config import TrainConfig
from .data import (
    SEQUENCE_SUFFIXES,
    Sequences,
    group_sequences,
    is_numeric_column,
    load_table,
    missing_cells,
    read_sequence_file,
    select_columns,
    series_columns,
    to_float,
)
from .horizon import by_step, forecast_steps, score_steps
from .split import Split, TaskData
from .window_norm import (
    anchor_forecasts,
    anchor_scales,
    change_scale,
    choose_anchor,
    make_windows,
    multi_step_windows,
    relative_windows,
    restore_forecast,
)

__all__ = [
    "classify_task",
    "forecast_anchor",
    "forecast_anchors",
    "denormalize_targets",
    "forecast_windows",
    "forecast_task",
    "make_windows",
    "normalize_inputs",
    "normalize_targets",
    "numeric_columns",
    "read_sequences",
    "real_steps",
    "sequences_to_classify",
    "standardize_stats",
    "stratified_split",
    "target_scale",
    "validation_stride",
]

logger = logging.getLogger(__name__)

#: The loss kind of a classification run's ``pool`` setting.
KIND_OF_POOL = {"last": "class_last", "mean": "class_mean"}
#: Most windows in a forecasting run's validation part. A longer part is thinned to every
#: k-th window: its neighbours overlap in all but one row, and a run evaluates it up to 40
#: times (on a series of 100,000 rows, 20,000 windows each time: more compute than the
#: training steps of the whole budget, :data:`.budget.COMPUTE_BUDGET`).
MAX_VAL_WINDOWS = 1000


def forecast_task(cfg: TrainConfig, stats: dict[str, Any] | None) -> TaskData:
    """Windows of ``cfg.seq_len`` steps, each with its targets at every step ``1..horizon``
    after it; the end of the series (``val_fraction``) is the validation part: the windows
    whose targets all lie in it.

    With ``normalize`` and ``relative`` (the defaults) the windows are relative to their last
    row (:mod:`.window_norm`); with ``normalize`` alone, standardised with the training part's
    mean and std. The baselines (persistence, seasonal naive) are in the loss's units. Given
    saved ``stats`` (a trained model is evaluated) every window of the file is the test split.
    """
    header, table = load_table(cfg.data_path)
    target_idx = select_columns(header, cfg.target_columns, cfg.data_path, "target")
    if cfg.input_columns is None and stats is None:
        input_idx = numeric_columns(header, table, cfg.data_path)
    else:
        wanted = cfg.input_columns if stats is None else stats["input_columns"]
        input_idx = select_columns(header, wanted, cfg.data_path, "input")
    inputs, targets = series_columns(table, [input_idx, target_idx], header, cfg.data_path)
    cut = int(round(len(inputs) * (1 - cfg.val_fraction)))
    if stats is None:
        _check_forecast_lengths(cfg, len(inputs), cut)
        stats = _forecast_stats(cfg, header, input_idx, target_idx, inputs[:cut], targets[:cut])
        test = None
    else:  # a trained model: all of the file is the test split, the others only if they fit
        try:
            test = _forecast_split(inputs, targets, stats, 1)
        except ValueError as err:  # too short for one window: say which file
            raise ValueError(f"{cfg.data_path}: {err}") from None
    first = cut - int(forecast_steps(stats)[0])  # the first window whose targets all follow it
    val_start = max(first - cfg.seq_len + 1, 0)
    train = _forecast_split(inputs, targets, stats, cfg.stride, stop=cut, empty_ok=test)
    val_stride = validation_stride(len(inputs) - val_start, cfg.seq_len, forecast_steps(stats))
    val = _forecast_split(inputs, targets, stats, val_stride, start=val_start, empty_ok=test)
    baselines = _baseline_losses(val, stats)
    n_out = len(target_idx) * len(forecast_steps(stats))
    return TaskData("regression_last", len(input_idx), n_out, train, val, test=test, stats=stats,
                    baseline=baselines.get("persistence"), baselines=baselines,
                    val_forecasts=val.forecasts, anchor=forecast_anchor(stats))  # fmt: skip


def forecast_anchor(stats: dict[str, Any]) -> str | None:
    """The baseline a window-relative run's forecasts are corrections of (its model's zero
    output): saved in ``stats``; persistence for runs saved before anchors could be chosen;
    None for a run that standardises globally (its zero output is the training mean)."""
    if not stats.get("relative"):
        return None
    return stats.get("anchor", "persistence")


def forecast_anchors(targets: np.ndarray, ends: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """``(N, S, C)``: the anchor's forecasts of every step after the windows ending at rows
    ``ends`` of ``targets`` (the raw target series), which a window-relative run's outputs
    are added to (:func:`denormalize_targets`)."""
    return anchor_forecasts(targets, ends, forecast_steps(stats), forecast_anchor(stats),
                            stats.get("season"))  # fmt: skip


def validation_stride(rows: int, seq_len: int, steps: Sequence[int]) -> int:
    """Step between the validation windows of ``rows`` rows: 1, or the fewest that keeps
    them to ``MAX_VAL_WINDOWS`` (every window needs ``seq_len`` rows and its targets)."""
    windows = rows - seq_len - int(max(steps)) + 1
    return max(1, math.ceil(windows / MAX_VAL_WINDOWS))


def _check_forecast_lengths(cfg: TrainConfig, rows: int, cut: int) -> None:
    """Refuse a series whose training part cannot hold one window and its targets, or whose
    validation part cannot hold the targets of one window (all ``horizon`` steps)."""
    need = cfg.seq_len + cfg.horizon
    if cut < need:
        raise ValueError(
            f"{cfg.data_path} has {rows} rows: with val_fraction={cfg.val_fraction} the "
            f"training part ({cut} rows) is shorter than seq_len + horizon = {need}"
        )
    if rows - cut < cfg.horizon:
        raise ValueError(
            f"{cfg.data_path} has {rows} rows: with val_fraction={cfg.val_fraction} the "
            f"validation part ({rows - cut} rows) is shorter than the horizon ({cfg.horizon} "
            "steps); raise val_fraction or lower horizon"
        )


def _forecast_split(
    inputs: np.ndarray,
    targets: np.ndarray,
    stats: dict[str, Any],
    stride: int,
    start: int = 0,
    stop: int | None = None,
    empty_ok: Split | None = None,
) -> Split:
    """The windows of rows ``start:stop``, with the rows where they end (in the whole file)
    and the baselines' forecasts of their targets (which may look back before ``start``).

    Rows too few for one window raise, unless ``empty_ok`` (a split of the same data) is
    given: then the split is empty, shaped like it (a short file given to ``evaluate``).
    """
    try:
        x, y, ends, ref = forecast_windows(inputs[start:stop], targets[start:stop], stats, stride)
    except ValueError:
        if empty_ok is None:
            raise
        return _empty_like(empty_ok)
    ends = ends + start
    found = step_baseline_forecasts(targets, ends, forecast_steps(stats), stats.get("season"))
    forecasts = {k: v.reshape(len(v), -1) for k, v in found.items()}
    return Split(x, y, reference=ref, rows=ends, forecasts=forecasts)


def _empty_like(split: Split) -> Split:
    """A split of no windows, with the shapes of ``split``'s."""
    ref = None if split.reference is None else split.reference[:0]
    return Split(split.x[:0], split.y[:0], reference=ref, rows=split.rows[:0],
                 forecasts={k: v[:0] for k, v in split.forecasts.items()})  # fmt: skip


def _baseline_losses(split: Split, stats: dict[str, Any]) -> dict[str, float]:
    """The baselines' losses on ``split`` in the units of the model's loss (each step's
    squared error divided by its squared scale, averaged over steps and columns); empty for
    an empty split."""
    if not len(split):
        return {}
    actual = denormalize_targets(split.y, stats, split.reference)
    scale = target_scale(stats, len(stats["target_columns"]))
    scores = score_steps(actual, actual, split.forecasts, scale, forecast_steps(stats))
    return {k: v for k, v in scores.overall("loss").items() if k != "model"}  # model: exact


def numeric_columns(header: list[str], table: np.ndarray, path: str | Path) -> list[int]:
    """The columns whose cells are all numbers or missing. A text column (a date, a name:
    no cell a number) is left out, and said so; a column with no value at all, or numbers
    with some other text among them (a typo), is an error naming it."""
    keep, skipped = [], []
    for i, name in enumerate(header):
        cells = table[:, i]
        if is_numeric_column(cells):
            keep.append(i)
            continue
        if cells.dtype != object:  # a NumPy column: numbers, none of them finite
            raise ValueError(f"column {name!r} of {path} has no finite value")
        missing = missing_cells(cells)
        if missing.all():
            raise ValueError(f"column {name!r} of {path} has no value at all")
        text = [j for j, c in enumerate(cells) if not missing[j] and not _is_number(c)]
        if not text:  # numbers, none finite
            raise ValueError(f"column {name!r} of {path} has no finite value")
        if len(text) + sum(missing) < len(cells):  # numbers and text: a typo, not a text column
            bad = text[0]
            raise ValueError(
                f"column {name!r} of {path} is not numeric: row {bad + 2} holds "
                f"{cells[bad]!r} among numbers (fix the cell, or name the inputs with "
                "--input-columns)"
            )
        skipped.append(name)
    if not keep:
        raise ValueError(f"{path} has no numeric column to use as input")
    if skipped:
        logger.info("%s: inputs are the numeric columns; left out %s", path, ", ".join(skipped))
    return keep


def _is_number(cell: object) -> bool:
    try:
        float(cell)
    except (TypeError, ValueError):
        return False
    return True


def _forecast_stats(
    cfg: TrainConfig,
    header: list[str],
    input_idx: list[int],
    target_idx: list[int],
    inputs: np.ndarray,
    targets: np.ndarray,
) -> dict[str, Any]:
    """What a forecasting run saves with its checkpoints, from the training part only."""
    steps = list(range(1, cfg.horizon + 1))
    stats: dict[str, Any] = {
        "input_columns": [header[i] for i in input_idx],
        "target_columns": [header[i] for i in target_idx],
        "seq_len": cfg.seq_len,
        "horizon": cfg.horizon,
        "steps": steps,
        "season": cfg.season if cfg.season is not None else detect_season(targets),
    }
    if cfg.normalize and cfg.relative:
        anchor = _choose_anchor(cfg, targets, steps, stats["season"])
        stats.update(relative=True, anchor=anchor, x_scale=change_scale(inputs, 1).tolist(),
                     y_scale=anchor_scales(targets, steps, anchor, stats["season"]).tolist())  # fmt: skip
    elif cfg.normalize:
        mx_, sx = standardize_stats(inputs)
        my, sy = standardize_stats(targets)
        stats.update(x_mean=mx_.tolist(), x_std=sx.tolist(), y_mean=my.tolist(), y_std=sy.tolist())
    return stats


def _choose_anchor(
    cfg: TrainConfig, targets: np.ndarray, steps: list[int], season: int | None
) -> str:
    """``cfg.anchor``, or (``auto``) the one :func:`.window_norm.choose_anchor` picks on the
    training part's ``targets``; a seasonal anchor needs a season that fits in the window."""
    if cfg.anchor == "auto":
        return choose_anchor(targets, cfg.seq_len, steps, season)
    if cfg.anchor == "seasonal_naive" and (season is None or season > cfg.seq_len):
        found = "no season was found" if season is None else f"the season is {season} steps"
        raise ValueError(
            f"anchor='seasonal_naive' needs a season of at most seq_len={cfg.seq_len} steps "
            f"(the window must hold the values it repeats); {found} (give one with --season)"
        )
    return cfg.anchor


def forecast_windows(
    inputs: np.ndarray, targets: np.ndarray, stats: dict[str, Any], stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Raw ``inputs``/``targets`` ``(T, C)`` cut into normalised windows as ``stats`` says.

    Returns:
        ``x`` ``(N, L, C_in)``; ``y`` ``(N, S * C_out)``: the targets at every step, flat and
        step-major (:func:`.horizon.by_step`); the rows where the windows end; and the
        reference that :func:`denormalize_targets` needs for window-relative runs (the
        anchor's forecasts ``(N, S, C_out)``, :func:`forecast_anchors`; else None).
    """
    seq_len, steps = stats["seq_len"], forecast_steps(stats)
    if stats.get("relative"):
        x, y, ends, ref = relative_windows(inputs, targets, seq_len, steps, stride,
                                           np.asarray(stats["x_scale"]),
                                           target_scale(stats, targets.shape[1]),
                                           forecast_anchor(stats), stats.get("season"))  # fmt: skip
    else:
        x, y, ends = multi_step_windows(normalize_inputs(inputs, stats),
                                        normalize_targets(targets, stats), seq_len, steps, stride)  # fmt: skip
        ref = None
    return x, y.reshape(len(y), -1), ends, ref


def target_scale(stats: dict[str, Any], n_targets: int) -> np.ndarray:
    """``(S, n_targets)``: the divisor of each step's and target column's normalised values in
    the model's loss (1 when the run did not normalise)."""
    n_steps = len(forecast_steps(stats))
    for key in ("y_scale", "y_std"):
        if key in stats:
            scale = np.asarray(stats[key], dtype=np.float64).reshape(-1, n_targets)
            return np.broadcast_to(scale, (n_steps, n_targets)).copy()
    return np.ones((n_steps, n_targets))


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices with ``val_fraction`` of every class in validation.

    A random split of a small data set can leave a class out of the validation part or make
    it most of it, and the best checkpoint is chosen on that part (ArrowHead, 36 series in
    three classes: test accuracy 0.44-0.73 over three seeds with a random split). Each
    class keeps at least one sequence for training; at least one goes to validation.
    """
    rng = np.random.default_rng([seed, 3])
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = min(int(round(len(idx) * val_fraction)), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    train_idx, val_idx = np.concatenate(train), np.concatenate(val)
    if not len(val_idx):  # every class too small to give one: take one from the largest
        largest = max(train, key=len)
        val_idx, train_idx = largest[:1], train_idx[train_idx != largest[0]]
    return rng.permutation(train_idx), rng.permutation(val_idx)


def _classify_table(cfg: TrainConfig) -> tuple[Sequences, list[str] | None]:
    """The sequences (``x`` ``(N, L, C)``, raw labels, lengths) and the input column names.

    CSV, wide layout: one row per sequence, one column per step (one channel). CSV, long
    layout (``sequence_column`` given): one row per step, a column naming the sequence, one
    column per channel. ``.npz`` (arrays ``x`` and ``y``) or UCR/UEA ``.ts``: no column
    names; their sequences may differ in length (:func:`.data.read_sequence_file`).
    """
    path = Path(cfg.data_path)
    if path.suffix.lower() in SEQUENCE_SUFFIXES:
        return read_sequence_file(path, labels=True), None
    header, table = load_table(path)
    if cfg.target_columns is None or len(cfg.target_columns) != 1:
        raise ValueError(
            f"classify from {path} needs exactly one label column (target_columns, "
            f"--target-columns NAME when training)"
        )
    (label_idx,) = select_columns(header, cfg.target_columns, path, "label")
    seq_idx = _sequence_column(header, cfg.sequence_column, path)
    if cfg.input_columns is None:
        input_idx = [i for i in range(len(header)) if i not in (label_idx, seq_idx)]
    else:
        input_idx = select_columns(header, cfg.input_columns, path, "input")
    names = [header[i] for i in input_idx]
    if seq_idx is not None:
        x, labels = group_sequences(table, header, seq_idx, input_idx, label_idx, path)
        return Sequences(x, labels, None), names
    x = to_float(table, input_idx, header, path)[..., None]
    return Sequences(x, table[:, label_idx], None), names


def _sequence_column(header: list[str], name: str | None, path: str | Path) -> int | None:
    """Index of the long layout's sequence column (None: the wide layout)."""
    if name is None:
        return None
    (idx,) = select_columns(header, [name], path, "sequence")
    return idx


def sequences_to_classify(path: str | Path, stats: dict[str, Any]) -> Sequences:
    """The sequences of a file to classify (and their lengths, from an ``.npz`` or ``.ts``
    file), in the layout and columns the run was trained on; no labels."""
    path = Path(path)
    if path.suffix.lower() in SEQUENCE_SUFFIXES:
        return read_sequence_file(path, labels=False)
    header, table = load_table(path)
    cols = select_columns(header, stats["input_columns"], path, "input")
    seq_idx = _sequence_column(header, stats.get("sequence_column"), path)
    if seq_idx is None:
        return Sequences(to_float(table, cols, header, path)[..., None], None, None)
    return Sequences(group_sequences(table, header, seq_idx, cols, None, path)[0], None, None)


def read_sequences(path: str | Path, stats: dict[str, Any]) -> np.ndarray:
    """The sequences of a file to classify, in the layout and columns the run was trained on
    (shorter ones padded with their last row: :func:`sequences_to_classify` says where)."""
    return sequences_to_classify(path, stats).x


def classify_task(cfg: TrainConfig, stats: dict[str, Any] | None) -> TaskData:
    """One label per sequence; a seeded random ``val_fraction`` of each class is held out.

    Sequences of different lengths keep their lengths in every split (their batches carry
    a mask of the real steps, and the class is pooled over those alone); the input
    normalisation is fitted on the real steps only.
    """
    (x, labels, lengths), input_names = _classify_table(cfg)
    trained = stats is not None
    if stats is None:
        classes = sorted({str(v) for v in labels.tolist()})
        if len(classes) < 2:
            raise ValueError(f"{cfg.data_path}: need at least 2 classes, found {classes}")
        stats = {"classes": classes, "seq_len": int(x.shape[1]), "input_columns": input_names,
                 "sequence_column": cfg.sequence_column}  # fmt: skip
    lookup = {c: i for i, c in enumerate(stats["classes"])}
    unknown = {str(v) for v in labels.tolist()} - set(lookup)
    if unknown:
        raise ValueError(f"{cfg.data_path}: labels {sorted(unknown)} were not seen in training")
    y = np.array([lookup[str(v)] for v in labels.tolist()], dtype=np.int32)
    tr, va = _classify_split(cfg, y)
    if len(tr) < 1:
        raise ValueError(
            f"{cfg.data_path}: {len(x)} sequences are too few to split off a validation set"
        )
    n_classes = len(stats["classes"])
    # An ensemble's members share one normalisation (their data together is the whole file),
    # so that they can be fed the same inputs.
    fitted = tr if cfg.folds == 1 else np.arange(len(y))
    if "class_counts" not in stats:
        stats["class_counts"] = class_balance(y[fitted], n_classes).tolist()
    if cfg.normalize and "x_mean" not in stats:
        m, s = standardize_stats(real_steps(x, lengths, fitted))
        stats.update(x_mean=m.tolist(), x_std=s.tolist())
    x = normalize_inputs(x, stats)

    def part(index: np.ndarray) -> Split:
        return Split(x[index], y[index], lengths=None if lengths is None else lengths[index])

    train, val = part(tr), part(va)
    # Given saved statistics the file is being evaluated: all of it is the test split.
    test = Split(x, y, lengths=lengths) if trained else None
    majority = majority_class(stats["class_counts"], y[va])
    return TaskData(KIND_OF_POOL[cfg.pool], x.shape[-1], n_classes, train, val, test=test,
                    stats=stats, baseline=majority["loss"],
                    baselines={"majority_class": majority["loss"],
                               "majority_class_accuracy": majority["accuracy"]})  # fmt: skip


def real_steps(x: np.ndarray, lengths: np.ndarray | None, index: np.ndarray) -> np.ndarray:
    """The steps of sequences ``index`` of ``x`` that are data, not padding: ``x[index]``
    ``(n, L, C)`` when all are (``lengths`` None), else their real rows ``(steps, C)``."""
    if lengths is None:
        return x[index]
    return np.concatenate([x[i, : lengths[i]] for i in index])


def _classify_split(cfg: TrainConfig, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices: ``val_fraction`` of each class, or with ``folds`` > 1
    the ensemble member's fold (:func:`.ensemble.stratified_folds`)."""
    if cfg.folds == 1:
        return stratified_split(y, cfg.val_fraction, cfg.seed)
    if cfg.folds > len(y):  # a fold without a sequence would validate on nothing
        raise ValueError(
            f"folds={cfg.folds} is more than the {len(y)} sequences of {cfg.data_path}: every "
            "fold needs one to validate on"
        )
    from .ensemble import stratified_folds

    return stratified_folds(y, cfg.folds, cfg.seed, cfg.fold)


# --------------------------------------------------------------------------- windows, statistics


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


def denormalize_targets(
    y: np.ndarray, stats: dict[str, Any], reference: np.ndarray | None = None
) -> np.ndarray:
    """Model outputs (or normalised targets) ``(N, S * C)`` back in the data's units.

    A window-relative run needs ``reference``, the anchor's forecasts of each window's steps
    (:func:`forecast_anchors`; from :func:`forecast_windows`); a standardised one undoes the
    standardisation.
    """
    if stats.get("relative"):
        if reference is None:
            raise ValueError("window-relative forecasts need each window's anchor forecasts")
        steps = by_step(y, len(forecast_steps(stats)))
        scale = target_scale(stats, steps.shape[-1])
        return restore_forecast(steps, reference, scale).reshape(np.shape(y))
    if "y_mean" not in stats:
        return y
    steps = np.asarray(y).reshape(*np.shape(y)[:-1], -1, len(stats["y_mean"]))
    return (steps * np.asarray(stats["y_std"]) + np.asarray(stats["y_mean"])).reshape(np.shape(y))
