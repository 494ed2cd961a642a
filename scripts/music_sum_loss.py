"""``mlx-tcn train`` with the polyphonic-music loss summed over each sequence's frames (and
notes), as the reference script (``TCN/poly_music/music_test.py``) back-propagates it, instead
of the library's mean over frames. Everything else is ``mlx-tcn train``: the same run folder,
schedule, clip, checkpoints, and ``mlx-tcn evaluate`` (which reports the per-frame NLL either
way).

Usage: ``python scripts/music_sum_loss.py [mlx-tcn train arguments]``, e.g.
``python scripts/music_sum_loss.py --task jsb --preset paper --data-path JSB_Chorales.mat
--seed 1 --name jsb-sum``. Measured in docs/RESULTS.md ("JSB Chorales").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from mlx_tcn import cli
from mlx_tcn.train import distributed


def _summed(loss_fn: Callable[..., Any]) -> Callable[..., Any]:
    """``loss_fn`` whose loss is the mean times the number of frames it averages over."""

    def make(kind: str, *args: Any, **kwargs: Any) -> Callable[..., mx.array]:
        mean = loss_fn(kind, *args, **kwargs)

        def loss(model: Any, x: mx.array, y: mx.array, mask: mx.array | None) -> mx.array:
            frames = x.shape[0] * x.shape[1] if mask is None else mask.sum()
            return mean(model, x, y, mask) * frames

        return loss

    return make


if __name__ == "__main__":
    distributed.loss_fn = _summed(distributed.loss_fn)
    sys.exit(cli.main(["train", *sys.argv[1:]]))
