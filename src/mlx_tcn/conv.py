"""Temporal convolutions: TemporalConv1d and TemporalConvTransposed1d, offline and streaming."""

from __future__ import annotations

import math

import mlx.core as mx

from . import _frozen, ops
from ._stateful import StreamingModule
from ._stream import check_bool, check_int
from .pad import PADDING_MODES, TemporalPad1d
from .parametrizations import WeightNormSupport, get_weight

__all__ = ["TemporalConv1d", "TemporalConvTransposed1d"]


def _uniform(shape: tuple[int, ...], bound: float) -> mx.array:
    return mx.random.uniform(-bound, bound, shape)


def _set_geometry(
    layer: StreamingModule,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    dilation: int,
    causal: bool,
) -> None:
    """Check and keep the arguments both convolutions share."""
    layer.in_channels = check_int(in_channels, "in_channels", 1)
    layer.out_channels = check_int(out_channels, "out_channels", 1)
    layer.kernel_size = check_int(kernel_size, "kernel_size", 1)
    layer.stride = check_int(stride, "stride", 1)
    layer.dilation = check_int(dilation, "dilation", 1)
    if (layer.kernel_size - 1) * layer.dilation >= 2**31 - 1:  # MLX's axes hold less
        raise ValueError(
            f"kernel_size={kernel_size} with dilation={dilation} pads (kernel_size - 1) * "
            f"dilation = {(layer.kernel_size - 1) * layer.dilation} steps per sequence, more than "
            "an MLX array axis holds (2**31 - 1); use fewer levels or a dilation_reset"
        )
    layer.causal = check_bool(causal, "causal")


