"""tanh, the sigmoid, erf and GELU as arithmetic the CPU can vectorise.

MLX's CPU backend computes ``mx.tanh``, ``mx.sigmoid``, ``mx.exp`` and ``mx.erf`` one
element at a time on x86 (its SIMD width there is 1, and each element is a libm call):
12-17 ns per element, 7-50x torch's time for the same activation on one core
(docs/performance_models.md, "Activations other than ReLU"). A rational function is only
multiplications, additions and one division, which the compiled element-wise kernel runs
vectorised: the float32 functions here cost 3-5 ns per element on arrays of 4M values
(MIN_SIZE: small arrays keep MLX's functions).

Each function is a ``mx.custom_function`` whose backward uses the forward's output (``1 -
t**2`` for tanh, ``s (1 - s)`` for the sigmoid), run on the stream of the forward, like the
convolution's (see :func:`mlx_tcn.ops._make_gemm_conv`): a block's activation runs on the CPU
lane of its part. Only float32 (and float16/bfloat16, computed in float32) on the CPU takes
this path; float64, other devices and other dtypes call MLX's own function.

Accuracy, against float64 over a dense grid of [-12, 12] and tiny values:
tanh within 6 ulp (0.6 ulp on average, 4e-7 absolute), erf within 6 ulp (3.5e-7 absolute);
the sigmoid, computed as ``0.5 + 0.5 tanh(x / 2)``, within 2.5e-7 absolute, so values under
about 1e-7 (x < -16) come out as 0 or a few 1e-8 instead of their own tiny values, and
GELU's tail for x < -4 likewise within 1.3e-6 absolute. That is why a model's hidden
activations use these (:data:`mlx_tcn.activations.ACTIVATIONS`) but its output activation,
which a loss may take the logarithm of, keeps MLX's own.
Coefficients: our own fit (iteratively reweighted least squares for the relative error of
``f(x) / x`` as a rational function of ``x**2``, checked in float32, scripts/fit_fastmath.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import mlx.core as mx
import mlx.nn as nn

__all__ = ["erf", "gelu", "sigmoid", "tanh"]

# tanh(x) = z P(u) / Q(u), z = clip(x, -9, 9), u = z**2 / 81. tanh(9) rounds to 1 in float32.
_TANH_CLAMP = 9.0
_TANH_P = (
    1.0,
    10.598226547241211,
    20.36680793762207,
    5.929710388183594,
    -0.871435284614563,
    0.18443523347377777,
    -0.024072853848338127,
)
_TANH_Q = (1.0, 37.59822082519531, 160.7194366455078, 135.33535766601562)
# erf(x) = z P(u) / Q(u), z = clip(x, -4, 4), u = z**2 / 16. erf(4) rounds to 1 in float32.
_ERF_CLAMP = 4.0
_ERF_P = (
    1.128379225730896,
    2.140291690826416,
    11.12248706817627,
    5.382181644439697,
    8.766695022583008,
    -4.0366716384887695,
    1.4603569507598877,
    -0.24519436061382294,
)
_ERF_Q = (1.0, 7.23011589050293, 22.817882537841797, 38.8887825012207, 32.93731689453125)


def _estrin(coefficients: tuple[float, ...], u: mx.array) -> mx.array:
    """``sum(c_i u**i)``, lowest degree first, by Estrin's scheme: pairs ``c_i + c_(i+1) u``
    combined with ``u**2``, ``u**4``, ... A graph of depth ~2 log2(degree) rather than
    Horner's 2 degree, which MLX's compiler fuses into one kernel (its fused graphs are a
    few operations deep; Horner's chain came out as 3-5 kernels with arrays between)."""
    # an odd count leaves the last coefficient alone, a number: it is only ever multiplied
    # by a power of u
    terms = [
        coefficients[i] + coefficients[i + 1] * u if i + 1 < len(coefficients) else coefficients[i]
        for i in range(0, len(coefficients), 2)
    ]
    power = u * u
    while len(terms) > 1:
        terms = [
            terms[i] + terms[i + 1] * power if i + 1 < len(terms) else terms[i]
            for i in range(0, len(terms), 2)
        ]
        power = power * power
    return terms[0]


# Each result is clipped to [-1, 1]. The fits' highest coefficients are set so that the
# value at the clamp is an ulp or two above 1 (scripts/fit_fastmath.py), which the clip makes
# exactly 1: tanh of a large value is 1, GELU of a large negative one 0, the sigmoid's tails
# 0 and 1.


def _ratio(p: tuple[float, ...], q: tuple[float, ...], clamp: float, z: mx.array) -> mx.array:
    """``z P(u) / Q(u)``, ``u = z**2 / clamp**2``."""
    u = z * z * (1.0 / (clamp * clamp))
    return z * _estrin(p, u) / _estrin(q, u)


# exp(y) = 2**n exp(r): n = round(y log2 e) by adding and subtracting 1.5 * 2**23, r = y - n
# ln 2 in two parts (|r| <= ln(2) / 2), exp(r) by its Taylor polynomial to degree 7 (within
# 2e-9 there), 2**n built as float32 bits. Within 3 ulp for y in [-87, 88].
_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125  # ln 2 = _LN2_HI + _LN2_LO, _LN2_HI with 16 bits
_LN2_LO = 1.4286067653301870e-06
_ROUND = 12582912.0  # 1.5 * 2**23
_EXP_TAYLOR = tuple(1 / math.factorial(i) for i in range(8))


def _exp_mantissa(y: mx.array) -> mx.array:
    n = (y * _LOG2E + _ROUND) - _ROUND
    return _estrin(_EXP_TAYLOR, (y - n * _LN2_HI) - n * _LN2_LO)


def _exp_exponent(y: mx.array) -> mx.array:
    n = (y * _LOG2E + _ROUND) - _ROUND
    return (n.astype(mx.int32) + 127) * (1 << 23)


# Two kernels rather than one with two outputs: MLX ran that one 8x slower.
_exp_mantissa_kernel = mx.compile(_exp_mantissa)
_exp_exponent_kernel = mx.compile(_exp_exponent)


def _exp_parts(y: mx.array) -> tuple[mx.array, mx.array]:
    """``exp(y) = m * s`` for float32 ``y`` in [-87, 88]: ``(m, s)``, to be multiplied in the
    kernel that uses them."""
    return _exp_mantissa_kernel(y), _exp_exponent_kernel(y).view(mx.float32)


# Multiplications, additions and one division, each function compiled into one vectorised
# kernel. A minimum, maximum or select inside it would make it scalar again, so the clips
# stay separate MLX operations. Compiled per shape: a shapeless compile of the same graph
# came out as five kernels.
_SQRT_HALF = math.sqrt(0.5)
_tanh_core = mx.compile(partial(_ratio, _TANH_P, _TANH_Q, _TANH_CLAMP))
_half_tanh_core = mx.compile(lambda x: _ratio(_TANH_P, _TANH_Q, _TANH_CLAMP, 0.5 * x))
_erf_core = mx.compile(partial(_ratio, _ERF_P, _ERF_Q, _ERF_CLAMP))
_gelu_core = mx.compile(lambda x: _ratio(_ERF_P, _ERF_Q, _ERF_CLAMP, x * _SQRT_HALF))
_sigmoid_end = mx.compile(lambda t: 0.5 + 0.5 * t)
_gelu_end = mx.compile(lambda x, e: 0.5 * x * (1 + e))


def _fence(x: mx.array) -> mx.array:
    """``x`` as is, reshaped flat and back: the end of a fused kernel (MLX fuses element-wise
    operations only). Inside a model compiled as a whole (``mx.compile``, as the training
    step is), MLX would otherwise fuse the clips into the kernels around them, which then
    run scalar: a compiled clip and tanh took 14.7 ms on 4M values, 4.6 ms fenced."""
    return x.reshape(-1).reshape(x.shape)


def _clip(x: mx.array, low: float, high: float) -> mx.array:
    """``mx.clip`` as a kernel of its own (see :func:`_fence`)."""
    return _fence(mx.clip(_fence(x), low, high))


def _unit(y: mx.array) -> mx.array:
    """Clipped to [-1, 1]: exactly +-1 past the clamps."""
    return _clip(y, -1.0, 1.0)


def _tanh32(x: mx.array) -> mx.array:
    return _unit(_tanh_core(_clip(x, -_TANH_CLAMP, _TANH_CLAMP)))


def _sigmoid32(x: mx.array) -> mx.array:
    """``0.5 + 0.5 tanh(x / 2)``."""
    return _sigmoid_end(_unit(_half_tanh_core(_clip(x, -2 * _TANH_CLAMP, 2 * _TANH_CLAMP))))


def _erf32(x: mx.array) -> mx.array:
    return _unit(_erf_core(_clip(x, -_ERF_CLAMP, _ERF_CLAMP)))


# erf's clamp on x / sqrt(2), as x: the float32 number whose product with sqrt(1/2) in
# float32 is exactly 4 (4 sqrt(2) rounded gives 3.9999998, where erf's fit is below 1)
_GELU_CLAMP = 5.656854629516602


def _gelu32(x: mx.array) -> mx.array:
    """``0.5 x (1 + erf(x / sqrt 2))``."""
    return _gelu_end(x, _unit(_gelu_core(_clip(x, -_GELU_CLAMP, _GELU_CLAMP))))


# Derivatives times a cotangent (or tangent) ``c``, from the input ``x`` and output ``y``.
# The Gaussians' exponents are floored at -87, where exp is 1.6e-38.
_tanh_vjp = mx.compile(lambda c, x, y: c * (1 - y * y))
_sigmoid_vjp = mx.compile(lambda c, x, y: c * (y * (1 - y)))
_erf_kernel = mx.compile(lambda c, m, s: c * (2 / math.sqrt(math.pi)) * (m * s))
_gelu_kernel = mx.compile(
    lambda c, x, e, m, s: c * (0.5 * (1 + e) + x * (1 / math.sqrt(2 * math.pi)) * (m * s))
)
_minus_square = mx.compile(lambda x: -(x * x))
_minus_half_square = mx.compile(lambda x: -0.5 * (x * x))


def _erf_vjp(c: mx.array, x: mx.array, y: mx.array) -> mx.array:
    """``c 2 / sqrt(pi) exp(-x**2)``."""
    return _erf_kernel(c, *_exp_parts(_fence(mx.maximum(_fence(_minus_square(x)), -87.0))))


def _gelu_vjp(c: mx.array, x: mx.array, y: mx.array) -> mx.array:
    """``c (Phi(x) + x phi(x))``."""
    e = _unit(_gelu_core(_clip(x, -_GELU_CLAMP, _GELU_CLAMP)))
    return _gelu_kernel(
        c, x, e, *_exp_parts(_fence(mx.maximum(_fence(_minus_half_square(x)), -87.0)))
    )


# Smaller arrays call MLX's function: the vectorised form is several MLX operations (the
# clip, the compiled kernels, the custom function), and a stream step is bound by its number
# of operations, at about 3 us each (a batch-1 tanh TCN step: 223 primitives against 94);
# MLX's function costs ~16 ns per element, so the two break even at about 2,000 elements.
MIN_SIZE = 2048


def _fast(x: mx.array) -> bool:
    """Whether ``x`` takes the vectorised path: at least :data:`MIN_SIZE` elements of a real
    floating type narrower than float64, on the CPU."""
    return (
        x.size >= MIN_SIZE
        and x.dtype in (mx.float32, mx.float16, mx.bfloat16)
        and mx.default_device() == mx.cpu
    )


def _in_float32(f: Callable[[mx.array], mx.array], x: mx.array) -> mx.array:
    return f(x) if x.dtype == mx.float32 else f(x.astype(mx.float32)).astype(x.dtype)


# One custom function per (name, stream): MLX traces a custom VJP under whatever stream is
# the default when the gradient is taken, so each keeps its forward's. Keyed by the stream's
# name (an mx.Stream hashes by identity; see mlx_tcn.ops._GEMM_CONVS).
_CUSTOM: dict[tuple[str, str], Callable[[mx.array], mx.array]] = {}


def _custom(name: str, make: Callable[[mx.Stream], Callable]) -> Callable[[mx.array], mx.array]:
    stream = mx.default_stream(mx.default_device())
    key = (name, str(stream))
    if key not in _CUSTOM:
        _CUSTOM[key] = make(stream)
    return _CUSTOM[key]


def _maker(
    forward: Callable[[mx.array], mx.array],
    vjp: Callable[[mx.array, mx.array, mx.array], mx.array],
) -> Callable[[mx.Stream], Callable[[mx.array], mx.array]]:
    """What :func:`_custom` calls to make ``forward`` (float32) a custom function on a
    stream, with ``vjp(c, x, y)`` (``c`` times the derivative at ``x``, ``y = forward(x)``)
    for its VJP and JVP. A function of one input gets its primals and tangents as the
    arrays themselves."""

    def make(stream: mx.Stream) -> Callable[[mx.array], mx.array]:
        @mx.custom_function
        def f(x: mx.array) -> mx.array:
            return _in_float32(forward, x)

        @f.vjp
        def f_vjp(primals, cotangent, output):
            with mx.stream(stream):
                return _in_float32(lambda c: vjp(c, primals, output), cotangent)

        @f.jvp
        def f_jvp(primals, tangents):
            return _in_float32(lambda t: vjp(t, primals, _in_float32(forward, primals)), tangents)

        return f

    return make


_make_tanh = _maker(_tanh32, _tanh_vjp)
_make_sigmoid = _maker(_sigmoid32, _sigmoid_vjp)
_make_erf = _maker(_erf32, _erf_vjp)
_make_gelu = _maker(_gelu32, _gelu_vjp)


def tanh(x: mx.array) -> mx.array:
    """``mx.tanh``, vectorised on the CPU (see the module's docstring)."""
    return _custom("tanh", _make_tanh)(x) if _fast(x) else mx.tanh(x)


def sigmoid(x: mx.array) -> mx.array:
    """``mx.sigmoid``, vectorised on the CPU as ``0.5 + 0.5 tanh(x / 2)``."""
    return _custom("sigmoid", _make_sigmoid)(x) if _fast(x) else mx.sigmoid(x)


def erf(x: mx.array) -> mx.array:
    """``mx.erf``, vectorised on the CPU."""
    return _custom("erf", _make_erf)(x) if _fast(x) else mx.erf(x)


def gelu(x: mx.array) -> mx.array:
    """GELU with the exact (erf) form, ``0.5 x (1 + erf(x / sqrt 2))``, as ``torch.nn.GELU()``
    and ``mlx.nn.gelu``; vectorised on the CPU."""
    return _custom("gelu", _make_gelu)(x) if _fast(x) else nn.gelu(x)
