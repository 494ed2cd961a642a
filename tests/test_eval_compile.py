"""Small eval-mode forwards run compiled (mlx_tcn._eval_compile): same outputs as the eager
forward, compiled only when it is safe and pays, and never stale."""

from __future__ import annotations

import gc
import weakref

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlx_tcn import TCN, _eval_compile
from mlx_tcn.tcn import TCN as TCNClass

pytestmark = pytest.mark.usefixtures("on_cpu")


@pytest.fixture
def eager_calls(monkeypatch):
    """How many times the eager offline forward ran (a trace counts as one)."""
    calls = []
    real = TCNClass._offline_eager

    def counting(self, x, e):
        calls.append(x.shape)
        return real(self, x, e)

    monkeypatch.setattr(TCNClass, "_offline_eager", counting)
    return calls


def _model(**kwargs) -> TCN:
    config = dict(num_inputs=3, num_channels=[8, 8, 6], kernel_sizes=3, dropout=0.2)
    config.update(kwargs)
    model = TCN(**config)
    model.eval()
    return model


def _eager(model: TCN, *args, **kwargs) -> np.ndarray:
    model.compile_eval = False
    try:
        return np.array(model(*args, **kwargs))
    finally:
        model.compile_eval = True


CONFIGS = {
    "plain": dict(),
    "weight-norm": dict(use_norm="weight_norm", causal=True),
    "batch-norm": dict(use_norm="batch_norm"),
    "layer-norm, gelu": dict(use_norm="layer_norm", activation="gelu"),
    "skip, projection, output activation": dict(
        use_skip_connections=True, output_projection=2, output_activation="tanh"
    ),
    "se": dict(use_se=True, se_reduction=2),
    "embeddings add": dict(embedding_shapes=[(2,), (4, None)], embedding_mode="add"),
    "embeddings concat": dict(embedding_shapes=[(2,)], embedding_mode="concat"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_compiled_forward_equals_the_eager_one(name, eager_calls, rng):
    model = _model(**CONFIGS[name])
    x = mx.array(rng.standard_normal((2, 21, 3)).astype(np.float32))
    shapes = model.embedding_shapes or []
    emb = [
        mx.array(rng.standard_normal((2, 21, s[0]) if len(s) == 2 else (2, s[0])), mx.float32)
        for s in shapes
    ] or None
    expected = _eager(model, x, emb)
    eager_calls.clear()
    outs = [np.array(model(x, emb)) for _ in range(4)]
    # the first call runs eagerly, the second traces, the others replay the compiled graph
    assert len(eager_calls) == 2
    for out in outs:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_the_trace_runs_on_a_copy_and_leaves_the_model_alone(monkeypatch, rng):
    """The model never holds a traced array, not even during the trace: another thread
    may be running it eagerly at that moment."""
    from mlx.utils import tree_flatten

    model = _model(use_norm="weight_norm", causal=True)
    before = {k: v for k, v in tree_flatten(model.parameters())}
    seen = []
    real = TCNClass._offline_eager

    def watching(self, x, e):
        # every array of the model as it is while this forward runs
        seen.append((self is model, {k: v for k, v in tree_flatten(model.parameters())}))
        return real(self, x, e)

    monkeypatch.setattr(TCNClass, "_offline_eager", watching)
    x = mx.array(rng.standard_normal((1, 18, 3)).astype(np.float32))
    for _ in range(3):
        model(x)
    assert [is_model for is_model, _ in seen] == [True, False]  # eager call, then the trace
    for _, arrays in seen:
        assert arrays.keys() == before.keys()
        assert all(arrays[k] is before[k] for k in before)


def test_new_weights_reach_the_compiled_forward(rng):
    model = _model(use_norm="weight_norm", causal=True)
    x = mx.array(rng.standard_normal((1, 30, 3)).astype(np.float32))
    for _ in range(3):
        model(x)
    # replaced arrays
    conv = model.network[1].conv1
    conv.weight_v = conv.weight_v * 2.0 + 0.1
    model.network[2].conv2.bias = mx.ones_like(model.network[2].conv2.bias)
    np.testing.assert_allclose(np.array(model(x)), _eager(model, x), rtol=1e-5, atol=1e-6)
    # an array changed in place (the same Python object)
    before = np.array(model(x))
    model.network[0].conv1.weight_g[0] = 5.0
    after = np.array(model(x))
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, _eager(model, x), rtol=1e-5, atol=1e-6)


def test_a_changed_layer_or_mode_is_not_served_stale(eager_calls, rng):
    model = _model()
    x = mx.array(rng.standard_normal((1, 25, 3)).astype(np.float32))
    for _ in range(3):
        model(x)
    # an activation swapped for another (no arrays change)
    model.network[1].activation_final = nn.GELU()
    np.testing.assert_allclose(np.array(model(x)), _eager(model, x), rtol=1e-5, atol=1e-6)
    # a layer replaced by one of the same shape
    model.network[2].conv1 = type(model.network[2].conv1)(8, 6, 3, dilation=4, causal=False)
    np.testing.assert_allclose(np.array(model(x)), _eager(model, x), rtol=1e-5, atol=1e-6)
    # weight norm removed: other arrays, other graph
    model.remove_weight_norm()
    np.testing.assert_allclose(np.array(model(x)), _eager(model, x), rtol=1e-5, atol=1e-6)
    # back in training mode: eager (dropout draws), every call
    model.train()
    eager_calls.clear()
    for _ in range(3):
        model(x)
    assert len(eager_calls) == 3


def test_only_repeated_small_shapes_on_own_layers_compile(eager_calls, monkeypatch, rng):
    model = _model()
    # shapes seen once stay eager
    for length in range(10, 20):
        model(mx.zeros((1, length, 3)))
    assert len(eager_calls) == 10
    # at most MAX_SIGNATURES shapes are compiled; the rest stay eager
    monkeypatch.setattr(_eval_compile, "MAX_SIGNATURES", 2)
    eager_calls.clear()
    for length in (30, 31, 32):
        for _ in range(3):
            model(mx.zeros((1, length, 3)))
    assert eager_calls.count((1, 30, 3)) == eager_calls.count((1, 31, 3)) == 2
    assert eager_calls.count((1, 32, 3)) == 3
    # over MAX_VALUES values in the widest layer: eager
    eager_calls.clear()
    long = mx.zeros((2, _eval_compile.MAX_VALUES // 16 + 1, 3))
    for _ in range(3):
        model(long)
    assert len(eager_calls) == 3
    # turned off for this model
    model.compile_eval = False
    eager_calls.clear()
    for _ in range(3):
        model(mx.zeros((1, 30, 3)))
    assert len(eager_calls) == 3


def test_a_forward_that_cannot_be_traced_runs_eagerly(eager_calls, monkeypatch, rng):
    attempts = []

    def untraceable(_model):
        attempts.append(1)
        raise ValueError("[compile] something MLX cannot trace")

    monkeypatch.setattr(_eval_compile, "copy_tree", untraceable)
    model = _model(use_norm="weight_norm", causal=True)
    x = mx.array(rng.standard_normal((1, 14, 3)).astype(np.float32))
    expected = _eager(model, x)
    eager_calls.clear()
    for _ in range(4):
        np.testing.assert_allclose(np.array(model(x)), expected, rtol=1e-6, atol=1e-7)
    assert len(eager_calls) == 4
    assert len(attempts) == 1  # tried once, then eager without trying again


class _Scaled(nn.Module):
    """A user's layer: its Python could do what a compiled call would skip."""

    def __call__(self, x: mx.array) -> mx.array:
        return 2.0 * x


def test_a_users_activation_function_keeps_the_forward_eager(eager_calls, rng):
    seen = []

    def counted_relu(x):  # a side effect that a compiled call would run only once
        seen.append(1)
        return mx.maximum(x, 0)

    model = _model(activation=counted_relu)
    x = mx.array(rng.standard_normal((1, 12, 3)).astype(np.float32))
    for _ in range(3):
        model(x)
    assert len(eager_calls) == 3
    assert len(seen) == 3 * 3 * 3  # three blocks, three activations each, every call


def test_a_users_layer_keeps_the_forward_eager(eager_calls, rng):
    model = _model()
    model.network[0].activation_final = _Scaled()
    x = mx.array(rng.standard_normal((1, 12, 3)).astype(np.float32))
    for _ in range(3):
        model(x)
    assert len(eager_calls) == 3


class _Doubled(TCN):
    """A user's subclass: its forward is its own, and stays eager."""

    def _forward(self, x, e, state, eval_mode):
        y, new_state = super()._forward(x, e, state, eval_mode)
        return 2.0 * y, new_state


def test_a_users_subclass_keeps_its_own_forward(eager_calls, rng):
    model = _Doubled(num_inputs=3, num_channels=[8, 6], kernel_sizes=3)
    model.eval()
    plain = TCN(num_inputs=3, num_channels=[8, 6], kernel_sizes=3)
    plain.update(model.parameters())
    plain.eval()
    x = mx.array(rng.standard_normal((1, 12, 3)).astype(np.float32))
    expected = 2.0 * _eager(plain, x)
    eager_calls.clear()
    for _ in range(3):
        np.testing.assert_allclose(np.array(model(x)), expected, rtol=1e-5, atol=1e-6)
    assert len(eager_calls) == 3


def test_a_shallow_copy_runs_its_own_weights(rng):
    import copy

    model = _model()
    x = mx.array(rng.standard_normal((1, 15, 3)).astype(np.float32))
    for _ in range(3):
        model(x)
    twin = copy.copy(model)  # shares the original's attributes, the cache among them
    twin.network = copy.copy(model.network)
    twin.network[0] = _model().network[0]  # other weights in its first block
    expected = _eager(twin, x)
    assert np.abs(expected - np.array(model(x))).max() > 1e-3
    for _ in range(3):
        np.testing.assert_allclose(np.array(twin(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(model(x)), _eager(model, x), rtol=1e-5, atol=1e-6)


def test_the_cache_does_not_keep_a_model_alive():
    model = _model()
    x = mx.zeros((1, 16, 3))
    for _ in range(3):
        mx.eval(model(x))
    ref = weakref.ref(model)
    enabled = gc.isenabled()
    gc.disable()  # freed by reference counting alone, not by a cycle collection
    try:
        del model
        assert ref() is None
    finally:
        if enabled:
            gc.enable()


def test_gradients_through_a_compiled_eval_forward(rng):
    model = _model(use_norm="weight_norm", causal=True)
    x = mx.array(rng.standard_normal((1, 20, 3)).astype(np.float32))
    for _ in range(3):
        model(x)

    def loss(m: TCN, x: mx.array) -> mx.array:
        return (m(x) ** 2).sum()

    grads = nn.value_and_grad(model, loss)(model, x)[1]
    model.compile_eval = False
    expected = nn.value_and_grad(model, loss)(model, x)[1]
    conv = model.network[1].conv2
    for name in ("weight_g", "weight_v", "bias"):
        got = grads["network"][1]["conv2"][name]
        want = expected["network"][1]["conv2"][name]
        assert got.shape == getattr(conv, name).shape
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-6)
