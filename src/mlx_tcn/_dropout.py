"""Dropout masks from a counter hash: a Bernoulli(keep) draw per element, seeded from MLX's key.

MLX's ``mx.random.bernoulli`` takes each element's bits from threefry, computed one element
at a time on the CPU: with the multiply that applies it, 3.0 ms for 524,288 values on one
core (one mask of the short, batch-64 benchmark model per lane; its training step draws
twelve per lane). Here each element's 32-bit draw is a hash of its index,
``lowbias32(i * m + s)`` (Chris Wellons' 32-bit integer hash: two multiply-xorshift
rounds), with an odd multiplier ``m`` and an offset ``s`` drawn per mask from MLX's key, so
``mx.random.seed`` reproduces every mask and a compiled step that carries
``mx.random.state`` advances it as before. An element is kept when its draw is below
``round(keep * 2**32)``: the keep probability exact to 2**-32. Every operation is an
element-wise integer pass, which MLX vectorises eagerly and fuses under ``mx.compile``:
1.6 ms for the same mask and multiply (docs/performance_models.md, "Fewer operations, flat
GEMMs and hashed dropout masks").
"""

from __future__ import annotations

import math

import mlx.core as mx

__all__ = ["keep_mask"]

_M1 = 0x7FEB352D  # lowbias32's multipliers
_M2 = 0x846CA68B
# Masks of fewer elements use MLX's own draw: the hash is about 20 more MLX operations
# (some microseconds each), which a mask pays back from between 32,768 elements (mask and
# multiply 251 against 246 us, one thread) and 65,536 (350 against 447). From _MAX_ELEMENTS
# the index would wrap in 32 bits: MLX's draw too.
_MIN_ELEMENTS = 1 << 16
_MAX_ELEMENTS = 1 << 32


def _u32(value: int) -> mx.array:
    return mx.array(value, dtype=mx.uint32)


def keep_mask(shape: tuple[int, ...], keep: float) -> mx.array:
    """A boolean array of ``shape``, each element ``True`` with probability ``keep``: the
    hash from ``_MIN_ELEMENTS`` elements, ``mx.random.bernoulli`` below (and from 2**32)."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    size = math.prod(shape)
    if not _MIN_ELEMENTS <= size < _MAX_ELEMENTS:
        return mx.random.bernoulli(keep, shape)
    if keep == 1.0:
        return mx.ones(shape, dtype=mx.bool_)
    r = mx.random.randint(0, 1 << 16, (4,), dtype=mx.uint32)
    m = (r[0] << 16) | r[1] | 1
    s = (r[2] << 16) | r[3]
    h = mx.arange(size, dtype=mx.uint32).reshape(shape) * m + s
    h = (h ^ (h >> 16)) * _u32(_M1)
    h = (h ^ (h >> 15)) * _u32(_M2)
    h = h ^ (h >> 16)
    return h < _u32(min(round(keep * 2.0**32), 2**32 - 1))
