"""mlx-tcn: Temporal Convolutional Networks for Apple MLX.

Channels-last ``(batch, length, channels)`` everywhere. Start with :class:`TCN`; stream with
``state = model.init_state(batch)`` and ``y, state = model.stream(chunk, state)``.
"""

# Must run before anything imports mlx.core: on Linux it points MLX at an optimized BLAS.
from . import _backend

_backend.setup()

from . import init  # noqa: E402  (initialisers live in mlx_tcn.init, as in mlx.nn.init)
from ._stream import load_state, save_state  # noqa: E402
from .activations import ACTIVATIONS  # noqa: E402
from .buffer import BufferIO  # noqa: E402
from .config import TCNConfig  # noqa: E402
from .conv import TemporalConv1d, TemporalConvTransposed1d  # noqa: E402

#: pytorch-tcn's name for :class:`TemporalConvTransposed1d` (``from pytorch_tcn import
#: TemporalConvTranspose1d``), so that a port only changes the package.
TemporalConvTranspose1d = TemporalConvTransposed1d
from .init import INITIALIZERS  # noqa: E402
from .interop import from_pytorch_tcn, to_pytorch_tcn  # noqa: E402
from .modules import ModuleList  # noqa: E402
from .pad import TemporalPad1d  # noqa: E402
from .parametrizations import remove_weight_norm, weight_norm  # noqa: E402
from .pool import AdaptiveAvgPool1d, AdaptiveMaxPool1d  # noqa: E402
from .se import SqueezeExcitation  # noqa: E402
from .tcn import TCN, TemporalBlock  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "TCN",
    "AdaptiveAvgPool1d",
    "AdaptiveMaxPool1d",
    "BufferIO",
    "ModuleList",
    "SqueezeExcitation",
    "TCNConfig",
    "TemporalBlock",
    "TemporalConv1d",
    "TemporalConvTranspose1d",
    "TemporalConvTransposed1d",
    "TemporalPad1d",
    "from_pytorch_tcn",
    "init",
    "load_state",
    "remove_weight_norm",
    "save_state",
    "to_pytorch_tcn",
    "weight_norm",
]

# Names that were top-level before the initialisers moved under ``mlx_tcn.init`` (as
# ``mlx.nn`` keeps them under ``nn.init``): still importable, with a DeprecationWarning.
_MOVED_TO_INIT = frozenset(init.__all__) - {"INITIALIZERS"}


def __getattr__(name: str):  # PEP 562: only called for names not found above
    if name in _MOVED_TO_INIT:
        import warnings

        warnings.warn(
            f"mlx_tcn.{name} moved to mlx_tcn.init.{name}; the top-level name will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(init, name)
    raise AttributeError(f"module 'mlx_tcn' has no attribute {name!r}")
