"""Operations and time per ``model.stream_step()`` step, this checkout against another.

A batch-1 stream step is bound by its number of MLX operations (docs/streaming.md,
"Operations per step"), so this reports both: the primitives in the graph of one compiled
call (counted from ``mx.export_to_dot``; a fused element-wise kernel is one) and the median
wall time per step. With ``--against``, the other checkout's ``src`` runs in turn with this
one, each case in a fresh process, over ``--rounds`` rounds, and the ratio this / other is
given per round (median and range): on a shared machine only alternated, relative numbers
mean anything::

    python benchmarks/bench_stream_ops.py                        # this checkout only
    python benchmarks/bench_stream_ops.py --against /tmp/old/src --rounds 6

(``git archive <commit> src | tar -x -C /tmp/old`` makes such a ``src``.) MLX's BLAS runs
single-threaded (``OPENBLAS_NUM_THREADS=1``), as a stream step is too small for a second.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time

MODELS = {
    "8x32, k=3": dict(num_inputs=32, num_channels=[32] * 8, kernel_sizes=3),
    "8x25, k=7": dict(num_inputs=1, num_channels=[25] * 8, kernel_sizes=7),
    "skip": dict(
        num_inputs=8,
        num_channels=[16, 32, 32, 24],
        kernel_sizes=3,
        use_skip_connections=True,
        output_projection=4,
    ),
}
BATCHES = (1, 32)
HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def _worker(steps: int) -> dict:
    import mlx_tcn  # noqa: I001  (first: it routes MLX's matmul to an optimized BLAS)
    import mlx.core as mx
    from mlx.utils import tree_flatten

    out = {}
    for name, config in MODELS.items():
        mx.random.seed(0)
        model = mlx_tcn.TCN(**config, causal=True)
        model.eval()
        step = model.stream_step()
        for batch in BATCHES:
            state = model.init_state(batch)
            y, state = step(mx.random.normal((batch, 64, config["num_inputs"])), state)
            mx.eval(y, state)
            x = mx.random.normal((batch, 1, config["num_inputs"]))
            mx.eval(x)
            y, new_state = step(x, state)
            dot = io.StringIO()
            mx.export_to_dot(dot, y, *[v for _, v in tree_flatten(new_state)])
            primitives = len(re.findall(r"shape=rectangle", dot.getvalue()))
            times = []
            for _ in range(20 + steps):
                t0 = time.perf_counter()
                y, state = step(x, state)
                mx.eval(y, state)
                times.append(time.perf_counter() - t0)
            out[f"{name}, batch {batch}"] = {
                "us": statistics.median(times[20:]) * 1e6,
                "primitives": primitives,
            }
    return out


def _run(src: str, steps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": src, "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(steps)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=None, help="another checkout's src directory")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument("--steps", type=int, default=300, help="timed steps per case")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(_worker(args.worker)))
        return

    variants = {"this": HERE} if args.against is None else {"this": HERE, "other": args.against}
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for name, src in variants.items():
            runs[name].append(_run(src, args.steps))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.rounds} rounds of {args.steps} steps; load average now {load:.1f}\n")
    header = "| case | primitives | step (median [range] of rounds) |"
    if args.against:
        header = "| case | primitives, this / other | this | other | this / other |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for case in runs["this"][0]:
        cells = []
        for name in variants:
            us = sorted(r[case]["us"] for r in runs[name])
            cells.append(f"{statistics.median(us):.0f} us [{us[0]:.0f}-{us[-1]:.0f}]")
        counts = " / ".join(str(runs[name][0][case]["primitives"]) for name in variants)
        if args.against:
            ratios = sorted(
                a[case]["us"] / b[case]["us"]
                for a, b in zip(runs["this"], runs["other"], strict=True)
            )
            spread = f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]"
            cells.append(spread)
        print(f"| {case} | {counts} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
