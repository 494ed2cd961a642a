"""Weight normalisation (Salimans & Kingma, 2016) for mlx-tcn's convolutions.

``weight_norm`` replaces a module's ``weight`` by two parameters, a magnitude ``weight_g``
and a direction ``weight_v``, with ``weight = weight_g * weight_v / ||weight_v||``, the norm
taken over every axis but ``dim``. The layers compute the weight from them on each call (once
per call, so once per training step), so there is no stale cached copy. Names follow PyTorch's
legacy ``weight_g`` / ``weight_v``; :mod:`mlx_tcn.interop` maps PyTorch's newer
``parametrizations.weight.original0/1`` onto them.

Layers built on :class:`WeightNormSupport` (mlx-tcn's convolutions) show the effective weight
as ``layer.weight`` also while it is weight-normalised, read-only then, without adding a
``weight`` entry to ``parameters()``. :func:`fold_weight_norm` removes weight norm from every
layer of a model and :func:`folded_copy` makes a folded copy that shares the model's arrays.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

__all__ = [
    "WeightNormSupport",
    "compute_weight",
    "fold_weight_norm",
    "folded_copy",
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
    """``g * v / ||v||`` with the norm over every axis of ``v`` but ``dim``.

    Over the first axis (every layer's default) the scale multiplies a 2-D view of ``v``:
    inside ``mx.compile`` (a compiled training step, a compiled eval forward) MLX fuses
    ``v * (g * rsqrt(sq))`` into one kernel that takes the square root once per *element* of
    ``v``, about 3x the time of the eager form for a 256-channel weight; the reshape keeps
    the per-row scale out of that kernel (docs/performance_models.md, "Compiled eval
    forwards for small models").
    """
    sq = _sum_of_squares(v, dim)
    if v.ndim > 1 and dim is not None and dim % v.ndim == 0:
        rows = v.shape[0]
        scale = (g * mx.rsqrt(sq)).astype(v.dtype).reshape(rows, 1)
        return (v.reshape(rows, -1) * scale).reshape(v.shape)
    return v * (g * mx.rsqrt(sq)).astype(v.dtype)


def _sum_of_squares(v: mx.array, dim: int | None) -> mx.array:
    """``sum(v**2)`` over every axis but ``dim``, in float32 for a half-precision ``v``: in
    float16 it overflows once ``||v||`` passes 256 (torch sums in float32 too)."""
    if v.dtype in (mx.float16, mx.bfloat16):
        v = v.astype(mx.float32)
    return mx.sum(v * v, axis=_norm_axes(v.ndim, dim), keepdims=True)


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
    if name != "weight":  # the layers read only their weight through get_weight
        raise ValueError(
            f"weight_norm reparametrises a layer's weight (name='weight'), got name={name!r}"
        )
    w = module[name]
    if dim is not None and (
        isinstance(dim, (bool, np.bool_)) or not isinstance(dim, numbers.Integral)
    ):
        raise TypeError(f"dim must be None or an int axis, got {dim!r}")
    if dim is not None and not -w.ndim <= dim < w.ndim:
        raise ValueError(f"dim must be None or an axis of the {w.ndim}-d weight, got {dim}")
    g = mx.sqrt(_sum_of_squares(w, dim)).astype(w.dtype)
    frozen = name in module._no_grad  # a frozen weight stays frozen as g and v (as torch)
    del module[name]
    module[f"{name}_g"] = g
    module[f"{name}_v"] = w
    if frozen:
        module._no_grad.discard(name)
        module._no_grad.update({f"{name}_g", f"{name}_v"})
    dims = dict(getattr(module, "_weight_norm_dims", {}))
    dims[name] = dim
    # object.__setattr__ keeps this plain dict out of the module's parameter tree.
    object.__setattr__(module, "_weight_norm_dims", dims)
    return module


def remove_weight_norm(module: nn.Module, name: str = "weight") -> nn.Module:
    """Fold ``weight_g`` and ``weight_v`` back into a plain ``weight``, in place (frozen if
    both were)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an mlx.nn.Module, got {type(module).__name__}")
    if not is_weight_normed(module, name):
        raise ValueError(f"{name!r} of {type(module).__name__} is not weight-normalised")
    w = get_weight(module, name)
    parts = {f"{name}_g", f"{name}_v"}
    frozen = parts <= module._no_grad
    del module[f"{name}_g"]
    del module[f"{name}_v"]
    module[name] = w
    module._no_grad.difference_update(parts)
    if frozen:
        module._no_grad.add(name)
    dims = dict(module._weight_norm_dims)
    del dims[name]
    # object.__setattr__ keeps this plain dict out of the module's parameter tree.
    object.__setattr__(module, "_weight_norm_dims", dims)
    return module


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Remove weight norm from ``module`` and every layer inside it, in place.

    The model-level counterpart of :func:`remove_weight_norm` (which, as PyTorch's, acts on
    one layer); outputs are unchanged. Returns ``module``.
    """
    for _, layer in module.named_modules():
        for name in list(getattr(layer, "_weight_norm_dims", {})):
            remove_weight_norm(layer, name)
    return module


def copy_tree(value: Any) -> Any:
    """A copy of a module tree: new modules, lists and dicts; the same arrays and objects."""
    if isinstance(value, nn.Module):
        new = type(value).__new__(type(value))
        for key, attr in value.__dict__.items():  # _training, _no_grad, _weight_norm_dims, ...
            object.__setattr__(new, key, copy.copy(attr) if isinstance(attr, (set, dict)) else attr)
        for key, child in value.items():
            dict.__setitem__(new, key, copy_tree(child))
        return new
    if isinstance(value, list):  # ModuleList or list
        return type(value)(copy_tree(v) for v in value)
    if type(value) is dict:
        return {k: copy_tree(v) for k, v in value.items()}
    if type(value) is tuple:
        return tuple(copy_tree(v) for v in value)
    return value


def folded_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with weight norm folded into plain weights; ``module`` is unchanged.

    The copy is made without calling any constructor, so it draws no random numbers (the
    random stream of a training run is untouched) and works for any subclass; it shares the
    arrays that folding does not replace (MLX arrays are immutable, so this is safe).
    """
    return fold_weight_norm(copy_tree(module))


class WeightNormSupport(nn.Module):
    """Base of layers that read their weight through :func:`get_weight`.

    ``layer.weight`` is the effective weight: the plain parameter, or ``g * v / ||v||``
    while weight-normalised. In that state it is computed, so assigning to it raises
    ``AttributeError`` (set ``weight_g``/``weight_v``, or :func:`remove_weight_norm` first);
    ``parameters()`` and saved files keep ``weight_g``/``weight_v`` only.
    """

    _supports_weight_norm = True

    @property
    def weight(self) -> mx.array:
        """The effective weight (read-only while weight-normalised)."""
        if "weight" not in self and not is_weight_normed(self):
            raise AttributeError(f"{type(self).__name__} has no weight")
        return get_weight(self)

    def __setattr__(self, key: str, val: Any) -> None:
        if key != "weight":
            super().__setattr__(key, val)
        elif is_weight_normed(self):
            raise AttributeError(
                f"the weight of this {type(self).__name__} is weight-normalised: it is computed "
                f"from weight_g and weight_v; set those, or call "
                f"mlx_tcn.remove_weight_norm(layer) first"
            )
        elif isinstance(val, mx.array):
            self["weight"] = val  # a parameter, where nn.Module would put it
        else:
            raise TypeError(f"weight must be an mlx.core.array, got {type(val).__name__}")
