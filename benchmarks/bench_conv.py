"""Benchmark the convolution primitive: ``mx.conv1d`` vs ``mlx_tcn.ops.conv1d`` vs torch.

Run from the repository root::

    python benchmarks/bench_conv.py            # full table (about two minutes on 2 cores)
    python benchmarks/bench_conv.py --quick    # skip mx.conv1d for dilation > 1 (seconds each)
    python benchmarks/bench_conv.py --threads 1 --cpu-time   # the work, on a busy machine

Every case is a valid convolution of an already padded ``(B, T + (K - 1) d, C)`` input
giving ``(B, T, C)``, as a causal TCN layer runs it. "fwd" is the forward pass,
"fwd+bwd" the forward plus the gradients of ``sum(y * g)`` for input, weight and bias
(3x the forward FLOPs). Times are the best of several repeats (the machine may be shared);
torch runs ``torch.nn.functional.conv1d`` on its native ``NCL`` layout with the same
thread count as the BLAS. ``ratio`` is time / torch time (below 1: faster than torch).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

SMNIST = "sMNIST layer (B=64, T=784, C=25, K=7)"
MID = "mid-size layer (B=16, T=1024, C=128, K=3)"


TIMER = time.perf_counter


def best_ms(fn: Callable[[], object], budget_s: float, max_reps: int = 50) -> float:
    """Best time in ms of ``fn()`` over repeats that fit in ``budget_s`` (>= 2 runs)."""
    fn()  # warm-up: compile caches, buffer cache, thread pools
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < 2 or time.perf_counter() - start < budget_s):
        t0 = TIMER()
        fn()
        times.append(TIMER() - t0)
    return min(times) * 1e3


def mlx_cases(conv: Callable, x, w, b, g, dilation: int):
    """``(forward, forward+backward)`` closures that evaluate their results."""
    import mlx.core as mx

    def fwd():
        mx.eval(conv(x, w, b, dilation))

    # value_and_grad: with grad alone MLX would skip the forward (d sum(y g) / dy = g)
    step = mx.value_and_grad(lambda x, w, b: (conv(x, w, b, dilation) * g).sum(), argnums=(0, 1, 2))

    def fwd_bwd():
        mx.eval(step(x, w, b))

    return fwd, fwd_bwd


def torch_cases(x, w, b, g, dilation: int):
    import torch
    import torch.nn.functional as F

    xt = torch.tensor(x).permute(0, 2, 1).contiguous().requires_grad_(True)
    wt = torch.tensor(w).permute(0, 2, 1).contiguous().requires_grad_(True)
    bt = torch.tensor(b).requires_grad_(True)
    gt = torch.tensor(g).permute(0, 2, 1).contiguous()

    def fwd():
        with torch.no_grad():
            F.conv1d(xt, wt, bt, dilation=dilation)

    def fwd_bwd():
        xt.grad = wt.grad = bt.grad = None
        F.conv1d(xt, wt, bt, dilation=dilation).backward(gt)

    return fwd, fwd_bwd


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip mx.conv1d at dilation > 1")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument(
        "--blas", default=None, help="BLAS for MLX (sets MLX_TCN_BLAS: a library path, or 0)"
    )
    parser.add_argument("--threads", type=int, default=None, help="BLAS and torch threads")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with process CPU time (all threads) instead of wall time: the work "
        "done, robust to other load on a shared machine",
    )
    args = parser.parse_args(argv)
    if args.blas is not None:
        os.environ["MLX_TCN_BLAS"] = args.blas
    if args.threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    if args.cpu_time:
        global TIMER
        TIMER = time.process_time

    import mlx.core as mx
    import numpy as np
    import torch

    import mlx_tcn  # noqa: F401  (first: points MLX at an optimized BLAS)
    from mlx_tcn import _backend, ops

    info = _backend.info()
    threads = args.threads or info.get("blas_threads") or os.cpu_count() or 1
    torch.set_num_threads(threads)
    print(f"MLX {info['mlx_version']} on {info['default_device']}; BLAS: {info['blas']}")
    print(f"torch {torch.__version__} with {threads} threads; {os.cpu_count()} CPUs")
    print("load average at start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    print("times: " + ("process CPU time, all threads" if args.cpu_time else "wall clock"))

    def seed_conv(x, w, b, d):
        return mx.conv1d(x, w, dilation=d) + b

    def ops_conv(x, w, b, d):
        return ops.conv1d(x, w, b, dilation=d)

    cases = [(MID, 16, 1024, 128, 3, d) for d in (1, 2, 4, 8, 16, 32, 64, 128)]
    cases += [(SMNIST, 64, 784, 25, 7, d) for d in (1, 2, 8, 32, 128)]
    rng = np.random.default_rng(0)
    header = (
        "| layer | d | pass | mx.conv1d ms (GFLOP/s) | ops.conv1d ms (GFLOP/s) "
        "| torch ms (GFLOP/s) | ops / torch |"
    )
    print()
    print(header)
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, batch, length, c, k, d in cases:
        x = rng.standard_normal((batch, length + (k - 1) * d, c)).astype(np.float32)
        w = (rng.standard_normal((c, k, c)) / np.sqrt(c * k)).astype(np.float32)
        b = rng.standard_normal(c).astype(np.float32)
        g = rng.standard_normal((batch, length, c)).astype(np.float32)
        flops = 2.0 * batch * length * c * c * k
        xm, wm, bm, gm = (mx.array(a) for a in (x, w, b, g))
        runs = {
            "seed": mlx_cases(seed_conv, xm, wm, bm, gm, d),
            "ops": mlx_cases(ops_conv, xm, wm, bm, gm, d),
            "torch": torch_cases(x, w, b, g, d),
        }
        for p, label, mult in ((0, "fwd", 1), (1, "fwd+bwd", 3)):
            cells, ms = [], {}
            for key in ("seed", "ops", "torch"):
                if key == "seed" and args.quick and d > 1:
                    cells.append("skipped")
                    continue
                budget = args.budget if key != "seed" or d == 1 else 0.0
                ms[key] = best_ms(runs[key][p], budget, max_reps=50 if budget else 1)
                cells.append(f"{ms[key]:.2f} ({mult * flops / ms[key] / 1e6:.0f})")
            ratio = ms["ops"] / ms["torch"]
            print(f"| {name} | {d} | {label} | " + " | ".join(cells) + f" | {ratio:.2f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
