"""Checkpoints: atomic writes, crash safety, pruning, clear errors for bad checkpoints."""

import json

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map

from mlx_tcn.train import (
    CheckpointError,
    LoopState,
    build_model,
    find_checkpoint,
    load_checkpoint,
    make_optimizer,
    resolve_config,
    save_checkpoint,
)
from mlx_tcn.train import checkpoint as ckpt_module
from mlx_tcn.train.checkpoint import load_optimizer_state, restore_random_state
from mlx_tcn.train.runner import resume_config

VALUES = dict(seq_len=10, levels=2, hidden=4, kernel_size=3, keep_checkpoints=2)


@pytest.fixture
def parts():
    cfg = resolve_config({}, VALUES)
    model = build_model(cfg, 2, 1)
    opt = make_optimizer(cfg, 10)
    opt.init(model.trainable_parameters())
    return cfg, model, opt


def _params(model):
    return {k: np.array(v) for k, v in tree_flatten(model.parameters())}


def test_round_trip(tmp_path, parts):
    cfg, model, opt = parts
    mx.random.seed(5)
    state = LoopState(step=7, epoch=1, batch_in_epoch=3, best_metric=0.1, best_step=7)
    path = save_checkpoint(tmp_path, model, opt, state, cfg, {"x_mean": [1.0]}, is_best=True)
    assert path == tmp_path / "checkpoints" / "step-00000007"
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json", "data_stats.json", "model.safetensors", "optimizer.safetensors",
        "train_config.json", "trainer_state.json"]  # fmt: skip
    expected_draw = mx.random.uniform(shape=(3,))
    ck = load_checkpoint(tmp_path)
    assert ck.loop == state and ck.cfg == cfg and ck.stats == {"x_mean": [1.0]}
    a, b = _params(model), _params(ck.model)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    restore_random_state(ck.random_key)
    np.testing.assert_array_equal(np.array(mx.random.uniform(shape=(3,))), np.array(expected_draw))
    opt2 = make_optimizer(cfg, 10)
    opt2.init(ck.model.trainable_parameters())
    load_optimizer_state(ck.path, opt2)
    flat1, flat2 = dict(tree_flatten(opt.state)), dict(tree_flatten(opt2.state))
    assert flat1.keys() == flat2.keys()


def test_index_points_to_latest_and_best_and_old_ones_are_pruned(tmp_path, parts):
    cfg, model, opt = parts
    for step in range(1, 6):
        save_checkpoint(tmp_path, model, opt, LoopState(step=step), cfg, {}, is_best=step == 2)
    root = tmp_path / "checkpoints"
    assert json.loads((root / "index.json").read_text()) == {
        "latest": "step-00000005",
        "best": "step-00000002",
    }
    assert sorted(p.name for p in root.glob("step-*")) == [
        "step-00000002",
        "step-00000004",
        "step-00000005",
    ]
    assert find_checkpoint(tmp_path, "best").name == "step-00000002"
    assert find_checkpoint(tmp_path).name == "step-00000005"
    assert load_checkpoint(tmp_path, "best").loop.step == 2


def test_saving_the_same_step_again_updates_only_the_loop_state(tmp_path, parts):
    cfg, model, opt = parts
    save_checkpoint(tmp_path, model, opt, LoopState(step=3), cfg, {})
    save_checkpoint(tmp_path, model, opt, LoopState(step=3, status="completed"), cfg, {})
    assert load_checkpoint(tmp_path).loop.status == "completed"


def test_crash_while_writing_keeps_previous_checkpoint_loadable(tmp_path, parts, monkeypatch):
    cfg, model, opt = parts
    save_checkpoint(tmp_path, model, opt, LoopState(step=1), cfg, {})
    before = _params(model)
    model.update(tree_map(lambda v: v + 1, model.parameters()))  # the next save differs

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.mx, "save_safetensors", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, model, opt, LoopState(step=2), cfg, {})
    monkeypatch.undo()
    ck = load_checkpoint(tmp_path)
    assert ck.loop.step == 1
    after = _params(ck.model)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    # The half-written folder is hidden and cleaned up by the next successful save.
    save_checkpoint(tmp_path, model, opt, LoopState(step=3), cfg, {})
    assert load_checkpoint(tmp_path).loop.step == 3


