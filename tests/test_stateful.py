"""One streaming contract at every level (issue 10).

Every level that streams (``TemporalConv1d``, causal ``TemporalConvTransposed1d``,
``TemporalBlock``, ``TCN``) has the explicit API (``init_state`` / ``stream``) and the
stateful API (``inference=True`` with the state kept in the layer or in ``BufferIO`` objects,
``reset_buffers``), and both equal the offline pass for any chunking at any batch size. Also:
repeated ``BufferIO`` in ``in_buffer``, the training-mode policy, empty states, state dtypes,
``reset_state(rows=...)`` and NumPy dropout values.
"""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlx.utils import tree_flatten
from test_streaming import (
    EXAMPLES,
    FAST,
    assert_close,
    assert_close_or_as_exact,
    chunk_sizes,
    make_embeddings,
    randomise_batch_norm,
    slice_embeddings,
    small_model,
    splits,
    tcn_configs,
)

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

# -- blocks ---------------------------------------------------------------------------------


@st.composite
def block_configs(draw):
    use_norm = draw(st.sampled_from(["batch_norm", "layer_norm", "weight_norm", None]))
    config = dict(
        n_inputs=draw(st.integers(1, 4)),
        n_outputs=draw(st.integers(1, 5)),
        kernel_size=draw(st.integers(1, 4)),
        dilation=draw(st.integers(1, 3)),
        dropout=draw(st.sampled_from([0.0, 0.3])),
        causal=True,
        use_norm=use_norm,
        use_gate=draw(st.booleans()),
        use_se=draw(st.booleans()),
        se_reduction=draw(st.sampled_from([1, 2])),
        se_residual=draw(st.booleans()),
    )
    embedding_kind = draw(st.sampled_from([None, "global", "time"]))
    if embedding_kind is not None:
        config["embedding_shapes"] = [(2,)]
        config["embedding_mode"] = draw(st.sampled_from(["add", "concat"]))
    return config, embedding_kind


def block_embeddings(kind, batch: int, length: int):
    if kind is None:
        return None
    return [mx.random.normal((batch, 2) if kind == "global" else (batch, length, 2))]


def offline_block(block: TemporalBlock, x, embeddings) -> tuple[mx.array, mx.array]:
    training = block.training
    block.eval()
    try:
        return block(x, embeddings)
    finally:
        block.train(training)


@FAST
@given(
    cfg=block_configs(),
    batch=st.sampled_from([1, 3]),
    length=st.integers(1, 16),
    chunking=st.sampled_from(["1", "3", "random", "whole"]),
    api=st.sampled_from(["stream", "inference", "pair", "shared"]),
    seed=st.integers(0, 2**16),
)
def test_block_streams_like_offline(cfg, batch, length, chunking, api, seed):
    """``block(x, inference=True)`` used to return what fresh padding gives for every
    chunk (differences of 0.6-3.3 from the offline output)."""
    config, kind = cfg
    mx.random.seed(seed)
    block = TemporalBlock(**config)
    randomise_batch_norm(block, seed)
    block.train()  # streaming computes inference outputs whatever the mode says
    x = mx.random.normal((batch, length, config["n_inputs"]))
    e = block_embeddings(kind, batch, length)
    y_off, skip_off = offline_block(block, x, e)
    state = block.init_state(batch) if api == "stream" else None
    pair = (BufferIO(), BufferIO())
    shared = BufferIO()
    block.reset_buffers()
    ys, skips = [], []
    for a, b in splits(chunk_sizes(chunking, length, seed)):
        chunk, ce = x[:, a:b], slice_embeddings(e, a, b)
        if api == "stream":
            y_only, _ = block.stream(chunk, state, ce)
            y, skip, state = block.stream_with_skip(chunk, state, ce)
            assert_close(y_only, y)
        elif api == "inference":
            y, skip = block(chunk, ce, inference=True)
        elif api == "pair":
            y, skip = block(chunk, ce, inference=True, in_buffer=pair)
        else:
            y, skip = block(chunk, ce, inference=True, in_buffer=shared)
            shared.step()
        ys.append(y)
        skips.append(skip)
    assert block.training
    assert_close(mx.concatenate(ys, axis=1), y_off)
    assert_close(mx.concatenate(skips, axis=1), skip_off)


