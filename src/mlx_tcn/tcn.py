"""TCN: a stack of TemporalBlocks; offline, training and exact streaming through one code path."""

from __future__ import annotations

import json
import math
import numbers
import operator
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from ._stateful import Stateful
from ._stream import check_bool, check_dropout, check_input, check_int, promoted_dtype
from .activations import check_activation, get_activation
from .block import (
    NORMS,
    BlockState,
    TemporalBlock,
    check_embedding_shapes,
    prepare_embeddings,
)
from .buffer import BufferIO
from .init import get_initializer
from .modules import ModuleList
from .parallel import split_forward
from .parametrizations import fold_weight_norm, folded_copy, is_weight_normed

__all__ = ["TCN", "TemporalBlock"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


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
            ``kaiming_normal``, ``he_uniform``, ``he_normal``, ``normal`` or ``uniform``.
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
        if kernel_initilaizer is not None:
            warnings.warn(
                "kernel_initilaizer is a misspelling kept for old code; use kernel_initializer",
                DeprecationWarning,
                stacklevel=2,
            )
            if kernel_initializer not in ("xavier_uniform", kernel_initilaizer):
                raise ValueError(
                    f"kernel_initializer={kernel_initializer!r} and kernel_initilaizer="
                    f"{kernel_initilaizer!r} disagree; pass only kernel_initializer"
                )
            kernel_initializer = kernel_initilaizer
        num_inputs = check_int(num_inputs, "num_inputs", 1)
        channels = self._int_list(num_channels, "num_channels")
        levels = len(channels)
        if isinstance(kernel_sizes, numbers.Integral) and not isinstance(kernel_sizes, bool):
            kernel_sizes = check_int(kernel_sizes, "kernel_sizes", 1)
            kernels = [kernel_sizes] * levels
        else:
            kernels = self._int_list(kernel_sizes, "kernel_sizes", levels)
        if dilations is not None and dilation_reset is not None:
            raise ValueError(
                f"give dilations or dilation_reset, not both (got dilations={dilations!r}, "
                f"dilation_reset={dilation_reset!r})"
            )
        if dilations is not None:
            dil = self._int_list(dilations, "dilations", levels)
        elif dilation_reset is not None:
            dilation_reset = check_int(dilation_reset, "dilation_reset", 1)
            period = int(math.log2(dilation_reset * 2))
            dil = [2 ** (i % period) for i in range(levels)]
        else:
            dil = [2**i for i in range(levels)]
        if use_norm not in NORMS:
            raise ValueError(f"use_norm must be one of {NORMS}, got {use_norm!r}")
        check_activation(activation, "activation")
        if output_activation is not None:
            check_activation(output_activation, "output_activation")
        get_initializer(kernel_initializer, activation)  # validates the name early
        check_bool(use_skip_connections, "use_skip_connections")
        se_reduction = check_int(se_reduction, "se_reduction", 1)
        check_bool(se_residual, "se_residual")
        if output_projection is not None:
            output_projection = check_int(output_projection, "output_projection", 1)
        shapes = check_embedding_shapes(embedding_shapes)
        dropout = check_dropout(dropout)  # a plain float in config.json, also from NumPy

        self._config = {
            "num_inputs": num_inputs,
            "num_channels": channels,
            "kernel_sizes": kernel_sizes if isinstance(kernel_sizes, int) else kernels,
            "dilations": None if dilations is None else dil,
            "dilation_reset": dilation_reset,
            "dropout": dropout,
            "causal": causal,
            "use_norm": use_norm,
            "activation": activation,
            "kernel_initializer": kernel_initializer,
            "use_skip_connections": use_skip_connections,
            "embedding_shapes": None if shapes is None else [list(s) for s in shapes],
            "embedding_mode": embedding_mode,
            "use_gate": use_gate,
            "use_se": use_se,
            "se_reduction": se_reduction,
            "se_residual": se_residual,
            "output_projection": output_projection,
            "output_activation": output_activation,
        }
        self.num_inputs = num_inputs
        self.num_channels = channels
        self.kernel_sizes = kernels
        self.dilations = dil
        self.causal = check_bool(causal, "causal")
        self.dropout = dropout
        self.use_norm = use_norm
        self.use_skip_connections = use_skip_connections
        self.use_se = use_se
        self.embedding_shapes = shapes

        self.network = ModuleList(
            TemporalBlock(
                n_inputs=num_inputs if i == 0 else channels[i - 1],
                n_outputs=channels[i],
                kernel_size=kernels[i],
                dilation=dil[i],
                dropout=dropout,
                causal=causal,
                use_norm=use_norm,
                activation=activation,
                kernel_initializer=kernel_initializer,
                embedding_shapes=shapes,
                embedding_mode=embedding_mode,
                use_gate=use_gate,
                use_se=use_se,
                se_reduction=se_reduction,
                se_residual=se_residual,
            )
            for i in range(levels)
        )
        if use_skip_connections:
            init = get_initializer(kernel_initializer, activation)
            skips = ModuleList()
            for width in channels:
                skip = nn.Linear(width, channels[-1]) if width != channels[-1] else None
                if skip is not None:
                    skip.weight = init(skip.weight.shape)
                skips.append(skip)
            self.downsample_skip_connection = skips
            self.activation_skip_out = get_activation(activation)
        if output_projection is not None:
            self.projection_out = nn.Linear(channels[-1], output_projection)
        if output_activation is not None:
            self.activation_out = get_activation(output_activation, "output_activation")

    @staticmethod
    def _int_list(values: object, name: str, length: int | None = None) -> list[int]:
        if isinstance(values, np.ndarray):
            values = values.tolist() if values.ndim == 1 else values
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"{name} must be a list of ints, got {values!r}")
        try:
            out = [operator.index(v) for v in values]
        except TypeError:
            raise TypeError(f"{name} must be a list of ints, got {values!r}") from None
        if not out:
            raise ValueError(f"{name} must not be empty, got {values!r}")
        if length is not None and len(out) != length:
            raise ValueError(
                f"{name} must have one entry per level ({length}), got {len(out)}: {values!r}"
            )
        for v in out:
            if v < 1:
                raise ValueError(f"{name} entries must be >= 1, got {values!r}")
        return out

    # -- properties -----------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments; ``TCN(**model.config)`` builds the same architecture.

        ``use_norm`` follows the convolutions: ``None`` once weight norm has been removed from
        all of them (:meth:`remove_weight_norm`, or :func:`mlx_tcn.remove_weight_norm` on
        each), ``'weight_norm'`` when all of them are weight-normalised.
        """
        config = {k: (list(v) if isinstance(v, list) else v) for k, v in self._config.items()}
        normed, plain = self._weight_norm_split()
        if config["use_norm"] in ("weight_norm", None) and not (normed and plain):
            config["use_norm"] = "weight_norm" if normed else None
        return config

    def _weight_norm_split(self) -> tuple[list[str], list[str]]:
        """Names of the blocks' convolutions with and without weight norm."""
        normed, plain = [], []
        for i, block in enumerate(self.network):
            for name in ("conv1", "conv2"):
                (normed if is_weight_normed(block[name]) else plain).append(f"network.{i}.{name}")
        return normed, plain

    def _check_describable(self) -> None:
        """Raise ValueError if :attr:`config` cannot rebuild this model's parameters.

        That is a model with weight norm on some of its convolutions only (or on any, with
        ``use_norm='batch_norm'``/``'layer_norm'``): :meth:`save` and
        :func:`mlx_tcn.to_pytorch_tcn` refuse it, because no constructor call builds it.
        """
        normed, plain = self._weight_norm_split()
        use_norm = self._config["use_norm"]
        if normed and (plain or use_norm not in ("weight_norm", None)):
            where = f"but not on {plain}" if plain else f"of a use_norm={use_norm!r} model"
            raise ValueError(
                f"weight norm is on {normed} {where}; no TCN configuration describes that: "
                f"call model.remove_weight_norm() to fold it everywhere (outputs do not change)"
                + (", or weight-normalise every convolution" if plain else "")
            )

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
        return self._config["output_projection"] or self.num_channels[-1]

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
                    skip = projection(skip)
                skip_sum = skip if skip_sum is None else skip_sum + skip
        if self.use_skip_connections:
            x = self.activation_skip_out(x if skip_sum is None else skip_sum + x)
        if "projection_out" in self:
            x = self.projection_out(x)
        # getattr, not `in self`: a plain function is an attribute, not a module child
        activation_out = getattr(self, "activation_out", None)
        if activation_out is not None:
            x = activation_out(x)
        return x, new_state

    def _offline(self, x: mx.array, e: mx.array | None) -> mx.array:
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
        return split_forward(
            forward, x, e, self._context() if eval_mode else None, list(self.modules())
        )

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
        self._check_state(state, x.shape[0])
        e = prepare_embeddings(embeddings, self.embedding_shapes, x)
        return self._forward(x, e, state, True)

    def _check_state(self, state: object, batch_size: int) -> None:
        if not isinstance(state, list) or len(state) != len(self.network):
            raise ValueError(
                f"state must be the list returned by init_state() with one entry per block "
                f"({len(self.network)}), got {type(state).__name__}"
                + (f" of length {len(state)}" if isinstance(state, list) else "")
            )
        super()._check_state(state, batch_size)

    def stream_step(self, compile: bool = True) -> Callable[..., tuple[mx.array, list]]:
        """A stream step for deployment: ``step(x, state, embeddings=None) -> (y, state)``.

        It runs a frozen copy of the model (made from its arrays, without a constructor call
        or a random draw, so it also works for subclasses) in eval mode with weight norm
        folded into plain weights (weight norm costs about a third of a small step
        otherwise), compiled with
        ``mx.compile`` unless ``compile=False``. Later changes to this model's parameters do
        not reach the step: make a new one after training further.
        """
        frozen = folded_copy(self)  # from this model's own arrays; draws no random numbers
        frozen.eval()
        mx.eval(frozen.parameters())
        return mx.compile(frozen.stream) if compile else frozen.stream

    # -- save / load --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path/config.json`` and ``path/model.safetensors`` (weights and batch-norm
        statistics; never streaming state)."""
        self._check_describable()
        config = self.config
        for key in ("activation", "output_activation"):
            if config[key] is not None and not isinstance(config[key], str):
                raise ValueError(
                    f"cannot save a model whose {key} is a callable ({config[key]!r}); "
                    f"only activation names can be stored in config.json"
                )
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        tmp_config = directory / (CONFIG_FILE + ".tmp")
        tmp_config.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        tmp_weights = directory / ("tmp." + WEIGHTS_FILE)
        mx.save_safetensors(str(tmp_weights), dict(tree_flatten(self.parameters())))
        os.replace(tmp_weights, directory / WEIGHTS_FILE)
        os.replace(tmp_config, directory / CONFIG_FILE)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TCN:
        """Rebuild a model saved with :meth:`save`: config, then a strict weight load.

        The model comes back in eval mode (no dropout, batch-norm running statistics).
        """
        directory = Path(path)
        config_file, weights_file = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        for f in (config_file, weights_file):
            if not f.is_file():
                raise FileNotFoundError(f"{f} not found: not a saved mlx-tcn model directory")
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{config_file} is not valid JSON: {err}") from None
        if not isinstance(config, dict):
            raise ValueError(f"{config_file} must hold a JSON object, got {type(config).__name__}")
        try:
            model = cls(**config)
        except TypeError as err:
            raise ValueError(f"{config_file} does not describe a TCN: {err}") from None
        try:
            model.load_weights(str(weights_file), strict=True)
        except Exception as err:
            raise ValueError(
                f"{weights_file} does not fit {config_file} (or is damaged): {err}"
            ) from None
        mx.eval(model.parameters())
        model.eval()  # ready for inference; call model.train() to train on
        return model
