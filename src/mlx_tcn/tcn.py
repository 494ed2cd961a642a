"""TCN: a stack of TemporalBlocks; offline, training and exact streaming through one code path.

(Over 300 lines: the model's whole public surface, the spec's constructor with its argument
docs and the three ways to run it, stays on one page; the work is in config, block, parallel,
_stateful and serialization.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from . import serialization
from ._eval_compile import MAX_VALUES, EvalCompiler
from ._frozen import freeze_linear, linear
from ._stateful import Stateful
from ._stream import check_bool, check_input, check_int, promoted_dtype
from .activations import get_activation
from .block import BlockState, TemporalBlock
from .buffer import BufferIO
from .config import TCNConfig, resolve_initializer
from .conv import TemporalConv1d
from .embeddings import prepare_embeddings
from .init import get_initializer
from .modules import ModuleList
from .parallel import split_forward
from .parametrizations import fold_weight_norm, folded_copy

__all__ = ["TCN", "TCNConfig", "TemporalBlock"]


def _config_attribute(name: str, doc: str) -> property:
    """A read-only attribute of the model that reads ``model.tcn_config.<name>`` (tuples
    given back as lists, as the attributes always were)."""

    def get(self: TCN) -> Any:
        value = getattr(self.tcn_config, name)
        return list(value) if isinstance(value, tuple) else value

    return property(get, doc=doc)


class TCN(Stateful):
    """Temporal Convolutional Network (Bai, Kolter & Koltun, 2018) on ``(batch, length,
    channels)`` inputs.

    A stack of :class:`TemporalBlock` with dilations ``2**i`` (by default), optional global
    skip connections, an output projection and an output activation; the same computation as
    pytorch-tcn 1.2.3, channels-last.

    Three ways to run it, one code path:

    * offline: ``y = model(x)``;
    * explicit streaming: ``state = model.init_state(batch)`` then
      ``y, state = model.stream(chunk, state)``, exact at any batch size and chunk length;
    * the stateful API: ``model(chunk, inference=True)`` with the stream kept in the model
      (``reset_buffers()`` starts a new one) or in ``in_buffer`` (:class:`BufferIO` objects).

    Streaming computes inference outputs (no dropout, batch-norm running statistics)
    whatever ``model.training`` says, and leaves ``training`` as it is.

    Args:
        num_inputs: input channels.
        num_channels: output channels of each block.
        kernel_sizes: kernel size of all blocks, or one per block.
        dilations: dilation of each block (default ``2**i``).
        dilation_reset: instead of ``dilations``: restart the ``2**i`` sequence after the
            dilation reaches this value (pytorch-tcn's rule, ``2**(i % int(log2(2 * r)))``).
        dropout: dropout probability inside the blocks.
        causal: causal convolutions (required for streaming).
        use_norm: ``'batch_norm'``, ``'layer_norm'``, ``'weight_norm'`` or ``None``.
        activation: name (``relu``, ``tanh``, ``leaky_relu``, ``sigmoid``, ``elu``, ``gelu``,
            ``selu``, ``softmax``, ``log_softmax``) or a callable / ``mlx.nn.Module`` class.
        kernel_initializer: ``xavier_uniform``, ``xavier_normal``, ``kaiming_uniform``,
            ``kaiming_normal``, ``he_uniform``, ``he_normal``, ``normal`` or ``uniform``, for
            the blocks' convolutions, 1x1 downsamples and skip projections; as in pytorch-tcn,
            weight-normalised convolutions keep PyTorch's default initialisation instead.
        use_skip_connections: sum the blocks' outputs (projected to the last width).
        embedding_shapes: conditioning inputs fed to every block, pytorch-tcn's forms:
            ``(features,)``, ``(features, None)`` (time-aligned, any length) or
            ``(features, time_steps)`` (offline calls must give that many steps).
        embedding_mode: ``'add'`` or ``'concat'``.
        use_gate: gated activations (GLU) after each block's first convolution.
        use_se: squeeze-and-excitation in each block (causal running mean when causal).
        se_reduction: SE bottleneck reduction ratio.
        se_residual: residual connection inside SE.
        output_projection: channels of a final 1x1 projection, or ``None``.
        output_activation: activation after everything, or ``None``.
        kernel_initilaizer: deprecated misspelling of ``kernel_initializer``.
    """

    def __init__(
        self,
        num_inputs: int,
        num_channels: Sequence[int],
        kernel_sizes: int | Sequence[int] = 4,
        dilations: Sequence[int] | None = None,
        dilation_reset: int | None = None,
        dropout: float = 0.1,
        causal: bool = False,
        use_norm: str | None = "weight_norm",
        activation: str | Callable = "relu",
        kernel_initializer: str = "xavier_uniform",
        use_skip_connections: bool = False,
        embedding_shapes: Sequence[tuple[int, ...]] | None = None,
        embedding_mode: str = "add",
        use_gate: bool = False,
        use_se: bool = False,
        se_reduction: int = 8,
        se_residual: bool = False,
        output_projection: int | None = None,
        output_activation: str | Callable | None = None,
        kernel_initilaizer: str | None = None,
    ) -> None:
        super().__init__()
        kernel_initializer = resolve_initializer(kernel_initializer, kernel_initilaizer)
        cfg = TCNConfig(
            num_inputs=num_inputs,
            num_channels=num_channels,
            kernel_sizes=kernel_sizes,
            dilations=dilations,
            dilation_reset=dilation_reset,
            dropout=dropout,
            causal=causal,
            use_norm=use_norm,
            activation=activation,
            kernel_initializer=kernel_initializer,
            use_skip_connections=use_skip_connections,
            embedding_shapes=embedding_shapes,
            embedding_mode=embedding_mode,
            use_gate=use_gate,
            use_se=use_se,
            se_reduction=se_reduction,
            se_residual=se_residual,
            output_projection=output_projection,
            output_activation=output_activation,
        )
        self._build(cfg)

    def _build(self, cfg: TCNConfig) -> None:
        """The layers of ``cfg``: the blocks, the skip projections, the output head."""
        self.tcn_config = cfg
        self.network = ModuleList(TemporalBlock(**cfg.block_kwargs(i)) for i in range(cfg.levels))
        if cfg.use_skip_connections:
            init = get_initializer(cfg.kernel_initializer, cfg.activation)
            skips = ModuleList()
            for width in cfg.num_channels:
                last = cfg.num_channels[-1]
                skip = nn.Linear(width, last) if width != last else None
                if skip is not None:
                    skip.weight = init(skip.weight.shape)
                skips.append(skip)
            self.downsample_skip_connection = skips
            self.activation_skip_out = get_activation(cfg.activation)
        if cfg.output_projection is not None:
            self.projection_out = nn.Linear(cfg.num_channels[-1], cfg.output_projection)
        if cfg.output_activation is not None:
            self.activation_out = get_activation(
                cfg.output_activation, "output_activation", exact=True
            )

    # -- the configuration, as read-only attributes (build a new model to change them) ---

    num_inputs = _config_attribute("num_inputs", "Input channels.")
    num_channels = _config_attribute("num_channels", "Output channels of each block.")
    kernel_sizes = _config_attribute("kernels", "The kernel size of each block.")
    dilations = _config_attribute("dilation_list", "The dilation of each block.")
    causal = _config_attribute("causal", "Causal convolutions (streaming needs them).")
    dropout = _config_attribute("dropout", "Dropout probability inside the blocks.")
    use_norm = _config_attribute(
        "use_norm", "``use_norm`` as built (:attr:`config` follows later weight-norm changes)."
    )
    use_skip_connections = _config_attribute("use_skip_connections", "Global skip sums.")
    use_se = _config_attribute("use_se", "Squeeze-and-excitation in each block.")
    embedding_shapes = _config_attribute("embedding_shapes", "The conditioning inputs' forms.")

    # -- properties -----------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments; ``TCN(**model.config)`` builds the same architecture.

        ``use_norm`` follows the convolutions: ``None`` once weight norm has been removed from
        all of them (:meth:`remove_weight_norm`, or :func:`mlx_tcn.remove_weight_norm` on
        each), ``'weight_norm'`` when all of them are weight-normalised.
        """
        config = self.tcn_config.to_dict()
        config["use_norm"] = serialization.described_use_norm(self, config["use_norm"])
        return config

    def remove_weight_norm(self) -> TCN:
        """Fold weight norm into plain weights in every layer, in place; returns the model.

        Outputs are unchanged; afterwards :attr:`config` says ``use_norm=None``, so
        :meth:`save` / :meth:`load` and :func:`mlx_tcn.to_pytorch_tcn` describe the folded
        model. Per layer, :func:`mlx_tcn.remove_weight_norm` (as with PyTorch) does the same.
        """
        fold_weight_norm(self)
        return self

    @property
    def out_channels(self) -> int:
        """Channels of the output: ``output_projection`` or the last block's width."""
        return self.tcn_config.output_projection or self.tcn_config.num_channels[-1]

    @property
    def receptive_field(self) -> int | float:
        """Input steps that can influence one output step: ``1 + sum 2*(k-1)*d``.

        ``math.inf`` with SE blocks: their squeeze averages over every earlier step (causal)
        or the whole sequence.
        """
        context = self._context()
        return math.inf if context is None else 1 + sum(context)

    # -- the forward pass -------------------------------------------------------------------

    def _forward(
        self, x: mx.array, e: mx.array | None, state: list | None, eval_mode: bool
    ) -> tuple[mx.array, list | None]:
        new_state = None if state is None else []
        skip_sum = None
        last = len(self.network) - 1
        for i, block in enumerate(self.network):
            x, skip, s = block._forward(x, e, None if state is None else state[i], eval_mode)
            if new_state is not None:
                new_state.append(s)
            if self.use_skip_connections and i < last:
                projection = self.downsample_skip_connection[i]
                if projection is not None:
                    skip = linear(projection, skip)
                skip_sum = skip if skip_sum is None else skip_sum + skip
        if self.use_skip_connections:
            x = self.activation_skip_out(x if skip_sum is None else skip_sum + x)
        if "projection_out" in self:
            x = linear(self.projection_out, x)
        # getattr, not `in self`: a plain function is an attribute, not a module child
        activation_out = getattr(self, "activation_out", None)
        if activation_out is not None:
            x = activation_out(x)
        return x, new_state

    # Small eval-mode forwards run compiled (see mlx_tcn._eval_compile); False: never.
    compile_eval = True

    def _offline(self, x: mx.array, e: mx.array | None) -> mx.array:
        """The offline forward; in eval mode, for a small input on the CPU, compiled and
        cached per input shape (:mod:`mlx_tcn._eval_compile`)."""
        if (
            self.compile_eval
            and not self.training
            and mx.default_device().type == mx.DeviceType.cpu
            and x.shape[0] * x.shape[1] * self._widest() <= MAX_VALUES
        ):
            compiler = self.__dict__.get("_eval_compiler")
            if compiler is None or not compiler.serves(self):  # none yet, or a copy's
                # the method looked up on the model at each call (a subclass's override)
                compiler = EvalCompiler(self, lambda model, x, e: model._offline_eager(x, e))
                # object.__setattr__ keeps the cache out of the module's parameter tree.
                object.__setattr__(self, "_eval_compiler", compiler)
            return compiler(x, e)
        return self._offline_eager(x, e)

    def _widest(self) -> int:
        """The most channels of any layer's activation: inputs, blocks, projection."""
        cfg = self.tcn_config
        return max(cfg.num_inputs, *cfg.num_channels, cfg.output_projection or 0)

    def _offline_eager(self, x: mx.array, e: mx.array | None) -> mx.array:
        """The offline forward, split over the CPU lanes by :func:`split_forward`: by rows,
        except under a training-mode batch norm (its statistics span the whole batch), and in
        eval mode also by time, except with SE blocks (their squeeze reaches every earlier
        step)."""
        eval_mode = not self.training

        def forward(xs: mx.array, es: mx.array | None) -> mx.array:
            return self._forward(xs, es, None, eval_mode)[0]

        if self.use_norm == "batch_norm" and any(
            m.training for _, m in self.named_modules() if isinstance(m, nn.BatchNorm)
        ):
            return forward(x, e)
        return split_forward(forward, x, e, self._context() if eval_mode else None, self.modules)

    def _context(self) -> tuple[int, int] | None:
        """Input steps ``(before, after)`` an output step reads beyond itself; ``None`` when
        unbounded (SE blocks)."""
        if self.use_se:
            return None
        convs = [c for block in self.network for c in (block.conv1, block.conv2)]
        return (
            sum(c.padder.left_padding for c in convs),
            sum(c.padder.right_padding for c in convs),
        )

    def __call__(
        self,
        x: mx.array,
        embeddings: list[mx.array] | mx.array | None = None,
        inference: bool = False,
        in_buffer: list[BufferIO] | BufferIO | None = None,
    ) -> mx.array:
        """Run the network on ``x`` of shape ``(batch, length, num_inputs)``.

        Args:
            x: the input, channels-last.
            embeddings: one array per ``embedding_shapes`` entry, ``(batch, features)``
                (broadcast over time) or ``(batch, length, features)``.
            inference: treat ``x`` as the next chunk of a stream (causal models only); also
                computes in inference mode (no dropout, batch-norm running statistics)
                without changing ``model.training``.
            in_buffer: where the stream's state lives with ``inference=True``: ``None`` (in
                the model; :meth:`reset_buffers` starts over), a list of ``2 * len(network)``
                :class:`BufferIO` (stepped after each call), or one :class:`BufferIO` used
                pytorch-tcn's way (call its ``step()`` between chunks).

        Returns:
            ``(batch, length, out_channels)``.
        """
        check_input(x, self.num_inputs)
        check_bool(inference, "inference")
        e = prepare_embeddings(embeddings, self.embedding_shapes, x, whole=not inference)
        return self._stateful(
            x,
            inference,
            in_buffer,
            offline=lambda: self._offline(x, e),
            step=lambda state: self._forward(x, e, state, True),
        )

    # -- the BufferIO stages: two per block, in the order pytorch-tcn reads them ---------------

    _kind = "model"

    def _stages(self, state: list[BlockState]) -> list[Any]:
        return [
            stage
            for block, s in zip(self.network, state, strict=True)
            for stage in block._stages(s)
        ]

    def _join(self, stages: list[Any]) -> list[BlockState]:
        return [block._join(stages[2 * i : 2 * i + 2]) for i, block in enumerate(self.network)]

    def _stage_count(self) -> int:
        return 2 * len(self.network)

    def _stage_help(self) -> str:
        return f"2 BufferIO per block, {self._stage_count()} for this model"

    def _require_causal(self, inference: bool) -> None:
        if self.causal:
            return
        if inference:
            raise ValueError(
                "inference=True streams chunk by chunk, which needs a causal model; this TCN "
                "was built with causal=False (call it without inference=True)"
            )
        raise ValueError("streaming needs a causal model; this TCN has causal=False")

    # -- explicit streaming ----------------------------------------------------------------

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> list[BlockState]:
        """The state of a fresh stream of ``batch_size`` rows of inputs of ``dtype``: per
        block, the last ``(k-1)*d`` input frames of each convolution (and SE running sums).

        Each buffer has the dtype of what its convolution reads (``dtype`` promoted by the
        weights before it: a bfloat16 stream through float32 weights holds float32 buffers
        after the first convolution), so the state keeps its dtypes from chunk to chunk.
        """
        self._require_causal(inference=False)
        check_int(batch_size, "batch_size", 1)
        state = []
        for block in self.network:
            state.append(block.init_state(batch_size, dtype))
            dtype = promoted_dtype(dtype, block)
        return state

    def stream(
        self,
        x: mx.array,
        state: list[BlockState],
        embeddings: list[mx.array] | mx.array | None = None,
    ) -> tuple[mx.array, list[BlockState]]:
        """Process the next chunk of a stream: ``y, state = model.stream(x, state)``.

        ``x`` is ``(batch, steps, num_inputs)`` with any ``steps >= 1``; ``y`` holds the
        outputs for exactly those steps, equal to the offline outputs of the whole sequence
        at those positions. Pure: nothing in the model changes, so the method can be wrapped
        in ``mx.compile`` or exported with ``mx.export_function``. It computes inference
        outputs (no dropout, batch-norm running statistics) whatever ``model.training`` says.
        """
        self._require_causal(inference=False)
        check_input(x, self.num_inputs)
        state = self._check_state(state, x.shape[0])
        e = prepare_embeddings(embeddings, self.embedding_shapes, x)
        return self._forward(x, e, state, True)

    def stream_step(self, compile: bool = True) -> Callable[..., tuple[mx.array, list]]:
        """A stream step for deployment: ``step(x, state, embeddings=None) -> (y, state)``.

        It runs a frozen copy of the model (made from its arrays, without a constructor call
        or a random draw, so it also works for subclasses) in eval mode with weight norm
        folded into plain weights (weight norm costs about a third of a small step
        otherwise) and each convolution's and linear layer's weight laid out once as the
        matrix its GEMM reads (see ``mlx_tcn._frozen``), compiled with
        ``mx.compile`` unless ``compile=False``. Later changes to this model's parameters do
        not reach the step: make a new one after training further.
        """
        frozen = folded_copy(self)  # from this model's own arrays; draws no random numbers
        frozen.eval()
        mx.eval(frozen.parameters())
        for layer in frozen.modules():  # GEMM matrices laid out once (see mlx_tcn._frozen)
            if isinstance(layer, TemporalConv1d):
                layer._freeze_matrix()
            elif isinstance(layer, nn.Linear):
                freeze_linear(layer)
        return mx.compile(frozen.stream) if compile else frozen.stream

    # -- save / load (see :mod:`mlx_tcn.serialization`) -------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path/config.json`` and ``path/model.safetensors`` (weights and batch-norm
        statistics; never streaming state)."""
        serialization.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TCN:
        """Rebuild a model saved with :meth:`save`: config, then a strict weight load.

        The model comes back in eval mode (no dropout, batch-norm running statistics).
        """
        return serialization.load(cls, path)
