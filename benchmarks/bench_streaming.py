"""Streaming benchmark: the cost of one new time step through a causal TCN.

One command, everything side by side::

    python benchmarks/bench_streaming.py            # ~2-4 min on 2 cores
    python benchmarks/bench_streaming.py --quick    # fewer steps
    python benchmarks/bench_streaming.py --json out.json
    python benchmarks/bench_streaming.py --blas-threads 1   # MLX's BLAS single-threaded

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
* ``stream_step()``: ``model.stream_step()``, the deployment step: compiled, weight norm
  folded, and every GEMM weight laid out once as its matrix (docs/streaming.md);
* ``recompute``: the offline forward over the last receptive-field steps, keeping the last
  output (what you do without streaming state);
* ``pytorch-tcn``: pytorch-tcn 1.2.3's ``model(x, inference=True)`` at batch 1 (its streaming
  is batch-1 only), ``torch.set_num_threads(threads)`` (``--threads``, default 2) and also 1
  thread (on a busy machine 2 OpenMP threads can be 100x slower), each in a subprocess so
  that its threads never share the process with MLX's BLAS. The speed-up column compares
  with the faster of the two. Skipped if torch/pytorch-tcn is absent.

Each MLX configuration also runs in a fresh subprocess. Reported: the median wall time per
step and, in brackets, the minimum (on a shared machine the median includes waiting for the
CPU; multi-threaded BLAS/OpenMP suffers most from that), and at batch 32 the per-stream
cost (step / 32) and its ratio to the batch-1 step. The process CPU time per step is kept
in the ``--json`` output.
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
MLX_METHODS = (
    "stream",
    "stream, compiled",
    "compiled, weight norm removed",
    "stream_step()",
    "recompute",
)


def _receptive_field(kernel: int) -> int:
    return 1 + sum(2 * (kernel - 1) * 2**i for i in range(LEVELS))


def _time_steps(step, warmup: int, steps: int) -> dict:
    """Wall time and process CPU time (all threads) of each step, in seconds."""
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(steps):
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall": wall, "cpu": cpu}


# -- workers (one case per process) ------------------------------------------------------


def build_mlx_model(model_key: str):
    """The benchmark's mlx-tcn model ``model_key`` (seeded weights), in eval mode."""
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
    return model


def _mlx_case(model_key: str, method: str, batch: int, steps: int) -> dict:
    import mlx_tcn  # noqa: I001  (first: it routes MLX's matmul to an optimized BLAS)
    import mlx.core as mx

    spec = MODELS[model_key]
    model = build_mlx_model(model_key)
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
        if method == "stream_step()":
            fn = model.stream_step()
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
    return _time_steps(step, warmup, steps)


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

        out = _time_steps(step, 20, steps)
    return {**out, "torch": torch.__version__}


# -- driver ------------------------------------------------------------------------------


def _run_worker(args: list[str], env: dict | None = None) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", *args]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        print(f"  case {args} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _have_pytorch_tcn() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "pytorch_tcn"))


def _median_us(result: dict | None) -> tuple[float, float] | None:
    """(median, minimum) wall time per step in us."""
    if result is None:
        return None
    return statistics.median(result["wall"]) * 1e6, min(result["wall"]) * 1e6


def _summary(result: dict | None) -> dict | None:
    """Median and minimum wall time and median process CPU time per step, in us."""
    if result is None:
        return None
    return {
        "wall_median_us": statistics.median(result["wall"]) * 1e6,
        "wall_min_us": min(result["wall"]) * 1e6,
        "cpu_median_us": statistics.median(result["cpu"]) * 1e6,
        "steps": len(result["wall"]),
    }


def _fmt1(us: float) -> str:
    return f"{us / 1000:.1f} ms" if us >= 10_000 else f"{us:.0f} us"


def _fmt(us: tuple[float, float] | None) -> str:
    """``median (min)``."""
    if us is None:
        return "-"
    return f"{_fmt1(us[0])} ({_fmt1(us[1])})"


