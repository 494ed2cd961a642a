"""The polyphonic-music measurements of docs/RESULTS.md ("Summed or averaged loss, and the
clip"): the model of the JSB paper preset as it was then (kernel 5, 4 levels, dropout
0.25: the reference script's defaults) and its data order, one sequence per step, Adam 1e-3 at a
constant rate, trained with one of three arms:

* ``clip``: the frame-mean loss, its gradient clipped to norm 0.2 (the preset); also records
  every step's pre-clip gradient norm and sequence length;
* ``mean``: the frame-mean loss, no clip;
* ``sum``: the per-sequence sum over frames (the mean times the length), no clip: what the
  reference script's Adam steps on, since its clip runs before ``backward()``.

Usage: ``python scripts/music_clip_arms.py ARM EPOCHS SEED JSB_Chorales.mat OUT.json``; prints
the validation NLL after each epoch and writes it (and, for ``clip``, the norms) to OUT.json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

from mlx_tcn.train.config import resolve_config
from mlx_tcn.train.losses import evaluate_split, loss_fn
from mlx_tcn.train.model import build_model
from mlx_tcn.train.schedule import make_optimizer
from mlx_tcn.train.split import iterate_batches
from mlx_tcn.train.tasks import build_task

CLIP = 0.2


def _loss(arm: str, kind: str) -> Callable[..., mx.array]:
    """The frame mean, or for ``sum`` the mean times the sequence's length (batch 1)."""
    mean = loss_fn(kind)
    if arm != "sum":
        return mean
    return lambda model, x, y, mask: mean(model, x, y, mask) * x.shape[1]


def run(arm: str, epochs: int, seed: int, data_path: str) -> dict:
    """Train ``epochs`` epochs with ``arm``; the validation NLL after each, and the norms."""
    # The model the JSB paper preset had when these arms were measured (the reference
    # script's defaults); the preset now takes the paper's settings for JSB.
    cfg = resolve_config({}, {"task": "jsb", "preset": "paper", "seed": seed,
                              "schedule": "constant", "data_path": data_path,
                              "kernel_size": 5, "levels": 4, "dropout": 0.25})  # fmt: skip
    mx.random.seed(cfg.seed)
    task = build_task(cfg)
    model = build_model(cfg, task.num_inputs, task.num_outputs)
    opt = make_optimizer(cfg, 1)
    opt.init(model.trainable_parameters())
    loss_and_grad = nn.value_and_grad(model, _loss(arm, task.kind))
    out: dict = {"arm": arm, "seed": seed, "val_nll": [], "steps": []}
    for epoch in range(epochs):
        model.train()
        for x, y, mask in iterate_batches(task.train, 1, seed=cfg.seed, epoch=epoch):
            _, grads = loss_and_grad(model, x, y, mask)
            if arm == "clip":
                grads, norm = optim.clip_grad_norm(grads, CLIP)
                out["steps"].append([epoch + 1, int(x.shape[1]), float(norm)])
            opt.update(model, grads)
            mx.eval(model.parameters(), opt.state)
        model.eval()
        batches = iterate_batches(task.val, 1, shuffle=False, drop_last=False)
        out["val_nll"].append(evaluate_split(model, task.kind, batches, None)["loss"])
        print(arm, seed, epoch + 1, round(out["val_nll"][-1], 4), flush=True)
    return out


if __name__ == "__main__":
    arm, epochs, seed, data_path, out_path = sys.argv[1:6]
    if arm not in ("clip", "mean", "sum"):
        raise SystemExit(f"ARM must be clip, mean or sum, got {arm!r}")
    result = run(arm, int(epochs), int(seed), data_path)
    with open(out_path, "w") as f:
        json.dump(result, f)
