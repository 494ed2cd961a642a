"""Whole-model benchmark: mlx-tcn against pytorch-tcn, measured so that a claim survives a rerun.

One command runs everything and writes the results into ``docs/performance_models.md``::

    python benchmarks/bench_models.py                # sMNIST + mid-size + streaming, 6 rounds
    python benchmarks/bench_models.py --grid         # also the user-like shapes of GRID
    python benchmarks/bench_models.py --small        # also small batch-1 models (SMALL)
    python benchmarks/bench_models.py --quick --no-write --rounds 1 --models smnist

Why it is built this way: on a shared machine one library's time swings by tens of percent
from minute to minute (issue 14 saw pytorch-tcn's mid-size inference median at 58-86 ms in
different runs), so a single pooled median can show a win that is not there. Here

* the run is a number of *rounds*; in each, every (model, mode) runs once per library, each
  in its own fresh process (threads, caches and allocator state never leak), the libraries
  in alternating order (reversed every other round);
* a process runs warm-up iterations, then a fixed number of timed ones, and reports their
  median; after the model it times the model's convolutions alone (their per-layer shapes:
  ``torch.nn.functional.conv1d``, and ``mlx_tcn.ops.conv1d`` split over mlx-tcn's lanes),
  the best rate a library reaches on exactly those convolutions on this machine;
* each round also measures OpenBLAS's large-GEMM rate (2048^3 sgemm through MLX, with the
  run's thread count, single-threaded, and one matmul per lane) and, unless
  ``--no-streaming``, the streaming step (mlx-tcn's ``stream_step`` at batch 1 and 32,
  pytorch-tcn's ``inference=True`` at 1 and 2 threads);
* :mod:`bench_models_report` turns the per-round medians into medians over the rounds with
  their range, per-round time ratios, and a verdict only where a sign test over the rounds
  allows one, and writes the docs text, its summary included, from those verdicts alone.

``--json PATH`` keeps the raw per-round numbers; ``--render PATH`` rewrites the docs from
such a file without measuring again.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import bench_models_report as report

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance_models.md"
PNG = ROOT / "docs" / "img" / "bench_models_rounds.png"  # bench_models.png: the old harness

LIBRARIES = (report.REFERENCE, report.LIBRARY)
COMPILED = "mlx-tcn (mx.compile)"  # inference only: the whole forward compiled (--compile)
STREAM_MODELS = ("k3", "smnist")  # bench_streaming.py's models
CASE_CAP_S = 60.0  # a process stops timing once its timed iterations exceed this (>= 3 ran)
LEVELS = {"default": (6, 2, 8, 200), "quick": (3, 1, 3, 50)}  # rounds, warm-up, timed, steps


# --------------------------------------------------------------------------------------------
# worker side: one case per process
# --------------------------------------------------------------------------------------------


def _time_loop(step: Callable[[], None], warmup: int, iters: int) -> list[float]:
    """Wall seconds of ``iters`` calls after ``warmup`` untimed ones (fewer once they pass
    ``CASE_CAP_S``, at least 3)."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    while len(times) < iters:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if sum(times) > CASE_CAP_S and len(times) >= 3:
            break
    return times


def _torch_model(spec: report.ModelSpec, mode: str) -> Callable[[], None]:
    import torch
    from pytorch_tcn import TCN

    torch.manual_seed(0)
    tcn = TCN(
        spec.num_inputs,
        list(spec.channels),
        kernel_size=spec.kernel_size,
        dropout=spec.dropout,
        causal=True,
        use_norm="weight_norm",
    )
    head = torch.nn.Linear(spec.channels[-1], spec.classes) if spec.classes else None
    x = torch.randn(spec.batch, spec.num_inputs, spec.length)  # pytorch-tcn's native NCL
    if spec.classes:
        target = torch.randint(0, spec.classes, (spec.batch,))
    else:
        target = torch.randn(spec.batch, spec.channels[-1], spec.length)
    if mode == "infer":
        tcn.eval()

        def infer() -> None:
            with torch.inference_mode():
                tcn(x)

        return infer
    params = list(tcn.parameters()) + (list(head.parameters()) if head else [])
    opt = torch.optim.Adam(params, lr=1e-3)
    tcn.train()

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        y = tcn(x)
        if head is not None:
            loss = torch.nn.functional.cross_entropy(head(y[:, :, -1]), target)
        else:
            loss = torch.nn.functional.mse_loss(y, target)
        loss.backward()
        opt.step()

    return train


