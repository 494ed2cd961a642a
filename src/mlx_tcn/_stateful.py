"""The stateful API, written once for every level that streams.

Every streaming level (``TemporalPad1d``, ``TemporalConv1d``, ``TemporalConvTransposed1d``,
``TemporalBlock``, ``TCN``) computes one chunk as a pure function of an explicit state:
``init_state(batch, dtype)`` and ``y, new_state = layer.stream(x, state)``.
:class:`Stateful` puts the spec's (and pytorch-tcn's) stateful
API on top of that function, the same way at every level:

* ``layer(x, inference=True)``: the state is kept in the layer; ``reset_buffers()`` forgets
  it (and the states kept in the layer's sublayers);
* ``layer(x, inference=True, in_buffer=...)``: the state lives in :class:`BufferIO` objects,
  one per stage (one per convolution: ``2 * len(network)`` for a TCN, 2 for a block, 1 for a
  layer). A list or tuple of them is stepped by the layer after the call, each distinct
  ``BufferIO`` once (so a list that repeats one ``BufferIO`` streams exactly too); a single
  ``BufferIO`` is shared by all stages and stepped by the caller, as in pytorch-tcn.

A stream always computes inference outputs (no dropout, batch-norm running statistics),
whatever ``training`` says, and never changes ``training``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_map

from ._stream import check_bool, check_input, check_state, rows_mask
from .buffer import BufferIO

__all__ = ["Stateful", "StreamingModule"]

Step = Callable[[Any], tuple[Any, Any]]


class Stateful(nn.Module):
    """Base of every level that streams; see the module docstring."""

    causal: bool
    # what the error messages call this level
    _kind = "layer"

    def __init__(self) -> None:
        super().__init__()
        # object.__setattr__ keeps the stream out of the module's parameter tree: it is never
        # trained and never saved with the weights.
        object.__setattr__(self, "_state", None)

    def init_state(self, batch_size: int, dtype: mx.Dtype = mx.float32) -> Any:
        """The state of a fresh stream of ``batch_size`` rows."""
        raise NotImplementedError

    def __deepcopy__(self, memo: dict[int, Any]) -> Stateful:
        """``copy.deepcopy(layer)``: new modules and arrays (a kept stream too).

        What ``copy.deepcopy`` cannot copy is shared instead, as Python shares functions:
        the activations, which MLX compiles into objects that neither copy nor pickle. A
        model's cache of compiled eval forwards is left behind: the copy makes its own.
        """
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key == "_eval_compiler":
                continue
            try:
                value = copy.deepcopy(value, memo)
            except TypeError:  # MLX's compiled functions: shared
                pass
            object.__setattr__(new, key, value)
        for key, child in self.items():
            dict.__setitem__(new, key, copy.deepcopy(child, memo))
        return new

    # -- how the state is cut into BufferIO stages (one per convolution) ------------------

    def _stages(self, state: Any) -> list[Any]:
        return [state]

    def _join(self, stages: list[Any]) -> Any:
        return stages[0]

    def _stage_count(self) -> int:
        return 1

    def _stage_help(self) -> str:
        return f"1 BufferIO for this {type(self).__name__}"

    # -- checks ---------------------------------------------------------------------------

    def _require_causal(self, inference: bool) -> None:
        if self.causal:
            return
        name = type(self).__name__
        if inference:
            raise ValueError(
                f"inference=True streams, which needs a causal {self._kind}; this {name} is "
                f"not causal (causal=False; call it without inference=True)"
            )
        raise ValueError(f"streaming needs a causal {self._kind}; this {name} is not causal")

    def _check_state(self, state: Any, batch_size: int) -> Any:
        """The one validator of a stream state, at every level: the structure and the
        shape (after the batch axis) of every array of :meth:`init_state`'s, with
        ``batch_size`` rows. Returns the state with :meth:`init_state`'s structure: a state
        rebuilt from its flat arrays (``tree_unflatten``, as for ``mx.export_function``)
        lacks the empty entries of kernel-size-1 convolutions, which are put back."""
        # By batch size: a large buffer is a ring (TemporalPad1d.init_state), so the layout
        # of a state depends on its batch size. init_state's arrays are never evaluated here.
        templates = self.__dict__.setdefault("_state_templates", {})
        template = templates.get(batch_size)
        if template is None:
            fresh = self.init_state(batch_size)
            entries = len(fresh) if isinstance(fresh, list) else None
            skeleton = tree_map(lambda _: None, fresh)
            template = (entries, {k: tuple(v.shape[1:]) for k, v in tree_flatten(fresh)}, skeleton)
            if len(templates) < 64:
                templates[batch_size] = template
        entries, shapes, skeleton = template
        if entries is not None and (not isinstance(state, list) or len(state) > entries):
            # a model's state: one entry per block (fewer: see _complete)
            raise ValueError(
                f"state must be the list returned by init_state() with one entry per block "
                f"({entries}), got {type(state).__name__}"
                + (f" of length {len(state)}" if isinstance(state, list) else "")
            )
        check_state(state, shapes, batch_size, self._kind)  # every array, by its path
        return _complete(state, skeleton)

    # -- the stateful API -----------------------------------------------------------------

    def _stateful(
        self,
        x: mx.array,
        inference: bool,
        in_buffer: BufferIO | list[BufferIO] | tuple[BufferIO, ...] | None,
        offline: Callable[[], Any],
        step: Step,
    ) -> Any:
        """``offline()`` without ``inference``; else ``step(state)`` on the stream's state,
        read from this layer or ``in_buffer`` and written back there."""
        check_bool(inference, "inference")
        if not inference:
            if in_buffer is not None:
                raise ValueError("in_buffer is only used with inference=True")
            return offline()
        self._require_causal(inference=True)
        ios, owned = self._buffers(in_buffer)
        state = self._begin(x, ios)
        out, new_state = step(state)
        if ios is None:
            object.__setattr__(self, "_state", new_state)
            return out
        for io, stage in zip(ios, self._stages(new_state), strict=True):
            io.append_out_buffer(stage)
        if owned:
            for io in {id(io): io for io in ios}.values():
                io.step()
        return out

    def _buffers(self, in_buffer: object) -> tuple[list[BufferIO] | None, bool]:
        """One ``BufferIO`` per stage, and whether this call steps them."""
        if in_buffer is None:
            return None, False
        n = self._stage_count()
        if isinstance(in_buffer, BufferIO):
            return [in_buffer] * n, False
        if isinstance(in_buffer, (list, tuple)) and all(isinstance(b, BufferIO) for b in in_buffer):
            if len(in_buffer) != n:
                raise ValueError(f"in_buffer needs {self._stage_help()}, got {len(in_buffer)}")
            return list(in_buffer), True
        raise TypeError(f"in_buffer must be a BufferIO or a list of BufferIO, got {in_buffer!r}")

    def _begin(self, x: mx.array, ios: list[BufferIO] | None) -> Any:
        """The state the chunk ``x`` starts from: from ``ios`` or this layer, else fresh."""
        batch = x.shape[0]
        if ios is None:
            state = self._state
            if state is None:
                state = self.init_state(batch, x.dtype)
        else:
            stages = [io.next_in_buffer() for io in ios]
            if any(stage is None for stage in stages):
                fresh = self._stages(self.init_state(batch, x.dtype))
                for i, io in enumerate(ios):
                    if stages[i] is None:
                        stages[i] = fresh[i]
                        io.append_internal_buffer(fresh[i])
            state = self._join(stages)
        return self._check_state(state, batch)

    def reset_buffers(self) -> None:
        """Forget the streams kept by ``inference=True`` calls, here and in every sublayer
        (states in ``BufferIO`` objects are the caller's)."""
        for _, module in self.named_modules():
            if isinstance(module, Stateful):
                object.__setattr__(module, "_state", None)

    def reset_buffer(self) -> None:
        """pytorch-tcn's name for :meth:`reset_buffers` on a single layer."""
        self.reset_buffers()

    # -- batched serving ------------------------------------------------------------------

    def reset_state(self, state: Any, rows: object) -> Any:
        """Return ``state`` with the given batch rows reset to a fresh stream; the other
        rows are left bit-identical.

        Args:
            state: a state from :meth:`init_state` / :meth:`stream`.
            rows: a row index (Python or NumPy integer), a list or tuple of them, a 0-d or
                1-d integer array (NumPy or MLX), or a boolean mask of shape ``(batch,)``.
        """
        leaves = tree_flatten(state)
        first = leaves[0][1] if leaves else None
        batch = first.shape[0] if isinstance(first, mx.array) and first.ndim else 1
        state = self._check_state(state, batch)  # a state of this layer, as stream() checks it
        if not leaves:  # kernel size 1 everywhere and no SE: a stream has nothing to reset
            return state
        mask = rows_mask(rows, batch)
        fresh = self.init_state(batch, leaves[0][1].dtype)

        def pick(new: mx.array, old: mx.array) -> mx.array:
            m = mask.reshape((batch,) + (1,) * (old.ndim - 1))
            return mx.where(m, new.astype(old.dtype), old)

        return tree_map(pick, fresh, state)


class StreamingModule(Stateful):
    """Base of the layers with one input that stream (pads and convolutions)."""

    in_channels: int

    def _forward(self, x: mx.array, state: Any) -> tuple[mx.array, Any]:
        raise NotImplementedError

    def stream(self, x: mx.array, state: Any) -> tuple[mx.array, Any]:
        """Process the next chunk ``x`` of a stream; returns ``(y, new_state)``.

        No hidden mutation: wrap it in ``mx.compile`` or export it as it is.
        """
        self._require_causal(inference=False)
        check_input(x, self.in_channels)
        state = self._check_state(state, x.shape[0])
        return self._forward(x, state)

    def __call__(
        self,
        x: mx.array,
        inference: bool = False,
        buffer_io: BufferIO | None = None,
        in_buffer: BufferIO | list[BufferIO] | None = None,
    ) -> mx.array:
        """Offline pass, or with ``inference=True`` the next chunk of the stream kept in this
        layer or in ``in_buffer`` (``buffer_io`` is pytorch-tcn's name for a single one)."""
        check_input(x, self.in_channels)
        if buffer_io is not None:
            if in_buffer is not None:
                raise ValueError("give in_buffer or buffer_io, not both")
            in_buffer = buffer_io
        return self._stateful(
            x,
            inference,
            in_buffer,
            offline=lambda: self._forward(x, None)[0],
            step=lambda state: self._forward(x, state),
        )


def _complete(state: Any, skeleton: Any) -> Any:
    """``state`` with the entries it lacks where ``skeleton`` (:meth:`Stateful.init_state`'s
    structure, ``None`` for each array) holds no array: ``tree_flatten`` leaves empty
    states out, so ``tree_unflatten`` of a flattened state drops a kernel-size-1
    convolution's ``{}`` (a shorter list, or a block without ``conv1``). The state is
    returned as it is when nothing is missing; a missing array is :func:`check_state`'s
    error, raised before this runs."""
    if isinstance(skeleton, list) and isinstance(state, list):
        if len(state) == len(skeleton) and all(
            _complete(a, b) is a for a, b in zip(state, skeleton, strict=True)
        ):
            return state
        return [
            _complete(state[i], part) if i < len(state) else _empty(part)
            for i, part in enumerate(skeleton)
        ]
    if isinstance(skeleton, dict) and isinstance(state, dict):
        done = {k: _complete(state[k], part) if k in state else _empty(part)
                for k, part in skeleton.items()
                if k in state or _empty(part) is not None}  # fmt: skip
        extra = {k: v for k, v in state.items() if k not in skeleton}  # old layouts' keys
        if not extra and done.keys() == state.keys() and all(done[k] is state[k] for k in done):
            return state
        return {**done, **extra}
    return state


def _empty(skeleton: Any) -> Any:
    """``skeleton``'s structure if it holds no array (lists and dicts of empty dicts), else
    None (an array is missing: not ours to fill; a ring's ``pos`` is absent from a state in
    the older time-order layout, which the pads read as such)."""
    if isinstance(skeleton, (list, dict)):
        items = skeleton.items() if isinstance(skeleton, dict) else enumerate(skeleton)
        parts = {k: _empty(part) for k, part in items}
        if any(p is None for p in parts.values()):
            return None
        return list(parts.values()) if isinstance(skeleton, list) else parts
    return None
