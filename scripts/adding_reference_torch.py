"""The TCN reference code's adding-problem recipe in PyTorch, over several seeds: how often,
and when, it leaves the 0.167 plateau (issue 13; docs/RESULTS.md, "Adding problem").

The model is pytorch-tcn's (the reference code's TemporalBlock: weight-normalised causal
convolutions, ReLU, a 1x1 downsample where the width changes), 8 levels of 24 channels,
kernel 8, read at the last step by a one-output projection. The recipe is the reference
script's (``TCN/adding_problem/add_test.py`` with the paper's T=600 settings):

* initialisation: PyTorch's defaults, except that the downsample's and the head's weights
  are drawn from N(0, 0.01), as the reference's ``init_weights`` does (its ``normal_`` on the
  weight-normalised convolutions is overwritten by weight norm at the next forward, so they
  keep PyTorch's default); ``--init pytorch-tcn`` keeps pytorch-tcn's own instead;
* data: 50,000 generated training sequences (:func:`mlx_tcn.train.data.adding_problem`, the
  reference's generator) in order, every epoch, keeping the last partial batch; 1,000
  held-out ones for the validation MSE;
* ``torch.optim.Adam`` at 2e-3, batch 32, mean squared error of the last step, no clipping.

Usage::

    python scripts/adding_reference_torch.py --seeds 1,2,3 --steps 3000 --out ref

writes ``ref_seed{S}.jsonl`` (one line per evaluation: step, validation MSE, wall time) and
prints, per seed, the first evaluation below 0.15 ("left the plateau").
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from pytorch_tcn import TCN

from mlx_tcn.train.data import adding_problem

PLATEAU_EXIT = 0.15


def build(seed: int, init: str) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = TCN(
        num_inputs=2,
        num_channels=[24] * 8,
        kernel_size=8,
        dropout=0.0,
        causal=True,
        use_norm="weight_norm",
        output_projection=1,
        input_shape="NLC",
    )
    if init == "reference":
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("downsample.weight") or name == "projection_out.weight":
                    p.normal_(0.0, 0.01)
    return model


def run(seed: int, a: argparse.Namespace) -> int | None:
    rng = np.random.default_rng(seed)
    x_train, y_train = (torch.from_numpy(v) for v in adding_problem(a.n_train, a.seq_len, rng))
    x_val, y_val = (torch.from_numpy(v) for v in adding_problem(1000, a.seq_len, rng))
    model = build(seed, a.init)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    starts = list(range(0, a.n_train, a.batch_size))  # in order, the last batch partial
    left, t0 = None, time.perf_counter()
    with open(f"{a.out}_seed{seed}.jsonl", "w") as f:
        for step in range(1, a.steps + 1):
            i = starts[(step - 1) % len(starts)]
            x, y = x_train[i : i + a.batch_size], y_train[i : i + a.batch_size]
            opt.zero_grad()
            loss = ((model(x)[:, -1, :] - y) ** 2).mean()
            loss.backward()
            opt.step()
            if step % a.eval_every:
                continue
            with torch.no_grad():
                val = float(((model(x_val)[:, -1, :] - y_val) ** 2).mean())
            rec = {"step": step, "train": float(loss.detach()), "val": val,
                   "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
            f.write(json.dumps(rec) + "\n")
            f.flush()
            if left is None and val < PLATEAU_EXIT:
                left = step
            print(json.dumps({"seed": seed, **rec}), flush=True)
    return left


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seq-len", type=int, default=600)
    p.add_argument("--n-train", type=int, default=50000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--init", choices=["reference", "pytorch-tcn"], default="reference")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    for seed in (int(s) for s in a.seeds.split(",")):
        left = run(seed, a)
        print(f"seed {seed}: left the plateau (val MSE < {PLATEAU_EXIT}) at step {left}")


if __name__ == "__main__":
    main()
