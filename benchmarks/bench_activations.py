"""Activations other than ReLU: mlx-tcn against pytorch-tcn, and against MLX's own functions.

MLX computes ``tanh``, ``sigmoid`` and ``erf`` one element at a time on x86 CPUs; mlx-tcn's
blocks use vectorised rational forms instead (``mlx_tcn._fastmath``). For each activation
this times the mid-size model of ``bench_models.py`` (64 inputs, 6 blocks of 128 channels,
k=3, T=1024, batch 16, causal, weight norm, dropout 0.1) built with that activation, in
three arms: pytorch-tcn, mlx-tcn as shipped, and mlx-tcn with MLX's own functions in the
blocks (``ACTIVATIONS`` replaced by ``EXACT_ACTIVATIONS``: the code before the change).
Each arm runs in its own fresh process, the arms alternated (reversed every other round);
a process times 2 warm-up and 6 timed iterations and reports their median. Printed: the
median over the rounds with its range, and the per-round ratios to pytorch-tcn's time::

    python benchmarks/bench_activations.py --rounds 3
    python benchmarks/bench_activations.py --activations gelu --modes infer --rounds 6

Two threads each (``torch.set_num_threads(2)``; mlx-tcn's default lanes), as in
``bench_models.py``. Modes: ``infer``, ``train`` (an eager step) and ``train-compiled``
(mlx-tcn's step under ``mx.compile``, as ``mlx-tcn train`` runs it; pytorch-tcn's step is
the eager one in both training modes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ARMS = ("pytorch-tcn", "mlx-tcn", "mlx-tcn, MLX's functions")
INPUTS, CHANNELS, LEVELS, K, LENGTH, BATCH, DROPOUT = 64, 128, 6, 3, 1024, 16, 0.1


def _time(step, warmup: int = 2, iters: int = 6) -> float:  # noqa: ANN001
    from mlx_train_step import median_ms

    return median_ms(step, warmup, iters)


def _torch(activation: str, mode: str) -> float:
    import torch
    from pytorch_tcn import TCN

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = TCN(
        INPUTS,
        [CHANNELS] * LEVELS,
        kernel_size=K,
        dropout=DROPOUT,
        causal=True,
        use_norm="weight_norm",
        activation=activation,
        kernel_initializer="xavier_uniform",
    )
    x = torch.randn(BATCH, INPUTS, LENGTH)
    if mode == "infer":
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                model(x)

        return _time(infer)
    target = torch.randn(BATCH, CHANNELS, LENGTH)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train() -> None:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), target).backward()
        opt.step()

    return _time(train)


def _mlx(activation: str, mode: str, exact: bool) -> float:
    import mlx_tcn  # noqa: I001  (first: it routes MLX's matmul to an optimized BLAS)
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_train_step import train_step

    from mlx_tcn import activations

    if exact:
        activations.ACTIVATIONS.update(activations.EXACT_ACTIVATIONS)
    mx.random.seed(0)
    model = mlx_tcn.TCN(
        INPUTS,
        [CHANNELS] * LEVELS,
        kernel_sizes=K,
        dropout=DROPOUT,
        causal=True,
        use_norm="weight_norm",
        activation=activation,
    )
    x = mx.random.normal((BATCH, LENGTH, INPUTS))
    mx.eval(model.parameters(), x)
    if mode == "infer":
        model.eval()
        return _time(lambda: mx.eval(model(x)))
    target = mx.random.normal((BATCH, LENGTH, CHANNELS))

    def loss(m: nn.Module, x: mx.array, y: mx.array) -> mx.array:
        return nn.losses.mse_loss(m(x), y)

    # compiled as mlx-tcn train does by default
    return _time(train_step(model, loss, x, target, compiled=mode == "train-compiled"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", default="tanh,sigmoid,gelu")
    parser.add_argument("--modes", default="infer,train")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the per-round times here")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        arm, activation, mode = args.worker
        ms = _torch(activation, mode) if arm == ARMS[0] else _mlx(activation, mode, arm == ARMS[2])
        print(json.dumps(ms))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    cases = [(a, m) for a in args.activations.split(",") for m in args.modes.split(",")]
    times: dict[str, list[float]] = {f"{a}|{m}|{arm}": [] for a, m in cases for arm in ARMS}
    for r in range(args.rounds):
        for activation, mode in cases:
            for arm in ARMS if r % 2 == 0 else ARMS[::-1]:
                cmd = [sys.executable, __file__, "--worker", arm, activation, mode]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                times[f"{activation}|{mode}|{arm}"].append(json.loads(out.stdout.splitlines()[-1]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(times, f, indent=1)
    print("| activation | mode | arm | ms | time / pytorch-tcn's |")
    print("|---|---|---|---:|---:|")
    for activation, mode in cases:
        ref = times[f"{activation}|{mode}|{ARMS[0]}"]
        for arm in ARMS:
            t = times[f"{activation}|{mode}|{arm}"]
            cell = f"{statistics.median(t):.1f} ({min(t):.1f}-{max(t):.1f})"
            ratios = [a / b for a, b in zip(t, ref, strict=True)]
            ratio = (
                f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
                if arm != ARMS[0]
                else "1"
            )
            print(f"| {activation} | {mode} | {arm} | {cell} | {ratio} |")


if __name__ == "__main__":
    main()
