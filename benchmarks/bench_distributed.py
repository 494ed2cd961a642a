"""Data-parallel training on one machine: samples/s of `mlx-tcn train` with 1 and 2
processes (ring backend on 127.0.0.1, started by mlx.launch), and the time of one gradient
all-reduce (`nn.average_gradients`) of the same model.

    python benchmarks/bench_distributed.py            # ~1 min on a 2-core machine

Prints a Markdown table (docs/distributed.md keeps the measured one).
"""

from __future__ import annotations

import argparse
import json
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


def _train(processes: int, runs: Path, port: int) -> float:
    """Samples/s (global) after the first logging window (compilation, connection)."""
    name = f"n{processes}"
    argv = [sys.executable, "-m", "mlx_tcn", "train", "--quiet", "--no-plots",
            "--runs-dir", str(runs), "--name", name, *_flags(MODEL), "--max-steps", str(STEPS),
            "--log-every", str(LOG_EVERY), "--eval-every", "100000"]  # fmt: skip
    if processes > 1:
        argv = [str(LAUNCH), "--backend", "ring", "-n", str(processes),
                "--starting-port", str(port), "--", *argv]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=600)
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
    args = parser.parse_args()
    if args.allreduce_worker:
        _allreduce_worker()
        return
    with tempfile.TemporaryDirectory() as tmp:
        rates = {n: _train(n, Path(tmp), args.port) for n in (1, 2)}
    out = subprocess.run(
        [str(LAUNCH), "--backend", "ring", "-n", "2", "--starting-port", str(args.port), "--",
         sys.executable, __file__, "--allreduce-worker"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    reduce = json.loads(out.stdout.strip().splitlines()[-1])
    step_ms = {n: MODEL["batch_size"] / rates[n] * 1e3 for n in rates}
    print("| processes | samples/s | ms per step | all-reduce of the gradients per step |")
    print("|---|---|---|---|")
    print(f"| 1 | {rates[1]:.0f} | {step_ms[1]:.1f} | none |")
    print(f"| 2 | {rates[2]:.0f} | {step_ms[2]:.1f} | {reduce['ms']:.2f} ms "
          f"({reduce['bytes'] / 1024:.0f} KiB; first call {reduce['first_ms']:.0f} ms) |")  # fmt: skip


if __name__ == "__main__":
    main()
