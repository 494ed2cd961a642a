"""How low can a batch-1 stream step go with MLX operations? Issue 14's 10x goal, examined.

Issue 14 asks for a batch-1 ``stream_step()`` at least 10x faster than pytorch-tcn's
streaming. This script times, for the 8x32, k=3 model of ``bench_streaming.py`` (32 inputs,
8 blocks of 32 channels, dilations 1..128, weight norm folded, eval mode):

* ``stream_step``: the library's deployment step (``model.stream_step()``);
* ``stream_step, call only``: the same calls without ``mx.eval``: what it costs to enter
  the compiled function and build its graph in Python and C++, before any operation runs
  (the graph of 50 steps is then evaluated in one call, which the median leaves out);
* ``one ring``: the same outputs with as few MLX operations as we could arrange: every
  convolution's past inputs in one shared ring buffer, all the taps older than the current
  frame gathered at once and their products (plus bias) computed in one batched GEMM at the
  start of the step, so that each convolution in the sequential chain is one GEMM with its
  newest tap and one fused pass, and all the new frames written back in one scatter at the
  end (checked equal to ``stream_step`` before timing);
* ``chain only``: the part of a step no formulation can avoid, the 16 dependent
  ``(1, 32) @ (32, 32)`` products, each followed by one fused pass (the old taps'
  contribution added, the activation; the second of each block also takes the residual
  add), compiled, the old taps' contributions given as 16 inputs: 32 primitives, a lower
  bound for any step built from MLX operations;
* ``empty call``: a compiled function of one tiny operation, the cost of entering a compiled
  call and waiting for its result;
* ``pytorch-tcn``: pytorch-tcn 1.2.3's ``model(x, inference=True)``, one thread (its faster
  setting at batch 1 in ``bench_models.py``), the reference of the goal.

Each case runs in its own fresh process, the cases in alternating order over ``--rounds``
rounds, twice per round: with the process free to use every CPU, and pinned to one CPU
(``os.sched_setaffinity`` before MLX starts its threads). MLX runs each CPU operation on a
stream thread, not on the caller's: on two cores every small operation is a hand-over
between threads on different cores, pinned they share one. Reported: the median over the
rounds of each process's median step time, with the range of the rounds::

    python benchmarks/bench_stream_floor.py --rounds 6
    python benchmarks/bench_stream_floor.py --rounds 3 --thread-cpu 20000   # who is busy

``--thread-cpu`` instead runs ``stream_step`` alone and reports, per step, the wall time and
the CPU time of the thread that calls the step and of MLX's other threads together (from
``/proc/self/task``): which side of MLX's hand-over between threads bounds the step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

CASES = (
    "stream_step",
    "stream_step, call only",
    "one ring",
    "chain only",
    "empty call",
    "pytorch-tcn",
)
INPUTS, CHANNELS, LEVELS, K = 32, 32, 8, 3


def _mlx_case(case: str, steps: int) -> float:
    import mlx_tcn  # noqa: I001  (first: it routes MLX's matmul to an optimized BLAS)
    import mlx.core as mx
    import numpy as np

    from mlx_tcn.parametrizations import folded_copy, get_weight

    mx.random.seed(0)
    model = mlx_tcn.TCN(INPUTS, [CHANNELS] * LEVELS, kernel_sizes=K, causal=True)
    model.eval()
    xs = mx.random.normal((64, 1, 1, INPUTS))
    mx.eval(xs)
    if case == "empty call":
        fn = mx.compile(lambda x: x + 1)
        return _time(lambda i: mx.eval(fn(xs[i % 64])), steps)
    step = model.stream_step()
    if case == "stream_step":
        state = [model.init_state(1)]

        def run(i: int) -> None:
            y, new = step(xs[i % 64], state.pop())  # the old state is dropped: in place
            state.append(new)
            mx.eval(y, new)

        return _time(run, steps)
    if case == "stream_step, call only":
        state, outs = [model.init_state(1)], []

        def call(i: int) -> None:
            y, new = step(xs[i % 64], state.pop())  # no eval: the graph is only built
            state.append(new)
            outs.append(y)
            if len(outs) == 50:  # one call in 50 also evaluates, off the median
                mx.eval(outs, new)
                outs.clear()

        return _time(call, steps)
    convs = [c for blk in folded_copy(model).network for c in (blk.conv1, blk.conv2)]
    n, dil = len(convs), [c.dilation for c in convs]
    length = max(dil) * (K - 1) + 1
    # the newest tap's (C, C) matrix per convolution, separate constants: no slicing in the step
    w_list = [get_weight(c)[:, K - 1, :].T for c in convs]
    w_old = mx.stack(
        [mx.concatenate([get_weight(c)[:, K - 1 - j, :].T for j in range(1, K)]) for c in convs]
    )  # (n, (K-1) C, C): tap j reads time t - j d
    bias = mx.stack([c.bias[None] for c in convs])  # (n, 1, C)
    offsets = np.zeros((1, K - 1, n * CHANNELS), np.int32)
    for i, d in enumerate(dil):
        for j in range(1, K):
            offsets[0, j - 1, i * CHANNELS : (i + 1) * CHANNELS] = j * d
    offsets = mx.array(offsets)
    mx.eval(w_list, w_old, bias, offsets)

    def chain(x: mx.array, p: list[mx.array]) -> tuple[mx.array, list[mx.array]]:
        h, inputs = x.reshape(1, CHANNELS), []
        for b in range(LEVELS):
            inputs.append(h)
            o = mx.maximum(h @ w_list[2 * b] + p[2 * b], 0)  # one GEMM, one fused pass
            inputs.append(o)
            o = mx.maximum(o @ w_list[2 * b + 1] + p[2 * b + 1], 0)
            h = mx.maximum(o + h, 0)
        return h[None], inputs

    def one_ring(x: mx.array, ring: mx.array, pos: mx.array) -> tuple[mx.array, ...]:
        old = mx.take_along_axis(ring, (pos - offsets) % length, axis=1)  # (1, K-1, n C)
        old = old.reshape(K - 1, n, CHANNELS).transpose(1, 0, 2).reshape(n, 1, -1)
        y, inputs = chain(x, mx.split(mx.addmm(bias, old, w_old).reshape(n, CHANNELS), n))
        frame = mx.concatenate(inputs, axis=1)[None]
        where = mx.broadcast_to(pos, frame.shape)
        return y, mx.put_along_axis(ring, where, frame, axis=1), (pos + 1) % length

    if case == "chain only":
        fn = mx.compile(lambda x, p: chain(x, p)[0])
        p = [mx.random.normal((1, CHANNELS)) for _ in range(n)]
        return _time(lambda i: mx.eval(fn(xs[i % 64], p)), steps)
    fn = mx.compile(one_ring)
    state = [model.init_state(1)]
    ring = [mx.zeros((1, length, n * CHANNELS)), mx.zeros((1, 1, 1), mx.int32)]
    for i in range(2 * length):  # equal to stream_step, ring wrapped around included
        y_ref, new = step(xs[i % 64], state.pop())
        state.append(new)
        y, *new_ring = fn(xs[i % 64], ring.pop(0), ring.pop(0))
        ring[:] = new_ring
        if not mx.allclose(y, y_ref, rtol=1e-4, atol=1e-5).item():
            raise AssertionError(f"one ring differs from stream_step at step {i}")

    def run(i: int) -> None:
        out = fn(xs[i % 64], ring.pop(0), ring.pop(0))  # the old ring is dropped: in place
        ring[:] = out[1:]
        mx.eval(*out)

    return _time(run, steps)


def _torch_case(steps: int) -> float:
    import torch
    from pytorch_tcn import TCN

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TCN(INPUTS, [CHANNELS] * LEVELS, kernel_size=K, causal=True, use_norm="weight_norm")
    model.eval()
    xs = torch.randn(64, 1, INPUTS, 1)
    with torch.inference_mode():
        return _time(lambda i: model(xs[i % 64], inference=True), steps)


def _time(fn, steps: int) -> float:  # noqa: ANN001
    for i in range(50):
        fn(i)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def _thread_cpu(steps: int) -> dict[str, float]:
    """Wall time and CPU time per ``stream_step`` step, of the calling thread and of MLX's
    other threads together, in us (Linux: ``/proc/self/task``)."""
    import mlx_tcn  # noqa: I001
    import mlx.core as mx

    mx.random.seed(0)
    model = mlx_tcn.TCN(INPUTS, [CHANNELS] * LEVELS, kernel_sizes=K, causal=True)
    model.eval()
    step, state = model.stream_step(), model.init_state(1)
    x = mx.random.normal((1, 1, INPUTS))
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> dict[str, float]:
        out = {}
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[tid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return out

    for _ in range(200):
        y, state = step(x, state)
        mx.eval(y, state)
    before, t0 = cpu(), time.perf_counter()
    for _ in range(steps):
        y, state = step(x, state)
        mx.eval(y, state)
    wall, after = time.perf_counter() - t0, cpu()
    main = str(threading.get_native_id())
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    return {
        "wall": wall / steps * 1e6,
        "calling thread": used[main] / steps * 1e6,
        "other threads": sum(v for t, v in used.items() if t != main) / steps * 1e6,
    }


def _worker(case: str, pinned: bool, steps: int) -> float:
    if pinned:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    return _torch_case(steps) if case == "pytorch-tcn" else _mlx_case(case, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=400, help="timed steps per process")
    parser.add_argument("--json", help="write the per-round times here")
    parser.add_argument(
        "--thread-cpu",
        type=int,
        metavar="STEPS",
        help="instead: CPU time per stream_step step of the calling thread and of MLX's "
        "threads, over STEPS steps in each of --rounds fresh processes (Linux)",
    )
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case, pinned, steps = args.worker
        if case == "thread cpu":
            print(json.dumps(_thread_cpu(int(steps))))
        else:
            print(json.dumps(_worker(case, pinned == "1", int(steps))))
        return
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MLX_TCN_THREADS": "1"}
    if args.thread_cpu:
        print("| round | wall, us/step | calling thread CPU, us | MLX's threads CPU, us |")
        print("|---:|---:|---:|---:|")
        for r in range(args.rounds):
            cmd = [sys.executable, __file__, "--worker", "thread cpu", "0", str(args.thread_cpu)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            got = json.loads(out.stdout.splitlines()[-1])
            print(
                f"| {r + 1} | {got['wall']:.0f} | {got['calling thread']:.0f} "
                f"| {got['other threads']:.0f} |"
            )
        return
    runs = [(c, p) for c in CASES for p in (False, True)]
    times: dict[str, list[float]] = {f"{c}|{int(p)}": [] for c, p in runs}
    for r in range(args.rounds):
        for case, pinned in runs if r % 2 == 0 else runs[::-1]:
            cmd = [sys.executable, __file__, "--worker", case, str(int(pinned)), str(args.steps)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            times[f"{case}|{int(pinned)}"].append(json.loads(out.stdout.splitlines()[-1]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(times, f, indent=1)
    # the goal's reference: pytorch-tcn at its better setting, as each case at its own
    ref = min(statistics.median(times[f"pytorch-tcn|{p}"]) for p in (0, 1))
    print(
        f"| case | all CPUs, us | one CPU, us | pytorch-tcn's best ({ref:.0f} us) / case's best |"
    )
    print("|---|---:|---:|---:|")
    for case in CASES:
        cells = []
        for pinned in (0, 1):
            t = times[f"{case}|{pinned}"]
            cells.append(f"{statistics.median(t):.0f} ({min(t):.0f}-{max(t):.0f})")
        best = min(statistics.median(times[f"{case}|{p}"]) for p in (0, 1))
        print(f"| {case} | {cells[0]} | {cells[1]} | {ref / best:.1f}x |")


if __name__ == "__main__":
    main()
