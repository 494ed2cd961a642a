"""Weight initialisers and ``calculate_gain`` for MLX weights.

(Over 300 lines: eight public initialisers with the torch.nn.init docs users port from, and
the one gain rule they share.)

Every initialiser has the signature ``f(shape, *, <options>, dtype=mx.float32, key=None)`` and
returns a new :class:`mlx.core.array`; nothing is modified in place (MLX arrays are immutable).

Fans are computed for MLX's own weight layouts:

* ``nn.Linear`` weight ``(out, in)``: ``fan_in = in``, ``fan_out = out``;
* convolution weight ``(out, k, in)`` (channels-last, ``NLC``): ``fan_in = in * k`` and
  ``fan_out = out * k``. More generally ``(out, *spatial, in)`` multiplies both by the product of
  the spatial sizes.

These are the same numbers PyTorch computes for its ``(out, in, k)`` layout, so a given
initialiser draws from the same distribution here as in ``torch.nn.init``.

:func:`get_initializer` turns a name such as ``"xavier_uniform"`` plus a TCN activation into an
initialiser with the gain chosen the way pytorch-tcn 1.2.3 chooses it (see its docstring for the
two places where we deliberately differ).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import numpy as np

__all__ = [
    "INITIALIZERS",
    "calculate_gain",
    "get_initializer",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
]

_LINEAR_NAMES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)

# Activations pytorch-tcn accepts for which torch.nn.init.calculate_gain has no value.
_NO_GAIN_ACTIVATIONS = ("gelu", "elu", "softmax", "log_softmax")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain for a nonlinearity, with the values of ``torch.nn.init.calculate_gain``.

    ==================  =========================================
    nonlinearity        gain
    ==================  =========================================
    linear, conv*,      :math:`1`
    conv_transpose*,
    sigmoid
    tanh                :math:`5/3`
    relu                :math:`\\sqrt{2}`
    leaky_relu          :math:`\\sqrt{2 / (1 + \\text{slope}^2)}`
    selu                :math:`3/4`
    ==================  =========================================

    Args:
        nonlinearity: name of the nonlinearity (lower case, as above).
        param: negative slope for ``"leaky_relu"`` (default ``0.01``); ignored otherwise.

    Returns:
        The gain as a Python float.

    Raises:
        TypeError: if ``nonlinearity`` is not a string, or ``param`` is not a number.
        ValueError: if ``nonlinearity`` is not one of the names above.
    """
    if not isinstance(nonlinearity, str):
        raise TypeError(f"nonlinearity must be a string, got {nonlinearity!r}")
    if nonlinearity in _LINEAR_NAMES:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, (int, float)):
            raise TypeError(f"param (negative slope) must be a number, got {param!r}")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    valid = ", ".join((*_LINEAR_NAMES, "tanh", "relu", "leaky_relu", "selu"))
    raise ValueError(f"Unsupported nonlinearity {nonlinearity!r}; expected one of: {valid}")


def _check_shape(shape: tuple[int, ...], min_ndim: int) -> tuple[int, ...]:
    """Validate ``shape`` (a sequence of positive ints with at least ``min_ndim`` entries)."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}") from None
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"shape must contain non-negative ints, got {shape!r}")
    if len(shape) < min_ndim:
        raise ValueError(
            f"shape needs at least {min_ndim} dimensions to compute fan_in/fan_out, got {shape!r}"
        )
    return shape


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` for an MLX weight of layout ``(out, *spatial, in)``."""
    receptive = math.prod(shape[1:-1])
    return shape[-1] * receptive, shape[0] * receptive


