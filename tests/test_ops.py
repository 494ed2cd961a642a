"""Tests for ``mlx_tcn.ops``: the convolution primitive against a NumPy reference."""

from __future__ import annotations

from unittest import mock

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx_tcn import ops


def reference_conv1d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
) -> np.ndarray:
    """Direct float64 loop over taps and groups: ``y[b,t,o] = sum w[o,k,i] x[b,ts+kd,i]``."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    batch, length, c_in = x.shape
    c_out, k, c_in_g = w.shape
    c_out_g = c_out // groups
    t_out = (length - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((batch, t_out, c_out))
    for g in range(groups):
        xg = x[:, :, g * c_in_g : (g + 1) * c_in_g]
        wg = w[g * c_out_g : (g + 1) * c_out_g]
        for j in range(k):
            start = j * dilation
            xs = xg[:, start : start + stride * (t_out - 1) + 1 : stride]
            y[:, :, g * c_out_g : (g + 1) * c_out_g] += xs @ wg[:, j, :].T
    if b is not None:
        y += b
    return y


def reference_grads(x, w, b, g, stride=1, dilation=1, groups=1):
    """Float64 gradients of ``sum(g * conv(x, w, b))`` for x, w and (if given) b."""
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    c_out, k, c_in_g = w.shape
    c_out_g = c_out // groups
    t_out = g.shape[1]
    dx = np.zeros_like(x64)
    dw = np.zeros_like(w64)
    for grp in range(groups):
        ci = slice(grp * c_in_g, (grp + 1) * c_in_g)
        co = slice(grp * c_out_g, (grp + 1) * c_out_g)
        for j in range(k):
            rows = slice(j * dilation, j * dilation + stride * (t_out - 1) + 1, stride)
            dx[:, rows, ci] += g64[:, :, co] @ w64[co, j, :]
            dw[co, j, :] += np.einsum("bto,bti->oi", g64[:, :, co], x64[:, rows, ci])
    return [dx, dw] + ([g64.sum(axis=(0, 1))] if b is not None else [])


def make(rng, batch, length, c_in, c_out, k, groups=1, bias=True):
    x = rng.standard_normal((batch, length, c_in)).astype(np.float32)
    w = rng.standard_normal((c_out, k, c_in // groups)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    return x, w, b


def run_vjp(x, w, b, g, **kw):
    """``ops.conv1d`` output and its VJP for the cotangent ``g`` (all NumPy)."""
    primals = [mx.array(x), mx.array(w)] + ([mx.array(b)] if b is not None else [])

    def f(*args):
        return ops.conv1d(args[0], args[1], args[2] if len(args) > 2 else None, **kw)

    (y,), grads = mx.vjp(f, primals, [mx.array(g)])
    return np.array(y), [np.array(a) for a in grads]


def test_exact_values_constant_weights():
    # x = 0..5 along time, one channel; taps (1, 10) with dilation 2: y[t] = x[t] + 10 x[t+2]
    x = mx.arange(6, dtype=mx.float32).reshape(1, 6, 1)
    w = mx.array([[[1.0], [10.0]]])
    y = ops.conv1d(x, w, mx.array([0.5]), dilation=2)
    assert y.tolist() == [[[20.5], [31.5], [42.5], [53.5]]]


def test_batches_do_not_mix():
    # the flat formulation shares one matrix across the batch; a spike in sequence 0
    # must not leak into sequence 1.
    x = mx.zeros((2, 8, 1))
    x[0, -1, 0] = 1.0
    y = ops.conv1d(x, mx.ones((1, 3, 1)), dilation=2)
    assert y[1].tolist() == [[0.0]] * 4
    assert y[0, :, 0].tolist() == [0.0, 0.0, 0.0, 1.0]


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3),
    length_extra=st.integers(0, 12),
    c_in=st.integers(1, 6),
    c_out=st.integers(1, 6),
    k=st.integers(1, 5),
    dilation=st.integers(1, 6),
    bias=st.booleans(),
    batched=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_forward_and_grads_match_reference(
    batch, length_extra, c_in, c_out, k, dilation, bias, batched, seed
):
    # both GEMM layouts (flat rows, per-sequence batched) on every drawn shape
    rng = np.random.default_rng(seed)
    length = dilation * (k - 1) + 1 + length_extra
    x, w, b = make(rng, batch, length, c_in, c_out, k, bias=bias)
    g = rng.standard_normal((batch, length_extra + 1, c_out)).astype(np.float32)
    with mock.patch.object(ops, "_use_batched", lambda *_: batched):
        y, grads = run_vjp(x, w, b, g, dilation=dilation)
    np.testing.assert_allclose(
        y, reference_conv1d(x, w, b, dilation=dilation), rtol=1e-4, atol=1e-4
    )
    for got, want in zip(grads, reference_grads(x, w, b, g, dilation=dilation), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 2),
    length_extra=st.integers(0, 9),
    groups=st.sampled_from([1, 2, 3]),
    per_group=st.integers(1, 3),
    k=st.integers(1, 4),
    dilation=st.integers(1, 3),
    stride=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_stride_and_groups_match_reference(
    batch, length_extra, groups, per_group, k, dilation, stride, seed
):
    rng = np.random.default_rng(seed)
    c = groups * per_group
    length = dilation * (k - 1) + 1 + length_extra
    x, w, b = make(rng, batch, length, c, c, k, groups=groups)
    t_out = length_extra // stride + 1
    g = rng.standard_normal((batch, t_out, c)).astype(np.float32)
    kw = dict(stride=stride, dilation=dilation, groups=groups)
    y, grads = run_vjp(x, w, b, g, **kw)
    np.testing.assert_allclose(y, reference_conv1d(x, w, b, **kw), rtol=1e-4, atol=1e-4)
    for got, want in zip(grads, reference_grads(x, w, b, g, **kw), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dilation", [1, 4])
def test_matches_mx_conv1d_at_layer_size(rng, dilation):
    # a realistic layer (dilation 1 uses MLX's fast dilation-1 conv as the reference)
    x, w, b = make(rng, 4, 200 + 2 * dilation, 32, 48, 3)
    y = ops.conv1d(mx.array(x), mx.array(w), mx.array(b), dilation=dilation)
    want = reference_conv1d(x, w, b, dilation=dilation)
    np.testing.assert_allclose(np.array(y), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.usefixtures("on_cpu")  # other devices run MLX's half-precision convolution
def test_half_precision(rng, dtype, groups):
    # computed in float32 and rounded once: as exact as the inputs allow
    x, w, b = make(rng, 2, 20, 4, 4, 3, groups=groups)
    xs, ws, bs = (mx.array(a, dtype) for a in (x, w, b))
    y = ops.conv1d(xs, ws, bs, dilation=2, groups=groups)
    assert y.dtype == dtype
    want = reference_conv1d(
        *(np.array(a.astype(mx.float32)) for a in (xs, ws, bs)), dilation=2, groups=groups
    )
    # within one rounding step of the half type (float32 accumulation, rounded once)
    eps = 2.0**-8 if dtype == mx.bfloat16 else 2.0**-11
    np.testing.assert_allclose(np.array(y.astype(mx.float32)), want, rtol=eps, atol=1e-3)


def test_mixed_dtypes_promote_to_float32(rng):
    x, w, b = make(rng, 1, 6, 2, 2, 2)
    y = ops.conv1d(mx.array(x), mx.array(w, mx.float16), mx.array(b, mx.bfloat16))
    assert y.dtype == mx.float32


def test_grad_under_compile(rng):
    x, w, b = make(rng, 3, 30, 5, 4, 3)
    xs, ws, bs = mx.array(x), mx.array(w), mx.array(b)

    def loss(x, w, b):
        return (ops.conv1d(x, w, b, dilation=3) ** 2).sum()

    want = mx.grad(loss, argnums=(0, 1, 2))(xs, ws, bs)
    got = mx.compile(mx.grad(loss, argnums=(0, 1, 2)))(xs, ws, bs)
    for a, e in zip(got, want, strict=True):
        np.testing.assert_allclose(np.array(a), np.array(e), rtol=1e-5, atol=1e-4)
    y = mx.compile(lambda x, w, b: ops.conv1d(x, w, b, dilation=3))(xs, ws, bs)
    np.testing.assert_allclose(
        np.array(y), reference_conv1d(x, w, b, dilation=3), rtol=1e-4, atol=1e-4
    )


def test_second_call_reuses_cached_function():
    x, w = mx.ones((1, 5, 1)), mx.ones((1, 2, 1))
    assert ops.conv1d(x, w, dilation=2).tolist() == [[[2.0]] * 3]
    made = len(ops._GEMM_CONVS)
    assert ops.conv1d(x, w, dilation=2).tolist() == [[[2.0]] * 3]
    # one custom function per (dilation, bias, stream): a cache keyed by mx.Stream objects
    # (hashed by identity) made a new one per call
    assert len(ops._GEMM_CONVS) == made


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(x=mx.zeros((5, 2))), r"x must be \(batch, length, channels\), got shape \(5, 2\)"),
        (dict(weight=mx.zeros((2, 3))), r"weight must be .*got shape \(2, 3\)"),
        (dict(stride=0), "stride must be a positive int, got 0"),
        (dict(dilation=1.5), "dilation must be a positive int, got 1.5"),
        (dict(groups=True), "groups must be a positive int, got True"),
        (dict(groups=2), r"weight shape \(3, 2, 4\) does not fit x with 4 channels and groups=2"),
        (dict(weight=mx.zeros((3, 2, 5))), r"does not fit x with 4 channels"),
        (dict(x=mx.zeros((1, 1, 4))), "x length 1 is shorter than the kernel span 2"),
        (dict(bias=mx.zeros((2,))), r"bias must have shape \(3,\), got \(2,\)"),
    ],
)
def test_validation(kwargs, match):
    args = dict(x=mx.zeros((1, 6, 4)), weight=mx.zeros((3, 2, 4)), bias=None)
    args.update(kwargs)
    x, w, b = args.pop("x"), args.pop("weight"), args.pop("bias")
    with pytest.raises(ValueError, match=match):
        ops.conv1d(x, w, b, **args)


def test_inference_is_a_deprecated_spelling_of_custom_vjp():
    x = mx.random.normal((2, 20, 3))
    w = mx.random.normal((4, 3, 3))
    plain = ops.conv1d(x, w, dilation=2, custom_vjp=False)
    with pytest.warns(DeprecationWarning, match="custom_vjp"):
        old = ops.conv1d(x, w, dilation=2, inference=True)
    np.testing.assert_array_equal(np.array(old), np.array(plain))
    with pytest.raises(ValueError, match="disagree"), pytest.warns(DeprecationWarning):
        ops.conv1d(x, w, custom_vjp=False, inference=False)


# -- the gathered GEMM (custom_vjp=False, short outputs: stream chunks) ----------------------


def _view(x: np.ndarray, kind: str) -> mx.array:
    """``x`` as an MLX array laid out as ``kind``: contiguous, or a non-contiguous view (the
    gathered form reads its window through strides, so the layout must not matter)."""
    if kind == "contiguous":
        return mx.array(x)
    if kind == "time-slice":  # a view into a longer sequence, rows not contiguous
        padded = np.concatenate([np.zeros((x.shape[0], 2, x.shape[2]), x.dtype), x], axis=1)
        return mx.array(padded)[:, 2:]
    # channels-first storage, transposed: every stride differs from a contiguous array
    return mx.array(np.ascontiguousarray(x.transpose(0, 2, 1))).transpose(0, 2, 1)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3),
    t_out=st.sampled_from([1, 2, 5, ops._GATHER_MAX_STEPS]),
    c_in=st.integers(1, 5),
    c_out=st.integers(1, 5),
    k=st.integers(1, 5),
    dilation=st.integers(1, 9),
    bias=st.booleans(),
    layout=st.sampled_from(["contiguous", "time-slice", "transposed"]),
    with_matrix=st.sampled_from(["none", "3-D", "2-D"]),
    seed=st.integers(0, 2**16),
)
def test_gathered_gemm_matches_reference(
    batch, t_out, c_in, c_out, k, dilation, bias, layout, with_matrix, seed
):
    """The one-GEMM form of a short output (one step: a strided slice; more: a strided
    view), on any input layout, with and without a precomputed ``gemm_matrix``; its
    gradients (MLX's autodiff through the views) too."""
    rng = np.random.default_rng(seed)
    length = dilation * (k - 1) + t_out
    x, w, b = make(rng, batch, length, c_in, c_out, k, bias=bias)
    xs, ws = _view(x, layout), mx.array(w)
    bs = None if b is None else mx.array(b)
    matrix = {"none": None, "3-D": ops.gemm_matrix(ws), "2-D": ops.gemm_matrix(ws)[0]}[with_matrix]
    y = ops.conv1d(xs, ws, bs, dilation=dilation, custom_vjp=False, matrix=matrix)
    want = reference_conv1d(x, w, b, dilation=dilation)
    np.testing.assert_allclose(np.array(y), want, rtol=1e-4, atol=1e-4)

    g = rng.standard_normal(want.shape).astype(np.float32)
    y2, grads = run_vjp(x, w, b, g, dilation=dilation, custom_vjp=False)
    np.testing.assert_allclose(y2, want, rtol=1e-4, atol=1e-4)
    for got, expected in zip(grads, reference_grads(x, w, b, g, dilation=dilation), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_gemm_matrix_layout():
    """Row ``j * in + i`` of the matrix is tap ``j``, input channel ``i``: exact values."""
    w = mx.arange(2 * 3 * 4, dtype=mx.bfloat16).reshape(2, 3, 4)  # (out, k, in)
    m = ops.gemm_matrix(w)
    assert m.shape == (1, 12, 2) and m.dtype == mx.float32
    for j in range(3):
        for i in range(4):
            assert m[0, j * 4 + i].tolist() == [float(w[o, j, i].item()) for o in range(2)]


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.usefixtures("on_cpu")  # the GEMM path is the CPU's
def test_gathered_one_step_costs_a_few_operations(batch):
    """A one-step convolution with its matrix laid out is a strided slice, the copy into
    a matrix and one GEMM (at batch > 1 the 2-D GEMM between two reshapes), plus the bias;
    it was three slices, a concatenation, the weight reshaped and transposed, and a bias
    broadcast into an addmm between reshapes (issue 14: a stream step is bound by its
    number of operations)."""
    x = mx.random.normal((batch, 9, 4))
    w = mx.random.normal((5, 3, 4))
    matrix = ops.gemm_matrix(w)
    mx.eval(x, w, matrix)
    y = ops.conv1d(x, w, dilation=4, custom_vjp=False, matrix=matrix)
    if batch == 1:
        assert primitive_names(y) == ["Slice", "Reshape", "Matmul"]
    else:
        assert sorted(primitive_names(y)) == ["Matmul", "Reshape", "Reshape", "Reshape", "Slice"]
    np.testing.assert_allclose(
        np.array(y), reference_conv1d(np.array(x), np.array(w), dilation=4), rtol=1e-5, atol=1e-5
    )


def primitive_names(*outputs: mx.array) -> list[str]:
    """The primitives of the (unevaluated) graph behind ``outputs``, inputs first."""
    import io
    import re

    dot = io.StringIO()
    mx.export_to_dot(dot, *outputs)
    return re.findall(r'label ="([^"]*)", shape=rectangle', dot.getvalue())
