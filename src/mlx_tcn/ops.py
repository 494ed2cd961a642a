"""The convolution primitive: every temporal convolution in mlx-tcn goes through here.

All arrays are channels-last (``NLC``): ``x`` is ``(batch, length, in_channels)`` and
weights are ``(out_channels, kernel_size, in_channels // groups)``, MLX's own layout.
The input is already padded: padding (and streaming state) is the caller's job.

On the CPU, :func:`conv1d` does not call ``mx.conv1d`` for ``stride == 1, groups == 1``:
MLX's CPU convolution falls back to a naive loop for ``dilation > 1`` (about 1 GFLOP/s)
and reaches well under the GEMM rate even for ``dilation == 1``. Instead it uses the
*flat* formulation:

1. view the padded input ``(B, Tp, C)`` as one matrix of ``B * Tp`` rows;
2. tap ``k`` of the kernel reads rows shifted by ``k * dilation``, so the output is the
   sum of ``K`` GEMMs on row-offset views of that matrix, accumulated in place with
   ``mx.addmm`` (the bias rides on the first one);
3. output row ``b * Tp + t`` is the result for ``(b, t)``; the rows with ``t >= T_out``
   mix neighbouring sequences and are skipped by a strided view, never copied.

The backward pass is written by hand (``mx.custom_function``): autodiff through the
shifted views would scatter ``K`` full-size zero-padded gradients. The cotangent is
written once into a zero-padded flat buffer; the input gradient is then ``K`` GEMMs
on row-offset views of it (a transposed convolution done the same way) and the weight
gradient is ``K`` GEMMs ``g^T x_k``. Everything is an ordinary MLX op, so ``mx.grad``,
``mx.vjp`` and ``mx.compile`` work through it.

Other devices (Metal, CUDA), ``stride > 1`` and ``groups > 1`` go to ``mx.conv1d``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import mlx.core as mx

__all__ = ["conv1d"]

_FLOATS = (mx.float32, mx.float16, mx.bfloat16)


def _use_flat(x: mx.array, weight: mx.array, stride: int, groups: int) -> bool:
    """Whether the flat GEMM formulation serves this call (see the module docstring)."""
    return (
        stride == 1
        and groups == 1
        and x.dtype == mx.float32
        and weight.dtype == mx.float32
        and mx.default_device().type == mx.DeviceType.cpu
    )


def _taps(weight: mx.array) -> list[mx.array]:
    """``(out, k, in)`` weight as ``k`` matrices ``(in, out)``, one per tap."""
    return [weight[:, k, :].T for k in range(weight.shape[1])]


def _flat_forward(x: mx.array, weight: mx.array, bias: mx.array | None, dilation: int) -> mx.array:
    batch, padded, c_in = x.shape
    c_out, k, _ = weight.shape
    span = dilation * (k - 1)
    rows = batch * padded - span
    xf = x.reshape(batch * padded, c_in)
    taps = _taps(weight)
    if bias is None:
        y = xf[:rows] @ taps[0]
    else:
        y = mx.addmm(bias, xf[:rows], taps[0])
    for j in range(1, k):
        off = j * dilation
        y = mx.addmm(y, xf[off : off + rows], taps[j])
    if batch == 1:
        return y[None, : padded - span]
    return mx.as_strided(y, (batch, padded - span, c_out), (padded * c_out, c_out, 1))


def _flat_backward(
    x: mx.array, weight: mx.array, g: mx.array, dilation: int
) -> tuple[mx.array, mx.array]:
    """Gradients ``(dx, dweight)`` of the flat forward for the cotangent ``g``."""
    batch, padded, c_in = x.shape
    c_out, k, _ = weight.shape
    span = dilation * (k - 1)
    rows = batch * padded - span
    # gz[j + span] = g at flat output row j; zeros elsewhere (sequence tails, and one
    # extra zero sequence so every tap's view below stays in bounds).
    gz = mx.pad(g, [(0, 1), (span, 0), (0, 0)]).reshape(-1, c_out)
    # dx[s] = sum_k g[s - k d] @ W_k = sum_k gz[s + (K - 1 - k) d] @ W_k
    dx = None
    for j in range(k):
        off = (k - 1 - j) * dilation
        term_in = gz[off : off + batch * padded]
        w_j = weight[:, j, :]
        dx = term_in @ w_j if dx is None else mx.addmm(dx, term_in, w_j)
    gt = gz[span : span + rows].T
    xf = x.reshape(batch * padded, c_in)
    dw = mx.stack([gt @ xf[j * dilation : j * dilation + rows] for j in range(k)], axis=1)
    return dx.reshape(batch, padded, c_in), dw


@cache
def _flat_conv(dilation: int, with_bias: bool) -> Callable[..., mx.array]:
    """A ``custom_function`` computing the flat convolution with its hand-written VJP."""
    if with_bias:

        @mx.custom_function
        def conv(x: mx.array, weight: mx.array, bias: mx.array) -> mx.array:
            return _flat_forward(x, weight, bias, dilation)

        @conv.vjp
        def conv_vjp(primals, cotangent, output):
            x, weight, bias = primals
            dx, dw = _flat_backward(x, weight, cotangent, dilation)
            return dx, dw, cotangent.sum(axis=(0, 1)).astype(bias.dtype)

    else:

        @mx.custom_function
        def conv(x: mx.array, weight: mx.array) -> mx.array:
            return _flat_forward(x, weight, None, dilation)

        @conv.vjp
        def conv_vjp(primals, cotangent, output):
            x, weight = primals
            return _flat_backward(x, weight, cotangent, dilation)

    return conv


def conv1d(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None = None,
    *,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
) -> mx.array:
    """Valid (unpadded) 1-D convolution of an ``NLC`` input.

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

    Returns:
        ``(batch, (length - dilation * (kernel_size - 1) - 1) // stride + 1, out_channels)``.

    Raises:
        ValueError: if shapes, ``stride``, ``dilation`` or ``groups`` are inconsistent.
    """
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
    if x.shape[1] < dilation * (k - 1) + 1:
        raise ValueError(
            f"x length {x.shape[1]} is shorter than the kernel span {dilation * (k - 1) + 1}"
        )
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")

    if _use_flat(x, weight, stride, groups):
        if bias is None:
            return _flat_conv(dilation, False)(x, weight)
        return _flat_conv(dilation, True)(x, weight, bias)
    y = mx.conv1d(x, weight, stride=stride, dilation=dilation, groups=groups)
    if bias is not None:
        y = y + bias
    return y
