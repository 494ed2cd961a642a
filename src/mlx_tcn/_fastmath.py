"""tanh, the sigmoid, erf, GELU, ELU and SELU as arithmetic the CPU can vectorise.

MLX's CPU backend computes ``mx.tanh``, ``mx.sigmoid``, ``mx.exp`` and ``mx.erf`` one
element at a time on x86 (its SIMD width there is 1, and each element is a libm call):
12-17 ns per element, 7-50x torch's time for the same activation on one core
(docs/performance_models.md, "Activations other than ReLU"). A rational function is only
multiplications, additions and one division, which the compiled element-wise kernel runs
vectorised: the float32 functions here cost 1.4-2.5 ns per element on arrays of 4M values
(GELU, ELU and SELU included), against MLX's 16-28 ns
(MIN_SIZE: small arrays keep MLX's functions). Where MLX traces instead of compiling (a
gradient taken eagerly) the same arithmetic runs as separate passes; see :func:`_traced`.

ELU and SELU take ``exp(x) - 1`` as a polynomial at ``x / 32`` doubled back five times
(:func:`_doubled`): 4 ulp at most, and accurate near 0, where MLX's ``exp(x) - 1`` loses
the relative accuracy (thousands of ulp at ``x = -1e-4``); erf's derivative takes its
``exp(-x**2)`` the same way.

Each function (GELU through erf where it is differentiated) is a ``mx.custom_function``
whose backward uses the forward's output (``1 - t**2`` for tanh, ``s (1 - s)`` for the
sigmoid, ``y + alpha`` on ELU's negative side), run on the stream of the forward, like the
convolution's (see :func:`mlx_tcn.ops._make_gemm_conv`): a block's activation runs on the
CPU lane of its part. Only float32 (and float16/bfloat16, computed in
float32) on the CPU takes this path; float64, other devices and other dtypes call MLX's own
function.

Accuracy, against float64 over a dense grid of [-12, 12] and tiny values:
tanh within 6 ulp (0.6 ulp on average, 4e-7 absolute), erf within 6 ulp (3.5e-7 absolute);
the sigmoid, computed as ``0.5 + 0.5 tanh(x / 2)``, within 2.5e-7 absolute, so values under
about 1e-7 (x < -16) come out as 0 or a few 1e-8 instead of their own tiny values, and
GELU's tail for x < -4 likewise within 1.3e-6 absolute. That is why a model's hidden
activations use these (:data:`mlx_tcn.activations.ACTIVATIONS`) but its output activation,
which a loss may take the logarithm of, keeps MLX's own.
Coefficients: our own fit (iteratively reweighted least squares for the relative error of
``f(x) / x`` as a rational function of ``x**2``, or of ``expm1(r) / r`` as a polynomial,
checked in float32, scripts/fit_fastmath.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import mlx.core as mx
import mlx.nn as nn

__all__ = ["elu", "erf", "gelu", "selu", "selu_exact", "sigmoid", "tanh"]

# tanh(x) = z P(u) / Q(u), z = clip(x, -9, 9), u = z**2 / 81. tanh(9) rounds to 1 in float32.
_TANH_CLAMP = 9.0
_TANH_P = (
    1.0,
    10.598226547241211,
    20.36680793762207,
    5.929710388183594,
    -0.871435284614563,
    0.18443523347377777,
    -0.024076730012893677,
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
    -0.24519531428813934,
)
_ERF_Q = (1.0, 7.23011589050293, 22.817882537841797, 38.8887825012207, 32.93731689453125)
# expm1(x) = e doubled five times from e = r P(r), r = x / 32, z = clip(x, -18, 0): expm1(-18)
# rounds to -1 in float32 (the doublings reach it exactly).
_EXPM1_CLAMP = 18.0
_EXPM1_HALVINGS = 5
_EXPM1_P = (
    1.0,
    0.49999967217445374,
    0.16665981709957123,
    0.04161452502012253,
    0.008152278140187263,
    0.0010923967929556966,
)
# exp(-x**2) in erf's derivative, as 1 + expm1(-z**2), z = clip(x, -sqrt(18), sqrt(18))
_GAUSS_CLAMP = math.sqrt(_EXPM1_CLAMP)
# GELU's clamp: the float32 step above 4 sqrt(2), whose product with 1 / sqrt(2) rounds to 4
# (erf's clamp, where both evaluation orders give exactly 1)
_GELU_CLAMP = 5.656854629516602
# torch.nn.SELU's constants (MLX's nn.selu rounds them to 1.67326 and 1.0507)
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


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


# The fits' highest coefficients are set so that the value at the clamp is at least 1 in both
# evaluation orders (scripts/fit_fastmath.py), and the results are clipped to [-1, 1]: tanh
# and erf of a large value are +-1, GELU of a large negative one 0, the sigmoid's tails 0
# and 1.


def _horner(coefficients: tuple[float, ...], u: mx.array) -> mx.array:
    """``sum(c_i u**i)``, lowest degree first, by Horner's rule: fewer operations than
    :func:`_estrin` where MLX runs each on its own, but a deeper graph, which it fuses into
    three kernels rather than one."""
    acc = coefficients[-1] * u + coefficients[-2]
    for c in coefficients[-3::-1]:
        acc = acc * u + c
    return acc


def _doubled(p: tuple[float, ...], n: mx.array, halvings: int, scheme: Callable) -> mx.array:
    """``expm1(n)`` for ``n`` in ``[-clamp, 0]``: ``e = r P(r)`` at ``r = n / 2**halvings``,
    then ``halvings`` doublings ``e <- e (e + 2)`` (``expm1(2 r) = expm1(r) (expm1(r) +
    2)``). Only multiplications and additions, so the relative accuracy of ``P`` near 0
    stays (each doubling adds about half an ulp), and near -1 the error shrinks."""
    r = n * (1.0 / 2**halvings)
    e = r * scheme(p, r)
    for _ in range(halvings):
        e = e * (e + 2.0)
    return e


def _ratio(
    p: tuple[float, ...],
    q: tuple[float, ...],
    clamp: float,
    z: mx.array,
    scheme: Callable = _estrin,
) -> mx.array:
    """``z P(u) / Q(u)``, ``u = z**2 / clamp**2``."""
    u = z * z * (1.0 / (clamp * clamp))
    return z * scheme(p, u) / scheme(q, u)


# While MLX traces a function for a transformation (a gradient, vmap, an outer mx.compile),
# a compiled function's Python body runs instead of its kernel: a probe that counts its own
# runs tells which case a call is in. An eager training step runs every operation of the
# traced body as a pass over the data, where Horner's rule is faster (a tanh's forward and
# backward over 4M values: 21.5 ms against 27.8; a tanh model's eager step: 564 ms against
# 635); everywhere else the body is one kernel with Estrin's scheme, three with Horner's
# (tanh on 4M values: 3.6 ms against 10.5). The probe cannot tell an outer compile's trace
# from a gradient's, so a compiled training step gets Horner's rule too.
_PROBE_RUNS = [0]


def _count_run(a: mx.array) -> mx.array:
    _PROBE_RUNS[0] += 1
    return a


_probe = mx.compile(_count_run)


def _traced(x: mx.array) -> bool:
    """Whether ``x`` (float32) is being traced for a transformation."""
    if _PROBE_RUNS[0] == 0:
        _probe(mx.zeros((), mx.float32))  # the first call traces
    before = _PROBE_RUNS[0]
    _probe(x[(0,) * x.ndim])  # unused, so never computed
    return _PROBE_RUNS[0] != before


def _fence(x: mx.array) -> mx.array:
    """``x`` as is, through a leading axis added and removed: the end of a fused kernel (MLX
    fuses element-wise operations only), with no copy whatever ``x``'s strides (a reshape
    copies a strided view, such as a time part of a batch). Inside a step compiled as a
    whole (``mx.compile``, as ``mlx-tcn train`` runs it), MLX would otherwise fuse a clip
    into the kernels around it, which then run scalar: a compiled clip and tanh took 14.7 ms
    on 4M values, 4.6 ms fenced."""
    return mx.squeeze(mx.expand_dims(x, 0), 0)


def _clip(x: mx.array, low: float, high: float) -> mx.array:
    """``mx.clip`` as a kernel of its own (see :func:`_fence`)."""
    return _fence(mx.clip(_fence(x), low, high))


def _floor(x: mx.array, low: float = 0.0) -> mx.array:
    """``max(x, low)`` as a kernel of its own (see :func:`_fence`)."""
    return _fence(mx.maximum(_fence(x), low))


def _positive(x: mx.array) -> mx.array:
    """``1.0`` where ``x > 0``, else ``0.0``, as a kernel of its own (see :func:`_fence`)."""
    return _fence((_fence(x) > 0).astype(mx.float32))


def _unit(y: mx.array) -> mx.array:
    """``y`` clipped to [-1, 1]: just below their clamps the fits pass 1 by up to two ulps."""
    return _clip(y, -1.0, 1.0)


# Multiplications, additions and one division, each compiled into one vectorised kernel
# (where MLX compiles: not while it traces a gradient, see docs/performance_models.md). A
# minimum, maximum or select inside it would make it scalar again, so the clips stay
# separate MLX operations. Compiled per shape: a shapeless compile of the same graph came
# out as five kernels.
_tanh_core = mx.compile(partial(_ratio, _TANH_P, _TANH_Q, _TANH_CLAMP))
_tanh_traced = mx.compile(partial(_ratio, _TANH_P, _TANH_Q, _TANH_CLAMP, scheme=_horner))
_half_tanh_core = mx.compile(lambda x: _ratio(_TANH_P, _TANH_Q, _TANH_CLAMP, 0.5 * x))
_half_tanh_traced = mx.compile(
    lambda x: _ratio(_TANH_P, _TANH_Q, _TANH_CLAMP, 0.5 * x, scheme=_horner)
)
_sigmoid_end = mx.compile(lambda t: 0.5 + 0.5 * t)
_erf_core = mx.compile(partial(_ratio, _ERF_P, _ERF_Q, _ERF_CLAMP))
_erf_traced = mx.compile(partial(_ratio, _ERF_P, _ERF_Q, _ERF_CLAMP, scheme=_horner))


def _tanh32(x: mx.array) -> mx.array:
    core = _tanh_traced if _traced(x) else _tanh_core
    return _unit(core(_clip(x, -_TANH_CLAMP, _TANH_CLAMP)))


def _sigmoid32(x: mx.array) -> mx.array:
    """``0.5 + 0.5 tanh(x / 2)``."""
    core = _half_tanh_traced if _traced(x) else _half_tanh_core
    return _sigmoid_end(_unit(core(_clip(x, -2 * _TANH_CLAMP, 2 * _TANH_CLAMP))))


def _erf32(x: mx.array) -> mx.array:
    core = _erf_traced if _traced(x) else _erf_core
    return _unit(core(_clip(x, -_ERF_CLAMP, _ERF_CLAMP)))


def _elu_body(
    alpha: float, scale: float, scheme: Callable, positive: mx.array, negative: mx.array
) -> mx.array:
    """``scale (max(x, 0) + alpha expm1(min(x, 0)))`` from the two clipped parts of ``x``."""
    return scale * (positive + alpha * _doubled(_EXPM1_P, negative, _EXPM1_HALVINGS, scheme))


def _elu_forward(alpha: float, scale: float) -> Callable[[mx.array], mx.array]:
    cores = {
        traced: mx.compile(partial(_elu_body, alpha, scale, _horner if traced else _estrin))
        for traced in (False, True)
    }

    def forward(x: mx.array) -> mx.array:
        core = cores[_traced(x)]
        return core(_floor(x), _clip(x, -_EXPM1_CLAMP, 0.0))

    return forward


# Derivatives times a cotangent (or tangent) ``c``, from the input ``x`` and output ``y``.
# erf's Gaussian is exp(-x**2) = 1 + expm1(-x**2) by the same doublings as ELU's. (Session
# 14 tried an exp by range reduction, 2**n built as float32 bits: some twenty operations,
# and a view, after which MLX starts a new kernel; a GELU model's eager training step took
# 1126 ms with it against 868 with MLX's exp, docs/performance_models.md.)
_tanh_vjp = mx.compile(lambda c, x, y: c * (1 - y * y))
_sigmoid_vjp = mx.compile(lambda c, x, y: c * (y * (1 - y)))


def _gauss(scheme: Callable, c: mx.array, z: mx.array) -> mx.array:
    """``c`` times erf's derivative at ``z``, ``|z| <= sqrt(18)``."""
    e = _doubled(_EXPM1_P, -(z * z), _EXPM1_HALVINGS, scheme)
    return c * (2 / math.sqrt(math.pi)) * (1.0 + e)


