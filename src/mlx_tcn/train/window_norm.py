"""Forecasting relative to each window: the model sees changes, and predicts a correction of
a baseline's forecast (the *anchor*), not levels.

Standardising a series with the mean and standard deviation of its training part fails as
soon as the series leaves the training range (a trend): a network of ReLUs does not
extrapolate, so its forecasts fall further behind as the level rises (weekly CO2: validation
MSE 3.0 ppm^2 at best, against 0.26 for persistence). Here every window is expressed relative
to its own last row, and each target step as its difference from the anchor's forecast:

    x'[t] = (x[t] - x[last]) / s_x          y'[h] = (y[last + h] - anchor[h]) / s_y[h]

with ``s_x`` the standard deviation of one-step changes of the inputs over the training part.
The anchor is persistence (``anchor[h] = y[last]``, ``s_y[h]`` the standard deviation of
``h``-step changes) or seasonal naive (the latest value of the same phase known at ``last``,
:func:`.baselines.seasonal_lag` rows before ``last + h``; ``s_y[h]`` that of changes over so
many rows), chosen on the training part (:func:`choose_anchor`). One scale per step: a change
over 12 steps is typically larger than one over a single step, and with one scale for all
steps the far steps would dominate the loss. So every step is in units of its anchor's typical
error, a model that outputs 0 *is* the anchor's forecast (the forecasting head starts at zero,
:func:`.model.build_model`), and a validation loss below that baseline's means the model adds
something. Runs saved before anchors have no ``"anchor"`` and are persistence-anchored.
(Before multi-step horizons a run predicted the single step ``horizon`` ahead and scaled its
inputs by ``horizon``-step changes; such runs keep their saved scales.)
Of four normalisations tried on statsmodels/aeon series (global standardisation, this one,
window-relative scaled by the level's spread, per-window standardisation as in RevIN), this one
had the lowest validation MSE on weekly CO2 (horizons 1 and 13) and electrical equipment
orders, and was 7-25% behind per-window standardisation on airline passengers, US real GDP and
sunspots. It was kept because a zero output is a baseline's forecast and the loss has one
unit for the whole series, in which the baselines are scored too (docs/own_data.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .baselines import seasonal_lag, step_baseline_forecasts

__all__ = [
    "ANCHORS",
    "SEASONAL_ANCHOR_MAX_SEASONS",
    "SEASONAL_ANCHOR_SHARE",
    "anchor_forecasts",
    "anchor_lags",
    "anchor_scales",
    "change_scale",
    "choose_anchor",
    "make_windows",
    "multi_step_windows",
    "relative_inputs",
    "relative_windows",
    "restore_forecast",
    "step_scales",
]

#: What each target step of a window-relative forecast is relative to: the baseline (named as
#: in :mod:`.baselines`) that a model output of zero forecasts.
ANCHORS = ("persistence", "seasonal_naive")
#: Seasonal naive becomes the anchor only when its squared error on the training part is at
#: most this share of persistence's: on a near tie persistence (which assumes no season) is
#: kept. US real interest rates (statsmodels' macrodata) have a detected "season" of 2
#: quarters, 0.5% better than persistence in training, 28% worse on validation; the seasonal
#: anchor cost the model 9% (mean of 5 seeds).
SEASONAL_ANCHOR_SHARE = 0.9
#: ... and only when the training part holds at most this many seasons. A model anchored on
#: persistence learns a season from the data when it sees many of them, and learns more besides;
#: anchored on seasonal naive it starts at it but is left with targets that are mostly noise.
#: On the demand series of examples/forecast_csv.py (67 seasons of 24 rows in training) the
#: seasonal anchor kept the model at seasonal naive (validation MSE 2.81, seasonal naive 2.80)
#: where the persistence anchor reached 1.74. With few seasons a persistence-anchored model
#: cannot learn the pattern as precisely as seasonal naive repeats it: quarterly inflation
#: (E6.csv's Dp, 21 seasons) stayed at 1.9-2.6 times seasonal naive's loss over 5 seeds
#: (0.97 with the seasonal anchor), and airline passengers 12 months ahead (10 seasons),
#: electrical equipment orders (17) and shampoo sales (7) scored 15-45% lower with it.
#: (Both limits were set after seeing these runs: docs/own_data.md.)
SEASONAL_ANCHOR_MAX_SEASONS = 40


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


def change_scale(series: np.ndarray, horizon: int) -> np.ndarray:
    """Per-column standard deviation of ``horizon``-step changes of ``series`` ``(T, C)``.

    A column that never changes gets 1 (so it is left unscaled rather than divided by 0).
    """
    series = np.asarray(series, dtype=np.float64)
    if series.ndim != 2:
        raise ValueError(f"series must be (rows, columns), got shape {series.shape}")
    if not 1 <= horizon < len(series):
        raise ValueError(
            f"horizon must be in [1, {len(series) - 1}] for {len(series)} rows, got {horizon}"
        )
    std = (series[horizon:] - series[:-horizon]).std(axis=0)
    std[~(std > 0)] = 1.0
    return std.astype(np.float32)


def multi_step_windows(
    inputs: np.ndarray, targets: np.ndarray, seq_len: int, steps: Sequence[int], stride: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a series into windows, each with its targets ``steps`` rows after its last row.

    Window ``i`` holds ``inputs[s : s + seq_len]`` (``s = i * stride``), ends at row ``e = s +
    seq_len - 1`` and its targets are ``targets[e + h]`` for every ``h`` in ``steps``; only
    windows whose every target lies inside the series are cut.

    Returns:
        ``x`` ``(N, seq_len, C_in)``, ``y`` ``(N, len(steps), C_out)`` and the rows where the
        windows end ``(N,)``.
    """
    steps = _check_steps(steps)
    x, _, rows = make_windows(inputs, targets, seq_len, steps[-1], stride)
    ends = rows - steps[-1]
    return x, np.asarray(targets)[ends[:, None] + steps[None, :]], ends