def _torch_convs(spec: report.ModelSpec, mode: str) -> Callable[[], None]:
    """The model's convolutions alone, ``F.conv1d`` on padded NCL inputs."""
    import torch

    conv1d = torch.nn.functional.conv1d
    grad = mode == "train"
    layers = spec.conv_layers()
    b, t = spec.batch, spec.length
    xs = [torch.randn(b, c.cin, t + c.padding, requires_grad=grad) for c in layers]
    ws = [torch.randn(c.cout, c.cin, c.kernel, requires_grad=grad) for c in layers]
    bs = [torch.randn(c.cout, requires_grad=grad) for c in layers]
    args = list(zip(xs, ws, bs, (c.dilation for c in layers), strict=True))
    if not grad:

        def forward() -> None:
            with torch.inference_mode():
                for x, w, bias, d in args:
                    conv1d(x, w, bias, dilation=d)

        return forward
    cotangents = [torch.randn(b, c.cout, t) for c in layers]

    def forward_backward() -> None:
        outs = [conv1d(x, w, bias, dilation=d) for x, w, bias, d in args]
        torch.autograd.backward(outs, cotangents)
        for tensor in (*xs, *ws, *bs):
            tensor.grad = None

    return forward_backward


def _torch_case(job: dict) -> dict:
    import torch

    torch.set_num_threads(job["threads"])
    spec = report.ALL_MODELS[job["model"]]
    times = _time_loop(_torch_model(spec, job["mode"]), job["warmup"], job["iters"])
    conv = _time_loop(_torch_convs(spec, job["mode"]), job["warmup"], job["iters"])
    return {"times": times, "conv_times": conv}


def _mlx_model(spec: report.ModelSpec, mode: str, library: str) -> Callable[[], None]:
    """mlx-tcn's model as ``library`` runs it: a training step compiled (``LIBRARY``, as
    ``mlx-tcn train`` runs it) or eager (``EAGER``); the forward as the library runs it
    (``LIBRARY``) or whole through ``mx.compile`` (``COMPILED``)."""
    import mlx_tcn  # noqa: I001  (first: it routes MLX's matmul to an optimized BLAS)
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_train_step import train_step

    mx.random.seed(0)
    tcn = mlx_tcn.TCN(
        spec.num_inputs,
        list(spec.channels),
        kernel_sizes=spec.kernel_size,
        dropout=spec.dropout,
        causal=True,
        use_norm="weight_norm",
    )

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tcn = tcn
            if spec.classes:
                self.head = nn.Linear(spec.channels[-1], spec.classes)

        def __call__(self, x: mx.array) -> mx.array:
            y = self.tcn(x)
            return self.head(y[:, -1]) if spec.classes else y

    model = Net()
    mx.eval(model.parameters())
    x = mx.random.normal((spec.batch, spec.length, spec.num_inputs))  # channels-last
    if spec.classes:
        target = mx.random.randint(0, spec.classes, (spec.batch,))
        loss_of = nn.losses.cross_entropy
    else:
        target = mx.random.normal((spec.batch, spec.length, spec.channels[-1]))
        loss_of = nn.losses.mse_loss
    mx.eval(x, target)
    if mode == "infer":
        model.eval()
        forward = mx.compile(model) if library == COMPILED else model
        return lambda: mx.eval(forward(x))

    model.train()
    return train_step(
        model,
        lambda m, x, y: loss_of(m(x), y, reduction="mean"),
        x,
        target,
        compiled=library == report.LIBRARY,
    )


