"""Dropout masks (mlx_tcn._dropout): the exact hash, its statistics, and how it is seeded."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlx_tcn import _dropout
from mlx_tcn._dropout import keep_mask


def _reference(shape: tuple[int, ...], keep: float, seed: int) -> np.ndarray:
    """The mask in NumPy from the same four 16-bit draws of MLX's key."""
    mx.random.seed(seed)
    r = np.array(mx.random.randint(0, 1 << 16, (4,), dtype=mx.uint32)).astype(np.uint64)
    m, s = ((r[0] << 16) | r[1] | 1), ((r[2] << 16) | r[3])
    mask32 = np.uint64(0xFFFFFFFF)
    h = (np.arange(int(np.prod(shape)), dtype=np.uint64) * m + s) & mask32
    h = ((h ^ (h >> np.uint64(16))) * np.uint64(0x7FEB352D)) & mask32
    h = ((h ^ (h >> np.uint64(15))) * np.uint64(0x846CA68B)) & mask32
    h = h ^ (h >> np.uint64(16))
    return (h < np.uint64(round(keep * 2.0**32))).reshape(shape)


@pytest.fixture
def hash_everywhere(monkeypatch):
    """The hash for masks of any size (it starts at ``_MIN_ELEMENTS`` elements)."""
    monkeypatch.setattr(_dropout, "_MIN_ELEMENTS", 1)


@pytest.mark.parametrize("shape", [(3, 7, 5), (1, 1, 1), (2, 4096, 16)])
def test_the_mask_is_the_documented_hash_of_the_index(shape, hash_everywhere):
    mx.random.seed(11)
    got = np.array(keep_mask(shape, 0.8))
    np.testing.assert_array_equal(got, _reference(shape, 0.8, 11))


def test_mx_random_seed_reproduces_the_mask_and_the_next_draw_differs(hash_everywhere):
    mx.random.seed(5)
    a, b = np.array(keep_mask((8, 300, 8), 0.5)), np.array(keep_mask((8, 300, 8), 0.5))
    mx.random.seed(5)
    np.testing.assert_array_equal(np.array(keep_mask((8, 300, 8), 0.5)), a)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_the_keep_fraction_is_binomial(keep):
    mx.random.seed(1)
    n = 2_000_000
    frac = float(np.array(keep_mask((n,), keep)).mean())
    sd = (keep * (1 - keep) / n) ** 0.5
    assert abs(frac - keep) < 5 * sd


def test_draws_are_independent_across_elements_and_calls():
    # neighbours in time and in channels, and two successive masks, agree as often as two
    # independent Bernoulli(keep) draws do: keep**2 + (1 - keep)**2
    mx.random.seed(2)
    keep, shape = 0.7, (16, 2048, 32)
    a, b = np.array(keep_mask(shape, keep)), np.array(keep_mask(shape, keep))
    expected = keep**2 + (1 - keep) ** 2
    pairs = {
        "channel": (a[..., 1:], a[..., :-1]),
        "time": (a[:, 1:], a[:, :-1]),
        "row": (a[1:], a[:-1]),
        "next mask": (a, b),
    }
    for name, (u, v) in pairs.items():
        n = u.size
        sd = (expected * (1 - expected) / n) ** 0.5
        assert abs((u == v).mean() - expected) < 6 * sd, name


def test_keep_one_keeps_everything_and_bad_keep_is_refused(hash_everywhere):
    assert np.array(keep_mask((4, 5), 1.0)).all()
    for keep in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=f"keep must be in \\(0, 1\\], got {keep}"):
            keep_mask((4, 5), keep)


def test_keep_near_one_does_not_overflow_the_threshold(hash_everywhere):
    mask = np.array(keep_mask((1000,), 1.0 - 2.0**-40))
    assert mask.dtype == np.bool_ and mask.all()


def test_small_masks_and_masks_too_large_for_a_32_bit_index_use_mlx_draw(monkeypatch):
    calls = []
    real = mx.random.bernoulli
    monkeypatch.setattr(mx.random, "bernoulli", lambda *a, **k: calls.append(a) or real(*a, **k))
    mx.random.seed(0)
    small = np.array(keep_mask((255, 257), 0.6))  # 65,535 elements: MLX's draw
    mx.random.seed(0)
    np.testing.assert_array_equal(small, np.array(real(0.6, (255, 257))))
    assert calls == [(0.6, (255, 257))]
    keep_mask((256, 256), 0.6)  # 65,536: the hash
    assert len(calls) == 1
    monkeypatch.setattr(_dropout, "_MAX_ELEMENTS", 100_000)
    frac = float(np.array(keep_mask((400, 250), 0.6)).mean())
    assert calls[1:] == [(0.6, (400, 250))] and abs(frac - 0.6) < 0.01
    keep_mask((333, 300), 0.6)  # 99,900 elements: the hash
    assert len(calls) == 2


def test_the_same_mask_under_compile_as_eager():
    shape = (4, 500, 64)

    def draw(x):
        return x * keep_mask(shape, 0.6)

    state = [mx.random.state]
    compiled = mx.compile(draw, inputs=state, outputs=state)
    x = mx.ones(shape)
    mx.random.seed(9)
    eager = np.array(draw(x))
    mx.random.seed(9)
    np.testing.assert_array_equal(np.array(compiled(x)), eager)
    # the compiled call advanced MLX's key like the eager one: the next draws agree too
    mx.random.seed(9)
    draw(x)
    second = np.array(draw(x))
    mx.random.seed(9)
    compiled(x)
    np.testing.assert_array_equal(np.array(compiled(x)), second)


def test_a_block_gradient_through_dropout_is_the_scaled_mask():
    from mlx_tcn.block import TemporalBlock

    block = TemporalBlock(3, 3, kernel_size=2, dropout=0.4, causal=True)
    block.train()
    x = mx.random.normal((2, 20000, 3))
    mx.random.seed(4)
    grad = np.array(mx.grad(lambda v: block._dropout(v, eval_mode=False).sum())(x))
    mx.random.seed(4)
    mask = np.array(keep_mask(x.shape, 0.6))
    np.testing.assert_allclose(grad, np.where(mask, np.float32(1 / 0.6), 0), rtol=1e-7)


def test_a_training_step_with_dropout_still_learns():
    from mlx_tcn import TCN

    mx.random.seed(0)
    model = TCN(2, [8, 8], kernel_sizes=3, dropout=0.2, causal=True)
    x = mx.random.normal((8, 64, 2))
    target = mx.cumsum(x[..., :1], axis=1) * 0.1
    opt_loss = nn.value_and_grad(model, lambda m: nn.losses.mse_loss(m(x)[..., :1], target))
    import mlx.optimizers as optim

    opt = optim.Adam(1e-2)
    first = None
    for _ in range(60):
        loss, grads = opt_loss(model)
        opt.update(model, grads)
        mx.eval(loss, model.parameters())
        first = float(loss) if first is None else first
    assert float(loss) < 0.5 * first
