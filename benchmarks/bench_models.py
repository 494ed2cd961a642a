"""Whole-model benchmark: mlx-tcn against pytorch-tcn on the same CPU and thread count.

One command runs everything and writes the results into the docs::

    python benchmarks/bench_models.py            # default (~3 min on 2 cores)
    python benchmarks/bench_models.py --quick    # fewer iterations (~1.5 min)

For each model (the paper's sMNIST TCN and a mid-size TCN) it times a training step
(forward + backward + Adam update) and an inference forward (eval mode) for

* ``pytorch-tcn`` (the reference, ``torch.set_num_threads(threads)``),
* ``mlx-tcn`` (the library as installed: its BLAS set-up and convolution primitive),
* ``mlx seed conv1d``: mlx-tcn with every convolution replaced by plain ``mx.conv1d``
  (what the seed did), for reference.

Each (library, model, mode) runs in a fresh subprocess, so that thread settings, caches and
the peak-memory high-water mark of one case never leak into another. Reported: the median
time per iteration after warm-up, the ratio to pytorch-tcn, the achieved convolution
GFLOP/s (counted analytically: ``2*B*T*Cin*Cout*k`` per convolution, the 1x1 downsample
included, x3 for a training step) against the machine's GEMM peak (an MLX ``float32``
2048^3 matmul, measured in the same run), and peak memory.

MLX timing is honest: every iteration ends with ``mx.eval`` of the loss, the parameters and
the optimizer state (training) or of the output (inference).
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance_models.md"
PNG = ROOT / "docs" / "img" / "bench_models.png"
BEGIN = "<!-- bench_models:begin (written by benchmarks/bench_models.py) -->"
END = "<!-- bench_models:end -->"

BACKENDS = ("pytorch-tcn", "mlx-tcn", "mlx seed conv1d")
MODES = ("train", "infer")


@dataclass(frozen=True)
class ModelSpec:
    """One benchmark model: a causal, weight-normalised TCN and its batch."""

    key: str
    title: str
    num_inputs: int
    channels: tuple[int, ...]
    kernel_size: int
    length: int
    batch: int
    dropout: float
    classes: int | None  # a linear head on the last step (sMNIST) or sequence regression

    def conv_flops(self) -> int:
        """Forward FLOPs of every convolution: ``2*B*T*Cin*Cout*k``, downsamples included."""
        total, cin = 0, self.num_inputs
        bt = 2 * self.batch * self.length
        for c in self.channels:
            total += bt * cin * c * self.kernel_size + bt * c * c * self.kernel_size
            if cin != c:
                total += bt * cin * c
            cin = c
        return total


MODELS = {
    "smnist": ModelSpec("smnist", "sMNIST (paper)", 1, (25,) * 8, 7, 784, 64, 0.05, 10),
    "mid": ModelSpec("mid", "mid-size", 64, (128,) * 6, 3, 1024, 16, 0.1, None),
}

# (warm-up, timed) iterations; the seed path is 30-100x slower, so it gets fewer. A case
# stops early once its timed iterations add up to BUDGET_S seconds (and at least MIN_ITERS
# ran), so that slow cases (pytorch-tcn's dilated conv on sMNIST) keep the run short.
ITERS = {
    "default": {"pytorch-tcn": (2, 15), "mlx-tcn": (2, 15), "mlx seed conv1d": (1, 2)},
    "quick": {"pytorch-tcn": (1, 5), "mlx-tcn": (1, 5), "mlx seed conv1d": (0, 1)},
}
BUDGET_S = {"default": 12.0, "quick": 5.0}
MIN_ITERS = 3


# --------------------------------------------------------------------------------------------
# worker side: one case per process
# --------------------------------------------------------------------------------------------


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _maxrss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# CPU seconds (all threads of the process) of the iterations _time_loop timed last.
_CPU_TIMES: list[float] = []


def _time_loop(step, warmup: int, iters: int, budget: float) -> list[float]:
    """Wall times of up to ``iters`` calls after ``warmup`` untimed ones; stops early once
    they add up to ``budget`` seconds (after at least ``MIN_ITERS``, or ``iters`` if fewer)."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    cpu: list[float] = []
    while len(times) < iters:
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if sum(times) > budget and len(times) >= MIN_ITERS:
            break
    _CPU_TIMES[:] = cpu
    return times


