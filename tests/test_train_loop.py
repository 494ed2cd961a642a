"""The training loop: it learns, is deterministic, resumes exactly, stops on NaN, stops early."""

import math

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_tcn.train import (
    LoopState,
    TrainingDiverged,
    build_model,
    build_task,
    load_checkpoint,
    make_optimizer,
    resolve_config,
    run_training,
    save_checkpoint,
    train,
)
from mlx_tcn.train.distributed import World
from mlx_tcn.train.loop import total_steps
from mlx_tcn.train.losses import evaluate_split

# Eager steps: mx.compile would build C++ for every new model of every test (seconds each).
TINY = dict(compile=False, seq_len=10, levels=2, hidden=16, kernel_size=3, n_train=256, n_val=64, batch_size=32,
            epochs=1, eval_every=1000, log_every=1)  # fmt: skip


def _setup(**overrides):
    cfg = resolve_config({}, {**TINY, **overrides})
    mx.random.seed(cfg.seed)
    task = build_task(cfg)
    model = build_model(cfg, task.num_inputs, task.num_outputs)
    opt = make_optimizer(cfg, total_steps(cfg, len(task.train)))
    opt.init(model.trainable_parameters())
    return cfg, task, model, opt


def _losses(records):
    return [r["loss"] for r in records if r["event"] == "train"]


def test_tiny_adding_problem_learns_well_below_baseline():
    cfg, task, model, opt = _setup(n_train=4096, epochs=2, hidden=32, lr=5e-3)
    events = []
    state = train(model, opt, task, cfg, callback=events.append)
    assert state.status == "completed" and state.step == 256 and state.epoch == 2
    val = [e["val_loss"] for e in events if e["event"] == "eval"]
    assert val[-1] < 0.03 < task.baseline  # trivial predictor: 1/6
    assert events[-1]["event"] == "end" and events[-1]["best_val_loss"] == min(val)


def test_callback_gets_plain_dicts():
    cfg, task, model, opt = _setup(max_steps=3, log_every=2)
    events = []
    train(model, opt, task, cfg, callback=events.append)
    kinds = [e["event"] for e in events]
    assert kinds == [
        "step",
        "step",
        "train",
        "step",
        "eval",
        "end",
    ]  # final evaluation at max_steps
    t = events[2]
    assert set(t) == {"event", "step", "epoch", "loss", "lr", "samples_per_s", "steps_per_s"}
    assert all(isinstance(v, (int, float, str, type(None))) for e in events for v in e.values())
    assert math.isclose(t["lr"], cfg.lr, rel_tol=1e-6)


def test_deterministic_for_a_seed():
    runs = []
    for _ in range(2):
        cfg, task, model, opt = _setup(dropout=0.2, max_steps=6)
        events = []
        train(model, opt, task, cfg, callback=events.append)
        runs.append(_losses(events))
    assert runs[0] == runs[1]
    cfg, task, model, opt = _setup(dropout=0.2, max_steps=6, seed=1)
    events = []
    train(model, opt, task, cfg, callback=events.append)
    assert _losses(events) != runs[0]


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd"])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_optimizers_and_schedules_reduce_the_loss(optimizer, schedule):
    lr = 0.05 if optimizer == "sgd" else 5e-3
    cfg, task, model, opt = _setup(optimizer=optimizer, schedule=schedule, lr=lr, warmup_steps=2,
                                   momentum=0.9, grad_clip=1.0, epochs=2)  # fmt: skip
    events = []
    train(model, opt, task, cfg, callback=events.append)
    losses = _losses(events)
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


