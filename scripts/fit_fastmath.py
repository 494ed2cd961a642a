"""Fit the approximations of ``mlx_tcn._fastmath`` and check them in float32.

``f(x) / x ~ P(u) / Q(u)`` with ``u = x**2 / c**2`` on ``(0, c]`` (``f`` odd: tanh, erf),
``Q(0) = 1``, by iteratively reweighted linear least squares on the relative error
(Sanathanan-Koerner weights ``1 / Q``, then Lawson weights for a near-minimax fit). The
float32 check evaluates exactly as the module does (clip, ``u``, Estrin's scheme, one
division, clip to [-1, 1]) and reports the largest error in ulp and in absolute value over a
dense grid. Before it, the highest coefficient of ``P`` is moved up by float32 steps until
the value at the clamp, by Estrin's scheme and by Horner's rule (the module uses both), is at
least 1, so that tanh and erf of a large value are exactly 1::

    python scripts/fit_fastmath.py tanh --clamp 9 --degrees 6 3
    python scripts/fit_fastmath.py erf --clamp 4 --degrees 7 4

``expm1`` (ELU, SELU and the Gaussian in erf's derivative) is a polynomial instead:
``expm1(r) / r ~ P(r)`` on ``[-c / 2**h, 0]`` for ``r = x / 2**h``, fitted for its relative
error the same way (``Q = 1``), then doubled back ``h`` times by ``e <- e (e + 2)``, which
is ``expm1(2 r)`` from ``e = expm1(r)`` and keeps the relative accuracy near 0 that ``exp(x)
- 1`` loses::

    python scripts/fit_fastmath.py expm1 --clamp 18 --degrees 5 0 --halvings 5

The coefficients it prints (lowest degree first) are the ones in ``_fastmath``. Needs
NumPy and mlx-tcn (``math.erf`` for the reference).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from mlx_tcn._fastmath import _doubled, _estrin, _horner

FUNCTIONS = {"tanh": np.tanh, "erf": np.vectorize(math.erf), "expm1": np.expm1}


def fit(f, clamp: float, n_p: int, n_q: int, iterations: int = 30):  # noqa: ANN001, ANN201
    x = np.unique(
        np.concatenate(
            [
                np.linspace(1e-6, clamp, 20000),
                clamp * (1 - np.cos(np.linspace(0, np.pi / 2, 20000))),
            ]
        )
    )
    x = x[x > 1e-7]
    u = x * x / (clamp * clamp)
    y = f(x) / x
    powers_p = np.vstack([u**i for i in range(n_p + 1)]).T
    powers_q = np.vstack([u**i for i in range(1, n_q + 1)]).T
    lawson = np.ones_like(x)
    q_prev = np.ones_like(x)
    for _ in range(iterations):
        # P(u) - y (Q(u) - 1) = y, weighted by 1 / (|y| Q_prev) for the relative error
        a = np.concatenate([powers_p, -(y[:, None] * powers_q)], axis=1)
        w = lawson / (np.abs(y) * np.abs(q_prev))
        coef, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
        p = coef[: n_p + 1]
        q = np.concatenate([[1.0], coef[n_p + 1 :]])
        q_prev = np.polyval(q[::-1], u)
        err = np.polyval(p[::-1], u) / q_prev / y - 1
        lawson = lawson * (np.abs(err) + 1e-30)
        lawson /= lawson.max()
    return p, q


def evaluate_float32(p, q, x: np.ndarray, clamp: float, scheme=_estrin) -> np.ndarray:  # noqa: ANN001
    """As the module: clip, ``u``, ``P`` and ``Q`` by ``scheme`` (the module's own
    functions, which are arithmetic only and run on NumPy's float32 arrays in the same
    order), one division, and the result clipped to [-1, 1]."""
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    z = np.clip(x.astype(np.float32), -clamp, clamp).astype(np.float32)
    u = (z * z * np.float32(1.0 / (clamp * clamp))).astype(np.float32)
    return np.clip((z * scheme(p32, u) / scheme(q32, u)).astype(np.float32), -1, 1)


def snap(p, q, clamp: float):  # noqa: ANN001, ANN201
    """``p`` with its highest coefficient moved up by float32 steps until both evaluation
    orders give at least 1 at the clamp, which the clip makes exactly 1."""
    p = p.astype(np.float32).copy()
    at_clamp = np.array([clamp], np.float32)

    def reaches_1(p: np.ndarray) -> bool:
        return all(evaluate_float32(p, q, at_clamp, clamp, s)[0] == 1 for s in (_estrin, _horner))

    for _ in range(100_000):
        if reaches_1(p):
            return p
        p[-1] = np.nextafter(p[-1], np.float32(np.inf))
    raise RuntimeError("no float32 value of the highest coefficient reaches 1")


def fit_expm1(clamp: float, degree: int, halvings: int, iterations: int = 30) -> np.ndarray:
    """``P`` with ``expm1(r) ~ r P(r)`` on ``[-clamp / 2**halvings, 0)``, for the relative
    error, by Lawson's iteration."""
    low = clamp / 2**halvings
    r = -low * (1 - np.cos(np.linspace(0, np.pi, 40000))) / 2
    r = np.unique(np.concatenate([r, -np.linspace(1e-7, low, 20000)]))
    r = r[r < -1e-8]
    y = np.expm1(r) / r
    powers = np.vstack([r**i for i in range(degree + 1)]).T
    lawson = np.ones_like(r)
    for _ in range(iterations):
        w = lawson / y
        p, *_ = np.linalg.lstsq(powers * w[:, None], y * w, rcond=None)
        err = powers @ p / y - 1
        lawson = lawson * (np.abs(err) + 1e-30)
        lawson /= lawson.max()
    return p.astype(np.float32)


