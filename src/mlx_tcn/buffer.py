"""BufferIO: the spec's (and pytorch-tcn's) exchange of streaming buffers.

Streaming state in mlx-tcn is an explicit pytree (see :meth:`mlx_tcn.TCN.init_state`).
``BufferIO`` is a small mutable holder on top of it for code written against the stateful
API: the layers read their state from it and write the updated state back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["BufferIO"]


class BufferIO:
    """Iterator-style exchange of streaming states.

    A layer that streams asks for its input state with :meth:`next_in_buffer` (``None`` means
    "start fresh") and hands back its new state with :meth:`append_out_buffer`. :meth:`step`
    turns the states written by one call into the states read by the next.

    Two ways to use it with :class:`mlx_tcn.TCN` (and every other level that streams):

    * the spec's way: one ``BufferIO()`` per streaming stage (two per ``TemporalBlock``: its
      first convolution, then the second), passed as a list to
      ``model(x, inference=True, in_buffer=buffers)``. The model steps each distinct
      ``BufferIO`` of the list once after the call, so the same list continues the stream on
      the next call (also a list that repeats one ``BufferIO``).
    * pytorch-tcn's way: a single ``BufferIO`` shared by all stages in order; the caller calls
      :meth:`step` between chunks.

    Args:
        in_buffers: optional initial states, one per stage, in the order the stages run.
    """

    def __init__(self, in_buffers: Iterable[Any] | None = None) -> None:
        if in_buffers is not None:
            in_buffers = list(in_buffers)
            self.in_buffers_length: int | None = len(in_buffers)
            self._in = iter(in_buffers)
        else:
            self.in_buffers_length = None
            self._in = None
        self.out_buffers: list[Any] = []
        self.internal_buffers: list[Any] = []

    def __iter__(self) -> BufferIO:
        return self

    def __next__(self) -> Any:
        if self._in is None:
            return None
        try:
            return next(self._in)
        except StopIteration:
            raise ValueError(
                f"BufferIO ran out of input buffers: it holds {self.in_buffers_length}, "
                "but the model asked for more (a BufferIO from a different model?)"
            ) from None

    def next_in_buffer(self) -> Any:
        """The state for the next stage, or ``None`` when the stream starts fresh."""
        return self.__next__()

    def append_out_buffer(self, state: Any) -> None:
        """Record the updated state of the stage that just ran."""
        self.out_buffers.append(state)

    def append_internal_buffer(self, state: Any) -> None:
        """Record the state a stage started from when no input state was given."""
        self.internal_buffers.append(state)

    def step(self) -> None:
        """Make the states written by the last call the input states of the next one."""
        if self._in is None:
            self.in_buffers_length = len(self.internal_buffers)
        if len(self.out_buffers) != self.in_buffers_length:
            raise ValueError(
                f"BufferIO.step: {len(self.out_buffers)} output buffers were written but "
                f"{self.in_buffers_length} input buffers were read; call step() once per chunk"
            )
        self._in = iter(self.out_buffers)
        self.out_buffers = []
        self.internal_buffers = []

    def __repr__(self) -> str:
        return f"BufferIO(in_buffers={self.in_buffers_length}, out_buffers={len(self.out_buffers)})"
