"""Tests for mlx_tcn.pool: adaptive average and max pooling over time (NLC)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlx_tcn.pool import AdaptiveAvgPool1d, AdaptiveMaxPool1d

# (length, output_size) pairs: divisible, non-divisible, out == L, out > L, out == 1.
CASES = [
    (1, 1),
    (1, 4),
    (2, 3),
    (5, 5),
    (6, 3),
    (7, 3),
    (10, 4),
    (10, 7),
    (13, 5),
    (8, 16),
    (9, 13),
    (16, 1),
    (31, 8),
    (100, 7),
    (64, 63),
]


def _reference_bins(length: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's bins written out independently: floor(i*L/out), ceil((i+1)*L/out)."""
    import math

    return [(math.floor(i * length / out), math.ceil((i + 1) * length / out)) for i in range(out)]


def _np_pool(x: np.ndarray, out: int, reduce) -> np.ndarray:
    return np.stack([reduce(x[:, s:e, :], axis=1) for s, e in _reference_bins(x.shape[1], out)], 1)


# --------------------------------------------------------------------- hand-computed


def test_avg_hand_computed_non_divisible():
    # L = 5, out = 3: bins [0, 2), [1, 4), [3, 5)
    x = mx.array([1.0, 2.0, 4.0, 8.0, 16.0]).reshape(1, 5, 1)
    y = AdaptiveAvgPool1d(3)(x)
    assert y.shape == (1, 3, 1)
    assert y.reshape(-1).tolist() == [1.5, float(np.float32(14) / np.float32(3)), 12.0]


def test_max_hand_computed_non_divisible():
    x = mx.array([3.0, -1.0, 7.0, 2.0, 0.0]).reshape(1, 5, 1)
    assert AdaptiveMaxPool1d(3)(x).reshape(-1).tolist() == [3.0, 7.0, 2.0]


def test_upsampling_repeats_steps():
    # L = 2, out = 5: bins [0,1), [0,1), [0,2), [1,2), [1,2)
    x = mx.array([[2.0, 10.0], [4.0, 20.0]])[None]  # (1, 2, 2)
    avg = AdaptiveAvgPool1d(5)(x)
    mx_ = AdaptiveMaxPool1d(5)(x)
    assert avg.tolist() == [[[2, 10], [2, 10], [3, 15], [4, 20], [4, 20]]]
    assert mx_.tolist() == [[[2, 10], [2, 10], [4, 20], [4, 20], [4, 20]]]


def test_global_pool_is_mean_and_max_over_time():
    x = mx.arange(24, dtype=mx.float32).reshape(2, 4, 3)
    assert mx.array_equal(AdaptiveAvgPool1d(1)(x), x.mean(axis=1, keepdims=True)).item()
    assert mx.array_equal(AdaptiveMaxPool1d(1)(x), x.max(axis=1, keepdims=True)).item()


def test_identity_when_output_equals_length():
    x = mx.random.normal((3, 9, 4), key=mx.random.key(0))
    assert mx.array_equal(AdaptiveAvgPool1d(9)(x), x).item()
    assert mx.array_equal(AdaptiveMaxPool1d(9)(x), x).item()


def test_channels_and_batch_are_independent():
    # Channel c of batch b holds 100*b + 10*c + t: each output stays in its own lane.
    b, t, c = np.meshgrid(np.arange(2), np.arange(6), np.arange(3), indexing="ij")
    x = (100 * b + 10 * c + t).astype(np.float32)
    y = np.array(AdaptiveMaxPool1d(2)(mx.array(x)))
    expected = 100 * b[:, :2] + 10 * c[:, :2] + np.array([2, 5])[None, :, None]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize(("length", "out"), CASES)
def test_matches_numpy_reference_exactly_on_integers(length, out):
    rng = np.random.default_rng(length * 100 + out)
    x = rng.integers(-50, 50, size=(3, length, 4)).astype(np.float32)
    avg = np.array(AdaptiveAvgPool1d(out)(mx.array(x)))
    mxp = np.array(AdaptiveMaxPool1d(out)(mx.array(x)))
    # Sums of small integers are exact, so mean = sum / n is the correctly rounded value.
    sums = _np_pool(x, out, np.sum)
    counts = np.array([e - s for s, e in _reference_bins(length, out)], np.float32)
    np.testing.assert_array_equal(avg, sums / counts[None, :, None])
    np.testing.assert_array_equal(mxp, _np_pool(x, out, np.max))


# --------------------------------------------------------------------- against torch


def _torch_pool(fn, x: np.ndarray, out: int) -> np.ndarray:
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(x).transpose(1, 2)  # NLC -> NCL
    return getattr(torch.nn.functional, fn)(t, out).transpose(1, 2).numpy()


@pytest.mark.parametrize(("length", "out"), CASES)
def test_matches_torch_exactly_on_integers(length, out):
    rng = np.random.default_rng(length * 7 + out)
    x = rng.integers(-1000, 1000, size=(2, length, 5)).astype(np.float32)
    np.testing.assert_array_equal(
        np.array(AdaptiveAvgPool1d(out)(mx.array(x))),
        _torch_pool("adaptive_avg_pool1d", x, out),
    )
    np.testing.assert_array_equal(
        np.array(AdaptiveMaxPool1d(out)(mx.array(x))),
        _torch_pool("adaptive_max_pool1d", x, out),
    )