_gauss_core = mx.compile(partial(_gauss, _estrin))
_gauss_traced = mx.compile(partial(_gauss, _horner))


def _erf_vjp(c: mx.array, x: mx.array, y: mx.array) -> mx.array:
    core = _gauss_traced if _traced(x) else _gauss_core
    return core(c, _clip(x, -_GAUSS_CLAMP, _GAUSS_CLAMP))


def _gelu_body(x: mx.array, z: mx.array) -> mx.array:
    """``0.5 x (1 + erf(z / sqrt 2))``, ``z = clip(x, -c, c)``: past the clamp erf is exactly
    +-1, so the value is ``x`` or 0."""
    erf = _ratio(_ERF_P, _ERF_Q, _ERF_CLAMP, z * (1 / math.sqrt(2)))
    return 0.5 * x * (1.0 + erf)


_gelu_core = mx.compile(_gelu_body)


def _gelu32(x: mx.array) -> mx.array:
    """GELU in one kernel where MLX compiles (inference): 7.0 ms on 4M values, against 10.7
    through :func:`erf` (five passes). ``x`` is made contiguous first: given a convolution's
    strided output, and a fresh clip it may write over, the kernel ran scalar (a mid-size
    model's inference 191 ms, 160 with the copy, 184 through erf)."""
    return _gelu_core(mx.contiguous(x), _clip(x, -_GELU_CLAMP, _GELU_CLAMP))


