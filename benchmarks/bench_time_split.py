"""A/B of the per-convolution time split over the CPU lanes (``ops._gemm_on_lanes``).

Batches too small for :mod:`mlx_tcn.parallel`'s row split (one sequence, say) have each
convolution's GEMMs split by output steps over the lanes instead. This script measures what
that changes: each case runs in fresh processes with the split off (``ops._MIN_PART_MACS``
raised out of reach) and on (the shipped threshold), the two alternated in every round
(reversed every other round), and prints the median of the per-round time ratios (on / off)
with their range. The same models and steps as ``bench_models.py`` (causal, weight norm,
training = forward + backward + Adam update, every iteration ends in ``mx.eval``)::

    python benchmarks/bench_time_split.py                  # every case, 6 rounds
    python benchmarks/bench_time_split.py --cases wide1 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import bench_models
import bench_models_report as report

CASES = {
    "wide1": report.ModelSpec("wide1", "wide, batch 1", 16, (256,) * 8, 3, 2048, 1, 0.1, None),
    "smnist1": report.ModelSpec("smnist1", "sMNIST, batch 1", 1, (25,) * 8, 7, 784, 1, 0.05, 10),
    "small1": report.ModelSpec(
        "small1", "16 ch, T=256, batch 1", 16, (16,) * 4, 3, 256, 1, 0.1, None
    ),
    "mid16": report.MODELS["mid"],
    # batch 1 between the ends: convolutions of 25M and 6M multiply-adds per part
    "mid1": report.ModelSpec("mid1", "mid-size, batch 1", 64, (128,) * 6, 3, 1024, 1, 0.1, None),
    "c64": report.ModelSpec("c64", "6x64, T=1024, batch 1", 64, (64,) * 6, 3, 1024, 1, 0.1, None),
}


def _worker(case: str, mode: str, arm: str, warmup: int, iters: int) -> None:
    import mlx_tcn  # noqa: F401  (first: it routes MLX's matmul to an optimized BLAS)
    from mlx_tcn import ops

    # "off": no convolution splits; "on": the shipped threshold; a number: that threshold
    if arm != "on":
        ops._MIN_PART_MACS = 1 << 62 if arm == "off" else int(arm)
    step = bench_models._mlx_model(CASES[case], mode, compiled=False)
    times = bench_models._time_loop(step, warmup, iters)
    print(json.dumps({"ms": 1e3 * statistics.median(times)}))


def _run(case: str, mode: str, arm: str, warmup: int, iters: int) -> float:
    args = [sys.executable, __file__, "--worker", case, mode, arm, str(warmup), str(iters)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES)
    )
    parser.add_argument("--modes", default="infer,train")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument(
        "--min-macs", type=int, help="the split's threshold to test (default: the shipped one)"
    )
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case, mode, arm, warmup, iters = args.worker
        _worker(case, mode, arm, int(warmup), int(iters))
        return
    rows = [(c, m) for c in args.cases.split(",") for m in args.modes.split(",")]
    arms = ("off", "on" if args.min_macs is None else str(args.min_macs))
    ms: dict[tuple[str, str, str], list[float]] = {}
    for r in range(args.rounds):
        for case, mode in rows:
            for arm in arms if r % 2 == 0 else arms[::-1]:
                key = (case, mode, "off" if arm == "off" else "on")
                ms.setdefault(key, []).append(_run(case, mode, arm, args.warmup, args.iters))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print("| case | mode | off ms | on ms | on / off: median (range) |")
    print("|---|---|---:|---:|---:|")
    for case, mode in rows:
        off, on = ms[case, mode, "off"], ms[case, mode, "on"]
        ratios = [b / a for a, b in zip(off, on, strict=True)]
        print(
            f"| {CASES[case].title} | {mode} | {statistics.median(off):.1f} | "
            f"{statistics.median(on):.1f} | {statistics.median(ratios):.2f} "
            f"({min(ratios):.2f}-{max(ratios):.2f}) |"
        )


if __name__ == "__main__":
    main()
