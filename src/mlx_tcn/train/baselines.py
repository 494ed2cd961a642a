"""The predictors a trained model has to beat, and how classification results are tabulated.

A forecast is only useful when it beats doing nothing clever: *persistence* (every future
step equals the last value seen) and, where the series has a season, *seasonal naive* (each
future step equals the latest value of the same phase of the season that was known when the
forecast was made: one season earlier, or a whole number of seasons for steps past one season). A classifier has to beat always
answering the most frequent training class. The functions here compute those predictions from
the raw (unnormalised) data, so the numbers do not depend on how the model's inputs are scaled;
:func:`forecast_baselines` then expresses them in the units of the model's validation loss.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "autocorrelation",
    "baseline_forecasts",
    "class_balance",
    "confusion_matrix",
    "detect_season",
    "forecast_baselines",
    "majority_class",
    "persistence",
    "seasonal_lag",
    "seasonal_naive",
    "step_baseline_forecasts",
]

#: A detected season needs at least this autocorrelation (after removing a linear trend):
#: on the bundled statsmodels/aeon series the real seasons score 0.55-0.92 (sunspots' 11-year
#: cycle the lowest) and series without one (Nile volume, US real GDP) stay below 0.15.
MIN_SEASON_ACF = 0.3


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation of a 1-D series at lags ``0..max_lag`` (lag 0 is 1).

    A constant series has no defined autocorrelation; it gets zeros past lag 0.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"autocorrelation needs a 1-D series, got shape {x.shape}")
    if not 0 <= max_lag < len(x):
        raise ValueError(f"max_lag must be in [0, {len(x) - 1}], got {max_lag}")
    x = x - x.mean()
    denom = float(x @ x)
    out = np.zeros(max_lag + 1)
    out[0] = 1.0
    if denom > 0:
        for k in range(1, max_lag + 1):
            out[k] = float(x[:-k] @ x[k:]) / denom
    return out


def detect_season(
    series: np.ndarray, max_season: int | None = None, min_acf: float = MIN_SEASON_ACF
) -> int | None:
    """The season length of a series, or None when it has none.

    The series (the training part: never look at validation data) is linearly detrended, so a
    trend does not swamp the correlations, and the season is the lag of the highest local
    maximum of its autocorrelation, among lags 2 to ``max_season`` (default: a third of the
    length, so that at least three seasons are seen), provided it reaches ``min_acf``.

    Args:
        series: ``(T,)``, or ``(T, C)``: then the first column decides.
        max_season: the longest season considered.
        min_acf: the autocorrelation a season must reach.
    """
    x = np.asarray(series, dtype=np.float64)
    x = x[:, 0] if x.ndim == 2 else x
    longest = len(x) // 3 if max_season is None else min(max_season, len(x) - 2)
    if longest < 3:
        return None
    t = np.arange(len(x))
    detrended = x - np.polyval(np.polyfit(t, x, 1), t)
    acf = autocorrelation(detrended, longest + 1)
    peaks = [k for k in range(2, longest + 1) if acf[k] > acf[k - 1] and acf[k] >= acf[k + 1]]
    best = max(peaks, key=lambda k: acf[k], default=None)
    return best if best is not None and acf[best] >= min_acf else None


def _check_rows(targets: np.ndarray, rows: np.ndarray, lag: int, what: str) -> None:
    """Refuse a forecast whose source rows (``rows - lag``) lie outside the series. The rows
    forecast may lie past its end: that is a forecast of the future (``predict``)."""
    if len(rows) and (rows.min() - lag < 0 or rows.max() - lag >= len(targets)):
        raise ValueError(
            f"{what} needs rows {lag} steps before each target inside the series; target rows "
            f"span {rows.min()}..{rows.max()} of a series of {len(targets)}"
        )


def persistence(targets: np.ndarray, rows: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast ``targets[rows]`` with the last value seen, ``targets[rows - horizon]``."""
    rows = np.asarray(rows)
    _check_rows(targets, rows, horizon, "persistence")
    return np.asarray(targets)[rows - horizon]


def seasonal_lag(horizon: int, season: int) -> int:
    """How far back seasonal naive looks for a forecast ``horizon`` steps ahead: the latest
    row of the same phase known when the forecast is made, ``season * ceil(horizon / season)``
    steps before the row forecast (one season, or two for steps past one season, ...)."""
    if season < 1:
        raise ValueError(f"season must be a positive number of steps, got {season}")
    return season * math.ceil(horizon / season)


