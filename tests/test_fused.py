"""The fused block epilogues (mlx_tcn.fused) against the unfused operations."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlx_tcn import TCN, TemporalBlock, fused
from mlx_tcn.activations import ACTIVATIONS, glu


@pytest.fixture(autouse=True)
def _seed() -> None:
    mx.random.seed(3)


@pytest.mark.parametrize("name", [*sorted(ACTIVATIONS), "glu"])
def test_bias_act_equals_the_unfused_operations(name: str) -> None:
    act = glu if name == "glu" else ACTIVATIONS[name]
    y, b = mx.random.normal((3, 17, 8)), mx.random.normal((8,))
    np.testing.assert_allclose(fused.bias_act(y, b, act), act(y + b), rtol=1e-6, atol=1e-6)
    keep = mx.random.bernoulli(0.7, act(y).shape)
    expected = mx.where(keep, act(y + b) * (1.0 / 0.7), 0)
    np.testing.assert_allclose(fused.bias_act(y, b, act, keep, 0.7), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["relu", "tanh", "gelu"])
def test_residual_act_in_one_pass_equals_the_unfused_operations(name: str) -> None:
    act = ACTIVATIONS[name]
    y, b, res = mx.random.normal((2, 9, 6)), mx.random.normal((6,)), mx.random.normal((2, 9, 6))
    expected = nn.relu(act(y + b) + res)
    got = fused.residual_act(None, res, nn.relu, y=y, bias=b, act=act)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        fused.residual_act(act(y + b), res, nn.relu), expected, rtol=1e-6, atol=1e-6
    )


def test_only_registered_functions_are_fused() -> None:
    assert fused.activation_name(nn.relu) == "relu"
    assert fused.activation_name(glu) == "glu"
    assert fused.activation_name(nn.PReLU()) is None
    assert fused.activation_name(lambda x: nn.relu(x)) is None


def test_a_weight_norm_block_takes_the_fused_path_and_a_batch_norm_block_does_not() -> None:
    fused._bias_act.cache_clear()
    fused._bias_act_residual.cache_clear()
    blk = TemporalBlock(4, 6, kernel_size=3, stride=1, dilation=2, dropout=0.0,
                        use_norm="batch_norm")  # fmt: skip
    blk.eval()
    mx.eval(blk(mx.random.normal((2, 10, 4)))[0])
    assert fused._bias_act.cache_info().currsize == 0
    model = TCN(4, [6, 6], kernel_sizes=3, dropout=0.0, use_norm="weight_norm")
    model.eval()
    mx.eval(model(mx.random.normal((2, 10, 4))))
    # one compiled function per CPU stream the batch was split over (mlx_tcn.parallel)
    assert fused._bias_act.cache_info().currsize >= 1  # the first convolutions
    assert fused._bias_act_residual.cache_info().currsize >= 1  # second ones + residual


def _reference_block(blk: TemporalBlock, x: mx.array, keeps: list[mx.array]) -> mx.array:
    """The block written op by op, with the given dropout masks (pytorch-tcn's order)."""

    def conv(c, h):
        k, d = c.weight.shape[1], c.dilation
        h = mx.pad(h, [(0, 0), ((k - 1) * d, 0), (0, 0)])
        return mx.conv1d(h, c.weight, dilation=d) + c.bias

    keep = 1.0 - blk.dropout
    out = mx.where(keeps[0], blk.activation1(conv(blk.conv1, x)) / keep, 0)
    out = mx.where(keeps[1], blk.activation2(conv(blk.conv2, out)) / keep, 0)
    res = x if blk.downsample is None else blk.downsample(x)
    return blk.activation_final(out + res)


@pytest.mark.parametrize("use_gate", [False, True])
def test_training_mode_dropout_draws_the_same_masks_in_the_same_order(use_gate: bool) -> None:
    blk = TemporalBlock(3, 5, kernel_size=3, stride=1, dilation=2, dropout=0.3,
                        use_norm=None, use_gate=use_gate, causal=True)  # fmt: skip
    blk.train()
    x = mx.random.normal((1, 11, 3))  # one row: no split over CPU streams
    mx.random.seed(7)
    got, _ = blk(x)
    mx.random.seed(7)
    keeps = [mx.random.bernoulli(0.7, (1, 11, 5)), mx.random.bernoulli(0.7, (1, 11, 5))]
    np.testing.assert_allclose(got, _reference_block(blk, x, keeps), rtol=1e-5, atol=1e-5)


def test_gradients_reach_a_parametrised_activation_and_the_biases() -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = mx.array([1.5])

        def __call__(self, x: mx.array) -> mx.array:
            return nn.relu(x) * self.scale

    x = mx.random.normal((2, 9, 3))

    def grads_of(activation):
        blk = TemporalBlock(3, 4, kernel_size=2, stride=1, dilation=1, dropout=0.0,
                            use_norm="weight_norm", activation=activation,
                            causal=True)  # fmt: skip
        return blk, nn.value_and_grad(blk, lambda m, x: m(x)[0].sum())(blk, x)[1]

    blk, g = grads_of(Scaled)
    assert float(mx.abs(g["activation1"]["scale"]).sum()) > 0
    # relu: the fused path's bias gradients equal those of the op-by-op block
    blk, g = grads_of("relu")
    params = {c: {"weight": getattr(blk, c).weight, "bias": getattr(blk, c).bias}
              for c in ("conv1", "conv2")}  # fmt: skip
    ref = mx.grad(lambda p: _reference_block_params(blk, x, p))(params)
    for c in ("conv1", "conv2"):
        np.testing.assert_allclose(g[c]["bias"], ref[c]["bias"], rtol=1e-4, atol=1e-5)


def _reference_block_params(blk: TemporalBlock, x: mx.array, p: dict) -> mx.array:
    def conv(c, h):
        k, d = p[c]["weight"].shape[1], getattr(blk, c).dilation
        h = mx.pad(h, [(0, 0), ((k - 1) * d, 0), (0, 0)])
        return mx.conv1d(h, p[c]["weight"], dilation=d) + p[c]["bias"]

    out = nn.relu(conv("conv2", nn.relu(conv("conv1", x))))
    res = x if blk.downsample is None else blk.downsample(x)
    return nn.relu(out + res).sum()
