"""Baselines: exact forecasts and losses on small series, season detection, majority class,
confusion matrices."""

import math

import numpy as np
import pytest

from mlx_tcn.train.baselines import (
    autocorrelation,
    class_balance,
    confusion_matrix,
    detect_season,
    forecast_baselines,
    majority_class,
    persistence,
    seasonal_naive,
    step_baseline_forecasts,
)
from mlx_tcn.train.horizon import by_step, forecast_steps, score_steps


def test_autocorrelation_exact():
    acf = autocorrelation(np.array([1.0, -1.0, 1.0, -1.0]), 2)
    # mean 0, sum of squares 4; lag 1: 3 products of -1 -> -3/4; lag 2: 2 products of +1 -> 1/2
    np.testing.assert_allclose(acf, [1.0, -0.75, 0.5])
    np.testing.assert_array_equal(autocorrelation(np.ones(5), 2), [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="max_lag must be in"):
        autocorrelation(np.ones(5), 5)
    with pytest.raises(ValueError, match="1-D series"):
        autocorrelation(np.ones((5, 2)), 1)


def seasonal_series(n=480, season=12, trend=0.05, noise=0.2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + trend * t + np.sin(2 * np.pi * t / season) + noise * rng.standard_normal(n)


@pytest.mark.parametrize("season", [7, 12, 52])
def test_detect_season_finds_the_season_under_a_trend(season):
    # The trend dominates the raw autocorrelation; detrending lets the season show.
    x = seasonal_series(n=10 * season, season=season, trend=0.5)
    assert detect_season(x) == season
    assert detect_season(x[:, None]) == season  # (T, C): the first column decides


def test_detect_season_none_for_noise_and_random_walks():
    rng = np.random.default_rng(1)
    assert detect_season(rng.standard_normal(400)) is None
    assert detect_season(np.cumsum(rng.standard_normal(400))) is None
    assert detect_season(np.arange(5.0)) is None  # too short to see three seasons


def test_detect_season_respects_max_season():
    x = seasonal_series(season=24, trend=0.0)
    assert detect_season(x) == 24
    assert detect_season(x, max_season=20) is None  # 24 is out of reach; 12 is anti-correlated


def test_persistence_and_seasonal_naive_values():
    y = np.arange(10.0)[:, None] ** 2  # 0, 1, 4, 9, ...
    rows = np.array([5, 6, 9])
    np.testing.assert_array_equal(persistence(y, rows, 1)[:, 0], [16, 25, 64])
    np.testing.assert_array_equal(persistence(y, rows, 2)[:, 0], [9, 16, 49])
    np.testing.assert_array_equal(seasonal_naive(y, rows, 1, 4)[:, 0], [1, 4, 25])
    # horizon 5 > season 4: the latest same-phase value known 5 steps earlier is 8 back
    np.testing.assert_array_equal(seasonal_naive(np.arange(20.0), np.array([9, 19]), 5, 4), [1, 11])
    with pytest.raises(ValueError, match="persistence needs rows 6 steps before"):
        persistence(y, rows, 6)
    with pytest.raises(ValueError, match="season must be a positive"):
        seasonal_naive(y, rows, 1, 0)


def test_forecast_baselines_in_units_of_the_scaled_loss():
    y = np.array([[0.0, 0.0], [1.0, 10.0], [3.0, 10.0], [6.0, 40.0], [7.0, 20.0]])
    rows = np.array([3, 4])
    scale = np.array([1.0, 10.0])
    out = forecast_baselines(y, rows, 1, scale, season=2)
    # persistence errors: col 0: 3, 1; col 1 (/10): 3, -2 -> mean of 9, 1, 9, 4
    assert math.isclose(out["persistence"], (9 + 1 + 9 + 4) / 4)
    # season 2: col 0: 6-1, 7-3; col 1 (/10): 3, 1 -> mean of 25, 16, 9, 1
    assert math.isclose(out["seasonal_naive"], (25 + 16 + 9 + 1) / 4)
    assert "seasonal_naive" not in forecast_baselines(y, rows, 1, scale, season=None)
    assert "seasonal_naive" not in forecast_baselines(y, rows, 1, scale, season=4)  # no history


def test_baselines_for_every_step_of_a_horizon_exact():
    # Windows end at rows 4 and 5 of 0, 10, 20, ... (column 0) and 0, 1, 4, 9, ... (column 1);
    # steps 1..3 ahead, season 2.
    y = np.column_stack([10 * np.arange(9.0), np.arange(9.0) ** 2])
    out = step_baseline_forecasts(y, np.array([4, 5]), np.array([1, 2, 3]), season=2)
    assert out["persistence"].shape == (2, 3, 2)
    # persistence: the value at the window's last row, for every step
    np.testing.assert_array_equal(out["persistence"][:, :, 0], [[40, 40, 40], [50, 50, 50]])
    # seasonal naive, forecasting row e + h from row e: the latest row of the same phase
    # known at e, e + h - 2 * ceil(h / 2): rows 3, 4, 5 for e = 4 and 4, 5, 6 for e = 5
    np.testing.assert_array_equal(out["seasonal_naive"][:, :, 0], [[30, 40, 30], [40, 50, 40]])
    np.testing.assert_array_equal(out["seasonal_naive"][:, :, 1], [[9, 16, 9], [16, 25, 16]])
    # no season, or too little history before a window's targets: persistence alone
    assert set(step_baseline_forecasts(y, np.array([4]), np.array([1, 2]), None)) == {"persistence"}
    assert set(step_baseline_forecasts(y, np.array([0, 4]), np.array([1]), 2)) == {"persistence"}


def test_step_scores_exact_per_step_and_overall():
    # Two windows, steps 1 and 2, one column; step 2's scale is 2.
    target = np.array([[1.0, 2.0], [3.0, 4.0]])
    model = np.array([[1.0, 3.0], [2.0, 4.0]])  # errors: step 1: 0, -1; step 2: 1, 0
    persist = np.array([[0.0, 0.0], [3.0, 3.0]])  # errors: step 1: -1, 0; step 2: -2, -1
    scores = score_steps(model, target, {"persistence": persist}, np.array([[1.0], [2.0]]), [1, 2])
    assert scores.steps == [1, 2]
    np.testing.assert_allclose(scores.mse["model"], [0.5, 0.5])
    np.testing.assert_allclose(scores.mse["persistence"], [0.5, 2.5])
    np.testing.assert_allclose(scores.loss["model"], [0.5, 0.125])  # step 2: (1/2)^2 / 2
    np.testing.assert_allclose(scores.loss["persistence"], [0.5, 0.625])  # (1 + 1/4) / 2
    assert scores.overall("loss") == pytest.approx({"model": 0.3125, "persistence": 0.5625})
    assert scores.steps_beaten() == {"persistence": 1}  # step 1 is a tie: not beaten
    record = scores.to_record()
    assert record["overall_mse"] == pytest.approx({"model": 0.5, "persistence": 1.5})
    assert record["steps_beaten"] == {"persistence": 1}


def test_steps_of_old_and_new_runs_and_their_layout():
    assert forecast_steps({"horizon": 3, "steps": [1, 2, 3]}).tolist() == [1, 2, 3]
    # saved before multi-step horizons: the single step `horizon` ahead
    assert forecast_steps({"horizon": 3}).tolist() == [3]
    flat = np.arange(12.0).reshape(2, 6)  # 2 windows, 3 steps of 2 columns, step-major
    np.testing.assert_array_equal(by_step(flat, 3)[1, 2], [10.0, 11.0])
    with pytest.raises(ValueError, match="6 outputs do not split into 4 steps"):
        by_step(flat, 4)


def test_seasonal_naive_is_the_bar_on_a_seasonal_series():
    # On a clean seasonal series, seasonal naive is far better than persistence.
    y = seasonal_series(noise=0.05, trend=0.0)[:, None]
    rows = np.arange(400, 480)
    out = forecast_baselines(y, rows, 1, np.array([1.0]), season=12)
    assert out["seasonal_naive"] < 0.1 * out["persistence"]


def test_majority_class():
    out = majority_class(np.array([1, 2, 1]), np.array([1, 1, 0, 2]))
    assert out["accuracy"] == 0.5
    prior = np.array([2, 3, 2]) / 7  # add-one smoothed training counts 1, 2, 1
    expected = -np.mean(np.log(prior[[1, 1, 0, 2]]))
    assert math.isclose(out["loss"], expected)
    # an unseen class costs a finite loss
    assert math.isfinite(majority_class(np.array([2, 0]), np.array([1]))["loss"])


def test_class_balance_and_confusion_matrix():
    np.testing.assert_array_equal(class_balance(np.array([2, 0, 2]), 4), [1, 0, 2, 0])
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match=r"labels must be in 0..2, got \[3\]"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)
