"""What a task's model output means and how it is scored, by task *kind*:

- ``regression_last``: the last step's output is compared with ``y`` ``(B, n)`` by MSE
  (adding problem, forecasting),
- ``class_last``: the last step's output are class logits, cross-entropy and accuracy
  (sequential MNIST, sequence classification),
- ``class_all``: logits at every step, cross-entropy over all steps and accuracy (copy memory),
- ``multilabel_all``: next-frame prediction of binary frames; NLL summed over the channels and
  averaged over (unpadded) frames (polyphonic music).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlx.core as mx
import mlx.nn as nn

__all__ = ["KINDS", "evaluate_split", "head", "loss_fn"]

KINDS = ("regression_last", "class_last", "class_all", "multilabel_all")


def head(kind: str, out: mx.array) -> mx.array:
    """The part of the model output that the loss sees (last step or every step)."""
    return out[:, -1, :] if kind in ("regression_last", "class_last") else out


def loss_fn(kind: str) -> Callable[..., mx.array]:
    """Scalar training loss ``f(model, x, y, mask)`` of a task kind."""

    def loss(model: nn.Module, x: mx.array, y: mx.array, mask: mx.array | None) -> mx.array:
        total, count = _loss_sum(kind, model(x), y, mask)
        return total / count

    return loss


def _loss_sum(
    kind: str, out: mx.array, y: mx.array, mask: mx.array | None
) -> tuple[mx.array, mx.array]:
    """Summed loss and the number of units it is averaged over."""
    if kind == "regression_last":
        err = (head(kind, out) - y).square().mean(axis=-1)
        return err.sum(), mx.array(err.size, dtype=mx.float32)
    if kind in ("class_last", "class_all"):
        ce = nn.losses.cross_entropy(head(kind, out), y, reduction="none")
        return ce.sum(), mx.array(ce.size, dtype=mx.float32)
    nll = nn.losses.binary_cross_entropy(out, y, with_logits=True, reduction="none").sum(axis=-1)
    if mask is None:
        return nll.sum(), mx.array(nll.size, dtype=mx.float32)
    return (nll * mask).sum(), mask.sum()


def evaluate_split(
    model: nn.Module, kind: str, batches: Any, max_batches: int | None = None
) -> dict[str, float]:
    """Loss (and accuracy for classification) of ``model`` over ``batches``, in eval mode.

    The model's previous mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    loss_total, count, correct, n_pred = 0.0, 0.0, 0.0, 0
    try:
        for i, (x, y, mask) in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            out = model(x)
            total, units = _loss_sum(kind, out, y, mask)
            if kind in ("class_last", "class_all"):
                hit = (head(kind, out).argmax(axis=-1) == y).sum()
                mx.eval(total, units, hit)
                correct += hit.item()
                n_pred += y.size
            else:
                mx.eval(total, units)
            loss_total += total.item()
            count += units.item()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluation got no batches (is the validation split empty?)")
    metrics = {"loss": loss_total / count}
    if n_pred:
        metrics["accuracy"] = correct / n_pred
    return metrics
