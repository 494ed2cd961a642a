"""A task's data (:class:`TaskData`: its splits and what they mean) and the batches of a
split: padding and masks for sequences of different lengths, and an epoch order that depends
only on ``(seed, epoch)`` so a resumed run repeats it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import numpy as np

__all__ = ["Split", "TaskData", "epoch_order", "iterate_batches", "num_batches", "step_mask"]


@dataclass
class Split:
    """One data split: inputs ``x`` and targets ``y``, as arrays or as lists of sequences.

    Args:
        x: ``(N, L, C)`` array, or a list of ``(L_i, C)`` arrays of different lengths.
        y: targets, indexed like ``x`` (for lists: a list of ``(L_i, ...)`` arrays).
        transform: optional function applied to a batch of ``x`` (NumPy) before it becomes an
            MLX array, e.g. MNIST's normalisation and permutation.
        reference: window-relative forecasting: the anchor's forecasts of each window's steps
            ``(N, S, C)`` (persistence: its targets at its last row), which turn the model's
            outputs (corrections of them) back into the data's units.
        rows: forecasting: the row of the data file where each window ends (its forecasts
            are for the rows ``steps`` after it).
        forecasts: forecasting: the baselines' forecasts of ``y`` by name, flat like ``y``, in
            the data's units.
        lengths: classification of sequences of different lengths, padded at the end into
            one array ``x``: each sequence's real steps ``(N,)``. Batches then carry a mask
            of those steps, and the class is pooled over them alone. None: every step is real.
    """

    x: np.ndarray | list[np.ndarray]
    y: np.ndarray | list[np.ndarray]
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    reference: np.ndarray | None = None
    rows: np.ndarray | None = None
    forecasts: dict[str, np.ndarray] = field(default_factory=dict)
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    @property
    def ragged(self) -> bool:
        """True when the samples have different lengths (padded per batch, with a mask)."""
        return isinstance(self.x, list)

    def batch(self, index: np.ndarray) -> tuple[mx.array, mx.array, mx.array | None]:
        """Gather samples ``index`` into ``(x, y, mask)``; mask is ``(B, L)`` (1 at a real
        step, 0 at padding) for ragged splits and splits with ``lengths``, else None."""
        if not self.ragged:
            x = self.x[index]
            if self.transform is not None:
                x = self.transform(x)
            mask = None if self.lengths is None else step_mask(self.lengths[index], x.shape[1])
            return mx.array(x), mx.array(self.y[index]), mask
        xs = [self.x[i] for i in index]
        ys = [self.y[i] for i in index]
        length = max(len(s) for s in xs)
        x = np.zeros((len(xs), length, xs[0].shape[-1]), dtype=np.float32)
        y = np.zeros((len(ys), length) + ys[0].shape[1:], dtype=ys[0].dtype)
        mask = np.zeros((len(xs), length), dtype=np.float32)
        for j, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
            x[j, : len(xi)] = xi
            y[j, : len(yi)] = yi
            mask[j, : len(xi)] = 1.0
        return mx.array(x), mx.array(y), mx.array(mask)


def step_mask(lengths: np.ndarray, steps: int) -> mx.array:
    """``(B, steps)`` float32: 1 at the first ``lengths[b]`` steps of sequence ``b``, 0 after."""
    return mx.array((np.arange(steps) < np.asarray(lengths)[:, None]).astype(np.float32))


@dataclass
class TaskData:
    """Everything the loop needs to know about a task.

    Attributes:
        kind: one of :data:`mlx_tcn.train.losses.KINDS`.
        num_inputs: input channels.
        num_outputs: output channels of the model head.
        train, val: data splits; ``test`` when the task has a separate test set.
        stats: JSON-serialisable facts saved with every checkpoint (normalisation statistics,
            column names, classes, MNIST permutation) and reapplied at prediction time.
        baseline: loss of a trivial predictor, for the summary (None when not meaningful);
            for users' data the strongest simple one (persistence, the majority class).
        baselines: users' data: every baseline's loss by name, in the units of the model's
            loss (forecast: persistence, seasonal_naive; classify: majority_class).
        val_forecasts: forecasting: the baselines' validation forecasts in the data's units
            (for the predictions plot).
        anchor: window-relative forecasting: the baseline (``"persistence"`` or
            ``"seasonal_naive"``) whose forecast the model's output corrects, so that a zero
            output is exactly that baseline: the model's head starts at zero and the run
            evaluates it before the first step (None for other tasks).
    """

    kind: str
    num_inputs: int
    num_outputs: int
    train: Split
    val: Split
    test: Split | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    baseline: float | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    val_forecasts: dict[str, np.ndarray] = field(default_factory=dict)
    anchor: str | None = None


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Sample order of one epoch; depends only on ``(seed, epoch)`` so a resumed run repeats it."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """Batches per epoch (a last partial batch is dropped in training when a full one exists)."""
    if drop_last and n >= batch_size:
        return n // batch_size
    return math.ceil(n / batch_size)


def iterate_batches(
    split: Split,
    batch_size: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    drop_last: bool = True,
    start: int = 0,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[tuple[mx.array, mx.array, mx.array | None]]:
    """Yield the batches of one epoch, starting at batch ``start`` (used when resuming).

    ``shard=(r, n)`` yields part ``r`` of ``n`` of every batch, its contiguous rows
    ``r * batch_size / n`` up to ``(r + 1) * batch_size / n`` (data-parallel training: the
    ``n`` parts of a batch are the batch one process would take, whatever ``n`` is).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    order = epoch_order(len(split), seed, epoch, shuffle)
    rank, parts = shard
    for b in range(start, num_batches(len(split), batch_size, drop_last)):
        rows = order[b * batch_size : (b + 1) * batch_size]
        if parts > 1:
            rows = rows[rank * len(rows) // parts : (rank + 1) * len(rows) // parts]
        yield split.batch(rows)
