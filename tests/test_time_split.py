"""A convolution split by time over the CPU lanes (``ops._gemm_on_lanes``) computes what one
lane computes: forward, gradients and whole models, in training too."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_tcn import TCN, _backend, _dropout, ops
from mlx_tcn import block as block_module

pytestmark = pytest.mark.skipif(
    mx.default_device().type != mx.DeviceType.cpu, reason="the split is for the CPU device"
)


@pytest.fixture
def parts(monkeypatch):
    """Record every GEMM forward and backward of a convolution: the padded input's length
    and the stream it was traced on (the default stream inside its part)."""
    calls: dict[str, list[tuple[int, mx.Stream]]] = {"forward": [], "backward": []}
    real_forward, real_backward = ops._forward, ops._backward

    def here() -> mx.Stream:
        return mx.default_stream(mx.default_device())

    def forward(x, *args):
        calls["forward"].append((x.shape[1], here()))
        return real_forward(x, *args)

    def backward(x, *args):
        calls["backward"].append((x.shape[1], here()))
        return real_backward(x, *args)

    monkeypatch.setattr(ops, "_forward", forward)
    monkeypatch.setattr(ops, "_backward", backward)
    ops._GEMM_CONVS.clear()  # cached custom functions hold the real ones
    yield calls
    ops._GEMM_CONVS.clear()


def _streams(calls: list[tuple[int, mx.Stream]]) -> list[str]:
    """The streams of recorded calls, in a fixed order (a backward runs in reverse)."""
    return sorted(str(s) for _, s in calls)


def _names(lanes: list[mx.Stream]) -> list[str]:
    return sorted(map(str, lanes))


def _split_always(monkeypatch) -> None:
    monkeypatch.setattr(ops, "_MIN_PART_MACS", 1)


def _split_never(monkeypatch) -> None:
    monkeypatch.setattr(ops, "_MIN_PART_MACS", 1 << 62)


def _inputs(length: int, c_in: int, c_out: int, k: int, dilation: int, batch: int = 1):
    x = mx.random.normal((batch, length + dilation * (k - 1), c_in))
    w = mx.random.normal((c_out, k, c_in)) / np.sqrt(k * c_in)
    b = mx.random.normal((c_out,))
    return x, w, b


def _expected_parts(t_out: int, span: int, n: int) -> list[int]:
    """Padded-input lengths of the ``n`` near-equal time parts of ``t_out`` outputs."""
    edges = [t_out * i // n for i in range(n + 1)]
    return [b - a + span for a, b in zip(edges[:-1], edges[1:], strict=True)]


SHAPES = [
    # (output steps, c_in, c_out, kernel, dilation)
    (301, 5, 7, 3, 1),  # odd length: parts of 150 and 151
    (1000, 8, 8, 7, 16),  # the halo (96 steps) is a fifth of a part on two lanes
    (64, 4, 6, 2, 32),  # halo as long as a part (two lanes), twice as long (four)
    (3, 3, 3, 3, 1),  # fewer outputs than four lanes: three parts of one step
    (65, 2, 3, 1, 1),  # kernel 1: no halo
]
# both formulations; plain outputs of at most 64 steps take the gathered GEMM, never split
CASES = [
    pytest.param(custom_vjp, *shape, id=f"{'custom_vjp' if custom_vjp else 'plain'}-{shape[0]}")
    for custom_vjp in (True, False)
    for shape in SHAPES
    if custom_vjp or shape[0] > ops._GATHER_MAX_STEPS
]


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize(("custom_vjp", "t_out", "c_in", "c_out", "k", "d"), CASES)
def test_forward_equals_unsplit(
    monkeypatch, streams, parts, n, custom_vjp, t_out, c_in, c_out, k, d
):
    streams(n)
    x, w, b = _inputs(t_out, c_in, c_out, k, d)
    _split_always(monkeypatch)
    split = ops.conv1d(x, w, b, dilation=d, custom_vjp=custom_vjp)
    mx.eval(split)
    lanes = _backend.cpu_lanes()
    n_parts = min(n, t_out)
    assert [length for length, _ in parts["forward"]] == _expected_parts(
        t_out, d * (k - 1), n_parts
    )
    assert [stream for _, stream in parts["forward"]] == lanes[:n_parts]
    _split_never(monkeypatch)
    whole = ops.conv1d(x, w, b, dilation=d, custom_vjp=custom_vjp)
    assert split.shape == whole.shape == (1, t_out, c_out)
    # each output is the same dot product in both; only OpenBLAS's blocking of a GEMM with
    # fewer rows may order its k * c_in terms differently: float32 rounding of O(1) values
    np.testing.assert_allclose(np.array(split), np.array(whole), rtol=1e-6, atol=1e-6)


def _weighted_loss(x, w, b, d, custom_vjp=True):
    y = ops.conv1d(x, w, b, dilation=d, custom_vjp=custom_vjp)
    ramp = mx.arange(y.shape[1], dtype=mx.float32).reshape(1, -1, 1) / y.shape[1]
    return (y * y * ramp).sum()  # a cotangent that differs at every step


@pytest.mark.parametrize(("custom_vjp", "t_out", "c_in", "c_out", "k", "d"), CASES)
def test_gradients_equal_unsplit(monkeypatch, streams, parts, custom_vjp, t_out, c_in, c_out, k, d):
    streams(2)
    x, w, b = _inputs(t_out, c_in, c_out, k, d)
    grad = mx.value_and_grad(_weighted_loss, argnums=(0, 1, 2))
    _split_always(monkeypatch)
    loss, grads = grad(x, w, b, d, custom_vjp)
    mx.eval(loss, grads)
    lanes = _backend.cpu_lanes()
    if custom_vjp:  # each part's hand-written backward ran on its own lane
        assert _streams(parts["backward"]) == _names(lanes[: min(2, t_out)])
    else:
        assert [s for _, s in parts["forward"]] == lanes
    _split_never(monkeypatch)
    loss1, grads1 = grad(x, w, b, d, custom_vjp)
    np.testing.assert_allclose(loss.item(), loss1.item(), rtol=1e-6)
    for name, got, want in zip(("dx", "dW", "db"), grads, grads1, strict=True):
        # dW and db are sums over the output steps: the split adds the parts' partial sums
        # (and dx the two halo contributions) in another order, each term O(1); the
        # tolerance is float32 rounding of sums of up to a thousand such terms
        scale = float(mx.abs(want).max())
        np.testing.assert_allclose(
            np.array(got), np.array(want), rtol=1e-5, atol=1e-5 * scale, err_msg=name
        )


PADDINGS = {
    "causal": lambda span: (span, 0, 0.0),
    "non-causal": lambda span: (span // 2, span - span // 2, 0.0),
    "buffer value": lambda span: (span, 0, 0.7),
    "both sides, value": lambda span: (span - 1, 1, -1.5),
}


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("custom_vjp", [True, False])
@pytest.mark.parametrize("kind", list(PADDINGS))
def test_padding_by_parts_equals_padding_first(monkeypatch, streams, parts, n, custom_vjp, kind):
    """``padding=``: each part pads its own slice of the unpadded input, on its lane; the
    outputs and all gradients equal those of the input padded first, unsplit."""
    streams(n)
    t_out, c_in, c_out, k, d = 203, 5, 6, 4, 8
    span = d * (k - 1)
    left, right, value = PADDINGS[kind](span)
    x = mx.random.normal((1, t_out, c_in))
    w = mx.random.normal((c_out, k, c_in)) / np.sqrt(k * c_in)
    b = mx.random.normal((c_out,))

    def loss(x, w, b, by_parts):
        if by_parts:
            y = ops.conv1d(x, w, b, dilation=d, custom_vjp=custom_vjp, padding=(left, right, value))
        else:
            padded = ops.pad_constant(x, left, right, value)
            y = ops.conv1d(padded, w, b, dilation=d, custom_vjp=custom_vjp)
        ramp = mx.arange(y.shape[1], dtype=mx.float32).reshape(1, -1, 1) / y.shape[1]
        return (y * y * ramp).sum(), y

    grad = mx.value_and_grad(loss, argnums=(0, 1, 2))
    _split_always(monkeypatch)
    (_, split), grads = grad(x, w, b, True)
    mx.eval(split, grads)
    assert [length for length, _ in parts["forward"]] == _expected_parts(t_out, span, n)
    _split_never(monkeypatch)
    (_, whole), grads1 = grad(x, w, b, False)
    assert split.shape == whole.shape == (1, t_out, c_out)
    np.testing.assert_allclose(np.array(split), np.array(whole), rtol=1e-6, atol=1e-6)
    for got, want in zip(grads, grads1, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("split", [True, False])
@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_padding_value_is_rounded_to_the_inputs_dtype(monkeypatch, streams, split, dtype):
    """A half-precision input is padded in its own dtype, as a stream of it keeps its
    buffer value, whether the parts pad or the whole is padded first."""
    streams(2)
    (_split_always if split else _split_never)(monkeypatch)
    x = mx.random.normal((1, 150, 3)).astype(dtype)
    w = mx.random.normal((4, 3, 3))
    padding = (4, 0, 0.7)  # 0.7 is not exact in either half type
    got = ops.conv1d(x, w, dilation=2, padding=padding)
    want = ops.conv1d(ops.pad_constant(x, *padding), w, dilation=2)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(
        np.array(got.astype(mx.float32)), np.array(want.astype(mx.float32))
    )


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
def test_a_stream_with_a_buffer_value_equals_offline(dtype):
    from mlx_tcn import TemporalConv1d

    conv = TemporalConv1d(3, 4, 3, dilation=2, causal=True, buffer=0.7)
    x = mx.random.normal((1, 300, 3)).astype(dtype)
    offline = np.array(conv(x).astype(mx.float32))
    state, outs = conv.init_state(1, dtype), []
    for i in range(0, 300, 50):
        y, state = conv.stream(x[:, i : i + 50], state)
        outs.append(np.array(y.astype(mx.float32)))
    np.testing.assert_allclose(np.concatenate(outs, axis=1), offline, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("where", ["unsplit", "gathered", "grouped"])
def test_padding_on_paths_that_pad_first(where):
    x = mx.random.normal((2, 30 if where != "gathered" else 9, 4))
    groups = 2 if where == "grouped" else 1
    w = mx.random.normal((6, 3, 4 // groups))
    padding = (4, 0, 0.25)
    want = ops.conv1d(
        ops.pad_constant(x, *padding), w, dilation=2, groups=groups, custom_vjp=where != "gathered"
    )
    got = ops.conv1d(
        x, w, dilation=2, groups=groups, custom_vjp=where != "gathered", padding=padding
    )
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("padding", [(-1, 0, 0.0), (0, 2.5, 0.0), (True, 0, 0.0)])
def test_padding_must_be_non_negative_ints(padding):
    with pytest.raises(ValueError, match="padding"):
        ops.conv1d(mx.zeros((1, 8, 2)), mx.zeros((3, 2, 2)), padding=padding)


@pytest.mark.parametrize("value", [None, "0", True])
def test_padding_value_must_be_a_number(value):
    with pytest.raises(TypeError, match="padding value"):
        ops.conv1d(mx.zeros((1, 8, 2)), mx.zeros((3, 2, 2)), padding=(1, 0, value))


def test_batch_of_two_splits_by_time_too(monkeypatch, streams, parts):
    # rows too few for the model's row split still occupy every lane, by time
    streams(2)
    x, w, b = _inputs(700, 6, 5, 3, 4, batch=2)
    _split_always(monkeypatch)
    grad = mx.value_and_grad(_weighted_loss, argnums=(0, 1, 2))
    loss, grads = grad(x, w, b, 4)
    mx.eval(loss, grads)
    assert [length for length, _ in parts["forward"]] == _expected_parts(700, 8, 2)
    _split_never(monkeypatch)
    loss1, grads1 = grad(x, w, b, 4)
    np.testing.assert_allclose(loss.item(), loss1.item(), rtol=1e-6)
    for got, want in zip(grads, grads1, strict=True):
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-5, atol=1e-4)


def test_gradients_under_compile(monkeypatch, streams, parts):
    streams(2)
    x, w, b = _inputs(500, 6, 6, 3, 2)
    _split_always(monkeypatch)
    grad = mx.grad(lambda x, w, b: _weighted_loss(x, w, b, 2), argnums=(0, 1, 2))
    compiled = mx.compile(grad)(x, w, b)
    mx.eval(compiled)
    assert len(parts["backward"]) == 2
    _split_never(monkeypatch)
    for got, want in zip(compiled, grad(x, w, b), strict=True):
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-5, atol=1e-4)


def _model(config: dict | None = None) -> TCN:
    mx.random.seed(3)
    model = TCN(4, [16, 16, 8], kernel_sizes=3, **{"dropout": 0.0, **(config or {})})
    mx.eval(model.parameters())
    return model


def _unsplit_calls(monkeypatch, parts, run) -> tuple[object, int]:
    """``run()`` with the split off: its result and how many GEMM convolutions it ran."""
    _split_never(monkeypatch)
    parts["forward"].clear()
    out = run()
    mx.eval(out)
    here = mx.default_stream(mx.default_device())
    assert {str(s) for _, s in parts["forward"]} == {str(here)}
    count = len(parts["forward"])
    parts["forward"].clear()
    parts["backward"].clear()
    return out, count


@pytest.mark.parametrize(
    "config",
    [{"use_norm": "weight_norm"}, {"causal": False, "use_skip_connections": True}],
    ids=["weight-norm", "non-causal-skip"],
)
def test_model_forward_at_batch_one_equals_unsplit(monkeypatch, streams, parts, config):
    # 900 steps: too short for the model's own time split (parallel.py), so it is one part
    # and every convolution splits its GEMMs by time instead
    streams(2)
    model = _model(config)
    model.eval()
    x = mx.random.normal((1, 900, 4))
    whole, convs = _unsplit_calls(monkeypatch, parts, lambda: model(x))
    _split_always(monkeypatch)
    split = model(x)
    mx.eval(split)
    assert [s for _, s in parts["forward"]] == _backend.cpu_lanes() * convs
    np.testing.assert_allclose(np.array(split), np.array(whole), rtol=1e-5, atol=1e-5)


def _loss(model, x):
    return (model(x) ** 2).mean()


def test_model_training_gradients_at_batch_one_equal_unsplit(monkeypatch, streams, parts):
    streams(2)
    model = _model({"use_norm": "weight_norm"})
    model.train()
    x = mx.random.normal((1, 900, 4))
    grad = nn.value_and_grad(model, _loss)
    (loss1, grads1), convs = _unsplit_calls(monkeypatch, parts, lambda: grad(model, x))
    _split_always(monkeypatch)
    loss, grads = grad(model, x)
    mx.eval(loss, grads)
    assert _streams(parts["backward"]) == _names(_backend.cpu_lanes() * convs)
    np.testing.assert_allclose(loss.item(), loss1.item(), rtol=1e-5)
    for (name, a), (_, b) in zip(tree_flatten(grads), tree_flatten(grads1), strict=True):
        # a parameter's gradient sums 900 steps' terms, in two partial sums when split
        scale = float(mx.abs(b).max())
        np.testing.assert_allclose(
            np.array(a), np.array(b), rtol=1e-4, atol=1e-5 * scale, err_msg=name
        )


def test_no_split_inside_a_row_split_part(monkeypatch, streams, parts):
    # the model splits the batch by rows over the lanes; the convolutions inside each part
    # run on that part's lane, whole
    streams(2)
    model = _model()
    model.train()
    x = mx.random.normal((4, 700, 4))
    grad = nn.value_and_grad(model, _loss)
    _, convs = _unsplit_calls(monkeypatch, parts, lambda: grad(model, x[:2]))
    _split_always(monkeypatch)
    mx.eval(grad(model, x))
    lanes = _backend.cpu_lanes()
    # two row parts, each running every convolution whole on its own lane
    assert [s for _, s in parts["forward"]] == [lanes[0]] * convs + [lanes[1]] * convs
    assert _streams(parts["backward"]) == _names(lanes * convs)
    assert all(length >= 700 for length, _ in parts["forward"])


def test_on_lane(streams):
    streams(2)
    assert not _backend.on_lane()
    for lane in _backend.cpu_lanes():
        with mx.stream(lane):
            assert _backend.on_lane()
    assert not _backend.on_lane()


M = 1 << 20  # multiply-adds


@pytest.mark.parametrize(
    ("rows", "t_out", "macs_per_row", "lanes", "custom_vjp", "expected"),
    [
        # the shipped minimum: 16M multiply-adds per part of a forward, 32M with a backward
        (1, 1000, 1 << 15, 2, False, [(0, 1000)]),  # two parts of 15.6M: too little
        (1, 1024, 1 << 15, 2, False, [(0, 512), (512, 1024)]),  # two parts of 16M
        (1, 1024, 1 << 15, 2, True, [(0, 1024)]),  # the same with a backward: too little
        (1, 2048, 1 << 15, 2, True, [(0, 1024), (1024, 2048)]),
        (1, 1024, 1 << 15, 1, False, [(0, 1024)]),  # one lane
        (1, 4096, 1 << 14, 4, False, [(0, 1024), (1024, 2048), (2048, 3072), (3072, 4096)]),
        (1, 3072, 1 << 14, 4, False, [(0, 1024), (1024, 2048), (2048, 3072)]),  # 3 parts pay
        (1, 1, 1 << 30, 2, False, [(0, 1)]),  # one output step
        (2, 1024, 1 << 14, 2, False, [(0, 512), (512, 1024)]),  # rows count as work
        # the wide batch-1 layer splits; 16 channels x 256 steps never does
        (1, 2048, 256 * 3 * 256, 2, True, [(0, 1024), (1024, 2048)]),
        (1, 256, 16 * 3 * 16, 2, False, [(0, 256)]),
    ],
)
def test_lane_parts_threshold(monkeypatch, rows, t_out, macs_per_row, lanes, custom_vjp, expected):
    assert ops._MIN_PART_MACS == 16 * M
    monkeypatch.setattr(_backend.runtime.STATE, "lanes", lanes)
    assert ops._lane_parts(rows, t_out, macs_per_row, custom_vjp) == expected


def test_small_convolution_is_not_split(streams, parts):
    # 16 channels x 256 steps, k=3: 0.2M multiply-adds, far below a part's minimum
    streams(2)
    x, w, b = _inputs(256, 16, 16, 3, 1)
    grad = mx.grad(_weighted_loss, argnums=(0, 1, 2))
    mx.eval(grad(x, w, b, 1), ops.conv1d(x, w, b, custom_vjp=False))
    here = mx.default_stream(mx.default_device())
    assert parts["forward"] == [(258, here), (258, here)]
    assert [s for _, s in parts["backward"]] == [here]


def test_gathered_short_output_is_not_split(monkeypatch, streams):
    # a stream chunk (at most 64 output steps, custom_vjp=False) is one gathered GEMM
    used = streams(2)
    _split_always(monkeypatch)
    x, w, b = _inputs(64, 32, 32, 3, 8)
    mx.eval(ops.conv1d(x, w, b, dilation=8, custom_vjp=False))
    assert used == []


@pytest.mark.parametrize("custom_vjp", [True, False], ids=["custom_vjp", "plain"])
def test_parts_slice_the_weight_on_the_calling_stream(monkeypatch, streams, custom_vjp):
    # sliced on the lanes, a weight computed in the same graph (weight norm) made the lanes
    # take turns (measured); each part's taps come from the caller's stream
    streams(2)
    _split_always(monkeypatch)
    sliced_on: list[str] = []
    real = ops._taps
    monkeypatch.setattr(
        ops, "_taps", lambda w: sliced_on.append(str(mx.default_stream(mx.cpu))) or real(w)
    )
    ops._GEMM_CONVS.clear()
    x, v, b = _inputs(300, 4, 4, 3, 2)
    weight = v * 2.0  # computed in the graph
    mx.eval(ops.conv1d(x, weight, b, dilation=2, custom_vjp=custom_vjp))
    assert sliced_on == [str(mx.default_stream(mx.cpu))] * 2


def test_model_training_step_compiles_at_batch_one(
    monkeypatch, streams, parts, compiled_sgd_losses
):
    streams(2)
    _split_always(monkeypatch)
    model = _model({"dropout": 0.1})
    model.train()
    x = mx.random.normal((1, 600, 4))
    losses = compiled_sgd_losses(model, _loss, x)
    # traced once: every backward of the compiled step runs on a lane
    assert set(_streams(parts["backward"])) == set(_names(_backend.cpu_lanes()))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_exported_model_with_split_convolutions_runs_in_a_plain_mlx_process(
    monkeypatch, streams, tmp_path
):
    from test_backend import _run as run_python_json  # a fresh interpreter, one JSON line

    used = streams(2)
    _split_always(monkeypatch)
    model = _model()
    model.eval()
    x = mx.random.normal((1, 500, 4))
    path = tmp_path / "tcn.mlxfn"
    mx.export_function(str(path), lambda x: model(x), x)
    assert used  # the exported graph holds convolutions split over the lanes
    np.save(tmp_path / "x.npy", np.array(x))
    code = f"""
        import json, mlx.core as mx, numpy as np
        f = mx.import_function({str(path)!r})
        y = f(mx.array(np.load({str(tmp_path / "x.npy")!r})))[0]
        print(json.dumps(np.array(y).tolist()))
    """
    got = np.array(run_python_json(code), dtype=np.float32)
    _split_never(monkeypatch)
    np.testing.assert_allclose(got, np.array(model(x)), rtol=1e-5, atol=1e-5)


# --- the epilogue: what follows a convolution step by step, run on each part ---------------


def _recording_epilogue(calls: list[tuple[int, str]]):
    def epilogue(y: mx.array) -> mx.array:
        calls.append((y.shape[1], str(mx.default_stream(mx.default_device()))))
        return mx.maximum(y, 0.0) * 2.0 - 1.0

    return epilogue


@pytest.mark.parametrize("custom_vjp", [True, False], ids=["custom_vjp", "plain"])
def test_epilogue_runs_on_each_part_on_its_lane(monkeypatch, streams, custom_vjp):
    streams(2)
    x, w, b = _inputs(301, 5, 7, 3, 2)
    calls: list[tuple[int, str]] = []
    _split_always(monkeypatch)
    split = ops.conv1d(
        x, w, b, dilation=2, custom_vjp=custom_vjp, epilogue=_recording_epilogue(calls)
    )
    first, second = _backend.cpu_lanes()[:2]
    assert calls == [(150, str(first)), (151, str(second))]
    calls.clear()
    _split_never(monkeypatch)
    whole = ops.conv1d(
        x, w, b, dilation=2, custom_vjp=custom_vjp, epilogue=_recording_epilogue(calls)
    )
    assert calls == [(301, str(mx.default_stream(mx.default_device())))]
    plain = ops.conv1d(x, w, b, dilation=2, custom_vjp=custom_vjp)
    np.testing.assert_allclose(np.array(whole), np.array(mx.maximum(plain, 0) * 2 - 1), rtol=1e-6)
    np.testing.assert_allclose(np.array(split), np.array(whole), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("where", ["gathered", "grouped", "strided"])
def test_epilogue_applies_on_every_path(where):
    # the paths that never split still return epilogue(y)
    x, w, b = _inputs(10, 4, 4, 3, 1)
    kwargs = {"custom_vjp": False}
    if where == "grouped":
        w, kwargs = w[:, :, :2], {"groups": 2}
    if where == "strided":
        kwargs = {"stride": 2}
    plain = ops.conv1d(x, w, b, **kwargs)
    got = ops.conv1d(x, w, b, epilogue=lambda y: y * 3.0 + 1.0, **kwargs)
    np.testing.assert_allclose(np.array(got), np.array(plain * 3.0 + 1.0), rtol=1e-6)


def test_epilogue_must_be_callable():
    x, w, b = _inputs(10, 4, 4, 3, 1)
    with pytest.raises(TypeError, match="epilogue must be callable or None, got int"):
        ops.conv1d(x, w, b, epilogue=3)


def _recorded_masks(monkeypatch) -> list[tuple[mx.array, str]]:
    """Every dropout mask a block draws, with the stream it was drawn on."""
    masks: list[tuple[mx.array, str]] = []
    real = block_module.keep_mask

    def keep_mask(*args, **kwargs):
        mask = real(*args, **kwargs)
        masks.append((mask, str(mx.default_stream(mx.default_device()))))
        return mask

    monkeypatch.setattr(block_module, "keep_mask", keep_mask)
    return masks


@pytest.mark.parametrize("hashed", [False, True], ids=["mlx-draw", "hash"])
def test_block_dropout_and_activation_run_on_the_parts(monkeypatch, streams, parts, hashed):
    # one long sequence in training: each convolution's parts draw their own dropout masks
    # on their own lanes, and the result is still dropout at the block's rate (masks this
    # small take MLX's draw; "hash" makes them take the counter hash)
    if hashed:
        monkeypatch.setattr(_dropout, "_MIN_ELEMENTS", 1)
    streams(2)
    _split_always(monkeypatch)
    masks = _recorded_masks(monkeypatch)
    model = _model({"dropout": 0.3})
    model.train()
    x = mx.random.normal((1, 2000, 4))
    mx.eval(nn.value_and_grad(model, _loss)(model, x))
    lanes = [str(lane) for lane in _backend.cpu_lanes()]
    convs = len(parts["forward"]) // 2
    assert convs == 6  # three blocks of two convolutions, each in two parts
    assert [stream for _, stream in masks] == lanes * convs
    assert [mask.shape[1] for mask, _ in masks] == [1000, 1000] * convs
    for first, second in zip(masks[::2], masks[1::2], strict=True):
        a, b = np.array(first[0]), np.array(second[0])
        assert not np.array_equal(a, b)  # each part its own draw
        for m in (a, b):  # 16,000 or 8,000 draws each: 0.7 within 0.02
            assert abs(m.mean() - 0.7) < 0.02


@pytest.mark.parametrize(
    "config",
    [{"use_norm": "batch_norm"}, {"embedding_shapes": [(3, 2000)], "embedding_mode": "add"}],
    ids=["batch-norm", "time-embedding"],
)
def test_block_passes_that_are_not_per_step_stay_whole(monkeypatch, streams, parts, config):
    # batch norm's training statistics and a time-aligned embedding need the whole sequence:
    # those blocks draw their masks on the caller's stream, over every step
    streams(2)
    _split_always(monkeypatch)
    masks = _recorded_masks(monkeypatch)
    model = _model({"dropout": 0.3, **config})
    model.train()
    x = mx.random.normal((1, 2000, 4))
    kwargs = (
        {"embeddings": [mx.random.normal((1, 2000, 3))]} if "embedding_shapes" in config else {}
    )
    out = model(x, **kwargs)
    mx.eval(out)
    assert len(parts["forward"]) == 12  # the convolutions still split
    here = str(mx.default_stream(mx.default_device()))
    if "embedding_shapes" in config:
        # only the first convolution of each block takes the embedding: the second's parts
        # still draw on the lanes
        lanes = [str(lane) for lane in _backend.cpu_lanes()]
        assert [s for _, s in masks] == [here, *lanes] * 3
        assert [m.shape[1] for m, _ in masks] == [2000, 1000, 1000] * 3
    else:
        assert [s for _, s in masks] == [here] * 6
        assert [m.shape[1] for m, _ in masks] == [2000] * 6
