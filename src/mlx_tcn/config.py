"""TCNConfig: a TCN's architecture as one frozen, validated value.

``TCN(...)`` builds a :class:`TCNConfig` from its arguments (validated here, once, with the
error messages the constructor documents) and builds its layers from it; ``model.config``
and ``config.json`` are :meth:`TCNConfig.to_dict`, so ``TCN(**model.config)`` and old saved
models rebuild the same architecture. The checks a :class:`mlx_tcn.TemporalBlock` built on
its own also needs (``check_norm``, ``check_embedding_mode``) live here too, written once.
"""

from __future__ import annotations

import math
import numbers
import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ._stream import check_bool, check_dropout, check_int
from .activations import check_activation
from .embeddings import EmbeddingShape, check_embedding_shapes
from .init import get_initializer

__all__ = ["EMBEDDING_MODES", "NORMS", "TCNConfig", "check_embedding_mode", "check_norm"]

NORMS = ("batch_norm", "layer_norm", "weight_norm", None)
EMBEDDING_MODES = ("add", "concat")

Activation = str | Callable


def check_norm(use_norm: object) -> str | None:
    """Return ``use_norm`` if it names a normalisation (or is ``None``), else raise."""
    if use_norm not in NORMS:
        raise ValueError(f"use_norm must be one of {NORMS}, got {use_norm!r}")
    return use_norm  # type: ignore[return-value]


def check_embedding_mode(embedding_mode: object) -> str:
    """Return ``embedding_mode`` if it is ``'add'`` or ``'concat'``, else raise."""
    if embedding_mode not in EMBEDDING_MODES:
        raise ValueError(f"embedding_mode must be one of {EMBEDDING_MODES}, got {embedding_mode!r}")
    return embedding_mode  # type: ignore[return-value]


def int_list(values: object, name: str, length: int | None = None) -> list[int]:
    """``values`` as a non-empty list of ints ``>= 1`` (one per level when ``length``)."""
    if isinstance(values, np.ndarray):
        values = values.tolist() if values.ndim == 1 else values
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of ints, got {values!r}")
    try:
        if any(isinstance(v, (bool, np.bool_)) for v in values):
            raise TypeError  # True is not a channel count
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


def resolve_initializer(
    kernel_initializer: str, kernel_initilaizer: str | None, alias: str = "kernel_initilaizer"
) -> str:
    """The initialiser name, accepting pytorch-tcn's misspelt keywords with a warning
    (``alias``: ``kernel_initilaizer``, its ``TCN``'s, or ``kerner_initializer``, its
    ``TemporalBlock``'s)."""
    if kernel_initilaizer is None:
        return kernel_initializer
    warnings.warn(
        f"{alias} is a misspelling kept for old code; use kernel_initializer",
        DeprecationWarning,
        stacklevel=3,
    )
    if kernel_initializer not in ("xavier_uniform", kernel_initilaizer):
        raise ValueError(
            f"kernel_initializer={kernel_initializer!r} and {alias}="
            f"{kernel_initilaizer!r} disagree; pass only kernel_initializer"
        )
    return kernel_initilaizer


