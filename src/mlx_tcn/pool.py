"""Adaptive 1-D pooling over the time axis of channels-last (``NLC``) sequences.

Output bin ``i`` of ``output_size`` covers input steps ``[start_i, end_i)`` with
``start_i = floor(i * L / output_size)`` and ``end_i = ceil((i + 1) * L / output_size)``, the
bins PyTorch's ``adaptive_avg_pool1d`` / ``adaptive_max_pool1d`` use. Bins may overlap by one
step when ``L`` is not a multiple of ``output_size``, and steps repeat when
``output_size > L``.

Both layers gather every bin into a padded ``(batch, output_size, max_bin, channels)`` array in
one indexing operation (no Python loop over the batch or the bins): short bins are padded with
a repeat of their own last step, which leaves the maximum unchanged and is masked out of the
mean.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

__all__ = ["AdaptiveAvgPool1d", "AdaptiveMaxPool1d"]


def _check_output_size(output_size: int) -> int:
    if isinstance(output_size, bool) or not isinstance(output_size, int):
        raise TypeError(f"output_size must be a positive int, got {output_size!r}")
    if output_size < 1:
        raise ValueError(f"output_size must be a positive int, got {output_size!r}")
    return output_size


def _bins(length: int, output_size: int) -> tuple[mx.array, mx.array]:
    """Padded gather indices ``(output_size, max_bin)`` and bin sizes ``(output_size,)``."""
    starts = [(i * length) // output_size for i in range(output_size)]
    ends = [-((-(i + 1) * length) // output_size) for i in range(output_size)]
    sizes = [e - s for s, e in zip(starts, ends, strict=True)]
    width = max(sizes)
    index = [[s + min(j, n - 1) for j in range(width)] for s, n in zip(starts, sizes, strict=True)]
    return mx.array(index, dtype=mx.int32), mx.array(sizes, dtype=mx.int32)


class _AdaptivePool1d(nn.Module):
    """Shared validation and bin gathering for the adaptive pools."""

    def __init__(self, output_size: int):
        super().__init__()
        self.output_size = _check_output_size(output_size)

    def _extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def _gather(self, x: mx.array) -> tuple[mx.array, mx.array, bool]:
        """Return ``(windows, sizes, unbatched)``; windows is ``(B, out, max_bin, C)``."""
        if not isinstance(x, mx.array):
            raise TypeError(f"x must be an mx.array, got {type(x).__name__}")
        if x.ndim not in (2, 3):
            raise ValueError(
                f"x must be (batch, length, channels) or (length, channels), got shape {x.shape}"
            )
        unbatched = x.ndim == 2
        if unbatched:
            x = x[None]
        if x.shape[1] < 1:
            raise ValueError(f"x must have at least one time step, got shape {x.shape}")
        index, sizes = _bins(x.shape[1], self.output_size)
        return x[:, index, :], sizes, unbatched


class AdaptiveAvgPool1d(_AdaptivePool1d):
    """Adaptive average pooling over time, ``NLC`` layout.

    Averages each of ``output_size`` bins of the time axis (PyTorch's bin boundaries, see the
    module docstring), so any input length maps to a fixed output length.

    Args:
        output_size: number of output time steps (a positive int).

    Shape:
        ``(batch, length, channels) -> (batch, output_size, channels)``; an unbatched
        ``(length, channels)`` input gives ``(output_size, channels)``.
    """

    def __call__(self, x: mx.array) -> mx.array:
        windows, sizes, unbatched = self._gather(x)
        valid = mx.arange(windows.shape[2])[None, :] < sizes[:, None]
        total = mx.where(valid[None, :, :, None], windows, mx.zeros((), windows.dtype))
        y = total.sum(axis=2) / sizes[None, :, None].astype(total.dtype)
        return y[0] if unbatched else y


class AdaptiveMaxPool1d(_AdaptivePool1d):
    """Adaptive max pooling over time, ``NLC`` layout.

    Takes the maximum of each of ``output_size`` bins of the time axis (PyTorch's bin
    boundaries, see the module docstring); ``output_size`` and the shapes as for
    :class:`AdaptiveAvgPool1d`.
    """

    def __call__(self, x: mx.array) -> mx.array:
        windows, _, unbatched = self._gather(x)
        # The bin's first maximum, taken by index: its gradient goes to that one step, as
        # PyTorch's (a max splits it over ties, and a short bin's padding repeats a step).
        first = mx.stop_gradient(mx.argmax(windows, axis=2, keepdims=True))
        y = mx.take_along_axis(windows, first, axis=2).squeeze(2)
        top = mx.stop_gradient(windows.max(axis=2))
        y = mx.where(mx.isnan(top), top, y)  # a NaN in the bin is the bin's maximum
        return y[0] if unbatched else y