def _check_steps(steps: Sequence[int]) -> np.ndarray:
    """``steps`` as an increasing array of positive integers (or a ValueError naming them)."""
    out = np.asarray(steps, dtype=np.int64).reshape(-1)
    if not len(out) or out.min() < 1 or np.any(np.diff(out) <= 0):
        raise ValueError(f"steps must be increasing positive integers, got {list(steps)}")
    return out


def step_scales(series: np.ndarray, steps: Sequence[int]) -> np.ndarray:
    """``(len(steps), C)``: :func:`change_scale` of ``series`` for every step of a horizon."""
    return np.stack([change_scale(series, int(h)) for h in _check_steps(steps)])


def relative_inputs(x: np.ndarray, x_scale: np.ndarray) -> np.ndarray:
    """Windows ``(N, L, C)`` relative to their last row, divided by ``x_scale`` ``(C,)``."""
    x = np.asarray(x, dtype=np.float64)
    return ((x - x[:, -1:, :]) / np.asarray(x_scale)).astype(np.float32)


def anchor_lags(
    steps: Sequence[int], anchor: str = "persistence", season: int | None = None
) -> np.ndarray:
    """``(S,)``: how many rows before the row it forecasts the anchor of each step takes its
    value: ``h`` for persistence, :func:`.baselines.seasonal_lag` for seasonal naive."""
    steps = _check_steps(steps)
    if anchor == "persistence":
        return steps
    _check_anchor(anchor, season)
    return np.array([seasonal_lag(int(h), season) for h in steps], dtype=np.int64)


def _check_anchor(anchor: str, season: int | None) -> None:
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}")
    if anchor == "seasonal_naive" and season is None:
        raise ValueError("anchor 'seasonal_naive' needs a season")


def anchor_scales(
    series: np.ndarray, steps: Sequence[int], anchor: str = "persistence", season: int | None = None
) -> np.ndarray:
    """``(S, C)``: the typical error of the anchor at every step over ``series`` (the training
    part), the standard deviation of its ``lag``-step changes (:func:`anchor_lags`), so that
    every step's target is in units of its own typical correction. Persistence's are
    :func:`step_scales`."""
    return np.stack([change_scale(series, int(lag)) for lag in anchor_lags(steps, anchor, season)])


