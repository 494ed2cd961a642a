"""The plateau learning-rate schedule (train/schedule.py, the loop's use of it): the rule on
synthetic validation values, the rate every step uses (eager, compiled, with a warm-up), and
a resume that continues with the cut rate.

Validation values are scripted: ``World.evaluate`` is replaced by one that returns the value
the test chose for the current step, so the cuts happen where the test says."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_tcn.train import build_model, build_task, load_checkpoint, resolve_config, run_training
from mlx_tcn.train import distributed as distributed_module
from mlx_tcn.train.loop import LoopState, plateau_update, total_steps, train
from mlx_tcn.train.schedule import LR_SCALE, make_optimizer

# 256 samples in batches of 32: 8 steps per epoch, 3 epochs; an evaluation every 2 steps.
RUN = dict(compile=False, seq_len=10, levels=2, hidden=8, kernel_size=3, n_train=256, n_val=32,
           batch_size=32, epochs=3, eval_every=2, log_every=1, optimizer="sgd", lr=0.5,
           schedule="plateau", plateau_factor=0.5, plateau_window=2, plateau_start=2,
           checkpoint_every=100, plots=False)  # fmt: skip
# Validation loss at each evaluation (steps 2, 4, ..., 24) and the scale after it: after the
# first two evaluations, a value above both of the two before it halves the rate.
VAL = [5.0, 4.0, 6.0, 3.0, 3.5, 7.0, 8.0, 1.0, 2.0, 2.5, 0.5, 0.4]
SCALE = [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.125, 0.125, 0.125, 0.0625, 0.0625, 0.0625]


def _cfg(**overrides):
    return resolve_config({}, {**RUN, **overrides})


def _scales(cfg, values):
    state = LoopState()
    return [(plateau_update(cfg, state, v), state.lr_scale)[1] for v in values]


def test_the_rule_on_a_synthetic_sequence():
    assert _scales(_cfg(), VAL) == SCALE
    # The reference code's settings (divide by 10 after epoch 10 when worse than each of the
    # last three epochs): evaluation 11 is the first that may cut; consecutive cuts are allowed.
    ref = _cfg(plateau_factor=0.1, plateau_window=3, plateau_start=10)
    values = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 9, 9.5, 10, 0.5, 0.6, 0.7, 0.8]
    got = _scales(ref, values)
    expected = [1.0] * 10 + [0.1, 0.01, 0.001, 0.001, 0.001, 0.001, 1e-4]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # The same value at evaluation 10 does not cut: the rule has not started yet.
    assert _scales(ref, values[:9] + [9])[-1] == 1.0
    # start 0: from the second evaluation; a tie with the worst recent value is no cut.
    assert _scales(_cfg(plateau_start=0, plateau_window=1), [1, 2, 2, 3]) == [1, 0.5, 0.5, 0.25]


def test_with_select_accuracy_a_lower_accuracy_is_worse():
    cfg = _cfg(task="copy_memory", select="accuracy", plateau_start=0, plateau_window=2)
    assert _scales(cfg, [0.5, 0.6, 0.55, 0.4, 0.45, 0.3]) == [1, 1, 1, 0.5, 0.5, 0.25]


def test_the_state_keeps_only_the_window():
    state = LoopState()
    for v in VAL:
        plateau_update(_cfg(), state, v)
    assert state.recent_metrics == VAL[-2:] and state.evaluations == len(VAL)
    assert LoopState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@pytest.fixture
def scripted(monkeypatch):
    """Validation losses by step (the step event comes before the evaluation it is for)."""
    now = {"step": 0}
    by_step = {2 * (i + 1): v for i, v in enumerate(VAL)}
    monkeypatch.setattr(distributed_module, "evaluate_split",
                        lambda *a, **k: {"loss": by_step[now["step"]]})  # fmt: skip

    def track(event):
        if event["event"] == "step":
            now["step"] = event["step"]

    return track


def _expected_lr(base_lr, steps, warmup=0):
    """The rate of steps 1..steps: the warm-up (MLX's linear schedule from lr/warmup) times
    the scale of the last evaluation before the step."""
    out = []
    for s in range(1, steps + 1):
        t = s - 1  # the optimiser's step count when it computes this step's rate
        warm = (
            base_lr if t >= warmup else base_lr / warmup + (base_lr - base_lr / warmup) * t / warmup
        )
        evals_before = (s - 1) // 2
        out.append(warm * (SCALE[evals_before - 1] if evals_before else 1.0))
    return out


def _train(cfg, track, per_epoch=None):
    mx.random.seed(cfg.seed)
    task = build_task(cfg)
    model = build_model(cfg, task.num_inputs, task.num_outputs)
    opt = make_optimizer(cfg, total_steps(cfg, len(task.train)), per_epoch)
    opt.init(model.trainable_parameters())
    events = []
    state = train(model, opt, task, cfg, callback=lambda e: (track(e), events.append(e)))
    return state, events, model


def _lrs(events):
    return [e["lr"] for e in events if e["event"] == "train"]


@pytest.mark.parametrize("warmup", [0, 5])
def test_every_step_uses_the_cut_rate(scripted, warmup):
    state, events, _ = _train(_cfg(warmup_steps=warmup), scripted)
    assert state.step == 24 and state.lr_scale == SCALE[-1]
    np.testing.assert_allclose(_lrs(events), _expected_lr(0.5, 24, warmup), rtol=1e-6)
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["lr_scale"] for e in evals] == SCALE
    assert [e["lr_cut"] for e in evals] == [
        b < a for a, b in zip([1.0, *SCALE[:-1]], SCALE, strict=True)
    ]


@pytest.mark.slow  # mx.compile builds C++ on the CPU: ~10 s
def test_the_compiled_step_reads_the_cut_rate_as_state(scripted):
    """A rate captured as a constant when the step is traced would stay at 0.5 here."""
    eager_state, eager, eager_model = _train(_cfg(), scripted)
    state, compiled, model = _train(_cfg(compile=True), scripted)
    np.testing.assert_allclose(_lrs(compiled), _expected_lr(0.5, 24), rtol=1e-6)
    np.testing.assert_allclose(_lrs(compiled), _lrs(eager), rtol=1e-6)
    a, b = dict(tree_flatten(eager_model.parameters())), dict(tree_flatten(model.parameters()))
    for k in a:
        np.testing.assert_allclose(np.array(a[k]), np.array(b[k]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_resume_continues_with_the_cut_rate(tmp_path, scripted, compiled):
    values = {**RUN, "compile": compiled, "runs_dir": str(tmp_path)}
    full = run_training(resolve_config({}, {**values, "name": "full"}), callbacks=[scripted])
    # Stopped at step 13, in the middle of epoch 2: after the cuts at evaluations 3 and 6
    # (steps 6 and 12), before the one at evaluation 7 (step 14).
    steps = []
    part = run_training(
        resolve_config({}, {**values, "name": "part"}),
        callbacks=[scripted, lambda e: e["event"] == "step" and steps.append(e["step"])],
        should_stop=lambda: bool(steps) and steps[-1] >= 13,
    )
    assert part.state.status == "interrupted" and part.state.step == 13
    ckpt = load_checkpoint(part.run_dir)
    assert ckpt.loop.lr_scale == 0.25 and ckpt.loop.recent_metrics == VAL[4:6]
    saved = mx.load(str(ckpt.path / "optimizer.safetensors"))
    assert float(saved[LR_SCALE]) == 0.25
    resumed = run_training(ckpt.cfg, resume=ckpt, callbacks=[scripted])
    assert resumed.state.step == 24 and resumed.state.lr_scale == SCALE[-1]
    lrs = [_lrs(_records(r.run_dir)) for r in (full, part)]
    np.testing.assert_allclose(lrs[1], lrs[0], rtol=1e-7)
    np.testing.assert_allclose(lrs[0], _expected_lr(0.5, 24), rtol=1e-6)
    a = dict(tree_flatten(load_checkpoint(full.run_dir).model.parameters()))
    b = dict(tree_flatten(load_checkpoint(part.run_dir).model.parameters()))
    assert all(np.array_equal(np.array(a[k]), np.array(b[k])) for k in a)


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_step_schedule_cuts_at_each_epoch_boundary():
    """schedule="step": 8 steps per epoch, a cut every epoch: steps 1-8 at 0.5, 9-16 at 0.25,
    17-24 at 0.125 (the reference MNIST script's rule, divided every step_epochs epochs)."""
    cfg = _cfg(schedule="step", step_epochs=1, step_factor=0.5)
    _, events, _ = _train(cfg, lambda e: None, per_epoch=8)
    np.testing.assert_allclose(_lrs(events), [0.5] * 8 + [0.25] * 8 + [0.125] * 8, rtol=1e-7)
    # The MNIST paper preset's numbers: 937 steps per epoch, the first update of epoch 11
    # (optimiser step 9,370, counted from 0) is the first at 2e-4.
    mnist = _cfg(schedule="step", step_epochs=10, step_factor=0.1, lr=2e-3)
    rate = make_optimizer(mnist, 18740, per_epoch=937)._schedulers["learning_rate"]
    got = [float(rate(mx.array(t))) for t in (0, 9369, 9370, 18739)]
    np.testing.assert_allclose(got, [2e-3, 2e-3, 2e-4, 2e-4], rtol=1e-6)


def test_step_schedule_follows_the_warm_up():
    cfg = _cfg(schedule="step", step_epochs=1, step_factor=0.5, warmup_steps=4)
    _, events, _ = _train(cfg, lambda e: None, per_epoch=8)
    warm = [0.125, 0.125 + 0.375 / 4, 0.125 + 0.375 / 2, 0.125 + 0.375 * 3 / 4]
    expected = warm + [0.5] * 8 + [0.25] * 8 + [0.125] * 4
    np.testing.assert_allclose(_lrs(events), expected, rtol=1e-6)


def test_step_schedule_needs_the_epoch_length():
    with pytest.raises(ValueError, match="schedule='step' needs the steps per epoch, got None"):
        make_optimizer(_cfg(schedule="step"), 24)


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_step_schedule_through_run_training_and_resume(tmp_path, compiled):
    """The rate is a function of the optimiser's step, which the checkpoint keeps: a run
    stopped in epoch 2 and resumed uses the same rates as one that was not stopped."""
    values = {**RUN, "schedule": "step", "step_epochs": 1, "step_factor": 0.5,
              "compile": compiled, "runs_dir": str(tmp_path)}  # fmt: skip
    full = run_training(resolve_config({}, {**values, "name": "full"}))
    steps = []
    part = run_training(
        resolve_config({}, {**values, "name": "part"}),
        callbacks=[lambda e: e["event"] == "step" and steps.append(e["step"])],
        should_stop=lambda: bool(steps) and steps[-1] >= 11,
    )
    assert part.state.status == "interrupted" and part.state.step == 11
    run_training(load_checkpoint(part.run_dir).cfg, resume=load_checkpoint(part.run_dir))
    lrs = [_lrs(_records(r.run_dir)) for r in (full, part)]
    np.testing.assert_allclose(lrs[0], [0.5] * 8 + [0.25] * 8 + [0.125] * 8, rtol=1e-7)
    np.testing.assert_allclose(lrs[1], lrs[0], rtol=1e-7)
