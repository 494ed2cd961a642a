"""Streaming benchmark: the cost of one new time step through a causal TCN.

One command, everything side by side::

    python benchmarks/bench_streaming.py            # ~2-4 min on 2 cores
    python benchmarks/bench_streaming.py --quick    # fewer steps
    python benchmarks/bench_streaming.py --json out.json

Models (eval mode, pytorch-tcn's default weight norm, dropout off):

* ``k3``: 8 levels x 32 channels, kernel 3, dilations 1..128 (receptive field 1021);
* ``smnist``: the paper's sequential-MNIST TCN, 8 levels x 25 channels, kernel 7 (receptive
  field 3061), one input channel.

For each model, at batch 1 and 32, the median wall time of one step (a chunk of one time
step, ending with ``mx.eval`` of the output *and* the new state) for:

* ``stream``: ``y, state = model.stream(x, state)``;
* ``stream, compiled``: ``mx.compile(model.stream)``;
* ``compiled, weight norm removed``: the same after :func:`mlx_tcn.remove_weight_norm`
  (the weight-norm reparametrisation is recomputed on every call otherwise);
* ``recompute``: the offline forward over the last receptive-field steps, keeping the last
  output (what you do without streaming state);
* ``pytorch-tcn``: pytorch-tcn 1.2.3's ``model(x, inference=True)`` at batch 1 (its streaming
  is batch-1 only), ``torch.set_num_threads(threads)``, run in a subprocess so that its
  threads never share the process with MLX's BLAS. Skipped if torch/pytorch-tcn is absent.

Each MLX configuration also runs in a fresh subprocess. Reported: median us per step, and
at batch 32 the per-stream cost (step / 32) and its ratio to the batch-1 step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

MODELS = {
    "k3": {"title": "8x32, k=3 (RF 1021)", "inputs": 32, "channels": 32, "kernel": 3},
    "smnist": {"title": "8x25, k=7 (RF 3061, paper)", "inputs": 1, "channels": 25, "kernel": 7},
}
LEVELS = 8
BATCHES = (1, 32)
MLX_METHODS = ("stream", "stream, compiled", "compiled, weight norm removed", "recompute")


def _receptive_field(kernel: int) -> int:
    return 1 + sum(2 * (kernel - 1) * 2**i for i in range(LEVELS))


def _time_steps(step, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


# -- workers (one case per process) ------------------------------------------------------


def _mlx_case(model_key: str, method: str, batch: int, steps: int) -> dict:
    import mlx_tcn  # noqa: I001  (first: it routes MLX's matmul to an optimized BLAS)
    import mlx.core as mx

    spec = MODELS[model_key]
    mx.random.seed(0)
    model = mlx_tcn.TCN(
        spec["inputs"],
        [spec["channels"]] * LEVELS,
        kernel_sizes=spec["kernel"],
        causal=True,
        use_norm="weight_norm",
    )
    model.eval()
    if method == "compiled, weight norm removed":
        for block in model.network:
            mlx_tcn.remove_weight_norm(block.conv1)
            mlx_tcn.remove_weight_norm(block.conv2)
    mx.eval(model.parameters())
    rf = _receptive_field(spec["kernel"])
    x = mx.random.normal((batch, 1, spec["inputs"]))
    mx.eval(x)

    if method == "recompute":
        window = mx.random.normal((batch, rf, spec["inputs"]))
        mx.eval(window)

        def step():
            mx.eval(model(window)[:, -1:])

        steps = max(3, steps // (20 if batch == 1 else 100))
        warmup = 2
    else:
        fn = model.stream if method == "stream" else mx.compile(model.stream)
        holder = [model.init_state(batch)]
        # fill the state with a real history first
        y, holder[0] = fn(mx.random.normal((batch, 64, spec["inputs"])), holder[0])
        mx.eval(y, holder[0])

        def step():
            y, state = fn(x, holder[0])
            mx.eval(y, state)
            holder[0] = state

        warmup = 20
    times = _time_steps(step, warmup, steps)
    return {"times": times}


def _torch_case(model_key: str, threads: int, steps: int) -> dict:
    import torch
    from pytorch_tcn import TCN

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    spec = MODELS[model_key]
    model = TCN(
        spec["inputs"],
        [spec["channels"]] * LEVELS,
        kernel_size=spec["kernel"],
        causal=True,
        use_norm="weight_norm",
    )
    model.eval()
    x = torch.randn(1, spec["inputs"], 1)  # pytorch-tcn's NCL layout, one step
    with torch.inference_mode():
        model.reset_buffers()
        model(torch.randn(1, spec["inputs"], 64), inference=True)

        def step():
            model(x, inference=True)

        times = _time_steps(step, 20, steps)
    return {"times": times, "torch": torch.__version__}


# -- driver ------------------------------------------------------------------------------


def _run_worker(args: list[str]) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"  case {args} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _have_pytorch_tcn() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "pytorch_tcn"))


def _median_us(result: dict | None) -> float | None:
    return None if result is None else statistics.median(result["times"]) * 1e6


def _fmt(us: float | None) -> str:
    if us is None:
        return "-"
    return f"{us / 1000:.2f} ms" if us >= 10_000 else f"{us:.0f} us"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed steps")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per case")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, model_key, method, batch, steps = args.worker
        if kind == "torch":
            out = _torch_case(model_key, args.threads, int(steps))
        else:
            out = _mlx_case(model_key, method, int(batch), int(steps))
        print(json.dumps(out))
        return

    steps = args.steps or (100 if args.quick else 300)
    import mlx.core as mx

    print(f"mlx {mx.__version__}, {_machine()}, python {platform.python_version()}")
    torch_ok = _have_pytorch_tcn()
    if not torch_ok:
        print("torch / pytorch-tcn not installed: the pytorch-tcn column is skipped")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at start: {load:.2f}; {steps} timed steps per case\n")

    results: dict = {}
    for key in args.models:
        for batch in BATCHES:
            for method in MLX_METHODS:
                r = _run_worker(["mlx", key, method, str(batch), str(steps)])
                results[(key, method, batch)] = _median_us(r)
                print(
                    f"  {key:6s} b={batch:<2d} {method:30s} {_fmt(results[(key, method, batch)])}"
                )
        if torch_ok:
            r = _run_worker(["torch", key, "pytorch-tcn", "1", str(steps)])
            results[(key, "pytorch-tcn", 1)] = _median_us(r)
            print(f"  {key:6s} b=1  {'pytorch-tcn inference=True':30s} {_fmt(_median_us(r))}")

    # -- the table ---------------------------------------------------------------------------
    lines = [
        "",
        "| model | method | batch 1: us/step | vs pytorch-tcn | batch 32: us/step "
        "| batch 32: per stream | per stream / batch-1 step |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key in args.models:
        ref = results.get((key, "pytorch-tcn", 1))
        for method in (*MLX_METHODS, "pytorch-tcn"):
            b1 = results.get((key, method, 1))
            b32 = results.get((key, method, 32))
            speedup = f"{ref / b1:.1f}x faster" if ref and b1 and method != "pytorch-tcn" else ""
            per = b32 / 32 if b32 else None
            ratio = f"{per / b1:.3f}" if per and b1 else ""
            label = "pytorch-tcn `inference=True`" if method == "pytorch-tcn" else f"`{method}`"
            lines.append(
                f"| {MODELS[key]['title']} | {label} | {_fmt(b1)} | {speedup} | {_fmt(b32)} "
                f"| {_fmt(per)} | {ratio} |"
            )
    print("\n".join(lines))
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average at end: {load_end:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"|".join(map(str, k)): v for k, v in results.items()}, f, indent=1)


if __name__ == "__main__":
    main()
