"""Weight normalisation (Salimans & Kingma, 2016) for mlx-tcn's convolutions.

``weight_norm`` replaces a module's ``weight`` by two parameters, a magnitude ``weight_g``
and a direction ``weight_v``, with ``weight = weight_g * weight_v / ||weight_v||``, the norm
taken over every axis but ``dim``. The layers compute the weight from them on each call (once
per call, so once per training step), so there is no stale cached copy. Names follow PyTorch's
legacy ``weight_g`` / ``weight_v``; :mod:`mlx_tcn.interop` maps PyTorch's newer
``parametrizations.weight.original0/1`` onto them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import mlx.core as mx
import mlx.nn as nn

__all__ = [
    "compute_weight",
    "get_weight",
    "is_weight_normed",
    "remove_weight_norm",
    "shared_weights",
    "weight_norm",
]


def _norm_axes(ndim: int, dim: int | None) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    return tuple(a for a in range(ndim) if a != dim % ndim)


def compute_weight(g: mx.array, v: mx.array, dim: int | None = 0) -> mx.array:
    """``g * v / ||v||`` with the norm over every axis of ``v`` but ``dim``."""
    sq = mx.sum(v * v, axis=_norm_axes(v.ndim, dim), keepdims=True)
    return v * (g * mx.rsqrt(sq))


def is_weight_normed(module: nn.Module, name: str = "weight") -> bool:
    """Whether ``module``'s ``name`` is weight-normalised."""
    return f"{name}_v" in module


def get_weight(module: nn.Module, name: str = "weight") -> mx.array:
    """The effective weight of ``module``: the plain parameter, or the weight-normalised one."""
    shared = getattr(module, "_shared_weights", None)
    if shared is not None and name in shared:
        return shared[name]
    if f"{name}_v" in module:
        dim = getattr(module, "_weight_norm_dims", {}).get(name, 0)
        return compute_weight(module[f"{name}_g"], module[f"{name}_v"], dim)
    return module[name]


@contextmanager
def shared_weights(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Compute each weight-normalised weight of ``modules`` once for the whole block.

    Inside, :func:`get_weight` returns that one array, so a forward pass run several times
    (once per part of a batch split over parallel streams) normalises each weight once, and
    the gradients of all parts meet in it. The arrays are dropped on exit.
    """
    touched = []
    try:
        for module in modules:
            dims = getattr(module, "_weight_norm_dims", None)
            if not dims or getattr(module, "_shared_weights", None) is not None:
                continue
            weights = {name: get_weight(module, name) for name in dims}
            # object.__setattr__ keeps the arrays out of the module's parameter tree.
            object.__setattr__(module, "_shared_weights", weights)
            touched.append(module)
        yield
    finally:
        for module in touched:
            object.__setattr__(module, "_shared_weights", None)


def weight_norm(module: nn.Module, name: str = "weight", dim: int | None = 0) -> nn.Module:
    """Reparametrise ``module.<name>`` as magnitude and direction, in place.

    The effective weight is unchanged at the moment of the call. Works for modules whose
    ``__call__`` reads the weight through :func:`get_weight` (all mlx-tcn convolutions).

    Args:
        module: the layer, e.g. a :class:`mlx_tcn.TemporalConv1d`.
        name: the parameter to reparametrise.
        dim: the axis kept by the norm (``0``: one magnitude per output channel); ``None``
            normalises the whole tensor.

    Returns:
        ``module``, for chaining as in PyTorch.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an mlx.nn.Module, got {type(module).__name__}")
    if not getattr(module, "_supports_weight_norm", False):
        raise TypeError(
            f"weight_norm needs a layer that reads its weight through "
            f"mlx_tcn.parametrizations.get_weight (mlx-tcn's convolutions); "
            f"{type(module).__name__} does not"
        )
    if is_weight_normed(module, name):
        raise ValueError(f"{name!r} of {type(module).__name__} is already weight-normalised")
    if name not in module or not isinstance(module[name], mx.array):
        raise ValueError(f"{type(module).__name__} has no array parameter {name!r}")
    w = module[name]
    if dim is not None and not -w.ndim <= dim < w.ndim:
        raise ValueError(f"dim must be None or an axis of the {w.ndim}-d weight, got {dim}")
    g = mx.sqrt(mx.sum(w * w, axis=_norm_axes(w.ndim, dim), keepdims=True))
    del module[name]
    module[f"{name}_g"] = g
    module[f"{name}_v"] = w
    dims = dict(getattr(module, "_weight_norm_dims", {}))
    dims[name] = dim
    # object.__setattr__ keeps this plain dict out of the module's parameter tree.
    object.__setattr__(module, "_weight_norm_dims", dims)
    return module


def remove_weight_norm(module: nn.Module, name: str = "weight") -> nn.Module:
    """Fold ``weight_g`` and ``weight_v`` back into a plain ``weight``, in place."""
    if not is_weight_normed(module, name):
        raise ValueError(f"{name!r} of {type(module).__name__} is not weight-normalised")
    w = get_weight(module, name)
    del module[f"{name}_g"]
    del module[f"{name}_v"]
    module[name] = w
    dims = dict(module._weight_norm_dims)
    del dims[name]
    # object.__setattr__ keeps this plain dict out of the module's parameter tree.
    object.__setattr__(module, "_weight_norm_dims", dims)
    return module