def test_block_stateful_keeps_the_stream_and_reset_buffers_forgets():
    block = TemporalBlock(2, 3, kernel_size=3, dilation=2, causal=True, use_se=True)
    x = mx.random.normal((2, 9, 2))
    y_off, _ = block(x)
    first, _ = block(x[:, :4], inference=True)
    second, _ = block(x[:, 4:], inference=True)
    assert_close(mx.concatenate([first, second], axis=1), y_off)
    block.reset_buffers()
    again, _ = block(x[:, 4:], inference=True)
    assert_close(again, block(x[:, 4:])[0])


def test_block_errors():
    block = TemporalBlock(2, 3, kernel_size=2, causal=True)
    x = mx.ones((1, 3, 2))
    with pytest.raises(ValueError, match="in_buffer needs 2 BufferIO for a TemporalBlock"):
        block(x, inference=True, in_buffer=[BufferIO()])
    with pytest.raises(ValueError, match="in_buffer is only used with inference=True"):
        block(x, in_buffer=(BufferIO(), BufferIO()))
    with pytest.raises(ValueError, match="give state or in_buffer, not both"):
        block(x, state=block.init_state(1), in_buffer=(BufferIO(), BufferIO()))
    # the old three-value form still works, with a warning naming the one-shape methods
    with pytest.warns(DeprecationWarning, match="block.stream_with_skip"):
        old = block(x, state=block.init_state(1))
    new = block.stream_with_skip(x, block.init_state(1))
    assert len(old) == 3 and all(
        mx.array_equal(a, b) for a, b in zip(old[:2], new[:2], strict=True)
    )
    with pytest.raises(ValueError, match="the chunk has batch size 2 but the stream's state"):
        block.stream(mx.ones((2, 3, 2)), block.init_state(1))
    with pytest.raises(ValueError, match="state does not fit this block"):
        block.stream(x, {"conv1": {}, "conv2": {}})
    acausal = TemporalBlock(2, 3, kernel_size=2, causal=False)
    with pytest.raises(ValueError, match="inference=True streams, which needs a causal block"):
        acausal(x, inference=True)
    with pytest.raises(ValueError, match="streaming needs a causal block"):
        acausal.init_state(1)


# -- single layers ----------------------------------------------------------------------------


LAYERS = {
    "conv": lambda: TemporalConv1d(2, 3, kernel_size=4, dilation=2, padding_mode="replicate"),
    "conv_k1": lambda: TemporalConv1d(2, 3, kernel_size=1),
    "transposed": lambda: TemporalConvTransposed1d(2, 3, kernel_size=5, stride=2),
    "pad": lambda: TemporalPad1d(3, 2, buffer=0.5, causal=True),
}


