"""Streaming tests: streamed output equals offline output, for every causal configuration
and every chunking, at batch size 1 and larger (issue 3).

Covers the explicit API (``init_state``/``stream``/``reset_state``), ``mx.compile`` and
``mx.export_function`` of a stream step, ``save_state``/``load_state``, the stateful API
(``inference=True``, ``reset_buffers``, ``BufferIO``) and the errors.
"""

from __future__ import annotations

import os
import random

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlx.utils import tree_flatten, tree_map, tree_unflatten

import mlx_tcn
from mlx_tcn import (
    TCN,
    BufferIO,
    TemporalBlock,
    TemporalConv1d,
    TemporalConvTransposed1d,
    TemporalPad1d,
    load_state,
    save_state,
)

# every test here runs with the state's buffers shifted and as rings (conftest.state_layout)
pytestmark = pytest.mark.usefixtures("state_layout")

ATOL = 1e-5
RTOL = 1e-5

# MLX_TCN_STREAM_EXAMPLES=2000 for a thorough search; the default keeps the file fast.
EXAMPLES = int(os.environ.get("MLX_TCN_STREAM_EXAMPLES", "40"))
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CHUNKINGS = ("1", "2", "3", "7", "random", "whole")


# -- helpers ------------------------------------------------------------------------------


def chunk_sizes(kind: str, length: int, seed: int = 0) -> list[int]:
    """Split ``length`` steps into chunks of the given kind (the last may be shorter)."""
    if kind == "whole":
        return [length]
    if kind == "random":
        rng = random.Random(seed)
        sizes, left = [], length
        while left:
            n = rng.randint(1, min(left, 9))
            sizes.append(n)
            left -= n
        return sizes
    size = int(kind)
    return [min(size, length - start) for start in range(0, length, size)]


def splits(sizes: list[int]) -> list[tuple[int, int]]:
    out, start = [], 0
    for n in sizes:
        out.append((start, start + n))
        start += n
    return out


def assert_close(a: mx.array, b: mx.array) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(np.array(a), np.array(b), atol=ATOL, rtol=RTOL)


def float64_reference(model: TCN, x: mx.array, embeddings) -> np.ndarray:
    """The offline output computed in float64 (same weights), on the CPU."""
    ref = TCN(**model.config)
    ref.eval()
    with mx.stream(mx.cpu):  # float64 exists on the CPU only
        ref.update(tree_map(lambda a: a.astype(mx.float64), model.parameters()))
        e64 = None if embeddings is None else [e.astype(mx.float64) for e in embeddings]
        return np.array(ref(x.astype(mx.float64), e64))


def assert_close_or_as_exact(model: TCN, x, embeddings, streamed, offline) -> None:
    """Streamed == offline within 1e-5; where float32 rounding is amplified (e.g. a layer
    norm over a few nearly equal channels), two evaluation orders can differ by a little
    more, and then both must be within 1e-5 of the float64 result: streaming is exactly
    as accurate as the offline pass."""
    diff = np.abs(np.array(streamed) - np.array(offline))
    if diff.max() <= ATOL + RTOL * np.abs(np.array(offline)).max():
        return
    ref = float64_reference(model, x, embeddings)
    for name, y in (("streamed", streamed), ("offline", offline)):
        np.testing.assert_allclose(np.array(y), ref, atol=ATOL, rtol=RTOL, err_msg=name)


def slice_embeddings(embeddings, start: int, stop: int):
    """Time-aligned embeddings follow the chunk; global ones are passed as they are."""
    if embeddings is None:
        return None
    return [e[:, start:stop] if e.ndim == 3 else e for e in embeddings]


def stream_model(model: TCN, x: mx.array, sizes: list[int], embeddings=None, step=None):
    """Concatenated outputs of streaming ``x`` through ``model`` in chunks of ``sizes``."""
    step = step or model.stream
    state = model.init_state(x.shape[0])
    outs = []
    for start, stop in splits(sizes):
        y, state = step(x[:, start:stop], state, slice_embeddings(embeddings, start, stop))
        mx.eval(y, state)
        outs.append(y)
    return mx.concatenate(outs, axis=1), state


def randomise_batch_norm(model: TCN | TemporalBlock, seed: int) -> None:
    """Give batch norms non-trivial running statistics and affine parameters."""
    rng = np.random.default_rng(seed)
    for block in model.network if isinstance(model, TCN) else [model]:
        for name in ("norm1", "norm2"):
            norm = block.get(name)
            if norm is None or not hasattr(norm, "running_mean"):
                continue
            n = norm.running_mean.shape[0]
            norm.running_mean = mx.array(rng.normal(0, 0.5, n).astype(np.float32))
            norm.running_var = mx.array(rng.uniform(0.5, 2.0, n).astype(np.float32))
            norm.weight = mx.array(rng.uniform(0.5, 1.5, n).astype(np.float32))
            norm.bias = mx.array(rng.normal(0, 0.2, n).astype(np.float32))


def small_model(**overrides) -> TCN:
    mx.random.seed(0)
    kwargs = dict(
        num_inputs=3,
        num_channels=[6, 6, 5],
        kernel_sizes=3,
        causal=True,
        dropout=0.0,
        use_norm="weight_norm",
    )
    kwargs.update(overrides)
    model = TCN(**kwargs)
    model.eval()
    return model


