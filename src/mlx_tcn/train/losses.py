"""What a task's model output means and how it is scored, by task *kind*:

- ``regression_last``: the last step's output is compared with ``y`` ``(B, n)`` by MSE
  (adding problem, forecasting),
- ``class_last``: the last step's output are class logits, cross-entropy and accuracy
  (sequential MNIST, sequence classification with ``pool="last"``),
- ``class_mean``: the same with the mean of all steps' outputs as the logits (sequence
  classification's default: every step's features count, not only the last one's),
- ``class_all``: logits at every step, cross-entropy over all steps and accuracy (copy memory),
- ``multilabel_all``: next-frame prediction of binary frames; NLL summed over the channels and
  averaged over (unpadded) frames (polyphonic music).

Sequences of different lengths, padded at the end into one array, come with a mask of their
real steps: ``class_mean`` averages over those, and ``class_last``'s "last step" is the last
real one. A causal network's outputs there do not depend on the padding after them, so
neither do the logits (batch norm in training mode aside: its batch statistics include the
padded steps).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import mlx.core as mx
import mlx.nn as nn

__all__ = [
    "CLASS_KINDS",
    "KINDS",
    "SEQUENCE_CLASS_KINDS",
    "evaluate_split",
    "evaluate_sums",
    "head",
    "loss_fn",
    "metrics_from_sums",
    "model_head",
]

KINDS = ("regression_last", "class_last", "class_mean", "class_all", "multilabel_all")
#: Kinds with one class per sequence, and all kinds scored by cross-entropy and accuracy.
SEQUENCE_CLASS_KINDS = ("class_last", "class_mean")
CLASS_KINDS = (*SEQUENCE_CLASS_KINDS, "class_all")


def head(kind: str, out: mx.array, mask: mx.array | None = None) -> mx.array:
    """The part of the model output that the loss sees (last step, mean of steps, every step).

    ``mask`` ``(B, L)`` (1 at a sequence's real steps, then 0: :meth:`.split.Split.batch`)
    makes ``class_mean`` the mean over each sequence's real steps and ``class_last`` its
    last real step; the other kinds use it in the loss (polyphonic music), not here.
    """
    if kind == "class_mean":
        if mask is None:
            return out.mean(axis=1)
        weights = mask[..., None].astype(out.dtype)
        return (out * weights).sum(axis=1) / weights.sum(axis=1)
    if kind == "class_last" and mask is not None:
        last = mask.sum(axis=1).astype(mx.int32) - 1
        return mx.take_along_axis(out, last[:, None, None], axis=1)[:, 0, :]
    return out[:, -1, :] if kind in ("regression_last", "class_last") else out


def model_head(model: nn.Module, kind: str, x: mx.array, mask: mx.array | None = None) -> mx.array:
    """``head(kind, model(x), mask)``; a model that pools its own outputs (an ensemble,
    whose members each pool theirs before their probabilities are averaged) does it through
    its ``pooled(x, mask)`` method."""
    pooled = getattr(model, "pooled", None)
    if pooled is not None and kind in SEQUENCE_CLASS_KINDS:
        return pooled(x, mask)
    return head(kind, model(x), mask)


def loss_fn(
    kind: str, masked_count: Callable[[mx.array], mx.array] | None = None
) -> Callable[..., mx.array]:
    """Scalar training loss ``f(model, x, y, mask)`` of a task kind.

    Args:
        masked_count: with a mask, maps the batch's count of units (unmasked frames; for a
            classifier of sequences of different lengths, the sequences) to the count the
            loss is averaged over. Data-parallel training passes the global count divided by
            the number of processes, so that averaging the processes' gradients gives the
            gradient of the whole batch's loss even when their shards hold different numbers
            of frames (without a mask every shard holds the same number).
    """

    def loss(model: nn.Module, x: mx.array, y: mx.array, mask: mx.array | None) -> mx.array:
        total, count = _head_loss_sum(kind, model_head(model, kind, x, mask), y, mask)
        if mask is not None and masked_count is not None:
            count = masked_count(count)
        return total / count

    return loss


def _loss_sum(
    kind: str, out: mx.array, y: mx.array, mask: mx.array | None
) -> tuple[mx.array, mx.array]:
    """Summed loss of a model output ``out`` and the number of units it is averaged over."""
    return _head_loss_sum(kind, head(kind, out, mask), y, mask)


def _head_loss_sum(
    kind: str, out: mx.array, y: mx.array, mask: mx.array | None
) -> tuple[mx.array, mx.array]:
    """Summed loss of a model's :func:`head` ``out`` and the number of units it is averaged
    over (sequences, or unmasked frames)."""
    if kind == "regression_last":
        err = (out - y).square().mean(axis=-1)
        return err.sum(), mx.array(err.size, dtype=mx.float32)
    if kind in CLASS_KINDS:
        ce = nn.losses.cross_entropy(out, y, reduction="none")
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
    if max_batches is not None:
        batches = itertools.islice(batches, max_batches)
    return metrics_from_sums(evaluate_sums(model, kind, batches))


def evaluate_sums(model: nn.Module, kind: str, batches: Any) -> list[float]:
    """``[loss sum, units, correct predictions, predictions]`` of ``model`` over ``batches``
    in eval mode: sums, so that the parts of a split (data-parallel evaluation) add up."""
    was_training = model.training
    model.eval()
    loss_total, count, correct, n_pred = 0.0, 0.0, 0.0, 0
    try:
        for x, y, mask in batches:
            out = model_head(model, kind, x, mask)
            total, units = _head_loss_sum(kind, out, y, mask)
            if kind in CLASS_KINDS:
                hit = (out.argmax(axis=-1) == y).sum()
                mx.eval(total, units, hit)
                correct += hit.item()
                n_pred += y.size
            else:
                mx.eval(total, units)
            loss_total += total.item()
            count += units.item()
    finally:
        model.train(was_training)
    return [loss_total, count, correct, float(n_pred)]


def metrics_from_sums(sums: list[float]) -> dict[str, float]:
    """The metrics of :func:`evaluate_sums`' sums: mean loss, and accuracy when predicted."""
    loss_total, count, correct, n_pred = sums
    if count == 0:
        raise ValueError("evaluation got no batches (is the validation split empty?)")
    metrics = {"loss": loss_total / count}
    if n_pred:
        metrics["accuracy"] = correct / n_pred
    return metrics
