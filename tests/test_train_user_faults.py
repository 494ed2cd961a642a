"""A user's own data under faults: files that moved, options that cannot apply, data that
cannot train. Each failing command leaves no run folder and names what is wrong."""

import math

import numpy as np
import pytest

from mlx_tcn import TCN
from mlx_tcn.cli import main


def _one_line_error(capsys, match):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mlx-tcn: error: ") and "Traceback" not in err[0]
    assert match in err[0], err[0]


def _series(path, n=120):
    rows = ["load,temp"] + [f"{math.sin(i / 3):.5f},{math.cos(i / 7):.5f}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n")


def _forecast(tmp_path, data, *extra):
    argv = ["train", "--no-compile", "--task", "forecast", "--data-path", str(data),
            "--target-columns", "load", "--seq-len", "8", "--levels", "2", "--hidden", "4",
            "--max-steps", "3", "--no-plots", "--quiet", "--runs-dir", str(tmp_path / "runs"),
            "--name", "fc", *extra]  # fmt: skip
    assert main(argv) == 0
    return tmp_path / "runs" / "fc"


def test_predict_on_a_new_file_does_not_need_the_training_file(tmp_path, capsys, monkeypatch):
    # Before: "data file not found: train.csv" once the training file had moved, or when
    # predict ran from another folder than train (the path is stored as given).
    monkeypatch.chdir(tmp_path)
    _series(tmp_path / "train.csv")
    _series(tmp_path / "new.csv", n=40)
    run = _forecast(tmp_path, "train.csv")
    (tmp_path / "train.csv").unlink()
    out = tmp_path / "p.csv"
    assert main(["predict", str(run), "--input", "new.csv", "--output", str(out)]) == 0
    assert "wrote the forecasts of 33 windows" in capsys.readouterr().out  # 40 - 8 + 1
    assert out.read_text().count("\n") == 34


def test_predict_plot_on_a_classifier_is_refused_before_anything_is_written(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(40, 12)) + y[:, None], y=y)
    assert main(["train", "--no-compile", "--task", "classify", "--data-path",
                 str(tmp_path / "c.npz"), "--folds", "1", "--max-steps", "2", "--hidden", "4",
                 "--levels", "2", "--no-plots", "--quiet", "--runs-dir", str(tmp_path / "runs"),
                 "--name", "c"]) == 0  # fmt: skip
    capsys.readouterr()
    for extra in ([], ["--input", str(tmp_path / "c.npz")]):
        argv = ["predict", str(tmp_path / "runs" / "c"), "--output", str(tmp_path / "o.csv")]
        assert main([*argv, *extra, "--plot", str(tmp_path / "p.png")]) != 0
        _one_line_error(capsys, "--plot draws forecasts; this run is not a regression")
        assert not (tmp_path / "o.csv").exists()  # before: written, then the error


def test_more_folds_than_sequences_is_refused_up_front(tmp_path, capsys):
    # Before: the members with a sequence to validate on trained, then "evaluation got no
    # batches", leaving a half-built ensemble behind.
    np.savez(tmp_path / "six.npz", x=np.arange(60.0).reshape(6, 10), y=np.arange(6) % 2)
    argv = ["train", "--task", "classify", "--data-path", str(tmp_path / "six.npz"), "--folds",
            "8", "--max-steps", "2", "--runs-dir", str(tmp_path / "runs"), "--name", "r"]  # fmt: skip
    assert main(argv) != 0
    _one_line_error(capsys, "folds=8 is more than the 6 sequences of")
    assert not (tmp_path / "runs").exists()


def test_too_many_levels_fail_in_the_constructor_not_in_mlx(tmp_path, capsys):
    # Before: MLX's "[flatten] Shape dimension 2147486720 is outside the supported range"
    # at the first step, after the run folder was created.
    with pytest.raises(ValueError, match="more than an MLX array axis holds"):
        TCN(2, [4] * 40)
    _series(tmp_path / "s.csv")
    argv = ["train", "--task", "forecast", "--data-path", str(tmp_path / "s.csv"),
            "--target-columns", "load", "--levels", "40", "--hidden", "4", "--runs-dir",
            str(tmp_path / "runs"), "--name", "r"]  # fmt: skip
    assert main(argv) != 0
    _one_line_error(capsys, "use fewer levels or a dilation_reset")
    assert not (tmp_path / "runs").exists()


def test_evaluate_on_a_too_short_file_names_it(tmp_path, capsys):
    _series(tmp_path / "s.csv")
    run = _forecast(tmp_path, tmp_path / "s.csv")
    _series(tmp_path / "short.csv", n=5)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data-path", str(tmp_path / "short.csv")]) != 0
    _one_line_error(capsys, "short.csv: series of 5 rows is too short for seq_len=8")
