"""The public conversions: :func:`from_pytorch_tcn` and :func:`to_pytorch_tcn`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from mlx_tcn import serialization
from mlx_tcn.tcn import TCN

from .args import config_to_pytorch_kwargs, pytorch_kwargs_to_config
from .files import load_state_dict_file
from .state import (
    change_layout,
    extra_torch_entries,
    fit_state_dict,
    follow_removed_weight_norm,
    to_numpy,
    torch_layout,
)

__all__ = ["from_pytorch_tcn", "to_pytorch_tcn"]


def from_pytorch_tcn(state_dict: Mapping[str, Any] | str | os.PathLike, **kwargs: Any) -> TCN:
    """Build an mlx-tcn :class:`~mlx_tcn.TCN` from a pytorch-tcn checkpoint.

    Args:
        state_dict: pytorch-tcn ``TCN.state_dict()``: a mapping of names to torch tensors,
            NumPy arrays or MLX arrays, or the path of a ``.pt``/``.pth`` file written by
            ``torch.save(model.state_dict(), path)`` or of a ``.safetensors`` file.
        **kwargs: the pytorch-tcn ``TCN`` constructor arguments, as written for PyTorch
            (``kernel_size``, not ``kernel_sizes``); omitted ones take pytorch-tcn's defaults
            (``causal=True``, ``kernel_size=4``, ``use_norm='weight_norm'``, ...). ``input_shape``
            is accepted and has no effect: mlx-tcn always takes (batch, length, channels).

    Returns:
        The model in eval mode, with every weight loaded. Its output for an input ``x`` of
        shape (batch, length, channels) equals pytorch-tcn's (transposed when it used 'NCL').
        Convolutions whose weight norm was removed in torch before saving (plain ``weight``
        in the state dict) come without weight norm, whatever ``use_norm`` says.

    Raises:
        ValueError: if the state dict does not fit the configuration; the message lists every
            missing, unexpected and mis-shaped key. Nothing is loaded in that case.
        TypeError: for unknown or missing constructor arguments.
    """
    if isinstance(state_dict, (str, os.PathLike)):
        state_dict = load_state_dict_file(Path(state_dict))
    elif not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict must be a mapping or a file path, got {type(state_dict).__name__}"
        )
    model = TCN(**pytorch_kwargs_to_config(kwargs))
    follow_removed_weight_norm(model, state_dict)
    model.load_weights(fit_state_dict(model, state_dict), strict=True)
    model.eval()
    mx.eval(model.parameters())
    return model


def to_pytorch_tcn(model: TCN) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Export an mlx-tcn model as a pytorch-tcn state dict and constructor arguments.

    Args:
        model: an mlx-tcn :class:`~mlx_tcn.TCN` that uses only features pytorch-tcn has.

    Returns:
        ``(state_dict, kwargs)``: NumPy arrays under pytorch-tcn 1.2.3 names and layouts,
        such that ``net = pytorch_tcn.TCN(**kwargs)`` then
        ``net.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()})``
        loads strictly and ``net`` computes the same outputs (in 'NCL' layout). Streaming
        buffers and ``num_batches_tracked`` are zeros; in ``embedding_mode='add'``
        pytorch-tcn's unused ``embedding_projection_2`` is filled with zeros.

    Raises:
        ValueError: for features pytorch-tcn lacks: SE blocks, activations that are not
            pytorch-tcn names (callables included), per-block kernel sizes, weight norm
            removed from some convolutions only (a model folded everywhere exports as
            ``use_norm=None``).
    """
    # weight norm on some convolutions only: no pytorch-tcn kwargs describe the model
    serialization.check_describable(model)
    kwargs = config_to_pytorch_kwargs(model.config)
    state_dict: dict[str, np.ndarray] = {}
    for name, value in tree_flatten(model.parameters()):
        torch_key, _, change = torch_layout(name, tuple(value.shape))
        array = change_layout(to_numpy(value), change, to_torch=True)
        state_dict[torch_key] = np.ascontiguousarray(array)
    state_dict.update(extra_torch_entries(model))
    return state_dict, kwargs