# -- random causal configurations ---------------------------------------------------------


@st.composite
def tcn_configs(draw):
    levels = draw(st.integers(1, 3))
    channels = draw(st.lists(st.integers(1, 6), min_size=levels, max_size=levels))
    kernel_pool = st.sampled_from([1, 2, 3, 4, 5])
    if draw(st.booleans()):
        kernel_sizes = draw(kernel_pool)
    else:
        kernel_sizes = draw(st.lists(kernel_pool, min_size=levels, max_size=levels))
    config = dict(
        num_inputs=draw(st.integers(1, 4)),
        num_channels=channels,
        kernel_sizes=kernel_sizes,
        causal=True,
        dropout=draw(st.sampled_from([0.0, 0.2])),  # dropout is off in eval mode
        use_norm=draw(st.sampled_from(["batch_norm", "layer_norm", "weight_norm", None])),
        activation=draw(st.sampled_from(["relu", "tanh", "gelu", "elu", "leaky_relu"])),
        use_gate=draw(st.booleans()),
        use_se=draw(st.booleans()),
        se_reduction=draw(st.sampled_from([1, 2, 8])),
        se_residual=draw(st.booleans()),
        use_skip_connections=draw(st.booleans()),
        output_projection=draw(st.sampled_from([None, 1, 3])),
        output_activation=draw(st.sampled_from([None, "tanh", "softmax", "sigmoid"])),
    )
    dilation_kind = draw(st.sampled_from(["default", "explicit", "reset"]))
    if dilation_kind == "explicit":
        config["dilations"] = draw(st.lists(st.integers(1, 5), min_size=levels, max_size=levels))
    elif dilation_kind == "reset":
        config["dilation_reset"] = draw(st.sampled_from([1, 2, 4]))
    embedding_kind = draw(st.sampled_from([None, "global", "time", "both"]))
    if embedding_kind is not None:
        config["embedding_shapes"] = (
            [(2,), (3,)] if embedding_kind == "both" else [(draw(st.integers(1, 3)),)]
        )
        config["embedding_mode"] = draw(st.sampled_from(["add", "concat"]))
    return config, embedding_kind


def make_embeddings(config, kind, batch: int, length: int):
    if kind is None:
        return None
    shapes = config["embedding_shapes"]
    if kind == "global":
        return [mx.random.normal((batch, shapes[0][0]))]
    if kind == "time":
        return [mx.random.normal((batch, length, shapes[0][0]))]
    return [
        mx.random.normal((batch, shapes[0][0])),
        mx.random.normal((batch, length, shapes[1][0])),
    ]


@FAST
@given(
    cfg=tcn_configs(),
    batch=st.sampled_from([1, 3]),
    length=st.integers(1, 24),
    chunking=st.sampled_from(CHUNKINGS),
    seed=st.integers(0, 2**16),
)
def test_tcn_stream_equals_offline(cfg, batch, length, chunking, seed):
    config, embedding_kind = cfg
    mx.random.seed(seed)
    model = TCN(**config)
    model.eval()
    randomise_batch_norm(model, seed)
    x = mx.random.normal((batch, length, config["num_inputs"]))
    embeddings = make_embeddings(config, embedding_kind, batch, length)
    offline = model(x, embeddings)
    sizes = chunk_sizes(chunking, length, seed)
    streamed, _ = stream_model(model, x, sizes, embeddings)
    assert_close_or_as_exact(model, x, embeddings, streamed, offline)