def test_lr_schedule_values():
    cfg = resolve_config({}, {**TINY, "schedule": "cosine", "warmup_steps": 4, "lr": 1.0})
    opt = make_optimizer(cfg, 14)
    lr = opt._schedulers["learning_rate"]
    # Linear warm-up from lr / warmup_steps, then cosine decay over the remaining 10 steps.
    got = [round(float(lr(mx.array(s))), 4) for s in (0, 3, 4, 9, 14)]
    assert got == [0.25, 0.8125, 1.0, 0.5, 0.0]
    cfg = resolve_config({}, {**TINY, "schedule": "exponential", "decay_rate": 0.01})
    lr = make_optimizer(cfg, 10)._schedulers["learning_rate"]
    assert math.isclose(float(lr(mx.array(10))), cfg.lr * 0.01, rel_tol=1e-4)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_steps_equal_pytorch_adam(name):
    """Bias-corrected moments: the first steps (where MLX's uncorrected default is up to 3.2x
    larger) equal torch.optim.Adam/AdamW's, which the paper's learning rates were tuned with."""
    torch = pytest.importorskip("torch")
    cfg = resolve_config({}, {**TINY, "optimizer": name, "lr": 0.1, "weight_decay": 0.01})
    grads = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    w0 = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    opt = make_optimizer(cfg, 5)
    params = {"w": mx.array(w0)}
    opt.init(params)
    t_w = torch.nn.Parameter(torch.tensor(w0))
    t_cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    t_opt = t_cls([t_w], lr=0.1, **({} if name == "adam" else {"weight_decay": 0.01}))
    for g in grads:
        params = opt.apply_gradients({"w": mx.array(g)}, params)
        t_w.grad = torch.tensor(g)
        t_opt.step()
        np.testing.assert_allclose(
            np.array(params["w"]), t_w.detach().numpy(), rtol=1e-5, atol=1e-6
        )


@pytest.mark.slow  # mx.compile builds C++ on the CPU: ~10 s
def test_compiled_step_matches_eager():
    runs = []
    for compiled in (False, True):
        cfg, task, model, opt = _setup(dropout=0.1, max_steps=4, compile=compiled, grad_clip=0.5)
        events = []
        train(model, opt, task, cfg, callback=events.append)
        runs.append(_losses(events))
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-4)
    assert len(set(runs[1])) == 4  # dropout masks change every step under compile


def test_evaluation_runs_in_eval_mode_and_restores_training_mode():
    cfg, task, model, _ = _setup(dropout=0.5)
    from mlx_tcn.train.split import iterate_batches

    batches = list(iterate_batches(task.val, 16, shuffle=False, drop_last=False))
    a = evaluate_split(model, task.kind, batches)
    b = evaluate_split(model, task.kind, batches)
    assert a == b  # no dropout in eval mode
    assert model.training


def test_early_stopping():
    # An SGD step far below float32 resolution leaves the weights, and the loss, unchanged.
    cfg, task, model, opt = _setup(optimizer="sgd", lr=1e-12, eval_every=1, patience=2, epochs=5)
    state = train(model, opt, task, cfg)
    assert state.status == "early_stopped"
    assert state.step == state.best_step + 2


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg, task, model, opt = _setup(checkpoint_every=2, epochs=3)

    def poison(event):
        if event["event"] == "step" and event["step"] == 3:
            task.train.y[:] = np.nan

    def save(state, best):
        save_checkpoint(tmp_path, model, opt, state, cfg, task.stats, is_best=best)

    with pytest.raises(
        TrainingDiverged, match="loss became nan at step 4 .*checkpoints written before it are kept"
    ):
        train(model, opt, task, cfg, callback=poison, save=save)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.loop.step == 2
    assert all(np.isfinite(np.array(v)).all() for _, v in tree_flatten(ckpt.model.parameters()))


