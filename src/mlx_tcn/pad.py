"""TemporalPad1d: the padding in front of every temporal convolution, offline and streaming."""

from __future__ import annotations

import mlx.core as mx

from ._stateful import StreamingModule
from ._stream import check_int

__all__ = ["PADDING_MODES", "TemporalPad1d"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# Causal padding may only use what is already known at the first step: the frames before
# the sequence are zeros, or copies of the first frame. reflect and circular would copy
# frames from the future into the past.
CAUSAL_PADDING_MODES = ("zeros", "replicate")

State = dict[str, mx.array]


class TemporalPad1d(StreamingModule):
    """Pads ``(batch, length, channels)`` inputs along time for a convolution.

    Causal padding puts all ``padding`` frames on the left; non-causal padding splits them,
    ``padding // 2`` left and the rest right (PyTorch's ``'same'`` rule, also for even
    kernels). In a stream, the frames on the left are the last ``padding`` frames of the
    previous chunk, kept in an explicit state.

    Padding modes: ``zeros``, ``reflect``, ``replicate`` and ``circular`` as in PyTorch for
    non-causal padding. Causal padding supports ``zeros`` and ``replicate`` (the first frame
    repeated); ``reflect`` and ``circular`` would copy future frames into the past and are
    rejected.

    Args:
        padding: total number of frames to add (``(kernel_size - 1) * dilation``).
        in_channels: number of channels of the input.
        buffer: initial value of the streaming buffer, a float (default ``0.0``).
        padding_mode: one of :data:`PADDING_MODES`.
        causal: pad only on the left.
    """

    def __init__(
        self,
        padding: int,
        in_channels: int,
        buffer: float | None = None,
        padding_mode: str = "zeros",
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.pad_len = check_int(padding, "padding", 0)
        self.in_channels = check_int(in_channels, "in_channels", 1)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be a bool, got {causal!r}")
        if causal and padding_mode not in CAUSAL_PADDING_MODES:
            raise ValueError(
                f"padding_mode={padding_mode!r} is not causal (it copies future frames to the "
                f"left); causal padding supports {CAUSAL_PADDING_MODES}"
            )
        if buffer is not None and (
            isinstance(buffer, bool) or not isinstance(buffer, (int, float))
        ):
            raise TypeError(f"buffer must be a float or None, got {type(buffer).__name__}")
        self.buffer_value = float(buffer or 0.0)
        self.padding_mode = padding_mode
        self.causal = causal
        self.left_padding = self.pad_len if causal else self.pad_len // 2
        self.right_padding = self.pad_len - self.left_padding

    def _extra_repr(self) -> str:
        return (
            f"padding={self.pad_len}, in_channels={self.in_channels}, "
            f"padding_mode={self.padding_mode!r}, causal={self.causal}"
        )

    # -- offline ------------------------------------------------------------------------

    def _pad_offline(self, x: mx.array) -> mx.array:
        left, right = self.left_padding, self.right_padding
        if left == 0 and right == 0:
            return x
        length = x.shape[1]
        mode = self.padding_mode
        if mode == "zeros":
            if self.buffer_value != 0.0:
                # The buffer value stands for the frames before the sequence (the left
                # side); frames after its end are zeros.
                parts = [mx.full((x.shape[0], left, x.shape[2]), self.buffer_value, x.dtype), x]
                return mx.pad(mx.concatenate(parts, axis=1), [(0, 0), (0, right), (0, 0)])
            return mx.pad(x, [(0, 0), (left, right), (0, 0)])
        if mode == "reflect" and max(left, right) >= length:
            raise ValueError(
                f"reflect padding of {max(left, right)} frames needs an input longer than that, "
                f"got length {length}"
            )
        if mode == "circular" and max(left, right) > length:
            raise ValueError(
                f"circular padding of {max(left, right)} frames needs at least that many steps, "
                f"got length {length}"
            )
        parts = []
        if left:
            if mode == "replicate":
                parts.append(mx.repeat(x[:, :1], left, axis=1))
            elif mode == "reflect":
                parts.append(x[:, 1 : left + 1][:, ::-1])
            else:
                parts.append(x[:, length - left :])
        parts.append(x)
        if right:
            if mode == "replicate":
                parts.append(mx.repeat(x[:, -1:], right, axis=1))
            elif mode == "reflect":
                parts.append(x[:, length - 1 - right : length - 1][:, ::-1])
            else:
                parts.append(x[:, :right])
        return mx.concatenate(parts, axis=1)

    # -- streaming ----------------------------------------------------------------------

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> State:
        """The state of a fresh stream: the frames "before" the first chunk."""
        check_int(batch_size, "batch_size", 1)
        if not self.causal:
            raise ValueError("streaming needs causal padding; this TemporalPad1d is not causal")
        if self.pad_len == 0:
            return {}
        shape = (batch_size, self.pad_len, self.in_channels)
        state = {"buffer": mx.full(shape, self.buffer_value, dtype)}
        if self.padding_mode == "replicate":
            # The frames before a stream copy its first frame, which is not known yet.
            state["fresh"] = mx.ones((batch_size, 1, 1), dtype)
        return state

    def pad(self, x: mx.array, state: State | None = None) -> tuple[mx.array, State | None]:
        """Pad ``x`` offline (``state=None``) or as the next chunk of a stream.

        Returns the padded input and the new state (``None`` offline).
        """
        if state is None:
            return self._pad_offline(x), None
        if self.pad_len == 0:
            return x, {}
        buffer = state["buffer"]
        new_state = {}
        if "fresh" in state:
            fresh = state["fresh"]
            buffer = mx.where(fresh > 0, mx.broadcast_to(x[:, :1], buffer.shape), buffer)
            new_state["fresh"] = mx.zeros_like(fresh)
        padded = mx.concatenate([buffer.astype(x.dtype), x], axis=1)
        # the state keeps the dtype init_state gave it, so a compiled step is traced once
        kept = padded[:, padded.shape[1] - self.pad_len :]
        dtype = state["buffer"].dtype
        new_state["buffer"] = kept if kept.dtype == dtype else kept.astype(dtype)
        return padded, new_state

    _forward = pad
