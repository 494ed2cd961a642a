"""Anchored forecasts: every step is a correction of a baseline's forecast (persistence, or
seasonal naive where it beats persistence on the training part), the head starts at zero so
the untrained model *is* that baseline, and the run evaluates it before its first step so
that restoring the best weights can keep it."""

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlx_tcn.cli import main
from mlx_tcn.train import build_task, resolve_config
from mlx_tcn.train.budget import training_budget
from mlx_tcn.train.checkpoint import load_checkpoint
from mlx_tcn.train.losses import evaluate_split
from mlx_tcn.train.model import build_model
from mlx_tcn.train.predict import predict_split
from mlx_tcn.train.split import iterate_batches
from mlx_tcn.train.window_norm import (
    SEASONAL_ANCHOR_MAX_SEASONS,
    SEASONAL_ANCHOR_SHARE,
    choose_anchor,
)

FIXTURES = Path(__file__).parent / "fixtures" / "forecast_before_anchors"


def _write(path, load):
    """A CSV with the target ``load`` and a second input column."""
    rows = ["load,temp"] + [f"{v:.6f},{math.cos(i / 7):.6f}" for i, v in enumerate(load)]
    path.write_text("\n".join(rows) + "\n")
    return np.array([float(r.split(",")[0]) for r in rows[1:]])  # as written


