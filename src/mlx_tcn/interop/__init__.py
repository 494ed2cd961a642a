"""Convert models between pytorch-tcn (1.2.x) and mlx-tcn, in both directions.

:func:`from_pytorch_tcn` builds a :class:`mlx_tcn.TCN` from a pytorch-tcn state dict and the
pytorch-tcn constructor arguments; :func:`to_pytorch_tcn` gives back a state dict that
``pytorch_tcn.TCN(**kwargs).load_state_dict(...)`` accepts strictly, plus those ``kwargs``;
:func:`main_convert` is ``mlx-tcn convert``.

The package, one concern a module: :mod:`.args` (constructor arguments), :mod:`.state`
(state-dict keys and layouts), :mod:`.files` (reading and writing the files), :mod:`.api`
(the two conversions) and :mod:`.convert` (``mlx-tcn convert``).

Layouts: a torch convolution weight is (out, in, k), an mlx-tcn one (out, k, in); torch's 1x1
convolutions (residual downsample, embedding projections, skip downsample, output projection)
are (out, in, 1) and ours are ``nn.Linear`` weights (out, in); weight-norm gains are (out, 1, 1)
on both sides. Both weight-norm formats are read: ``parametrizations.weight.original0/1``
(torch >= 2.1) and the older ``weight_g``/``weight_v``. Streaming buffers (``padder.buffer``,
and ``conv1.buffer``/``conv2.buffer`` from pytorch-tcn < 1.2.2) and batch-norm
``num_batches_tracked`` counters carry no weights and are ignored.

torch is imported only when a ``.pt``/``.pth`` file is read or written.
"""

from __future__ import annotations

from .api import from_pytorch_tcn, to_pytorch_tcn
from .args import PYTORCH_TCN_DEFAULTS, config_to_pytorch_kwargs, pytorch_kwargs_to_config
from .convert import main_convert

__all__ = [
    "PYTORCH_TCN_DEFAULTS",
    "config_to_pytorch_kwargs",
    "from_pytorch_tcn",
    "main_convert",
    "pytorch_kwargs_to_config",
    "to_pytorch_tcn",
]
