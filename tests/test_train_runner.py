"""A run end to end under faults: concurrent runs with one name, kills at every checkpoint
write, and what a resume makes of them."""

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from mlx_tcn.train import load_checkpoint, resolve_config, run_training
from mlx_tcn.train import runner as runner_module
from mlx_tcn.train.runner import claim_run_dir, resume_config

# --------------------------------------------------------------------------- the run folder


def test_claim_takes_the_name_then_numbers_and_skips_what_is_not_free(tmp_path):
    base = tmp_path / "runs" / "adding"
    assert claim_run_dir(base, {"a": 1}) == base  # creates runs/ too
    assert json.loads((base / "train_config.json").read_text()) == {"a": 1}
    (tmp_path / "runs" / "adding-2").write_text("a file, not a run")
    (tmp_path / "runs" / "adding-3").mkdir()  # empty: free to use
    assert claim_run_dir(base, {"a": 2}) == tmp_path / "runs" / "adding-3"
    assert claim_run_dir(base, {"a": 3}) == tmp_path / "runs" / "adding-4"
    assert json.loads((base / "train_config.json").read_text()) == {"a": 1}  # untouched


def test_threads_claiming_one_name_at_once_get_one_folder_each(tmp_path):
    base, n = tmp_path / "adding", 8
    barrier, got = threading.Barrier(n), [None] * n

    def claim(i):
        barrier.wait()
        got[i] = claim_run_dir(base, {"who": i})

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == n
    assert sorted(p.name for p in got) == sorted(["adding"] + [f"adding-{k}" for k in range(2, 9)])
    for i, path in enumerate(got):  # each folder holds the config of the thread that owns it
        assert json.loads((path / "train_config.json").read_text()) == {"who": i}


CLAIMER = """
import pathlib, sys, time
from mlx_tcn.train.runner import claim_run_dir
root, me = pathlib.Path(sys.argv[1]), int(sys.argv[2])
(root / f"ready-{me}").touch()
while not (root / "go").exists():
    time.sleep(0.001)
print(claim_run_dir(root / "runs" / "adding", {"who": me}))
"""


def test_processes_claiming_one_name_at_once_get_one_folder_each(tmp_path):
    n = 4
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path), str(i)],
                              stdout=subprocess.PIPE, text=True) for i in range(n)]  # fmt: skip
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < n and time.time() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()  # all imported: release them together
    got = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(got)) == n
    for i, path in enumerate(got):
        assert json.loads((tmp_path / "runs" / path / "train_config.json").read_text()) == {
            "who": i
        }


# --------------------------------------------------------------------------- kills and resume

# 4 steps per epoch; evaluations at 3 (eval_every), 4 (epoch end), 6 and 7 (max_steps: the final
# one); checkpoints after each evaluation, at step 4 (checkpoint_every) and at the end.
SMALL = dict(seq_len=10, levels=2, hidden=8, kernel_size=3, n_train=64, n_val=16, batch_size=16,
             epochs=2, max_steps=7, eval_every=3, checkpoint_every=4, log_every=1, compile=False,
             plots=False)  # fmt: skip
# The checkpoint writes of that run, in order: (step, what is being saved).
SAVES = ["3 eval", "4 periodic", "4 epoch-end eval", "6 eval", "7 final eval", "7 end"]


class Killed(BaseException):
    """Stands for kill -9: nothing of the run's own clean-up code handles it."""