def _damage(root, damage):
    """Break a run's latest checkpoint (step 2) in one of the ways a crash or a user can."""
    if damage == "index points nowhere":
        (root / "index.json").write_text('{"latest": "step-00000009"}')
    elif damage == "index unreadable":
        (root / "index.json").write_text("{broken")
    elif damage == "index missing":
        (root / "index.json").unlink()
    else:
        (root / "step-00000002" / damage).unlink()


DAMAGES = ["model.safetensors", "config.json", "trainer_state.json", "train_config.json",
           "data_stats.json", "index points nowhere", "index unreadable", "index missing"]  # fmt: skip


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_latest_checkpoint_is_refused_not_replaced(tmp_path, parts, damage):
    # Before: the loader fell back to step 1 with a log warning, and evaluate/predict/resume
    # went on with it. The user must choose; the message names the problem and the way out.
    cfg, model, opt = parts
    for step in (1, 2):
        save_checkpoint(tmp_path, model, opt, LoopState(step=step), cfg, {})
    root = tmp_path / "checkpoints"
    _damage(root, damage)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path)
    msg = str(info.value)
    if damage.endswith((".json", ".safetensors")):
        assert f"step-00000002 is damaged: {damage} is missing" in msg
        usable = "step-00000001"
    else:
        assert "index.json" in msg
        usable = "step-00000002"  # complete; only the index is wrong
    assert f"pass its folder instead, e.g. {root / usable}" in msg and "\n" not in msg
    assert load_checkpoint(root / usable).path == root / usable  # the way out works


def test_a_damaged_checkpoint_folder_given_directly_is_refused(tmp_path, parts):
    cfg, model, opt = parts
    path = save_checkpoint(tmp_path, model, opt, LoopState(step=1), cfg, {})
    (path / "data_stats.json").unlink()  # before: loaded with no normalisation statistics
    with pytest.raises(CheckpointError, match="data_stats.json is missing; no other complete"):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no complete checkpoint in"):
        load_checkpoint(tmp_path)


def test_corrupted_weights_give_a_one_line_error(tmp_path, parts):
    cfg, model, opt = parts
    path = save_checkpoint(tmp_path, model, opt, LoopState(step=1), cfg, {})
    (path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(
        CheckpointError, match="model in .*step-00000001 could not be loaded"
    ) as info:
        load_checkpoint(tmp_path)
    assert "\n" not in str(info.value)


def test_corrupted_json_gives_a_clear_error(tmp_path, parts):
    cfg, model, opt = parts
    path = save_checkpoint(tmp_path, model, opt, LoopState(step=1), cfg, {})
    (path / "trainer_state.json").write_text("{")
    with pytest.raises(CheckpointError, match="trainer_state.json is corrupted"):
        load_checkpoint(path)
    (path / "train_config.json").write_text(json.dumps({**cfg.to_dict(), "bogus": 1}))
    with pytest.raises(CheckpointError, match="not a valid config: unknown config key"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config(tmp_path, parts):
    cfg, model, opt = parts
    path = save_checkpoint(tmp_path, model, opt, LoopState(step=1), cfg, {})
    other = build_model(resolve_config({}, {**VALUES, "hidden": 5}), 2, 1)
    mx.save_safetensors(str(path / "model.safetensors"), dict(tree_flatten(other.parameters())))
    with pytest.raises(CheckpointError, match="could not be loaded"):
        load_checkpoint(path)


def test_resume_refuses_incompatible_changes(tmp_path, parts):
    cfg, model, opt = parts
    save_checkpoint(tmp_path, model, opt, LoopState(step=1), cfg, {})
    ck = load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"cannot resume .*trained with hidden=4 \(asked 8\)"):
        resume_config(ck, {}, {"hidden": 8})
    assert resume_config(ck, {}, {"epochs": 3}).epochs == 3  # allowed: run longer


def test_resume_compares_values_as_the_config_types_them(tmp_path, parts):
    # A column position in a TOML file is an int; the command line gives the string "0".
    _, model, opt = parts
    values = {**VALUES, "task": "forecast", "data_path": "s.csv", "target_columns": ["0"]}
    save_checkpoint(tmp_path, model, opt, LoopState(step=1), resolve_config({}, values), {})
    ck = load_checkpoint(tmp_path)
    assert resume_config(ck, {"target_columns": [0], "lr": 4e-3}, {}).target_columns == ["0"]