@dataclass(frozen=True)
class TCNConfig:
    """The arguments of :class:`mlx_tcn.TCN` (same names, same meaning), validated.

    ``kernel_sizes``, ``dilations`` and ``dilation_reset`` are kept as given (an int stays an
    int, so ``config.json`` is unchanged); :attr:`kernels` and :attr:`dilation_list` are the
    per-level values the layers are built from.
    """

    num_inputs: int
    num_channels: tuple[int, ...]
    kernel_sizes: int | tuple[int, ...] = 4
    dilations: tuple[int, ...] | None = None
    dilation_reset: int | None = None
    dropout: float = 0.1
    causal: bool = False
    use_norm: str | None = "weight_norm"
    activation: Activation = "relu"
    kernel_initializer: str = "xavier_uniform"
    use_skip_connections: bool = False
    embedding_shapes: tuple[EmbeddingShape, ...] | None = None
    embedding_mode: str = "add"
    use_gate: bool = False
    use_se: bool = False
    se_reduction: int = 8
    se_residual: bool = False
    output_projection: int | None = None
    output_activation: Activation | None = None

    def __post_init__(self) -> None:
        for name, value in self._checked().items():
            object.__setattr__(self, name, value)

    def _checked(self) -> dict[str, Any]:
        """Every field validated and normalised (NumPy scalars to Python, lists to tuples),
        in the order the constructor has always reported errors."""
        out: dict[str, Any] = {"num_inputs": check_int(self.num_inputs, "num_inputs", 1)}
        channels = int_list(self.num_channels, "num_channels")
        out["num_channels"] = tuple(channels)
        k = self.kernel_sizes
        if isinstance(k, numbers.Integral) and not isinstance(k, bool):
            out["kernel_sizes"] = check_int(k, "kernel_sizes", 1)
        else:
            out["kernel_sizes"] = tuple(int_list(k, "kernel_sizes", len(channels)))
        out.update(self._checked_dilations(len(channels)))
        check_norm(self.use_norm)
        check_activation(self.activation, "activation")
        if self.output_activation is not None:
            check_activation(self.output_activation, "output_activation")
        get_initializer(self.kernel_initializer, self.activation)  # validates the name
        check_bool(self.use_skip_connections, "use_skip_connections")
        out["se_reduction"] = check_int(self.se_reduction, "se_reduction", 1)
        check_bool(self.se_residual, "se_residual")
        if self.output_projection is not None:
            out["output_projection"] = check_int(self.output_projection, "output_projection", 1)
        shapes = check_embedding_shapes(self.embedding_shapes)
        out["embedding_shapes"] = None if shapes is None else tuple(shapes)
        out["dropout"] = check_dropout(self.dropout)  # a plain float in config.json
        check_bool(self.causal, "causal")
        check_embedding_mode(self.embedding_mode)
        check_bool(self.use_gate, "use_gate")
        check_bool(self.use_se, "use_se")
        return out

    def _checked_dilations(self, levels: int) -> dict[str, Any]:
        if self.dilations is not None and self.dilation_reset is not None:
            raise ValueError(
                f"give dilations or dilation_reset, not both (got dilations={self.dilations!r}, "
                f"dilation_reset={self.dilation_reset!r})"
            )
        if self.dilations is not None:
            return {"dilations": tuple(int_list(self.dilations, "dilations", levels))}
        if self.dilation_reset is not None:
            return {"dilation_reset": check_int(self.dilation_reset, "dilation_reset", 1)}
        return {}

    # -- derived, per level ---------------------------------------------------------------

    @property
    def levels(self) -> int:
        return len(self.num_channels)

    @property
    def kernels(self) -> list[int]:
        """The kernel size of each block."""
        k = self.kernel_sizes
        return [k] * self.levels if isinstance(k, int) else list(k)

    @property
    def dilation_list(self) -> list[int]:
        """The dilation of each block: ``dilations``, pytorch-tcn's ``dilation_reset`` rule
        ``2**(i % int(log2(2 * r)))``, or ``2**i``."""
        if self.dilations is not None:
            return list(self.dilations)
        if self.dilation_reset is not None:
            period = int(math.log2(self.dilation_reset * 2))
            return [2 ** (i % period) for i in range(self.levels)]
        return [2**i for i in range(self.levels)]

    def block_kwargs(self, i: int) -> dict[str, Any]:
        """The :class:`mlx_tcn.TemporalBlock` arguments of block ``i``."""
        return {
            "n_inputs": self.num_inputs if i == 0 else self.num_channels[i - 1],
            "n_outputs": self.num_channels[i],
            "kernel_size": self.kernels[i],
            "dilation": self.dilation_list[i],
            "dropout": self.dropout,
            "causal": self.causal,
            "use_norm": self.use_norm,
            "activation": self.activation,
            "kernel_initializer": self.kernel_initializer,
            "embedding_shapes": None
            if self.embedding_shapes is None
            else list(self.embedding_shapes),
            "embedding_mode": self.embedding_mode,
            "use_gate": self.use_gate,
            "use_se": self.use_se,
            "se_reduction": self.se_reduction,
            "se_residual": self.se_residual,
        }

    def to_dict(self) -> dict[str, Any]:
        """The constructor arguments as JSON-ready values (lists, not tuples): the format of
        ``config.json`` and of ``model.config``."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("num_channels", "kernel_sizes", "dilations"):
            if isinstance(out[key], tuple):
                out[key] = list(out[key])
        if out["embedding_shapes"] is not None:
            out["embedding_shapes"] = [list(s) for s in out["embedding_shapes"]]
        return out
