"""The convolution primitive: every temporal convolution in mlx-tcn goes through here.

(Over 400 lines: one primitive, whose forward, hand-written backward, split over the CPU
lanes and grouped paths share the layout rules explained here.)

All arrays are channels-last (``NLC``): ``x`` is ``(batch, length, in_channels)`` and
weights are ``(out_channels, kernel_size, in_channels // groups)``, MLX's own layout.
The input is already padded (padding and streaming state are the caller's job), or
``conv1d`` pads it with constants (``padding=``): where the GEMMs split by time over the CPU
lanes, each part then pads only its own slice, on its lane.

On the CPU, :func:`conv1d` does not call ``mx.conv1d`` for ``stride == 1, groups == 1``:
MLX's CPU convolution falls back to a naive loop for ``dilation > 1`` (about 1 GFLOP/s)
and stays under the GEMM rate even for ``dilation == 1``. Instead it runs ``K`` GEMMs,
one per kernel tap, on row-offset *views* of the input (no im2col copy), accumulated in
place with ``mx.addmm``, then the bias in one pass. Two layouts:

* *flat*: the padded input ``(B, Tp, C)`` is one matrix of ``B * Tp`` rows; tap ``j``
  reads the rows shifted by ``j * dilation``. Output row ``b * Tp + t`` is ``(b, t)``;
  the ``(K - 1) * dilation`` rows at the end of each sequence mix two sequences and are
  skipped by a strided view, never copied.
* *batched*: one GEMM per sequence on strided 3-D views, used when the flat form would
  waste more than about 1/16 of its rows (large dilation against the length).

The backward pass is written by hand (``mx.custom_function``): autodiff through the
shifted views would scatter ``K`` full-size zero-padded gradients. The cotangent is
written once into a zero-padded buffer; the input gradient is then ``K`` GEMMs on
row-offset views of it (a transposed convolution done the same way) and the weight
gradient ``K`` GEMMs ``g^T x_j``. Everything is an ordinary MLX op, so ``mx.grad``,
``mx.vjp`` and ``mx.compile`` work through it.

With several CPU lanes (``MLX_TCN_THREADS``) and a forward that :mod:`mlx_tcn.parallel`
left whole (a batch of one, say), a convolution with enough work splits its GEMMs by output
steps over the lanes, each part reading its steps plus the kernel's span (see
:func:`_gemm_on_lanes`).

Outputs of at most 64 steps computed without the hand-written backward (inference, a stream
chunk, an export) take one GEMM over the gathered taps instead: the ``k`` frames each output
reads, side by side, as one strided view copied into a matrix. A stream step does almost no
arithmetic and costs per MLX operation, so this form uses as few as it can (see
docs/streaming.md#operations-per-step).

Grouped convolutions on the CPU: depthwise ones (one filter per channel) are ``K``
multiply-adds; other dilated ones run ``mx.conv1d`` without dilation on the
``dilation`` interleaved phases of the input. Half-precision inputs are computed in
float32 and rounded once. Other devices (Metal, CUDA) and ``stride > 1`` use
``mx.conv1d`` as is.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import mlx.core as mx

from . import _backend

logger = logging.getLogger(__name__)

__all__ = ["conv1d", "gemm_matrix", "pad_constant"]

_FLOATS = (mx.float32, mx.float16, mx.bfloat16)

# What follows a convolution step by step (see conv1d's ``epilogue``).
Epilogue = Callable[[mx.array], mx.array]
# Constant padding that conv1d applies itself: (left, right, left_value); the ``left`` frames
# before the input hold ``left_value``, the ``right`` frames after it zeros.
Padding = tuple[int, int, float]


def pad_constant(x: mx.array, left: int, right: int, value: float = 0.0) -> mx.array:
    """``x`` with ``left`` frames of ``value`` before it and ``right`` zero frames after it
    (the time axis is 1)."""
    if left == 0 and right == 0:
        return x
    if value == 0.0 or left == 0:
        return mx.pad(x, [(0, 0), (left, right), (0, 0)])
    y = mx.concatenate([mx.full((x.shape[0], left, x.shape[2]), value, x.dtype), x], axis=1)
    return mx.pad(y, [(0, 0), (0, right), (0, 0)]) if right else y


def _on_cpu() -> bool:
    return mx.default_device().type == mx.DeviceType.cpu


def _result_dtype(arrays: list[mx.array]) -> mx.Dtype:
    """MLX's promotion among float32/float16/bfloat16: one shared type, else float32."""
    dtypes = {a.dtype for a in arrays}
    return dtypes.pop() if len(dtypes) == 1 else mx.float32