def _elu_vjp(alpha: float, scale: float) -> Callable[[mx.array, mx.array, mx.array], mx.array]:
    """``scale`` where ``x > 0``; below, ``y + scale alpha``, which is ``scale alpha exp(x)``."""
    slope = mx.compile(lambda c, m, y: c * (scale * m + (y + scale * alpha) * (1 - m)))
    return lambda c, x, y: slope(c, _positive(x), y)


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
_ELU_MAKERS: dict[tuple[float, float], Callable[[mx.Stream], Callable]] = {}


def _make_elu(alpha: float, scale: float) -> Callable[[mx.Stream], Callable]:
    key = (alpha, scale)
    if key not in _ELU_MAKERS:
        _ELU_MAKERS[key] = _maker(_elu_forward(alpha, scale), _elu_vjp(alpha, scale))
    return _ELU_MAKERS[key]


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
    and ``mlx.nn.gelu``, vectorised on the CPU.

    Traced (a gradient, vmap, an outer compile), it is that formula on :func:`erf`: a custom
    function of its own, with its derivative ``Phi(z) + z phi(z)`` as one kernel, made the
    mid-size model's eager training step 1217 ms against 780 (not found why)."""
    if not _fast(x):
        return nn.gelu(x)
    if _traced(x):
        return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2))))
    return _in_float32(_gelu32, x)