def evaluate_expm1_float32(p, x: np.ndarray, clamp: float, halvings: int, scheme=_estrin):  # noqa: ANN001, ANN201
    """As the module: ``x`` clipped to ``[-clamp, 0]``, ``r = x / 2**halvings``, ``r P(r)``
    by ``scheme``, then the doublings, all in NumPy's float32."""
    n = np.clip(x.astype(np.float32), -clamp, 0).astype(np.float32)
    return _doubled(p.astype(np.float32), n, halvings, scheme).astype(np.float32)


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ia = a.astype(np.float32).view(np.int32).astype(np.int64)
    ib = b.astype(np.float32).view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function", choices=sorted(FUNCTIONS))
    parser.add_argument("--clamp", type=float, required=True)
    parser.add_argument("--degrees", type=int, nargs=2, required=True, metavar=("P", "Q"))
    parser.add_argument("--halvings", type=int, default=5, help="expm1 only")
    args = parser.parse_args()
    f = FUNCTIONS[args.function]
    if args.function == "expm1":
        p = fit_expm1(args.clamp, args.degrees[0], args.halvings)
        xs = np.concatenate([np.linspace(-30, 0, 600_001), -np.logspace(-30, 1.5, 20_001)]).astype(
            np.float32
        )
        ref = np.expm1(xs.astype(np.float64))
        for scheme in (_estrin, _horner):
            got = evaluate_expm1_float32(p, xs, args.clamp, args.halvings, scheme)
            u = ulps(got, ref.astype(np.float32))
            print(
                f"float32, {scheme.__name__.strip('_')}: max {u.max()} ulp (mean {u.mean():.2f}),"
                f" max abs error {np.abs(got - ref).max():.2e}, at -{args.clamp:g}:"
                f" {got[0]!r}"
            )
        print("P =", [float(c) for c in p])
        return
    p, q = fit(f, args.clamp, *args.degrees)
    q = q.astype(np.float32)
    p = snap(p, q, args.clamp)
    xs = np.concatenate([np.linspace(-12, 12, 400_001), np.logspace(-30, 1.2, 20_001)]).astype(
        np.float32
    )
    ref = f(xs.astype(np.float64))
    got = evaluate_float32(p, q, xs, args.clamp)
    u = ulps(got, ref.astype(np.float32))
    print(
        f"float32: max {u.max()} ulp (mean {u.mean():.2f}), max abs error {np.abs(got - ref).max():.2e}"
    )
    print("P =", [float(np.float32(c)) for c in p])
    print("Q =", [float(np.float32(c)) for c in q])


if __name__ == "__main__":
    main()