def _torch_case(
    spec: ModelSpec, mode: str, threads: int, warmup: int, iters: int, budget: float
) -> dict:
    import torch
    from pytorch_tcn import TCN

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rss0 = _rss_kib()
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

    def loss_fn():
        y = tcn(x)
        if head is not None:
            return torch.nn.functional.cross_entropy(head(y[:, :, -1]), target)
        return torch.nn.functional.mse_loss(y, target)

    if mode == "train":
        params = list(tcn.parameters()) + (list(head.parameters()) if head else [])
        opt = torch.optim.Adam(params, lr=1e-3)
        tcn.train()

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn().backward()
            opt.step()

    else:
        tcn.eval()

        def step():
            with torch.inference_mode():
                tcn(x)

    times = _time_loop(step, warmup, iters, budget)
    return {
        "times": times,
        "cpu_times": list(_CPU_TIMES),
        "peak_mib": (_maxrss_kib() - rss0) / 1024,
        "rss_mib": None,
    }


def _mlx_case(
    spec: ModelSpec,
    mode: str,
    backend: str,
    warmup: int,
    iters: int,
    budget: float,
    compile_step: bool,
) -> dict:
    import mlx_tcn  # noqa: I001  (first: it routes MLX's matmul to an optimized BLAS)
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    if backend == "mlx seed conv1d":
        import mlx_tcn.ops

        def seed_conv1d(x, weight, bias=None, *, stride=1, dilation=1, groups=1, **_):
            # plain mx.conv1d whatever extra options (e.g. inference=) ops.conv1d grows
            y = mx.conv1d(x, weight, stride=stride, dilation=dilation, groups=groups)
            return y if bias is None else y + bias

        mlx_tcn.ops.conv1d = seed_conv1d

    mx.random.seed(0)
    rss0 = _rss_kib()
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
    else:
        target = mx.random.normal((spec.batch, spec.length, spec.channels[-1]))
    mx.eval(x, target)

    def loss_fn(m, x, target):
        y = m(x)
        if spec.classes:
            return nn.losses.cross_entropy(y, target, reduction="mean")
        return nn.losses.mse_loss(y, target, reduction="mean")

    if mode == "train":
        model.train()
        opt = optim.Adam(learning_rate=1e-3)
        loss_and_grad = nn.value_and_grad(model, loss_fn)

        def train_step(x, target):
            loss, grads = loss_and_grad(model, x, target)
            opt.update(model, grads)
            return loss

        if compile_step:
            from functools import partial

            state = [model.state, opt.state, mx.random.state]
            train_step = partial(mx.compile, inputs=state, outputs=state)(train_step)

        def step():
            loss = train_step(x, target)
            mx.eval(loss, model.parameters(), opt.state)

    else:
        model.eval()
        forward = mx.compile(model) if compile_step else model

        def step():
            mx.eval(forward(x))

    mx.reset_peak_memory()
    times = _time_loop(step, warmup, iters, budget)
    return {
        "times": times,
        "cpu_times": list(_CPU_TIMES),
        "peak_mib": mx.get_peak_memory() / 2**20,
        "rss_mib": (_maxrss_kib() - rss0) / 1024,
    }


def _gemm_peak(threads: int, n: int = 2048, reps: int = 5) -> dict:
    """The machine's float32 GEMM rate at ``threads``: the better of one ``n^3`` matmul with
    a ``threads``-thread BLAS and one single-threaded matmul per parallel stream at once."""
    import mlx_tcn  # noqa: F401, I001
    from mlx_tcn import _backend

    rates = [_backend.matmul_gflops(n, repeat=reps)]
    runtime = _backend.runtime.STATE
    if _backend.parallel_streams() > 1 and _backend.blas.set_blas_threads(threads):
        lanes = runtime.lanes
        runtime.lanes = 1
        try:
            rates.append(_backend.matmul_gflops(n, repeat=reps))
        finally:
            _backend.blas.set_blas_threads(1)
            runtime.lanes = lanes
    return {"gflops": max(rates), "n": n}


