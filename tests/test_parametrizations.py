"""weight_norm / remove_weight_norm on mlx-tcn's convolutions."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_tcn import (
    TCN,
    TemporalConv1d,
    TemporalConvTransposed1d,
    remove_weight_norm,
    weight_norm,
)
from mlx_tcn.parametrizations import (
    compute_weight,
    fold_weight_norm,
    folded_copy,
    get_weight,
    is_weight_normed,
)


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


@pytest.mark.parametrize("dim", [0, -3, 1, -1, None])
def test_compute_weight_against_numpy_eager_and_compiled(rng, dim):
    v = rng.standard_normal((5, 3, 4)).astype(np.float32)
    axes = tuple(range(3)) if dim is None else tuple(a for a in range(3) if a != dim % 3)
    g = rng.uniform(0.5, 2.0, np.sqrt((v**2).sum(axis=axes, keepdims=True)).shape)
    g = g.astype(np.float32)
    expected = g * v / np.sqrt((v**2).sum(axis=axes, keepdims=True))
    eager = compute_weight(mx.array(g), mx.array(v), dim)
    compiled = mx.compile(lambda g, v: compute_weight(g, v, dim))(mx.array(g), mx.array(v))
    for got in (eager, compiled):
        assert got.shape == v.shape
        np.testing.assert_allclose(np.array(got), expected, rtol=1e-5, atol=1e-6)


def test_compute_weight_gradients_match_the_plain_formula(rng):
    g = mx.array(rng.uniform(0.5, 2.0, (6, 1, 1)).astype(np.float32))
    v = mx.array(rng.standard_normal((6, 3, 5)).astype(np.float32))
    probe = mx.array(rng.standard_normal((6, 3, 5)).astype(np.float32))

    def plain(g, v):
        return v * (g * mx.rsqrt(mx.sum(v * v, axis=(1, 2), keepdims=True)))

    got = mx.grad(lambda g, v: (compute_weight(g, v) * probe).sum(), argnums=(0, 1))(g, v)
    want = mx.grad(lambda g, v: (plain(g, v) * probe).sum(), argnums=(0, 1))(g, v)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-6)


def test_compiled_weight_norm_takes_one_square_root_per_row():
    """Compiled, the full-size multiply must not also compute the scale: MLX would fuse
    ``rsqrt`` into it and take it once per element of ``v`` (3x slower at 256 channels)."""
    import io
    import re

    f = mx.compile(lambda g, v: compute_weight(g, v))
    out = f(mx.ones((8, 1, 1)), mx.ones((8, 3, 4)))
    dot = io.StringIO()
    mx.export_to_dot(dot, out)
    kernels = re.findall(r'label ="(Compiled[A-Za-z]*)', dot.getvalue())
    assert any("Rsqrt" in k for k in kernels)  # the scale is still one fused kernel
    assert not [k for k in kernels if "Rsqrt" in k and "Broadcast" in k], kernels
    np.testing.assert_allclose(np.array(out), np.full((8, 3, 4), 1 / np.sqrt(12)), rtol=1e-6)


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
    for dim in (1.0, True):  # were accepted as axes 1 and 1
        with pytest.raises(TypeError, match=f"dim must be None or an int axis, got {dim}"):
            weight_norm(conv, dim=dim)
    with pytest.raises(ValueError, match="'weight' of TemporalConv1d is not weight-normalised"):
        remove_weight_norm(conv)
    weight_norm(conv)
    with pytest.raises(ValueError, match="already weight-normalised"):
        weight_norm(conv)


# -- layer.weight under weight norm; folding a whole model --------------------------------


@pytest.mark.parametrize(
    "make",
    [_conv, lambda: TemporalConvTransposed1d(3, 2, 4, stride=2)],
    ids=["conv", "transposed"],
)
def test_weight_shows_the_effective_weight_read_only(make):
    layer = weight_norm(make())
    layer.weight_g = layer.weight_g * 3.0  # training moved the magnitude
    expected = np.array(compute_weight(layer.weight_g, layer.weight_v))
    np.testing.assert_array_equal(np.array(layer.weight), expected)
    with pytest.raises(AttributeError, match="weight-normalised: it is computed from weight_g"):
        layer.weight = mx.zeros(layer.weight_v.shape)
    # still only g and v: strict loading and saved keys are as before
    assert {k for k, _ in tree_flatten(layer.parameters())} == {"bias", "weight_g", "weight_v"}
    assert "weight" not in layer
    remove_weight_norm(layer)
    layer.weight = mx.zeros(layer.weight.shape)  # a plain weight is a parameter again
    assert {k for k, _ in tree_flatten(layer.parameters())} == {"bias", "weight"}
    assert not np.array(layer.weight).any()


def test_plain_weight_is_an_ordinary_parameter():
    conv = _conv()
    w = mx.ones(conv.weight.shape)
    conv.weight = w
    assert conv["weight"] is w and conv.weight is w
    with pytest.raises(TypeError, match="weight must be an mlx.core.array, got list"):
        conv.weight = [1.0]
    conv.load_weights([("weight", mx.zeros(w.shape)), ("bias", conv.bias)], strict=True)
    assert not np.array(conv.weight).any()


def test_fold_weight_norm_folds_every_layer_in_place(rng):
    model = TCN(3, [4, 4], kernel_sizes=3, causal=True)
    model.eval()
    x = mx.array(rng.standard_normal((2, 6, 3)).astype(np.float32))
    y = np.array(model(x))
    assert fold_weight_norm(model) is model
    assert not any(is_weight_normed(m) for _, m in model.named_modules())
    np.testing.assert_allclose(np.array(model(x)), y, rtol=1e-5, atol=1e-6)


def test_folded_copy_shares_arrays_and_leaves_the_model_alone(rng):
    model = TCN(3, [4, 4], kernel_sizes=3, causal=True, dropout=0.3)
    x = mx.array(rng.standard_normal((2, 6, 3)).astype(np.float32))
    copy = folded_copy(model)
    copy.eval()
    assert model.training and is_weight_normed(model.network[0].conv1)
    assert "weight" in copy.network[0].conv1 and "weight_v" not in copy.network[0].conv1
    assert copy.network[1].conv2.bias is model.network[1].conv2.bias  # shared, not copied
    model.eval()
    np.testing.assert_allclose(np.array(copy(x)), np.array(model(x)), rtol=1e-5, atol=1e-6)


def test_weight_norm_of_another_parameter_is_refused():
    # Before: weight_norm(conv, name="bias") was accepted and the bias was then dropped.
    conv = _conv()
    with pytest.raises(ValueError, match="reparametrises a layer's weight .* got name='bias'"):
        weight_norm(conv, name="bias")
    with pytest.raises(TypeError, match="module must be an mlx.nn.Module, got int"):
        remove_weight_norm(3)


def test_half_precision_gain_does_not_overflow():
    # ||v|| = 100 * sqrt(512) = 2262.7: its square overflows float16 (torch sums in float32).
    conv = TemporalConv1d(128, 2, 4, bias=False)
    conv.weight = mx.full((2, 4, 128), 100.0, dtype=mx.float16)
    weight_norm(conv)
    np.testing.assert_allclose(
        np.array(conv.weight_g.astype(mx.float32)).ravel(), 2262.0, rtol=1e-3
    )
    w = np.array(get_weight(conv).astype(mx.float32))
    assert np.isfinite(w).all() and abs(w[0, 0, 0] - 100.0) < 0.1
    assert get_weight(conv).dtype == mx.float16


def test_freezing_survives_weight_norm_both_ways():
    # Before: a frozen convolution became trainable when weight-normalised, as torch keeps
    # requires_grad=False on original0/original1.
    conv = _conv()
    conv.freeze(keys=["weight"], recurse=False)
    weight_norm(conv)
    names = [k for k, _ in tree_flatten(conv.trainable_parameters())]
    assert "weight_g" not in names and "weight_v" not in names and "bias" in names
    remove_weight_norm(conv)
    assert "weight" not in [k for k, _ in tree_flatten(conv.trainable_parameters())]
    conv.unfreeze()
    weight_norm(conv)
    conv.freeze(keys=["weight_g"], recurse=False)  # half frozen: the folded weight trains
    remove_weight_norm(conv)
    assert "weight" in [k for k, _ in tree_flatten(conv.trainable_parameters())]
