"""Training budget and depth from the data: exact values and the receptive-field property."""

import pytest

from mlx_tcn import TCN
from mlx_tcn.train.budget import PATIENCE, Budget, levels_for, training_budget


@pytest.mark.parametrize("seq_len", [2, 5, 13, 14, 24, 100, 150, 251, 427, 1000])
@pytest.mark.parametrize("kernel_size", [2, 3, 8])
def test_levels_for_is_the_fewest_blocks_that_see_the_window(seq_len, kernel_size):
    def rf(levels):
        return TCN(
            num_inputs=1, num_channels=[2] * levels, kernel_sizes=kernel_size
        ).receptive_field

    levels = levels_for(seq_len, kernel_size)
    assert rf(levels) >= seq_len
    assert levels == 1 or rf(levels - 1) < seq_len


def test_levels_for_rejects_bad_values():
    with pytest.raises(ValueError, match="seq_len must be a positive number of steps, got 0"):
        levels_for(0, 3)
    with pytest.raises(ValueError, match="kernel_size must be at least 2.*got 1"):
        levels_for(10, 1)


def test_training_budget_scales_with_the_data():
    # 40 series (GunPoint after the validation split): one step per epoch, so many epochs
    assert training_budget(40, 32) == Budget(epochs=1000, eval_every=25, patience=PATIENCE)
    # 100 samples: 3 steps per epoch
    assert training_budget(100, 32) == Budget(epochs=334, eval_every=26, patience=PATIENCE)
    # 50,000 samples: 1,562 steps per epoch; still three passes over the data
    assert training_budget(50_000, 32) == Budget(epochs=3, eval_every=118, patience=PATIENCE)
    # fewer samples than a batch: one (partial) batch per epoch
    assert training_budget(10, 32, target_steps=200).epochs == 200


def test_training_budget_rejects_bad_values():
    with pytest.raises(ValueError, match="n_train must be positive, got 0"):
        training_budget(0, 32)
    with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
        training_budget(10, 0)


def test_apply_auto_fills_only_the_listed_settings_and_empties_the_list():
    from mlx_tcn.train import resolve_config
    from mlx_tcn.train.budget import apply_auto

    cfg = resolve_config({}, {"task": "classify", "data_path": "c.npz", "epochs": 5})
    out = apply_auto(cfg, n_train=40, seq_len=150)
    # the user's 5 epochs of one step each: evaluated after every step, not every 25
    assert (out.epochs, out.eval_every, out.patience, out.levels) == (5, 1, PATIENCE, 6)
    both = apply_auto(resolve_config({}, {"task": "classify", "data_path": "c.npz"}), 40, 150)
    assert (both.epochs, both.eval_every) == (1000, 25)
    assert out.auto == [] and cfg.auto == ["eval_every", "patience", "levels", "folds"]  # a copy
    plain = resolve_config({}, {})
    assert apply_auto(plain, 40, 150) is plain  # nothing listed: unchanged
