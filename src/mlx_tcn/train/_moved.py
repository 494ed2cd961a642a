"""Old import paths of names that moved when train/ took one role per module (issue 11).

``from mlx_tcn.train.data import iterate_batches`` and the like keep working: a module's
``__getattr__`` (PEP 562) imports the name from its new home, so no module imports another
just for compatibility and the one-way path between them stays one-way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def forwarder(module: str, moved: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves each name in ``moved`` from its new module
    (``{"Split": "split"}``: ``mlx_tcn.train.split.Split``)."""
    package = module.rpartition(".")[0]

    def __getattr__(name: str) -> Any:
        if name in moved:
            return getattr(importlib.import_module(f"{package}.{moved[name]}"), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
