"""pytorch-tcn's TCN constructor arguments <-> mlx-tcn's: names, defaults, and what has no
counterpart on the other side."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mlx_tcn.activations import ACTIVATIONS

__all__ = ["PYTORCH_TCN_DEFAULTS", "config_to_pytorch_kwargs", "pytorch_kwargs_to_config"]

logger = logging.getLogger("mlx_tcn.interop")

# pytorch-tcn 1.2.3 TCN constructor arguments and their defaults (num_inputs and num_channels
# have none). They differ from mlx-tcn's: causal=True here.
PYTORCH_TCN_DEFAULTS: dict[str, Any] = {
    "kernel_size": 4,
    "dilations": None,
    "dilation_reset": None,
    "dropout": 0.1,
    "causal": True,
    "use_norm": "weight_norm",
    "activation": "relu",
    "kernel_initializer": "xavier_uniform",
    "use_skip_connections": False,
    "input_shape": "NCL",
    "embedding_shapes": None,
    "embedding_mode": "add",
    "use_gate": False,
    "lookahead": 0,
    "output_projection": None,
    "output_activation": None,
}
_REQUIRED = ("num_inputs", "num_channels")
# Arguments with the same name and meaning on both sides.
_SHARED = (
    "num_inputs",
    "num_channels",
    "dilations",
    "dilation_reset",
    "dropout",
    "causal",
    "use_norm",
    "activation",
    "kernel_initializer",
    "use_skip_connections",
    "embedding_mode",
    "use_gate",
    "output_projection",
    "output_activation",
)
# Our activation names are exactly pytorch-tcn's.
_PYTORCH_ACTIVATIONS = tuple(ACTIVATIONS)
_HE_TO_KAIMING = {"he_uniform": "kaiming_uniform", "he_normal": "kaiming_normal"}
_NO_KAIMING_ACTIVATIONS = ("gelu", "elu", "softmax", "log_softmax")


def pytorch_kwargs_to_config(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """mlx-tcn ``TCN`` arguments for pytorch-tcn ``TCN`` arguments (pytorch-tcn defaults)."""
    unknown = sorted(set(kwargs) - set(PYTORCH_TCN_DEFAULTS) - set(_REQUIRED))
    if unknown:
        raise TypeError(f"unknown pytorch-tcn TCN arguments: {unknown}")
    missing = [k for k in _REQUIRED if k not in kwargs]
    if missing:
        raise TypeError(f"missing required pytorch-tcn TCN arguments: {missing}")
    pt = {**PYTORCH_TCN_DEFAULTS, **kwargs}
    if pt["lookahead"] != 0:
        raise ValueError(f"lookahead must be 0 (as in pytorch-tcn), got {pt['lookahead']!r}")
    if pt["input_shape"] not in ("NCL", "NLC"):
        raise ValueError(f"input_shape must be 'NCL' or 'NLC', got {pt['input_shape']!r}")
    for name in ("activation", "output_activation"):
        value = pt[name]
        if value is not None and not isinstance(value, str):
            raise ValueError(
                f"{name} must be a pytorch-tcn activation name to convert, got {value!r}; "
                f"build the mlx-tcn model with the matching MLX activation instead"
            )
    config = {name: pt[name] for name in _SHARED}  # TCN checks the values, naming them
    if pt["dilations"] is not None:  # pytorch-tcn then ignores dilation_reset
        config["dilation_reset"] = None
    config["kernel_sizes"] = pt["kernel_size"]
    # (C,), (C, None) and (C, T) are kept as given; TCN checks them.
    config["embedding_shapes"] = pt["embedding_shapes"]
    return config


def config_to_pytorch_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """pytorch-tcn ``TCN`` arguments for an mlx-tcn model config; ValueError if it has none."""
    if config.get("use_se"):
        raise ValueError("use_se=True has no pytorch-tcn equivalent (pytorch-tcn has no SE blocks)")
    for name in ("activation", "output_activation"):
        value = config.get(name)
        if value is not None and value not in _PYTORCH_ACTIVATIONS:
            raise ValueError(
                f"{name}={value!r} has no pytorch-tcn equivalent; "
                f"pytorch-tcn names: {list(_PYTORCH_ACTIVATIONS)}"
            )
    kernel_sizes = config["kernel_sizes"]
    if isinstance(kernel_sizes, (list, tuple)):
        if len(set(kernel_sizes)) != 1:
            raise ValueError(
                f"kernel_sizes={list(kernel_sizes)!r}: pytorch-tcn has one kernel size for "
                f"all blocks"
            )
        kernel_sizes = kernel_sizes[0]
    kwargs = {name: config[name] for name in _SHARED}
    kwargs["num_channels"] = list(kwargs["num_channels"])
    if kwargs["dilations"] is not None:
        kwargs["dilations"] = list(kwargs["dilations"])
    kwargs["kernel_size"] = int(kernel_sizes)
    init = _HE_TO_KAIMING.get(kwargs["kernel_initializer"], kwargs["kernel_initializer"])
    if init.startswith("kaiming") and kwargs["activation"] in _NO_KAIMING_ACTIVATIONS:
        # pytorch-tcn refuses this pair; the initialiser does not matter for loaded weights.
        logger.warning(
            "kernel_initializer=%r with activation=%r is refused by pytorch-tcn; exporting "
            "kernel_initializer='xavier_uniform' (it only affects freshly built models)",
            kwargs["kernel_initializer"],
            kwargs["activation"],
        )
        init = "xavier_uniform"
    kwargs["kernel_initializer"] = init
    shapes = config.get("embedding_shapes")
    kwargs["embedding_shapes"] = None if shapes is None else [list(s) for s in shapes]
    return dict(sorted(kwargs.items()))
