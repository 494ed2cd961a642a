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
    -0.024077774956822395,
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
    -0.2451982945203781,
)
_ERF_Q = (1.0, 7.23011589050293, 22.817882537841797, 38.8887825012207, 32.93731689453125)


def _horner(coefficients: tuple[float, ...], u: mx.array) -> mx.array:
    """``sum(c_i u**i)``, lowest degree first."""
    acc = coefficients[-1] * u + coefficients[-2]
    for c in coefficients[-3::-1]:
        acc = acc * u + c
    return acc


def _rational(
    p: tuple[float, ...], q: tuple[float, ...], clamp: float, saturate: bool = False
) -> Callable:
    """``x -> z P(u) / Q(u)`` with ``z = clip(x, -clamp, clamp)`` and ``u = z**2 /
    clamp**2``; ``saturate``: scaled up by one float32 ulp and clipped to [-1, 1], so that
    the value at the clamp is exactly 1 (erf's fit ends at 1 - 6e-8, and gelu multiplies
    the difference by x)."""
    inv = 1.0 / (clamp * clamp)

    # Multiplications, additions and one division, compiled: MLX splits the chain into a
    # few vectorised kernels. A minimum, maximum or select inside them would make them
    # scalar again, so the clips stay separate MLX operations.
    @partial(mx.compile, shapeless=True)
    def core(z: mx.array) -> mx.array:
        u = z * z * inv
        return z * _horner(p, u) / _horner(q, u)

    def forward(x: mx.array) -> mx.array:
        y = core(mx.clip(x, -clamp, clamp))
        return mx.clip(y * (1 + 2.0**-23), -1.0, 1.0) if saturate else y

    return forward


_tanh32 = _rational(_TANH_P, _TANH_Q, _TANH_CLAMP)
_erf32 = _rational(_ERF_P, _ERF_Q, _ERF_CLAMP, saturate=True)


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


def _sigmoid32(x: mx.array) -> mx.array:
    return 0.5 + 0.5 * _tanh32(0.5 * x)


def _maker(
    forward: Callable[[mx.array], mx.array],
    derivative: Callable[[mx.array, mx.array], mx.array],
) -> Callable[[mx.Stream], Callable[[mx.array], mx.array]]:
    """What :func:`_custom` calls to make ``forward`` (float32) a custom function on a
    stream, with ``derivative(x, y)`` (``y = forward(x)``) for its VJP and JVP. A function
    of one input gets its primals and tangents as the arrays themselves."""

    def make(stream: mx.Stream) -> Callable[[mx.array], mx.array]:
        @mx.custom_function
        def f(x: mx.array) -> mx.array:
            return _in_float32(forward, x)

        @f.vjp
        def f_vjp(primals, cotangent, output):
            with mx.stream(stream):
                return cotangent * derivative(primals, output)

        @f.jvp
        def f_jvp(primals, tangents):
            return tangents * derivative(primals, _in_float32(forward, primals))

        return f

    return make


_make_tanh = _maker(_tanh32, lambda x, t: 1 - t * t)
_make_sigmoid = _maker(_sigmoid32, lambda x, s: s * (1 - s))
_make_erf = _maker(_erf32, lambda x, y: (2 / math.sqrt(math.pi)) * mx.exp(-x * x))


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
    and ``mlx.nn.gelu``."""
    return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2))))