@settings(max_examples=max(EXAMPLES // 4, 5), deadline=None)
@given(cfg=tcn_configs(), seed=st.integers(0, 2**16))
def test_tcn_stateful_inference_equals_offline(cfg, seed):
    """``model(chunk, inference=True)`` with the state kept in the model."""
    config, embedding_kind = cfg
    mx.random.seed(seed)
    model = TCN(**config)
    model.eval()
    randomise_batch_norm(model, seed)
    x = mx.random.normal((2, 13, config["num_inputs"]))
    embeddings = make_embeddings(config, embedding_kind, 2, 13)
    offline = model(x, embeddings)
    model.reset_buffers()
    outs = [
        model(x[:, a:b], slice_embeddings(embeddings, a, b), inference=True)
        for a, b in splits(chunk_sizes("random", 13, seed))
    ]
    assert_close_or_as_exact(model, x, embeddings, mx.concatenate(outs, axis=1), offline)


def test_stream_state_is_constant_size_and_input_state_untouched(state_layout):
    model = small_model(kernel_sizes=[3, 1, 4], dilations=[1, 2, 5], use_se=True)
    state = model.init_state(2)
    shapes = {k: v.shape for k, v in tree_flatten(state)}
    buffers = {"0.conv1": 3, "0.conv2": 6, "2.conv1": 6, "2.conv2": 5}
    frames = {"0.conv1": 2, "0.conv2": 2, "2.conv1": 15, "2.conv2": 15}  # (k-1)*d
    if state_layout == "ring":  # one more slot, and the slot of the next frame per row
        expected = {f"{k}.buffer": (2, frames[k] + 1, c) for k, c in buffers.items()}
        expected.update({f"{k}.pos": (2, 1, c) for k, c in buffers.items()})
    else:
        expected = {f"{k}.buffer": (2, frames[k], c) for k, c in buffers.items()}
    assert shapes == {
        **expected,
        "0.se.sum": (2, 6),
        "0.se.count": (2, 1),
        "1.se.sum": (2, 6),
        "1.se.count": (2, 1),
        "2.se.sum": (2, 5),
        "2.se.count": (2, 1),
    }
    before = {k: np.array(v) for k, v in tree_flatten(state)}
    _, new_state = model.stream(mx.random.normal((2, 30, 3)), state)
    # the input state is not mutated; the new state keeps its size whatever the chunk length
    for k, v in tree_flatten(state):
        np.testing.assert_array_equal(np.array(v), before[k])
    assert {k: v.shape for k, v in tree_flatten(new_state)} == shapes
    np.testing.assert_array_equal(np.array(new_state[1]["se"]["count"]), [[30.0], [30.0]])
    # nor by a one-step chunk, whose frame is written into the ring (in place only when
    # nothing else holds the old state: here the caller still does)
    kept = {k: np.array(v) for k, v in tree_flatten(new_state)}
    for step in (mx.compile(model.stream), model.stream):
        _, newer = step(mx.random.normal((2, 1, 3)), new_state)
        mx.eval(newer)
        for k, v in tree_flatten(new_state):
            np.testing.assert_array_equal(np.array(v), kept[k])
        assert {k: v.shape for k, v in tree_flatten(newer)} == shapes


# -- single layers -----------------------------------------------------------------------


def stream_layer(layer, x: mx.array, sizes: list[int]) -> mx.array:
    state = layer.init_state(x.shape[0])
    outs = []
    for start, stop in splits(sizes):
        y, state = layer.stream(x[:, start:stop], state)
        outs.append(y)
    return mx.concatenate(outs, axis=1)


@FAST
@given(
    in_ch=st.integers(1, 4),
    out_mult=st.integers(1, 3),
    kernel=st.integers(1, 6),
    dilation=st.integers(1, 4),
    grouped=st.booleans(),
    bias=st.booleans(),
    mode=st.sampled_from(["zeros", "replicate"]),
    buffer=st.sampled_from([None, 0.0, 0.5, -1.0]),
    batch=st.sampled_from([1, 2]),
    length=st.integers(1, 20),
    chunking=st.sampled_from(CHUNKINGS),
    seed=st.integers(0, 2**16),
)
def test_conv1d_stream_equals_offline(
    in_ch, out_mult, kernel, dilation, grouped, bias, mode, buffer, batch, length, chunking, seed
):
    mx.random.seed(seed)
    groups = in_ch if grouped else 1
    conv = TemporalConv1d(
        in_ch,
        in_ch * out_mult,
        kernel,
        dilation=dilation,
        groups=groups,
        bias=bias,
        padding_mode=mode,
        buffer=buffer,
        causal=True,
    )
    x = mx.random.normal((batch, length, in_ch))
    offline = conv(x)
    assert offline.shape == (batch, length, in_ch * out_mult)
    assert_close(stream_layer(conv, x, chunk_sizes(chunking, length, seed)), offline)
    # the stateful call, chunk by chunk, gives the same
    conv.reset_buffer()
    outs = [conv(x[:, a:b], inference=True) for a, b in splits(chunk_sizes("3", length))]
    assert_close(mx.concatenate(outs, axis=1), offline)


@FAST
@given(
    in_ch=st.integers(1, 3),
    out_ch=st.integers(1, 3),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
    mode=st.sampled_from(["zeros", "replicate"]),
    batch=st.sampled_from([1, 2]),
    length=st.integers(1, 16),
    chunking=st.sampled_from(CHUNKINGS),
    seed=st.integers(0, 2**16),
)
def test_conv_transposed_stream_equals_offline(
    in_ch, out_ch, kernel, stride, dilation, mode, batch, length, chunking, seed
):
    mx.random.seed(seed)
    conv = TemporalConvTransposed1d(
        in_ch, out_ch, kernel, stride=stride, dilation=dilation, padding_mode=mode, causal=True
    )
    x = mx.random.normal((batch, length, in_ch))
    offline = conv(x)
    assert offline.shape == (batch, length * stride, out_ch)
    state = conv.init_state(batch)
    outs = []
    for start, stop in splits(chunk_sizes(chunking, length, seed)):
        y, state = conv.stream(x[:, start:stop], state)
        assert y.shape == (batch, (stop - start) * stride, out_ch)  # stride samples per step
        outs.append(y)
    assert_close(mx.concatenate(outs, axis=1), offline)


def test_conv_transposed_causal_matches_full_transposed_convolution():
    """Causal output = the first ``length * stride`` samples of the full transposed conv."""
    mx.random.seed(3)
    conv = TemporalConvTransposed1d(2, 3, kernel_size=5, stride=2, dilation=2, causal=True)
    x = mx.random.normal((1, 6, 2))
    w = np.array(conv.weight)  # (out, k, in)
    xn = np.array(x)[0]
    span = 2 * (5 - 1) + 1
    full = np.zeros(((6 - 1) * 2 + span, 3), np.float32)
    for i in range(6):
        for j in range(5):
            full[i * 2 + j * 2] += w[:, j] @ xn[i]
    expected = full[: 6 * 2] + np.array(conv.bias)
    np.testing.assert_allclose(np.array(conv(x))[0], expected, atol=1e-5)


def test_replicate_padding_stream_starts_with_first_frame():
    """Causal replicate padding repeats the first frame, also when it arrives in a stream,
    and every row of a batch uses its own first frame."""
    conv = TemporalConv1d(1, 1, kernel_size=3, bias=False, padding_mode="replicate")
    conv.weight = mx.array([[[1.0], [10.0], [100.0]]])
    x = mx.array([[[1.0], [2.0], [3.0]], [[5.0], [6.0], [7.0]]])
    expected = [[[111.0], [211.0], [321.0]], [[555.0], [655.0], [765.0]]]
    np.testing.assert_allclose(np.array(conv(x)), expected)
    np.testing.assert_allclose(np.array(stream_layer(conv, x, [1, 1, 1])), expected)


def test_pad_stream_equals_offline():
    pad = TemporalPad1d(3, 2, buffer=0.25, causal=True)
    x = mx.random.normal((2, 5, 2))
    state = pad.init_state(2)
    pieces = []
    for a, b in splits([2, 1, 2]):
        padded, state = pad.stream(x[:, a:b], state)
        pieces.append(padded[:, 3:])
        assert padded.shape[1] == 3 + (b - a)
    assert_close(mx.concatenate(pieces, axis=1), x)
    np.testing.assert_allclose(np.array(pad(x))[:, :3], 0.25)
    np.testing.assert_allclose(np.array(pad.history(state)), np.array(x[:, 2:]))


# -- compile and export ------------------------------------------------------------------


def test_compiled_stream_equals_offline():
    """``mx.compile(model.stream)`` streams one step at a time exactly.

    On CPU, MLX builds each fused kernel with the system C++ compiler on first use (cached on
    disk afterwards), a few seconds each; so the model here is small. The compiled step is
    the same trace as ``stream``, which the property tests cover in every configuration."""
    model = small_model(num_channels=[4], kernel_sizes=2, use_norm=None)
    x = mx.random.normal((2, 8, 3))
    offline = model(x)
    streamed, state = stream_model(model, x, [1] * 8, step=mx.compile(model.stream))
    assert_close(streamed, offline)
    _, plain_state = stream_model(model, x, [1] * 8)
    for (k1, a), (k2, b) in zip(tree_flatten(state), tree_flatten(plain_state), strict=True):
        assert k1 == k2
        assert_close(a, b)


@pytest.mark.parametrize("compile_step", [False, True])
def test_stream_step_folds_weight_norm_and_equals_offline(compile_step):
    model = small_model(use_norm="weight_norm", embedding_shapes=[(2,)], dropout=0.1)
    model.train()  # the step is an eval-mode copy whatever the model's mode
    x = mx.random.normal((2, 9, 3))
    e = [mx.random.normal((2, 2))]
    model.eval()
    offline = model(x, embeddings=e)
    model.train()
    step = model.stream_step(compile=compile_step)
    streamed, _ = stream_model(model, x, [1, 3, 5], e, step=step)
    assert_close(streamed, offline)
    # the model itself is untouched: still weight-normalised and in training mode
    assert "weight_v" in model.network[0].conv1 and model.training
    frozen = step.__self__ if not compile_step else None
    if frozen is not None:
        assert "weight" in frozen.network[0].conv1 and "weight_v" not in frozen.network[0].conv1


def _export_recipe(model, batch, chunk, path):
    """docs/streaming.md's ``mx.export_function`` recipe: the state as flat arrays, rebuilt
    with ``tree_unflatten``. Returns the imported step, the state's keys and its arrays."""
    like = model.init_state(batch)
    keys = [k for k, _ in tree_flatten(like)]

    def step(x, *flat_state):
        state = tree_unflatten(list(zip(keys, flat_state, strict=True)))
        y, new_state = model.stream(x, state)
        return (y, *[v for _, v in tree_flatten(new_state)])

    flat = [v for _, v in tree_flatten(like)]
    mx.export_function(str(path), step, mx.zeros((batch, chunk, model.num_inputs)), *flat)
    return mx.import_function(str(path)), keys, flat


@pytest.mark.parametrize("chunk", [1, 80])
def test_exported_stream_step_equals_offline(tmp_path, chunk):
    """A stream step exported with ``mx.export_function`` (state as flat arrays) and
    imported with ``mx.import_function`` continues the stream exactly, for short chunks
    and for chunks long enough to take the GEMM-per-tap convolution (which must not use
    the hand-written backward: export cannot serialise custom functions)."""
    model = small_model(use_se=True, use_norm="layer_norm")
    batch = 2
    imported, keys, example = _export_recipe(model, batch, chunk, tmp_path / "step.mlxfn")

    steps = 3 * chunk
    x = mx.random.normal((batch, steps, 3))
    offline = model(x)
    flat = example
    outs = []
    for t in range(0, steps, chunk):
        y, *flat = imported(x[:, t : t + chunk], *flat)
        outs.append(y)
    assert_close(mx.concatenate(outs, axis=1), offline)
    # the flat state is the same pytree again
    restored = tree_unflatten(list(zip(keys, flat, strict=True)))
    _, direct = stream_model(model, x, [steps])
    for (k1, a), (k2, b) in zip(tree_flatten(restored), tree_flatten(direct), strict=True):
        assert k1 == k2
        assert_close(a, b)


@pytest.mark.parametrize(
    "overrides",
    [dict(kernel_sizes=[3, 1, 2]), dict(kernel_sizes=1), dict(kernel_sizes=[1, 3, 2], use_se=True)],
    ids=["last-but-one k=1", "all k=1", "first k=1 with SE"],
)
def test_the_export_recipe_works_with_kernel_size_one_blocks(tmp_path, overrides):
    # docs/streaming.md's recipe rebuilds the state with tree_unflatten, which drops the {}
    # of a kernel-size-1 convolution: stream() refused the shorter list ("one entry per
    # block"), or returned None entries that export_function refused.
    model = small_model(**overrides)
    imported, keys, flat = _export_recipe(model, 2, 1, tmp_path / "step.mlxfn")
    x = mx.random.normal((2, 6, 3))
    outs = []
    for t in range(6):
        y, *flat = imported(x[:, t : t + 1], *flat)
        outs.append(y)
    assert_close(mx.concatenate(outs, axis=1), model(x))
    rebuilt = tree_unflatten(list(zip(keys, flat, strict=True)))
    structure = [k for k, _ in tree_flatten(model.stream(x[:, :1], rebuilt)[1])]
    assert structure == keys  # and stream() hands back init_state's structure


# -- batched serving ---------------------------------------------------------------------


@pytest.mark.parametrize("rows", [[1, 3], 2, "mask"])
def test_reset_state_rows(rows):
    model = small_model(use_se=True, use_skip_connections=True)
    batch = 4
    first = mx.random.normal((batch, 7, 3))
    second = mx.random.normal((batch, 9, 3))
    if rows == "mask":
        rows = mx.array([True, False, False, True])
        reset = [0, 3]
    else:
        reset = [rows] if isinstance(rows, int) else rows
    kept = [r for r in range(batch) if r not in reset]

    _, state = model.stream(first, model.init_state(batch))
    before = {k: np.array(v) for k, v in tree_flatten(state)}
    state_reset = model.reset_state(state, rows)
    fresh = model.init_state(1)
    for (k, new), (_, f) in zip(tree_flatten(state_reset), tree_flatten(fresh), strict=True):
        new = np.array(new)
        np.testing.assert_array_equal(new[kept], before[k][kept])
        for r in reset:
            np.testing.assert_array_equal(new[r], np.array(f)[0])

    y, _ = model.stream(second, state_reset)
    continued = model(mx.concatenate([first, second], axis=1))[:, 7:]
    restarted = model(second)
    np.testing.assert_allclose(np.array(y)[kept], np.array(continued)[kept], atol=ATOL)
    np.testing.assert_allclose(np.array(y)[reset], np.array(restarted)[reset], atol=ATOL)


def test_stateless_stream_kernel_size_one():
    """Kernel size 1 everywhere and no SE: the state is empty and streaming still works."""
    model = small_model(kernel_sizes=1, use_skip_connections=True)
    state = model.init_state(2)
    assert tree_flatten(state) == []
    x = mx.random.normal((2, 5, 3))
    streamed, state = stream_model(model, x, [2, 3])
    assert_close(streamed, model(x))
    assert model.reset_state(state, [0]) == state


def test_reset_state_bad_rows():
    model = small_model()
    state = model.init_state(3)
    with pytest.raises(ValueError, match=r"rows must be row indices in \[-3, 3\)"):
        model.reset_state(state, [5])
    with pytest.raises(ValueError, match="rows mask must have shape"):
        model.reset_state(state, mx.array([True, False]))


def test_streams_of_different_lengths_share_a_batch():
    """Two streams start at different times in one batch: each equals its own offline run."""
    model = small_model(kernel_sizes=2, use_norm="batch_norm")
    randomise_batch_norm(model, 1)
    a = mx.random.normal((1, 10, 3))
    b = mx.random.normal((1, 6, 3))
    state = model.init_state(2)
    outs_a, outs_b = [], []
    for t in range(10):
        if t == 4:
            state = model.reset_state(state, [1])  # stream b starts now in row 1
        xb = b[:, t - 4 : t - 3] if t >= 4 else mx.zeros((1, 1, 3))
        y, state = model.stream(mx.concatenate([a[:, t : t + 1], xb], axis=0), state)
        outs_a.append(y[:1])
        if t >= 4:
            outs_b.append(y[1:])
    assert_close(mx.concatenate(outs_a, axis=1), model(a))
    assert_close(mx.concatenate(outs_b, axis=1), model(b))


# -- save / restore ----------------------------------------------------------------------


def test_save_and_load_state_continue_identically(tmp_path):
    model = small_model(use_se=True, kernel_sizes=[4, 2, 3])
    x = mx.random.normal((2, 15, 3))
    offline = model(x)
    y1, state = model.stream(x[:, :8], model.init_state(2))
    path = tmp_path / "stream.safetensors"
    save_state(path, state)
    restored = load_state(path, model.init_state(2))
    for (k1, a), (k2, b) in zip(tree_flatten(restored), tree_flatten(state), strict=True):
        assert k1 == k2
        np.testing.assert_array_equal(np.array(a), np.array(b))
    y2, _ = model.stream(x[:, 8:], restored)
    np.testing.assert_array_equal(
        np.array(y2), np.array(model.stream(x[:, 8:], state)[0])
    )  # bit-identical continuation
    assert_close(mx.concatenate([y1, y2], axis=1), offline)


def test_load_state_rejects_a_different_model(tmp_path):
    model = small_model()
    path = tmp_path / "stream.safetensors"
    save_state(path, model.init_state(2))
    with pytest.raises(ValueError, match="has shape"):
        load_state(path, model.init_state(3))
    with pytest.raises(ValueError, match="missing"):
        load_state(path, small_model(num_channels=[6, 6, 5, 4]).init_state(2))


def test_a_state_saved_without_the_suffix_loads_by_the_same_name(tmp_path):
    # MLX adds ".safetensors" to the name it writes; load_state looked for the bare name.
    model = small_model()
    _, state = model.stream(mx.random.normal((2, 6, 3)), model.init_state(2))
    save_state(tmp_path / "stream", state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stream.safetensors"]
    restored = load_state(str(tmp_path / "stream"), model.init_state(2))
    for (_, a), (_, b) in zip(tree_flatten(restored), tree_flatten(state), strict=True):
        np.testing.assert_array_equal(np.array(a), np.array(b))


def test_state_files_fail_with_errors_that_name_them(tmp_path):
    # Before: MLX's own RuntimeErrors ("[load_safetensors] Failed to open file", "[read]
    # Unable to read 8 bytes", std::bad_cast), and save_state(None, ...) wrote None.safetensors.
    model = small_model()
    state = model.init_state(1)
    with pytest.raises(FileNotFoundError, match="state file not found: .*missing.safetensors"):
        load_state(tmp_path / "missing.safetensors", state)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.safetensors is not a readable state file"):
        load_state(tmp_path / "empty.safetensors", state)
    with pytest.raises(FileNotFoundError, match="nodir is not a folder"):
        save_state(tmp_path / "nodir" / "x.safetensors", state)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got None"):
        save_state(None, state)
    with pytest.raises(TypeError, match=r"state\['0'\] is 1"):
        save_state(tmp_path / "y", [1, 2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.safetensors"]


def test_load_state_refuses_another_dtype(tmp_path):
    # A float16 stream's state loaded silently into a float32 structure.
    model = small_model()
    save_state(tmp_path / "half", model.init_state(1, mx.float16))
    with pytest.raises(ValueError, match="dtype float16, expected float32"):
        load_state(tmp_path / "half", model.init_state(1))
    load_state(tmp_path / "half", model.init_state(1, mx.float16))


# -- the stateful API --------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 4])
def test_inference_true_chunk_by_chunk(batch):
    model = small_model(use_se=True, kernel_sizes=[1, 2, 3])
    x = mx.random.normal((batch, 20, 3))
    offline = model(x)
    model.reset_buffers()
    outs = [model(x[:, a:b], inference=True) for a, b in splits(chunk_sizes("7", 20))]
    assert_close(mx.concatenate(outs, axis=1), offline)
    # reset_buffers starts a new stream
    model.reset_buffers()
    assert_close(model(x[:, :5], inference=True), offline[:, :5])


def test_inference_true_changes_nothing_offline():
    model = small_model()
    x = mx.random.normal((1, 8, 3))
    offline = model(x)
    model(x[:, :3], inference=True)
    assert_close(model(x), offline)  # offline calls ignore the stream
    assert model.training is False


@pytest.mark.parametrize("batch", [1, 4])
def test_spec_bufferio_example(batch):
    """The spec's streaming example as written, continued over several calls."""
    model = small_model(num_inputs=64, num_channels=[8, 8])
    model.reset_buffers()
    buffers = [BufferIO() for _ in range(len(model.network) * 2)]

    chunks = [mx.random.normal((batch, 25, 64)) for _ in range(3)]
    outs = []
    for chunk in chunks:
        stream_out = model(chunk, embeddings=None, inference=True, in_buffer=buffers)
        outs.append(stream_out)
    assert stream_out.shape == (batch, 25, 8)
    assert_close(mx.concatenate(outs, axis=1), model(mx.concatenate(chunks, axis=1)))
    # fresh buffers start a fresh stream; the model's own buffers were never touched
    again = model(chunks[1], inference=True, in_buffer=[BufferIO() for _ in buffers])
    assert_close(again, model(chunks[1]))


def test_single_bufferio_pytorch_tcn_style():
    model = small_model(use_se=True)
    x = mx.random.normal((2, 11, 3))
    io = BufferIO()
    outs = []
    for a, b in splits([4, 1, 6]):
        outs.append(model(x[:, a:b], inference=True, in_buffer=io))
        io.step()
    assert_close(mx.concatenate(outs, axis=1), model(x))
    # the states written by one call can seed a new BufferIO
    first = BufferIO()
    model(x[:, :4], inference=True, in_buffer=first)
    second = BufferIO(in_buffers=first.out_buffers)
    assert_close(model(x[:, 4:], inference=True, in_buffer=second), model(x)[:, 4:])


def test_bufferio_errors():
    model = small_model()
    x = mx.random.normal((1, 4, 3))
    with pytest.raises(ValueError, match="2 BufferIO per block, 6"):
        model(x, inference=True, in_buffer=[BufferIO()])
    with pytest.raises(TypeError, match="in_buffer must be a BufferIO"):
        model(x, inference=True, in_buffer="buffers")
    with pytest.raises(ValueError, match="only used with inference=True"):
        model(x, in_buffer=BufferIO())
    io = BufferIO(in_buffers=[None])
    with pytest.raises(ValueError, match="ran out of input buffers"):
        model(x, inference=True, in_buffer=io)


def test_layer_bufferio_stream():
    conv = TemporalConv1d(2, 3, kernel_size=4, dilation=2)
    x = mx.random.normal((3, 10, 2))
    io = BufferIO()
    outs = []
    for a, b in splits([3, 3, 4]):
        outs.append(conv(x[:, a:b], inference=True, buffer_io=io))
        io.step()
    assert_close(mx.concatenate(outs, axis=1), conv(x))


# -- errors ------------------------------------------------------------------------------


def test_non_causal_model_cannot_stream():
    model = small_model(causal=False)
    x = mx.random.normal((1, 4, 3))
    with pytest.raises(ValueError, match="causal=False"):
        model.init_state(1)
    with pytest.raises(ValueError, match="causal=False"):
        model.stream(x, [])
    with pytest.raises(ValueError, match="causal=False"):
        model(x, inference=True)
    conv = TemporalConv1d(3, 3, 3, causal=False)
    with pytest.raises(ValueError, match="needs a causal layer"):
        conv.stream(x, {})
    with pytest.raises(ValueError, match="needs a causal layer"):
        conv(x, inference=True)
    with pytest.raises(ValueError, match="not causal"):
        conv.init_state(1)


def test_chunk_must_match_the_state(state_layout):
    model = small_model()
    state = model.init_state(2)
    frames = 3 if state_layout == "ring" else 2
    with pytest.raises(
        ValueError, match=f"expected \\(3, {frames}, 3\\) for a chunk of batch size 3"
    ):
        model.stream(mx.zeros((3, 1, 3)), state)
    with pytest.raises(ValueError, match="has 4 channels .* but 3 are expected"):
        model.stream(mx.zeros((2, 1, 4)), state)
    with pytest.raises(ValueError, match=r"state does not fit this model: missing \['2.conv1"):
        model.stream(mx.zeros((2, 1, 3)), state[:2])  # a block short, its arrays missing
    with pytest.raises(ValueError, match="state must be the list returned by init_state"):
        model.stream(mx.zeros((2, 1, 3)), [*state, {}])
    with pytest.raises(ValueError, match="state does not fit this model"):
        model.stream(mx.zeros((2, 1, 3)), small_model(use_se=True).init_state(2))
    model(mx.zeros((2, 1, 3)), inference=True)
    with pytest.raises(ValueError, match="start a new stream"):
        model(mx.zeros((1, 1, 3)), inference=True)
    conv = TemporalConv1d(3, 3, 3)
    with pytest.raises(ValueError, match="batch size 1 but the stream's state has 2"):
        conv.stream(mx.zeros((1, 1, 3)), conv.init_state(2))


def test_stream_in_training_mode_computes_inference_outputs():
    """One policy (issue 10): stream(), like inference=True and stream_step(), computes
    inference outputs whatever model.training says, and leaves training as it is."""
    model = small_model(dropout=0.5, use_norm="batch_norm")
    randomise_batch_norm(model, 2)
    x = mx.random.normal((2, 6, 3))
    expected = model(x)  # eval mode
    model.train()
    streamed, _ = stream_model(model, x, [2, 4])
    assert_close(streamed, expected)
    assert model.training


def test_public_names():
    for name in ("BufferIO", "save_state", "load_state"):
        assert hasattr(mlx_tcn, name)


# -- the ring state ----------------------------------------------------------------------


def test_state_does_not_depend_on_how_the_stream_was_cut(state_layout):
    """A one-step chunk writes its frame into the ring in place; a longer chunk lays its
    last frames out where one-step chunks would have put them. So the state after a stream
    is the same (bit for bit) however it was cut, also past several turns of the ring
    (37 steps through rings of 3 to 16 slots), and the outputs equal the offline ones."""
    model = small_model(kernel_sizes=[3, 2, 4], dilations=[1, 3, 5])
    x = mx.random.normal((2, 37, 3))
    offline = model(x)
    results = []
    for sizes in ([1] * 37, [37], [5, 1, 1, 13, 1, 2, 14], [16, 1, 20]):
        y, state = stream_model(model, x, sizes)
        assert_close(y, offline)
        results.append(state)
    first = dict(tree_flatten(results[0]))
    positions = {k: int(v[0, 0, 0]) for k, v in first.items() if k.endswith("pos")}
    assert positions == {} if state_layout == "shifted" else positions == {
        "0.conv1.pos": 37 % 3, "0.conv2.pos": 37 % 3,
        "1.conv1.pos": 37 % 4, "1.conv2.pos": 37 % 4,
        "2.conv1.pos": 37 % 16, "2.conv2.pos": 37 % 16,
    }  # fmt: skip
    # Bit for bit on the CPU, whose GEMMs sum the same products in the same order whatever
    # the chunk's length. A GPU's BLAS picks its kernel by shape: within float32 rounding.
    exact = mx.default_device().type == mx.DeviceType.cpu
    for other in results[1:]:
        for key, value in tree_flatten(other):
            if exact or key.endswith("pos"):
                np.testing.assert_array_equal(np.array(value), np.array(first[key]), key)
            else:
                np.testing.assert_allclose(
                    np.array(value), np.array(first[key]), rtol=1e-6, atol=1e-6, err_msg=key
                )


def test_a_state_in_time_order_without_positions_still_streams(tmp_path, state_layout):
    """mlx-tcn's state before the ring: each buffer the last (k-1)*d frames in time order
    and no position (a BufferIO filled by hand, a file saved then). It continues the stream
    exactly, in memory and through load_state."""
    model = small_model(kernel_sizes=3, dilations=[1, 2, 4])
    x = mx.random.normal((2, 20, 3))
    offline = model(x)
    _, state = stream_model(model, x[:, :11], [11])
    legacy = []
    for block, entry in zip(model.network, state, strict=True):
        legacy.append({
            name: {"buffer": getattr(block, name).padder.history(entry[name])}
            for name in ("conv1", "conv2")
        })  # fmt: skip
    for chunk in (1, 9):
        outs, st = [], legacy
        for t in range(11, 20, chunk):
            y, st = model.stream(x[:, t : t + chunk], st)
            outs.append(y)
        assert_close(mx.concatenate(outs, axis=1), offline[:, 11:])
    # the stateful API, from BufferIO objects holding the old layout
    stages = [stage for entry in legacy for stage in (entry["conv1"], {"conv2": entry["conv2"]})]
    buffers = [BufferIO(in_buffers=[stage]) for stage in stages]
    y = model(x[:, 11:], inference=True, in_buffer=buffers)
    assert_close(y, offline[:, 11:])
    # a position that is not an integer is refused by name
    if state_layout == "ring":
        floats = [dict(e, conv1=dict(e["conv1"], pos=e["conv1"]["pos"].astype(mx.float32)))
                  for e in model.init_state(2)]  # fmt: skip
        with pytest.raises(TypeError, match=r"state\['0.conv1.pos'\] .* must be an integer"):
            model.stream(x[:, 11:12], floats)
    # a buffer of any other length is still refused
    bad = [dict(entry, conv1={"buffer": entry["conv1"]["buffer"][:, 1:]}) for entry in legacy]
    with pytest.raises(ValueError, match=r"state\['0.conv1.buffer'\] has shape \(2, 1, 3\)"):
        model.stream(x[:, 11:12], bad)
    path = str(tmp_path / "legacy_state.safetensors")
    mx.save_safetensors(path, dict(tree_flatten(legacy)))
    loaded = load_state(path, model.init_state(2))
    y, _ = model.stream(x[:, 11:], loaded)
    assert_close(y, offline[:, 11:])


# -- the state's structure ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: TemporalPad1d(4, 3, padding_mode="replicate", causal=True),
        lambda: TemporalConv1d(3, 2, 3, dilation=2, padding_mode="replicate", causal=True),
        lambda: TemporalConvTransposed1d(3, 2, 4, stride=2, padding_mode="replicate"),
        lambda: TemporalBlock(3, 4, 3, dilation=2, causal=True, use_se=True),
        lambda: TCN(3, [4, 4], causal=True, use_se=True, embedding_shapes=[(2,)]),
    ],
    ids=["pad", "conv", "transposed", "block", "tcn"],
)
def test_a_stream_returns_its_state_in_init_states_order(make):
    # Before: replicate padding returned {"fresh", "buffer"} for init_state's {"buffer",
    # "fresh"}, so docs/streaming.md's export recipe (flat arrays in tree_flatten's order)
    # handed the next step its arrays swapped.
    layer = make()
    layer.eval()
    e = [mx.ones((2, 2))] if isinstance(layer, TCN) else None
    state = layer.init_state(2)
    for steps in (3, 1, 1):
        x = mx.random.normal((2, steps, 3))
        kwargs = {"embeddings": e} if e else {}
        _, new = layer.stream(x, state, **kwargs)
        assert [k for k, _ in tree_flatten(new)] == [k for k, _ in tree_flatten(state)]
        state = new


def test_reset_state_checks_the_state_as_stream_does():
    # Before: MLX's "[broadcast_shapes]" for another model's state, an AttributeError for
    # None, and a list of empty dicts passed unchecked.
    model = small_model(num_channels=[4, 5])
    with pytest.raises(ValueError, match="expected"):
        model.reset_state(small_model(num_channels=[4, 6]).init_state(2), 0)
    with pytest.raises(ValueError, match="state must be the list returned by init_state"):
        model.reset_state(None, 0)
    with pytest.raises(ValueError, match="state does not fit this model: missing"):
        model.reset_state([{}, {}], 0)


def test_a_non_causal_transposed_convolution_has_no_stream_state():
    # docs/streaming.md: init_state of a non-causal layer raises; this one returned a buffer.
    with pytest.raises(ValueError, match="streaming needs a causal layer"):
        TemporalConvTransposed1d(3, 2, 4, stride=2, causal=False).init_state(2)
