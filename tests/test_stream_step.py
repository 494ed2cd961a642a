"""The deployed stream step, ``model.stream_step()`` (issue 14): a frozen, folded, compiled
copy whose convolutions use GEMM matrices laid out once. Its output must equal the offline
output in every configuration it serves, at batch 1 and 32, one step at a time and in
chunks (one-step chunks take the strided-slice window, longer ones the strided view, chunks
over 64 steps the GEMM per tap); and it must stay a few operations per convolution.
"""

from __future__ import annotations

import io
import re

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten
from test_streaming import (
    assert_close_or_as_exact,
    randomise_batch_norm,
    slice_embeddings,
    splits,
)

from mlx_tcn import TCN, TemporalConv1d

# every test here runs with the state's buffers shifted and as rings (conftest.state_layout)
pytestmark = pytest.mark.usefixtures("state_layout")

LENGTH = 20
# one-step chunks, then chunks of 3 and 7 (the strided window), then the rest
MIXED = [1, 1, 3, 7, 1, 2, 5]

CONFIGS = {
    "plain": dict(num_channels=[6, 6, 5], kernel_sizes=3),
    "kernel 1": dict(num_channels=[4, 4], kernel_sizes=1),
    "kernel 1 and even": dict(num_channels=[4, 5, 4], kernel_sizes=[1, 4, 2]),
    # buffers longer than the sequence: every tap but the last reads the initial state
    "dilation over length": dict(num_channels=[4, 4, 4], kernel_sizes=3, dilations=[1, 16, 32]),
    "skip connections": dict(
        num_channels=[4, 6, 5],
        kernel_sizes=2,
        use_skip_connections=True,
        output_projection=3,
        output_activation="tanh",
    ),
    "embeddings add": dict(
        num_channels=[5, 5], kernel_sizes=3, embedding_shapes=[(2,), (3,)], embedding_mode="add"
    ),
    "embeddings concat": dict(
        num_channels=[5, 4], kernel_sizes=4, embedding_shapes=[(2,), (3,)], embedding_mode="concat"
    ),
    "gate, SE, layer norm": dict(
        num_channels=[6, 6],
        kernel_sizes=3,
        use_gate=True,
        use_se=True,
        se_reduction=2,
        use_norm="layer_norm",
        activation="gelu",
    ),
    "batch norm": dict(num_channels=[5, 5], kernel_sizes=5, use_norm="batch_norm"),
    "replicate padding": dict(num_channels=[4, 4], kernel_sizes=3),
}


def build(name: str) -> TCN:
    mx.random.seed(7)
    config = dict(num_inputs=3, causal=True, dropout=0.0, use_norm="weight_norm")
    config.update(CONFIGS[name])
    model = TCN(**config)
    if name == "replicate padding":
        for block in model.network:
            for conv in (block.conv1, block.conv2):
                conv.padder.padding_mode = "replicate"
    randomise_batch_norm(model, 3)
    model.eval()
    return model


def embeddings_for(model: TCN, batch: int, length: int) -> list[mx.array] | None:
    if model.embedding_shapes is None:
        return None
    return [mx.random.normal((batch, 2)), mx.random.normal((batch, length, 3))]


def run_step(step, model: TCN, x: mx.array, sizes: list[int], embeddings, dtype=mx.float32):
    state = model.init_state(x.shape[0], dtype)
    outs = []
    for start, stop in splits(sizes):
        e = slice_embeddings(embeddings, start, stop)
        y, state = step(x[:, start:stop], state) if e is None else step(x[:, start:stop], state, e)
        mx.eval(y, state)
        outs.append(y)
    return mx.concatenate(outs, axis=1)


@pytest.mark.parametrize("batch", [1, 32])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_stream_step_equals_offline(name, batch):
    model = build(name)
    x = mx.random.normal((batch, LENGTH, 3))
    embeddings = embeddings_for(model, batch, LENGTH)
    offline = model(x, embeddings)
    step = model.stream_step()
    for sizes in ([1] * LENGTH, MIXED):
        streamed = run_step(step, model, x, sizes, embeddings)
        assert_close_or_as_exact(model, x, embeddings, streamed, offline)


def test_stream_step_long_chunks_equal_offline():
    """Chunks over 64 steps take the GEMM per tap; the frozen matrices are not used there."""
    model = build("plain")
    x = mx.random.normal((2, 150, 3))
    streamed = run_step(model.stream_step(), model, x, [70, 1, 79], None)
    assert_close_or_as_exact(model, x, None, streamed, model(x))


