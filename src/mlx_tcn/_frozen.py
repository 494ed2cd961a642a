"""Weights laid out once for a deployed stream step (:meth:`mlx_tcn.TCN.stream_step`).

A batch-1 stream step costs per MLX operation, and reshaping, transposing or casting a
weight is one each, in every step. The step's frozen copy of the model therefore keeps, next
to each GEMM weight, the matrix its GEMM reads, with the weight array it was made from: a
layer uses the matrix only while its weight is still that array, so replacing the weight
(or weight norm, which computes a new one on every call) simply goes without it. The pair
lives outside the parameter tree (``object.__setattr__``), so it is never saved, trained
or counted.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from . import ops

_KEY = "_frozen_matrix"


def remember(module: nn.Module, weight: mx.array, matrix: mx.array) -> None:
    """Keep ``matrix``, ``(1, n, out)``, on ``module`` as the GEMM matrix of ``weight``,
    with its 2-D view ``(n, out)`` (both evaluated now: either shape would cost a reshape
    in every step of the batch size that wants the other)."""
    flat = matrix.reshape(matrix.shape[-2:])
    mx.eval(matrix, flat)
    object.__setattr__(module, _KEY, (weight, matrix, flat))


def matrix_for(module: nn.Module, weight: mx.array | None, batch: int) -> mx.array | None:
    """The matrix :func:`remember` kept for ``weight`` on ``module``, in the shape
    :func:`mlx_tcn.ops.matmul_rows` uses at ``batch``; ``None`` if there is none."""
    kept = module.__dict__.get(_KEY)
    if kept is None or kept[0] is not weight:
        return None
    return kept[1] if batch == 1 else kept[2]


def freeze_linear(layer: nn.Linear) -> None:
    """Lay out ``layer``'s weight ``(out, in)`` once as the ``(1, in, out)`` matrix that
    :func:`linear` multiplies."""
    remember(layer, layer.weight, mx.contiguous(layer.weight.T[None]))


def linear(layer: nn.Module, x: mx.array) -> mx.array:
    """``layer(x)`` for an ``nn.Linear`` (or any module), with the matrix of
    :func:`freeze_linear` when it has one: one GEMM at batch 1 and the bias as a separate
    add, which ``mx.compile`` fuses with what follows, where ``nn.Linear`` runs five
    operations (a transpose, a bias broadcast and an addmm between two reshapes)."""
    matrix = matrix_for(layer, layer.get("weight"), x.shape[0]) if x.ndim == 3 else None
    if matrix is None:
        return layer(x)
    y = ops.matmul_rows(x, x.shape[0], x.shape[1], matrix)
    return y + layer["bias"] if "bias" in layer else y
