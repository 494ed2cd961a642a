"""Convert models between pytorch-tcn (1.2.x) and mlx-tcn, in both directions.

:func:`from_pytorch_tcn` builds a :class:`mlx_tcn.TCN` from a pytorch-tcn state dict and the
pytorch-tcn constructor arguments; :func:`to_pytorch_tcn` gives back a state dict that
``pytorch_tcn.TCN(**kwargs).load_state_dict(...)`` accepts strictly, plus those ``kwargs``;
:func:`main_convert` is ``mlx-tcn convert``.

The package, one concern a module: :mod:`.args` (constructor arguments), :mod:`.state`
(state-dict keys and layouts), :mod:`.files` (reading and writing the files), :mod:`.api`
(the two conversions) and :mod:`.convert` (``mlx-tcn convert``).

The layouts and weight-norm formats are described in :mod:`.state`; torch is imported only
when a ``.pt``/``.pth`` file is read or written.
"""

from __future__ import annotations

from .api import from_pytorch_tcn, to_pytorch_tcn
from .args import PYTORCH_TCN_DEFAULTS, config_to_pytorch_kwargs, pytorch_kwargs_to_config
from .convert import add_convert_arguments, main_convert, run_convert

__all__ = [
    "add_convert_arguments",
    "from_pytorch_tcn",
    "main_convert",
    "run_convert",
    "to_pytorch_tcn",
]
__all__ += ["PYTORCH_TCN_DEFAULTS", "config_to_pytorch_kwargs", "pytorch_kwargs_to_config"]
