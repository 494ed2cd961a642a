"""The spec's (the original README's) code examples, each run as written with the model it
belongs to, and the clear errors a strictly sequential reading runs into."""

from __future__ import annotations

import mlx.core as mx
import mlx.utils
import numpy as np
import pytest

import mlx_tcn
from mlx_tcn import TCN, BufferIO


def _example_1():
    model = TCN(
        num_inputs=64,
        num_channels=[128, 128, 256],
        kernel_sizes=3,
        dropout=0.1,
        causal=True,
        use_skip_connections=True,
        embedding_shapes=None,
        embedding_mode="add",
    )

    x = mx.random.normal((8, 200, 64))
    logits = model(x, embeddings=None)
    return model, x, logits


def _example_embeddings_model():
    return TCN(
        num_inputs=32,
        num_channels=[64, 64],
        kernel_sizes=5,
        embedding_shapes=[(16,), (8,)],
        embedding_mode="concat",
    )


def _example_se_with_gate_and_embeddings():
    return TCN(
        num_inputs=32,
        num_channels=[64, 128],
        kernel_sizes=3,
        use_se=True,
        se_reduction=4,
        use_gate=True,  # Combine SE with gated activations
        embedding_shapes=[(16,)],  # And embeddings
        embedding_mode="add",
    )


def test_constructing_a_tcn():
    model, x, logits = _example_1()
    assert logits.shape == (8, 200, 256)
    assert np.isfinite(np.array(logits)).all()


def test_conditioning_with_embeddings():
    model = _example_embeddings_model()
    x = mx.random.normal((8, 200, 32))  # the example needs a 32-channel x
    embeddings = [
        mx.random.normal((8, 16)),  # broadcast across time
        mx.random.normal((8, 200, 8)),  # time-aligned
    ]
    logits = model(x, embeddings=embeddings)
    assert logits.shape == (8, 200, 64)


def test_embeddings_example_read_in_sequence_gets_a_clear_channel_error():
    _, x, _ = _example_1()  # x of the first example has 64 channels
    model = _example_embeddings_model()
    embeddings = [mx.random.normal((8, 16)), mx.random.normal((8, 200, 8))]
    with pytest.raises(ValueError, match="x has 64 channels .* but 32 are expected"):
        model(x, embeddings=embeddings)


def test_squeeze_and_excitation_example_at_batch_4():
    model = TCN(
        num_inputs=32,
        num_channels=[64, 128, 256],
        kernel_sizes=3,
        causal=True,
        use_se=True,  # Enable SE blocks
        se_reduction=8,  # Reduction ratio for bottleneck (default: 8)
        se_residual=False,  # Add residual connection inside SE (default: False)
    )

    x = mx.random.normal((4, 100, 32))
    out = model(x, inference=True)
    assert out.shape == (4, 100, 256)
    # a fresh stream over the whole sequence is the offline output in eval mode
    assert model.training
    model.eval()
    np.testing.assert_allclose(np.array(out), np.array(model(x)), rtol=1e-4, atol=1e-5)


def test_se_combined_with_gate_and_embeddings():
    model = _example_se_with_gate_and_embeddings()
    out = model(mx.random.normal((2, 30, 32)), embeddings=[mx.random.normal((2, 16))])
    assert out.shape == (2, 30, 128)
    assert model.network[0].use_gate and model.network[0].use_se


@pytest.mark.parametrize("batch", [1, 4])
def test_streaming_inference(batch):
    model, _, _ = _example_1()  # causal, 64 inputs, no embeddings
    from mlx_tcn import BufferIO  # noqa: F811 -- as in the example

    model.reset_buffers()
    buffers = [BufferIO() for _ in range(len(model.network) * 2)]

    chunk = mx.random.normal((batch, 25, 64))
    stream_out = model(chunk, embeddings=None, inference=True, in_buffer=buffers)
    assert stream_out.shape == (batch, 25, 256)

    # the same buffers continue the stream: two chunks equal the offline output
    chunk2 = mx.random.normal((batch, 10, 64))
    stream_out2 = model(chunk2, embeddings=None, inference=True, in_buffer=buffers)
    model.eval()
    offline = model(mx.concatenate([chunk, chunk2], axis=1))
    streamed = mx.concatenate([stream_out, stream_out2], axis=1)
    np.testing.assert_allclose(np.array(streamed), np.array(offline), rtol=1e-4, atol=1e-5)


def test_streaming_example_read_in_sequence_gets_clear_errors():
    # the model just before the streaming example: 32 inputs, embeddings, not causal
    model = _example_se_with_gate_and_embeddings()
    model.reset_buffers()
    buffers = [BufferIO() for _ in range(len(model.network) * 2)]
    chunk = mx.random.normal((1, 25, 64))
    with pytest.raises(ValueError, match="x has 64 channels .* but 32 are expected"):
        model(chunk, embeddings=None, inference=True, in_buffer=buffers)
    chunk32 = mx.random.normal((1, 25, 32))
    with pytest.raises(
        ValueError, match=r"built with embedding_shapes=\[\(16,\)\]: pass embeddings"
    ):
        model(chunk32, embeddings=None, inference=True, in_buffer=buffers)
    with pytest.raises(
        ValueError, match="needs a causal model; this TCN was built with causal=False"
    ):
        model(chunk32, embeddings=[mx.random.normal((1, 16))], inference=True, in_buffer=buffers)


def test_streaming_a_causal_model_that_needs_embeddings_says_so():
    model = TCN(64, [32, 32], kernel_sizes=3, causal=True, embedding_shapes=[(16,)])
    buffers = [BufferIO() for _ in range(len(model.network) * 2)]
    with pytest.raises(ValueError, match="pass embeddings"):
        model(mx.random.normal((1, 25, 64)), embeddings=None, inference=True, in_buffer=buffers)


@pytest.mark.parametrize("name", ["xavier_normal", "he_uniform"])
def test_training_tip_kernel_initilaizer_keys(name):
    with pytest.warns(DeprecationWarning, match="kernel_initilaizer"):
        model = TCN(8, [16], kernel_initilaizer=name)
    assert model.config["kernel_initializer"] == name


def test_se_parameter_formula_from_the_guide():
    # "With channels=128 and reduction=8, SE adds ~4K parameters (128x16 + 16x128)"
    with_se = TCN(128, [128], kernel_sizes=3, use_se=True, se_reduction=8)
    without = TCN(128, [128], kernel_sizes=3)

    def count(m):
        return sum(v.size for _, v in mlx.utils.tree_flatten(m.parameters()))

    assert count(with_se) - count(without) == 128 * 16 + 16 * 128 + 16 + 128


def test_components_are_importable_from_the_package():
    for name in [
        "TCN",
        "TemporalBlock",
        "TemporalConv1d",
        "TemporalConvTransposed1d",
        "TemporalPad1d",
        "BufferIO",
        "SqueezeExcitation",
        "ModuleList",
        "AdaptiveAvgPool1d",
        "AdaptiveMaxPool1d",
        "weight_norm",
        "remove_weight_norm",
    ]:
        assert hasattr(mlx_tcn, name), name
    # the spec's initialisers live in mlx_tcn/init.py (the old top-level names: test_init.py)
    for name in ["calculate_gain", "he_uniform", "xavier_uniform", "normal", "uniform"]:
        assert hasattr(mlx_tcn.init, name), name