def _log(run_dir):
    """The metrics log without timings: (event, step, loss) for every record."""
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.append((r["event"], r.get("step"), r.get("loss", r.get("val_loss"))))
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The metrics log of the run, uninterrupted."""
    runs = tmp_path_factory.mktemp("ref")
    result = run_training(resolve_config({}, {**SMALL, "runs_dir": str(runs)}))
    log = _log(result.run_dir)
    assert [r[:2] for r in log if r[0] == "eval"] == [("eval", s) for s in (3, 4, 6, 7)]
    return log


def _resume(run_dir):
    ck = load_checkpoint(run_dir)
    return run_training(resume_config(ck, {}, {}), resume=ck)


# Every write, killed just before and just after (before the first there is nothing to resume).
KILLS = [
    (k, when) for k in range(len(SAVES)) for when in ("before", "after") if k or when == "after"
]


@pytest.mark.parametrize(("kill_at", "when"), KILLS, ids=[f"{w} {SAVES[k]}" for k, w in KILLS])
def test_a_kill_at_any_checkpoint_write_then_resume_logs_every_record_once(
    tmp_path, monkeypatch, reference, kill_at, when
):
    # Before: a kill between the epoch-end evaluation's record and its checkpoint (which only
    # rewrites trainer_state.json of the step already saved) logged that evaluation twice.
    calls = []
    real_save = runner_module.save_checkpoint

    def save(*args, **kwargs):
        calls.append(args[3].step)
        if len(calls) == kill_at + 1 and when == "before":
            raise Killed
        path = real_save(*args, **kwargs)
        if len(calls) == kill_at + 1:
            raise Killed
        return path

    monkeypatch.setattr(runner_module, "save_checkpoint", save)
    cfg = resolve_config({}, {**SMALL, "runs_dir": str(tmp_path)})
    with pytest.raises(Killed):
        run_training(cfg)
    assert calls[-1] == int(SAVES[kill_at].split()[0])  # the kill came where it was meant to
    monkeypatch.undo()
    result = _resume(cfg.run_dir)
    assert result.state.step == 7 and result.state.status == "max_steps"
    assert _log(cfg.run_dir) == reference


def test_resuming_a_finished_run_logs_nothing_twice(tmp_path, reference):
    # Before: resuming a run that had stopped at max_steps evaluated (and logged) again.
    cfg = resolve_config({}, {**SMALL, "runs_dir": str(tmp_path)})
    run_training(cfg)
    for _ in range(2):
        _resume(cfg.run_dir)
        assert _log(cfg.run_dir) == reference


def test_resuming_from_an_older_checkpoint_replaces_the_later_history(tmp_path, reference):
    # The way out of a damaged latest checkpoint: pass an older folder. The later folders would
    # otherwise pass for the resumed run's own (a complete folder of the same step only gets
    # its trainer state rewritten; index.json's best could point past the resume).
    cfg = resolve_config({}, {**SMALL, "runs_dir": str(tmp_path)})
    run_training(cfg)
    root = cfg.run_dir / "checkpoints"
    (root / "step-00000007" / "model.safetensors").unlink()  # damaged latest
    ck = load_checkpoint(root / "step-00000006")  # the older of the two recent ones kept
    run_training(resume_config(ck, {}, {}), resume=ck)
    assert _log(cfg.run_dir) == reference
    best = min((r for r in reference if r[0] == "eval"), key=lambda r: r[2])[1]
    index = json.loads((root / "index.json").read_text())
    assert index == {"latest": "step-00000007", "best": f"step-{best:08d}"}
    assert sorted(p.name for p in root.glob("step-*")) == sorted(
        {"step-00000006", "step-00000007", f"step-{best:08d}"}
    )
    assert load_checkpoint(cfg.run_dir).loop.step == 7
    # the replaced history is moved aside, not deleted: no work is lost
    aside = root / "superseded-1"
    assert (aside / "step-00000007" / "optimizer.safetensors").is_file()
    assert not (aside / "step-00000007" / "model.safetensors").exists()  # damaged as it was


def _trend_run(tmp_path, relative):
    """Validation MSE (data units) of a short run on a rising seasonal series, and the task."""
    from mlx_tcn.train.predict import load_for_inference, predict

    t = np.arange(400)
    noise = 0.05 * np.random.default_rng(0).normal(size=t.size)
    np.savez(tmp_path / "trend.npz", y=0.2 * t + np.sin(2 * np.pi * t / 12) + noise)
    cfg = resolve_config({}, {"task": "forecast", "data_path": str(tmp_path / "trend.npz"),
                              "seq_len": 24, "hidden": 16, "max_steps": 300, "compile": False,
                              "relative": relative, "plots": False, "runs_dir": str(tmp_path),
                              "name": f"relative-{relative}"})  # fmt: skip
    result = run_training(cfg)
    ckpt, task = load_for_inference(result.run_dir)
    pred, target = predict(ckpt, task)
    baselines = {k: float(np.mean((v - target) ** 2)) for k, v in task.val_forecasts.items()}
    return float(np.mean((pred - target) ** 2)), baselines


def test_window_relative_forecasts_follow_a_trend_that_standardisation_cannot(tmp_path):
    # The validation part (the last fifth) lies above everything seen in training: with global
    # standardisation the ReLU network cannot extrapolate and loses to persistence; relative to
    # each window it predicts the change, and beats persistence and seasonal naive.
    relative, baselines = _trend_run(tmp_path, True)
    standardised, _ = _trend_run(tmp_path, False)
    assert set(baselines) == {"persistence", "seasonal_naive"}
    assert relative < min(baselines.values()) < standardised


def test_restore_best_reports_and_keeps_the_best_checkpoints_weights(tmp_path, monkeypatch):
    # Only the first evaluation counts as the best; the run goes on for 3 more steps. With
    # restore_best the result describes step 1's weights, which the best checkpoint holds.
    from mlx_tcn.train import loop

    monkeypatch.setattr(loop, "_improves", lambda select, metrics, best: best is None)
    cfg = resolve_config({}, {**SMALL, "max_steps": 4, "eval_every": 1, "restore_best": True,
                              "runs_dir": str(tmp_path)})  # fmt: skip
    result = run_training(cfg)
    evals = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    evals = [e for e in evals if e["event"] == "eval"]
    assert result.state.best_step == 1 and result.restored_step == 1 and result.state.step == 4
    assert result.last["val_loss"] == evals[0]["val_loss"] != evals[-1]["val_loss"]
    best = load_checkpoint(result.run_dir, "best")
    assert best.loop.step == 1


# --------------------------------------------------------------------------- log windows

# Records every 3 steps, checkpoints every 2: the first checkpoint (step 2) falls inside a
# log window.
WINDOWED = {**SMALL, "log_every": 3, "checkpoint_every": 2, "eval_every": 0}


def test_a_resume_inside_a_log_window_logs_the_same_averages(tmp_path, monkeypatch):
    # Before: the resumed run averaged only the steps after the checkpoint, so the "train"
    # record at step 3 said the loss of step 3 alone where an unbroken run averages steps 1-3.
    reference = _log(
        run_training(resolve_config({}, {**WINDOWED, "runs_dir": str(tmp_path / "ref")})).run_dir
    )
    assert [r[1] for r in reference if r[0] == "train"] == [3, 6]
    real_save = runner_module.save_checkpoint

    def save(*args, **kwargs):
        real_save(*args, **kwargs)
        raise Killed  # right after the checkpoint of step 2

    monkeypatch.setattr(runner_module, "save_checkpoint", save)
    cfg = resolve_config({}, {**WINDOWED, "runs_dir": str(tmp_path / "cut")})
    with pytest.raises(Killed):
        run_training(cfg)
    monkeypatch.undo()
    assert load_checkpoint(cfg.run_dir).loop.step == 2
    _resume(cfg.run_dir)
    assert _log(cfg.run_dir) == reference
