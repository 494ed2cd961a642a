"""Shared pytest set-up: deterministic random state and the ``slow`` marker."""

from __future__ import annotations

import mlx.core as mx
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
def rng() -> np.random.Generator:
    """A NumPy generator for test inputs."""
    return np.random.default_rng(1234)
