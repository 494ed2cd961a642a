"""Multi-step forecasts end to end: a trained model's steps, predict's continuation rows,
evaluate on a separate file, and runs saved before multi-step horizons."""

import csv
import json
import math
import shutil
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from mlx_tcn.cli import main
from mlx_tcn.train.checkpoint import load_checkpoint
from mlx_tcn.train.config import resolve_config
from mlx_tcn.train.runner import run_training
from mlx_tcn.train.window_norm import relative_inputs

FIXTURES = Path(__file__).parent / "fixtures" / "forecast_before_horizons"


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _series(path, n=160):
    """A rising series with a cycle of 12 steps, and a second input column."""
    t = np.arange(n)
    load = 0.05 * t + np.sin(2 * np.pi * t / 12)
    rows = ["load,temp"] + [f"{v:.6f},{math.cos(i / 7):.6f}" for i, v in enumerate(load)]
    path.write_text("\n".join(rows) + "\n")
    return load


def _small_run(tmp_path, data, horizon, **extra):
    argv = ["train", "--no-compile", "--task", "forecast", "--data-path", str(data),
            "--target-columns", "load", "--seq-len", "12", "--horizon", str(horizon),
            "--levels", "2", "--hidden", "8", "--max-steps", "6", "--auto", "none",
            "--runs-dir", str(tmp_path / "runs"), "--name", "fc", "--quiet"]  # fmt: skip
    for k, v in extra.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    assert main(argv) == 0
    return tmp_path / "runs" / "fc"


