"""Make the pytorch-tcn parity fixtures in ``tests/fixtures/pytorch_tcn/``.

Needs torch and pytorch-tcn 1.2.3 (``pip install 'mlx-tcn[torch]'``). For each case in
:data:`CASES` it builds a seeded ``pytorch_tcn.TCN`` in eval mode, gives its weight-norm gains,
batch-norm statistics and layer-norm affines random values (at initialisation they are trivial:
``g == ||v||``, mean 0, var 1, weight 1, bias 0, which would hide a dropped or swapped tensor),
runs a random input through it and writes

* ``<name>.safetensors``: the model's ``state_dict()`` exactly as pytorch-tcn saves it (torch
  key names and layouts, padder buffers and ``num_batches_tracked`` included);
* ``<name>.npz``: ``x`` (batch, length, channels), the embeddings ``emb0``, ``emb1``, ...
  channels-last ((batch, dim) global, (batch, length, dim) time-aligned), the offline output
  ``y`` (batch, length, out) and, for causal cases, ``y_stream``: pytorch-tcn's streaming output
  (``inference=True``, batch 1, chunk by chunk, one sample at a time);
* ``cases.json``: per case the pytorch-tcn constructor kwargs, seed, sizes, embedding layout and
  streaming chunk lengths.

The same helpers serve the live parity tests in ``tests/test_interop.py``.

Known pytorch-tcn 1.2.3 defects kept out of the parity targets:

* ``nn.Softmax()`` / ``nn.LogSoftmax()`` are built without ``dim``; on (N, C, L) tensors torch
  then normalises over the batch axis. :func:`make_torch_tcn` sets ``dim=1`` (channels), which is
  what mlx-tcn computes.
* ``kernel_size=1`` streaming keeps the whole chunk as the "buffer" (``x[..., -0:]``), so the
  streamed output is wrong; no streaming reference is made for ``kernel_size=1``.

Run from the repository root::

    python scripts/make_pytorch_tcn_fixtures.py [--out tests/fixtures/pytorch_tcn]
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("make_pytorch_tcn_fixtures")

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pytorch_tcn"

# Each case: pytorch-tcn kwargs, embeddings as [kind, dim] with kind "global" or "time",
# streaming chunk lengths (causal cases) summing to ``length``.
CASES: list[dict[str, Any]] = [
    {
        "name": "causal_weight_norm_k3",
        "kwargs": {"num_inputs": 3, "num_channels": [5, 5, 6], "kernel_size": 3},
        "embeddings": [],
        "chunks": [1, 4, 3, 8],
    },
    {
        "name": "noncausal_batch_norm_gate_skip_proj_k4",
        "kwargs": {
            "num_inputs": 4,
            "num_channels": [6, 6, 8],
            "kernel_size": 4,
            "causal": False,
            "use_norm": "batch_norm",
            "activation": "gelu",
            "use_gate": True,
            "use_skip_connections": True,
            "embedding_shapes": [[2]],
            "embedding_mode": "add",
            "output_projection": 3,
        },
        "embeddings": [["global", 2]],
        "chunks": None,
    },
    {
        "name": "causal_layer_norm_concat_k2_reset",
        "kwargs": {
            "num_inputs": 2,
            "num_channels": [4, 4, 4, 4],
            "kernel_size": 2,
            "dilation_reset": 2,
            "use_norm": "layer_norm",
            "activation": "leaky_relu",
            "use_skip_connections": True,
            "embedding_shapes": [[3], [2, 16]],
            "embedding_mode": "concat",
        },
        "embeddings": [["global", 3], ["time", 2]],
        "chunks": [5, 1, 10],
    },
    {
        "name": "causal_no_norm_gate_time_add_proj_k5",
        "kwargs": {
            "num_inputs": 3,
            "num_channels": [4, 6],
            "kernel_size": 5,
            "use_norm": None,
            "activation": "elu",
            "use_gate": True,
            "embedding_shapes": [[3, 16]],
            "output_projection": 2,
            "output_activation": "sigmoid",
        },
        "embeddings": [["time", 3]],
        "chunks": [2, 2, 7, 5],
    },
    {
        "name": "noncausal_weight_norm_skip_softmax_k5",
        "kwargs": {
            "num_inputs": 2,
            "num_channels": [3, 5],
            "kernel_size": 5,
            "dilations": [1, 3],
            "causal": False,
            "activation": "selu",
            "use_skip_connections": True,
            "output_projection": 4,
            "output_activation": "softmax",
        },
        "embeddings": [],
        "chunks": None,
    },
]

BATCH = 2
LENGTH = 16


def _import_torch():
    import torch
    from pytorch_tcn import TCN

    return torch, TCN


def randomize_(model: Any, seed: int) -> None:
    """Give weight-norm gains, batch-norm statistics and norm affines non-trivial values."""
    torch, _ = _import_torch()
    gen = torch.Generator().manual_seed(seed + 1)

    def uniform_(t, lo: float, hi: float) -> None:
        t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=gen))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                uniform_(module.running_mean, -0.5, 0.5)
                uniform_(module.running_var, 0.5, 2.0)
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)):
                uniform_(module.weight, 0.5, 1.5)
                uniform_(module.bias, -0.5, 0.5)
        for name, param in model.named_parameters():
            if name.endswith("original0"):
                param.mul_(0.5 + torch.rand(param.shape, generator=gen))


def make_torch_tcn(kwargs: dict[str, Any], seed: int) -> Any:
    """A seeded pytorch-tcn ``TCN(**kwargs)`` in eval mode with randomised norms.

    Softmax and log-softmax output activations get ``dim=1`` (pytorch-tcn leaves ``dim`` unset,
    which on (N, C, L) tensors normalises over the batch axis).
    """
    torch, TCN = _import_torch()
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TCN(**kwargs)
    randomize_(model, seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.Softmax, torch.nn.LogSoftmax)) and module.dim is None:
            module.dim = 1
    return model.eval()


def make_inputs(
    num_inputs: int, embeddings: list, batch: int, length: int, seed: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Random channels-last input and embeddings ((B, dim) global, (B, L, dim) time-aligned)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, length, num_inputs)).astype(np.float32)
    embs = []
    for kind, dim in embeddings:
        shape = (batch, dim) if kind == "global" else (batch, length, dim)
        embs.append(rng.standard_normal(shape).astype(np.float32))
    return x, embs


def _torch_embeddings(embs: list[np.ndarray], start: int | None = None, stop: int | None = None):
    """Channels-last embeddings -> pytorch-tcn's channel-first tensors, optionally a time slice."""
    torch, _ = _import_torch()
    out = []
    for e in embs:
        if e.ndim == 2:
            out.append(torch.from_numpy(e))
        else:
            out.append(torch.from_numpy(np.ascontiguousarray(e[:, start:stop].transpose(0, 2, 1))))
    return out or None


