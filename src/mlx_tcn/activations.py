"""Activation functions by name, as pytorch-tcn accepts them, plus callables and modules."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn

from . import _fastmath

__all__ = ["ACTIVATIONS", "EXACT_ACTIVATIONS", "get_activation", "glu"]

Activation = Callable[[mx.array], mx.array]


def _log_softmax(x: mx.array) -> mx.array:
    """``log_softmax`` over the last axis. Over a single channel it is ``log(1) = 0`` (NaN
    where ``x`` is not finite), computed as ``x - x``: MLX 0.32's ``nn.log_softmax``, a
    shapeless compiled function, crashes the process (segmentation fault) on an axis of
    size 1."""
    if x.shape[-1] == 1:
        return x - x
    return nn.log_softmax(x, axis=-1)


# softmax and log_softmax normalise over channels, the last axis. (pytorch-tcn builds
# nn.Softmax() without a dim, which on (N, C, L) tensors normalises over the batch axis.)
EXACT_ACTIVATIONS: dict[str, Activation] = {
    "relu": nn.relu,
    "tanh": mx.tanh,
    "leaky_relu": nn.leaky_relu,
    "sigmoid": mx.sigmoid,
    "elu": _fastmath.elu_exact,  # mlx.nn.elu's values; its gradient is NaN from x ~ 88.7
    "gelu": nn.gelu,
    "selu": _fastmath.selu_exact,  # torch's constants: mlx.nn.selu rounds them
    "softmax": lambda x: mx.softmax(x, axis=-1),
    "log_softmax": _log_softmax,
}
# A block's activations by name: tanh, sigmoid, gelu, elu and selu vectorised on the CPU,
# 5-11x faster than MLX's element-by-element ones, within 4e-7 (tanh), 2.5e-7 (sigmoid),
# 1.5e-6 (gelu) and a few ulp (elu, selu) (mlx_tcn._fastmath). The output activation keeps
# EXACT_ACTIVATIONS: a loss may take the logarithm of a sigmoid's tiny values, which the
# fast form rounds to 0.
ACTIVATIONS: dict[str, Activation] = {
    **EXACT_ACTIVATIONS,
    "tanh": _fastmath.tanh,
    "sigmoid": _fastmath.sigmoid,
    "gelu": _fastmath.gelu,
    "elu": _fastmath.elu,
    "selu": _fastmath.selu,
}


def glu(x: mx.array) -> mx.array:
    """Gated linear unit over channels: ``a * sigmoid(b)`` with ``a, b`` the two channel halves."""
    a, b = mx.split(x, 2, axis=-1)
    return a * _fastmath.sigmoid(b)


def check_activation(activation: object, arg_name: str) -> None:
    """Raise if ``activation`` is neither a known name nor something callable."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"{arg_name} must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}"
            )
    elif not callable(activation):
        raise TypeError(
            f"{arg_name} must be a string, an mlx.nn.Module class or instance, or a callable, "
            f"got {activation!r} of type {type(activation).__name__}"
        )


def get_activation(
    activation: str | Callable, arg_name: str = "activation", exact: bool = False
) -> Activation:
    """Return a callable for ``activation``.

    Args:
        activation: a name from :data:`ACTIVATIONS`, an ``mlx.nn.Module`` subclass (a fresh
            instance is made, as pytorch-tcn does with ``torch.nn.Module`` classes), a module
            instance, or any callable mapping an array to an array.
        arg_name: the argument name used in error messages.
        exact: a name gives MLX's own function (:data:`EXACT_ACTIVATIONS`) rather than the
            vectorised one of :data:`ACTIVATIONS`.
    """
    check_activation(activation, arg_name)
    if isinstance(activation, str):
        return (EXACT_ACTIVATIONS if exact else ACTIVATIONS)[activation]
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation()
    return activation
