"""copy.deepcopy of models and layers: independent copies that compute the same."""

from __future__ import annotations

import copy

import mlx.core as mx
import numpy as np
import pytest

from mlx_tcn import TCN, TemporalBlock, TemporalConv1d


@pytest.mark.parametrize(
    "config",
    [
        dict(),
        dict(
            activation="gelu",
            use_skip_connections=True,
            output_projection=2,
            output_activation="tanh",
        ),
        dict(use_norm="batch_norm", use_se=True, se_reduction=2),
        dict(embedding_shapes=[(2,)], embedding_mode="concat", use_gate=True),
    ],
)
def test_a_deep_copy_computes_the_same_and_is_independent(config, rng):
    model = TCN(num_inputs=3, num_channels=[8, 6], kernel_sizes=3, causal=True, **config)
    model.eval()
    x = mx.array(rng.standard_normal((2, 19, 3)).astype(np.float32))
    emb = (
        [mx.array(rng.standard_normal((2, 2)).astype(np.float32))]
        if "embedding_shapes" in config
        else None
    )
    for _ in range(3):  # the eval forward compiled and cached before the copy
        expected = np.array(model(x, emb))
    twin = copy.deepcopy(model)
    assert twin.training is False and twin.config == model.config
    for _ in range(3):
        np.testing.assert_allclose(np.array(twin(x, emb)), expected, rtol=1e-6, atol=1e-7)
    # the copy's arrays are its own, even when changed in place
    conv = twin.network[0].conv1
    name = "weight_v" if "weight_v" in conv else "weight"
    conv[name][0] = 3.0
    twin.network[1].conv2.bias = twin.network[1].conv2.bias + 1.0
    assert np.abs(np.array(twin(x, emb)) - expected).max() > 1e-3
    np.testing.assert_allclose(np.array(model(x, emb)), expected, rtol=1e-6, atol=1e-7)


def test_a_copied_stream_continues_on_its_own(rng):
    model = TCN(num_inputs=2, num_channels=[4, 4], kernel_sizes=3, causal=True)
    model.eval()
    chunks = [mx.array(rng.standard_normal((1, 5, 2)).astype(np.float32)) for _ in range(3)]
    model(chunks[0], inference=True)
    twin = copy.deepcopy(model)
    a = np.array(model(chunks[1], inference=True))
    b = np.array(twin(chunks[1], inference=True))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    twin.reset_buffers()  # the copy's stream starts over; the original's goes on
    restarted = np.array(twin(chunks[2], inference=True))
    fresh = TCN(num_inputs=2, num_channels=[4, 4], kernel_sizes=3, causal=True)
    fresh.update(model.parameters())
    fresh.eval()
    np.testing.assert_allclose(restarted, np.array(fresh(chunks[2], inference=True)), rtol=1e-6)
    offline = np.array(model(mx.concatenate(chunks, axis=1)))[:, 10:]
    np.testing.assert_allclose(np.array(model(chunks[2], inference=True)), offline, atol=1e-5)


def test_layers_deep_copy(rng):
    block = TemporalBlock(3, 4, kernel_size=3, dilation=2, causal=True, activation="tanh")
    conv = TemporalConv1d(3, 4, 3, causal=True)
    block.eval()
    x = mx.array(rng.standard_normal((1, 9, 3)).astype(np.float32))
    for layer in (block, conv):
        twin = copy.deepcopy(layer)
        got, want = twin(x), layer(x)
        got = got[0] if isinstance(got, tuple) else got
        want = want[0] if isinstance(want, tuple) else want
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-6, atol=1e-7)