@settings(max_examples=max(EXAMPLES // 2, 10), deadline=None)
@given(
    name=st.sampled_from(sorted(LAYERS)),
    batch=st.sampled_from([1, 2, 4]),
    length=st.integers(1, 12),
    api=st.sampled_from(["stream", "inference", "list", "buffer_io", "in_buffer"]),
    seed=st.integers(0, 2**16),
)
def test_layer_streams_like_offline(name, batch, length, api, seed):
    mx.random.seed(seed)
    layer = LAYERS[name]()
    x = mx.random.normal((batch, length, 2))
    offline = layer(x)
    if name == "pad":  # the pad's output holds the frames before each chunk too
        offline = offline[:, 3:]
    io = BufferIO()
    state = layer.init_state(batch)
    layer.reset_buffers()
    outs = []
    for a, b in splits(chunk_sizes("random", length, seed)):
        chunk = x[:, a:b]
        if api == "stream":
            y, state = layer.stream(chunk, state)
        elif api == "inference":
            y = layer(chunk, inference=True)
        elif api == "list":
            y = layer(chunk, inference=True, in_buffer=[io])  # the layer steps it
        else:
            y = layer(chunk, inference=True, **{api: io})
            io.step()  # a single BufferIO is stepped by the caller
        outs.append(y[:, 3:] if name == "pad" else y)
    assert_close(mx.concatenate(outs, axis=1), offline)


def test_one_bufferio_shared_by_several_layers_streams_exactly():
    """pytorch-tcn's way: one BufferIO for all layers of a network, stepped per chunk."""
    first = TemporalConv1d(2, 3, kernel_size=3)
    second = TemporalConvTransposed1d(3, 2, kernel_size=4, stride=2)
    x = mx.random.normal((2, 7, 2))
    offline = second(first(x))
    io = BufferIO()
    outs = []
    for a, b in splits([3, 1, 3]):
        h = first(x[:, a:b], inference=True, buffer_io=io)
        outs.append(second(h, inference=True, buffer_io=io))
        io.step()
    assert_close(mx.concatenate(outs, axis=1), offline)


def test_layer_errors():
    conv = TemporalConv1d(2, 3, kernel_size=3)
    x = mx.ones((1, 3, 2))
    with pytest.raises(ValueError, match="give in_buffer or buffer_io, not both"):
        conv(x, inference=True, buffer_io=BufferIO(), in_buffer=BufferIO())
    with pytest.raises(ValueError, match="in_buffer needs 1 BufferIO for this TemporalConv1d"):
        conv(x, inference=True, in_buffer=[BufferIO(), BufferIO()])
    with pytest.raises(ValueError, match="in_buffer is only used with inference=True"):
        conv(x, buffer_io=BufferIO())
    acausal = TemporalConvTransposed1d(2, 3, kernel_size=4, stride=2, causal=False)
    with pytest.raises(ValueError, match="needs a causal layer"):
        acausal(x, inference=True)


# -- TCN: in_buffer layouts -------------------------------------------------------------------


@settings(max_examples=max(EXAMPLES // 2, 10), deadline=None)
@given(
    cfg=tcn_configs(),
    batch=st.sampled_from([1, 2, 4]),
    length=st.integers(1, 14),
    api=st.sampled_from(["model", "list", "repeated", "shared"]),
    seed=st.integers(0, 2**16),
)
def test_tcn_stateful_api_streams_like_offline(cfg, batch, length, api, seed):
    """inference=True in every form of in_buffer, any chunking and batch size, in training
    mode (streaming computes inference outputs)."""
    config, embedding_kind = cfg
    mx.random.seed(seed)
    model = TCN(**config)
    randomise_batch_norm(model, seed)
    x = mx.random.normal((batch, length, config["num_inputs"]))
    embeddings = make_embeddings(config, embedding_kind, batch, length)
    model.eval()
    offline = model(x, embeddings)
    model.train()
    n = 2 * len(model.network)
    buffers = {
        "model": None,
        "list": [BufferIO() for _ in range(n)],
        "repeated": [BufferIO()] * n,
        "shared": BufferIO(),
    }[api]
    model.reset_buffers()
    outs = []
    for a, b in splits(chunk_sizes("random", length, seed)):
        e = slice_embeddings(embeddings, a, b)
        outs.append(model(x[:, a:b], e, inference=True, in_buffer=buffers))
        if api == "shared":
            buffers.step()
    assert model.training
    model.eval()
    assert_close_or_as_exact(model, x, embeddings, mx.concatenate(outs, axis=1), offline)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("layout", ["repeated", "alternating", "distinct"])
def test_repeated_bufferio_in_the_list_streams_exactly(layout, batch):
    """``in_buffer=[b] * n`` used to restart every chunk from a fresh state (differences of
    2-3): now the model steps each distinct BufferIO of the list once per call."""
    model = small_model(use_se=True, kernel_sizes=[2, 3, 1])
    n = 2 * len(model.network)
    if layout == "repeated":
        buffers = [BufferIO()] * n
    elif layout == "alternating":
        a, b = BufferIO(), BufferIO()
        buffers = [a, b] * (n // 2)
    else:
        buffers = [BufferIO() for _ in range(n)]
    x = mx.random.normal((batch, 12, 3))
    outs = [model(x[:, a:b], inference=True, in_buffer=buffers) for a, b in splits([5, 1, 6])]
    assert_close(mx.concatenate(outs, axis=1), model(x))


def test_bufferio_stages_follow_pytorch_tcns_order():
    """Stage ``2*i`` holds block ``i``'s first convolution (the last ``(k-1)*d`` frames of
    the block's input, as pytorch-tcn's padder buffer), stage ``2*i+1`` the second one's
    (with SE's running sums)."""
    model = small_model(kernel_sizes=3, dilations=[1, 2, 1], use_se=True)
    buffers = [BufferIO() for _ in range(2 * len(model.network))]
    x = mx.random.normal((2, 10, 3))
    model(x, inference=True, in_buffer=buffers)
    h = x
    for i, block in enumerate(model.network):
        pad = block.conv1.pad_len
        first = next(buffers[2 * i])
        history = block.conv1.padder.history(first)
        np.testing.assert_allclose(np.array(history), np.array(h[:, -pad:]), atol=ATOL)
        second = next(buffers[2 * i + 1])
        assert set(second) == {"conv2", "se"}
        np.testing.assert_allclose(np.array(second["se"]["count"]), 10.0)
        h, _ = block(h)


# -- one training-mode policy -----------------------------------------------------------------


def test_every_streaming_entry_point_computes_inference_outputs_in_training_mode():
    model = small_model(dropout=0.5, use_norm="batch_norm", use_se=True)
    randomise_batch_norm(model, 3)
    x = mx.random.normal((2, 8, 3))
    expected = model(x)
    model.train()
    streamed, _ = model.stream(x, model.init_state(2))
    stateful = model(x, inference=True)
    model.reset_buffers()
    stepped, _ = model.stream_step(compile=False)(x, model.init_state(2))
    for y in (streamed, stateful, stepped):
        assert_close(y, expected)
    assert model.training and model.network[0].norm1.training


# -- empty states ----------------------------------------------------------------------------


def test_empty_state_saves_and_loads(tmp_path):
    """A kernel_size=1 model has an empty state; save_state used to refuse it."""
    model = small_model(kernel_sizes=1)
    x = mx.random.normal((2, 6, 3))
    _, state = model.stream(x[:, :2], model.init_state(2))
    path = tmp_path / "empty.safetensors"
    save_state(path, state)
    restored = load_state(path, model.init_state(2))
    assert restored == model.init_state(2) and tree_flatten(restored) == []
    y, _ = model.stream(x[:, 2:], restored)
    assert_close(y, model(x)[:, 2:])
    conv = TemporalConv1d(2, 2, kernel_size=1)
    save_state(tmp_path / "conv.safetensors", conv.init_state(1))
    assert load_state(tmp_path / "conv.safetensors", conv.init_state(1)) == {}
    with pytest.raises(ValueError, match="missing"):
        load_state(path, small_model().init_state(2))


# -- state dtypes ----------------------------------------------------------------------------


def _dtypes(state) -> dict:
    return {k: v.dtype for k, v in tree_flatten(state)}


@pytest.mark.parametrize("dtype", [mx.bfloat16, mx.float16])
@pytest.mark.parametrize("level", ["tcn", "block", "conv"])
def test_state_keeps_the_dtypes_init_state_gave_it(level, dtype):
    """A bf16 stream through float32 weights used to turn part of the state into float32
    after the first chunk, so a compiled step was traced again."""
    if level == "tcn":
        layer = small_model(use_se=True, use_norm="layer_norm", kernel_sizes=[3, 2, 4])
    elif level == "block":
        layer = TemporalBlock(3, 4, kernel_size=3, causal=True, use_norm="batch_norm")
        layer.eval()
    else:
        layer = TemporalConv1d(3, 4, kernel_size=3, padding_mode="replicate")
    x = mx.random.normal((2, 9, 3)).astype(dtype)
    state = layer.init_state(2, dtype)
    before = _dtypes(state)
    outs = []
    for a, b in splits([2, 3, 4]):
        out, state = layer.stream(x[:, a:b], state)
        outs.append(out)
        assert _dtypes(state) == before
    offline = layer(x)[0] if level == "block" else layer(x)
    np.testing.assert_allclose(
        np.array(mx.concatenate(outs, axis=1).astype(mx.float32)),
        np.array(offline.astype(mx.float32)),
        atol=1e-4,
    )


def test_conv_state_keeps_its_dtype_whatever_the_chunks_dtype():
    conv = TemporalConv1d(3, 4, kernel_size=3)
    state = conv.init_state(2, mx.bfloat16)
    for _ in range(2):
        _, state = conv.stream(mx.random.normal((2, 4, 3)), state)  # float32 chunks
        assert state["buffer"].dtype == mx.bfloat16


def test_compiled_low_precision_step_is_traced_once():
    model = small_model(num_channels=[4, 4], kernel_sizes=2, use_norm=None)
    traces = []

    def step(x, state):
        traces.append(1)
        return model.stream(x, state)

    compiled = mx.compile(step)
    state = model.init_state(1, mx.bfloat16)
    for _ in range(3):
        y, state = compiled(mx.ones((1, 1, 3), mx.bfloat16), state)
        mx.eval(y, state)
    assert len(traces) == 1


# -- reset_state(rows=...) --------------------------------------------------------------------


ROWS_ACCEPTED = [
    (np.int64(1), [1]),
    ([np.int32(0), 2], [0, 2]),
    ((1, -1), [1, 3]),
    (np.array([0, 3]), [0, 3]),
    (np.array(2), [2]),
    (mx.array([1, 2]), [1, 2]),
    (mx.array(3), [3]),
    (np.array([True, False, False, True]), [0, 3]),
    (mx.array([False, True, False, False]), [1]),
    ([], []),
]


@pytest.mark.parametrize("level", ["tcn", "block", "conv"])
@pytest.mark.parametrize(("rows", "reset"), ROWS_ACCEPTED)
def test_reset_state_accepts_numpy_and_mlx_rows(level, rows, reset):
    layer = {
        "tcn": lambda: small_model(use_se=True),
        "block": lambda: TemporalBlock(3, 3, kernel_size=3, causal=True, use_se=True),
        "conv": lambda: TemporalConv1d(3, 3, kernel_size=3),
    }[level]()
    out, state = layer.stream(mx.random.normal((4, 5, 3)) + 1.0, layer.init_state(4))
    new = layer.reset_state(state, rows)
    fresh = layer.init_state(4)
    for (key, got), (_, old), (_, f) in zip(
        tree_flatten(new), tree_flatten(state), tree_flatten(fresh), strict=True
    ):
        for r in range(4):
            want = f[r] if r in reset else old[r]
            np.testing.assert_array_equal(np.array(got[r]), np.array(want), err_msg=key)


ROWS_REFUSED = [
    (
        1.0,
        TypeError,
        r"rows must be row indices \(ints\) or a boolean mask of shape \(4,\), got 1.0",
    ),
    (True, TypeError, "got True"),
    ([0, np.bool_(True)], TypeError, "rows must be row indices"),
    ("1", TypeError, "got '1'"),
    (
        [4],
        ValueError,
        r"rows must be row indices in \[-4, 4\) \(negative from the end\), got \[4\]",
    ),
    (np.array([-5]), ValueError, r"in \[-4, 4\)"),  # -5: out of range from the end too
    (np.array([True, False]), ValueError, r"rows mask must have shape \(4,\), got \(2,\)"),
    (mx.array([[True] * 4]), ValueError, r"rows mask must have shape \(4,\)"),
    (np.array([[0, 1]]), ValueError, "0-d or 1-d array of row indices, got shape"),
    (np.array([0.0, 1.0]), TypeError, "got an array of dtype float64"),
    (mx.array([0.5]), TypeError, "got an array of dtype mlx.core.float32"),
]


@pytest.mark.parametrize(("rows", "error", "message"), ROWS_REFUSED)
def test_reset_state_refuses_bad_rows_clearly(rows, error, message):
    model = small_model()
    state = model.init_state(4)
    with pytest.raises(error, match=message):
        model.reset_state(state, rows)


# -- dropout from NumPy ----------------------------------------------------------------------


def test_numpy_float_dropout_is_accepted_and_saved_as_a_float(tmp_path):
    model = TCN(3, [4], dropout=np.float32(0.25))
    assert model.dropout == 0.25 and type(model.config["dropout"]) is float
    model.save(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["dropout"] == 0.25
    assert TemporalBlock(3, 4, 2, dropout=np.float64(0.5)).dropout == 0.5
    for bad, error in ((np.bool_(True), TypeError), ("0.1", TypeError), (True, TypeError)):
        with pytest.raises(error, match="dropout must be a float"):
            TCN(3, [4], dropout=bad)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        TCN(3, [4], dropout=np.float32(1.5))