def seasonal_naive(targets: np.ndarray, rows: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Forecast ``targets[rows]`` with the latest value of the same phase of the season that was
    known ``horizon`` steps earlier: ``targets[rows - seasonal_lag(horizon, season)]``."""
    rows = np.asarray(rows)
    lag = seasonal_lag(horizon, season)
    _check_rows(targets, rows, lag, f"seasonal naive (season {season})")
    return np.asarray(targets)[rows - lag]


def baseline_forecasts(
    targets: np.ndarray, rows: np.ndarray, horizon: int, season: int | None = None
) -> dict[str, np.ndarray]:
    """The baselines' forecasts of ``targets[rows]`` ``(N, n)``, in the data's units.

    Seasonal naive is left out when ``season`` is None or the series is too short before the
    first target row.
    """
    targets = np.asarray(targets, dtype=np.float64)
    rows = np.asarray(rows)
    out = {"persistence": persistence(targets, rows, horizon)}
    if season is not None and len(rows) and rows.min() >= seasonal_lag(horizon, season):
        out["seasonal_naive"] = seasonal_naive(targets, rows, horizon, season)
    return out


def step_baseline_forecasts(
    targets: np.ndarray, ends: np.ndarray, steps: np.ndarray, season: int | None = None
) -> dict[str, np.ndarray]:
    """The baselines' forecasts ``(N, S, n)`` of every step ``h`` in ``steps`` after each window
    that ends at row ``ends`` ``(N,)``, made at that row, in the data's units.

    Persistence repeats ``targets[end]``; seasonal naive takes, for each step, the value of
    :func:`seasonal_naive` with ``horizon = h``. Seasonal naive is left out when ``season`` is
    None or some window lacks the history it needs.
    """
    ends = np.asarray(ends)
    per_step = [
        baseline_forecasts(targets, ends + int(h), int(h), season) for h in np.asarray(steps)
    ]
    names = [k for k in per_step[0] if all(k in p for p in per_step)]
    return {k: np.stack([p[k] for p in per_step], axis=1) for k in names}


def forecast_baselines(
    targets: np.ndarray,
    rows: np.ndarray,
    horizon: int,
    scale: np.ndarray,
    season: int | None = None,
) -> dict[str, float]:
    """Validation MSE of the baseline forecasts, in the units of the model's loss.

    The model's loss is the MSE of targets divided by ``scale`` (per column), averaged over the
    columns; the baselines are scored the same way.

    Args:
        targets: the raw target series ``(T, n)`` (training and validation parts).
        rows: the target row of each validation window ``(N,)``.
        horizon: steps between a window's last row and its target.
        scale: ``(n,)`` per-column scale of the model's normalised targets.
        season: season length in steps.

    Returns:
        ``{"persistence": mse}``, plus ``"seasonal_naive"`` when it can be computed.
    """
    actual = np.asarray(targets, dtype=np.float64)[np.asarray(rows)]
    scale = np.asarray(scale, dtype=np.float64)
    return {
        name: float(np.mean(((pred - actual) / scale) ** 2))
        for name, pred in baseline_forecasts(targets, rows, horizon, season).items()
    }


def class_balance(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Count of each class ``0..num_classes-1`` in integer ``labels``."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


def majority_class(train_counts: np.ndarray, val_labels: np.ndarray) -> dict[str, float]:
    """How well knowing only the training class frequencies does on the validation labels.

    Args:
        train_counts: ``(num_classes,)`` training sequences per class (:func:`class_balance`).
        val_labels: integer labels to score.

    Returns:
        ``accuracy``: always answering the most frequent training class (ties: the lowest
        index); ``loss``: the cross-entropy of predicting the training frequencies (add-one
        smoothed, so an unseen class costs a finite amount), the units of the model's loss.
    """
    counts = np.asarray(train_counts, dtype=np.float64)
    val = np.asarray(val_labels, dtype=np.int64)
    prior = (counts + 1) / (counts.sum() + len(counts))
    return {
        "accuracy": float(np.mean(val == int(np.argmax(counts)))),
        "loss": float(-np.mean(np.log(prior[val]))),
    }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts: row = true class, column = predicted class."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {t.shape}, {p.shape}")
    both = np.concatenate([t.ravel(), p.ravel()])
    bad = both[(both < 0) | (both >= num_classes)]
    if bad.size:
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {sorted(set(bad.tolist()))}")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )
