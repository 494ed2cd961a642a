"""Config values as their field's type: ``lr = 1`` is ``1.0``, a NumPy scalar a Python one,
and anything else a ``TypeError`` that names the setting, where it came from and the value."""

from __future__ import annotations

import math
import numbers
import os
import types
import typing
from typing import Any

__all__ = ["typed"]


def _describe(hint: Any) -> str:
    """``int | None`` -> "an integer or None", for error messages."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    text = words.get(base, "a list of column names or positions")
    return f"{text} or None" if optional else text


def typed(name: str, value: Any, hint: Any, where: str = "") -> Any:
    """``value`` as the type of field ``name`` (an int where a float goes becomes a float,
    NumPy scalars become Python ones), or a ``TypeError`` naming the setting and the value.

    Uses only the :mod:`numbers` ABCs, so NumPy is not imported here.
    """
    full, args = hint, typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    ok: Any = None
    is_bool = isinstance(value, bool) or (  # NumPy's bool (np.bool_ before NumPy 2)
        type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    )
    if hint is bool:
        ok = bool(value) if is_bool else None
    elif is_bool:
        ok = None  # True is an int in Python, but never a count or a rate
    elif hint is int and isinstance(value, numbers.Integral):
        ok = int(value)
    elif hint is float and isinstance(value, numbers.Real):
        ok = float(value)
    elif hint is str and isinstance(value, (str, os.PathLike)):
        ok = os.fspath(value)
    elif typing.get_origin(hint) is list or isinstance(hint, types.GenericAlias):
        if isinstance(value, (list, tuple)) and all(
            isinstance(v, (str, numbers.Integral)) and not isinstance(v, bool) for v in value
        ):
            ok = [v if isinstance(v, str) else str(int(v)) for v in value]
    place = f" {where}" if where else ""
    if ok is None:
        raise TypeError(
            f"{name}{place} must be {_describe(full)}, got {value!r} ({type(value).__name__})"
        )
    if isinstance(ok, float) and not math.isfinite(ok):
        raise ValueError(f"{name}{place} must be finite, got {value!r}")
    return ok
