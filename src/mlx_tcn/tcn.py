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
from mlx.utils import tree_flatten, tree_map

from . import _backend
from ._stream import check_bool, check_dropout, check_input, check_int, check_state_batch
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
from .parametrizations import is_weight_normed, remove_weight_norm, shared_weights

__all__ = ["TCN", "TemporalBlock"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


# A part of a split batch has at least this many (row, step) pairs: below it the streams'
# hand-offs cost more than the parallel work saves.
_MIN_PART_STEPS = 1024


def _batch_parts(batch: int, length: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` rows of the batch per parallel CPU stream (one part: none)."""
    return _even_parts(batch, min(_backend.parallel_streams(), batch * length // _MIN_PART_STEPS))


def _time_parts(length: int, context: int, n: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: at most ``n`` parts of a sequence's output steps.

    Each part also reads ``context`` extra input steps, so a part is at least twice that
    long (the overlap costs at most a third of the gain) and ``_MIN_PART_STEPS``.
    """
    return _even_parts(length, min(n, length // max(_MIN_PART_STEPS, 2 * context)))


def _even_parts(total: int, n: int) -> list[tuple[int, int]]:
    """``total`` split into at most ``n`` near-equal ``(start, stop)`` parts (on the CPU)."""
    n = min(n, total)
    if n < 2 or mx.default_device().type != mx.DeviceType.cpu:
        return [(0, total)]
    edges = [total * i // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


class TCN(nn.Module):
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
        embedding_shapes: ``[(features,), ...]`` of conditioning inputs fed to every block.
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
        self.dropout = check_dropout(dropout)
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
        object.__setattr__(self, "_stream_state", None)

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
        """The constructor arguments; ``TCN(**model.config)`` builds the same architecture."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._config.items()}

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
        if self.use_se:
            return math.inf
        return 1 + sum(block.receptive_field - 1 for block in self.network)

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
        """The offline forward; on the CPU the work is split over parallel streams.

        MLX runs CPU operations one after another on one thread (only a GEMM inside uses
        more), so with ``MLX_TCN_THREADS`` streams (see :mod:`mlx_tcn._backend`) each part
        runs on its own stream, on its own core, elementwise work included:

        * a batch of several rows is split by rows. Each row is computed as unsplit; only
          the dropout masks are drawn per part. Not split: a training-mode batch norm (its
          statistics span the whole batch).
        * in eval mode, when there are more streams than parts of the batch (one long
          sequence, say), each part is also split by time. A time part reads the input
          steps its outputs depend on (the receptive field) beyond its edges, and keeps
          only the outputs that padding at those edges cannot reach, so the result is the
          unsplit one. Not split by time: SE blocks (their squeeze reaches every earlier
          step).
        """
        eval_mode = not self.training
        batch, length = x.shape[0], x.shape[1]
        if self.use_norm == "batch_norm" and any(
            m.training for _, m in self.named_modules() if isinstance(m, nn.BatchNorm)
        ):
            return self._forward(x, e, None, eval_mode)[0]
        rows = _batch_parts(batch, length)
        context = self._context() if eval_mode else None
        steps = [(0, length)]
        spare = _backend.parallel_streams() // len(rows)  # streams per part of the batch
        if context is not None and spare >= 2:
            steps = _time_parts(length, sum(context), spare)
        if len(rows) * len(steps) < 2:
            return self._forward(x, e, None, eval_mode)[0]
        left, right = context if context is not None else (0, 0)
        streams = iter(_backend.cpu_streams())
        row_outs = []
        with shared_weights(self.modules()):  # weight norm once, not once per part
            for lo, hi in rows:
                outs = []
                for a, b in steps:
                    start, stop = max(0, a - left), min(length, b + right)
                    with mx.stream(next(streams)):
                        part_e = None
                        if e is not None:
                            part_e = e[lo:hi] if e.shape[1] != length else e[lo:hi, start:stop]
                        y = self._forward(x[lo:hi, start:stop], part_e, None, eval_mode)[0]
                        outs.append(y if len(steps) == 1 else y[:, a - start : b - start])
                row_outs.append(outs[0] if len(outs) == 1 else mx.concatenate(outs, axis=1))
        return row_outs[0] if len(row_outs) == 1 else mx.concatenate(row_outs, axis=0)

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
        e = prepare_embeddings(embeddings, self.embedding_shapes, x)
        if not inference:
            if in_buffer is not None:
                raise ValueError("in_buffer is only used with inference=True")
            return self._offline(x, e)
        if not self.causal:
            raise ValueError(
                "inference=True streams chunk by chunk, which needs a causal model; this TCN "
                "was built with causal=False (call it without inference=True)"
            )
        if in_buffer is None:
            state = self._stream_state
            if state is None:
                state = self.init_state(x.shape[0], x.dtype)
            check_state_batch(state, x.shape[0])
            y, state = self._forward(x, e, state, True)
            object.__setattr__(self, "_stream_state", state)
            return y
        return self._call_with_buffers(x, e, in_buffer)

    def _call_with_buffers(self, x: mx.array, e, in_buffer) -> mx.array:
        # Stage 2*i holds block i's first convolution, stage 2*i+1 the rest of its state.
        n = len(self.network)
        if isinstance(in_buffer, BufferIO):
            ios = [in_buffer] * (2 * n)
        elif isinstance(in_buffer, (list, tuple)) and all(
            isinstance(b, BufferIO) for b in in_buffer
        ):
            if len(in_buffer) != 2 * n:
                raise ValueError(
                    f"in_buffer needs 2 BufferIO per block, {2 * n} for this model, got "
                    f"{len(in_buffer)}"
                )
            ios = list(in_buffer)
        else:
            raise TypeError(
                f"in_buffer must be a BufferIO or a list of BufferIO, got {in_buffer!r}"
            )
        fresh = self.init_state(x.shape[0], x.dtype)
        state = []
        for i in range(n):
            first = ios[2 * i].next_in_buffer()
            rest = ios[2 * i + 1].next_in_buffer()
            if first is None:
                first = fresh[i]["conv1"]
                ios[2 * i].append_internal_buffer(first)
            if rest is None:
                rest = {k: v for k, v in fresh[i].items() if k != "conv1"}
                ios[2 * i + 1].append_internal_buffer(rest)
            state.append({"conv1": first, **rest})
        check_state_batch(state, x.shape[0])
        y, new_state = self._forward(x, e, state, True)
        for i, s in enumerate(new_state):
            ios[2 * i].append_out_buffer(s["conv1"])
            ios[2 * i + 1].append_out_buffer({k: v for k, v in s.items() if k != "conv1"})
        if ios[0] is not ios[-1] or n == 0:
            for io in ios:
                io.step()
        return y

    # -- explicit streaming ----------------------------------------------------------------

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> list[BlockState]:
        """The state of a fresh stream of ``batch_size`` rows: per block, the last
        ``(k-1)*d`` input frames of each convolution (and SE running sums)."""
        if not self.causal:
            raise ValueError("streaming needs a causal model; this TCN has causal=False")
        check_int(batch_size, "batch_size", 1)
        return [block.init_state(batch_size, dtype) for block in self.network]

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
        in ``mx.compile`` or exported with ``mx.export_function``.
        """
        if not self.causal:
            raise ValueError("streaming needs a causal model; this TCN has causal=False")
        if self.training and (self.dropout > 0 or self.use_norm == "batch_norm"):
            raise ValueError(
                f"stream() computes inference outputs, but the model is in training mode with "
                f"dropout={self.dropout} and use_norm={self.use_norm!r}; call model.eval() first"
            )
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
        expected = self._state_shapes()
        got = dict(tree_flatten(state))
        if expected.keys() != got.keys():
            raise ValueError(
                f"state does not fit this model: missing {sorted(expected.keys() - got.keys())}, "
                f"unexpected {sorted(got.keys() - expected.keys())}"
            )
        for key, leaf in got.items():
            if leaf.shape[1:] != expected[key] or leaf.shape[0] != batch_size:
                raise ValueError(
                    f"state[{key!r}] has shape {tuple(leaf.shape)}, expected "
                    f"({batch_size}, {', '.join(map(str, expected[key]))}) for a chunk "
                    f"of batch size {batch_size}"
                )

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per state entry, its shape after the batch axis (fixed by the architecture)."""
        shapes = getattr(self, "_state_shapes_cache", None)
        if shapes is None:
            shapes = {k: tuple(v.shape[1:]) for k, v in tree_flatten(self.init_state(1))}
            object.__setattr__(self, "_state_shapes_cache", shapes)
        return shapes

    def stream_step(self, compile: bool = True) -> Callable[..., tuple[mx.array, list]]:
        """A stream step for deployment: ``step(x, state, embeddings=None) -> (y, state)``.

        It runs a frozen copy of the model in eval mode with weight norm folded into plain
        weights (weight norm costs about a third of a small step otherwise), compiled with
        ``mx.compile`` unless ``compile=False``. Later changes to this model's parameters do
        not reach the step: make a new one after training further.
        """
        frozen = type(self)(**self._config)
        frozen.update(tree_map(lambda a: a, self.parameters()))
        for _, module in frozen.named_modules():
            if is_weight_normed(module):
                remove_weight_norm(module)
        frozen.eval()
        mx.eval(frozen.parameters())
        return mx.compile(frozen.stream) if compile else frozen.stream

    def reset_state(self, state: list[BlockState], rows: object) -> list[BlockState]:
        """Return ``state`` with the given batch rows reset to a fresh stream.

        Args:
            state: a state from :meth:`init_state` / :meth:`stream`.
            rows: a row index, a list of row indices, or a boolean mask of length ``batch``.
        """
        leaves = tree_flatten(state)
        if not leaves:  # kernel size 1 everywhere and no SE: a stream has nothing to reset
            return state
        batch = leaves[0][1].shape[0]
        if isinstance(rows, mx.array) and rows.dtype == mx.bool_:
            if rows.shape != (batch,):
                raise ValueError(f"rows mask must have shape ({batch},), got {rows.shape}")
            mask = rows
        else:
            index = [rows] if isinstance(rows, int) else list(rows)
            for r in index:
                if isinstance(r, bool) or not isinstance(r, int) or not -batch <= r < batch:
                    raise ValueError(f"rows must be row indices in [0, {batch}), got {rows!r}")
            flags = [False] * batch
            for r in index:
                flags[r] = True
            mask = mx.array(flags)
        fresh = self.init_state(batch, leaves[0][1].dtype)

        def pick(new: mx.array, old: mx.array) -> mx.array:
            m = mask.reshape((batch,) + (1,) * (old.ndim - 1))
            return mx.where(m, new.astype(old.dtype), old)

        return tree_map(pick, fresh, state)

    def reset_buffers(self) -> None:
        """Forget the stream kept by ``inference=True`` calls (in the model and its layers)."""
        object.__setattr__(self, "_stream_state", None)
        for _, module in self.named_modules():
            if hasattr(module, "reset_buffer"):
                module.reset_buffer()

    # -- save / load --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path/config.json`` and ``path/model.safetensors`` (weights and batch-norm
        statistics; never streaming state)."""
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
            config = json.loads(config_file.read_text())
        except json.JSONDecodeError as err:
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
            raise ValueError(f"{weights_file} does not fit {config_file}: {err}") from None
        mx.eval(model.parameters())
        model.eval()  # ready for inference; call model.train() to train on
        return model
