"""TemporalBlock: the residual block of a TCN, offline, training and streaming."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from ._stream import check_bool, check_dropout, check_input, check_int, check_state_batch
from .activations import check_activation, get_activation, glu
from .conv import TemporalConv1d
from .init import get_initializer
from .parametrizations import weight_norm
from .se import SqueezeExcitation

__all__ = [
    "EMBEDDING_MODES",
    "NORMS",
    "TemporalBlock",
    "check_embedding_shapes",
    "prepare_embeddings",
]

NORMS = ("batch_norm", "layer_norm", "weight_norm", None)
EMBEDDING_MODES = ("add", "concat")

BlockState = dict[str, Any]


def check_embedding_shapes(shapes: object) -> list[tuple[int, ...]] | None:
    if shapes is None:
        return None
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Sequence) or not shapes:
        raise TypeError(
            f"embedding_shapes must be a non-empty list of tuples such as [(16,), (8,)], "
            f"got {shapes!r}"
        )
    out = []
    for shape in shapes:
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, Sequence) or len(shape) not in (1, 2):
            raise ValueError(
                f"each of embedding_shapes must be (features,) or (features, time_steps), "
                f"got {shape!r} in {shapes!r}"
            )
        for n in shape:
            check_int(n, f"embedding_shapes entry {tuple(shape)!r}", 1)
        out.append(tuple(shape))
    return out


def _eval_batch_norm(norm: nn.BatchNorm, x: mx.array) -> mx.array:
    """Batch norm with running statistics, whatever ``norm.training`` says."""
    y = (x - norm.running_mean) * mx.rsqrt(norm.running_var + norm.eps)
    if "weight" in norm:
        y = norm.weight * y + norm.bias
    return y


def prepare_embeddings(
    embeddings: object, shapes: list[tuple[int, ...]] | None, x: mx.array
) -> mx.array | None:
    """Check ``embeddings`` against ``shapes`` and concatenate them over features.

    Returns ``(batch, 1, features)`` when all are global, ``(batch, length, features)`` when
    any is time-aligned, or ``None`` for a model without embeddings.
    """
    if shapes is None:
        if embeddings is not None:
            raise ValueError(
                "embeddings were given but the model was built without embedding_shapes"
            )
        return None
    if embeddings is None:
        raise ValueError(
            f"this model was built with embedding_shapes={shapes}: pass embeddings=[...], one "
            f"array per shape, (batch, features) or (batch, length, features)"
        )
    if isinstance(embeddings, mx.array):
        embeddings = [embeddings]
    if not isinstance(embeddings, (list, tuple)):
        raise TypeError(f"embeddings must be a list of arrays, got {type(embeddings).__name__}")
    if len(embeddings) != len(shapes):
        raise ValueError(
            f"expected {len(shapes)} embeddings for embedding_shapes={shapes}, got {len(embeddings)}"
        )
    batch, length = x.shape[0], x.shape[1]
    parts = []
    for i, (e, shape) in enumerate(zip(embeddings, shapes, strict=True)):
        if not isinstance(e, mx.array):
            raise TypeError(f"embeddings[{i}] must be an mlx.core.array, got {type(e).__name__}")
        if e.ndim not in (2, 3) or e.shape[-1] != shape[0] or e.shape[0] != batch:
            raise ValueError(
                f"embeddings[{i}] must have shape ({batch}, {shape[0]}) or "
                f"({batch}, {length}, {shape[0]}) (channels-last), got {tuple(e.shape)}"
            )
        if e.ndim == 3 and e.shape[1] != length:
            raise ValueError(
                f"embeddings[{i}] is time-aligned with {e.shape[1]} steps but x has {length}; "
                f"got shape {tuple(e.shape)}"
            )
        parts.append(e[:, None] if e.ndim == 2 else e)
    if any(p.shape[1] != 1 for p in parts):
        parts = [mx.broadcast_to(p, (batch, length, p.shape[2])) for p in parts]
    return parts[0] if len(parts) == 1 else mx.concatenate(parts, axis=-1)


class TemporalBlock(nn.Module):
    """Residual block of two dilated convolutions, as in pytorch-tcn 1.2.3.

    On ``(batch, length, channels)``::

        out = dropout(act1(embed(norm1(conv1(x)))))     # act1 is a GLU when use_gate
        out = dropout(act2(norm2(conv2(out))))
        out = se(out)                                   # when use_se
        y = act(out + (x or downsample(x)))             # returns (y, out); out feeds skips

    Args:
        n_inputs: input channels.
        n_outputs: output channels.
        kernel_size: taps of both convolutions.
        stride: convolution stride (TCNs use 1).
        dilation: dilation of both convolutions.
        dropout: dropout probability after each activation.
        causal: causal convolutions (and a causal SE squeeze).
        use_norm: ``'batch_norm'``, ``'layer_norm'``, ``'weight_norm'`` or ``None``.
        activation: name or callable (see :mod:`mlx_tcn.activations`).
        kernel_initializer: initialiser name (see :func:`mlx_tcn.init.get_initializer`) for
            the convolution weights and the 1x1 downsample. Under weight norm the convolutions
            keep PyTorch's default initialisation instead, as in pytorch-tcn.
        embedding_shapes: ``[(features,), ...]`` of the conditioning inputs, or ``None``.
        embedding_mode: ``'add'`` or ``'concat'``.
        use_gate: gated activation (GLU) after the first convolution.
        use_se: squeeze-and-excitation on the block output.
        se_reduction: SE bottleneck reduction.
        se_residual: residual connection inside SE.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        dropout: float = 0.0,
        causal: bool = False,
        use_norm: str | None = None,
        activation: str | Callable = "relu",
        kernel_initializer: str = "xavier_uniform",
        embedding_shapes: list[tuple[int, ...]] | None = None,
        embedding_mode: str = "add",
        use_gate: bool = False,
        use_se: bool = False,
        se_reduction: int = 8,
        se_residual: bool = False,
    ) -> None:
        super().__init__()
        check_int(n_inputs, "n_inputs", 1)
        check_int(n_outputs, "n_outputs", 1)
        if check_int(stride, "stride", 1) != 1:
            # a strided block would shorten the main branch but not the residual
            raise ValueError(f"stride must be 1 in a TemporalBlock (as in a TCN), got {stride}")
        if use_norm not in NORMS:
            raise ValueError(f"use_norm must be one of {NORMS}, got {use_norm!r}")
        if embedding_mode not in EMBEDDING_MODES:
            raise ValueError(
                f"embedding_mode must be one of {EMBEDDING_MODES}, got {embedding_mode!r}"
            )
        check_activation(activation, "activation")
        self.dropout = check_dropout(dropout)
        self.causal = check_bool(causal, "causal")
        self.use_gate = check_bool(use_gate, "use_gate")
        self.use_se = check_bool(use_se, "use_se")
        self.use_norm = use_norm
        self.embedding_shapes = check_embedding_shapes(embedding_shapes)
        self.embedding_mode = embedding_mode
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        width1 = 2 * n_outputs if use_gate else n_outputs

        conv = dict(kernel_size=kernel_size, stride=stride, dilation=dilation, causal=causal)
        self.conv1 = TemporalConv1d(n_inputs, width1, **conv)
        self.conv2 = TemporalConv1d(n_outputs, n_outputs, **conv)
        self.downsample = nn.Linear(n_inputs, n_outputs) if n_inputs != n_outputs else None
        # pytorch-tcn's rule, so that its models start from the same distributions here: its
        # initialiser writes into the weight that weight norm recomputes from g and v, so
        # weight-normalised convolutions keep PyTorch's default initialisation (g = ||v||);
        # the 1x1 downsample always gets the initialiser (docs/porting.md).
        init = get_initializer(kernel_initializer, activation)
        convs = () if use_norm == "weight_norm" else (self.conv1, self.conv2)
        for layer in (*convs, self.downsample):
            if layer is not None:
                layer.weight = init(layer.weight.shape)
        if use_norm == "weight_norm":
            weight_norm(self.conv1)
            weight_norm(self.conv2)
        elif use_norm == "batch_norm":
            self.norm1, self.norm2 = nn.BatchNorm(width1), nn.BatchNorm(n_outputs)
        elif use_norm == "layer_norm":
            self.norm1, self.norm2 = nn.LayerNorm(width1), nn.LayerNorm(n_outputs)

        self.activation1 = glu if use_gate else get_activation(activation)
        self.activation2 = get_activation(activation)
        self.activation_final = get_activation(activation)

        if self.embedding_shapes is not None:
            features = sum(shape[0] for shape in self.embedding_shapes)
            self.embedding_projection_1 = nn.Linear(features, width1)
            if embedding_mode == "concat":
                self.embedding_projection_2 = nn.Linear(2 * width1, width1)
        if use_se:
            self.se = SqueezeExcitation(n_outputs, se_reduction, se_residual, causal=causal)

    @property
    def receptive_field(self) -> int:
        """Input steps that can influence one output step of this block (SE aside)."""
        return self.conv1.receptive_field + self.conv2.receptive_field - 1

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> BlockState:
        """State of a fresh stream: the two convolutions' buffers (and SE running sums)."""
        state = {
            "conv1": self.conv1.init_state(batch_size, dtype),
            "conv2": self.conv2.init_state(batch_size, dtype),
        }
        if self.use_se:
            state["se"] = self.se.init_state(batch_size, dtype)
        return state

    def _norm(self, name: str, x: mx.array, eval_mode: bool) -> mx.array:
        norm = self.get(name)
        if norm is None:
            return x
        if eval_mode and isinstance(norm, nn.BatchNorm):
            return _eval_batch_norm(norm, x)
        return norm(x)

    def _dropout(self, x: mx.array, eval_mode: bool) -> mx.array:
        if eval_mode or not self.training or self.dropout == 0.0:
            return x
        keep = 1.0 - self.dropout
        return mx.where(mx.random.bernoulli(keep, x.shape), x * (1.0 / keep), 0)

    def _embed(self, x: mx.array, e: mx.array) -> mx.array:
        e = self.embedding_projection_1(e)
        if self.embedding_mode == "add":
            return x + e
        # concat: projection_2([x, e]) without materialising the concatenation
        proj, width = self.embedding_projection_2, x.shape[-1]
        return x @ proj.weight[:, :width].T + (e @ proj.weight[:, width:].T + proj.bias)

    def _forward(
        self, x: mx.array, e: mx.array | None, state: BlockState | None, eval_mode: bool
    ) -> tuple[mx.array, mx.array, BlockState | None]:
        st = state or {}
        out, s1 = self.conv1._forward(x, st.get("conv1") if state is not None else None)
        out = self._norm("norm1", out, eval_mode)
        if e is not None:
            out = self._embed(out, e)
        out = self._dropout(self.activation1(out), eval_mode)
        out, s2 = self.conv2._forward(out, st.get("conv2") if state is not None else None)
        out = self._norm("norm2", out, eval_mode)
        out = self._dropout(self.activation2(out), eval_mode)
        new_state = None if state is None else {"conv1": s1, "conv2": s2}
        if self.use_se:
            out, s_se = self.se._forward(out, st.get("se") if state is not None else None)
            if new_state is not None:
                new_state["se"] = s_se
        res = x if self.downsample is None else self.downsample(x)
        return self.activation_final(out + res), out, new_state

    def __call__(
        self,
        x: mx.array,
        embeddings: list[mx.array] | None = None,
        inference: bool = False,
        state: BlockState | None = None,
    ) -> tuple[mx.array, mx.array]:
        """Returns ``(output, skip)``; ``skip`` is the residual branch before the addition.

        With ``state`` (from :meth:`init_state`) the call is one chunk of a stream and returns
        ``(output, skip, new_state)``. ``inference=True`` disables dropout and uses batch-norm
        running statistics.
        """
        check_input(x, self.n_inputs)
        e = prepare_embeddings(embeddings, self.embedding_shapes, x)
        eval_mode = inference or not self.training
        if state is not None:
            check_state_batch(state, x.shape[0])
            return self._forward(x, e, state, eval_mode)
        y, skip, _ = self._forward(x, e, None, eval_mode)
        return y, skip
