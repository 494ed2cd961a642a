"""TemporalPad1d: the padding in front of every temporal convolution, offline and streaming."""

from __future__ import annotations

import mlx.core as mx

from . import ops
from ._stateful import StreamingModule
from ._stream import check_int

__all__ = ["PADDING_MODES", "RING_MIN_VALUES", "TemporalPad1d"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# Causal padding may only use what is already known at the first step: the frames before
# the sequence are zeros, or copies of the first frame. reflect and circular would copy
# frames from the future into the past.
CAUSAL_PADDING_MODES = ("zeros", "replicate")

State = dict[str, mx.array]

#: A streaming buffer of more values than this (batch x frames x channels) is a ring, written
#: in place; a smaller one is shifted, which copies it but takes fewer MLX operations. At
#: a few microseconds per operation and about 10 GB/s of copying, the two cost the same
#: near 32 KB of float32 (docs/performance_models.md, "Streaming state as a ring").
RING_MIN_VALUES = 8192


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
            # The buffer value stands for the frames before the sequence (the left side);
            # frames after its end are zeros.
            return ops.pad_constant(x, left, right, self.buffer_value)
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
    #
    # Two layouts of the frames kept between chunks, chosen by init_state from their size:
    #
    # * first in, first out: ``buffer`` holds the last ``pad_len`` frames in time order; a
    #   chunk is concatenated to it and the new buffer is the end of the result. That copies
    #   the whole buffer in every step, which is nothing for a small one, and takes the
    #   fewest MLX operations (a batch-1 step costs per operation, a few microseconds each).
    # * a ring, once the buffer holds more than RING_MIN_VALUES values: ``buffer`` holds
    #   ``pad_len + 1`` frames per row and ``pos`` the slot the row's next frame goes to
    #   (int32, repeated over the channels: ``(batch, 1, channels)`` is the shape the
    #   write's index takes, where a broadcast of it would be one more operation per step).
    #   The last ``pad_len`` frames sit at ``pos + 1, pos + 2, ...`` (modulo the length),
    #   oldest first. A one-step chunk (:meth:`taps`) writes its frame into slot ``pos``,
    #   which MLX does in place when nothing else holds the old buffer (the usual
    #   ``y, state = step(x, state)``), and then reads the kernel's taps: the cost of a step
    #   no longer grows with the receptive field. A longer chunk lays its last frames out
    #   where one-step chunks would have put them, so a ring state depends on the stream
    #   only, never on how it was cut into chunks.

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> State:
        """The state of a fresh stream: the frames "before" the first chunk.

        ``{"buffer": (batch, padding, channels)}`` in time order, or, once that would hold
        more than :data:`RING_MIN_VALUES` values, the ring ``{"buffer": (batch, padding + 1,
        channels), "pos": (batch, 1, channels) int32}``; :meth:`history` gives the frames in
        time order for either.
        """
        check_int(batch_size, "batch_size", 1)
        if not self.causal:
            raise ValueError("streaming needs causal padding; this TemporalPad1d is not causal")
        if self.pad_len == 0:
            return {}
        channels = self.in_channels
        if batch_size * self.pad_len * channels > RING_MIN_VALUES:
            shape = (batch_size, self.pad_len + 1, channels)
            state = {
                "buffer": mx.full(shape, self.buffer_value, dtype),
                "pos": mx.zeros((batch_size, 1, channels), mx.int32),
            }
        else:
            state = {
                "buffer": mx.full((batch_size, self.pad_len, channels), self.buffer_value, dtype)
            }
        if self.padding_mode == "replicate":
            # The frames before a stream copy its first frame, which is not known yet.
            state["fresh"] = mx.ones((batch_size, 1, 1), dtype)
        return state

    def history(self, state: State) -> mx.array:
        """The last ``padding`` frames a state holds, oldest first: ``(batch, padding,
        channels)`` (what the next chunk is padded with on the left)."""
        if self.pad_len == 0:
            return mx.zeros((0,))
        buffer = state["buffer"]
        if "pos" not in state:
            return buffer
        length = self.pad_len + 1
        slots = (state["pos"] + mx.arange(1, length, dtype=mx.int32)[None, :, None]) % length
        return mx.take_along_axis(buffer, slots, axis=1)

    def _tap_offsets(self, dilation: int) -> mx.array:
        """``[1, 1 + d, ..., pad_len + 1]`` as ``(1, k, 1)``, made once per dilation: a
        constant of the compiled step rather than an operation in every step. Kept outside
        the module's parameters (in ``__dict__``)."""
        cache = self.__dict__.setdefault("_offsets", {})
        if dilation not in cache:
            offsets = mx.arange(1, self.pad_len + 2, dilation, dtype=mx.int32)
            cache[dilation] = offsets[None, :, None]
            mx.eval(cache[dilation])
        return cache[dilation]

    def _start(self, x: mx.array, state: State) -> tuple[mx.array, State]:
        """The buffer, with a fresh replicate stream's frames filled in (first chunk), and
        what the new state keeps of ``fresh`` (added last by the callers: a new state lists
        its arrays in :meth:`init_state`'s order, which ``tree_flatten`` and an exported
        step's flat inputs follow)."""
        buffer = state["buffer"]
        rest = {}
        if "fresh" in state:
            fresh = state["fresh"]
            first = mx.broadcast_to(x[:, :1].astype(buffer.dtype), buffer.shape)
            buffer = mx.where(fresh > 0, first, buffer)
            rest["fresh"] = mx.zeros_like(fresh)
        return buffer, rest

    def pad(self, x: mx.array, state: State | None = None) -> tuple[mx.array, State | None]:
        """Pad ``x`` offline (``state=None``) or as the next chunk of a stream.

        Returns the padded input and the new state (``None`` offline).
        """
        if state is None:
            return self._pad_offline(x), None
        if self.pad_len == 0:
            return x, {}
        buffer, rest = self._start(x, state)
        new_state: State = {}
        ring = "pos" in state
        history = self.history(
            {"buffer": buffer, "pos": state["pos"]} if ring else {"buffer": buffer}
        )
        padded = mx.concatenate([history.astype(x.dtype), x], axis=1)
        # the state keeps the dtype init_state gave it, so a compiled step is traced once
        if not ring:
            kept = padded[:, padded.shape[1] - self.pad_len :]
            new_state["buffer"] = kept if kept.dtype == buffer.dtype else kept.astype(buffer.dtype)
            return padded, {**new_state, **rest}
        # The last pad_len + 1 frames, where one-step chunks would have left them: the next
        # slot is pos + steps, and it holds the oldest of them.
        length = self.pad_len + 1
        last = padded[:, padded.shape[1] - length :].astype(buffer.dtype)
        new_pos = (state["pos"] + x.shape[1]) % length
        slots = (mx.arange(length, dtype=mx.int32)[None, :, None] - new_pos) % length
        new_state["buffer"] = mx.take_along_axis(last, slots, axis=1)
        new_state["pos"] = new_pos
        return padded, {**new_state, **rest}

    _forward = pad

    def taps(
        self, x: mx.array, state: State, kernel_size: int, dilation: int
    ) -> tuple[mx.array, State]:
        """For a one-step chunk and a ring state: the ``kernel_size`` frames its output
        reads, ``(batch, k, channels)`` (``x[t - (k-1)*dilation]``, ..., ``x[t]``), and the
        new state; for a convolution whose ``padding`` is ``(kernel_size - 1) * dilation``.

        The frame is written into the ring first, in place, then the taps are read from it:
        nothing but the new frame is copied, whatever the receptive field.
        """
        if (
            x.shape[1] != 1
            or "pos" not in state
            or self.pad_len == 0
            or self.pad_len != (kernel_size - 1) * dilation
        ):
            raise ValueError(
                f"taps() takes a one-step chunk, a ring state (with 'pos') and "
                f"(kernel_size - 1) * dilation == padding ({self.pad_len}); got "
                f"{x.shape[1]} steps, state keys {sorted(state)}, kernel_size={kernel_size}, "
                f"dilation={dilation}"
            )
        buffer, rest = self._start(x, state)
        pos, length = state["pos"], self.pad_len + 1
        written = mx.put_along_axis(buffer, pos, x.astype(buffer.dtype), axis=1)
        # after the write, time t - m sits in slot pos - m: tap j (time t - pad_len + j*d)
        # in slot pos + 1 + j*d (modulo the length). The last tap is the new frame; the
        # first slot, pos + 1, is the next position.
        slots = (pos + self._tap_offsets(dilation)) % length
        taps = mx.take_along_axis(written, slots, axis=1)
        return taps.astype(x.dtype), {"buffer": written, "pos": slots[:, :1], **rest}
