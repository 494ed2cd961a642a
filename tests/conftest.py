"""Shared pytest set-up: full float32 matmuls, deterministic random state, the ``slow``
marker, forced CPU lanes."""

from __future__ import annotations

import os

# On CUDA GPUs and Apple's M5 and later, MLX runs float32 matmuls and convolutions at TF32
# precision (10-bit mantissa) unless MLX_ENABLE_TF32=0: errors of ~1e-3 relative, which
# would hide real differences under every tolerance here. Read at MLX's first operation,
# and inherited by the subprocesses the tests start. MLX's own test harness does the same.
os.environ["MLX_ENABLE_TF32"] = "0"

import mlx.core as mx  # noqa: E402
import numpy as np
import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same MLX and NumPy random state."""
    mx.random.seed(0)
    np.random.seed(0)


@pytest.fixture
def on_cpu():
    """The CPU as MLX's default device for the test: for tests of the CPU's own code paths
    (vectorised activations, GEMM convolutions), which a GPU default would skip."""
    default = mx.default_device()
    mx.set_default_device(mx.cpu)
    yield
    mx.set_default_device(default)


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator for test inputs."""
    return np.random.default_rng(1234)


@pytest.fixture
def streams(monkeypatch):
    """Force ``n`` parallel CPU lanes whatever this machine's CPU count; record each use of
    ``_backend.cpu_lanes()`` (each split over them)."""
    from mlx_tcn import _backend

    used: list[list[mx.Stream]] = []
    real = _backend.cpu_lanes

    def recording() -> list[mx.Stream]:
        out = real()
        used.append(out)
        return out

    def force(n: int) -> list[list[mx.Stream]]:
        monkeypatch.setattr(_backend.runtime.STATE, "lanes", n)
        monkeypatch.setattr(_backend, "cpu_lanes", recording)
        return used

    return force


@pytest.fixture
def compiled_sgd_losses():
    """``run(model, loss, x, steps=4)``: the losses of ``steps`` SGD steps of ``model`` on
    ``x``, taken by one ``mx.compile``'d training step (model, optimiser and random state
    as its state), as ``mlx-tcn train`` compiles it."""
    from functools import partial

    import mlx.nn as nn
    import mlx.optimizers as optim

    def run(model, loss, x, steps=4):
        opt = optim.SGD(learning_rate=0.05)
        state = [model.state, opt.state, mx.random.state]

        @partial(mx.compile, inputs=state, outputs=state)
        def step(x):
            value, grads = nn.value_and_grad(model, loss)(model, x)
            opt.update(model, grads)
            return value

        return [step(x).item() for _ in range(steps)]

    return run


@pytest.fixture(scope="module", params=["shifted", "ring"])
def state_layout(request):
    """Run a module's tests with every convolution buffer in one layout: ``shifted`` (time
    order, first in, first out) or ``ring`` (written in place at a position). The library
    chooses by size (``mlx_tcn.pad.RING_MIN_VALUES``); the tests' small models would
    otherwise only ever get the first. Module-scoped, so hypothesis tests may use it."""
    from mlx_tcn import pad

    saved = pad.RING_MIN_VALUES
    pad.RING_MIN_VALUES = 0 if request.param == "ring" else 1 << 62
    yield request.param
    pad.RING_MIN_VALUES = saved
