"""The polyphonic-music paper preset with the reference code's output layer: the linear head's
weights drawn from N(0, 0.01) (``TCN/poly_music/model.py`` sets ``linear.weight.data.normal_(0,
0.01)``; its bias keeps PyTorch's default), instead of the uniform +-1/sqrt(fan_in) that MLX's
``nn.Linear`` (and PyTorch's default) gives. Everything else is ``mlx-tcn train``: the same
run folder, schedule, checkpoints and ``mlx-tcn evaluate``.

Usage: ``python scripts/music_head_init.py [mlx-tcn train arguments]``, e.g.
``python scripts/music_head_init.py --task jsb --preset paper --data-path JSB_Chorales.mat
--seed 1 --name jsb-head001``. Measured in docs/RESULTS.md ("JSB Chorales").
"""

from __future__ import annotations

import sys
from typing import Any

import mlx.core as mx

from mlx_tcn import cli
from mlx_tcn.train import runner

HEAD_STD = 0.01


def _reference_head(build: Any) -> Any:
    """``build_model`` whose model's output head is redrawn from N(0, HEAD_STD)."""

    def build_model(*args: Any, **kwargs: Any) -> Any:
        model = build(*args, **kwargs)
        head = model.projection_out
        head.weight = HEAD_STD * mx.random.normal(head.weight.shape, dtype=head.weight.dtype)
        return model

    return build_model


if __name__ == "__main__":
    runner.build_model = _reference_head(runner.build_model)
    sys.exit(cli.main(["train", *sys.argv[1:]]))
