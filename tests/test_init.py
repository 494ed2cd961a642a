"""Tests for mlx_tcn.init: gains, initialiser statistics and bounds, get_initializer rules."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlx_tcn import init
from mlx_tcn.init import (
    INITIALIZERS,
    calculate_gain,
    get_initializer,
    he_normal,
    he_uniform,
    kaiming_normal,
    kaiming_uniform,
    normal,
    uniform,
    xavier_normal,
    xavier_uniform,
)

# (out, k, in) conv weight: fan_in = 48 * 5 = 240, fan_out = 64 * 5 = 320.
CONV = (64, 5, 48)
# Large enough that the empirical std is within ~1% of the true one.
BIG_CONV = (256, 5, 192)


def _np(a: mx.array) -> np.ndarray:
    return np.array(a, dtype=np.float64)


# --------------------------------------------------------------------- calculate_gain


@pytest.mark.parametrize(
    ("name", "param", "expected"),
    [
        ("linear", None, 1.0),
        ("conv1d", None, 1.0),
        ("conv_transpose1d", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5.0 / 3.0),
        ("relu", None, math.sqrt(2.0)),
        ("leaky_relu", None, math.sqrt(2.0 / (1.0 + 0.01**2))),
        ("leaky_relu", 0.2, math.sqrt(2.0 / 1.04)),
        ("leaky_relu", 0, math.sqrt(2.0)),
        ("selu", None, 0.75),
    ],
)
def test_calculate_gain_values(name, param, expected):
    assert calculate_gain(name, param) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("name", "param"),
    [
        ("linear", None),
        ("conv1d", None),
        ("conv2d", None),
        ("conv3d", None),
        ("conv_transpose1d", None),
        ("conv_transpose2d", None),
        ("conv_transpose3d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.3),
        ("leaky_relu", 1),
        ("selu", None),
    ],
)
def test_calculate_gain_matches_torch(name, param):
    torch = pytest.importorskip("torch")
    assert calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


def test_calculate_gain_unknown_name():
    with pytest.raises(ValueError, match="Unsupported nonlinearity 'gelu'"):
        calculate_gain("gelu")


def test_calculate_gain_not_a_string():
    with pytest.raises(TypeError, match="nonlinearity must be a string, got 3"):
        calculate_gain(3)  # type: ignore[arg-type]


def test_calculate_gain_bad_slope():
    with pytest.raises(TypeError, match="negative slope.*'x'"):
        calculate_gain("leaky_relu", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="negative slope.*True"):
        calculate_gain("leaky_relu", True)


# --------------------------------------------------------------------- fans


def test_fans_conv_and_linear():
    assert init._fans((64, 5, 48)) == (240, 320)
    assert init._fans((10, 7)) == (7, 10)
    assert init._fans((8, 3, 2, 4)) == (24, 48)


def test_fans_match_torch_layout():
    torch = pytest.importorskip("torch")
    w = torch.empty(64, 48, 5)  # torch conv layout (out, in, k)
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(w)
    assert init._fans((64, 5, 48)) == (fan_in, fan_out)


# --------------------------------------------------------------------- statistics


def _std_xavier(shape, gain=1.0):
    fan_in, fan_out = init._fans(shape)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


SQRT2 = math.sqrt(2.0)


def _std_kaiming(shape, gain=SQRT2, mode="fan_in"):
    fan_in, fan_out = init._fans(shape)
    return gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)


@pytest.mark.parametrize(
    ("fn", "kwargs", "std"),
    [
        (xavier_normal, {}, _std_xavier(BIG_CONV)),
        (xavier_normal, {"gain": 5 / 3}, _std_xavier(BIG_CONV, 5 / 3)),
        (kaiming_normal, {}, _std_kaiming(BIG_CONV)),
        (kaiming_normal, {"nonlinearity": "tanh"}, _std_kaiming(BIG_CONV, 5 / 3)),
        (kaiming_normal, {"mode": "fan_out"}, _std_kaiming(BIG_CONV, mode="fan_out")),
        (
            kaiming_normal,
            {"a": 0.2, "nonlinearity": "leaky_relu"},
            _std_kaiming(BIG_CONV, math.sqrt(2 / 1.04)),
        ),
        (normal, {}, 0.01),
        (normal, {"std": 0.5}, 0.5),
    ],
)
def test_normal_family_std(fn, kwargs, std):
    w = _np(fn(BIG_CONV, key=mx.random.key(1), **kwargs))
    assert w.shape == BIG_CONV
    assert abs(w.std() / std - 1.0) < 0.02
    assert abs(w.mean()) < 0.02 * std


def test_normal_mean():
    w = _np(normal((500, 400), mean=3.0, std=0.1, key=mx.random.key(2)))
    assert w.mean() == pytest.approx(3.0, abs=1e-3)
    assert w.std() == pytest.approx(0.1, rel=0.02)


@pytest.mark.parametrize(
    ("fn", "kwargs", "bound"),
    [
        (xavier_uniform, {}, math.sqrt(3) * _std_xavier(BIG_CONV)),
        (xavier_uniform, {"gain": 2.0}, math.sqrt(3) * _std_xavier(BIG_CONV, 2.0)),
        (kaiming_uniform, {}, math.sqrt(3) * _std_kaiming(BIG_CONV)),
        (
            kaiming_uniform,
            {"nonlinearity": "selu", "mode": "fan_out"},
            math.sqrt(3) * _std_kaiming(BIG_CONV, 0.75, "fan_out"),
        ),
    ],
)
def test_uniform_family_bounds_and_std(fn, kwargs, bound):
    w = _np(fn(BIG_CONV, key=mx.random.key(3), **kwargs))
    # Every value lies inside [-bound, bound] (float32 rounding of the bound allowed for).
    assert w.min() >= -np.float32(bound) and w.max() <= np.float32(bound)
    # ... and the samples reach close to both ends.
    assert w.min() < -0.999 * bound and w.max() > 0.999 * bound
    # U(-b, b) has std b / sqrt(3).
    assert abs(w.std() / (bound / math.sqrt(3)) - 1.0) < 0.02


def test_xavier_uniform_bound_formula_exact():
    # fan_in = 240, fan_out = 320: bound = sqrt(6 / 560)
    w = _np(xavier_uniform(CONV, key=mx.random.key(4)))
    assert np.abs(w).max() <= np.float32(math.sqrt(6 / 560))


def test_uniform_range():
    w = _np(uniform((400, 500), a=-0.5, b=2.0, key=mx.random.key(5)))
    assert w.min() >= -0.5 and w.max() <= 2.0
    assert w.min() < -0.499 and w.max() > 1.999
    assert w.mean() == pytest.approx(0.75, abs=5e-3)


def test_uniform_defaults_are_unit_interval():
    w = _np(uniform((1000,), key=mx.random.key(6)))
    assert w.min() >= 0.0 and w.max() <= 1.0


def test_linear_shape_fans():
    # Linear (out=30, in=900): kaiming std = sqrt(2 / 900)
    w = _np(kaiming_normal((30, 900), key=mx.random.key(7)))
    assert w.std() == pytest.approx(math.sqrt(2 / 900), rel=0.03)


def test_dtype_and_key_reproducible():
    a = xavier_uniform(CONV, dtype=mx.float16, key=mx.random.key(8))
    b = xavier_uniform(CONV, dtype=mx.float16, key=mx.random.key(8))
    c = xavier_uniform(CONV, dtype=mx.float16, key=mx.random.key(9))
    assert a.dtype == mx.float16
    assert mx.array_equal(a, b).item()
    assert not mx.array_equal(a, c).item()


def test_global_seed_reproducible():
    mx.random.seed(11)
    a = kaiming_uniform(CONV)
    mx.random.seed(11)
    b = kaiming_uniform(CONV)
    assert mx.array_equal(a, b).item()


def test_aliases_are_the_same_functions():
    assert he_uniform is kaiming_uniform
    assert he_normal is kaiming_normal
    k = mx.random.key(12)
    assert mx.array_equal(he_normal(CONV, key=k), kaiming_normal(CONV, key=k)).item()


def test_zero_gain_gives_zeros():
    assert not mx.any(xavier_normal(CONV, gain=0.0)).item()


# --------------------------------------------------------------------- validation


def test_fan_based_need_2d_shape():
    with pytest.raises(ValueError, match=r"shape needs at least 2 dimensions.*\(5,\)"):
        xavier_uniform((5,))
    with pytest.raises(ValueError, match=r"shape needs at least 2 dimensions"):
        kaiming_normal((5,))


def test_bad_shape_values():
    with pytest.raises(ValueError, match=r"shape must contain non-negative ints, got \(3, -1\)"):
        xavier_uniform((3, -1))
    with pytest.raises(ValueError, match=r"shape must contain non-negative ints"):
        normal((3, 2.5))
    with pytest.raises(TypeError, match="shape must be a tuple of ints, got None"):
        uniform(None)  # type: ignore[arg-type]


def test_int_shape_accepted_for_normal_and_uniform():
    assert normal(7).shape == (7,)
    assert uniform(3).shape == (3,)


def test_bad_gain_and_std():
    with pytest.raises(ValueError, match="gain must be >= 0, got -1"):
        xavier_uniform(CONV, gain=-1.0)
    with pytest.raises(TypeError, match="gain must be a number, got 'x'"):
        xavier_normal(CONV, gain="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="std must be >= 0, got -0.1"):
        normal(CONV, std=-0.1)
    with pytest.raises(TypeError, match="mean must be a number, got None"):
        normal(CONV, mean=None)  # type: ignore[arg-type]


def test_non_finite_numbers_and_non_float_dtypes_are_refused():
    # Before: inf gains and stds, NaN means and slopes made non-finite weights, and an integer
    # dtype reached MLX ("[uniform] Can only generate uniform numbers with real floating...").
    with pytest.raises(ValueError, match="std must be finite, got inf"):
        normal(CONV, std=float("inf"))
    with pytest.raises(ValueError, match="gain must be finite, got inf"):
        xavier_uniform(CONV, gain=float("inf"))
    with pytest.raises(ValueError, match="mean must be finite, got nan"):
        normal(CONV, mean=float("nan"))
    with pytest.raises(ValueError, match="a must be finite, got nan"):
        kaiming_uniform(CONV, a=float("nan"))
    with pytest.raises(ValueError, match="b must be finite, got inf"):
        uniform(CONV, b=float("inf"))
    for f in (xavier_uniform, normal, uniform, kaiming_normal):
        with pytest.raises(TypeError, match="dtype must be an MLX floating-point dtype"):
            f(CONV, dtype=mx.int32)
    w = normal(CONV, mean=np.float32(0.5), std=np.float64(0.1), dtype=mx.float16)
    assert w.dtype == mx.float16 and abs(float(w.mean()) - 0.5) < 0.05  # NumPy numbers are fine


def test_bad_uniform_bounds():
    with pytest.raises(ValueError, match="a <= b, got a=1.0, b=0.0"):
        uniform(CONV, a=1.0, b=0.0)
    with pytest.raises(TypeError, match="b must be a number, got '1'"):
        uniform(CONV, b="1")  # type: ignore[arg-type]


def test_bad_kaiming_mode_and_nonlinearity():
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        kaiming_uniform(CONV, mode="fan_avg")
    with pytest.raises(ValueError, match="Unsupported nonlinearity 'swish'"):
        kaiming_normal(CONV, nonlinearity="swish")


# --------------------------------------------------------------------- get_initializer


def test_initializer_names():
    assert set(INITIALIZERS) == {
        "xavier_uniform",
        "xavier_normal",
        "kaiming_uniform",
        "kaiming_normal",
        "he_uniform",
        "he_normal",
        "normal",
        "uniform",
    }


def test_get_initializer_unknown_name_lists_valid_names():
    with pytest.raises(
        ValueError,
        match=r"kernel_initializer must be one of xavier_uniform, .*uniform; got 'glorot'",
    ):
        get_initializer("glorot", "relu")
    with pytest.raises(ValueError, match="got None"):
        get_initializer(None, "relu")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("activation", "gain"),
    [
        ("relu", math.sqrt(2)),
        ("tanh", 5 / 3),
        ("sigmoid", 1.0),
        ("selu", 0.75),
        ("leaky_relu", math.sqrt(2 / (1 + 0.01**2))),
        ("gelu", math.sqrt(2)),
        ("elu", math.sqrt(2)),
        ("softmax", math.sqrt(2)),
        ("log_softmax", math.sqrt(2)),
    ],
)
def test_get_initializer_xavier_gain(activation, gain):
    assert init._initializer_kwargs("xavier_uniform", activation) == {
        "gain": pytest.approx(gain, rel=1e-15)
    }
    key = mx.random.key(13)
    got = get_initializer("xavier_normal", activation)(CONV, key=key)
    expected = xavier_normal(CONV, gain=gain, key=key)
    assert mx.allclose(got, expected, rtol=1e-6, atol=0).item()


@pytest.mark.parametrize(
    ("activation", "nonlinearity"),
    [
        ("relu", "relu"),
        ("tanh", "tanh"),
        ("sigmoid", "sigmoid"),
        ("selu", "selu"),
        ("leaky_relu", "leaky_relu"),
        ("gelu", "relu"),
        ("elu", "relu"),
        ("softmax", "relu"),
        ("log_softmax", "relu"),
    ],
)
@pytest.mark.parametrize("name", ["kaiming_uniform", "kaiming_normal", "he_uniform", "he_normal"])
def test_get_initializer_kaiming_nonlinearity(name, activation, nonlinearity):
    assert init._initializer_kwargs(name, activation) == {"nonlinearity": nonlinearity}
    key = mx.random.key(14)
    got = get_initializer(name, activation)(CONV, key=key)
    expected = INITIALIZERS[name](CONV, nonlinearity=nonlinearity, key=key)
    assert mx.array_equal(got, expected).item()


def test_get_initializer_kaiming_leaky_relu_uses_slope_zero_like_torch():
    # torch's kaiming_* default a=0, so pytorch-tcn's leaky_relu gets exactly the ReLU gain.
    w = _np(get_initializer("kaiming_uniform", "leaky_relu")(BIG_CONV, key=mx.random.key(15)))
    bound = math.sqrt(3) * _std_kaiming(BIG_CONV)
    assert w.max() <= np.float32(bound) and w.max() > 0.999 * bound


@pytest.mark.parametrize(("name", "kwargs"), [("normal", {"std": 1.0}), ("uniform", {})])
def test_get_initializer_no_gain_for_normal_uniform(name, kwargs):
    # pytorch-tcn calls torch's normal_ and uniform_ with their defaults: N(0, 1), U(0, 1).
    # Before, "normal" gave init.normal's own N(0, 0.01) (the original TCN code's scale).
    assert init._initializer_kwargs(name, "tanh") == kwargs
    key = mx.random.key(16)
    assert mx.array_equal(
        get_initializer(name, "tanh")(CONV, key=key), INITIALIZERS[name](CONV, key=key, **kwargs)
    ).item()
    w = _np(get_initializer(name, "relu")((64, 3, 64), key=key))
    assert abs(w.std() - (1.0 if name == "normal" else math.sqrt(1 / 12))) < 0.02


@pytest.mark.parametrize("activation", [nn.ReLU(), nn.GELU, mx.tanh, lambda x: x])
@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_get_initializer_callable_activation_gets_no_gain(name, activation):
    kwargs = {"std": 1.0} if name == "normal" else {}  # torch's default, not a gain
    assert init._initializer_kwargs(name, activation) == kwargs
    key = mx.random.key(17)
    got = get_initializer(name, activation)(CONV, key=key)
    assert mx.array_equal(got, INITIALIZERS[name](CONV, key=key, **kwargs)).item()


def test_get_initializer_unknown_activation_name():
    with pytest.raises(ValueError, match="Unsupported nonlinearity 'swish'"):
        get_initializer("xavier_uniform", "swish")
    with pytest.raises(ValueError, match="Unsupported nonlinearity 'swish'"):
        get_initializer("he_normal", "swish")


def test_get_initializer_returned_callable():
    f = get_initializer("he_uniform", "relu")
    assert f.__name__ == "he_uniform"
    w = f((8, 3, 4), mx.bfloat16)
    assert w.shape == (8, 3, 4) and w.dtype == mx.bfloat16
    assert f((5, 6)).dtype == mx.float32


@pytest.mark.parametrize(
    ("name", "activation"),
    [
        ("xavier_uniform", "relu"),
        ("xavier_normal", "tanh"),
        ("xavier_uniform", "gelu"),
        ("kaiming_uniform", "relu"),
        ("kaiming_normal", "leaky_relu"),
        ("kaiming_normal", "tanh"),
    ],
)
def test_get_initializer_matches_pytorch_tcn_gain(name, activation):
    """Same distribution as pytorch-tcn's init for a torch conv weight of the same shape."""
    torch = pytest.importorskip("torch")
    ptcn = pytest.importorskip("pytorch_tcn.tcn")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn, kwargs = ptcn.get_kernel_init_fn(name, activation)
    torch.manual_seed(0)
    t = torch.empty(256, 192, 5)  # torch layout of BIG_CONV
    fn(t, **kwargs)
    ours = _np(get_initializer(name, activation)(BIG_CONV, key=mx.random.key(18)))
    theirs = t.numpy().astype(np.float64)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.02)
    if name.endswith("uniform"):
        assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=1e-3)


# --------------------------------------------------------------------------- package top level

_MOVED = [
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


@pytest.mark.parametrize("name", _MOVED)
def test_initialisers_live_under_init_and_old_top_level_names_warn(name):
    import mlx_tcn

    assert name not in mlx_tcn.__all__ and "init" in mlx_tcn.__all__
    with pytest.warns(DeprecationWarning, match=rf"mlx_tcn\.{name} moved to mlx_tcn\.init\.{name}"):
        old = getattr(mlx_tcn, name)
    assert old is getattr(init, name) is getattr(mlx_tcn.init, name)


def test_old_from_import_still_works_and_unknown_names_fail():
    with pytest.warns(DeprecationWarning):
        from mlx_tcn import xavier_uniform as old
    assert old is init.xavier_uniform
    import mlx_tcn

    with pytest.raises(AttributeError, match="no attribute 'xavier'"):
        mlx_tcn.xavier  # noqa: B018
