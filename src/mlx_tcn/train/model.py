"""Model factory: a :class:`mlx_tcn.TCN` built from a :class:`TrainConfig` and a task."""

from __future__ import annotations

import logging
import math

import mlx.core as mx
import mlx.nn as nn

from .config import TrainConfig

__all__ = ["build_model", "model_kwargs", "parameter_count", "reference_init"]

logger = logging.getLogger(__name__)


def model_kwargs(cfg: TrainConfig, num_inputs: int, num_outputs: int) -> dict:
    """The ``TCN`` constructor arguments that ``cfg`` describes (heads: ``output_projection``)."""
    return dict(
        num_inputs=num_inputs,
        num_channels=[cfg.hidden] * cfg.levels,
        kernel_sizes=cfg.kernel_size,
        dilation_reset=cfg.dilation_reset,
        dropout=cfg.dropout,
        causal=cfg.causal,
        use_norm=cfg.use_norm,
        activation=cfg.activation,
        kernel_initializer=cfg.kernel_initializer,
        use_skip_connections=cfg.use_skip_connections,
        use_gate=cfg.use_gate,
        use_se=cfg.use_se,
        output_projection=num_outputs,
    )


def build_model(
    cfg: TrainConfig, num_inputs: int, num_outputs: int, zero_output: bool = False
) -> nn.Module:
    """Build the TCN for a run. Logs a warning when the receptive field is shorter than the
    sequences (the model then cannot see the whole input).

    Args:
        zero_output: start the output projection at zero (weights and bias), so that the
            untrained model outputs exactly 0 for any input: for an anchored forecast
            (:mod:`.window_norm`) that is the anchor's baseline forecast, which training then
            corrects. The other weights are drawn as usual (the same for a seed either way).
    """
    from mlx_tcn.tcn import TCN

    model = TCN(**model_kwargs(cfg, num_inputs, num_outputs))
    if cfg.reference_init:
        reference_init(model)
    if zero_output:
        head = model.projection_out
        head.weight = mx.zeros_like(head.weight)
        head.bias = mx.zeros_like(head.bias)
    rf = model.receptive_field
    if cfg.task in ("adding", "copy_memory", "forecast") and math.isfinite(rf):
        length = cfg.seq_len + (2 * cfg.memory_length if cfg.task == "copy_memory" else 0)
        if rf < length:
            logger.warning(
                "receptive field %d is shorter than the sequence length %d: the model cannot see "
                "the whole input (raise levels or kernel_size)",
                rf,
                length,
            )
    return model


def reference_init(model: nn.Module, std: float = 0.01) -> None:
    """Redraw the weights of the blocks' 1x1 downsamples and of the output head from
    ``N(0, std**2)``, in that order, as the TCN paper's reference code initialises them in
    its adding and copy-memory models (``cfg.reference_init``; its MNIST and music models
    leave the head at PyTorch's default). Their biases and every other parameter keep their
    draw.

    The reference code also calls ``normal_(0, 0.01)`` on its weight-normalised
    convolutions, but weight norm recomputes those weights from ``weight_g`` and ``weight_v``
    at the next forward, so they keep PyTorch's default draw: the one pytorch-tcn (and so
    mlx-tcn) gives them (docs/RESULTS.md, adding problem).
    """
    for block in model.network:
        if block.downsample is not None:
            block.downsample.weight = std * mx.random.normal(block.downsample.weight.shape)
    if "projection_out" in model:
        head = model.projection_out
        head.weight = std * mx.random.normal(head.weight.shape)


def parameter_count(model: nn.Module, trainable: bool = True) -> int:
    """Number of scalars in the trainable parameters (``trainable=False``: in all of them,
    batch-norm statistics and frozen weights included)."""
    from mlx.utils import tree_flatten

    params = model.trainable_parameters() if trainable else model.parameters()
    return sum(v.size for _, v in tree_flatten(params))
