"""Data-parallel training on one machine: samples/s of `mlx-tcn train` with 1 process and
with 2 (ring backend on 127.0.0.1), the 2 started by mlx.launch or directly from a hostfile,
alternated over rounds; and the time of one gradient all-reduce (`nn.average_gradients`) of
the same model.

    python benchmarks/bench_distributed.py --rounds 3     # ~3 min on a 2-core machine

mlx.launch's threads poll the ranks' pipes without blocking (MLX 0.32.4), so the launcher
itself keeps most of a core busy; the hostfile arm shows what that costs.

Prints a Markdown table (docs/distributed.md keeps the measured one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCH = Path(sys.executable).with_name("mlx.launch")
MODEL = {"task": "adding", "seq_len": 200, "levels": 4, "hidden": 32, "kernel_size": 5,
         "batch_size": 64, "n_train": 6400, "n_val": 64}  # fmt: skip
STEPS, LOG_EVERY = 60, 20


def _flags(values: dict) -> list[str]:
    return [a for k, v in values.items() for a in ("--" + k.replace("_", "-"), str(v))]


def _train(arm: str, runs: Path, port: int) -> float:
    """Samples/s (global) after the first logging window (compilation, connection)."""
    name = "".join(c if c.isalnum() else "-" for c in arm) + f"-{port}"
    argv = [sys.executable, "-m", "mlx_tcn", "train", "--quiet", "--no-plots",
            "--runs-dir", str(runs), "--name", name, *_flags(MODEL), "--max-steps", str(STEPS),
            "--log-every", str(LOG_EVERY), "--eval-every", "100000"]  # fmt: skip
    if arm == "1":
        subprocess.run(argv, check=True, capture_output=True, timeout=600)
    elif arm == "2 (mlx.launch)":
        argv = [str(LAUNCH), "--backend", "ring", "-n", "2", "--starting-port", str(port),
                "--", *argv]  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True, timeout=600)
    else:  # two ranks from a hostfile, no launcher
        hosts = runs / f"hosts-{port}.json"
        hosts.write_text(json.dumps([[f"127.0.0.1:{port}"], [f"127.0.0.1:{port + 1}"]]))
        env = {**os.environ, "MLX_HOSTFILE": str(hosts)}
        ranks = [subprocess.Popen(argv, env={**env, "MLX_RANK": str(r)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for r in (0, 1)]  # fmt: skip
        try:
            codes = [p.wait(timeout=600) for p in ranks]
        finally:
            for p in ranks:  # a rank left waiting for a failed one
                if p.poll() is None:
                    p.kill()
        if any(codes):
            raise RuntimeError(f"{arm}: the ranks exited with {codes}")
    lines = (runs / name / "metrics.jsonl").read_text().splitlines()
    rates = [r["samples_per_s"] for r in map(json.loads, lines) if r["event"] == "train"]
    return statistics.mean(rates[1:])


def _allreduce_worker() -> None:
    """One rank: time nn.average_gradients of the model's gradient tree."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    from mlx_tcn.train.config import resolve_config
    from mlx_tcn.train.distributed import connect
    from mlx_tcn.train.model import build_model

    world = connect()
    model = build_model(resolve_config({}, MODEL), 2, 1)
    grads = model.trainable_parameters()
    times = []
    for _ in range(40):
        t = time.perf_counter()
        mx.eval(nn.average_gradients(grads, group=world.group))
        times.append(time.perf_counter() - t)
    if world.is_main:
        size = sum(v.nbytes for _, v in tree_flatten(grads))
        print(json.dumps({"ms": statistics.median(times[5:]) * 1e3, "bytes": size,
                          "first_ms": times[0] * 1e3}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allreduce-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=47311, help="first port of the ring")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three arms")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.allreduce_worker:
        _allreduce_worker()
        return
    arms = ["1", "2 (mlx.launch)", "2 (hostfile)"]
    rates: dict[str, list[float]] = {a: [] for a in arms}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = arms if r % 2 == 0 else arms[::-1]
            for i, arm in enumerate(order):
                rates[arm].append(_train(arm, Path(tmp), args.port + 10 * (r * len(arms) + i)))
    out = subprocess.run(
        [str(LAUNCH), "--backend", "ring", "-n", "2", "--starting-port", str(args.port), "--",
         sys.executable, __file__, "--allreduce-worker"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    reduce = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{args.rounds} rounds, arms alternated; median (min-max) over the rounds")
    print("| processes | samples/s | ms per step | vs 1 process |")
    print("|---|---|---|---|")
    base = statistics.median(rates["1"])
    for arm in arms:
        rs = rates[arm]
        med = statistics.median(rs)
        step = MODEL["batch_size"] / med * 1e3
        print(f"| {arm} | {med:.0f} ({min(rs):.0f}-{max(rs):.0f}) | {step:.0f} | "
              f"{med / base:.2f}x |")  # fmt: skip
    print(
        f"all-reduce of the gradients: {reduce['ms']:.2f} ms per step "
        f"({reduce['bytes'] / 1024:.0f} KiB; first call {reduce['first_ms']:.0f} ms)"
    )


if __name__ == "__main__":
    main()
