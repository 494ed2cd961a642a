"""SqueezeExcitation: hand-computed values (global and running mean), parameter count,
causality and bad input."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_tcn import SqueezeExcitation


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, dtype=np.float64)))


def _ones_se(channels: int = 2, reduction: int = 2, **kw) -> SqueezeExcitation:
    se = SqueezeExcitation(channels, reduction, **kw)
    se.fc1.weight = mx.ones_like(se.fc1.weight)
    se.fc1.bias = mx.zeros_like(se.fc1.bias)
    se.fc2.weight = mx.ones_like(se.fc2.weight)
    se.fc2.bias = mx.zeros_like(se.fc2.bias)
    return se


X = np.array([[[1.0, 3.0], [3.0, 5.0], [-1.0, -7.0]]], dtype=np.float32)  # (1, 3, 2)


def test_non_causal_squeezes_with_the_global_mean():
    # mean over time [1, 1/3]; hidden = relu(1 + 1/3); both gates sigmoid(4/3)
    y = np.array(_ones_se()(mx.array(X)))
    np.testing.assert_allclose(y, X * _sigmoid(4 / 3), rtol=1e-6)


def test_causal_squeezes_with_the_running_mean():
    # running means: [1, 3] -> 4, [2, 4] -> 6, [1, 1/3] -> 4/3
    y = np.array(_ones_se(causal=True)(mx.array(X)))
    gates = _sigmoid([4.0, 6.0, 4 / 3])[None, :, None]
    np.testing.assert_allclose(y, X * gates, rtol=1e-6)


def test_residual_adds_the_input_back():
    y = np.array(_ones_se(residual=True, causal=True)(mx.array(X)))
    gates = _sigmoid([4.0, 6.0, 4 / 3])[None, :, None]
    np.testing.assert_allclose(y, X + X * gates, rtol=1e-6)


def test_relu_in_the_bottleneck():
    # all-negative input: hidden unit is relu(negative) = 0, gates sigmoid(0) = 0.5
    x = -np.abs(X)
    y = np.array(_ones_se()(mx.array(x)))
    np.testing.assert_allclose(y, x * 0.5, rtol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_matches_a_numpy_reference_with_random_weights(causal, rng):
    se = SqueezeExcitation(8, reduction=4, causal=causal)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    w1, b1 = np.array(se.fc1.weight), np.array(se.fc1.bias)
    w2, b2 = np.array(se.fc2.weight), np.array(se.fc2.bias)
    if causal:
        s = np.cumsum(x, axis=1) / np.arange(1, 6)[None, :, None]
    else:
        s = x.mean(axis=1, keepdims=True)
    gate = _sigmoid(np.maximum(s @ w1.T + b1, 0) @ w2.T + b2)
    np.testing.assert_allclose(np.array(se(mx.array(x))), x * gate, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("channels", "reduction"), [(128, 8), (64, 4), (32, 16), (10, 3)])
def test_parameter_count(channels, reduction):
    se = SqueezeExcitation(channels, reduction)
    hidden = channels // reduction
    n = sum(v.size for _, v in tree_flatten(se.parameters()))
    assert n == 2 * channels * hidden + hidden + channels


def test_spec_example_128_channels_reduction_8_adds_about_4k_weights():
    se = SqueezeExcitation(128, 8)
    assert se.fc1.weight.shape == (16, 128)
    assert se.fc2.weight.shape == (128, 16)
    assert se.fc1.weight.size + se.fc2.weight.size == 4096


def test_reduction_larger_than_channels_keeps_one_unit():
    se = SqueezeExcitation(4, reduction=16)
    assert se.fc1.weight.shape == (1, 4)
    assert se.fc2.weight.shape == (4, 1)
    assert se(mx.ones((1, 3, 4))).shape == (1, 3, 4)


def test_defaults():
    se = SqueezeExcitation(16)
    assert (se.reduction, se.residual, se.causal) == (8, False, False)
    assert isinstance(se.fc1, nn.Linear)


def test_causal_se_never_sees_the_future(rng):
    se = SqueezeExcitation(4, 2, causal=True)
    x = rng.standard_normal((1, 10, 4)).astype(np.float32)
    base = np.array(se(mx.array(x)))
    for t in (0, 4, 9):
        x2 = x.copy()
        x2[:, t] += 3.0
        y = np.array(se(mx.array(x2)))
        np.testing.assert_array_equal(y[:, :t], base[:, :t])
        assert np.abs(y[:, t:] - base[:, t:]).max() > 0


def test_non_causal_se_sees_the_whole_sequence(rng):
    se = SqueezeExcitation(4, 2, causal=False)
    x = rng.standard_normal((1, 10, 4)).astype(np.float32)
    x2 = x.copy()
    x2[:, -1] += 3.0
    # the last step changes the global mean, and with it the first output
    assert np.abs(np.array(se(mx.array(x2)))[:, 0] - np.array(se(mx.array(x)))[:, 0]).max() > 0


def test_running_state_carries_sum_and_count():
    se = _ones_se(causal=True)
    state = se.init_state(3)
    assert state["sum"].shape == (3, 2) and state["count"].shape == (3, 1)
    y1, state = se._forward(mx.array(X[:, :2]), se.init_state(1))
    np.testing.assert_array_equal(np.array(state["sum"]), [[4.0, 8.0]])
    np.testing.assert_array_equal(np.array(state["count"]), [[2.0]])
    y2, state = se._forward(mx.array(X[:, 2:]), state)
    offline = np.array(se(mx.array(X)))
    np.testing.assert_allclose(np.concatenate([np.array(y1), np.array(y2)], 1), offline)


def test_gates_lie_in_zero_one(rng):
    se = SqueezeExcitation(6, 2)
    x = np.abs(rng.standard_normal((2, 5, 6)).astype(np.float32)) + 0.1
    ratio = np.array(se(mx.array(x))) / x
    assert (ratio > 0).all() and (ratio < 1).all()
    assert not math.isnan(ratio.sum())


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0,), ValueError, "channels must be >= 1, got 0"),
        ((8, 0), ValueError, "reduction must be >= 1, got 0"),
        ((8, -2), ValueError, "reduction must be >= 1, got -2"),
        ((8, 2.5), TypeError, "reduction must be an int"),
        (("8",), TypeError, "channels must be an int"),
    ],
)
def test_validation(args, error, match):
    with pytest.raises(error, match=match):
        SqueezeExcitation(*args)


def test_bad_inputs_and_arguments_name_themselves():
    # Before: MLX's "[broadcast_shapes]", "[addmm]", an IndexError or an AttributeError.
    se = SqueezeExcitation(3, reduction=1, causal=True)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, length, channels\)"):
        se(mx.zeros((5, 3)))
    with pytest.raises(ValueError, match="x has 2 channels .* but 3 are expected"):
        se(mx.zeros((1, 5, 2)))
    with pytest.raises(TypeError, match="x must be an mlx.core.array, got NoneType"):
        se(None)
    with pytest.raises(TypeError, match="residual must be True or False, got 'yes'"):
        SqueezeExcitation(3, residual="yes")
    with pytest.raises(TypeError, match="causal must be True or False, got 1"):
        SqueezeExcitation(3, causal=1)
