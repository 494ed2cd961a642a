"""The mlx-tcn training step the benchmarks time, and their timing loop, in one place.

Forward, backward and an Adam update, eagerly or through ``mx.compile`` with the model,
optimizer and random states as the compiled function's inputs and outputs (as ``mlx-tcn
train`` runs it); each call ends in ``mx.eval`` of the loss, the parameters and the
optimizer state. MLX is imported inside, so that a worker imports ``mlx_tcn`` first (it
routes MLX's matmul to an optimized BLAS).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(step: Callable[[], None], warmup: int, iters: int) -> float:
    """Median wall milliseconds of ``iters`` calls of ``step`` after ``warmup`` untimed ones
    (any library's step: this needs no MLX)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def train_step(
    model: Any, loss: Callable[..., Any], x: Any, target: Any, compiled: bool
) -> Callable[[], None]:
    """A no-argument step: ``loss(model, x, target)``'s gradients applied by Adam (lr 1e-3)."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    opt = optim.Adam(learning_rate=1e-3)
    loss_and_grad = nn.value_and_grad(model, loss)

    def update(x: mx.array, target: mx.array) -> mx.array:
        value, grads = loss_and_grad(model, x, target)
        opt.update(model, grads)
        return value

    if compiled:
        state = [model.state, opt.state, mx.random.state]
        update = mx.compile(update, inputs=state, outputs=state)

    def step() -> None:
        mx.eval(update(x, target), model.parameters(), opt.state)

    return step
