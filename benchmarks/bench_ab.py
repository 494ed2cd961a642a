"""A/B of two mlx-tcn source trees on whole models: is a change faster, measured so that it shows.

Each case runs in its own fresh process with ``PYTHONPATH`` pointing at one tree's ``src``,
the two trees in alternating order over ``--rounds`` rounds (reversed every other round),
a process timing ``--iters`` iterations after 3 warm-ups and reporting their median. The
result per case is the median of the per-round ratios new / old with their range, and in how
many rounds the new tree was faster: on a shared machine only such alternated, relative
numbers mean anything (``bench_models.py`` compares against pytorch-tcn the same way)::

    git archive <commit> src | tar -x -C /tmp/old        # the tree to compare against
    python benchmarks/bench_ab.py --against /tmp/old/src --models short,mid --modes train

Models (all causal, weight norm, dropout 0.1, MSE on the whole output sequence, inputs and
targets from a seeded normal): the shapes of ``SHAPES``. Modes: ``infer`` (eval mode
forward), ``train`` (forward + backward + Adam update, eager) and ``train-compiled`` (the
same step through ``mx.compile`` with the model, optimizer and random states as its inputs
and outputs, as ``mlx-tcn train`` runs it). ``--old-threads`` gives the old tree another
``MLX_TCN_THREADS`` (and BLAS threads), to compare thread counts on one tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

# name: (inputs, channels per level, kernel size, length, batch)
SHAPES = {
    "tiny": (16, (16,) * 4, 2, 256, 1),
    "narrow1": (16, (16,) * 4, 8, 4096, 1),
    "c64b1": (64, (64,) * 6, 4, 512, 1),
    "smnist": (1, (25,) * 8, 7, 784, 64),
    "mid": (64, (128,) * 6, 3, 1024, 16),
    "short": (64, (64,) * 6, 5, 256, 64),
    "wide": (16, (256,) * 8, 3, 2048, 1),
    "c32b32": (32, (32,) * 8, 3, 1024, 32),
    "c128b8k8": (64, (128,) * 4, 8, 2048, 8),
    "c64long": (16, (64,) * 10, 6, 4096, 1),
}
MODES = ("infer", "train", "train-compiled")


def _worker(shape: str, mode: str, iters: int) -> None:
    import mlx_tcn  # noqa: I001  (first: it routes MLX's matmul to an optimized BLAS)
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_train_step import median_ms, train_step

    inputs, channels, k, length, batch = SHAPES[shape]
    mx.random.seed(0)
    model = mlx_tcn.TCN(
        inputs, list(channels), kernel_sizes=k, dropout=0.1, causal=True, use_norm="weight_norm"
    )
    x = mx.random.normal((batch, length, inputs))
    target = mx.random.normal((batch, length, channels[-1]))
    mx.eval(x, target, model.parameters())
    if mode == "infer":
        model.eval()

        def step() -> None:
            mx.eval(model(x))

    else:

        def loss(m: nn.Module, x: mx.array, y: mx.array) -> mx.array:
            return nn.losses.mse_loss(m(x), y)

        step = train_step(model, loss, x, target, compiled=mode == "train-compiled")

    print(json.dumps(median_ms(step, 3, iters)))


def _run(src: str, threads: int, shape: str, mode: str, iters: int) -> float:
    env = dict(os.environ, PYTHONPATH=src)
    for var in ("MLX_TCN_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env[var] = str(threads)
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", shape, mode, str(iters)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{shape} {mode} with {src} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        _worker(argv[1], argv[2], int(argv[3]))
        return
    here = Path(__file__).resolve().parents[1] / "src"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--against", required=True, help="the old tree's src directory")
    p.add_argument("--new", default=str(here), help="the new tree's src (default: this one)")
    p.add_argument("--models", default="short,mid", help=f"comma list of {', '.join(SHAPES)}")
    p.add_argument("--modes", default="infer,train", help=f"comma list of {', '.join(MODES)}")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--old-threads", type=int, help="threads for the old tree (default: --threads)")
    args = p.parse_args(argv)
    models, modes = args.models.split(","), args.modes.split(",")
    for name, values, known in (("models", models, SHAPES), ("modes", modes, MODES)):
        unknown = [v for v in values if v not in known]
        if unknown:
            p.error(f"--{name}: unknown {unknown}; choose from {', '.join(known)}")
    if args.rounds < 1 or args.iters < 1:
        p.error("--rounds and --iters must be at least 1")
    arms = [
        ("old", args.against, args.old_threads or args.threads),
        ("new", args.new, args.threads),
    ]
    times: dict[tuple[str, str, str], list[float]] = {}
    for r in range(args.rounds):
        for shape in models:
            for mode in modes:
                for name, src, threads in arms if r % 2 == 0 else arms[::-1]:
                    ms = _run(src, threads, shape, mode, args.iters)
                    times.setdefault((shape, mode, name), []).append(ms)
    print("| model | mode | old, ms | new, ms | new / old | new faster |")
    print("|---|---|---:|---:|---:|---:|")
    for shape in models:
        for mode in modes:
            old, new = times[(shape, mode, "old")], times[(shape, mode, "new")]
            ratios = [b / a for a, b in zip(old, new, strict=True)]
            print(
                f"| {shape} | {mode} | {statistics.median(old):.3f} | {statistics.median(new):.3f} "
                f"| {statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f}) "
                f"| {sum(x < 1 for x in ratios)} of {len(ratios)} |"
            )


if __name__ == "__main__":
    main()