def torch_offline(model: Any, x: np.ndarray, embs: list[np.ndarray]) -> np.ndarray:
    """pytorch-tcn offline output for channels-last ``x``, returned channels-last."""
    torch, _ = _import_torch()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1)))
    with torch.no_grad():
        y = model(xt, embeddings=_torch_embeddings(embs))
    return y.numpy().transpose(0, 2, 1)


def torch_streaming(
    model: Any, x: np.ndarray, embs: list[np.ndarray], chunks: list[int]
) -> np.ndarray:
    """pytorch-tcn streaming output (batch 1, one sample at a time, chunk by chunk)."""
    torch, _ = _import_torch()
    outs = []
    for b in range(x.shape[0]):
        model.reset_buffers()
        pieces, start = [], 0
        for n in chunks:
            xc = x[b : b + 1, start : start + n].transpose(0, 2, 1)
            xt = torch.from_numpy(np.ascontiguousarray(xc))
            e = _torch_embeddings([em[b : b + 1] for em in embs], start, start + n)
            with torch.no_grad():
                pieces.append(model(xt, embeddings=e, inference=True).numpy())
            start += n
        outs.append(np.concatenate(pieces, axis=-1)[0].T)
    model.reset_buffers()
    return np.stack(outs)


def state_dict_numpy(model: Any) -> dict[str, np.ndarray]:
    """The model's state dict as NumPy arrays (torch names and layouts)."""
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def make_case(case: dict[str, Any], seed: int) -> dict[str, Any]:
    """Build one case: state dict, inputs and references."""
    kwargs = case["kwargs"]
    model = make_torch_tcn(kwargs, seed)
    x, embs = make_inputs(kwargs["num_inputs"], case["embeddings"], BATCH, LENGTH, seed)
    arrays = {"x": x, "y": torch_offline(model, x, embs)}
    arrays.update({f"emb{i}": e for i, e in enumerate(embs)})
    if case["chunks"] is not None:
        arrays["y_stream"] = torch_streaming(model, x, embs, case["chunks"])
        err = np.abs(arrays["y_stream"] - arrays["y"]).max()
        if err > 1e-5:
            raise RuntimeError(f"{case['name']}: pytorch-tcn streaming differs by {err}")
    return {"state_dict": state_dict_numpy(model), "arrays": arrays}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    import mlx.core as mx

    args.out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for seed, case in enumerate(CASES):
        made = make_case(case, seed)
        mx.save_safetensors(
            str(args.out / f"{case['name']}.safetensors"),
            {k: mx.array(v) for k, v in made["state_dict"].items()},
        )
        np.savez(args.out / f"{case['name']}.npz", **made["arrays"])
        manifest.append({**case, "seed": seed, "batch": BATCH, "length": LENGTH})
        logger.info("wrote %s", case["name"])
    (args.out / "cases.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