def _check_number(name: str, value: float) -> float:
    """``value`` as a finite float (NumPy numbers included), else raise naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _check_nonnegative(name: str, value: float) -> float:
    value = _check_number(name, value)
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def _check_dtype(dtype: object) -> mx.Dtype:
    if not isinstance(dtype, mx.Dtype) or not mx.issubdtype(dtype, mx.floating):
        raise TypeError(
            f"dtype must be an MLX floating-point dtype (mx.float32, ...), got {dtype!r}"
        )
    return dtype


def _uniform(shape: tuple[int, ...], bound: float, dtype: mx.Dtype, key: mx.array | None):
    return mx.random.uniform(-bound, bound, shape, dtype=_check_dtype(dtype), key=key)


def _normal(shape: tuple[int, ...], std: float, dtype: mx.Dtype, key: mx.array | None):
    return mx.random.normal(shape, dtype=_check_dtype(dtype), scale=std, key=key)


def xavier_uniform(
    shape: tuple[int, ...],
    *,
    gain: float = 1.0,
    dtype: mx.Dtype = mx.float32,
    key: mx.array | None = None,
) -> mx.array:
    """Glorot/Xavier uniform initialiser.

    Samples :math:`U(-b, b)` with :math:`b = \\text{gain}\\sqrt{6 / (\\text{fan\\_in} +
    \\text{fan\\_out})}` (Glorot & Bengio, 2010).

    Args:
        shape: weight shape, ``(out, in)`` or ``(out, k, in)``; at least 2-D.
        gain: scaling factor, usually :func:`calculate_gain` of the activation.
        dtype: dtype of the result.
        key: optional PRNG key (``mx.random.key``); the global generator otherwise.
    """
    shape = _check_shape(shape, 2)
    gain = _check_nonnegative("gain", gain)
    fan_in, fan_out = _fans(shape)
    std = gain * math.sqrt(2.0 / max(fan_in + fan_out, 1))
    return _uniform(shape, math.sqrt(3.0) * std, dtype, key)


def xavier_normal(
    shape: tuple[int, ...],
    *,
    gain: float = 1.0,
    dtype: mx.Dtype = mx.float32,
    key: mx.array | None = None,
) -> mx.array:
    """Glorot/Xavier normal initialiser.

    Samples :math:`N(0, \\sigma^2)` with :math:`\\sigma = \\text{gain}\\sqrt{2 / (\\text{fan\\_in}
    + \\text{fan\\_out})}` (Glorot & Bengio, 2010).

    Args:
        shape: weight shape, ``(out, in)`` or ``(out, k, in)``; at least 2-D.
        gain: scaling factor, usually :func:`calculate_gain` of the activation.
        dtype: dtype of the result.
        key: optional PRNG key; the global generator otherwise.
    """
    shape = _check_shape(shape, 2)
    gain = _check_nonnegative("gain", gain)
    fan_in, fan_out = _fans(shape)
    return _normal(shape, gain * math.sqrt(2.0 / max(fan_in + fan_out, 1)), dtype, key)


def _kaiming_std(shape: tuple[int, ...], a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, _check_number("a", a)) / math.sqrt(max(fan, 1))


def kaiming_uniform(
    shape: tuple[int, ...],
    *,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    dtype: mx.Dtype = mx.float32,
    key: mx.array | None = None,
) -> mx.array:
    """He/Kaiming uniform initialiser (``he_uniform`` is the same function).

    Samples :math:`U(-b, b)` with :math:`b = \\text{gain}\\sqrt{3 / \\text{fan}}`, where
    ``gain = calculate_gain(nonlinearity, a)`` (He et al., 2015). As in ``torch.nn.init``, the
    default ``nonlinearity="leaky_relu"`` with ``a=0`` gives the ReLU gain :math:`\\sqrt{2}`.

    Args:
        shape: weight shape, ``(out, in)`` or ``(out, k, in)``; at least 2-D.
        a: negative slope used for ``"leaky_relu"``.
        mode: ``"fan_in"`` (preserves forward variance) or ``"fan_out"`` (backward).
        nonlinearity: a name accepted by :func:`calculate_gain`.
        dtype: dtype of the result.
        key: optional PRNG key; the global generator otherwise.
    """
    shape = _check_shape(shape, 2)
    std = _kaiming_std(shape, a, mode, nonlinearity)
    return _uniform(shape, math.sqrt(3.0) * std, dtype, key)


def kaiming_normal(
    shape: tuple[int, ...],
    *,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    a: float = 0.0,
    key: mx.array | None = None,
    dtype: mx.Dtype = mx.float32,
) -> mx.array:
    """He/Kaiming normal initialiser (``he_normal`` is the same function).

    Samples :math:`N(0, \\sigma^2)` with :math:`\\sigma = \\text{gain} / \\sqrt{\\text{fan}}`,
    where ``gain = calculate_gain(nonlinearity, a)`` (He et al., 2015).

    Arguments as for :func:`kaiming_uniform` (all keyword-only but ``shape``).
    """
    shape = _check_shape(shape, 2)
    return _normal(shape, _kaiming_std(shape, a, mode, nonlinearity), dtype, key)


he_uniform = kaiming_uniform
he_normal = kaiming_normal


def normal(
    shape: tuple[int, ...],
    *,
    mean: float = 0.0,
    std: float = 0.01,
    dtype: mx.Dtype = mx.float32,
    key: mx.array | None = None,
) -> mx.array:
    """Normal initialiser :math:`N(\\text{mean}, \\text{std}^2)`.

    The default ``std=0.01`` is the one the original TCN code (Bai et al., 2018) uses for its
    convolution weights. pytorch-tcn's ``kernel_initializer="normal"`` calls
    ``torch.nn.init.normal_`` with its default ``std=1``, and so does a ``TCN`` built with
    ``kernel_initializer="normal"`` (through :func:`get_initializer`), so that a fresh model
    starts from pytorch-tcn's distribution.

    Args:
        shape: any shape.
        mean: mean of the distribution.
        std: standard deviation, ``>= 0``.
        dtype: dtype of the result.
        key: optional PRNG key; the global generator otherwise.
    """
    shape = _check_shape(shape, 0)
    std = _check_nonnegative("std", std)
    mean = _check_number("mean", mean)
    return mx.random.normal(shape, dtype=_check_dtype(dtype), loc=mean, scale=std, key=key)


def uniform(
    shape: tuple[int, ...],
    *,
    a: float = 0.0,
    b: float = 1.0,
    dtype: mx.Dtype = mx.float32,
    key: mx.array | None = None,
) -> mx.array:
    """Uniform initialiser :math:`U(a, b)` (defaults as ``torch.nn.init.uniform_``).

    Args:
        shape: any shape.
        a: lower bound.
        b: upper bound, ``>= a``.
        dtype: dtype of the result.
        key: optional PRNG key; the global generator otherwise.
    """
    shape = _check_shape(shape, 0)
    lo, hi = _check_number("a", a), _check_number("b", b)
    if not lo <= hi:
        raise ValueError(f"uniform needs a <= b, got a={a!r}, b={b!r}")
    return mx.random.uniform(lo, hi, shape, dtype=_check_dtype(dtype), key=key)


INITIALIZERS: dict[str, Callable[..., mx.array]] = {
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "kaiming_uniform": kaiming_uniform,
    "kaiming_normal": kaiming_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "normal": normal,
    "uniform": uniform,
}
"""Initialiser names accepted by :func:`get_initializer` (and ``TCN(kernel_initializer=...)``)."""


def _initializer_kwargs(name: str, activation: Any) -> dict[str, Any]:
    """The gain keyword arguments pytorch-tcn would pass for ``name`` and ``activation``."""
    if name == "normal":  # pytorch-tcn calls torch.nn.init.normal_ with its defaults
        return {"std": 1.0}
    if not isinstance(activation, str):
        # pytorch-tcn passes no gain for module/callable activations; so do we.
        return {}
    if name.startswith("xavier"):
        if activation in _NO_GAIN_ACTIVATIONS:
            return {"gain": math.sqrt(2.0)}
        return {"gain": calculate_gain(activation)}
    if name.startswith(("kaiming", "he_")):
        if activation in _NO_GAIN_ACTIVATIONS:
            return {"nonlinearity": "relu"}
        calculate_gain(activation)  # unknown names fail here, naming the activation
        return {"nonlinearity": activation}
    return {}


def get_initializer(name: str, activation: Any = "relu") -> Callable[..., mx.array]:
    """Initialiser called ``name`` with the gain pytorch-tcn 1.2.3 uses for ``activation``.

    The rule (pytorch-tcn's ``get_kernel_init_fn``):

    * ``xavier_*``: ``gain = calculate_gain(activation)``, and :math:`\\sqrt{2}` for the
      activations ``calculate_gain`` does not know (``gelu``, ``elu``, ``softmax``,
      ``log_softmax``).
    * ``kaiming_*`` / ``he_*``: ``nonlinearity=activation`` (with ``a=0``, so ``leaky_relu``
      gets the ReLU gain, as in torch). For ``gelu``, ``elu``, ``softmax`` and ``log_softmax``
      the ReLU gain is used; **pytorch-tcn raises a ValueError there instead**.
    * ``normal`` / ``uniform``: no gain; torch's defaults, as pytorch-tcn calls them:
      :math:`N(0, 1)` (``std=1``, not :func:`normal`'s own default of 0.01) and
      :math:`U(0, 1)`.
    * A callable or module activation (anything that is not a string) gets no gain, i.e. the
      initialiser's defaults (``gain=1`` for xavier, the ReLU gain for kaiming), as in
      pytorch-tcn.

    Args:
        name: one of :data:`INITIALIZERS` (``xavier_uniform``, ``xavier_normal``,
            ``kaiming_uniform``, ``kaiming_normal``, ``he_uniform``, ``he_normal``, ``normal``,
            ``uniform``).
        activation: the TCN activation: a name such as ``"relu"``, or a callable/module.

    Returns:
        ``init(shape, dtype=mx.float32, *, key=None) -> mx.array``.

    Raises:
        ValueError: for an unknown initialiser name (the message lists the valid ones), or an
            unknown activation name.
    """
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(
            f"kernel_initializer must be one of {', '.join(INITIALIZERS)}; got {name!r}"
        )
    fn = INITIALIZERS[name]
    kwargs = _initializer_kwargs(name, activation)

    def init(
        shape: tuple[int, ...], dtype: mx.Dtype = mx.float32, *, key: mx.array | None = None
    ) -> mx.array:
        return fn(shape, dtype=dtype, key=key, **kwargs)

    init.__name__ = name
    init.__qualname__ = name
    init.__doc__ = (
        f"{name} initialiser with {kwargs or 'default arguments'} (from get_initializer)."
    )
    return init