def test_should_stop_saves_and_returns_interrupted(tmp_path):
    cfg, task, model, opt = _setup()
    saved = []
    state = train(
        model, opt, task, cfg, save=lambda s, b: saved.append(s.step), should_stop=lambda: True
    )
    assert state.status == "interrupted" and state.step == 1 and saved[-1] == 1


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, compiled):
    values = {**TINY, "compile": compiled, "epochs": 2, "dropout": 0.1, "runs_dir": str(tmp_path), "plots": False,
              "eval_every": 4, "checkpoint_every": 3}  # fmt: skip
    full = run_training(resolve_config({}, {**values, "name": "full"}))
    full_losses = [r["loss"] for r in _records(full.run_dir) if r["event"] == "train"]
    assert full.state.step == 16

    steps = []
    part = run_training(
        resolve_config({}, {**values, "name": "part"}),
        callbacks=[lambda e: e["event"] == "step" and steps.append(e["step"])],
        should_stop=lambda: bool(steps) and steps[-1] >= 5,  # Ctrl-C in the middle of epoch 1
    )
    assert part.state.status == "interrupted" and part.state.step == 5
    resumed = run_training(load_checkpoint(part.run_dir).cfg, resume=load_checkpoint(part.run_dir))
    assert resumed.state.step == 16 and resumed.state.status == "completed"
    part_losses = [r["loss"] for r in _records(part.run_dir) if r["event"] == "train"]
    assert part_losses == full_losses  # steps 1-5 from the first part, 6-16 after the resume
    a = dict(tree_flatten(load_checkpoint(full.run_dir).model.parameters()))
    b = dict(tree_flatten(load_checkpoint(part.run_dir).model.parameters()))
    assert all(np.array_equal(np.array(a[k]), np.array(b[k])) for k in a)


def _records(run_dir):
    from mlx_tcn.train.visualize import read_metrics

    return read_metrics(run_dir / "metrics.jsonl")


def test_loop_state_round_trip():
    s = LoopState(step=3, epoch=1, batch_in_epoch=2, best_metric=0.5, best_step=2, bad_evals=1)
    assert LoopState.from_dict(s.to_dict()) == s


def test_short_epochs_are_evaluated_every_eval_every_steps_not_after_each_epoch():
    # 2 steps per epoch, eval_every 4: evaluations at 4 and 8, and at the end of the last epoch
    # (10). A tiny data set (one step per epoch) is otherwise evaluated after every step.
    cfg, task, model, opt = _setup(n_train=64, epochs=5, eval_every=4)
    events = []
    train(model, opt, task, cfg, callback=events.append)
    assert [e["step"] for e in events if e["event"] == "eval"] == [4, 8, 10]
    # epochs at least eval_every steps long still end with an evaluation: 8 steps, every 3
    cfg, task, model, opt = _setup(n_train=256, epochs=2, eval_every=3)
    events = []
    train(model, opt, task, cfg, callback=events.append)
    assert [e["step"] for e in events if e["event"] == "eval"] == [3, 6, 8, 9, 12, 15, 16]


def test_eval_every_zero_evaluates_at_each_epoch_end_only():
    cfg, task, model, opt = _setup(n_train=64, epochs=3, eval_every=0, checkpoint_every=1)
    events = []
    state = train(model, opt, task, cfg, callback=events.append)
    assert state.step == 6 and [e["step"] for e in events if e["event"] == "eval"] == [2, 4, 6]


def test_best_is_the_lowest_loss_or_the_latest_highest_accuracy():
    from mlx_tcn.train.loop import _improves

    assert _improves("loss", {"loss": 0.5}, None)
    assert _improves("loss", {"loss": 0.5}, 0.6) and not _improves("loss", {"loss": 0.6}, 0.6)
    # accuracy: a tie goes to the later evaluation (a small validation set scores 1.0 early)
    assert _improves("accuracy", {"accuracy": 1.0, "loss": 0.3}, 1.0)
    assert not _improves("accuracy", {"accuracy": 0.9, "loss": 0.01}, 1.0)


def test_selecting_on_accuracy_keeps_training_through_ties():
    # copy memory at chance: validation accuracy stays constant, so with select="accuracy"
    # every evaluation is the best (no early stop), with "loss" only improvements are.
    events = {}
    for select in ("loss", "accuracy"):
        cfg, task, model, opt = _setup(task="copy_memory", seq_len=5, memory_length=2, n_train=64,
                                       optimizer="sgd", lr=1e-12, eval_every=1, patience=2,
                                       epochs=3, select=select)  # fmt: skip
        events[select] = []
        state = train(model, opt, task, cfg, callback=events[select].append)
        events[select].append(state.status)
    assert events["accuracy"][-1] == "completed"
    assert all(
        e["best"] for e in events["accuracy"] if isinstance(e, dict) and e["event"] == "eval"
    )
    assert events["accuracy"][-2]["best_val_accuracy"] is not None
    with pytest.raises(
        ValueError, match="select='accuracy' needs a task with an accuracy, not 'adding'"
    ):
        resolve_config({}, {"select": "accuracy"})