def _depthwise(x: mx.array, weight: mx.array, dilation: int) -> mx.array:
    """``groups == channels``, one filter per channel: ``K`` multiply-adds, no GEMM."""
    t_out = x.shape[1] - dilation * (weight.shape[1] - 1)
    y = x[:, :t_out] * weight[:, 0, 0]
    for j in range(1, weight.shape[1]):
        y = y + x[:, j * dilation : j * dilation + t_out] * weight[:, j, 0]
    return y


def _phase_conv(x: mx.array, weight: mx.array, dilation: int, groups: int) -> mx.array:
    """Dilated grouped conv as a dilation-1 ``mx.conv1d`` on the ``dilation`` phases.

    Output ``t = q d + p`` reads ``x[(q + j) d + p]``: phase ``p`` of the input, convolved
    without dilation. MLX's CPU conv is a naive loop for ``dilation > 1`` but not for 1.
    """
    batch, length, c_in = x.shape
    c_out, k, _ = weight.shape
    t_out = length - dilation * (k - 1)
    n = -(-length // dilation)
    if n * dilation != length:
        x = mx.pad(x, [(0, 0), (0, n * dilation - length), (0, 0)])
    phases = x.reshape(batch, n, dilation, c_in).swapaxes(1, 2).reshape(-1, n, c_in)
    y = mx.conv1d(phases, weight, groups=groups)
    y = y.reshape(batch, dilation, n - k + 1, c_out).swapaxes(1, 2)
    return y.reshape(batch, -1, c_out)[:, :t_out]


def _taps(weight: mx.array) -> list[mx.array]:
    """``(out, k, in)`` weight as ``k`` matrices ``(in, out)``, one per tap.

    Three MLX operations whatever ``k`` (a reshape, a transpose and one ``split``), where
    indexing each tap took three per tap: at batch 1 a small model's forward costs per
    operation (docs/performance_models.md, "Fewer operations, flat GEMMs and hashed dropout
    masks").
    """
    c_out, k, c_in = weight.shape
    matrix = weight.reshape(c_out, k * c_in).T  # row j * in + i: tap j, input channel i
    return [matrix] if k == 1 else mx.split(matrix, k, axis=0)


def _use_batched(batch: int, padded: int, span: int, channels: int) -> bool:
    """Per-sequence GEMMs instead of flat ones when the flat waste is large.

    The flat GEMMs also compute the ``span`` rows at the end of each sequence that mix
    two sequences and are thrown away; batched GEMMs (one per sequence, on strided 3-D
    views) skip them but cost more on their own. Measured on 2 x86 cores (single-thread
    CPU time, B=16, T=1024, C=128, K=3 and B=64, T=784, C=25, K=7), the flat form wins
    while the waste ``span / padded`` stays under about 1/16. From 64 channels (``channels``:
    the smaller of in and out) the flat form wins up to a waste of about 1/5: forward and
    backward of one 64- or 128-channel convolution (k=3-8, T=256-1024, one thread, Zen 4)
    took 0.85-1.01 of the batched time at wastes up to 0.2, 1.02-1.21 from about 0.3, with
    OpenBLAS's ``SkylakeX`` and ``Haswell`` kernels alike. At 25-32 channels the better form
    depends on the kernels, so the limit stays 1/16 there.
    """
    limit = 5 if channels >= 64 else 16
    return batch > 1 and span * limit > padded


def _forward(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None,
    dilation: int,
    home: mx.Stream | None = None,
) -> mx.array:
    """The GEMM convolution; ``home``: the stream that slices the weight into its taps.

    A part on a CPU lane (:func:`_gemm_on_lanes`) gets its caller's stream as ``home``:
    sliced on the lanes, a weight computed in the same graph (weight norm) made the lanes
    take turns instead of running at once (measured: no gain at all at 128 channels).
    """
    batch, padded, c_in = x.shape
    c_out, k, _ = weight.shape
    span = dilation * (k - 1)
    t_out = padded - span
    with mx.stream(home or mx.default_stream(mx.default_device())):
        taps = _taps(weight)
    if _use_batched(batch, padded, span, min(c_in, c_out)):
        # views x[:, j d : j d + t_out] of shape (batch, t_out, c_in)
        out_shape = None
        views = [x[:, j * dilation : j * dilation + t_out] for j in range(k)]
    else:
        rows = batch * padded - span
        xf = x.reshape(batch * padded, c_in)
        views = [xf[j * dilation : j * dilation + rows] for j in range(k)]
        out_shape = (batch, t_out, c_out)
    y = views[0] @ taps[0]
    for j in range(1, k):
        y = mx.addmm(y, views[j], taps[j])
    if bias is not None:
        # a separate add: addmm would first copy the bias broadcast to every row with
        # MLX's general (strided) copy, which costs about twice this pass
        y = y + bias
    if out_shape is None:
        return y
    if batch == 1:
        return y[None]
    # flat row b * padded + t holds (b, t); skip the rows t >= t_out without a copy
    return mx.as_strided(y, out_shape, (padded * c_out, c_out, 1))


def _backward(
    x: mx.array, weight: mx.array, g: mx.array, dilation: int
) -> tuple[mx.array, mx.array]:
    """Gradients ``(dx, dweight)`` of :func:`_forward` for the cotangent ``g``.

    ``dx[s] = sum_j g[s - j d] @ W_j`` is a convolution of the zero-padded cotangent with
    the taps reversed, computed like the forward; ``dW_j = sum_t g[t]^T x[t + j d]``.
    """
    batch, padded, c_in = x.shape
    c_out, k, _ = weight.shape
    span = dilation * (k - 1)
    t_out = padded - span
    if _use_batched(batch, padded, span, min(c_in, c_out)):
        gz = mx.pad(g, [(0, 0), (span, span), (0, 0)])  # (batch, padded + span, c_out)
        offsets = [(k - 1 - j) * dilation for j in range(k)]
        g_views = [gz[:, o : o + padded] for o in offsets]
        gt = g.transpose(0, 2, 1)
        dw = [(gt @ x[:, j * dilation : j * dilation + t_out]).sum(axis=0) for j in range(k)]
    else:
        rows = batch * padded - span
        # gz[span + b * padded + t] = g[b, t]; zeros in sequence tails and in one extra
        # zero sequence, so every tap's view below stays in bounds.
        gz = mx.pad(g, [(0, 1), (span, 0), (0, 0)]).reshape(-1, c_out)
        offsets = [(k - 1 - j) * dilation for j in range(k)]
        g_views = [gz[o : o + batch * padded] for o in offsets]
        gt = gz[span : span + rows].T
        xf = x.reshape(batch * padded, c_in)
        dw = [gt @ xf[j * dilation : j * dilation + rows] for j in range(k)]
    rows_of = weight.reshape(c_out, k * c_in)
    w = [rows_of] if k == 1 else mx.split(rows_of, k, axis=1)  # tap j: (out, in)
    dx = g_views[0] @ w[0]
    for j in range(1, k):
        dx = mx.addmm(dx, g_views[j], w[j])
    return dx.reshape(batch, padded, c_in), mx.stack(dw, axis=1)


# Outputs of at most this many steps take _gathered() when custom_vjp=False: the gathered
# taps are k times the chunk, and a stream step of a few frames costs per operation.
_GATHER_MAX_STEPS = 64


def gemm_matrix(weight: mx.array) -> mx.array:
    """The float32 matrix of the gathered GEMM for a ``(out, k, in)`` weight, as a batch of
    one: ``(1, k * in, out)``.

    Row ``j * in + i`` is tap ``j``, input channel ``i``: the order of the window columns
    :func:`_window` gathers. A batch-1 window multiplies it as it is (one MLX operation);
    larger batches view it as ``(k * in, out)``. A deployed stream step computes it once
    (see ``TemporalConv1d._freeze_matrix``) instead of reshaping, transposing and casting the
    weight in every step.
    """
    c_out, k, c_in = weight.shape
    return mx.contiguous(weight.astype(mx.float32).reshape(c_out, k * c_in).T[None])


def _window(x: mx.array, k: int, dilation: int) -> mx.array:
    """A strided view of ``x`` holding, for output ``t``, the ``k`` input frames it reads,
    ``x[b, t + j * dilation]`` for ``j < k``: ``(batch, t_out, k, in)``, or ``(batch, k,
    in)`` for a one-step output (a stream step: the strided slice ``x[:, ::dilation]``).

    One operation whatever ``k`` (two for a longer output: ``mx.as_strided`` makes its input
    contiguous first); the caller's reshape into a matrix makes the one copy.
    """
    batch, length, c_in = x.shape
    t_out = length - dilation * (k - 1)
    if k == 1 or (t_out == 1 and dilation == 1):
        return x
    if t_out == 1:
        return x[:, ::dilation]
    shape = (batch, t_out, k, c_in)
    return mx.as_strided(x, shape, (length * c_in, c_in, dilation * c_in, 1))


def _gathered(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None,
    dilation: int,
    matrix: mx.array | None = None,
) -> mx.array:
    """One GEMM over the gathered taps: ``(batch * t_out, k * in) @ (k * in, out)``.

    For short outputs (a stream chunk) this beats one GEMM per tap: at batch 1 the cost is
    the number of operations, and there is no flat-row waste to skip; so the GEMM takes the
    form with the fewest of them (:func:`matmul_rows`). The bias is a separate add, which ``mx.compile`` fuses into the activation after it (``mx.addmm``
    would first copy the bias into the output). ``matrix`` is :func:`gemm_matrix` of
    ``weight`` (or the same as ``(k * in, out)``), when the caller has it already.
    """
    c_out, k, c_in = weight.shape
    batch = x.shape[0]
    t_out = x.shape[1] - dilation * (k - 1)
    if matrix is None:
        matrix = weight.reshape(c_out, k * c_in).T
    y = matmul_rows(_window(x, k, dilation), batch, t_out, matrix)
    return y if bias is None else y + bias


def matmul_rows(x: mx.array, batch: int, steps: int, matrix: mx.array) -> mx.array:
    """``x`` read as ``(batch, steps, n)`` times the ``(n, out)`` matrix (or the same as
    ``(1, n, out)``), in the fewest MLX operations: at batch 1 a batched GEMM of one, which
    needs no reshape of its output (one operation, plus the copy if ``x`` is a strided
    view); else one 2-D GEMM between two reshapes (a 3-D input times a 2-D matrix would
    add the same two inside MLX)."""
    n, c_out = matrix.shape[-2:]
    if batch == 1:
        return x.reshape(1, steps, n) @ matrix.reshape(1, n, c_out)
    y = x.reshape(batch * steps, n) @ matrix.reshape(n, c_out)
    return y.reshape(batch, steps, c_out)


# The custom functions of _gemm_conv, one per (dilation, bias, lane, home stream). Keyed by
# the streams' names: an mx.Stream compares equal to another handle of the same stream but
# hashes by identity, so a functools.cache keyed by it never hit and grew by one entry per
# call.
_GEMM_CONVS: dict[tuple[int, bool, str, str], Callable[..., mx.array]] = {}


def _gemm_conv(
    dilation: int, with_bias: bool, stream: mx.Stream, home: mx.Stream
) -> Callable[..., mx.array]:
    """The GEMM convolution's custom function for these arguments, made once."""
    key = (dilation, with_bias, str(stream), str(home))
    if key not in _GEMM_CONVS:
        _GEMM_CONVS[key] = _make_gemm_conv(dilation, with_bias, stream, home)
    return _GEMM_CONVS[key]


def _make_gemm_conv(
    dilation: int, with_bias: bool, stream: mx.Stream, home: mx.Stream
) -> Callable[..., mx.array]:
    """A ``custom_function`` computing the GEMM convolution with its hand-written VJP.

    The backward runs on ``stream``, the forward's: MLX traces a custom VJP under whatever
    stream is the default when the gradient is taken, which would put every part of a batch
    split over parallel lanes (see :mod:`mlx_tcn.parallel`) back on one. ``home`` slices
    the weight into taps (see :func:`_forward`).
    """
    if with_bias:

        @mx.custom_function
        def conv(x: mx.array, weight: mx.array, bias: mx.array) -> mx.array:
            return _forward(x, weight, bias, dilation, home)

        @conv.vjp
        def conv_vjp(primals, cotangent, output):
            x, weight, bias = primals
            with mx.stream(stream):
                dx, dw = _backward(x, weight, cotangent, dilation)
                return dx, dw, cotangent.sum(axis=(0, 1)).astype(bias.dtype)

    else:

        @mx.custom_function
        def conv(x: mx.array, weight: mx.array) -> mx.array:
            return _forward(x, weight, None, dilation, home)

        @conv.vjp
        def conv_vjp(primals, cotangent, output):
            x, weight = primals
            with mx.stream(stream):
                return _backward(x, weight, cotangent, dilation)

    return conv


# A convolution split by time over the CPU lanes gives each part at least this many
# multiply-adds (output rows x out channels x k x in channels) of forward work, twice as
# many with the hand-written backward: below that the hand-offs between the lanes cost
# more than the parallel GEMMs save. Measured in whole batch-1 models on 2 cores, forward:
# 6M per part 1.28x the unsplit time, 12.6M 0.98x, 14M 0.93x, 25M 0.80x; training step:
# 14M 1.04x, 25M 0.99x, 50M 0.86-0.94x (docs/performance_models.md#what-was-tried).
_MIN_PART_MACS = 1 << 24


def _lane_parts(
    rows: int, t_out: int, macs_per_row: int, custom_vjp: bool
) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` output steps per CPU lane for a convolution's GEMMs.

    One part (no split) with a single lane, inside a part of a forward that
    :mod:`mlx_tcn.parallel` already put on a lane (a split inside a split would only add
    hand-offs), or when a part would get less work than ``_MIN_PART_MACS`` (doubled for a
    part that also runs its backward).
    """
    lanes = _backend.parallel_lanes()
    if lanes < 2 or _backend.on_lane():
        return [(0, t_out)]
    minimum = _MIN_PART_MACS * (2 if custom_vjp else 1)
    n = min(lanes, t_out, rows * t_out * macs_per_row // minimum)
    if n < 2:
        return [(0, t_out)]
    edges = [t_out * i // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _gemm_on_lanes(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None,
    dilation: int,
    custom_vjp: bool,
    dtype: mx.Dtype,
    epilogue: Epilogue | None,
    padding: Padding | None = None,
) -> mx.array:
    """The GEMM convolution, split by output steps over the CPU lanes when that pays.

    A batch too small to split by rows (one sequence, say) would otherwise run every GEMM
    on one core with a single-threaded BLAS. Part ``[a, b)`` reads the input steps
    ``[a, b + span)``: only the kernel's span overlaps, nothing is computed twice. With
    ``custom_vjp`` each part is its own custom function whose backward runs on its lane;
    the input gradients of the overlapping slices are added by autodiff, the weight and
    bias gradients summed over the parts. Each part is cast to ``dtype`` and goes through
    ``epilogue`` on its own lane, so that the passes after the GEMMs run in parallel too.
    With ``padding`` (``x`` unpadded), each part pads only its own slice, on its lane: the
    whole padded copy, made on one core before the parts could start, is not needed. ``x``
    comes in its own dtype; each part is cast to float32 on its lane.
    """
    left, right, value = padding or (0, 0, 0.0)
    batch, length, c_in = x.shape
    padded = length + left + right
    c_out, k, _ = weight.shape
    span = dilation * (k - 1)
    extra = [] if bias is None else [bias]

    home = mx.default_stream(mx.default_device())

    def conv(x: mx.array, stream: mx.Stream) -> mx.array:
        if custom_vjp:
            y = _gemm_conv(dilation, bias is not None, stream, home)(x, weight, *extra)
        else:
            y = _forward(x, weight, bias, dilation, home)
        y = y.astype(dtype)
        return y if epilogue is None else epilogue(y)

    parts = _lane_parts(batch, padded - span, c_out * k * c_in, custom_vjp)
    if len(parts) == 1:
        return conv(pad_constant(x, left, right, value).astype(mx.float32), home)
    outs = []
    for (a, b), lane in zip(parts, _backend.cpu_lanes(), strict=False):
        with mx.stream(lane):
            # padded steps [a, b + span) are x's steps [lo, hi), beyond its ends padding
            lo, hi = a - left, b + span - left
            piece = x[:, max(lo, 0) : min(hi, length)]
            piece = pad_constant(piece, max(-lo, 0), max(hi - length, 0), value)
            outs.append(conv(piece.astype(mx.float32), lane))
    return mx.concatenate(outs, axis=1)


def _resolve_custom_vjp(custom_vjp: bool, inference: bool | None) -> bool:
    """``custom_vjp``, or the old ``inference=`` spelling of its opposite (with a warning)."""
    if inference is None:
        return custom_vjp
    warnings.warn(
        "ops.conv1d(inference=...) chooses a formulation, not inference semantics; "
        "use custom_vjp=not inference",
        DeprecationWarning,
        stacklevel=3,
    )
    if not custom_vjp and not inference:
        raise ValueError("custom_vjp=False and inference=False disagree; pass only custom_vjp")
    return not inference


def conv1d(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None = None,
    *,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    custom_vjp: bool = True,
    inference: bool | None = None,
    matrix: mx.array | None = None,
    epilogue: Epilogue | None = None,
    padding: Padding | None = None,
) -> mx.array:
    """Valid (unpadded) 1-D convolution of an ``NLC`` input, or of ``x`` padded as
    ``padding`` says.

    ``y[b, t, o] = bias[o] + sum_{k, i} weight[o, k, i] * x[b, t * stride + k * dilation, i]``
    (per group). Same result as ``mx.conv1d`` followed by ``+ bias``; on the CPU it runs
    as GEMMs on row-offset views (see the module docstring).

    Args:
        x: input of shape ``(batch, length, in_channels)``, already padded.
        weight: ``(out_channels, kernel_size, in_channels // groups)``.
        bias: optional ``(out_channels,)``.
        stride: step between output positions.
        dilation: spacing between kernel taps.
        groups: number of channel groups.
        custom_vjp: which formulation computes it (same values). ``True``: the GEMMs with
            the hand-written backward, the fast one to train. ``False``: plain MLX
            operations, which ``mx.export_function`` can serialise (gradients still flow,
            through MLX's autodiff), and for outputs of at most ``_GATHER_MAX_STEPS`` steps
            a single GEMM over the gathered taps, since a short stream chunk is bound by the
            number of operations, not by arithmetic: the one for inference and streaming.
        inference: deprecated; ``inference=True`` is ``custom_vjp=False``.
        matrix: optional :func:`gemm_matrix` of ``weight`` (``(1, k * in, out)``, or the
            same as ``(k * in, out)``), computed once by the caller;
            used where the single gathered GEMM runs (``custom_vjp=False``, a short output,
            ``groups == 1``, on the CPU) and ignored elsewhere. It must be that of
            ``weight``: it is not checked against it.
        epilogue: optional function applied to the result (``epilogue(y)`` is returned).
            It must treat each output step on its own (an activation, dropout, a per-step
            norm): where the GEMMs are split by time over the CPU lanes, it runs on each
            part, on that part's lane, so those passes run in parallel too. Random draws
            inside it (dropout) are then made per part.
        padding: optional ``(left, right, left_value)``: convolve ``x`` as if it had
            ``left`` frames of ``left_value`` before it and ``right`` zero frames after it
            (:func:`pad_constant`). Where the GEMMs split over the CPU lanes each part pads
            only its own slice, on its lane, instead of one padded copy of the whole input.

    Returns:
        ``(batch, (length - dilation * (kernel_size - 1) - 1) // stride + 1, out_channels)``,
        ``length`` counting the padding.

    Raises:
        ValueError: if shapes, ``stride``, ``dilation`` or ``groups`` are inconsistent.
    """
    custom_vjp = _resolve_custom_vjp(custom_vjp, inference)
    if x.ndim != 3:
        raise ValueError(f"x must be (batch, length, channels), got shape {tuple(x.shape)}")
    if weight.ndim != 3:
        raise ValueError(
            f"weight must be (out, kernel_size, in // groups), got shape {tuple(weight.shape)}"
        )
    for name, value in (("stride", stride), ("dilation", dilation), ("groups", groups)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    c_out, k, c_in_group = weight.shape
    if x.shape[2] != c_in_group * groups or c_out % groups:
        raise ValueError(
            f"weight shape {tuple(weight.shape)} does not fit x with {x.shape[2]} channels "
            f"and groups={groups}"
        )
    if padding is not None:
        left, right, value = padding
        for name, n in (("padding left", left), ("padding right", right)):
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"{name} must be a non-negative int, got {n!r}")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"padding value must be a float, got {value!r}")
    length = x.shape[1] + (0 if padding is None else padding[0] + padding[1])
    if length < dilation * (k - 1) + 1:
        padded = "" if padding is None else " (padded)"
        raise ValueError(
            f"x length {length}{padded} is shorter than the kernel span {dilation * (k - 1) + 1}"
        )
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")

    if epilogue is not None and not callable(epilogue):
        raise TypeError(f"epilogue must be callable or None, got {type(epilogue).__name__}")

    arrays = [x, weight] if bias is None else [x, weight, bias]
    lanes = (
        stride == 1
        and groups == 1
        and _on_cpu()
        and all(a.dtype in _FLOATS for a in arrays)
        and (custom_vjp or length - dilation * (k - 1) > _GATHER_MAX_STEPS)
    )
    if padding is not None and not lanes:  # only the lanes' GEMMs pad by parts
        x = pad_constant(x, *padding)
        arrays[0] = x
        padding = None
    if stride != 1 or not _on_cpu() or any(a.dtype not in _FLOATS for a in arrays):
        y = mx.conv1d(x, weight, stride=stride, dilation=dilation, groups=groups)
        y = y if bias is None else y + bias
        return y if epilogue is None else epilogue(y)
    # CPU: compute in float32 (MLX's CPU GEMMs for half types are slower, not more exact)
    dtype = _result_dtype(arrays)
    weight, *rest = (a.astype(mx.float32) for a in arrays[1:])
    bias = rest[0] if rest else None
    if lanes:
        # x in its own dtype: each part is padded in it (a half-precision stream keeps its
        # buffer value in that dtype too) and cast to float32 on its lane
        return _gemm_on_lanes(x, weight, bias, dilation, custom_vjp, dtype, epilogue, padding)
    x = x.astype(mx.float32)
    if groups == 1:
        y = _gathered(x, weight, bias, dilation, matrix)
    else:
        if weight.shape[0] == groups and weight.shape[2] == 1:
            y = _depthwise(x, weight, dilation)
        elif dilation > 1:
            y = _phase_conv(x, weight, dilation, groups)
        else:
            y = mx.conv1d(x, weight, groups=groups)
        y = y if bias is None else y + bias
    y = y.astype(dtype)
    return y if epilogue is None else epilogue(y)