def _ratio(a: tuple | None, b: tuple | None, fmt: str) -> str:
    if not a or not b:
        return ""
    x = [fmt.format(p / q) for p, q in zip(a, b, strict=True)]
    return f"{x[0]} ({x[1]})"


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
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads (default 2; 1 is also run)"
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="OPENBLAS_NUM_THREADS for the MLX workers (default: as installed)",
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, model_key, method, batch, steps = args.worker
        if kind == "torch":
            out = _torch_case(model_key, int(batch), int(steps))  # batch carries the threads
        else:
            out = _mlx_case(model_key, method, int(batch), int(steps))
        print(json.dumps(out))
        return

    steps = args.steps or (100 if args.quick else 300)
    import mlx.core as mx

    print(f"mlx {mx.__version__}, {_machine()}, python {platform.python_version()}")
    mlx_env = {}
    if args.blas_threads:
        mlx_env = {"OPENBLAS_NUM_THREADS": str(args.blas_threads)}
        print(f"MLX workers: OPENBLAS_NUM_THREADS={args.blas_threads}")
    torch_threads = sorted({args.threads, 1}, reverse=True)
    if not _have_pytorch_tcn():
        torch_threads = []
        print("torch / pytorch-tcn not installed: the pytorch-tcn rows are skipped")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at start: {load:.2f}; {steps} timed steps per case\n")

    results: dict = {}
    raw: dict = {}
    for key in args.models:
        for batch in BATCHES:
            for method in MLX_METHODS:
                r = _run_worker(["mlx", key, method, str(batch), str(steps)], mlx_env)
                raw[(key, method, batch)] = _summary(r)
                results[(key, method, batch)] = _median_us(r)
                print(
                    f"  {key:6s} b={batch:<2d} {method:30s} {_fmt(results[(key, method, batch)])}"
                )
        for threads in torch_threads:
            name = f"pytorch-tcn, {threads} thread" + ("s" if threads > 1 else "")
            r = _run_worker(["torch", key, name, str(threads), str(steps)])
            raw[(key, name, 1)] = _summary(r)
            results[(key, name, 1)] = _median_us(r)
            print(f"  {key:6s} b=1  {name:30s} {_fmt(_median_us(r))}")

    # -- the table ---------------------------------------------------------------------------
    lines = [
        "",
        "Each cell: median wall time per step (minimum in brackets: the step undisturbed "
        "by other processes).",
        "",
        "| model | method | batch 1 | speed-up vs pytorch-tcn | batch 32 "
        "| batch 32, per stream | per stream / batch-1 step |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key in args.models:
        torch_names = [m for (k, m, _) in results if k == key and m.startswith("pytorch")]
        refs = [results[(key, m, 1)] for m in torch_names if results[(key, m, 1)]]
        # the faster pytorch-tcn setting (median and minimum separately) is the reference
        ref = (min(r[0] for r in refs), min(r[1] for r in refs)) if refs else None
        for method in (*MLX_METHODS, *torch_names):
            b1 = results.get((key, method, 1))
            b32 = results.get((key, method, 32))
            is_torch = method.startswith("pytorch")
            speedup = "" if is_torch else _ratio(ref, b1, "{:.1f}x")
            per = tuple(v / 32 for v in b32) if b32 else None
            label = method.replace("pytorch-tcn", "pytorch-tcn `inference=True`")
            label = label if is_torch else f"`{method}`"
            lines.append(
                f"| {MODELS[key]['title']} | {label} | {_fmt(b1)} | {speedup} | {_fmt(b32)} "
                f"| {_fmt(per)} | {_ratio(per, b1, '{:.3f}')} |"
            )
    print("\n".join(lines))
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average at end: {load_end:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            meta = {"mlx": mx.__version__, "machine": _machine(), "load": [load, load_end]}
            cases = {"|".join(map(str, k)): v for k, v in raw.items()}
            json.dump({"meta": meta, "cases": cases}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