def anchor_forecasts(
    targets: np.ndarray,
    ends: np.ndarray,
    steps: Sequence[int],
    anchor: str = "persistence",
    season: int | None = None,
) -> np.ndarray:
    """``(N, S, C)``: the anchor's forecast of every step after each window ending at row
    ``ends`` ``(N,)``, made at that row: the baseline's own forecast
    (:func:`.baselines.step_baseline_forecasts`), so the model's zero output is exactly it.
    The rows forecast may lie past the end of ``targets`` (``predict`` continues a series)."""
    steps = _check_steps(steps)
    _check_anchor(anchor, season)
    found = step_baseline_forecasts(
        targets, ends, steps, season if anchor != "persistence" else None
    )
    if anchor not in found:
        back = int((anchor_lags(steps, anchor, season) - steps).max())
        raise ValueError(
            f"the {anchor} anchor (season {season}) needs the {back} rows before each "
            f"window's last row; the first window ends at row {int(np.min(ends))}"
        )
    return found[anchor]


def choose_anchor(
    targets: np.ndarray, seq_len: int, steps: Sequence[int], season: int | None
) -> str:
    """The anchor of a run, chosen on ``targets`` (the training part only): seasonal naive
    when there is a season, the window holds its values (``season <= seq_len``, so a forecast
    needs nothing before its window), ``targets`` holds at most
    :data:`SEASONAL_ANCHOR_MAX_SEASONS` seasons, and over its windows and the steps seasonal
    naive's squared error (each column divided by its typical one-step change) is at most
    :data:`SEASONAL_ANCHOR_SHARE` of persistence's; persistence otherwise. (The errors are
    summed over the steps, not taken in each step's own units: at a step of a whole season
    persistence is seasonal naive, and a near-perfect step would weigh as much as the
    others.)"""
    steps = _check_steps(steps)
    targets = np.asarray(targets, dtype=np.float64)
    ends = np.arange(seq_len - 1, len(targets) - steps[-1])
    if season is None or season > seq_len or len(targets) > SEASONAL_ANCHOR_MAX_SEASONS * season:
        return "persistence"
    if not len(ends):
        return "persistence"
    actual = targets[ends[:, None] + steps[None, :]]
    scale = change_scale(targets, 1)  # per column: the columns count alike, the steps by error
    found = step_baseline_forecasts(targets, ends, steps, season)
    loss = {k: float(np.mean(((v - actual) / scale) ** 2)) for k, v in found.items()}
    seasonal = loss.get("seasonal_naive", np.inf)
    clearly = seasonal <= SEASONAL_ANCHOR_SHARE * loss["persistence"]
    return "seasonal_naive" if clearly else "persistence"


def relative_windows(
    inputs: np.ndarray,
    targets: np.ndarray,
    seq_len: int,
    steps: Sequence[int],
    stride: int,
    x_scale: np.ndarray,
    y_scale: np.ndarray,
    anchor: str = "persistence",
    season: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut a raw series into window-relative training examples.

    Args:
        y_scale: ``(len(steps), C_out)``, the scale of each step (:func:`anchor_scales`).
        anchor, season: what each step's target is relative to (:data:`ANCHORS`).

    Returns:
        ``x`` ``(N, seq_len, C_in)``, ``y`` ``(N, len(steps), C_out)`` (each step's scaled
        difference of the targets from the anchor's forecast), the rows where the windows end
        ``(N,)`` and the reference ``(N, len(steps), C_out)``: the anchor's forecasts, which
        :func:`restore_forecast` adds back.
    """
    x, y, ends = multi_step_windows(inputs, targets, seq_len, steps, stride)
    reference = anchor_forecasts(targets, ends, steps, anchor, season)
    y = ((y - reference) / np.asarray(y_scale)).astype(np.float32)
    return relative_inputs(x, x_scale), y, ends, reference


def restore_forecast(pred: np.ndarray, reference: np.ndarray, y_scale: np.ndarray) -> np.ndarray:
    """Model outputs ``(N, S, C_out)`` back in the data's units: ``reference + pred * y_scale``
    with each window's reference, ``(N, S, C_out)`` (the anchor's forecasts) or ``(N, C_out)``
    (the last values: the same for every step), and each step's scale ``(S, C_out)``."""
    reference = np.asarray(reference)
    if reference.ndim == 2:
        reference = reference[:, None, :]
    return reference + np.asarray(pred) * np.asarray(y_scale)
