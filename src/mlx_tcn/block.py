"""TemporalBlock: the residual block of a TCN, offline, training and streaming.

(Over 300 lines: the block's constructor takes pytorch-tcn's full argument list, each
documented; its forward and its streaming step are the same code and stay together.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from ._dropout import keep_mask
from ._frozen import linear
from ._stateful import Stateful
from ._stream import check_bool, check_dropout, check_input, check_int, promoted_dtype
from .activations import check_activation, get_activation, glu
from .buffer import BufferIO
from .config import (
    EMBEDDING_MODES,
    NORMS,
    check_embedding_mode,
    check_norm,
    resolve_initializer,
)
from .conv import TemporalConv1d
from .embeddings import check_embedding_shapes, prepare_embeddings
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

BlockState = dict[str, Any]


def _eval_batch_norm(norm: nn.BatchNorm, x: mx.array) -> mx.array:
    """Batch norm with running statistics, whatever ``norm.training`` says."""
    y = (x - norm.running_mean) * mx.rsqrt(norm.running_var + norm.eps)
    if "weight" in norm:
        y = norm.weight * y + norm.bias
    return y


class TemporalBlock(Stateful):
    """Residual block of two dilated convolutions, as in pytorch-tcn 1.2.3.

    On ``(batch, length, channels)``::

        out = dropout(act1(embed(norm1(conv1(x)))))     # act1 is a GLU when use_gate
        out = dropout(act2(norm2(conv2(out))))
        out = se(out)                                   # when use_se
        y = act(out + (x or downsample(x)))             # returns (y, out); out feeds skips

    A causal block streams like every streaming level (see :mod:`mlx_tcn._stateful`):
    ``y, state = block.stream(x, state)`` (``y, skip, state = block(x, state=state)`` with
    the skip output), or ``block(x, inference=True)`` with the state kept in the block or in
    a pair of :class:`BufferIO` (``in_buffer=(first, second)``: the first convolution's
    state, then the second's with the SE sums).

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
        embedding_shapes: ``[(features,), (features, None), (features, time_steps), ...]``
            of the conditioning inputs (see :mod:`mlx_tcn.embeddings`), or ``None``.
        embedding_mode: ``'add'`` or ``'concat'``.
        use_gate: gated activation (GLU) after the first convolution.
        use_se: squeeze-and-excitation on the block output.
        se_reduction: SE bottleneck reduction.
        se_residual: residual connection inside SE.
        kerner_initializer: pytorch-tcn's ``TemporalBlock`` spelling of
            ``kernel_initializer``, accepted with a ``DeprecationWarning``.
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
        kerner_initializer: str | None = None,
    ) -> None:
        super().__init__()
        kernel_initializer = resolve_initializer(
            kernel_initializer, kerner_initializer, "kerner_initializer"
        )
        check_int(n_inputs, "n_inputs", 1)
        check_int(n_outputs, "n_outputs", 1)
        if check_int(stride, "stride", 1) != 1:
            # a strided block would shorten the main branch but not the residual
            raise ValueError(f"stride must be 1 in a TemporalBlock (as in a TCN), got {stride}")
        check_norm(use_norm)
        check_embedding_mode(embedding_mode)
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
            check_bool(se_residual, "se_residual")
            check_int(se_reduction, "se_reduction", 1)
            self.se = SqueezeExcitation(n_outputs, se_reduction, se_residual, causal=causal)

    @property
    def receptive_field(self) -> int:
        """Input steps that can influence one output step of this block (SE aside)."""
        return self.conv1.receptive_field + self.conv2.receptive_field - 1

    _kind = "block"

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> BlockState:
        """State of a fresh stream of inputs of ``dtype``: the two convolutions' buffers (and
        SE running sums). Each buffer has the dtype of what its convolution reads (``dtype``
        promoted by the weights before it), so it keeps its dtype from chunk to chunk."""
        self._require_causal(inference=False)
        check_int(batch_size, "batch_size", 1)
        inner = promoted_dtype(
            dtype,
            self.conv1,
            self.get("norm1"),
            self.get("embedding_projection_1"),
            self.get("embedding_projection_2"),
        )
        state = {
            "conv1": self.conv1.init_state(batch_size, dtype),
            "conv2": self.conv2.init_state(batch_size, inner),
        }
        if self.use_se:
            state["se"] = self.se.init_state(batch_size, dtype)
        return state

    def _stages(self, state: BlockState) -> list[Any]:
        # pytorch-tcn's order: the first convolution, then the second (here with SE's sums)
        return [state["conv1"], {k: v for k, v in state.items() if k != "conv1"}]

    def _join(self, stages: list[Any]) -> BlockState:
        return {"conv1": stages[0], **stages[1]}

    def _stage_count(self) -> int:
        return 2

    def _stage_help(self) -> str:
        return "2 BufferIO for a TemporalBlock (one per convolution)"

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
        # A multiply by the scaled mask, as torch's dropout does (a NaN or inf in a dropped
        # position stays one): in MLX's compiled CPU step it costs fewer passes than a
        # `where`, 2-10% of a training step (docs/performance_models.md, "What was tried").
        return x * (keep_mask(x.shape, keep).astype(x.dtype) * (1.0 / keep))

    def _embed(self, x: mx.array, e: mx.array) -> mx.array:
        e = linear(self.embedding_projection_1, e)
        if self.embedding_mode == "add":
            return x + e
        # concat: projection_2([x, e]) without materialising the concatenation
        proj, width = self.embedding_projection_2, x.shape[-1]
        return x @ proj.weight[:, :width].T + (e @ proj.weight[:, width:].T + proj.bias)

    def _conv(
        self, i: int, x: mx.array, state: dict | None, e: mx.array | None, eval_mode: bool
    ) -> tuple[mx.array, dict | None]:
        """Convolution ``i`` (1 or 2) and what follows it: its norm, the embeddings (after
        the first), the activation and dropout.

        Where those passes treat each time step on its own (all but batch norm on the
        batch's statistics and embeddings with a time axis), they go to the convolution as
        its epilogue: when its GEMMs split by time over the CPU lanes (one long sequence),
        each part then runs them on its own lane.
        """
        norm = self.get(f"norm{i}")
        activation = self.activation1 if i == 1 else self.activation2

        def after(out: mx.array) -> mx.array:
            out = self._norm(f"norm{i}", out, eval_mode)
            if e is not None:
                out = self._embed(out, e)
            return self._dropout(activation(out), eval_mode)

        per_step = not (isinstance(norm, nn.BatchNorm) and not eval_mode) and (
            e is None or e.shape[1] == 1
        )
        conv = self.conv1 if i == 1 else self.conv2
        if per_step:
            return conv._forward(x, state, epilogue=after)
        out, new_state = conv._forward(x, state)
        return after(out), new_state

    def _forward(
        self, x: mx.array, e: mx.array | None, state: BlockState | None, eval_mode: bool
    ) -> tuple[mx.array, mx.array, BlockState | None]:
        st = state or {}
        out, s1 = self._conv(1, x, st.get("conv1") if state is not None else None, e, eval_mode)
        out, s2 = self._conv(
            2, out, st.get("conv2") if state is not None else None, None, eval_mode
        )
        new_state = None if state is None else {"conv1": s1, "conv2": s2}
        if self.use_se:
            out, s_se = self.se._forward(out, st.get("se") if state is not None else None)
            if new_state is not None:
                new_state["se"] = s_se
        res = x if self.downsample is None else linear(self.downsample, x)
        return self.activation_final(out + res), out, new_state

    def _step(
        self, x: mx.array, e: mx.array | None, state: BlockState
    ) -> tuple[tuple[mx.array, mx.array], BlockState]:
        y, skip, new_state = self._forward(x, e, state, True)
        return (y, skip), new_state

    def _checked_step(
        self, x: mx.array, state: BlockState, embeddings: object
    ) -> tuple[mx.array, mx.array, BlockState]:
        self._require_causal(inference=False)
        check_input(x, self.n_inputs)
        state = self._check_state(state, x.shape[0])
        e = prepare_embeddings(embeddings, self.embedding_shapes, x)
        return self._forward(x, e, state, True)

    def stream(
        self,
        x: mx.array,
        state: BlockState,
        embeddings: list[mx.array] | mx.array | None = None,
    ) -> tuple[mx.array, BlockState]:
        """Process the next chunk of a stream: ``y, state = block.stream(x, state)``.

        Pure, like :meth:`TCN.stream`; computes inference outputs (no dropout, batch-norm
        running statistics) whatever ``training`` says. :meth:`stream_with_skip` also
        returns the skip output.
        """
        y, _, new_state = self._checked_step(x, state, embeddings)
        return y, new_state

    def stream_with_skip(
        self,
        x: mx.array,
        state: BlockState,
        embeddings: list[mx.array] | mx.array | None = None,
    ) -> tuple[mx.array, mx.array, BlockState]:
        """:meth:`stream` with the skip output (the residual branch, what a TCN's global skip
        connections sum): ``y, skip, state = block.stream_with_skip(x, state)``."""
        return self._checked_step(x, state, embeddings)

    def __call__(
        self,
        x: mx.array,
        embeddings: list[mx.array] | None = None,
        inference: bool = False,
        state: BlockState | None = None,
        in_buffer: BufferIO | list[BufferIO] | tuple[BufferIO, ...] | None = None,
    ) -> tuple[mx.array, ...]:
        """Returns ``(output, skip)``; ``skip`` is the residual branch before the addition.

        ``inference=True``: ``x`` is the next chunk of the stream kept in the block (or in
        ``in_buffer``, see the class docstring); computed in inference mode. An explicit
        state goes through :meth:`stream` (or :meth:`stream_with_skip` for the skip output).
        The older ``block(x, state=state)``, which returned three values, still works with a
        ``DeprecationWarning``.
        """
        if state is not None:
            if in_buffer is not None:
                raise ValueError("give state or in_buffer, not both")
            warnings.warn(
                "block(x, state=state) returns three values; use block.stream(x, state) -> "
                "(y, state), or block.stream_with_skip(x, state) -> (y, skip, state)",
                DeprecationWarning,
                stacklevel=2,
            )
            return self._checked_step(x, state, embeddings)
        check_input(x, self.n_inputs)
        check_bool(inference, "inference")
        e = prepare_embeddings(embeddings, self.embedding_shapes, x, whole=not inference)
        return self._stateful(
            x,
            inference,
            in_buffer,
            offline=lambda: self._forward(x, e, None, not self.training)[:2],
            step=lambda st: self._step(x, e, st),
        )
