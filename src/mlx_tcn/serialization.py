"""Saving and loading a TCN (``config.json`` + ``model.safetensors``), and the check that a
model's configuration describes its weights (weight norm on all convolutions or none)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import mlx.core as mx
from mlx.utils import tree_flatten

from .parametrizations import is_weight_normed

if TYPE_CHECKING:
    from .tcn import TCN

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "check_describable", "load", "save", "weight_norm_split"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

M = TypeVar("M", bound="TCN")


def weight_norm_split(model: TCN) -> tuple[list[str], list[str]]:
    """Names of the blocks' convolutions with and without weight norm."""
    normed, plain = [], []
    for i, block in enumerate(model.network):
        for name in ("conv1", "conv2"):
            (normed if is_weight_normed(block[name]) else plain).append(f"network.{i}.{name}")
    return normed, plain


def described_use_norm(model: TCN, use_norm: str | None) -> str | None:
    """``use_norm`` as the convolutions say: ``None`` once weight norm has been removed from
    all of them, ``'weight_norm'`` when all of them are weight-normalised."""
    normed, plain = weight_norm_split(model)
    if use_norm in ("weight_norm", None) and not (normed and plain):
        return "weight_norm" if normed else None
    return use_norm


def check_describable(model: TCN) -> None:
    """Raise ValueError if ``model.config`` cannot rebuild the model's parameters.

    That is a model with weight norm on some of its convolutions only (or on any, with
    ``use_norm='batch_norm'``/``'layer_norm'``): :func:`save` and
    :func:`mlx_tcn.to_pytorch_tcn` refuse it, because no constructor call builds it.
    """
    normed, plain = weight_norm_split(model)
    use_norm = model.tcn_config.use_norm
    for where, layer in model.named_modules():
        if not is_weight_normed(layer):
            continue
        dim = getattr(layer, "_weight_norm_dims", {}).get("weight", 0)
        if where not in normed or dim is None or dim % layer["weight_v"].ndim != 0:
            what = f"weight norm over dim={dim!r}" if where in normed else "weight norm"
            raise ValueError(
                f"{what} on {where}: no TCN configuration describes that (its weight norm is "
                f"over dim 0 of the blocks' convolutions); call model.remove_weight_norm() to "
                "fold it (outputs do not change)"
            )
    if normed and (plain or use_norm not in ("weight_norm", None)):
        where = f"but not on {plain}" if plain else f"of a use_norm={use_norm!r} model"
        raise ValueError(
            f"weight norm is on {normed} {where}; no TCN configuration describes that: "
            f"call model.remove_weight_norm() to fold it everywhere (outputs do not change)"
            + (", or weight-normalise every convolution" if plain else "")
        )


def save(model: TCN, path: str | os.PathLike) -> None:
    """Write ``path/config.json`` and ``path/model.safetensors`` (weights and batch-norm
    statistics; never streaming state); each file appears whole or not at all."""
    check_describable(model)
    config = model.config
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
    mx.save_safetensors(str(tmp_weights), dict(tree_flatten(model.parameters())))
    os.replace(tmp_weights, directory / WEIGHTS_FILE)
    os.replace(tmp_config, directory / CONFIG_FILE)


def _read_config(config_file: Path) -> dict[str, Any]:
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{config_file} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_file} must hold a JSON object, got {type(config).__name__}")
    return config


def load(cls: type[M], path: str | os.PathLike) -> M:
    """Rebuild a model saved with :func:`save`: ``cls(**config)``, then a strict weight
    load. The model comes back in eval mode (no dropout, batch-norm running statistics)."""
    directory = Path(path)
    config_file, weights_file = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for f in (config_file, weights_file):
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found: not a saved mlx-tcn model directory")
    config = _read_config(config_file)
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
