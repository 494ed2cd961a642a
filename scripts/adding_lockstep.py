"""Train pytorch-tcn and mlx-tcn side by side on the adding problem, from the same weights and
on the same batches, and log both losses at every step (docs/RESULTS.md, "Lockstep").

If the two libraries compute the same training step, their losses agree to float32 rounding
for the first steps and drift apart only as rounding differences grow; a plateau that one
leaves and the other does not then comes from the draw (weights, data), not the library.

Usage::

    python scripts/adding_lockstep.py --seed 1 --steps 3000 --out lockstep_seed1.jsonl

Each line of ``--out``: ``{"step", "torch", "mlx"}`` training losses, plus ``"val_torch"``
and ``"val_mlx"`` (MSE on 1,000 held-out sequences) every ``--eval-every`` steps.
"""

from __future__ import annotations

import argparse
import json
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import torch
from pytorch_tcn import TCN as TorchTCN

from mlx_tcn.interop import from_pytorch_tcn
from mlx_tcn.train.data import adding_problem


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seq-len", type=int, default=600)
    p.add_argument("--levels", type=int, default=8)
    p.add_argument("--hidden", type=int, default=24)
    p.add_argument("--kernel-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n-train", type=int, default=50000)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--init",
        choices=["pytorch-tcn", "reference"],
        default="pytorch-tcn",
        help="reference: the downsample's and the head's weights from N(0, 0.01), as the "
        "reference code's init_weights (scripts/adding_reference_torch.py)",
    )
    p.add_argument(
        "--keep-last-batch",
        action="store_true",
        help="every epoch ends with the partial batch, as the reference script's loop",
    )
    p.add_argument("--out", required=True)
    a = p.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    x_train, y_train = adding_problem(a.n_train, a.seq_len, rng)
    x_val, y_val = adding_problem(1000, a.seq_len, rng)

    kwargs = dict(
        num_inputs=2,
        num_channels=[a.hidden] * a.levels,
        kernel_size=a.kernel_size,
        dropout=0.0,
        use_norm="weight_norm",
        output_projection=1,
        input_shape="NLC",
    )
    tmodel = TorchTCN(**kwargs)
    if a.init == "reference":
        with torch.no_grad():
            for name, param in tmodel.named_parameters():
                if name.endswith("downsample.weight") or name == "projection_out.weight":
                    param.normal_(0.0, 0.01)
    mmodel = from_pytorch_tcn(tmodel.state_dict(), **kwargs)
    mmodel.train()

    topt = torch.optim.Adam(tmodel.parameters(), lr=a.lr)
    mopt = optim.Adam(learning_rate=a.lr, bias_correction=True)

    def mloss(model, x, y):
        return (model(x)[:, -1, :] - y).square().mean()

    grad_fn = nn.value_and_grad(mmodel, mloss)
    state = [mmodel.state, mopt.state]

    def step_fn(x, y):
        loss, grads = grad_fn(mmodel, x, y)
        mopt.update(mmodel, grads)
        return loss

    mstep = mx.compile(step_fn, inputs=state, outputs=state)

    def tval() -> float:
        with torch.no_grad():
            out = tmodel(torch.from_numpy(x_val))[:, -1, :]
            return float(((out - torch.from_numpy(y_val)) ** 2).mean())

    def mval() -> float:
        return float(((mmodel(mx.array(x_val))[:, -1, :] - mx.array(y_val)).square()).mean())

    starts = list(range(0, a.n_train, a.batch_size))
    if not a.keep_last_batch and a.n_train % a.batch_size:
        starts = starts[:-1]
    t0 = time.perf_counter()
    with open(a.out, "w") as f:
        for step in range(1, a.steps + 1):
            i = starts[(step - 1) % len(starts)]
            xb, yb = x_train[i : i + a.batch_size], y_train[i : i + a.batch_size]
            tx, ty = torch.from_numpy(xb), torch.from_numpy(yb)
            topt.zero_grad()
            tl = ((tmodel(tx)[:, -1, :] - ty) ** 2).mean()
            tl.backward()
            topt.step()
            ml = mstep(mx.array(xb), mx.array(yb))
            mx.eval(ml, mmodel.state, mopt.state)
            rec = {"step": step, "torch": float(tl.detach()), "mlx": float(ml)}
            if step % a.eval_every == 0:
                rec["val_torch"], rec["val_mlx"] = tval(), mval()
                rec["wall_s"] = round(time.perf_counter() - t0, 1)
                print(json.dumps(rec), flush=True)
            f.write(json.dumps(rec) + "\n")
            f.flush()


if __name__ == "__main__":
    main()
