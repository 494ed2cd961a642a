"""The TCN reference code's polyphonic-music recipe in PyTorch: what the reference recipe itself
reaches on JSB Chorales or Nottingham on this machine (issue 13; docs/RESULTS.md, "JSB Chorales").

mlx-tcn's JSB paper preset stays 0.09-0.16 above the paper's 8.10 over four seeds. This script
runs the recipe of ``TCN/poly_music/music_test.py`` in PyTorch, so that the gap can be read
against the reference's own result rather than against the paper's figure alone:

* model: pytorch-tcn's ``TCN`` (the reference's TemporalBlock: weight-normalised causal
  convolutions, ReLU, dropout after each, a 1x1 downsample where the width changes), 88 inputs,
  ``--levels`` x ``--nhid`` channels, kernel ``--ksize``, a linear head to 88 notes and a
  sigmoid computed in float64 (as the reference's ``.double()``);
* initialisation: PyTorch's defaults, except the downsample's and the head's weights drawn
  from N(0, 0.01), as the reference's ``init_weights`` leaves them;
* loss: per chorale, the binary cross-entropy summed over its frames and notes, back-propagated
  as it is (the reference's ``-trace(...)``), one chorale per step in a fresh random order each
  epoch; the reference calls its gradient clip before ``backward()``, so it clips nothing:
  ``--clip`` defaults to that (none); ``--clip 0.4`` clips the summed gradient for real;
* ``torch.optim.Adam`` at 1e-3, the rate divided by 10 after an epoch past the 10th whose
  validation NLL is above each of the three before it;
* reported: the per-frame NLL (the summed NLL over all frames of a split, divided by their
  number), and the test NLL of the best validation epoch's weights.

Usage (the paper's settings for JSB: kernel 3, 2 levels, dropout 0.5)::

    python scripts/music_reference_torch.py --data JSB_Chorales.mat --seeds 1,2 \
        --ksize 3 --levels 2 --dropout 0.5 --out ref_jsb

writes ``ref_jsb_seed{S}.jsonl`` (one line per epoch) and prints each seed's best epoch.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch
from pytorch_tcn import TCN

from mlx_tcn.train.data import read_polyphonic


def build(seed: int, a: argparse.Namespace) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = TCN(
        num_inputs=88,
        num_channels=[a.nhid] * a.levels,
        kernel_size=a.ksize,
        dropout=a.dropout,
        causal=True,
        use_norm="weight_norm",
        output_projection=88,
        input_shape="NLC",
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("downsample.weight") or name == "projection_out.weight":
                p.normal_(0.0, 0.01)
    return model


def summed_nll(model: torch.nn.Module, seq: torch.Tensor) -> torch.Tensor:
    """The binary cross-entropy of predicting frames 1.. from frames ..-1, summed."""
    x, y = seq[None, :-1], seq[1:].double()
    p = torch.sigmoid(model(x)[0].double())
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).sum()


def evaluate(model: torch.nn.Module, split: list[torch.Tensor]) -> float:
    model.eval()
    with torch.no_grad():
        total = sum(float(summed_nll(model, s)) for s in split)
    return total / sum(len(s) - 1 for s in split)


def run(seed: int, data: dict[str, list[torch.Tensor]], a: argparse.Namespace) -> dict:
    np.random.seed(seed)
    model = build(seed, a)
    lr = a.lr
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    vlosses: list[float] = []
    best = {"epoch": 0, "val": float("inf")}  # a run whose NLL is never finite keeps its start
    best_state = copy.deepcopy(model.state_dict())
    t0 = time.perf_counter()
    with open(f"{a.out}_seed{seed}.jsonl", "w") as f:
        for ep in range(1, a.epochs + 1):
            model.train()
            total, frames = 0.0, 0
            for i in np.random.permutation(len(data["train"])):
                seq = data["train"][i]
                opt.zero_grad()
                loss = summed_nll(model, seq)
                loss.backward()
                if a.clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
                opt.step()
                total, frames = total + float(loss.detach()), frames + len(seq) - 1
            val, test = evaluate(model, data["val"]), evaluate(model, data["test"])
            rec = {"epoch": ep, "lr": lr, "train": total / frames, "val": val, "test": test,
                   "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
            f.write(json.dumps(rec) + "\n")
            f.flush()
            print(json.dumps({"seed": seed, **rec}), flush=True)
            if val < best["val"]:
                best, best_state = rec, copy.deepcopy(model.state_dict())
            if ep > 10 and val > max(vlosses[-3:]):
                lr /= 10
                for group in opt.param_groups:
                    group["lr"] = lr
            vlosses.append(val)
    model.load_state_dict(best_state)
    return {**best, "test_at_best": evaluate(model, data["test"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="JSB_Chorales.mat or Nottingham.mat")
    p.add_argument("--seeds", default="1")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--ksize", type=int, default=5)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--nhid", type=int, default=150)
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--clip", type=float, default=0.0, help="0: none, as the reference runs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    data = {k: [torch.from_numpy(s) for s in v] for k, v in read_polyphonic(a.data).items()}
    for seed in (int(s) for s in a.seeds.split(",")):
        best = run(seed, data, a)
        print(
            f"seed {seed}: best validation NLL {best['val']:.4f} at epoch {best['epoch']}; "
            f"test NLL there {best['test_at_best']:.4f}"
        )


if __name__ == "__main__":
    main()