def test_bfloat16_stream_step_equals_offline():
    """A bfloat16 model: the frozen matrices are float32 (what the convolution computes
    in), and the step rounds where the offline pass rounds."""
    model = build("skip connections")
    model.set_dtype(mx.bfloat16)
    x = mx.random.normal((4, LENGTH, 3)).astype(mx.bfloat16)
    offline = model(x)
    streamed = run_step(model.stream_step(), model, x, MIXED, None, mx.bfloat16)
    assert streamed.dtype == offline.dtype == mx.bfloat16
    np.testing.assert_allclose(
        np.array(streamed.astype(mx.float32)), np.array(offline.astype(mx.float32)), atol=2e-2
    )


def test_frozen_matrix_is_only_used_with_its_weight():
    """The matrix a stream step laid out once follows its weight array: a copy whose
    convolution or linear weight is replaced computes with the new weight, and the model
    itself holds no matrix."""
    model = build("plain")
    step = model.stream_step(compile=False)
    frozen = step.__self__
    conv, downsample = frozen.network[1].conv2, frozen.network[0].downsample
    assert "_frozen_matrix" in conv.__dict__ and "_frozen_matrix" in downsample.__dict__
    assert all("_frozen_matrix" not in m.__dict__ for m in model.modules())
    assert not any("frozen" in k for k, _ in tree_flatten(frozen.parameters()))

    # the frozen matrices no longer fit: the layers compute with their new weights
    conv.weight = conv.weight * -2.0
    downsample.weight = downsample.weight * 3.0
    x = mx.random.normal((2, LENGTH, 3))
    streamed = run_step(step, frozen, x, [1] * LENGTH, None)
    np.testing.assert_allclose(np.array(streamed), np.array(frozen(x)), atol=1e-5, rtol=1e-5)
    changed = model(x)
    assert np.abs(np.array(streamed) - np.array(changed)).max() > 1e-2


def test_exported_stream_step_uses_the_frozen_matrices(tmp_path):
    """The frozen step exports like ``stream`` (state as flat arrays) and streams exactly."""
    from mlx.utils import tree_unflatten

    model = build("embeddings concat")
    step = model.stream_step(compile=False)
    like = model.init_state(2)
    keys = [k for k, _ in tree_flatten(like)]

    def flat_step(x, e0, e1, *flat):
        y, new = step(x, tree_unflatten(list(zip(keys, flat, strict=True))), [e0, e1])
        return (y, *[v for _, v in tree_flatten(new)])

    path = str(tmp_path / "step.mlxfn")
    flat = [v for _, v in tree_flatten(like)]
    x = mx.random.normal((2, LENGTH, 3))
    e = embeddings_for(model, 2, LENGTH)
    mx.export_function(path, flat_step, x[:, :1], e[0], e[1][:, :1], *flat)
    imported = mx.import_function(path)
    outs = []
    for t in range(LENGTH):
        y, *flat = imported(x[:, t : t + 1], e[0], e[1][:, t : t + 1], *flat)
        outs.append(y)
    offline = model(x, e)
    assert_close_or_as_exact(model, x, e, mx.concatenate(outs, axis=1), offline)


# -- the number of operations ------------------------------------------------------------


def primitive_count(*outputs: mx.array) -> int:
    """Primitives in the graph behind ``outputs`` (a compiled call's graph holds its fused
    element-wise kernels as one primitive each)."""
    dot = io.StringIO()
    mx.export_to_dot(dot, *outputs)
    return len(re.findall(r"shape=rectangle", dot.getvalue()))


@pytest.mark.parametrize(("batch", "per_conv"), [(1, 7), (32, 8)])
def test_compiled_step_stays_a_few_operations_per_convolution(batch, per_conv):
    """A batch-1 stream step costs per operation (a few microseconds each, the arithmetic
    is less), so the count is the cost. At batch 1 each convolution is the state
    concatenation, the kept-state slice, the tap slice, the window copy, one GEMM and a
    fused bias + activation (+ residual) kernel: 6 (at batch 32 the 2-D GEMM adds a
    reshape of its output). It was 13 (a slice per tap, two concatenations, the weight reshaped and
    transposed every step, a bias broadcast into an addmm between reshapes). The bound
    leaves one per convolution for MLX's own changes.
    """
    mx.random.seed(0)
    model = TCN(16, [16] * 6, kernel_sizes=3, causal=True)
    model.eval()
    step = model.stream_step()
    state = model.init_state(batch)
    x = mx.random.normal((batch, 1, 16))
    mx.eval(state, x)
    y, new_state = step(x, state)
    convs = sum(isinstance(m, TemporalConv1d) for m in model.modules())
    count = primitive_count(y, *[v for _, v in tree_flatten(new_state)])
    assert count <= per_conv * convs, f"{count} primitives for {convs} convolutions"
