"""weight_norm / remove_weight_norm on mlx-tcn's convolutions."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_tcn import TemporalConv1d, TemporalConvTransposed1d, remove_weight_norm, weight_norm
from mlx_tcn.parametrizations import compute_weight, get_weight, is_weight_normed


def _conv() -> TemporalConv1d:
    return TemporalConv1d(3, 4, 3, dilation=2, causal=True)


def test_effective_weight_and_output_unchanged(rng):
    conv = _conv()
    x = mx.array(rng.standard_normal((2, 7, 3)).astype(np.float32))
    w, y = np.array(conv.weight), np.array(conv(x))
    weight_norm(conv)
    assert is_weight_normed(conv)
    assert "weight" not in conv
    np.testing.assert_allclose(np.array(get_weight(conv)), w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.array(conv(x)), y, rtol=1e-5, atol=1e-6)


def test_g_and_v_shapes_and_norm_over_every_axis_but_dim():
    conv = _conv()
    w = np.array(conv.weight)
    weight_norm(conv)
    assert conv.weight_g.shape == (4, 1, 1)
    assert conv.weight_v.shape == w.shape == (4, 3, 3)
    np.testing.assert_allclose(
        np.array(conv.weight_g)[:, 0, 0], np.sqrt((w**2).sum(axis=(1, 2))), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("dim", "g_shape", "axes"), [(None, (1, 1, 1), None), (-1, (1, 1, 3), (0, 1))]
)
def test_other_dims(dim, g_shape, axes):
    conv = _conv()
    w = np.array(conv.weight)
    weight_norm(conv, dim=dim)
    assert conv.weight_g.shape == g_shape
    np.testing.assert_allclose(
        np.array(conv.weight_g), np.sqrt((w**2).sum(axis=axes, keepdims=True)), rtol=1e-6
    )
    np.testing.assert_allclose(np.array(get_weight(conv)), w, rtol=1e-6, atol=1e-7)


def test_weight_is_g_times_direction():
    conv = TemporalConv1d(1, 2, 2)
    weight_norm(conv)
    conv.weight_v = mx.array([[[3.0], [4.0]], [[0.0], [-2.0]]])
    conv.weight_g = mx.array([[[10.0]], [[0.5]]])
    np.testing.assert_allclose(
        np.array(get_weight(conv)), [[[6.0], [8.0]], [[0.0], [-0.5]]], rtol=1e-6
    )
    # the scale of v does not matter
    np.testing.assert_allclose(
        np.array(compute_weight(conv.weight_g, 7.0 * conv.weight_v)),
        np.array(get_weight(conv)),
        rtol=1e-6,
    )


def test_matches_torch_weight_norm():
    torch = pytest.importorskip("torch")
    conv = _conv()
    w = np.array(conv.weight)
    weight_norm(conv)
    ref = torch.nn.Conv1d(3, 4, 3)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(w).permute(0, 2, 1))
    ref = torch.nn.utils.parametrizations.weight_norm(ref)
    g = ref.parametrizations.weight.original0.detach().numpy()  # (out, 1, 1)
    np.testing.assert_allclose(np.array(conv.weight_g), g, rtol=1e-6)


def test_gradients_flow_to_g_and_v(rng):
    conv = _conv()
    weight_norm(conv)
    x = mx.array(rng.standard_normal((1, 6, 3)).astype(np.float32))

    def loss(model):
        return (model(x) ** 2).sum()

    _, grads = nn.value_and_grad(conv, loss)(conv)
    flat = dict(tree_flatten(grads))
    assert set(flat) == {"weight_g", "weight_v", "bias"}
    for name in ("weight_g", "weight_v"):
        assert float(mx.abs(flat[name]).sum()) > 0
    # the gradient w.r.t. v is orthogonal to v (the norm removes the radial part)
    dot = (flat["weight_v"] * conv.weight_v).sum(axis=(1, 2))
    np.testing.assert_allclose(np.array(dot), 0, atol=1e-4)


def test_weight_norm_is_a_trainable_reparametrisation():
    conv = weight_norm(_conv())  # returns the module, for chaining
    names = {k for k, _ in tree_flatten(conv.trainable_parameters())}
    assert names == {"weight_g", "weight_v", "bias"}


def test_remove_weight_norm_folds_back(rng):
    conv = _conv()
    x = mx.array(rng.standard_normal((2, 5, 3)).astype(np.float32))
    weight_norm(conv)
    conv.weight_g = conv.weight_g * 2.0  # training changed the magnitude
    w, y = np.array(get_weight(conv)), np.array(conv(x))
    assert remove_weight_norm(conv) is conv
    assert not is_weight_normed(conv)
    assert "weight_g" not in conv and "weight_v" not in conv
    np.testing.assert_array_equal(np.array(conv.weight), w)
    np.testing.assert_allclose(np.array(conv(x)), y, rtol=1e-6)
    weight_norm(conv)  # and it can be applied again


def test_transposed_conv_supports_weight_norm(rng):
    layer = TemporalConvTransposed1d(3, 2, 4, stride=2)
    x = mx.array(rng.standard_normal((1, 4, 3)).astype(np.float32))
    y = np.array(layer(x))
    weight_norm(layer)
    np.testing.assert_allclose(np.array(layer(x)), y, rtol=1e-5, atol=1e-6)


def test_errors():
    with pytest.raises(TypeError, match="module must be an mlx.nn.Module"):
        weight_norm(np.ones(3))
    with pytest.raises(TypeError, match="Linear does not"):
        weight_norm(nn.Linear(2, 2))
    conv = _conv()
    with pytest.raises(ValueError, match="has no array parameter 'kernel'"):
        weight_norm(conv, name="kernel")
    with pytest.raises(ValueError, match="dim must be None or an axis of the 3-d weight, got 3"):
        weight_norm(conv, dim=3)
    with pytest.raises(ValueError, match="'weight' of TemporalConv1d is not weight-normalised"):
        remove_weight_norm(conv)
    weight_norm(conv)
    with pytest.raises(ValueError, match="already weight-normalised"):
        weight_norm(conv)
