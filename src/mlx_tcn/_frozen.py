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
    """Keep ``matrix`` on ``module`` as the GEMM matrix of ``weight`` (evaluated now)."""
    mx.eval(matrix)
    object.__setattr__(module, _KEY, (weight, matrix))


def matrix_for(module: nn.Module, weight: mx.array | None) -> mx.array | None:
    """The matrix :func:`remember` kept for ``weight`` on ``module``, else ``None``."""
    kept = module.__dict__.get(_KEY)
    return kept[1] if kept is not None and kept[0] is weight else None


def freeze_linear(layer: nn.Linear) -> None:
    """Lay out ``layer``'s weight ``(out, in)`` once as the ``(1, in, out)`` matrix that
    :func:`linear` multiplies."""
    remember(layer, layer.weight, mx.contiguous(layer.weight.T[None]))


def linear(layer: nn.Module, x: mx.array) -> mx.array:
    """``layer(x)`` for an ``nn.Linear`` (or any module), with the matrix of
    :func:`freeze_linear` when it has one: one GEMM at batch 1 and the bias as a separate
    add, which ``mx.compile`` fuses with what follows, where ``nn.Linear`` runs five
    operations (a transpose, a bias broadcast and an addmm between two reshapes)."""
    matrix = matrix_for(layer, layer.get("weight")) if x.ndim == 3 else None
    if matrix is None:
        return layer(x)
    y = ops.matmul_rows(x, x.shape[0], x.shape[1], matrix)
    return y + layer["bias"] if "bias" in layer else y