def _worker(job: dict) -> dict:
    if job["kind"] == "gemm":
        return _gemm_peak(job["threads"])
    spec = MODELS[job["model"]]
    if job["backend"] == "pytorch-tcn":
        return _torch_case(
            spec, job["mode"], job["threads"], job["warmup"], job["iters"], job["budget"]
        )
    return _mlx_case(
        spec,
        job["mode"],
        job["backend"],
        job["warmup"],
        job["iters"],
        job["budget"],
        job.get("compile", False),
    )


# --------------------------------------------------------------------------------------------
# driver side
# --------------------------------------------------------------------------------------------


def _run_job(job: dict, threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MLX_TCN_THREADS"):
        env[var] = str(threads)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker {job} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _versions() -> dict:
    code = (
        "import json, mlx_tcn, mlx.core as mx, torch, numpy, importlib.metadata as md;"
        "from mlx_tcn import _backend as b; i = b.info();"
        "print(json.dumps({'mlx': mx.__version__, 'torch': torch.__version__,"
        "'pytorch-tcn': md.version('pytorch-tcn'), 'numpy': numpy.__version__,"
        "'mlx-tcn': mlx_tcn.__version__, 'blas': i.get('blas'), 'device': i.get('default_device'),"
        "'cache_limit': i.get('cache_limit')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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


def _table(rows: list[dict], peak: float) -> str:
    lines = [
        "| model | mode | library | median ms | min ms | ratio to pytorch-tcn | CPU ms "
        "| CPU ratio | conv GFLOP/s | % of GEMM peak | peak memory MiB | n |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mem = f"{r['peak_mib']:.0f}"
        if r["rss_mib"] is not None:
            mem += f" (RSS +{r['rss_mib']:.0f})"
        lines.append(
            f"| {MODELS[r['model']].title} | {r['mode']} | {r['backend']} | {r['median_ms']:.1f} "
            f"| {r['min_ms']:.1f} | {r['ratio']:.2f} | {r['cpu_ms']:.0f} | {r['cpu_ratio']:.2f} "
            f"| {r['gflops']:.1f} "
            f"| {100 * r['gflops'] / peak:.0f}% | {mem} | {r['n']} |"
        )
    return "\n".join(lines)


def _chart(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = []
    for r in rows:
        g = (r["model"], r["mode"])
        if g not in groups:
            groups.append(g)
    backends = [b for b in BACKENDS if any(r["backend"] == b for r in rows)]
    width = 0.8 / len(backends)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for j, backend in enumerate(backends):
        xs, ys, labels = [], [], []
        for i, g in enumerate(groups):
            for r in rows:
                if (r["model"], r["mode"]) == g and r["backend"] == backend:
                    xs.append(i + (j - (len(backends) - 1) / 2) * width)
                    ys.append(r["median_ms"])
                    labels.append(f"{r['ratio']:.2f}x")
        bars = ax.bar(xs, ys, width, label=backend)
        for bar, label in zip(bars, labels, strict=True):
            ax.annotate(
                label,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{MODELS[m].title}\n{mode}" for m, mode in groups])
    ax.set_ylabel("ms per iteration (log scale; label: ratio to pytorch-tcn)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_doc(section: str) -> None:
    block = f"{BEGIN}\n{section}\n{END}"
    if DOC.exists():
        text = DOC.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            DOC.write_text(head + block + tail)
            return
        DOC.write_text(text.rstrip() + "\n\n" + block + "\n")
        return
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(
        "# Whole-model performance: mlx-tcn vs pytorch-tcn\n\n## Results\n\n" + block + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (~half the time)")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="threads for both libraries"
    )
    parser.add_argument("--models", default="smnist,mid", help="comma list: smnist,mid")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help=f"comma list of {', '.join(BACKENDS)}"
    )
    parser.add_argument("--modes", default="train,infer", help="comma list: train,infer")
    parser.add_argument("--compile", action="store_true", help="also time mx.compile'd mlx-tcn")
    parser.add_argument(
        "--seed-all",
        action="store_true",
        help="also time the seed path's mid-size training step (about 100 s per step)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternate the libraries this many times per case and pool the timings (default 3)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; keep the docs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return

    models = [m for m in args.models.split(",") if m]
    backends = [b for b in args.backends.split(",") if b]
    modes = [m for m in args.modes.split(",") if m]
    for m in models:
        if m not in MODELS:
            parser.error(f"--models: unknown model {m!r}, choose from {sorted(MODELS)}")
    for b in backends:
        if b not in BACKENDS:
            parser.error(f"--backends: unknown backend {b!r}, choose from {BACKENDS}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if "pytorch-tcn" not in backends:
        parser.error("--backends must include pytorch-tcn (the reference for the ratios)")
    level = "quick" if args.quick else "default"
    iters, budget = ITERS[level], BUDGET_S[level]
    variants = [(b, False) for b in backends]
    if args.compile and "mlx-tcn" in backends:
        variants.insert(variants.index(("mlx-tcn", False)) + 1, ("mlx-tcn", True))

    t_start = time.time()
    load_before = os.getloadavg()[0]
    peak = _run_job({"kind": "gemm", "threads": args.threads}, args.threads)["gflops"]
    print(f"GEMM peak (MLX sgemm 2048^3, {args.threads} threads): {peak:.1f} GFLOP/s", flush=True)
    rows = []
    for m in models:
        spec = MODELS[m]
        for mode in modes:
            cases = [
                (backend, compiled)
                for backend, compiled in variants
                if not (
                    backend == "mlx seed conv1d"
                    and (m, mode) == ("mid", "train")
                    and not args.seed_all
                )
            ]
            if len(cases) < len(variants):
                print(f"{spec.title:>15} {mode:>5} {'mlx seed conv1d':>26}: skipped (--seed-all)")
            # Rounds alternate the libraries (in reverse order every other round), so that a
            # slow spell of a shared machine falls on all of them, not on one.
            pooled = {
                case: {"times": [], "cpu_times": [], "peak_mib": 0.0, "rss_mib": 0.0}
                for case in cases
            }
            for r in range(args.rounds):
                for backend, compiled in cases if r % 2 == 0 else cases[::-1]:
                    warmup, n = iters[backend]
                    job = {
                        "kind": "case",
                        "model": m,
                        "mode": mode,
                        "backend": backend,
                        "threads": args.threads,
                        "warmup": warmup,
                        "iters": max(MIN_ITERS, -(-n // args.rounds)),
                        "budget": budget / args.rounds,
                        "compile": compiled,
                    }
                    res = _run_job(job, args.threads)
                    acc = pooled[(backend, compiled)]
                    acc["times"] += res["times"]
                    acc["cpu_times"] += res["cpu_times"]
                    acc["peak_mib"] = max(acc["peak_mib"], res["peak_mib"])
                    if res["rss_mib"] is None or acc["rss_mib"] is None:
                        acc["rss_mib"] = None
                    else:
                        acc["rss_mib"] = max(acc["rss_mib"], res["rss_mib"])
            ref = pooled[("pytorch-tcn", False)]
            ref_med = statistics.median(ref["times"]) * 1e3
            ref_cpu = statistics.median(ref["cpu_times"]) * 1e3
            for (backend, compiled), res in pooled.items():
                med = statistics.median(res["times"]) * 1e3
                cpu_med = statistics.median(res["cpu_times"]) * 1e3
                flops = spec.conv_flops() * (3 if mode == "train" else 1)
                row = {
                    "model": m,
                    "mode": mode,
                    "backend": backend + (" (mx.compile)" if compiled else ""),
                    "median_ms": med,
                    "min_ms": min(res["times"]) * 1e3,
                    "cpu_ms": cpu_med,
                    "cpu_ratio": cpu_med / ref_cpu,
                    "ratio": med / ref_med,
                    "gflops": flops / (med / 1e3) / 1e9,
                    "peak_mib": res["peak_mib"],
                    "rss_mib": res["rss_mib"],
                    "n": len(res["times"]),
                }
                rows.append(row)
                print(
                    f"{spec.title:>15} {mode:>5} {row['backend']:>26}: {med:9.1f} ms "
                    f"ratio {row['ratio']:6.2f}  {row['gflops']:6.1f} GFLOP/s "
                    f"({100 * row['gflops'] / peak:3.0f}% of peak)  peak {res['peak_mib']:.0f} MiB",
                    flush=True,
                )
    elapsed = time.time() - t_start
    load = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    v = _versions()
    cmd = "python benchmarks/bench_models.py" + (" --quick" if args.quick else "")
    extra = " ".join(a for a in (argv if argv is not None else sys.argv[1:]) if a != "--quick")
    if extra:
        cmd += " " + extra
    machine = (
        f"{_cpu_model()}, {os.cpu_count()} cores visible, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}"
    )
    specs = "\n".join(
        f"- **{s.title}**: {s.num_inputs} input(s), {len(s.channels)} levels x "
        f"{s.channels[0]} channels, kernel {s.kernel_size}, T={s.length}, batch {s.batch}, "
        f"causal, weight norm, dropout {s.dropout}, "
        + (
            f"linear head on the last step + cross-entropy ({s.classes} classes)"
            if s.classes
            else "MSE on the whole output sequence"
        )
        + f"; {s.conv_flops() / 1e9:.2f} GFLOP of convolutions per forward"
        for s in (MODELS[m] for m in models)
    )
    section = (
        f"Command: `{cmd}` ({elapsed:.0f} s), commit `{_git_commit()}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {load}.\n\n"
        f"Machine: {machine}. Threads: {args.threads} for both libraries "
        f"(`torch.set_num_threads({args.threads})`; `OMP_NUM_THREADS`/`OPENBLAS_NUM_THREADS`/"
        f"`MLX_TCN_THREADS`={args.threads}: mlx-tcn splits each batch over {args.threads} "
        f"parallel MLX CPU stream(s) with single-threaded OpenBLAS when that is above 1).\n\n"
        f"Versions: mlx {v['mlx']} ({v['device']}), mlx-tcn {v['mlx-tcn']}, torch {v['torch']}, "
        f"pytorch-tcn {v['pytorch-tcn']}, numpy {v['numpy']}. MLX BLAS: {v['blas']}; MLX cache "
        f"limit {v['cache_limit']}.\n\n"
        f"GEMM peak (MLX `float32` matmul 2048^3, best of 5): **{peak:.1f} GFLOP/s**.\n\n"
        f"{specs}\n\n"
        f"Median of the timed iterations of {args.rounds} round(s) that alternate the "
        f"libraries (each a fresh process: {iters['mlx-tcn'][0]} warm-up iterations, then up "
        f"to {max(MIN_ITERS, -(-iters['mlx-tcn'][1] // args.rounds))} timed ones, fewer once "
        f"they add up to {budget / args.rounds:.1f} s, at least {MIN_ITERS}; column n counts "
        f"all rounds; seed path: {iters['mlx seed conv1d'][1]} after "
        f"{iters['mlx seed conv1d'][0]}, its mid-size training step, ~100 s, only with "
        f"`--seed-all`); every MLX iteration ends in `mx.eval`. Training = "
        f"forward + backward + Adam update; inference = forward in eval mode "
        f"(`torch.inference_mode()` for pytorch-tcn). GFLOP/s counts convolution FLOPs only "
        f"(2*B*T*Cin*Cout*k per convolution, 1x1 downsample included, x3 for training). Peak "
        f"memory: `mx.get_peak_memory()` for MLX (RSS high-water growth in brackets), RSS "
        f"high-water growth during the case for pytorch-tcn; each case runs in its own "
        f"process. CPU ms: median CPU time of the process per iteration (all its threads), "
        f"and CPU ratio its ratio to pytorch-tcn's; when other jobs share the cores, wall "
        f"times depend on scheduling and, with one thread per library, the CPU ratio is the "
        f"steadier comparison (with more threads it also counts busy-waiting).\n\n"
        f"{_table(rows, peak)}\n\n"
        f"![bench_models](img/bench_models.png)\n"
    )
    print()
    print(_table(rows, peak))
    if not args.no_write:
        _write_doc(section)
        _chart(
            rows,
            PNG,
            f"{_cpu_model()}, {args.threads} thread(s); mlx {v['mlx']}, torch {v['torch']}, "
            f"pytorch-tcn {v['pytorch-tcn']}",
        )
        print(f"\nwrote {DOC.relative_to(ROOT)} and {PNG.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
