"""Do weights drawn by MLX leave the adding problem's plateau later than weights drawn by torch?

Runs `mlx-tcn train` (through ``scripts/init_comparison.py``) on the adding problem for each
seed in two arms that differ only in which library drew the weights, and reports the first
evaluation below ``--threshold`` per run, with a rank test between the arms:

* ``mlx``: ``INIT_MODE=ref`` (the library's draw, with the reference code's N(0, 0.01)
  downsample and head), data from ``numpy.random.default_rng([seed, 1])`` (the library's);
* ``torch``: ``SAME_DRAW=seed`` (pytorch-tcn's draw after ``torch.manual_seed(seed)``, the same
  N(0, 0.01) downsample and head), data from ``numpy.random.default_rng(seed)``.

Both use ``DATA_ORDER=reference`` and the same generator function for the data, so the two
arms' weights and data come from the same distributions; a systematic difference between
them would point at the draw itself. Usage (one thread per run; ``--jobs 2`` runs two at
once, one per core)::

    python scripts/adding_draw_comparison.py --seeds 1-10 --seq-len 100 --max-steps 1500 \\
        --eval-every 50 --out /tmp/draws --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def _run(arm: str, seed: int, a: argparse.Namespace, core: int | None) -> dict:
    env = dict(os.environ, DATA_ORDER="reference", MLX_TCN_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.update({"INIT_MODE": "ref"} if arm == "mlx" else {"SAME_DRAW": str(seed)})
    name = f"{arm}-s{seed}"
    cmd = [sys.executable, str(HERE / "init_comparison.py"), "train", "--task", "adding",
           "--preset", "paper", "--seq-len", str(a.seq_len), "--seed", str(seed),
           "--max-steps", str(a.max_steps), "--eval-every", str(a.eval_every),
           "--checkpoint-every", str(a.max_steps), "--runs-dir", str(a.out), "--name", name,
           "--quiet"]  # fmt: skip
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    evals = [
        json.loads(line)
        for line in (a.out / name / "metrics.jsonl").read_text().splitlines()
        if '"eval"' in line
    ]
    left = next((e["step"] for e in evals if e["val_loss"] < a.threshold), None)
    return {"arm": arm, "seed": seed, "left": left, "final": evals[-1]["val_loss"]}


def _rank_sum_p(x: list[float], y: list[float]) -> float:
    """Two-sided p of the Mann-Whitney U test by exact permutation (small samples)."""
    from itertools import combinations

    pooled = x + y
    ranks = {v: 0.0 for v in pooled}
    order = sorted(pooled)
    for v in ranks:
        first = order.index(v)
        ranks[v] = first + (order.count(v) + 1) / 2
    observed = sum(ranks[v] for v in x)
    mean = len(x) * (len(pooled) + 1) / 2
    total = extreme = 0
    for pick in combinations(range(len(pooled)), len(x)):
        total += 1
        s = sum(ranks[pooled[i]] for i in pick)
        extreme += abs(s - mean) >= abs(observed - mean) - 1e-9
    return extreme / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1-10")
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--max-steps", type=int, default=1500)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--threshold", type=float, default=0.05, help="val MSE that counts as left")
    p.add_argument("--jobs", type=int, default=1, help="runs at once, each pinned to a core")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    jobs = [(arm, s) for s in _seeds(a.seeds) for arm in ("mlx", "torch")]
    with ThreadPoolExecutor(a.jobs) as pool:
        futures = [
            pool.submit(_run, arm, s, a, i % a.jobs if a.jobs > 1 else None)
            for i, (arm, s) in enumerate(jobs)
        ]
        results = [f.result() for f in futures]
    (a.out / "summary.json").write_text(json.dumps(results, indent=1))
    print(f"T={a.seq_len}, {a.max_steps} steps, left = first val MSE < {a.threshold}")
    print("| seed | mlx draw: left at | final | torch draw: left at | final |")
    print("|---|---|---|---|---|")
    by = {(r["arm"], r["seed"]): r for r in results}
    for s in _seeds(a.seeds):
        m, t = by["mlx", s], by["torch", s]
        print(
            f"| {s} | {m['left'] or '-'} | {m['final']:.4f} | {t['left'] or '-'} | {t['final']:.4f} |"
        )
    never = a.max_steps + a.eval_every  # a run that never left ranks after every one that did
    xs = [by["mlx", s]["left"] or never for s in _seeds(a.seeds)]
    ys = [by["torch", s]["left"] or never for s in _seeds(a.seeds)]
    print(f"left: mlx {sum(v < never for v in xs)}/{len(xs)}, torch {sum(v < never for v in ys)}/{len(ys)}; "
          f"rank-sum test of the exit steps (never = after the last step): p = {_rank_sum_p(xs, ys):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
