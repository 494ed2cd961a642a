"""A forward split over parallel CPU lanes: by batch rows, and in eval mode also by time.

MLX runs CPU operations one after another on one thread (only a GEMM inside uses more), so
with ``MLX_TCN_THREADS`` lanes (MLX CPU streams, see :mod:`mlx_tcn._backend.runtime`) each
part of a forward runs on its own lane, on its own core, elementwise work included:

* a batch of several rows is split by rows. Each row is computed as unsplit; only the
  dropout masks are drawn per part.
* in eval mode (a finite ``context`` is given), when there are more lanes than parts of the
  batch (one long sequence, say), each part is also split by time. A time part reads the
  input steps its outputs depend on (the receptive field) beyond its edges, and keeps only
  the outputs that padding at those edges cannot reach, so the result is the unsplit one.

:func:`split_forward` applies this to any ``forward(x, e) -> y`` that is row-wise (and,
with a context, local in time); the model decides when that holds. When it does not split,
each large convolution splits its own GEMMs by time over the lanes (:mod:`mlx_tcn.ops`);
inside a part it never does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import mlx.core as mx
import mlx.nn as nn

from . import _backend
from .parametrizations import shared_weights

__all__ = ["split_forward"]

Forward = Callable[[mx.array, mx.array | None], mx.array]

# A part of a split batch has at least this many (row, step) pairs: below it the lanes'
# hand-offs cost more than the parallel work saves.
_MIN_PART_STEPS = 1024


def _batch_parts(batch: int, length: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` rows of the batch per parallel CPU lane (one part: none)."""
    return _even_parts(batch, min(_backend.parallel_lanes(), batch * length // _MIN_PART_STEPS))


def _time_parts(length: int, context: int, n: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: at most ``n`` parts of a sequence's output steps.

    Each part also reads ``context`` extra input steps, so a part is at least twice that
    long (the overlap costs at most a third of the gain) and ``_MIN_PART_STEPS``.
    """
    return _even_parts(length, min(n, length // max(_MIN_PART_STEPS, 2 * context)))


def _even_parts(total: int, n: int) -> list[tuple[int, int]]:
    """``total`` split into at most ``n`` near-equal ``(start, stop)`` parts (on the CPU)."""
    n = min(n, total)
    if n < 2 or mx.default_device().type != mx.DeviceType.cpu:
        return [(0, total)]
    edges = [total * i // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _part_embeddings(e: mx.array | None, rows: slice, steps: slice, length: int) -> mx.array | None:
    """The embeddings of one part: per-row ones whole, time-aligned ones cut like ``x``."""
    if e is None:
        return None
    return e[rows] if e.shape[1] != length else e[rows, steps]


def split_forward(
    forward: Forward,
    x: mx.array,
    e: mx.array | None,
    context: tuple[int, int] | None,
    modules: Iterable[nn.Module] | Callable[[], Iterable[nn.Module]],
) -> mx.array:
    """``forward(x, e)``, computed in parts over the CPU lanes when that pays.

    Args:
        forward: the unsplit forward; row-wise, so any rows of ``x`` give those rows of
            ``y``.
        x: ``(batch, length, channels)``.
        e: the prepared embeddings, ``(batch, 1, features)`` or ``(batch, length,
            features)``, or ``None``.
        context: input steps ``(before, after)`` one output step reads beyond itself, to
            also split by time; ``None`` splits by rows only (training mode, or SE blocks
            whose squeeze reaches every earlier step).
        modules: the model's modules, or a function returning them (such as a model's
            bound ``modules``), called only when the forward is split: weight norm is then
            computed once for all parts. Listing a model's modules walks its whole tree
            (about 50 us for four blocks), as much as a small batch-1 forward's GEMMs.
    """
    batch, length = x.shape[0], x.shape[1]
    rows = _batch_parts(batch, length)
    steps = [(0, length)]
    spare = _backend.parallel_lanes() // len(rows)  # lanes per part of the batch
    if context is not None and spare >= 2:
        steps = _time_parts(length, sum(context), spare)
    if len(rows) * len(steps) < 2:
        return forward(x, e)
    left, right = context if context is not None else (0, 0)
    lanes = iter(_backend.cpu_lanes())
    row_outs = []
    if callable(modules):
        modules = modules()
    with shared_weights(modules):  # weight norm once, not once per part
        for lo, hi in rows:
            outs = []
            for a, b in steps:
                start, stop = max(0, a - left), min(length, b + right)
                with mx.stream(next(lanes)):
                    part_e = _part_embeddings(e, slice(lo, hi), slice(start, stop), length)
                    y = forward(x[lo:hi, start:stop], part_e)
                    outs.append(y if len(steps) == 1 else y[:, a - start : b - start])
            row_outs.append(outs[0] if len(outs) == 1 else mx.concatenate(outs, axis=1))
    return row_outs[0] if len(row_outs) == 1 else mx.concatenate(row_outs, axis=0)
