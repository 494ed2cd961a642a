"""Issue 14's "taps stacked into K or N" idea, measured against the per-tap GEMMs of ``ops.conv1d``.

``mlx_tcn.ops.conv1d`` runs one GEMM per kernel tap, ``(rows, C) @ (C, C)``, accumulated
with ``addmm``. Two larger GEMMs compute the same convolution:

* **K-stacked** (im2col): gather the ``k`` taps' frames into ``(rows, k*C)`` and multiply
  by ``(k*C, C)`` once (``ops._gathered``, the form stream steps use);
* **N-stacked**: multiply the input by all taps at once, ``(rows, C) @ (C, k*C)``, then add
  the ``k`` column blocks shifted by ``j*dilation`` frames.

A third form keeps the output in cache across the taps (issue 14's "time-blocked" idea):
**time-blocked**, the per-tap GEMMs run on blocks of ``--block-rows`` output rows, one block
after another, and the blocks are joined.

For each benchmark model (``bench_models_report.ALL_MODELS``) the script takes one of its
hidden convolutions (``C -> C``, dilation 4, the model's batch and length) and times, in
one process, the arms alternated over rounds: the full convolution in each form, and the
stacked GEMMs alone on ready-made operands (a lower bound for their form: no gather, no
shifted sum). Median of the per-round medians, per-round ratios to ``ops.conv1d`` with
their range::

    python benchmarks/bench_tap_stacking.py                 # one thread (see below)
    python benchmarks/bench_tap_stacking.py --rounds 8 --models mid,g-short

Threads: it sets ``OPENBLAS_NUM_THREADS`` and ``MLX_TCN_THREADS`` to ``--threads`` (default
1) before MLX loads, so the arms compare GEMM kernels, not lane splitting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="smnist,mid,g-narrow,g-wide,g-deep,g-short,g-mid")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--iters", type=int, default=5, help="timed iterations per arm and round")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dilation", type=int, default=4)
    p.add_argument("--block-rows", type=int, default=512, help="output rows per time block")
    return p


def _median_time(fn: Callable[[], object], iters: int) -> float:
    import mlx.core as mx

    mx.eval(fn())  # warm-up
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        mx.eval(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _arms(
    batch: int, length: int, c: int, k: int, d: int, block_rows: int
) -> dict[str, Callable[[], object]]:
    import mlx.core as mx

    from mlx_tcn import ops

    span = d * (k - 1)
    x = mx.random.normal((batch, length + span, c))
    w = mx.random.normal((c, k, c)) * 0.1
    b = mx.zeros((c,))
    w_k = w.reshape(c, k * c).T  # (k*C, C): row j*C + i is tap j, input channel i
    w_n = mx.contiguous(w.transpose(2, 1, 0).reshape(c, k * c))  # (C, k*C): block j is tap j
    cols = mx.contiguous(ops._window(x, k, d)).reshape(batch * length, k * c)
    flat = x.reshape(-1, c)
    mx.eval(x, w, b, w_k, w_n, cols, flat)

    def n_stacked() -> mx.array:
        y = (flat @ w_n).reshape(batch, length + span, k, c)
        out = y[:, 0:length, 0]
        for j in range(1, k):
            out = out + y[:, j * d : j * d + length, j]
        return out + b

    taps = [mx.contiguous(w[:, j, :].T) for j in range(k)]
    mx.eval(taps)

    def time_blocked() -> mx.array:
        rows, padded = batch * (length + span) - span, length + span
        parts = []
        for s in range(0, rows, block_rows):
            n = min(block_rows, rows - s)
            y = flat[s : s + n] @ taps[0]
            for j in range(1, k):
                y = mx.addmm(y, flat[s + j * d : s + j * d + n], taps[j])
            parts.append(y)
        y = mx.concatenate(parts) + b
        return mx.as_strided(y, (batch, length, c), (padded * c, c, 1))

    return {
        "per tap (ops.conv1d)": lambda: ops.conv1d(x, w, b, dilation=d),
        "K-stacked (gather + 1 GEMM)": lambda: ops._gathered(x, w, b, d),
        "N-stacked (1 GEMM + shifted sum)": n_stacked,
        "time-blocked (per-tap GEMMs)": time_blocked,
        "K-stacked GEMM alone": lambda: cols @ w_k,
        "N-stacked GEMM alone": lambda: flat @ w_n,
    }


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MLX_TCN_THREADS"] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_models_report as report
    import mlx.core as mx

    import mlx_tcn  # noqa: F401  (routes MLX's matmul to the BLAS, as the library runs)

    print(f"threads {args.threads}, dilation {args.dilation}, {args.rounds} rounds x "
          f"{args.iters} iterations; ms: median over rounds (range); ratio to ops.conv1d")  # fmt: skip
    for key in args.models.split(","):
        spec = report.ALL_MODELS[key]
        c, k = spec.channels[0], spec.kernel_size
        arms = _arms(spec.batch, spec.length, c, k, args.dilation, args.block_rows)
        names = list(arms)
        ref = arms[names[0]]()
        for n in names[1:4]:  # the full convolutions must compute the same output
            if not mx.allclose(arms[n](), ref, atol=1e-3, rtol=1e-3).item():
                raise RuntimeError(f"{n} differs from ops.conv1d on {spec.title}")
        per_round: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for n in order:
                per_round[n].append(_median_time(arms[n], args.iters))
        gflop = 2 * spec.batch * spec.length * c * c * k / 1e9
        print(f"\n{spec.title}: B={spec.batch}, T={spec.length}, C={c}, k={k} ({gflop:.2f} GFLOP)")
        base = per_round[names[0]]
        for n in names:
            ts = per_round[n]
            ratios = sorted(t / b0 for t, b0 in zip(ts, base, strict=True))
            med = statistics.median(ts)
            print(f"  {n:34s} {1000 * med:8.2f} ms ({1000 * min(ts):.2f}-{1000 * max(ts):.2f})"
                  f"  {gflop / med:6.1f} GFLOP/s  x{statistics.median(ratios):.2f} "
                  f"({ratios[0]:.2f}-{ratios[-1]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