class TemporalConv1d(WeightNormSupport, StreamingModule):
    """1-D convolution over time that pads itself, on ``(batch, length, channels)`` inputs.

    The padding is ``(kernel_size - 1) * dilation`` frames: all on the left when causal (the
    output at step ``t`` sees only steps ``<= t``), split ``'same'``-style otherwise, so with
    stride 1 the output has the input's length. Streaming keeps the last
    ``(kernel_size - 1) * dilation`` input frames as state; see :meth:`stream`.

    The weight has MLX's layout ``(out_channels, kernel_size, in_channels // groups)`` and the
    same default initialisation as PyTorch's ``Conv1d``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: taps of the kernel (1 or more; even sizes pad like PyTorch's ``'same'``).
        stride: step between outputs (streaming needs 1).
        padding: must be 0; the padding is computed from ``kernel_size`` and ``dilation``.
        dilation: spacing between taps.
        groups: channel groups.
        bias: learn an additive bias.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'`` (causal:
            ``'zeros'`` or ``'replicate'``), see :class:`~mlx_tcn.TemporalPad1d`.
        buffer: initial value of the streaming buffer (default 0.0).
        causal: causal padding (pytorch-tcn's default for this layer).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        buffer: float | None = None,
        causal: bool = True,
    ) -> None:
        super().__init__()
        _set_geometry(self, in_channels, out_channels, kernel_size, stride, dilation, causal)
        check_int(groups, "groups", 1)
        if padding != 0:
            raise ValueError(
                f"padding must be 0 (TemporalConv1d computes it from kernel_size and "
                f"dilation), got {padding!r}"
            )
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                f"divisible by groups ({groups})"
            )
        self.groups = groups
        self.pad_len = (kernel_size - 1) * dilation
        self.padder = TemporalPad1d(
            self.pad_len, in_channels, buffer=buffer, padding_mode=padding_mode, causal=causal
        )
        bound = 1.0 / math.sqrt(in_channels // groups * kernel_size)
        self.weight = _uniform((out_channels, kernel_size, in_channels // groups), bound)
        if check_bool(bias, "bias"):
            self.bias = _uniform((out_channels,), bound)

    def _extra_repr(self) -> str:
        w = get_weight(self)
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, dilation={self.dilation}, groups={self.groups}, "
            f"bias={'bias' in self}, causal={self.causal}, "
            f"padding_mode={self.padder.padding_mode!r}, weight={tuple(w.shape)}"
        )

    @property
    def receptive_field(self) -> int:
        """Input steps that can influence one output step."""
        return self.pad_len + 1

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> dict:
        """The state of a fresh stream: the last ``(k-1)*d`` input frames, ``{"buffer":
        (batch, (k-1)*d, in_channels)}`` in time order or, for a large buffer, a ring with
        one more slot and its position ``"pos"`` (see :meth:`TemporalPad1d.init_state`);
        ``{}`` when the kernel has one tap."""
        if self.stride != 1:
            raise ValueError(f"streaming supports stride 1 only, this layer has {self.stride}")
        return self.padder.init_state(batch_size, dtype)

    def _freeze_matrix(self) -> None:
        """Lay the weight out once as its GEMM matrix (:func:`mlx_tcn.ops.gemm_matrix`), for
        a deployed stream step (see :mod:`mlx_tcn._frozen`)."""
        if self.groups == 1:
            weight = get_weight(self)
            _frozen.remember(self, weight, ops.gemm_matrix(weight))

    def _forward(
        self, x: mx.array, state: dict | None, epilogue: ops.Epilogue | None = None
    ) -> tuple[mx.array, dict | None]:
        """``(y, new_state)``; ``epilogue``: what follows the convolution step by step, run
        on each part where the GEMMs split over the CPU lanes (see :func:`ops.conv1d`)."""
        padding = None
        if state is not None and x.shape[1] == 1 and "pos" in state and self.stride == 1:
            # A one-step chunk reads only its k taps from the ring (TemporalPad1d.taps)
            padded, new_state = self.padder.taps(x, state, self.kernel_size, self.dilation)
            dilation = 1
        elif state is None and self.padder.padding_mode == "zeros":
            # offline, constant padding: ops.conv1d pads, by parts where it splits the
            # GEMMs over the CPU lanes, instead of one copy of the whole input here
            padded, new_state, dilation = x, None, self.dilation
            padder = self.padder
            padding = (padder.left_padding, padder.right_padding, padder.buffer_value)
        else:
            padded, new_state = self.padder.pad(x, state)
            dilation = self.dilation
        weight = get_weight(self)
        y = ops.conv1d(
            padded,
            weight,
            self.get("bias"),
            stride=self.stride,
            dilation=dilation,
            groups=self.groups,
            custom_vjp=state is None and self.training,
            matrix=_frozen.matrix_for(self, weight, x.shape[0]),
            epilogue=epilogue,
            padding=padding,
        )
        return y, new_state


class TemporalConvTransposed1d(WeightNormSupport, StreamingModule):
    """Transposed 1-D convolution over time (upsampling by ``stride``), any kernel size.

    On ``(batch, length, in_channels)`` inputs it returns ``(batch, length * stride,
    out_channels)``, causal or not. The full transposed convolution
    ``y[i*stride + j] += W[j] x[i]`` has ``(length - 1) * stride + k`` samples with
    ``k = dilation * (kernel_size - 1) + 1``. Causal: its first ``length * stride`` samples,
    so output step ``t`` depends only on inputs ``i <= t // stride``, and a stream emits
    exactly ``stride`` samples per input step. Non-causal: ``(k - stride) // 2`` samples are
    dropped on the left and the rest on the right (as pytorch-tcn's ``kernel_size ==
    2 * stride`` layer does). When ``k < stride`` the missing samples are zeros.

    It is computed as one ordinary convolution with ``ceil(k / stride)`` taps and
    ``stride * out_channels`` outputs (a polyphase decomposition), so there are no
    zero-stuffed inputs; the streaming state is the last ``ceil(k / stride) - 1`` inputs.

    The weight has the layout ``(out_channels, kernel_size, in_channels)``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: taps of the kernel.
        stride: upsampling factor.
        padding: must be 0 (the cropping above is implied).
        output_padding: must be 0.
        groups: must be 1.
        bias: learn an additive bias.
        dilation: spacing between taps.
        padding_mode: ``'zeros'``, or ``'replicate'`` when causal.
        buffer: initial value of the streaming buffer (default 0.0).
        causal: causal cropping (pytorch-tcn's default for this layer).
    """

    def __init__(  # torch.nn.ConvTranspose1d's arguments, in its order
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,  # the upsampling factor
        padding: int = 0,
        output_padding: int = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int = 1,
        padding_mode: str = "zeros",
        buffer: float | None = None,
        causal: bool = True,
    ) -> None:
        super().__init__()
        _set_geometry(self, in_channels, out_channels, kernel_size, stride, dilation, causal=causal)
        if padding != 0:
            raise ValueError(
                f"padding must be 0 (the output length is length*stride), got {padding!r}"
            )
        if output_padding != 0:
            raise ValueError(f"output_padding must be 0, got {output_padding!r}")
        if check_int(groups, "groups", 1) != 1:
            raise ValueError(f"groups must be 1 for TemporalConvTransposed1d, got {groups!r}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if not causal and padding_mode != "zeros":
            raise ValueError(
                f"a non-causal transposed convolution pads with zeros only, got "
                f"padding_mode={padding_mode!r}"
            )
        span = dilation * (kernel_size - 1) + 1
        self._span = span
        self._taps = -(-span // stride)  # ceil(span / stride)
        self._left_crop = 0 if causal else max(span - stride, 0) // 2
        # Inputs after the end that still feed the kept samples (non-causal only).
        self._right_inputs = -(-self._left_crop // stride)
        self.padder = TemporalPad1d(
            self._taps - 1, in_channels, buffer=buffer, padding_mode=padding_mode, causal=True
        )
        bound = 1.0 / math.sqrt(out_channels * kernel_size)
        self.weight = _uniform((out_channels, kernel_size, in_channels), bound)
        if check_bool(bias, "bias"):
            self.bias = _uniform((out_channels,), bound)

    def _extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, dilation={self.dilation}, bias={'bias' in self}, "
            f"causal={self.causal}"
        )

    def _polyphase_weight(self) -> mx.array:
        """``(stride * out, taps, in)``: phase ``p`` of output step ``i*stride + p`` is an
        ordinary causal convolution of the input with taps ``W[p + m*stride]``."""
        w = get_weight(self)
        out, k, cin = w.shape
        s, taps, d = self.stride, self._taps, self.dilation
        if d > 1:  # spread the taps out: (out, span, in) with zeros between them
            w = mx.concatenate([w[:, :, None], mx.zeros((out, k, d - 1, cin), w.dtype)], axis=2)
            w = w.reshape(out, k * d, cin)[:, : self._span]
        w = mx.pad(w, [(0, 0), (0, taps * s - w.shape[1]), (0, 0)])
        w = w.reshape(out, taps, s, cin)  # [o, m, p, c] = W[p + m*s]
        w = w[:, ::-1].transpose(2, 0, 1, 3)  # tap j = taps-1-m reads x[i - m]
        return w.reshape(s * out, taps, cin)

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> dict:
        """The state of a fresh stream: the last ``ceil(k / stride) - 1`` input frames."""
        self._require_causal(inference=False)  # its padder is causal either way
        return self.padder.init_state(batch_size, dtype)

    def _forward(self, x: mx.array, state: dict | None) -> tuple[mx.array, dict | None]:
        batch, length, _ = x.shape
        padded, new_state = self.padder.pad(x, state)
        if self._right_inputs:
            padded = mx.pad(padded, [(0, 0), (0, self._right_inputs), (0, 0)])
        y = ops.conv1d(padded, self._polyphase_weight(), custom_vjp=state is None and self.training)
        y = y.reshape(batch, -1, self.out_channels)
        if self._left_crop or self._right_inputs:
            y = y[:, self._left_crop : self._left_crop + length * self.stride]
        if "bias" in self:
            y = y + self.bias
        return y, new_state