def _lane_parts(batch: int, length: int, padding: int, lanes: int) -> list[tuple[slice, slice]]:
    """(rows, padded input steps) of each lane's part: by rows when the batch allows, else
    by output time (a part of one convolution reads ``padding`` steps before its outputs)."""
    if lanes < 2:
        return [(slice(None), slice(None))]
    if batch >= lanes:
        edges = [batch * i // lanes for i in range(lanes + 1)]
        return [(slice(a, b), slice(None)) for a, b in zip(edges, edges[1:], strict=False)]
    edges = [length * i // lanes for i in range(lanes + 1)]
    return [(slice(None), slice(a, b + padding)) for a, b in zip(edges, edges[1:], strict=False)]


def _mlx_convs(spec: report.ModelSpec, mode: str) -> Callable[[], None]:
    """The model's convolutions alone, ``ops.conv1d`` on padded inputs, split over the lanes
    as a ``TCN`` splits its forward."""
    import mlx_tcn  # noqa: F401, I001
    import mlx.core as mx
    from mlx_tcn import _backend, ops

    lanes = _backend.cpu_lanes()
    parts, weights = [], []  # parts: (lane, layer index, x part, dilation)
    for i, c in enumerate(spec.conv_layers()):
        x = mx.random.normal((spec.batch, spec.length + c.padding, c.cin))
        weights += [mx.random.normal((c.cout, c.kernel, c.cin)) * 0.1, mx.zeros((c.cout,))]
        for lane, (rows, steps) in zip(
            lanes, _lane_parts(spec.batch, spec.length, c.padding, len(lanes)), strict=False
        ):
            parts.append((lane, i, mx.contiguous(x[rows, steps]), c.dilation))
    xs = [p[2] for p in parts]
    mx.eval(xs, weights)

    def run(xs: list[mx.array], weights: list[mx.array]) -> list[mx.array]:
        outs = []
        for (lane, i, _, d), x in zip(parts, xs, strict=True):
            with mx.stream(lane):
                outs.append(ops.conv1d(x, weights[2 * i], weights[2 * i + 1], dilation=d))
        return outs

    if mode == "infer":
        return lambda: mx.eval(run(xs, weights))
    cotangents = [mx.random.normal(y.shape) for y in run(xs, weights)]
    mx.eval(cotangents)

    def forward_backward() -> None:
        mx.eval(
            mx.vjp(
                lambda *a: run(list(a[: len(xs)]), list(a[len(xs) :])), [*xs, *weights], cotangents
            )
        )

    return forward_backward


def _mlx_case(job: dict) -> dict:
    spec = report.ALL_MODELS[job["model"]]
    times = _time_loop(_mlx_model(spec, job["mode"], job["library"]), job["warmup"], job["iters"])
    conv = None  # the convolutions alone: once per (model, mode), with the library's own row
    if job["library"] == report.LIBRARY:
        conv = _time_loop(_mlx_convs(spec, job["mode"]), job["warmup"], job["iters"])
    return {"times": times, "conv_times": conv}


def _gemm(job: dict) -> dict:
    """OpenBLAS's 2048^3 sgemm rate through MLX: with ``threads`` OpenBLAS threads, with one,
    and as one single-threaded matmul per lane at once (how mlx-tcn's models use it)."""
    import mlx_tcn  # noqa: F401, I001
    from mlx_tcn import _backend

    runtime, blas = _backend.runtime.STATE, _backend.blas
    lanes = runtime.lanes
    runtime.lanes = 1
    try:
        owned = blas.set_blas_threads(job["threads"])
        multi = _backend.matmul_gflops(2048, repeat=5)
        single = None
        if owned:
            blas.set_blas_threads(1)
            single = _backend.matmul_gflops(2048, repeat=5)
    finally:
        runtime.lanes = lanes
    per_lane = _backend.matmul_gflops(2048, repeat=5) if lanes > 1 else None
    return {"threads": multi, "single": single, "lanes": per_lane}


def _stream_step_case(model_key: str, batch: int, steps: int) -> dict:
    """One step of ``model.stream_step()`` (compiled, weight norm folded) at ``batch``."""
    import mlx_tcn  # noqa: I001, F401  (first: it routes MLX's matmul to an optimized BLAS)
    import mlx.core as mx
    from bench_streaming import MODELS as STREAM_SPECS
    from bench_streaming import _time_steps, build_mlx_model

    spec = STREAM_SPECS[model_key]
    model = build_mlx_model(model_key)
    step_fn = model.stream_step()
    state = [model.init_state(batch)]
    for _ in range(64):  # a real history in the state first
        y, state[0] = step_fn(mx.random.normal((batch, 1, spec["inputs"])), state[0])
    mx.eval(y, state[0])
    x = mx.random.normal((batch, 1, spec["inputs"]))
    mx.eval(x)

    def step() -> None:
        y, state[0] = step_fn(x, state[0])
        mx.eval(y, state[0])

    return _time_steps(step, 20, steps)


def _stream_case(job: dict) -> dict:
    from bench_streaming import _torch_case as torch_stream_case

    case = job["case"]
    if case.startswith(report.REFERENCE):
        threads = 1 if case.endswith("1 thread") else 2
        return torch_stream_case(job["model"], threads, job["steps"])
    return _stream_step_case(job["model"], int(case.split()[-1]), job["steps"])


def _versions(_job: dict) -> dict:
    import mlx_tcn  # noqa: I001
    import mlx.core as mx
    import numpy
    import torch
    from mlx_tcn import _backend

    i = _backend.info()
    return {
        "mlx": mx.__version__,
        "torch": torch.__version__,
        "pytorch-tcn": md.version("pytorch-tcn"),
        "numpy": numpy.__version__,
        "mlx-tcn": mlx_tcn.__version__,
        "blas": i.get("blas"),
        "blas_core": i.get("blas_core") or "-",
        "device": i.get("default_device"),
        "lanes": i.get("parallel_streams"),
    }


WORKERS: dict[str, Callable[[dict], dict]] = {
    "gemm": _gemm,
    "versions": _versions,
    "stream": _stream_case,
    "torch": _torch_case,
    "mlx": _mlx_case,
}


# --------------------------------------------------------------------------------------------
# driver side
# --------------------------------------------------------------------------------------------


def _run_job(job: dict, threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MLX_TCN_THREADS"):
        env[var] = str(threads)
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker {job} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ms(times: list[float] | None) -> float | None:
    return None if times is None else statistics.median(times) * 1e3


def _alternate(items: list, round_index: int) -> list:
    """``items`` in order on even rounds, reversed on odd ones."""
    return items if round_index % 2 == 0 else items[::-1]


def _run_round(r: int, args: argparse.Namespace, plan: dict, results: dict) -> None:
    """One round: the GEMM rate, every (model, mode) per library, the streaming cases."""
    gemm = _run_job({"kind": "gemm", "threads": args.threads}, args.threads)
    for key in ("threads", "single", "lanes"):
        if gemm[key] is not None:
            results["gemm"][key].append(gemm[key])
    print(f"round {r + 1}: GEMM 2048^3 {gemm['threads']:.0f} GFLOP/s", flush=True)
    for (model, mode), cases in plan["cases"].items():
        for library in _alternate(plan["libraries"][mode], r):
            kind = "torch" if library == report.REFERENCE else "mlx"
            job = {"kind": kind, "model": model, "mode": mode, "library": library}
            job.update(threads=args.threads, warmup=args.warmup, iters=args.iters)
            res = _run_job(job, args.threads)
            entry = cases[library]
            entry["ms"].append(_ms(res["times"]))
            if res["conv_times"] is not None:
                entry.setdefault("conv_ms", []).append(_ms(res["conv_times"]))
            print(
                f"  {model:>8} {mode:>5} {library:>22}: {entry['ms'][-1]:9.1f} ms"
                + (
                    f", convolutions alone {entry['conv_ms'][-1]:.1f} ms"
                    if "conv_ms" in entry
                    else ""
                ),
                flush=True,
            )
    for model, cases in plan["stream"].items():
        for case in _alternate(list(report.STREAM_CASES), r):
            job = {"kind": "stream", "model": model, "case": case, "steps": args.stream_steps}
            res = _run_job(job, args.threads)
            cases[case]["us"].append(statistics.median(res["wall"]) * 1e6)
            print(f"  stream {model:>6} {case:>22}: {cases[case]['us'][-1]:9.0f} us", flush=True)


def _plan(args: argparse.Namespace, results: dict) -> dict:
    """The result entries to fill, shared with ``results`` (so filling one fills both)."""
    from bench_streaming import MODELS as STREAM_SPECS

    plan: dict = {"libraries": {}, "cases": {}, "stream": {}}
    for mode in args.mode_keys:
        extra = report.EAGER if mode == "train" else COMPILED if args.compile else None
        plan["libraries"][mode] = [*LIBRARIES, *([extra] if extra else [])]
    for model in args.model_keys:
        for mode in args.mode_keys:
            plan["cases"][(model, mode)] = {}
            for library in plan["libraries"][mode]:
                entry = {"model": model, "mode": mode, "library": library, "ms": []}
                results["cases"].append(entry)
                plan["cases"][(model, mode)][library] = entry
    for model in args.stream_keys:
        plan["stream"][model] = {}
        for case in report.STREAM_CASES:
            entry = {"model": model, "title": STREAM_SPECS[model]["title"], "case": case, "us": []}
            results["stream"].append(entry)
            plan["stream"][model][case] = entry
    return plan


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def measure(args: argparse.Namespace, argv: list[str]) -> dict:
    """Run every round and return the result set :mod:`bench_models_report` renders.

    With ``--json`` the file is rewritten after every round, so that a run cut short (a
    failed worker, a reboot) still leaves the complete rounds to ``--render``.
    """
    t_start = time.time()
    load_before = os.getloadavg()[0]
    versions = _run_job({"kind": "versions"}, args.threads)
    results: dict = {
        "gemm": {"threads": [], "single": [], "lanes": []},
        "cases": [],
        "stream": [],
    }
    plan = _plan(args, results)
    for r in range(args.rounds):
        _run_round(r, args, plan, results)
        results["meta"] = {
            "command": " ".join(["python benchmarks/bench_models.py", *argv]),
            "elapsed_s": time.time() - t_start,
            "commit": _git_commit(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load": [load_before, os.getloadavg()[0]],
            "machine": f"{_cpu_model()}, {os.cpu_count()} cores visible, {platform.system()} "
            f"{platform.machine()}, Python {platform.python_version()}",
            "threads": args.threads,
            "rounds": r + 1,
            "warmup": args.warmup,
            "iters": args.iters,
            "stream_steps": args.stream_steps,
            "versions": versions,
        }
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
    return results


def _chart(results: dict, path: Path) -> None:
    """mlx-tcn's time over pytorch-tcn's per (model, mode): the median over the rounds, the
    range of the rounds as whiskers, 1.0 and the goal as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report.case_rows(results) if r.library == report.LIBRARY]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 2), 4.5))
    xs = range(len(rows))
    med = [r.ratio.median for r in rows]
    err = [
        [m - r.ratio.low for m, r in zip(med, rows, strict=True)],
        [r.ratio.high - m for m, r in zip(med, rows, strict=True)],
    ]
    colors = [
        "tab:green" if r.verdict == "faster" else "tab:red" if r.verdict == "slower" else "tab:gray"
        for r in rows
    ]
    ax.bar(xs, med, color=colors, yerr=err, capsize=4)
    ax.scatter(xs, [r.goal for r in rows], marker="_", s=400, color="black", label="goal", zorder=3)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{r.model.title}\n{r.mode}" for r in rows], fontsize=8)
    ax.set_ylabel("mlx-tcn time / pytorch-tcn time\n(median of rounds; whiskers: range)")
    meta = results["meta"]
    ax.set_title(
        f"{meta['rounds']} rounds, {meta['threads']} thread(s); green: faster, red: slower, "
        f"gray: no clear difference",
        fontsize=9,
    )
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _publish(results: dict, write: bool) -> None:
    rows = report.case_rows(results)
    print()
    print(report.time_table(rows))
    print()
    print(report.rate_table(results))
    streams = report.stream_rows(results)
    if streams:
        print()
        print(report.stream_table(streams))
    print()
    print(report.summary(rows, streams, results["meta"]["rounds"]))
    if write:
        report.write_doc(DOC, report.section(results))
        _chart(results, PNG)
        print(f"\nwrote {DOC.relative_to(ROOT)} and {PNG.relative_to(ROOT)}")


def _keys(
    text: str, allowed: dict | tuple, what: str, parser: argparse.ArgumentParser
) -> list[str]:
    keys = [k for k in text.split(",") if k]
    for k in keys:
        if k not in allowed:
            parser.error(f"--{what}: unknown {what[:-1]} {k!r}, choose from {sorted(allowed)}")
    return keys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="3 rounds of 1+3 iterations, 50 stream steps"
    )
    p.add_argument("--rounds", type=int, help="alternated rounds (default 6; --quick: 3)")
    p.add_argument("--warmup", type=int, help="warm-up iterations per process (default 2)")
    p.add_argument("--iters", type=int, help="timed iterations per process (default 8)")
    p.add_argument("--stream-steps", type=int, help="timed steps per streaming process (200)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="for both libraries")
    p.add_argument(
        "--models", default="smnist,mid", help=f"comma list of {', '.join(report.ALL_MODELS)}"
    )
    p.add_argument("--grid", action="store_true", help="add every GRID shape to --models")
    p.add_argument("--small", action="store_true", help="add every SMALL shape to --models")
    p.add_argument("--modes", default="train,infer", help="comma list: train,infer")
    p.add_argument("--stream-models", default=",".join(STREAM_MODELS), help="comma list: k3,smnist")
    p.add_argument(
        "--streaming", action=argparse.BooleanOptionalAction, default=True, help="time streaming"
    )
    p.add_argument(
        "--compile", action="store_true", help="also time mlx-tcn's forward mx.compile'd whole"
    )
    p.add_argument("--no-write", action="store_true", help="print only; keep the docs")
    p.add_argument("--json", type=Path, help="also write the raw per-round results here")
    p.add_argument("--render", type=Path, help="write the docs from a --json file; measure nothing")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def _resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill the defaults of the level (default or --quick) and check every number and list."""
    rounds, warmup, iters, steps = LEVELS["quick" if args.quick else "default"]
    args.rounds = rounds if args.rounds is None else args.rounds
    args.warmup = warmup if args.warmup is None else args.warmup
    args.iters = iters if args.iters is None else args.iters
    args.stream_steps = steps if args.stream_steps is None else args.stream_steps
    for name, low in (
        ("rounds", 1),
        ("warmup", 0),
        ("iters", 1),
        ("stream_steps", 1),
        ("threads", 1),
    ):
        if getattr(args, name) < low:
            parser.error(
                f"--{name.replace('_', '-')} must be at least {low}, got {getattr(args, name)}"
            )
    args.model_keys = _keys(args.models, report.ALL_MODELS, "models", parser)
    if args.grid:
        args.model_keys += [k for k in report.GRID if k not in args.model_keys]
    if args.small:
        args.model_keys += [k for k in report.SMALL if k not in args.model_keys]
    args.mode_keys = _keys(args.modes, report.MODES, "modes", parser)
    args.stream_keys = (
        _keys(args.stream_models, STREAM_MODELS, "stream-models", parser) if args.streaming else []
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps(WORKERS[job["kind"]](job)))
        return
    if args.render:
        _publish(json.loads(args.render.read_text()), write=not args.no_write)
        return
    _resolve(args, parser)
    results = measure(args, argv)
    _publish(results, write=not args.no_write)


if __name__ == "__main__":
    main()
