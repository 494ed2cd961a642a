"""Conditioning inputs of a TCN: pytorch-tcn's ``embedding_shapes`` forms and their checks.

An entry of ``embedding_shapes`` is pytorch-tcn's tuple: ``(features,)`` for a global embedding
(one vector per sequence), ``(features, None)`` for a time-aligned one of any length (the form
pytorch-tcn documents for local conditioning), or ``(features, time_steps)`` for a
time-aligned one of a fixed length. Either kind of array is accepted for any form, as in
pytorch-tcn; the form is kept as given so that a converted or saved model gives it back.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import mlx.core as mx
import numpy as np

from ._stream import check_int

__all__ = ["EmbeddingShape", "check_embedding_shapes", "prepare_embeddings"]

# (features,), (features, None) or (features, time_steps)
EmbeddingShape = tuple[int] | tuple[int, int | None]


def _check_shape(shape: object, shapes: object) -> EmbeddingShape:
    """One entry of ``embedding_shapes`` as a tuple, validated."""
    if isinstance(shape, np.ndarray):
        shape = shape.tolist()
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if (
        isinstance(shape, (str, bytes))
        or not isinstance(shape, Sequence)
        or len(shape) not in (1, 2)
    ):
        raise ValueError(
            f"each of embedding_shapes must be (features,), (features, None) or "
            f"(features, time_steps), got {shape!r} in {shapes!r}"
        )
    where = f"embedding_shapes entry {tuple(shape)!r}"
    features = check_int(shape[0], where, 1)
    if len(shape) == 1:
        return (features,)
    steps = shape[1]
    return (features, None if steps is None else check_int(steps, where, 1))


def check_embedding_shapes(shapes: object) -> list[EmbeddingShape] | None:
    """``embedding_shapes`` as a list of tuples in the form given, or ``None``; raises on
    anything pytorch-tcn would not describe."""
    if shapes is None:
        return None
    if isinstance(shapes, np.ndarray) and shapes.ndim >= 1:
        shapes = list(shapes)
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Sequence) or not shapes:
        raise TypeError(
            f"embedding_shapes must be a non-empty list of tuples such as [(16,), (8, None)], "
            f"got {shapes!r}"
        )
    return [_check_shape(shape, shapes) for shape in shapes]


def _check_embedding(
    i: int, e: object, shape: EmbeddingShape, x: mx.array, whole: bool
) -> mx.array:
    """``embeddings[i]`` checked against ``shape`` and ``x``, as ``(batch, 1 or length, C)``."""
    batch, length, features = x.shape[0], x.shape[1], shape[0]
    if not isinstance(e, mx.array):
        raise TypeError(f"embeddings[{i}] must be an mlx.core.array, got {type(e).__name__}")
    if e.ndim not in (2, 3) or e.shape[-1] != features or e.shape[0] != batch:
        raise ValueError(
            f"embeddings[{i}] must have shape ({batch}, {features}) or "
            f"({batch}, {length}, {features}) (channels-last), got {tuple(e.shape)}"
        )
    if e.ndim == 2:
        return e[:, None]
    if whole and len(shape) == 2 and shape[1] is not None and e.shape[1] != shape[1]:
        raise ValueError(
            f"embeddings[{i}] is time-aligned with {e.shape[1]} steps, but embedding_shapes"
            f"[{i}]={shape!r} expects {shape[1]}; got shape {tuple(e.shape)} (use "
            f"({features}, None) for any length)"
        )
    if e.shape[1] != length:
        raise ValueError(
            f"embeddings[{i}] is time-aligned with {e.shape[1]} steps but x has {length}; "
            f"got shape {tuple(e.shape)}"
        )
    return e


def prepare_embeddings(
    embeddings: object,
    shapes: list[EmbeddingShape] | None,
    x: mx.array,
    whole: bool = False,
) -> mx.array | None:
    """Check ``embeddings`` against ``shapes`` and concatenate them over features.

    ``whole`` says ``x`` is a whole sequence, not a chunk of a stream: only then must a
    time-aligned embedding have the ``time_steps`` of a ``(features, time_steps)`` shape (a
    streamed chunk is a part of such a sequence).

    Returns ``(batch, 1, features)`` when all are global, ``(batch, length, features)`` when
    any is time-aligned, or ``None`` for a model without embeddings.
    """
    if shapes is None:
        if embeddings is not None:
            raise ValueError(
                "embeddings were given but the model was built without embedding_shapes"
            )
        return None
    if embeddings is None:
        raise ValueError(
            f"this model was built with embedding_shapes={shapes}: pass embeddings=[...], one "
            f"array per shape, (batch, features) or (batch, length, features)"
        )
    if isinstance(embeddings, mx.array):
        embeddings = [embeddings]
    if not isinstance(embeddings, (list, tuple)):
        raise TypeError(f"embeddings must be a list of arrays, got {type(embeddings).__name__}")
    if len(embeddings) != len(shapes):
        raise ValueError(
            f"expected {len(shapes)} embeddings for embedding_shapes={shapes}, got {len(embeddings)}"
        )
    parts = [
        _check_embedding(i, e, shape, x, whole)
        for i, (e, shape) in enumerate(zip(embeddings, shapes, strict=True))
    ]
    batch, length = x.shape[0], x.shape[1]
    if any(p.shape[1] != 1 for p in parts):
        parts = [mx.broadcast_to(p, (batch, length, p.shape[2])) for p in parts]
    return parts[0] if len(parts) == 1 else mx.concatenate(parts, axis=-1)
