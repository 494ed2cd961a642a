"""Training budget and depth from the data: exact values and the receptive-field property."""

import dataclasses

import pytest

from mlx_tcn import TCN
from mlx_tcn.train.budget import PATIENCE, Budget, apply_auto, levels_for, training_budget


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


# --------------------------------------------------------------------------- compute budget


def _classify_cfg(**values):
    from mlx_tcn.train import resolve_config

    return resolve_config({}, {"task": "classify", "data_path": "c.npz", **values})


def _steps(cfg, n_train):
    """Optimiser steps a config makes on ``n_train`` samples."""
    from mlx_tcn.train.loop import total_steps

    return total_steps(cfg, n_train)


def _spent(cfg, n_train, seq_len, n_val):
    """Multiply-adds counted for a run of ``cfg``: its steps and its evaluations."""
    from mlx_tcn.train.budget import TRAIN_PASSES, forward_cost

    sample = forward_cost(seq_len, cfg.levels, cfg.hidden, cfg.kernel_size)
    steps = _steps(cfg, n_train)
    evaluations = -(-steps // cfg.eval_every)
    return (
        TRAIN_PASSES * steps * min(cfg.batch_size, n_train) * sample + evaluations * n_val * sample
    )


@pytest.mark.parametrize(
    ("name", "n_train", "seq_len", "n_val", "folds", "expected"),
    [  # the UCR/UEA sets the defaults were measured on: (epochs, eval_every, patience, levels)
        ("GunPoint", 40, 150, 10, 5, (400, 10, 20, 6)),
        ("ArrowHead", 29, 251, 7, 5, (400, 10, 20, 6)),
        ("PickupGestureWiimoteZ", 40, 361, 10, 5, (400, 10, 20, 7)),
        ("OSULeaf", 160, 427, 40, 5, (80, 10, 20, 7)),
        ("JapaneseVowels", 216, 26, 54, 5, (67, 11, 20, 3)),
        ("OSULeaf, one model", 160, 427, 40, 1, (200, 25, 10, 7)),
    ],
)
def test_the_compute_budget_leaves_the_small_sets_step_targets_alone(
    name, n_train, seq_len, n_val, folds, expected
):
    out = apply_auto(_classify_cfg(folds=folds), n_train, seq_len, n_val)
    assert (out.epochs, out.eval_every, out.patience, out.levels) == expected, name
    assert out.max_steps is None


def _fixed_depth(levels, **values):
    """A classification config whose depth is given (only the budget is automatic)."""
    cfg = _classify_cfg(levels=levels, **values)
    return dataclasses.replace(cfg, auto=[a for a in cfg.auto if a != "levels"])


def test_long_sequences_get_the_steps_the_compute_budget_affords():
    from mlx_tcn.train.budget import ENSEMBLE_COST, compute_per_model

    # ACSF1: 100 series of 1,460 steps, 10 classes; each of 5 models trains on 80. At the 9
    # blocks that cover the window, by steps alone each would make 400 (200 epochs of two),
    # over an hour on one core; the budget affords 103.
    nine = apply_auto(_fixed_depth(9, folds=5), 80, 1460, 20)
    assert (nine.epochs, nine.max_steps, nine.eval_every, nine.patience) == (52, 103, 3, 20)
    spent = _spent(nine, 80, 1460, 20)
    assert 0.9 * compute_per_model(5) < spent <= compute_per_model(5)
    assert compute_per_model(5) * 5 == ENSEMBLE_COST * compute_per_model(1)
    # one model gets the budget of one run, not of the ensemble
    one = apply_auto(_fixed_depth(9, folds=1), 80, 1460, 20)
    assert one.max_steps == 277 and _spent(one, 80, 1460, 20) <= compute_per_model(1)


def test_a_starved_classifier_gives_up_depth_for_steps():
    from mlx_tcn.train.budget import MIN_STARVED_LEVELS, STARVED_SHARE, compute_per_model

    # ACSF1 by default: 103 steps at 9 blocks are under half the 400-step target, and so are
    # 196 at 5 blocks; 4 blocks afford 248 (the configuration measured at 0.72 on the test
    # file, against 0.50 with 9 blocks)
    out = apply_auto(_classify_cfg(folds=5), 80, 1460, 20)
    assert (out.levels, out.epochs, out.max_steps, out.eval_every, out.patience) == (
        4, 124, None, 7, 20)  # fmt: skip
    assert _spent(out, 80, 1460, 20) <= compute_per_model(5)
    # a moderately starved set keeps the deepest model that affords half its target: 800
    # series of 800 steps, one model: 8 blocks cover the window, 7 afford 556 of 1,000 steps
    mid = apply_auto(_classify_cfg(folds=1), 800, 800, 200)
    assert (mid.levels, mid.max_steps) == (7, 556)
    assert STARVED_SHARE * 1000 <= _steps(mid, 800) < 1000
    # never below MIN_STARVED_LEVELS, however long the sequences
    assert apply_auto(_classify_cfg(folds=1), 1000, 2709, 200).levels == MIN_STARVED_LEVELS
    # a depth the user gave is kept, and a forecast keeps the depth that covers its window
    assert apply_auto(_fixed_depth(9, folds=5), 80, 1460, 20).levels == 9
    from mlx_tcn.train import resolve_config

    forecast = resolve_config({}, {"task": "forecast", "data_path": "s.csv", "seq_len": 512})
    assert apply_auto(forecast, 79_488, 512, 1000).levels == 8


def test_a_user_given_step_count_is_not_capped():
    given = apply_auto(_classify_cfg(folds=5, epochs=300), 80, 1460, 20)
    assert (given.epochs, given.max_steps) == (300, None)
    given = apply_auto(_fixed_depth(9, folds=5, max_steps=150), 80, 1460, 20)
    assert given.max_steps == 150 and given.epochs == 52


@pytest.mark.parametrize("folds", [1, 5])
def test_the_budget_falls_as_sequences_grow_and_never_exceeds_the_compute(folds):
    from mlx_tcn.train.budget import MIN_STEPS, compute_per_model

    steps, spent = [], []
    for seq_len in (50, 150, 427, 800, 1460, 2000, 3000):
        out = apply_auto(_fixed_depth(8, folds=folds), 80, seq_len, 20)
        steps.append(_steps(out, 80))
        spent.append(_spent(out, 80, seq_len, 20))
    assert steps == sorted(steps, reverse=True) and steps[0] > steps[-1] >= MIN_STEPS
    # within the compute, but for the MIN_STEPS floor (5 models of 3,000 steps and 10 blocks)
    assert all(c <= compute_per_model(folds) for c, n in zip(spent, steps, strict=True)
               if n > MIN_STEPS)  # fmt: skip
    # deterministic: the same data always gets the same budget
    again = [_steps(apply_auto(_fixed_depth(8, folds=folds), 80, n, 20), 80) for n in (427, 3000)]
    assert again == [steps[2], steps[-1]]


def test_large_data_sets_are_capped_within_an_epoch_and_evaluate_less_often():
    from mlx_tcn.train import resolve_config
    from mlx_tcn.train.budget import MIN_EVALUATIONS, compute_per_model

    # a series of 100,000 rows, windows of 512: 79,488 training windows (2,484 steps an
    # epoch; three epochs by steps alone) and 1,000 validation windows (thinned)
    cfg = resolve_config({}, {"task": "forecast", "data_path": "s.csv", "seq_len": 512})
    out = apply_auto(cfg, 79_488, 512, 1000)
    assert out.epochs == 1 and out.max_steps is not None and out.max_steps < 2_484 // 2
    assert _spent(out, 79_488, 512, 1000) <= compute_per_model(1)
    evaluations = -(-out.max_steps // out.eval_every)
    assert MIN_EVALUATIONS <= evaluations < 40 and out.patience < PATIENCE


def test_dear_evaluations_are_fewer_and_patience_shrinks_with_them():
    from mlx_tcn.train.budget import EVALUATIONS, MIN_EVALUATIONS, MIN_STEPS

    # one evaluation costs a tenth of the compute: only MIN_EVALUATIONS of them
    budget = training_budget(100, 32, sample_cost=1.0, n_val=100, compute=1000.0)
    assert budget.patience == round(PATIENCE * MIN_EVALUATIONS / EVALUATIONS)
    # nothing left for training: still MIN_STEPS
    assert budget.max_steps == MIN_STEPS and budget.eval_every == MIN_STEPS // MIN_EVALUATIONS


def test_a_run_stops_where_the_compute_budget_ends_it(tmp_path, monkeypatch):
    # a budget of a few steps (MIN_STEPS lowered): the run is capped within its first epoch,
    # its validation part's evaluations counted (the runner passes n_val), and it says so
    import json

    import numpy as np

    from mlx_tcn.train import budget, resolve_config, run_training
    from mlx_tcn.train.budget import EVALUATIONS, forward_cost

    rng = np.random.default_rng(0)
    y = np.arange(30) % 2
    x = (y[:, None] * np.linspace(0, 1, 12) + 0.3 * rng.normal(size=(30, 12))).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=y.astype(str))
    cfg = resolve_config({}, {"task": "classify", "data_path": str(tmp_path / "d.npz"),
                              "hidden": 4, "batch_size": 2, "folds": 1, "patience": None,
                              "compile": False, "plots": False,
                              "runs_dir": str(tmp_path / "runs")})  # fmt: skip
    sample = forward_cost(12, 2, 4, 3)  # levels_for(12, 3) == 2
    n_val = 6  # 20% of each class validates; 24 train, 12 steps of 2 an epoch
    # 40 evaluations of 6 samples (under EVAL_SHARE of the budget) and 61 steps of 2 samples
    # (each counting TRAIN_PASSES = 2 forward passes)
    compute = EVALUATIONS * n_val * sample + 61 * 2 * 2 * sample
    monkeypatch.setattr(budget, "MIN_STEPS", 1)
    monkeypatch.setattr(budget, "COMPUTE_BUDGET", compute)
    result = run_training(cfg)
    saved = json.loads((result.run_dir / "train_config.json").read_text())
    # 61 steps: the sixth epoch is cut after its first step (without the evaluations: 121)
    assert (saved["levels"], saved["epochs"], saved["max_steps"]) == (2, 6, 61)
    assert result.state.status == "max_steps" and result.state.step == 61
