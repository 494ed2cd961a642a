"""Activations by name (every pytorch-tcn name), callables and modules."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlx_tcn import ACTIVATIONS, TCN
from mlx_tcn.activations import EXACT_ACTIVATIONS, get_activation, glu

NAMES = ["relu", "tanh", "leaky_relu", "sigmoid", "elu", "gelu", "selu", "softmax", "log_softmax"]


def test_every_pytorch_tcn_name_is_there():
    assert sorted(ACTIVATIONS) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_matches_torch(name, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 5)).astype(np.float32) * 3
    y = np.array(get_activation(name)(mx.array(x)))
    t = torch.from_numpy(x)
    f = torch.nn.functional
    ref = {
        "relu": f.relu,
        "tanh": torch.tanh,
        "leaky_relu": f.leaky_relu,
        "sigmoid": torch.sigmoid,
        "elu": f.elu,
        "gelu": f.gelu,
        "selu": f.selu,
        "softmax": lambda v: f.softmax(v, dim=-1),
        "log_softmax": lambda v: f.log_softmax(v, dim=-1),
    }[name](t)
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-4, atol=1e-5)


def test_hand_values():
    x = mx.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(np.array(ACTIVATIONS["relu"](x)), [0, 0, 3])
    np.testing.assert_allclose(np.array(ACTIVATIONS["leaky_relu"](x)), [-0.02, 0, 3], rtol=1e-6)
    np.testing.assert_allclose(np.array(ACTIVATIONS["sigmoid"](mx.array([0.0]))), [0.5])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_normalises_over_channels_not_batch(name, rng):
    x = mx.array(rng.standard_normal((3, 4, 5)).astype(np.float32))
    p = np.array(get_activation(name)(x))
    if name == "log_softmax":
        p = np.exp(p)
    np.testing.assert_allclose(p.sum(axis=-1), np.ones((3, 4)), rtol=1e-5)
    assert not np.allclose(p.sum(axis=0), 1.0)


def test_glu_uses_the_channel_halves():
    x = mx.array([[[1.0, 2.0, 0.0, 100.0]]])
    np.testing.assert_allclose(np.array(glu(x)), [[[0.5, 2.0]]], rtol=1e-6)


def test_module_class_instance_and_callable():
    act = get_activation(nn.ReLU)
    assert isinstance(act, nn.ReLU)
    inst = nn.GELU()
    assert get_activation(inst) is inst

    def double(v):
        return 2 * v

    assert get_activation(double) is double


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh(), lambda v: mx.maximum(v, 0)])
def test_tcn_accepts_modules_and_callables(activation):
    model = TCN(3, [4], kernel_sizes=2, activation=activation, output_activation=activation)
    assert model(mx.ones((1, 5, 3))).shape == (1, 5, 4)


def test_output_activation_softmax_rows_sum_to_one(rng):
    model = TCN(3, [4, 4], kernel_sizes=2, output_activation="softmax", output_projection=6)
    y = np.array(model(mx.array(rng.standard_normal((2, 5, 3)).astype(np.float32))))
    np.testing.assert_allclose(y.sum(axis=-1), np.ones((2, 5)), rtol=1e-5)


def test_unknown_name():
    with pytest.raises(ValueError, match="activation must be one of .* got 'swish'"):
        get_activation("swish")
    with pytest.raises(ValueError, match="output_activation must be one of"):
        get_activation("swish", "output_activation")


def test_not_callable():
    with pytest.raises(TypeError, match="activation must be a string, an mlx.nn.Module"):
        get_activation(3)


def test_softmax_as_the_block_activation_normalises_the_output_over_channels(rng):
    model = TCN(3, [4, 4], kernel_sizes=2, activation="softmax", use_norm="layer_norm")
    model.eval()
    y = np.array(model(mx.array(rng.standard_normal((2, 5, 3)).astype(np.float32))))
    np.testing.assert_allclose(y.sum(axis=-1), np.ones((2, 5)), rtol=1e-5)


LOG_SOFTMAX_ONE_CHANNEL = """
import mlx.core as mx
from mlx_tcn import TCN
from mlx_tcn.activations import ACTIVATIONS, EXACT_ACTIVATIONS
x = mx.array([[[0.5, -2.0]] * 5])
out = TCN(2, [4], kernel_sizes=3, output_projection=1, output_activation="log_softmax")(x)
block = TCN(2, [1], kernel_sizes=3, activation="log_softmax")(x)
ones = [f(mx.array([[3.0], [float("inf")]])) for f in (ACTIVATIONS["log_softmax"], EXACT_ACTIVATIONS["log_softmax"])]
mx.eval(out, block, ones)
print(out.tolist() == [[[0.0]] * 5], block.shape, [o.tolist() for o in ones])
"""


def test_log_softmax_over_one_channel_is_zero_not_a_crash():
    # MLX 0.32's nn.log_softmax (a shapeless compiled function) kills the process with a
    # segmentation fault on an axis of size 1, which a model with one output channel has.
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", LOG_SOFTMAX_ONE_CHANNEL], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[0] == "True (1, 5, 1) [[[0.0], [nan]], [[0.0], [nan]]]"


@pytest.mark.parametrize("name", ["elu", "selu"])
@pytest.mark.parametrize("size", [6, 4096], ids=["small (MLX's form)", "large (vectorised)"])
def test_elu_and_selu_gradients_stay_finite_for_large_inputs(name, size):
    # mlx.nn.elu takes exp(x) of positive inputs too: from x ~ 88.7 its gradient is 0 * inf,
    # NaN. Arrays under _fastmath.MIN_SIZE (and every output activation) used it.
    x = mx.array(np.resize(np.array([89.0, 100.0, 1e3, 1.0, -1.0, -100.0], np.float32), size))
    slope = {"elu": 1.0, "selu": 1.0507009873554805}[name]
    for table in (ACTIVATIONS, EXACT_ACTIVATIONS):
        grad = np.array(mx.grad(lambda v, f=table[name]: f(v).sum())(x))
        assert np.isfinite(grad).all()
        np.testing.assert_allclose(grad[:4], slope, rtol=1e-6)
        assert 0 < grad[4] < slope and abs(grad[5]) < 1e-30
