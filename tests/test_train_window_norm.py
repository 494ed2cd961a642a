"""Window-relative forecasting: exact values, invariance to the level, exact round trip."""

import numpy as np
import pytest

from mlx_tcn.train.window_norm import (
    change_scale,
    multi_step_windows,
    relative_inputs,
    relative_windows,
    restore_forecast,
    step_scales,
)


def test_change_scale_exact():
    s = np.array([[0.0, 5.0], [1.0, 5.0], [3.0, 5.0], [6.0, 5.0]])
    # 1-step changes of column 0: 1, 2, 3 -> std sqrt(2/3); column 1 never changes -> 1
    np.testing.assert_allclose(change_scale(s, 1), [np.sqrt(2 / 3), 1.0], rtol=1e-6)
    # 2-step changes: 3, 5 -> std 1
    np.testing.assert_allclose(change_scale(s, 2), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"horizon must be in \[1, 3\] for 4 rows, got 4"):
        change_scale(s, 4)
    with pytest.raises(ValueError, match="series must be"):
        change_scale(np.ones(4), 1)


def test_relative_windows_exact():
    inputs = np.array([[1.0], [2.0], [4.0], [8.0], [16.0]])
    targets = 10 * inputs
    x, y, ends, ref = relative_windows(
        inputs, targets, 2, [1], 1, np.array([2.0]), np.array([[5.0]])
    )
    np.testing.assert_array_equal(x[..., 0], [[-0.5, 0.0], [-1.0, 0.0], [-2.0, 0.0]])
    np.testing.assert_array_equal(ends, [1, 2, 3])  # the rows where the windows end
    # the reference: the persistence forecast of every step, (windows, steps, columns)
    np.testing.assert_array_equal(ref[:, :, 0], [[20.0], [40.0], [80.0]])
    assert y.shape == (3, 1, 1)
    np.testing.assert_array_equal(y[:, 0, 0], [4.0, 8.0, 16.0])  # (40-20)/5, (80-40)/5, ...
    np.testing.assert_allclose(restore_forecast(y, ref, np.array([[5.0]]))[:, 0], targets[ends + 1])


def test_multi_step_windows_hold_every_step_after_the_window():
    # Before: one target per window (the step `horizon` ahead); now steps 1..H at once.
    inputs = np.arange(7.0)[:, None]
    targets = np.column_stack([100 + np.arange(7.0), 200 + np.arange(7.0)])
    x, y, ends = multi_step_windows(inputs, targets, 3, [1, 2], stride=2)
    np.testing.assert_array_equal(x[..., 0], [[0, 1, 2], [2, 3, 4]])
    np.testing.assert_array_equal(ends, [2, 4])  # the window ending at row 6 has no targets
    np.testing.assert_array_equal(y, [[[103, 203], [104, 204]], [[105, 205], [106, 206]]])
    with pytest.raises(
        ValueError, match=r"steps must be increasing positive integers, got \[2, 1\]"
    ):
        multi_step_windows(inputs, targets, 3, [2, 1])


def test_every_step_has_its_own_scale_and_restores_exactly():
    # y'[h] = (y[end + h] - y[end]) / s[h], s[h] the std of h-step changes: a far step is not
    # larger than a near one just because the series moves further in more steps.
    series = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0])[:, None]
    scales = step_scales(series, [1, 2])
    np.testing.assert_allclose(scales[:, 0], [np.std([1, 2, 3, 4, 5]), np.std([3, 5, 7, 9])])
    x, y, ends, ref = relative_windows(series, series, 2, [1, 2], 1, np.array([1.0]), scales)
    np.testing.assert_array_equal(ends, [1, 2, 3])
    np.testing.assert_allclose(y[:, 0, 0], np.array([2.0, 3.0, 4.0]) / scales[0, 0], rtol=1e-6)
    np.testing.assert_allclose(y[:, 1, 0], np.array([5.0, 7.0, 9.0]) / scales[1, 0], rtol=1e-6)
    restored = restore_forecast(y, ref, scales)
    np.testing.assert_allclose(restored[..., 0], [[3, 6], [6, 10], [10, 15]], rtol=1e-6)


def test_a_level_shift_changes_nothing_the_model_sees():
    # Why the model can follow a trend: a window and its target look the same at any level.
    rng = np.random.default_rng(0)
    series = np.cumsum(rng.standard_normal((60, 2)), axis=0)
    scale = change_scale(series, 3)
    steps = [1, 2, 3]
    y_scale = step_scales(series[:, :1], steps)
    a = relative_windows(series, series[:, :1], 8, steps, 2, scale, y_scale)
    b = relative_windows(series + 1000.0, series[:, :1] + 1000.0, 8, steps, 2, scale, y_scale)
    np.testing.assert_allclose(a[0], b[0], atol=1e-4)
    np.testing.assert_allclose(a[1], b[1], atol=1e-4)
    np.testing.assert_allclose(b[3] - a[3], 1000.0)


def test_relative_inputs_zero_last_row():
    x = np.arange(24.0).reshape(2, 4, 3)
    r = relative_inputs(x, np.ones(3))
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r[:, -1, :], 0.0)
    np.testing.assert_array_equal(r[0, 0], [-9.0, -9.0, -9.0])