def test_matches_torch_on_random_floats_for_many_sizes():
    rng = np.random.default_rng(1)
    for length in (1, 2, 3, 5, 7, 8, 11, 16, 23):
        for out in (1, 2, 3, 4, 5, 7, 9, 12, 16, 25):
            x = rng.standard_normal((2, length, 3)).astype(np.float32)
            # max is a selection: bit-exact; mean may differ in the last ulp (summation order)
            np.testing.assert_array_equal(
                np.array(AdaptiveMaxPool1d(out)(mx.array(x))),
                _torch_pool("adaptive_max_pool1d", x, out),
            )
            np.testing.assert_allclose(
                np.array(AdaptiveAvgPool1d(out)(mx.array(x))),
                _torch_pool("adaptive_avg_pool1d", x, out),
                rtol=1e-6,
                atol=1e-7,
            )


# --------------------------------------------------------------------- shapes, dtypes, grads


@pytest.mark.parametrize("cls", [AdaptiveAvgPool1d, AdaptiveMaxPool1d])
def test_unbatched_input(cls):
    x = mx.random.normal((11, 3), key=mx.random.key(2))
    y = cls(4)(x)
    assert y.shape == (4, 3)
    assert mx.array_equal(y, cls(4)(x[None])[0]).item()


@pytest.mark.parametrize("cls", [AdaptiveAvgPool1d, AdaptiveMaxPool1d])
def test_dtype_preserved_and_no_parameters(cls):
    x = mx.ones((2, 7, 3), dtype=mx.float16)
    pool = cls(3)
    assert pool(x).dtype == mx.float16
    assert pool.parameters() == {}
    assert repr(pool) == f"{cls.__name__}(output_size=3)"


def test_avg_gradient_spreads_over_bins():
    # d(sum of outputs)/dx_t = sum over bins containing t of 1/|bin|. L=5, out=3: sizes 2, 3, 2.
    x = mx.zeros((1, 5, 1))
    g = mx.grad(lambda v: AdaptiveAvgPool1d(3)(v).sum())(x)
    expected = [1 / 2, 1 / 2 + 1 / 3, 1 / 3, 1 / 3 + 1 / 2, 1 / 2]
    np.testing.assert_allclose(np.array(g).reshape(-1), expected, rtol=1e-6)


def test_max_gradient_goes_to_argmax():
    x = mx.array([0.0, 5.0, 1.0, 2.0, 9.0, 3.0]).reshape(1, 6, 1)
    g = mx.grad(lambda v: AdaptiveMaxPool1d(2)(v).sum())(x)
    assert g.reshape(-1).tolist() == [0, 1, 0, 0, 1, 0]


def test_usable_inside_a_model():
    model = nn.Sequential(nn.Linear(3, 4), AdaptiveAvgPool1d(2))
    assert model(mx.ones((5, 10, 3))).shape == (5, 2, 4)


# --------------------------------------------------------------------- validation


@pytest.mark.parametrize("cls", [AdaptiveAvgPool1d, AdaptiveMaxPool1d])
def test_output_size_must_be_positive_int(cls):
    with pytest.raises(ValueError, match="output_size must be a positive int, got 0"):
        cls(0)
    with pytest.raises(ValueError, match="output_size must be a positive int, got -2"):
        cls(-2)
    with pytest.raises(TypeError, match="output_size must be a positive int, got 2.0"):
        cls(2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="output_size must be a positive int, got True"):
        cls(True)
    with pytest.raises(TypeError, match="output_size must be a positive int, got None"):
        cls(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [AdaptiveAvgPool1d, AdaptiveMaxPool1d])
def test_input_rank_checked(cls):
    with pytest.raises(ValueError, match=r"x must be .*got shape \(4,\)"):
        cls(2)(mx.ones((4,)))
    with pytest.raises(ValueError, match=r"x must be .*got shape \(1, 2, 3, 4\)"):
        cls(2)(mx.ones((1, 2, 3, 4)))


@pytest.mark.parametrize("cls", [AdaptiveAvgPool1d, AdaptiveMaxPool1d])
def test_empty_length_rejected(cls):
    with pytest.raises(ValueError, match=r"at least one time step, got shape \(2, 0, 3\)"):
        cls(2)(mx.ones((2, 0, 3)))


@pytest.mark.parametrize("cls", [AdaptiveAvgPool1d, AdaptiveMaxPool1d])
def test_non_array_rejected(cls):
    with pytest.raises(TypeError, match="x must be an mx.array, got list"):
        cls(2)([[1.0, 2.0]])


def test_max_gradient_goes_to_the_first_maximum_of_each_bin_as_in_torch():
    # Before: [1/3, 1, 1/3, 2/3, 2/3]: MLX's max splits its gradient over ties, and a short
    # bin is padded with copies of its last step. torch gives each bin's gradient to one step.
    x = mx.zeros((1, 5, 1))
    grad = mx.grad(lambda v: AdaptiveMaxPool1d(3)(v).sum())(x)
    np.testing.assert_array_equal(np.array(grad).ravel(), [1, 1, 0, 1, 0])
    x = mx.array([[[1.0], [float("nan")], [0.5]]])
    assert np.isnan(np.array(AdaptiveMaxPool1d(1)(x))).all()  # a NaN is still the maximum
