"""Shared machinery of the streaming layers: input checks and the stateful API on top of
the explicit state.

Every streaming layer computes ``y, new_state = layer._forward(x, state)``; ``state=None`` is
the offline pass. :class:`StreamingModule` builds the public API on that one method:
``init_state``/``stream`` (explicit state) and ``__call__(x, inference=True, buffer_io=...)``
(state kept in the layer or in a :class:`~mlx_tcn.BufferIO`).
"""

from __future__ import annotations

import numbers
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from .buffer import BufferIO


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
    """Return ``dropout`` as a float in ``[0, 1)``, else raise."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
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


def stateful_begin(layer: nn.Module, x: mx.array, buffer_io: BufferIO | None):
    """The state a layer's ``inference=True`` call starts from: from ``buffer_io`` if it
    holds one, else the layer's own, else a fresh one for ``x``'s batch size."""
    state = buffer_io.next_in_buffer() if buffer_io is not None else layer._state
    if state is None:
        state = layer.init_state(x.shape[0], x.dtype)
        if buffer_io is not None:
            buffer_io.append_internal_buffer(state)
    check_state_batch(state, x.shape[0])
    return state


def stateful_end(layer: nn.Module, new_state, buffer_io: BufferIO | None) -> None:
    """Store the state an ``inference=True`` call ends with."""
    if buffer_io is not None:
        buffer_io.append_out_buffer(new_state)
    else:
        # object.__setattr__ keeps the stream out of the module's parameter tree: it is never
        # trained and never saved with the weights.
        object.__setattr__(layer, "_state", new_state)


def check_state_batch(state, batch_size: int) -> None:
    """Raise unless every array in ``state`` has ``batch_size`` rows."""
    for key, leaf in tree_flatten(state):
        if leaf.shape[0] != batch_size:
            raise ValueError(
                f"the chunk has batch size {batch_size} but the stream's state has "
                f"{leaf.shape[0]} (at {key!r}); start a new stream (reset_buffers() or "
                f"init_state({batch_size})) to change the batch size"
            )


class StreamingModule(nn.Module):
    """Base of layers with one input that can stream (pads and convolutions)."""

    in_channels: int
    causal: bool

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_state", None)

    def _forward(self, x: mx.array, state: Any) -> tuple[mx.array, Any]:
        raise NotImplementedError

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> Any:
        """The state of a fresh stream of ``batch_size`` rows."""
        raise NotImplementedError

    def stream(self, x: mx.array, state: Any) -> tuple[mx.array, Any]:
        """Process the next chunk ``x`` of a stream; returns ``(y, new_state)``.

        No hidden mutation: wrap it in ``mx.compile`` or export it as it is.
        """
        if not self.causal:
            raise ValueError(f"streaming needs a causal layer; this {type(self).__name__} is not")
        check_input(x, self.in_channels)
        check_state_batch(state, x.shape[0])
        return self._forward(x, state)

    def __call__(
        self, x: mx.array, inference: bool = False, buffer_io: BufferIO | None = None
    ) -> mx.array:
        """Offline pass, or with ``inference=True`` the next chunk of the stream kept in this
        layer (or in ``buffer_io``)."""
        check_input(x, self.in_channels)
        if not inference:
            return self._forward(x, None)[0]
        if not self.causal:
            raise ValueError(
                f"inference=True streams, which needs a causal layer; this "
                f"{type(self).__name__} is not causal"
            )
        state = stateful_begin(self, x, buffer_io)
        y, new_state = self._forward(x, state)
        stateful_end(self, new_state, buffer_io)
        return y

    def reset_buffer(self) -> None:
        """Forget the stream kept in this layer."""
        object.__setattr__(self, "_state", None)


def save_state(path: str, state: Any) -> None:
    """Save a streaming state (any pytree of arrays, e.g. from ``TCN.init_state``) to a
    ``.safetensors`` file."""
    flat = tree_flatten(state)
    if not flat:
        raise ValueError("state holds no arrays; nothing to save")
    mx.save_safetensors(str(path), dict(flat))


def load_state(path: str, like: Any) -> Any:
    """Load a state saved with :func:`save_state` into the structure of ``like`` (e.g.
    ``model.init_state(batch)``), checking that every array is there with the same shape."""
    from mlx.utils import tree_map_with_path

    loaded = mx.load(str(path))
    expected = dict(tree_flatten(like))
    missing = sorted(expected.keys() - loaded.keys())
    unexpected = sorted(loaded.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit the given state: missing {missing}, unexpected {unexpected}"
        )

    def take(key: str, leaf: mx.array) -> mx.array:
        value = loaded[key]
        if value.shape != leaf.shape:
            raise ValueError(
                f"{path}: {key!r} has shape {tuple(value.shape)}, expected {tuple(leaf.shape)}"
            )
        return value

    return tree_map_with_path(take, like)