def test_multi_step_run_reports_every_step_and_predict_continues_the_series(tmp_path, capsys):
    load = _series(tmp_path / "s.csv")
    run = _small_run(tmp_path, tmp_path / "s.csv", 3)
    out = capsys.readouterr().out
    assert "forecast (T=12, steps 1-3 ahead)" in out
    assert "by step              model better than persistence on " in out
    assert "validation MSE by step" in out and (run / "horizon.png").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (horizon,) = [r for r in records if r["event"] == "horizon"]
    assert horizon["steps"] == [1, 2, 3] and set(horizon["mse_by_step"]) == {
        "model", "persistence", "seasonal_naive"}  # fmt: skip
    # the model's overall loss by step is the loop's validation loss: one unit for both
    best = min(r["val_loss"] for r in records if r["event"] == "eval")  # restored at the end
    assert horizon["overall_loss"]["model"] == pytest.approx(best, rel=1e-4)

    # predict: one row per window and step; the last window ends at the file's last row
    new = tmp_path / "new.csv"
    new.write_text("\n".join((tmp_path / "s.csv").read_text().splitlines()[:101]) + "\n")
    assert main(["predict", str(run), "--input", str(new), "--output", str(tmp_path / "p.csv"),
                 "--plot", str(tmp_path / "p.png")]) == 0  # fmt: skip
    assert "the last window ends at row 99" in capsys.readouterr().out
    rows = _read_csv(tmp_path / "p.csv")
    assert list(rows[0]) == ["window_end", "step", "row", "pred_load", "target_load"]
    assert len(rows) == (100 - 12 + 1) * 3
    assert [(r["window_end"], r["step"], r["row"]) for r in rows[:3]] == [
        ("11", "1", "12"), ("11", "2", "13"), ("11", "3", "14")]  # fmt: skip
    for r in rows[:-3]:  # targets where the file has them
        if int(r["row"]) < 100:
            assert float(r["target_load"]) == pytest.approx(load[int(r["row"])], abs=1e-5)
    tail = rows[-3:]  # the continuation: rows 100, 101, 102, beyond the file
    assert [(r["window_end"], r["row"], r["target_load"]) for r in tail] == [
        ("99", "100", "nan"), ("99", "101", "nan"), ("99", "102", "nan")]  # fmt: skip
    # ... and its values are the model's three outputs for the file's last window, each times
    # its step's scale, added to its anchor: the cycle of 12 is most of what persistence gets
    # wrong, so seasonal naive, the value of the same phase a season before (rows 88-90)
    ckpt = load_checkpoint(run, "best")
    assert ckpt.stats["anchor"] == "seasonal_naive" and ckpt.stats["season"] == 12
    raw = np.loadtxt(new, delimiter=",", skiprows=1)
    x = relative_inputs(raw[None, -12:], np.asarray(ckpt.stats["x_scale"]))
    ckpt.model.eval()
    out = np.array(ckpt.model(mx.array(x)))[0, -1]
    expected = load[88:91] + out * np.asarray(ckpt.stats["y_scale"])[:, 0]
    got = [float(r["pred_load"]) for r in tail]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_scores_every_window_of_a_separate_file(tmp_path, capsys):
    # Before: a forecast run scored only the last val_fraction of the file it was given.
    _series(tmp_path / "s.csv")
    run = _small_run(tmp_path, tmp_path / "s.csv", 2)
    other = tmp_path / "other.csv"
    t = np.arange(60)
    other.write_text("load,temp\n" + "".join(f"{3 + np.sin(i / 2):.6f},{i / 60:.4f}\n" for i in t))
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data-path", str(other), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["split"] == "test" and got["samples"] == 60 - 12 - 2 + 1
    # the same loss from predict's forecasts of that file: each step's squared error over its
    # squared scale, averaged over the windows whose two targets lie in the file
    assert (
        main(["predict", str(run), "--input", str(other), "--output", str(tmp_path / "p.csv")]) == 0
    )
    rows = [r for r in _read_csv(tmp_path / "p.csv") if r["target_load"] != "nan"]
    scale = np.asarray(load_checkpoint(run, "best").stats["y_scale"])[:, 0]
    err = [((float(r["pred_load"]) - float(r["target_load"])) / scale[int(r["step"]) - 1]) ** 2
           for r in rows if int(r["window_end"]) <= 57]  # fmt: skip
    assert len(err) == 47 * 2
    assert got["loss"] == pytest.approx(np.mean(err), rel=1e-4)
    assert got["horizon"]["overall_loss"]["model"] == pytest.approx(got["loss"], rel=1e-4)
    assert "persistence" in got["horizon"]["overall_loss"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data-path", str(other)]) == 0
    text = capsys.readouterr().out
    assert f"test: all 47 windows of {other}" in text and "persistence" in text


@pytest.mark.parametrize("name", ["h1", "h3"])
def test_runs_saved_before_multi_step_horizons_predict_and_evaluate_as_before(
    tmp_path, monkeypatch, capsys, name
):
    # h1: horizon 1; h3: horizon 3 when it meant the single step 3 ahead (one output). Both
    # keep that meaning: the same forecasts and the same validation loss as the old code's.
    shutil.copytree(FIXTURES, tmp_path / "fx")
    monkeypatch.chdir(tmp_path / "fx")
    run = f"saved_runs/{name}"
    assert main(["predict", run, "--input", "series.csv", "--output", "new.csv"]) == 0
    old, new = _read_csv(f"old_predict_{name}.csv"), _read_csv("new.csv")
    assert len(new) == len(old) == 90 - 8 + 1
    step = 1 if name == "h1" else 3
    assert {r["step"] for r in new} == {str(step)}
    assert [int(r["row"]) - int(r["window_end"]) for r in new] == [step] * len(new)
    assert [r["pred_load"] for r in new] == [r["pred_load"] for r in old]
    assert [r["target_load"] for r in new] == [r["target_load"] for r in old]
    capsys.readouterr()
    assert main(["evaluate", run, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = json.loads(Path(f"old_evaluate_{name}.json").read_text())
    assert got["split"] == "val" and got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    # and training goes on from them
    assert main(["train", "--resume", run, "--max-steps", "5", "--quiet"]) == 0
    assert load_checkpoint(run, "latest").loop.step == 5


def test_a_horizon_longer_than_the_validation_part_is_refused(tmp_path):
    _series(tmp_path / "s.csv", n=60)
    cfg = resolve_config({}, {"task": "forecast", "data_path": str(tmp_path / "s.csv"),
                              "seq_len": 12, "horizon": 13})  # fmt: skip
    with pytest.raises(ValueError, match=r"validation part \(12 rows\) is shorter than the "
                                         r"horizon \(13 steps\)"):  # fmt: skip
        run_training(cfg)
    assert not (tmp_path / "runs").exists()


def test_a_trained_model_forecasts_every_step_of_a_known_series(tmp_path):
    # A rising series with a cycle of 12: each of the 6 steps ahead is a known function of
    # the window. The model beats persistence and seasonal naive at every step.
    t = np.arange(400)
    noise = 0.05 * np.random.default_rng(0).normal(size=t.size)
    np.savez(tmp_path / "trend.npz", y=0.2 * t + np.sin(2 * np.pi * t / 12) + noise)
    cfg = resolve_config({}, {"task": "forecast", "data_path": str(tmp_path / "trend.npz"),
                              "seq_len": 24, "horizon": 6, "hidden": 16, "max_steps": 300,
                              "compile": False, "plots": False, "runs_dir": str(tmp_path)})  # fmt: skip
    result = run_training(cfg)
    assert result.horizon["steps"] == [1, 2, 3, 4, 5, 6]
    assert result.horizon["steps_beaten"] == {"persistence": 6, "seasonal_naive": 6}
    mse = result.horizon["mse_by_step"]
    # the baselines' errors are the data's: persistence misses the cycle's change over h steps
    assert mse["persistence"][0] < mse["persistence"][2]
    assert max(mse["model"]) < 0.5 * min(mse["seasonal_naive"])
