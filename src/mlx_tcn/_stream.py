"""Checks shared by the layers (arguments, inputs, streaming states) and the state files.

The stateful API built on these checks lives in :mod:`mlx_tcn._stateful`.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path


def check_int(value: object, name: str, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum`` (NumPy integers
    included), else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_bool(value: object, name: str) -> bool:
    """Return ``value`` if it is a bool, else raise naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_dropout(dropout: object) -> float:
    """Return ``dropout`` as a float in ``[0, 1)`` (NumPy scalars included, as for the
    integer arguments), else raise."""
    if isinstance(dropout, (bool, np.bool_)) or not isinstance(dropout, numbers.Real):
        raise TypeError(f"dropout must be a float in [0, 1), got {dropout!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return float(dropout)


def check_input(x: object, channels: int, name: str = "x") -> None:
    """Raise unless ``x`` is an ``mx.array`` of shape ``(batch, length, channels)``."""
    if not isinstance(x, mx.array):
        raise TypeError(f"{name} must be an mlx.core.array, got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(
            f"{name} must have shape (batch, length, channels) with {channels} channels, "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[-1] != channels:
        raise ValueError(
            f"{name} has {x.shape[-1]} channels (last axis) but {channels} are expected; "
            f"got shape {tuple(x.shape)} (inputs are channels-last: (batch, length, channels))"
        )
    if not mx.issubdtype(x.dtype, mx.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    if x.shape[1] < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have at least one batch row and one step, got {x.shape}")


def check_state(
    state: object, expected: dict[str, tuple[int, ...]], batch_size: int, what: str
) -> None:
    """Raise unless ``state`` has the arrays of ``expected`` (key -> shape after the batch
    axis), each with ``batch_size`` rows. ``what`` names the owner ("model", "layer")."""
    got = dict(tree_flatten(state))
    expected = _allow_time_order(expected, got)
    if expected.keys() != got.keys():
        raise ValueError(
            f"state does not fit this {what}: missing {sorted(expected.keys() - got.keys())}, "
            f"unexpected {sorted(got.keys() - expected.keys())} (use init_state() of the same "
            f"{what})"
        )
    for key, leaf in got.items():
        if not isinstance(leaf, mx.array):
            raise TypeError(f"state[{key!r}] must be an mlx.core.array, got {leaf!r}")
        if key.endswith("pos") and not mx.issubdtype(leaf.dtype, mx.integer):
            raise TypeError(
                f"state[{key!r}] (the slot of a ring buffer's next frame) must be an integer "
                f"array, got dtype {leaf.dtype}"
            )
        want = (batch_size, *expected[key])
        if tuple(leaf.shape) == want:
            continue
        problem = f"state[{key!r}] has shape {tuple(leaf.shape)}, expected {want}"
        if leaf.ndim == len(want) and leaf.shape[1:] == expected[key]:
            raise ValueError(
                f"the chunk has batch size {batch_size} but the stream's state has "
                f"{leaf.shape[0]}: {problem} for a chunk of batch size {batch_size}; start a "
                f"new stream (reset_buffers() or init_state({batch_size})) to change the batch size"
            )
        raise ValueError(f"{problem} for a chunk of batch size {batch_size}")


def _allow_time_order(
    expected: dict[str, tuple[int, ...]], got: dict[str, Any]
) -> dict[str, tuple[int, ...]]:
    """``expected`` where ``got`` holds a convolution's buffer without the ring's ``pos``:
    the frames in time order, one fewer (the layout of a small buffer, and of every buffer
    before rings; TemporalPad1d reads both)."""
    out = dict(expected)
    for key in expected.keys() - got.keys():
        buffer = key[: -len("pos")] + "buffer"
        if key.endswith("pos") and buffer in got and buffer in expected:
            del out[key]
            frames, *rest = expected[buffer]
            out[buffer] = (frames - 1, *rest)
    return out


def rows_mask(rows: object, batch: int) -> mx.array:
    """The rows a ``reset_state`` call names, as a boolean mask of shape ``(batch,)``.

    ``rows`` is a row index (Python or NumPy integer), a list or tuple of them, a 0-d or 1-d
    integer array (NumPy or MLX), or a boolean mask of shape ``(batch,)`` (NumPy or MLX).
    """
    if isinstance(rows, (np.ndarray, mx.array)):
        return _array_rows_mask(rows, batch)
    index = list(rows) if isinstance(rows, (list, tuple)) else [rows]
    flags = np.zeros(batch, dtype=bool)
    for r in index:
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, numbers.Integral):
            raise TypeError(
                f"rows must be row indices (ints) or a boolean mask of shape ({batch},), got "
                f"{rows!r} (a mask is a NumPy or MLX boolean array, not bools in a list)"
            )
        if not -batch <= r < batch:
            raise ValueError(
                f"rows must be row indices in [-{batch}, {batch}) (negative from the end), "
                f"got {rows!r}"
            )
        flags[int(r)] = True
    return mx.array(flags)


def _array_rows_mask(rows: np.ndarray | mx.array, batch: int) -> mx.array:
    kind = rows.dtype
    if isinstance(rows, mx.array):
        is_bool, is_int = kind == mx.bool_, mx.issubdtype(kind, mx.integer)
    else:
        is_bool, is_int = kind == np.bool_, np.issubdtype(kind, np.integer)
    if not (is_bool or is_int):
        raise TypeError(
            f"rows must be integer row indices or a boolean mask of shape ({batch},), got an "
            f"array of dtype {kind}: {rows!r}"
        )
    if is_bool:
        if tuple(rows.shape) != (batch,):
            raise ValueError(f"rows mask must have shape ({batch},), got {tuple(rows.shape)}")
        return mx.array(np.array(rows))
    if rows.ndim > 1:
        raise ValueError(
            f"rows must be a 0-d or 1-d array of row indices, got shape {tuple(rows.shape)}"
        )
    return rows_mask(np.array(rows).reshape(-1).tolist(), batch)


def promoted_dtype(dtype: mx.Dtype, *modules: nn.Module | None) -> mx.Dtype:
    """The dtype of activations of ``dtype`` after layers with the parameters of
    ``modules``: what a stream state past those layers holds, so that its dtype never
    changes between chunks."""
    for module in modules:
        if module is None:
            continue
        for _, p in tree_flatten(module.parameters()):
            if mx.issubdtype(p.dtype, mx.floating):
                dtype = mx.result_type(dtype, p.dtype)
    return dtype


STATE_SUFFIX = ".safetensors"


def _state_path(path: object) -> Path:
    """``path`` as the file :func:`save_state` writes: MLX adds ``.safetensors`` when the
    name does not end in it, so both functions do, and a state saved as ``"state"`` loads
    back as ``"state"``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
    path = Path(path)
    return path if path.name.endswith(STATE_SUFFIX) else path.with_name(path.name + STATE_SUFFIX)


def _dtype_name(dtype: mx.Dtype) -> str:
    return str(dtype).removeprefix("mlx.core.")


def save_state(path: str | os.PathLike, state: Any) -> None:
    """Save a streaming state (any pytree of arrays, e.g. from ``TCN.init_state``) to a
    ``.safetensors`` file (``.safetensors`` is added to a name that does not end in it).

    The empty state of a model that has nothing to remember (kernel size 1, no SE) is saved
    as a file with no arrays, and loads back as ``like``.
    """
    file = _state_path(path)
    leaves = tree_flatten(state)
    for key, leaf in leaves:
        if not isinstance(leaf, mx.array):
            raise TypeError(
                f"state must be a pytree of mlx.core.array (from init_state or stream), but "
                f"state[{key!r}] is {leaf!r}"
            )
    if not file.parent.is_dir():
        raise FileNotFoundError(f"cannot save the state to {file}: {file.parent} is not a folder")
    mx.save_safetensors(str(file), dict(leaves))


def load_state(path: str | os.PathLike, like: Any) -> Any:
    """Load a state saved with :func:`save_state` into the structure of ``like`` (e.g.
    ``model.init_state(batch)``), checking that every array is there with the shape and
    dtype of ``like``'s."""
    file = _state_path(path)
    if not file.is_file():
        raise FileNotFoundError(f"state file not found: {file}")
    try:
        raw = mx.load(str(file))
    except Exception as err:  # MLX's reader: a truncated, empty or foreign file
        raise ValueError(f"{file} is not a readable state file (or is damaged): {err}") from None
    expected = dict(tree_flatten(like))
    for key, leaf in expected.items():
        if not isinstance(leaf, mx.array):
            raise TypeError(f"like must be a state from init_state; like[{key!r}] is {leaf!r}")
    loaded = _with_ring_positions(raw, expected)
    missing = sorted(expected.keys() - loaded.keys())
    unexpected = sorted(loaded.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(
            f"{file} does not fit the given state: missing {missing}, unexpected {unexpected}"
        )

    def take(key: str, leaf: mx.array) -> mx.array:
        value = loaded[key]
        if value.shape != leaf.shape:
            raise ValueError(
                f"{file}: {key!r} has shape {tuple(value.shape)}, expected {tuple(leaf.shape)}"
            )
        if value.dtype != leaf.dtype:
            raise ValueError(
                f"{file}: {key!r} has dtype {_dtype_name(value.dtype)}, expected "
                f"{_dtype_name(leaf.dtype)} (make like with "
                f"init_state(batch, dtype=...) in the dtype the stream ran in)"
            )
        return value

    return tree_map_with_path(take, like)


def _with_ring_positions(loaded: dict[str, mx.array], like: dict[str, mx.array]) -> dict:
    """A state file whose buffer is in time order (``(k-1)*d`` frames, no ``...pos``) where
    the model now keeps a ring (``pos`` and one more slot; written by an earlier version,
    which kept every buffer in time order). That history is the ring whose next slot, 0, is
    the extra one in front."""
    out = dict(loaded)
    for key, leaf in like.items():
        if not key.endswith("pos") or key in loaded:
            continue
        buffer_key = key[: -len("pos")] + "buffer"
        old = loaded.get(buffer_key)
        want = like.get(buffer_key)
        if old is None or want is None or old.ndim != 3 or want.ndim != 3:
            continue
        if old.shape[1] + 1 == want.shape[1] and old.shape[::2] == want.shape[::2]:
            out[buffer_key] = mx.concatenate([old[:, :1], old], axis=1)
            out[key] = mx.zeros(leaf.shape, leaf.dtype)
    return out