class _ScriptedWorld(World):
    """One process whose validation losses are given in advance, one per evaluation."""

    def __init__(self, losses):
        self.losses = list(losses)

    def evaluate(self, model, kind, batches, max_batches):
        return {"loss": self.losses.pop(0)}


def test_the_untrained_model_competes_for_the_best_but_does_not_stop_training():
    # evaluate_first: step 0 is evaluated, checkpointed and can stay the best; early stopping
    # counts from the trained model's own best, so a run that starts worse than the untrained
    # model (an anchored forecast's baseline) and keeps improving is not stopped for that.
    cfg, task, model, opt = _setup(eval_every=1, patience=2, epochs=1, max_steps=8)
    events, saved = [], []
    world = _ScriptedWorld([0.5, 0.9, 0.8, 0.7, 0.95, 0.96, 0.1, 0.1])
    state = train(model, opt, task, cfg, callback=events.append, world=world,
                  save=lambda st, best: saved.append((st.step, best)), evaluate_first=True)  # fmt: skip
    evals = [(e["step"], e["best"]) for e in events if e["event"] == "eval"]
    # 0.9, 0.8, 0.7: training improves on itself (not on step 0); 0.95, 0.96: two without
    # improvement, so it stops at step 5, keeping step 0 as the best
    assert evals == [(0, True), (1, False), (2, False), (3, False), (4, False), (5, False)]
    assert state.status == "early_stopped" and state.step == 5
    assert (state.best_step, state.best_metric, state.trained_best) == (0, 0.5, 0.7)
    assert saved[0] == (0, True)  # the untrained model's checkpoint, marked best
    # without evaluate_first: no step-0 evaluation, the first one is the best
    cfg, task, model, opt = _setup(eval_every=1, patience=2, epochs=1, max_steps=3)
    events = []
    world = _ScriptedWorld([0.9, 0.8, 0.85])
    state = train(model, opt, task, cfg, callback=events.append, world=world)
    assert [(e["step"], e["best"]) for e in events if e["event"] == "eval"] == [
        (1, True), (2, True), (3, False)]  # fmt: skip
    assert state.best_step == 2 == state.step - 1


def test_loop_states_saved_before_trained_best_count_their_best_as_trained():
    old = LoopState(step=9, best_metric=0.4, best_step=6, bad_evals=1).to_dict()
    del old["trained_best"]
    assert LoopState.from_dict(old).trained_best == 0.4


@pytest.mark.parametrize("shuffle", [False, True])
def test_shuffle_off_trains_on_the_samples_in_order_every_epoch(monkeypatch, shuffle):
    # shuffle=False is the paper's reference loop: every epoch the same order, the last
    # partial batch (100 = 3 x 32 + 4) included; shuffle=True draws an order per epoch and
    # drops it
    import mlx_tcn.train.loop as loop

    cfg, task, model, opt = _setup(n_train=100, epochs=2, shuffle=shuffle)
    seen: list[list[float]] = []
    real = loop.iterate_batches

    def recording(split, *args, **kwargs):
        for x, y, mask in real(split, *args, **kwargs):
            if split is task.train:  # not the evaluations' batches
                seen.append(np.array(y).reshape(len(y), -1)[:, 0].tolist())
            yield x, y, mask

    monkeypatch.setattr(loop, "iterate_batches", recording)
    state = train(model, opt, task, cfg)
    targets = np.array(task.train.y).reshape(100, -1)[:, 0].tolist()
    per_epoch = 4 if not shuffle else 3
    assert state.step == total_steps(cfg, 100) == 2 * per_epoch
    epochs = [sum(seen[e * per_epoch : (e + 1) * per_epoch], []) for e in range(2)]
    if shuffle:
        assert [len(b) for b in seen] == [32] * 6
        assert epochs[0] != epochs[1] and sorted(epochs[0]) != epochs[0]
    else:
        assert [len(b) for b in seen] == [32, 32, 32, 4] * 2
        assert epochs[0] == epochs[1] == targets
