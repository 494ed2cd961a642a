"""`mlx-tcn train` with the initialisation and optimiser arms of docs/RESULTS.md.

Usage: ``INIT_MODE=xavier|torch|ref ADAM_BC=0|1 python scripts/init_comparison.py train ...``
(the arguments are those of ``mlx-tcn``). After each block is built, the weight-normalised
convolutions are re-drawn:

* ``xavier``: the kernel initialiser applied to ``weight_v`` (mlx-tcn before it followed
  pytorch-tcn), ``weight_g = ||weight_v||``;
* ``torch``: PyTorch's default U(+-1/sqrt(fan_in)), as pytorch-tcn and mlx-tcn now do;
* ``ref``: as ``torch``, and the 1x1 downsamples and the head N(0, 0.01), as the reference code;
* ``head``: the convolutions as the library draws them (no re-draw), and the 1x1 downsamples
  and the head N(0, 0.01): the preset's own draw with only those two layers changed.

``ref`` and ``head`` draw those two layers through ``--reference-init`` (added unless the
command line has either form of the flag); the other arms and ``SAME_DRAW`` get
``--no-reference-init``, so they mean what they did before the adding preset set it.

``ADAM_BC=0`` gives back MLX's Adam without bias correction (mlx-tcn train before it
corrected). ``DATA_ORDER=reference`` trains on the training set in the same order every epoch,
the last partial batch included, as the reference code's loop does (``mlx-tcn train
--no-shuffle``, which it passes); otherwise ``--shuffle`` is passed (a new order each epoch,
the partial batch dropped), as for every arm before the adding paper preset stopped
shuffling. The draws differ from the library's own; the distributions are the same.

``SAME_DRAW=S`` (adding problem only) replays the draw of ``scripts/adding_reference_torch.py
--seeds S`` and ``adding_lockstep.py --seed S --init reference``: the weights are pytorch-tcn's
after ``torch.manual_seed(S)`` with the reference code's N(0, 0.01) downsample and head,
converted with ``from_pytorch_tcn``, and the training and validation sets are drawn from
``numpy.random.default_rng(S)`` in that order. With ``DATA_ORDER=reference`` this is the
reference recipe run by ``mlx-tcn train`` itself (its loop, compiled step and evaluation).
"""

from __future__ import annotations

import math
import os
import sys

import mlx.core as mx
import mlx.optimizers as optim

import mlx_tcn.block as block
import mlx_tcn.tcn as tcn
import mlx_tcn.train.loop as loop
from mlx_tcn.cli import main
from mlx_tcn.init import get_initializer

MODE = os.environ.get("INIT_MODE", "torch")
ADAM_BC = os.environ.get("ADAM_BC", "1") == "1"
DATA_ORDER = os.environ.get("DATA_ORDER", "shuffled")
SAME_DRAW = os.environ.get("SAME_DRAW")
_DRAWING: list[bool] = []
_block_init = block.TemporalBlock.__init__
_tcn_init = tcn.TCN.__init__
_Adam = optim.Adam
_iterate_batches = loop.iterate_batches


def _draw(shape: tuple[int, ...], kwargs: dict) -> mx.array:
    if MODE == "xavier":
        name = kwargs.get("kernel_initializer", "xavier_uniform")
        return get_initializer(name, kwargs.get("activation", "relu"))(shape)
    bound = 1 / math.sqrt(shape[1] * shape[2])
    return mx.random.uniform(-bound, bound, shape)


def _block(self: block.TemporalBlock, *args, **kwargs) -> None:
    _block_init(self, *args, **kwargs)
    if self.use_norm == "weight_norm" and MODE != "head":
        for conv in (self.conv1, self.conv2):
            v = _draw(conv.weight_v.shape, kwargs)
            conv.weight_v = v
            conv.weight_g = mx.sqrt(mx.sum(v * v, axis=(1, 2), keepdims=True))


def _tcn(self: tcn.TCN, *args, **kwargs) -> None:
    _tcn_init(self, *args, **kwargs)
    if SAME_DRAW is not None:
        if not _DRAWING:  # from_pytorch_tcn builds a TCN too
            _DRAWING.append(True)
            _torch_draw(self, int(SAME_DRAW))
            _DRAWING.clear()
        return


class _AdamArm(_Adam):
    def __init__(self, learning_rate, **kwargs) -> None:  # noqa: ANN001
        kwargs["bias_correction"] = ADAM_BC
        super().__init__(learning_rate, **kwargs)


def _torch_draw(self: tcn.TCN, seed: int) -> None:
    """Replace every parameter of ``self`` with those of the torch reference's draw."""
    import torch
    from pytorch_tcn import TCN as TorchTCN

    from mlx_tcn.interop import from_pytorch_tcn

    kwargs = dict(num_inputs=2, num_channels=[blk.conv1.weight_v.shape[0] for blk in self.network],
                  kernel_size=self.network[0].conv1.weight_v.shape[1], dropout=0.0,
                  use_norm="weight_norm", output_projection=1, input_shape="NLC")  # fmt: skip
    torch.manual_seed(seed)
    ref = TorchTCN(**kwargs)
    with torch.no_grad():
        for name, param in ref.named_parameters():
            if name.endswith("downsample.weight") or name == "projection_out.weight":
                param.normal_(0.0, 0.01)
    self.update(from_pytorch_tcn(ref.state_dict(), **kwargs).parameters())


def _same_draw_data(seed: int):  # noqa: ANN202
    import numpy as np

    import mlx_tcn.train.tasks as tasks

    rng = np.random.default_rng(seed)  # train first, then validation, as the lockstep
    original = tasks.adding_problem
    tasks.adding_problem = lambda n, seq_len, _rng: original(n, seq_len, rng)


def _in_order(split, batch_size, **kwargs):  # noqa: ANN001, ANN202
    if "seed" in kwargs:  # the training batches (evaluations pass no seed)
        kwargs.update(shuffle=False, drop_last=False)
    return _iterate_batches(split, batch_size, **kwargs)


if __name__ == "__main__":
    if DATA_ORDER == "reference":
        loop.iterate_batches = _in_order
    if SAME_DRAW is not None:
        _same_draw_data(int(SAME_DRAW))
    block.TemporalBlock.__init__ = _block
    tcn.TCN.__init__ = _tcn
    optim.Adam = _AdamArm
    argv = sys.argv[1:]
    flags = ("--reference-init", "--no-reference-init", "--resume")
    if argv[:1] == ["train"] and not any(a in argv for a in flags):
        # ref/head: the downsamples and the head from N(0, 0.01), drawn by build_model after
        # the model (mlx-tcn train --reference-init); the other arms and SAME_DRAW (whose
        # draw has them already) keep what they had before the adding preset set it.
        wanted = MODE in ("ref", "head") and SAME_DRAW is None
        argv.append("--reference-init" if wanted else "--no-reference-init")
    orders = ("--shuffle", "--no-shuffle", "--resume")
    if argv[:1] == ["train"] and not any(a in argv for a in orders):
        # DATA_ORDER=reference is what mlx-tcn train --no-shuffle does (the adding paper
        # preset since session 12); otherwise shuffled, as every arm was made before that.
        # (The patch above also keeps the order of a resumed run made before the flag.)
        argv.append("--no-shuffle" if DATA_ORDER == "reference" else "--shuffle")
    sys.exit(main(argv))