def _seasonal(n=120, season=4, noise=0.1, seed=0):
    """A rising series with a cycle of ``season`` rows and some noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 0.05 * t + 2 * np.sin(2 * np.pi * t / season + 0.3) + noise * rng.normal(size=n)


def _random_walk(n=120, seed=0):
    return np.cumsum(np.random.default_rng(seed).normal(size=n))


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _cfg(data, **values):
    base = {"task": "forecast", "data_path": str(data), "seq_len": 8, "levels": 2, "hidden": 8,
            "auto": [], "compile": False, "plots": False}  # fmt: skip
    return resolve_config({}, {**base, **values})


@pytest.mark.parametrize(
    ("series", "values", "anchor"),
    [
        ("walk", {"horizon": 1}, "persistence"),
        ("walk", {"horizon": 3}, "persistence"),
        ("seasonal", {"horizon": 1}, "seasonal_naive"),
        ("seasonal", {"horizon": 6}, "seasonal_naive"),  # steps 5 and 6 look two seasons back
        ("seasonal", {"horizon": 3, "anchor": "persistence"}, "persistence"),
    ],
)
def test_a_zero_output_model_forecasts_the_anchor_exactly(tmp_path, series, values, anchor):
    # Before: a zero output was persistence, but the head did not start at zero, and a
    # seasonal series could only be learnt as changes from the last value.
    y = _write(tmp_path / "s.csv", _seasonal() if series == "seasonal" else _random_walk())
    cfg = _cfg(tmp_path / "s.csv", target_columns=["load"], **values)
    task = build_task(cfg)
    assert task.anchor == task.stats["anchor"] == anchor
    model = build_model(cfg, task.num_inputs, task.num_outputs, zero_output=True)
    pred, target = predict_split(model, task, task.val)
    # the anchor's forecast from the raw series, computed here independently: the step-h
    # forecast after a window ending at row e is y[e] (persistence) or the latest value of
    # the same phase known at e, y[e + h - 4 ceil(h / 4)] (seasonal naive, season 4)
    steps = np.arange(1, cfg.horizon + 1)
    lag = steps if anchor == "persistence" else 4 * np.ceil(steps / 4).astype(int)
    expected = y[task.val.rows[:, None] + steps - lag].astype(np.float32)  # as the file is read
    np.testing.assert_array_equal(pred, expected)
    np.testing.assert_array_equal(pred, task.val_forecasts[anchor])
    np.testing.assert_allclose(target, y[task.val.rows[:, None] + steps], rtol=1e-6)
    # ... and its validation loss is the baseline's, in the same units
    batches = iterate_batches(task.val, 64, shuffle=False, drop_last=False)
    loss = evaluate_split(model, task.kind, batches)["loss"]
    assert loss == pytest.approx(task.baselines[anchor], rel=1e-5)


def test_each_step_is_scaled_by_its_anchors_typical_error(tmp_path):
    y = _write(tmp_path / "s.csv", _seasonal())
    task = build_task(_cfg(tmp_path / "s.csv", target_columns=["load"], horizon=6))
    train = y[:96]  # the training part: 80% of 120 rows
    # seasonal naive's error at step h is a change over 4 ceil(h / 4) rows: 4 for steps 1-4,
    # 8 for steps 5-6
    s4, s8 = np.std(train[4:] - train[:-4]), np.std(train[8:] - train[:-8])
    np.testing.assert_allclose(task.stats["y_scale"], [[s4]] * 4 + [[s8]] * 2, rtol=1e-5)
    # the targets: each step's difference from the anchor, in those units
    e = int(task.train.rows[0])
    got = task.train.y[0]
    want = [(y[e + h] - y[e + h - (4 if h <= 4 else 8)]) / (s4 if h <= 4 else s8) for h in
            range(1, 7)]  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_the_anchor_is_chosen_on_the_training_part_only(tmp_path):
    # The same training part (the first 96 rows) with two different validation parts: the
    # same anchor and scales, whatever the validation part holds.
    train = _seasonal(96)
    for name, tail in (("walk", train[-1] + _random_walk(24, seed=1)),
                       ("flat", np.full(24, train[-1]))):  # fmt: skip
        _write(tmp_path / f"{name}.csv", np.concatenate([train, tail]))
    walk = build_task(_cfg(tmp_path / "walk.csv", target_columns=["load"], horizon=2))
    flat = build_task(_cfg(tmp_path / "flat.csv", target_columns=["load"], horizon=2))
    assert walk.stats["anchor"] == flat.stats["anchor"] == "seasonal_naive"
    assert walk.stats["y_scale"] == flat.stats["y_scale"]
    # on the flat validation part persistence is the better baseline (exact), but the choice
    # was not made there
    assert flat.baselines["persistence"] < 1e-9 < flat.baselines["seasonal_naive"]
    # the other way round: a random walk in training, a clean cycle in validation (half of
    # the file), the season given: persistence, which beats seasonal naive on the training part
    walk = _random_walk(96)
    cycle = walk[-1] + 3 * np.sin(2 * np.pi * np.arange(96) / 4 + 0.3)
    _write(tmp_path / "wc.csv", np.concatenate([walk, cycle]))
    cfg = _cfg(tmp_path / "wc.csv", target_columns=["load"], season=4, val_fraction=0.5)
    task = build_task(cfg)
    assert task.stats["anchor"] == "persistence"
    assert task.baselines["seasonal_naive"] < 0.1 * task.baselines["persistence"]


def _share(y, season, seq_len=12):
    """Seasonal naive's MSE over persistence's, one step ahead, over the windows."""
    ends = np.arange(seq_len - 1, len(y) - 1)
    return np.mean((y[ends + 1] - y[ends + 1 - season]) ** 2) / np.mean(
        (y[ends + 1] - y[ends]) ** 2
    )


def test_a_seasonal_anchor_needs_a_clear_win_and_few_seasons():
    # Noise plus a cycle of 12 rows: the larger the cycle, the better seasonal naive is.
    def series(amplitude, n):
        t = np.arange(n)
        return amplitude * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(size=n)

    # a small cycle, 20 seasons: seasonal naive a little better, not clearly: persistence
    faint = series(1.6, 240)
    assert SEASONAL_ANCHOR_SHARE < _share(faint, 12) < 1
    assert choose_anchor(faint[:, None], 12, [1], 12) == "persistence"
    # a large one: clearly better, seasonal naive (quarterly inflation was such a case)
    strong = series(4.0, 240)
    assert _share(strong, 12) < 0.6
    assert choose_anchor(strong[:, None], 12, [1], 12) == "seasonal_naive"
    assert choose_anchor(strong[:, None], 12, [1, 2, 3], 12) == "seasonal_naive"
    # ... but not with more seasons than SEASONAL_ANCHOR_MAX_SEASONS in training, where the
    # model learns the cycle from persistence-relative targets
    long = series(4.0, 12 * SEASONAL_ANCHOR_MAX_SEASONS + 1)
    assert _share(long, 12) < 0.6
    assert choose_anchor(long[:, None], 12, [1], 12) == "persistence"
    # and never a season the window does not hold
    assert choose_anchor(strong[:, None], 11, [1], 12) == "persistence"


def test_a_season_longer_than_the_window_is_not_an_anchor(tmp_path):
    # The anchor must come from the window itself (predict cuts windows of seq_len rows).
    _write(tmp_path / "s.csv", _seasonal(season=12))
    auto = build_task(_cfg(tmp_path / "s.csv", target_columns=["load"], season=12))
    assert auto.stats["anchor"] == "persistence"
    assert auto.baselines["seasonal_naive"] < auto.baselines["persistence"]  # still scored
    cfg = _cfg(tmp_path / "s.csv", target_columns=["load"], season=12, anchor="seasonal_naive")
    with pytest.raises(ValueError, match=r"anchor='seasonal_naive' needs a season of at most "
                                         r"seq_len=8 steps .*the season is 12 steps"):  # fmt: skip
        build_task(cfg)
    with pytest.raises(ValueError, match="anchor must be one of auto, persistence, seasonal_naive"):
        _cfg(tmp_path / "s.csv", anchor="seasonal")


def _train(tmp_path, data, *extra):
    argv = ["train", "--no-compile", "--task", "forecast", "--data-path", str(data),
            "--target-columns", "load", "--seq-len", "8", "--levels", "2", "--hidden", "8",
            "--auto", "none", "--epochs", "100", "--restore-best", "--no-plots", "--runs-dir",
            str(tmp_path / "runs"), "--name", "fc", *extra]  # fmt: skip
    assert main(argv) == 0
    return tmp_path / "runs" / "fc"


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_that_never_beats_the_baseline_keeps_the_baseline(tmp_path, capsys):
    # A random walk, then a flat validation part at its last value: persistence is exact
    # there (loss 0), so any trained output loses to it. Before, the run had no step-0
    # evaluation and kept its best *trained* weights, worse than doing nothing; now it keeps
    # the untrained model, which is persistence, and says so.
    walk = _random_walk(96)
    y = _write(tmp_path / "s.csv", np.concatenate([walk, np.full(24, walk[-1])]))
    run = _train(tmp_path, tmp_path / "s.csv", "--horizon", "2", "--max-steps", "60",
                 "--eval-every", "10", "--patience", "2", "--lr", "0.01")  # fmt: skip
    out = capsys.readouterr().out
    evals = [r for r in _records(run) if r["event"] == "eval"]
    assert evals[0]["step"] == 0 and evals[0]["val_loss"] == 0.0 and evals[0]["best"]
    # early stopping counts from training's own best (step 10 or later), not from step 0: two
    # evaluations without training improving on itself
    steps = [r["step"] for r in evals]
    assert steps[:2] == [0, 10] and steps[-1] < 60
    assert all(r["val_loss"] > 0 and not r["best"] for r in evals[1:])
    assert load_checkpoint(run, "best").loop.step == 0
    assert "the untrained model's (step 0), restored at the end: exactly the persistence" in out
    assert "persistence          loss 0: tied (the model is this baseline" in out
    assert "beaten" not in out.split("persistence")[1].split("\n")[0]
    (horizon,) = [r for r in _records(run) if r["event"] == "horizon"]
    assert horizon["overall_mse"]["model"] == horizon["overall_mse"]["persistence"]
    # predict continues the series with the last value, exactly
    assert main(["predict", str(run), "--input", str(tmp_path / "s.csv"), "--output",
                 str(tmp_path / "p.csv")]) == 0  # fmt: skip
    tail = _read_csv(tmp_path / "p.csv")[-2:]
    assert [r["row"] for r in tail] == ["120", "121"]
    assert [r["pred_load"] for r in tail] == [f"{np.float32(y[-1]):.6g}"] * 2  # as written
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert "tied (the model is this baseline" in capsys.readouterr().out


def test_predict_continues_a_new_series_with_its_own_seasonal_anchor(tmp_path, capsys):
    # A cycle of 4 rows, exactly: seasonal naive is chosen, every training target is 0, the
    # model stays at zero, and its forecasts are seasonal naive's. On a new file, the
    # forecasts past its end repeat *that file's* last values of the same phase (steps 5 and
    # 6: two seasons back, the latest known when the forecast is made).
    _write(tmp_path / "s.csv", np.tile([0.0, 2.0, 1.0, 3.0], 25))
    run = _train(tmp_path, tmp_path / "s.csv", "--horizon", "6", "--max-steps", "20",
                 "--eval-every", "10")  # fmt: skip
    assert load_checkpoint(run, "best").stats["anchor"] == "seasonal_naive"
    out = capsys.readouterr().out
    assert "seasonal naive       loss 0: tied (the model is this baseline" in out
    assert "anchor               seasonal naive (the model forecasts a correction of its" in out
    new = _write(tmp_path / "new.csv", np.tile([5.0, -1.0, 7.0, 2.0], 6) + 0.1 * np.arange(24))
    assert main(["predict", str(run), "--input", str(tmp_path / "new.csv"), "--output",
                 str(tmp_path / "p.csv")]) == 0  # fmt: skip
    rows = _read_csv(tmp_path / "p.csv")
    tail = rows[-6:]
    assert [int(r["row"]) for r in tail] == list(range(24, 30))
    want = [new[23 + h - 4 * math.ceil(h / 4)] for h in range(1, 7)]  # rows 20-23, then 20, 21
    assert [r["pred_load"] for r in tail] == [f"{np.float32(v):.6g}" for v in want]
    # and inside the file, every window's forecast is seasonal naive's from that window
    for r in rows:
        e, h = int(r["window_end"]), int(r["step"])
        assert r["pred_load"] == f"{np.float32(new[e + h - 4 * math.ceil(h / 4)]):.6g}"


def test_a_resumed_run_does_not_evaluate_step_zero_again(tmp_path):
    _write(tmp_path / "s.csv", _seasonal())
    run = _train(tmp_path, tmp_path / "s.csv", "--max-steps", "6", "--eval-every", "3", "--quiet")
    assert main(["train", "--resume", str(run), "--max-steps", "12", "--quiet"]) == 0
    assert [r["step"] for r in _records(run) if r["event"] == "eval"] == [0, 3, 6, 9, 12]


def test_runs_saved_before_anchors_predict_and_evaluate_as_before(tmp_path, monkeypatch, capsys):
    # Saved by the code before anchors (make.py): every step relative to the last value, on
    # a series where a new run would anchor on seasonal naive. It keeps its meaning.
    shutil.copytree(FIXTURES, tmp_path / "fx")
    monkeypatch.chdir(tmp_path / "fx")
    assert "anchor" not in load_checkpoint("saved_runs/h3").stats
    assert main(["predict", "saved_runs/h3", "--input", "series.csv", "--output", "new.csv"]) == 0
    old, new = _read_csv("old_predict.csv"), _read_csv("new.csv")
    assert len(new) == len(old) == (90 - 8 + 1) * 3
    assert new == old
    capsys.readouterr()
    assert main(["evaluate", "saved_runs/h3", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = json.loads(Path("old_evaluate.json").read_text())
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    assert got["horizon"]["overall_loss"] == pytest.approx(want["horizon"]["overall_loss"])
    # a new run on the same file anchors on seasonal naive
    cfg = resolve_config({}, {"task": "forecast", "data_path": "series.csv", "seq_len": 8,
                              "horizon": 3, "target_columns": ["load"]})  # fmt: skip
    assert build_task(cfg).stats["anchor"] == "seasonal_naive"
    # and training goes on from the old run as it was
    assert main(["train", "--resume", "saved_runs/h3", "--max-steps", "5", "--quiet"]) == 0
    resumed = load_checkpoint("saved_runs/h3", "latest")
    assert resumed.loop.step == 5 and "anchor" not in resumed.stats


def test_the_step_zero_evaluation_is_paid_from_the_compute_budget():
    # 40 evaluations of 100 windows and the steps in 1e10 multiply-adds, at 1e6 a window:
    # (1e10 - 40 * 1e8) / (2 * 32 * 1e6) = 93.75 steps; one evaluation more leaves 92.19.
    kw = dict(sample_cost=1e6, n_val=100, compute=1e10)
    assert training_budget(10_000, 32, **kw).max_steps == 93
    assert training_budget(10_000, 32, evaluate_first=True, **kw).max_steps == 92
