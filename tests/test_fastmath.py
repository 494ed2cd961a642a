"""The vectorised tanh, sigmoid, erf, GELU, ELU and SELU (mlx_tcn._fastmath) against float64
references."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlx_tcn import TCN, _fastmath
from mlx_tcn.activations import ACTIVATIONS, EXACT_ACTIVATIONS, get_activation, glu

# The vectorised path is the CPU's: on a machine whose default device is a GPU, the tests
# still test it.
pytestmark = pytest.mark.usefixtures("on_cpu")

_erf64 = np.vectorize(math.erf)
# torch.nn.SELU's constants, written out here rather than taken from the module
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _elu64(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


# every float32 step of 1.2e-5 over [-12, 12] would take long with math.erf; a dense grid,
# the points around the clamps, and tiny values
GRID = np.concatenate(
    [
        np.linspace(-12, 12, 200_001),
        np.linspace(3.9, 4.1, 2001),
        np.linspace(8.9, 9.1, 2001),
        -np.logspace(-30, 0, 301),
        np.logspace(-30, 0, 301),
    ]
).astype(np.float32)

REFERENCES = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "erf": _erf64,
    "gelu": lambda x: 0.5 * x * (1 + _erf64(x / math.sqrt(2))),
    "elu": _elu64,
    "selu": lambda x: SELU_SCALE * _elu64(x, SELU_ALPHA),
}
# (absolute bound, relative bound where |f| > 0.1): the sigmoid and GELU keep an absolute
# accuracy in their tails (relative 1e-4 at 1e-3), as the module's docstring says
BOUNDS = {
    "tanh": (4e-7, 4e-7),
    "sigmoid": (2.5e-7, 1e-6),
    "erf": (5e-7, 5e-7),
    "gelu": (1.5e-6, 3e-6),
    "elu": (2e-7, 4e-7),
    "selu": (1e-6, 6e-7),  # 1 ulp of 12.6 is 9.5e-7
}


def _padded(f, values) -> np.ndarray:  # noqa: ANN001
    """``f`` of ``values`` computed within an array large enough for the vectorised path."""
    values = np.asarray(values, np.float32)
    filler = np.linspace(-3, 3, _fastmath.MIN_SIZE, dtype=np.float32)
    return np.array(f(mx.array(np.concatenate([values, filler]))))[: len(values)]


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ia = a.astype(np.float32).view(np.int32).astype(np.int64)
    ib = b.astype(np.float32).view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_values_against_float64(name: str) -> None:
    ref = REFERENCES[name](GRID.astype(np.float64))
    got = np.array(getattr(_fastmath, name)(mx.array(GRID))).astype(np.float64)
    err = np.abs(got - ref)
    absolute, relative = BOUNDS[name]
    assert err.max() <= absolute
    big = np.abs(ref) > 0.1
    assert (err[big] / np.abs(ref[big])).max() <= relative


@pytest.mark.parametrize("name", ["tanh", "erf"])
def test_tanh_and_erf_within_a_few_ulp(name: str) -> None:
    ref = REFERENCES[name](GRID.astype(np.float64)).astype(np.float32)
    got = np.array(getattr(_fastmath, name)(mx.array(GRID)))
    assert _ulps(got, ref).max() <= 8
    assert _ulps(got, ref).mean() <= 1.5
    assert np.abs(got).max() == 1  # reaches 1, never passes it


@pytest.mark.parametrize(("name", "max_ulp"), [("elu", 4), ("selu", 6)])
def test_elu_and_selu_within_a_few_ulp_down_to_tiny_values(name: str, max_ulp: int) -> None:
    # exp(x) - 1 in float32 (MLX's ELU) is thousands of ulp off near 0; expm1 is not (down to
    # 1e-30: x / 32 under 1e-37 is subnormal, off by some ulp of 1e-38)
    x = np.concatenate([GRID, -np.logspace(-30, 1.4, 5001)]).astype(np.float32)
    ref = REFERENCES[name](x.astype(np.float64)).astype(np.float32)
    got = np.array(getattr(_fastmath, name)(mx.array(x)))
    assert _ulps(got, ref).max() <= max_ulp
    assert _ulps(got, ref).mean() <= 0.6
    positive = x > 0  # the positive side exactly: x, or SELU's scale (float32) times x
    scale = np.float32(SELU_SCALE if name == "selu" else 1.0)
    np.testing.assert_array_equal(got[positive], scale * x[positive])
    mlx_elu = np.array(EXACT_ACTIVATIONS[name](mx.array(x)))
    assert _ulps(mlx_elu, ref).max() > 1000


def test_elu_alpha() -> None:
    x = np.linspace(-20, 5, 4001).astype(np.float32)
    for alpha in (0.5, 1.0, 2.0):
        got = np.array(_fastmath.elu(mx.array(x), alpha))
        np.testing.assert_allclose(got, _elu64(x.astype(np.float64), alpha), rtol=5e-7, atol=1e-7)
    assert ("elu 0.5", str(mx.default_stream(mx.cpu))) in _fastmath._CUSTOM


def test_selu_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    x = np.linspace(-20, 5, 4001).astype(np.float32)
    want = torch.nn.functional.selu(torch.from_numpy(x)).numpy()
    got = np.array(_fastmath.selu(mx.array(x)))
    assert _ulps(got, want).max() <= 6
    # the output activation's SELU (MLX's exp) has torch's constants too, not mlx.nn.selu's
    exact = np.array(EXACT_ACTIVATIONS["selu"](mx.array(x)))
    away = np.abs(x) > 0.5  # where exp(x) - 1 keeps its precision
    np.testing.assert_allclose(exact[away], want[away], rtol=5e-7)
    assert not np.allclose(np.array(nn.selu(mx.array(x)))[away], want[away], rtol=5e-7)


def test_traced_calls_use_horners_rule_and_keep_the_ends_exact() -> None:
    big = mx.full((_fastmath.MIN_SIZE,), 30.0)
    ones = mx.ones_like(big)
    for name, sign in (("tanh", 1), ("erf", -1), ("sigmoid", 1)):
        f = getattr(_fastmath, name)
        (y,), _ = mx.vjp(f, [sign * big], [ones])
        want = 1.0 if name != "erf" else -1.0
        np.testing.assert_array_equal(np.array(y), want)
        np.testing.assert_array_equal(np.array(mx.compile(f)(sign * big)), want)
    (y,), _ = mx.vjp(_fastmath.gelu, [-big], [ones])
    np.testing.assert_array_equal(np.array(y), 0.0)
    for name, end in (("elu", -1.0), ("selu", -SELU_SCALE * SELU_ALPHA)):
        f = getattr(_fastmath, name)
        (y,), _ = mx.vjp(f, [-big], [ones])
        np.testing.assert_array_equal(np.array(y), np.float32(end))
        np.testing.assert_array_equal(np.array(mx.compile(f)(-big)), np.float32(end))
    # the probe: False for a plain array (every call), True while traced
    assert not _fastmath._traced(big) and not _fastmath._traced(big)
    seen = []

    def record(v: mx.array) -> mx.array:
        seen.append(_fastmath._traced(v))
        return v * 2

    mx.vjp(record, [big], [ones])
    mx.compile(record)(big)
    mx.vmap(record)(big[None])
    assert seen == [True, True, True]


def test_special_values() -> None:
    x = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30]
    tanh = _padded(_fastmath.tanh, x)
    assert np.isnan(tanh[0])
    np.testing.assert_array_equal(tanh[1:], [1, -1, 0, 0, 1, -1])
    assert np.signbit(tanh[4])  # tanh(-0) = -0
    erf = _padded(_fastmath.erf, x)
    assert np.isnan(erf[0])
    np.testing.assert_array_equal(erf[1:], [1, -1, 0, 0, 1, -1])  # exactly 1 past the clamp
    sig = _padded(_fastmath.sigmoid, x)
    assert np.isnan(sig[0])
    np.testing.assert_array_equal(sig[1:], [1, 0, 0.5, 0.5, 1, 0])
    gelu = _padded(_fastmath.gelu, x)
    assert np.isnan(gelu[0]) and gelu[1] == np.inf
    # GELU of a large negative value is 0: erf saturates at exactly -1 (-inf * 0 is nan,
    # as torch.nn.GELU gives)
    np.testing.assert_array_equal(gelu[3:], np.array([0, 0, 1e30, 0], np.float32))
    elu = _padded(_fastmath.elu, x)
    assert np.isnan(elu[0])
    np.testing.assert_array_equal(elu[1:], np.array([np.inf, -1, 0, 0, 1e30, -1], np.float32))
    selu = _padded(_fastmath.selu, x)
    assert np.isnan(selu[0])
    end = np.float32(-SELU_SCALE * SELU_ALPHA)
    big = np.float32(SELU_SCALE) * np.float32(1e30)
    np.testing.assert_array_equal(selu[1:], np.array([np.inf, end, 0, 0, big, end], np.float32))


GRADIENTS = {
    "tanh": lambda x: 1 - np.tanh(x) ** 2,
    "sigmoid": lambda x: 0.25 / np.cosh(np.minimum(np.abs(x), 80) / 2) ** 2,
    "erf": lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x),
    "gelu": lambda x: (
        0.5 * (1 + _erf64(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    ),
    # the derivative at 0 is the left one, alpha, as torch's (its backward tests x <= 0)
    "elu": lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0))),
}


@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_gradient(name: str) -> None:
    # and far out, where the Gaussians' exponents are floored at -87
    x = np.concatenate([np.linspace(-7, 7, 2801), [-1e4, -100, -30, 30, 100, 1e4]])
    x = x.astype(np.float32)
    f = getattr(_fastmath, name)
    got = np.array(mx.grad(lambda v: (f(v) * 3).sum())(mx.array(x)))
    np.testing.assert_allclose(got, 3 * GRADIENTS[name](x.astype(np.float64)), atol=2e-6)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "erf", "gelu", "elu", "selu"])
def test_compile_vmap_and_jvp_agree_with_eager(name: str) -> None:
    f = getattr(_fastmath, name)
    x = mx.random.normal((4, 1024)) * 3
    eager = np.array(f(x))
    exact = getattr(nn, name) if name in ("gelu", "elu", "selu") else getattr(mx, name)
    assert not np.array_equal(eager, np.array(exact(x)))  # the vectorised path
    # traced (compiled, vmapped, differentiated) the polynomials go by Horner's rule, not
    # Estrin's scheme: the same function to float32 rounding
    np.testing.assert_allclose(np.array(mx.compile(f)(x)), eager, atol=1e-6)
    np.testing.assert_allclose(np.array(mx.vmap(f)(x)), eager, atol=1e-6)
    (_, tangent) = mx.jvp(f, [x], [mx.ones_like(x)])
    grad = mx.grad(lambda v: f(v).sum())
    cotangent = grad(x)
    np.testing.assert_allclose(np.array(tangent[0]), np.array(cotangent), atol=1e-6)
    # a training step compiled as a whole fuses across the function (its clips fenced)
    np.testing.assert_allclose(np.array(mx.compile(grad)(x)), np.array(cotangent), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("tanh", ["--clamp", "9", "--degrees", "6", "3"]),
        ("erf", ["--clamp", "4", "--degrees", "7", "4"]),
        ("expm1", ["--clamp", "18", "--degrees", "5", "0", "--halvings", "5"]),
    ],
)
def test_the_fitting_script_gives_the_coefficients(name, arguments) -> None:
    import ast
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).parents[1] / "scripts" / "fit_fastmath.py"
    out = subprocess.run(
        [sys.executable, str(script), name, *arguments], capture_output=True, text=True, check=True
    ).stdout
    lines = dict(line.split(" = ") for line in out.splitlines() if " = " in line)
    prefix = name.upper()
    assert ast.literal_eval(lines["P"]) == list(getattr(_fastmath, f"_{prefix}_P"))
    if name != "expm1":
        assert ast.literal_eval(lines["Q"]) == list(getattr(_fastmath, f"_{prefix}_Q"))
    else:  # and the clamp and the number of halvings are the module's
        assert float(arguments[1]) == _fastmath._EXPM1_CLAMP
        assert int(arguments[-1]) == _fastmath._EXPM1_HALVINGS


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_half_precision_computed_in_float32(dtype: mx.Dtype) -> None:
    x = mx.array(np.linspace(-10, 10, 401), dtype)
    y = _fastmath.tanh(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(
        np.array(y.astype(mx.float32)), np.array(mx.tanh(x).astype(mx.float32))
    )


def test_small_arrays_use_mlx() -> None:
    # a stream step is bound by its number of operations: small arrays keep MLX's one
    x = mx.random.normal((1, 1, 64)) * 3
    for name in ("tanh", "sigmoid", "erf"):
        f = getattr(_fastmath, name)
        np.testing.assert_array_equal(np.array(f(x)), np.array(getattr(mx, name)(x)))


def test_other_dtypes_and_devices_use_mlx() -> None:
    x64 = mx.array(np.linspace(-5, 5, 4001), mx.float64)
    np.testing.assert_array_equal(np.array(_fastmath.tanh(x64)), np.array(mx.tanh(x64)))
    ints = mx.array(np.arange(-2000, 2100) % 7 - 3)
    np.testing.assert_array_equal(np.array(_fastmath.sigmoid(ints)), np.array(mx.sigmoid(ints)))


@pytest.mark.skipif(not mx.is_available(mx.gpu), reason="no GPU")
def test_a_gpu_uses_mlx() -> None:
    x = mx.random.normal((4096,)) * 3
    mx.set_default_device(mx.gpu)  # the on_cpu fixture restores the default
    for name in ("tanh", "sigmoid", "erf"):
        y = getattr(_fastmath, name)(x)
        np.testing.assert_array_equal(np.array(y), np.array(getattr(mx, name)(x)))


def test_hidden_activations_are_vectorised_the_output_activation_exact() -> None:
    assert ACTIVATIONS["tanh"] is _fastmath.tanh
    assert ACTIVATIONS["sigmoid"] is _fastmath.sigmoid
    assert ACTIVATIONS["gelu"] is _fastmath.gelu
    assert ACTIVATIONS["elu"] is _fastmath.elu
    assert ACTIVATIONS["selu"] is _fastmath.selu
    assert get_activation("sigmoid", exact=True) is mx.sigmoid
    assert EXACT_ACTIVATIONS["gelu"] is nn.gelu
    model = TCN(3, [8, 8], kernel_sizes=3, activation="tanh", output_activation="sigmoid")
    assert model.network[0].activation1 is _fastmath.tanh
    assert model.activation_out is mx.sigmoid
    # the exact sigmoid keeps the tiny values a loss may take the logarithm of
    tiny = np.array(model.activation_out(mx.full((_fastmath.MIN_SIZE,), -30.0)))
    assert 0 < tiny[0] < 1e-12


def test_glu_gate_uses_the_vectorised_sigmoid() -> None:
    x = mx.random.normal((2, 500, 6)) * 4
    a, b = np.split(np.array(x).astype(np.float64), 2, axis=-1)
    np.testing.assert_allclose(np.array(glu(x)), a / (1 + np.exp(-b)), atol=1e-6)


def test_backward_runs_on_the_forward_stream() -> None:
    lane = mx.new_stream(mx.cpu)
    with mx.stream(lane):
        _fastmath.tanh(mx.zeros((_fastmath.MIN_SIZE,)))
    assert ("tanh", str(lane)) in _fastmath._CUSTOM
    x = mx.array(np.linspace(-3, 3, _fastmath.MIN_SIZE).astype(np.float32))

    def loss(v: mx.array) -> mx.array:
        with mx.stream(lane):
            return _fastmath.tanh(v).sum()

    np.testing.assert_allclose(np.array(mx.grad(loss)(x)), 1 - np.tanh(np.array(x)) ** 2, atol=1e-6)
