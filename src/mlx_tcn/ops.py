"""The convolution primitive: every temporal convolution in mlx-tcn goes through here.

All arrays are channels-last (``NLC``): ``x`` is ``(batch, length, in_channels)`` and
weights are ``(out_channels, kernel_size, in_channels // groups)``, MLX's own layout.
The input is already padded: padding (and streaming state) is the caller's job.
"""

from __future__ import annotations

import mlx.core as mx

__all__ = ["conv1d"]


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

    Args:
        x: input of shape ``(batch, length, in_channels)``, already padded.
        weight: ``(out_channels, kernel_size, in_channels // groups)``.
        bias: optional ``(out_channels,)``.
        stride: step between output positions.
        dilation: spacing between kernel taps.
        groups: number of channel groups.

    Returns:
        ``(batch, (length - dilation * (kernel_size - 1) - 1) // stride + 1, out_channels)``.
    """
    y = mx.conv1d(x, weight, stride=stride, dilation=dilation, groups=groups)
    if bias is not None:
        y = y + bias
    return y