@partial(mx.compile, shapeless=True)
def elu_exact(x: mx.array, alpha: float = 1.0) -> mx.array:
    """``mlx.nn.elu``'s values, ``x`` if ``x > 0`` else ``alpha (exp(x) - 1)``, with a finite
    gradient everywhere: ``mlx.nn.elu`` takes ``exp(x)`` of the positive inputs too, and
    from ``x`` of about 88.7 on its gradient is ``0 * inf``, NaN. Here the exponential
    sees ``min(x, 0)``."""
    return mx.where(x > 0, x, alpha * (mx.exp(mx.minimum(x, 0)) - 1))


def elu(x: mx.array, alpha: float = 1.0) -> mx.array:
    """``mlx.nn.elu``, ``x`` if ``x > 0`` else ``alpha (exp(x) - 1)``, vectorised on the CPU
    (as ``expm1``: accurate to a few ulp near 0, where ``exp(x) - 1`` is not)."""
    if not _fast(x):
        return elu_exact(x, alpha)
    alpha = float(alpha)
    return _custom(f"elu {alpha!r}", _make_elu(alpha, 1.0))(x)


def selu_exact(x: mx.array) -> mx.array:
    """SELU by MLX's ELU, with ``torch.nn.SELU``'s constants rather than ``mlx.nn.selu``'s."""
    return _SELU_SCALE * elu_exact(x, _SELU_ALPHA)


def selu(x: mx.array) -> mx.array:
    """SELU with ``torch.nn.SELU``'s constants, vectorised on the CPU."""
    if not _fast(x):
        return selu_exact(x)
    return _custom("selu", _make_elu(_SELU_ALPHA, _SELU_SCALE))(x)
