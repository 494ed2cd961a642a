"""Squeeze-and-excitation over channels (Hu, Shen & Sun, 2018), causal when it must be."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ._frozen import linear
from ._stream import check_bool, check_input, check_int

__all__ = ["SqueezeExcitation"]


class SqueezeExcitation(nn.Module):
    """Channel attention on ``(batch, length, channels)``: squeeze, excite, rescale.

    ``s = squeeze(x)``, ``w = sigmoid(fc2(relu(fc1(s))))``, ``y = x * w`` (``y = x + x * w``
    with ``residual=True``). The bottleneck has ``max(1, channels // reduction)`` units, so
    the block adds about ``2 * channels * channels / reduction`` parameters.

    The squeeze decides causality. Non-causal: the mean over the whole sequence. Causal: the
    running mean over the steps so far, ``s_t = mean(x_0..x_t)``, so step ``t`` never sees the
    future and a stream reproduces the offline output exactly; its state is the running sum
    and the number of steps seen.

    Args:
        channels: channels of the input.
        reduction: bottleneck reduction ratio (>= 1).
        residual: add the input back after rescaling.
        causal: running-mean squeeze instead of the global mean.
    """

    def __init__(
        self, channels: int, reduction: int = 8, residual: bool = False, causal: bool = False
    ) -> None:
        super().__init__()
        check_int(channels, "channels", 1)
        check_int(reduction, "reduction", 1)
        check_bool(residual, "residual")
        check_bool(causal, "causal")
        self.channels = channels
        self.reduction = reduction
        self.residual = residual
        self.causal = causal
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def _extra_repr(self) -> str:
        return (
            f"channels={self.channels}, hidden={self.fc1.weight.shape[0]}, "
            f"residual={self.residual}, causal={self.causal}"
        )

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> dict:
        """A fresh stream: running sum ``(batch, channels)`` and steps seen ``(batch, 1)``."""
        return {
            "sum": mx.zeros((batch_size, self.channels), mx.float32),
            "count": mx.zeros((batch_size, 1), mx.float32),
        }

    def _forward(self, x: mx.array, state: dict | None) -> tuple[mx.array, dict | None]:
        if not self.causal:
            s = mx.mean(x, axis=1, keepdims=True)
            new_state = None
        else:
            length = x.shape[1]
            sums = mx.cumsum(x.astype(mx.float32), axis=1)
            steps = mx.arange(1, length + 1, dtype=mx.float32)[None, :, None]
            if state is not None:
                sums = sums + state["sum"][:, None]
                steps = steps + state["count"][:, None]
                new_state = {"sum": sums[:, -1], "count": steps[:, -1]}
            else:
                new_state = None
            s = (sums / steps).astype(x.dtype)
        w = mx.sigmoid(linear(self.fc2, nn.relu(linear(self.fc1, s))))
        y = x * w
        if self.residual:
            y = y + x
        return y, new_state

    def __call__(self, x: mx.array) -> mx.array:
        """Offline pass over a whole sequence ``(batch, length, channels)``."""
        check_input(x, self.channels)
        return self._forward(x, None)[0]
