"""The mlx-tcn command line end to end, in a temporary folder."""

import json
import math
import subprocess
import sys

import pytest

from mlx_tcn.cli import main

TINY = ["--no-compile", "--seq-len", "10", "--levels", "2", "--hidden", "8", "--kernel-size", "3", "--n-train", "128",
        "--n-val", "32", "--eval-every", "2", "--quiet"]  # fmt: skip


def _train(tmp_path, *extra):
    return main(["train", "--runs-dir", str(tmp_path / "runs"), *TINY, *extra])


def _one_line_error(capsys, match):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mlx-tcn: error: ") and "Traceback" not in err[0]
    assert match in err[0], err[0]


def test_train_writes_a_complete_run_and_prints_a_summary(tmp_path, capsys):
    assert _train(tmp_path) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "adding"
    assert "summary" in out and "status           completed" in out and "receptive field  13" in out
    assert {p.name for p in run.iterdir()} == {
        "checkpoints",
        "metrics.jsonl",
        "metrics.png",
        "train_config.json",
    }
    assert (run / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    cfg = json.loads((run / "train_config.json").read_text())
    assert cfg["hidden"] == 8 and cfg["task"] == "adding"
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("eval") == 2 and events[-1]["event"] == "end"


def test_existing_runs_are_never_overwritten(tmp_path, capsys):
    assert _train(tmp_path, "--max-steps", "1") == 0
    assert _train(tmp_path, "--max-steps", "1") == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["adding", "adding-2"]


def test_evaluate_predict_summary_and_resume(tmp_path, capsys):
    assert _train(tmp_path, "--max-steps", "2") == 0
    run = tmp_path / "runs" / "adding"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["split"] == "val" and math.isfinite(metrics["loss"])
    assert main(["predict", str(run)]) == 0
    lines = (run / "predictions.csv").read_text().splitlines()
    assert lines[0] == "pred_y0,target_y0" and len(lines) == 33
    assert main(["summary", str(run)]) == 0
    out = capsys.readouterr().out
    assert "network.1 (TemporalBlock)" in out and "receptive field: 13 steps" in out
    assert (
        main(["train", "--resume", str(run), "--epochs", "2", "--max-steps", "none", "--quiet"])
        == 0
    )
    assert "steps            8 (2 epochs done)" in capsys.readouterr().out


def test_summary_from_config_flags(capsys):
    assert main(["summary", "--task", "copy_memory", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    assert "parameters: " in out and "dilation" in out and "network.7" in out


def test_config_file_with_cli_override(tmp_path, capsys):
    (tmp_path / "c.toml").write_text(
        'hidden = 6\nlevels = 1\nseq_len = 5\nmax_steps = 1\nruns_dir = "r"\n'
    )
    assert main(["train", "--no-compile", "--config", str(tmp_path / "c.toml"), "--hidden", "7", "--runs-dir",
                 str(tmp_path / "r"), "--n-train", "64", "--quiet"]) == 0  # fmt: skip
    saved = json.loads((tmp_path / "r" / "adding" / "train_config.json").read_text())
    assert (saved["hidden"], saved["levels"], saved["seq_len"]) == (7, 1, 5)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (
            ["train", "--task", "forecast", "--data-path", "missing.csv"],
            "data file not found: missing.csv",
        ),
        (["train", "--task", "mnist", "--data-path", "nowhere"], "MNIST folder not found: nowhere"),
        (["train", "--task", "mnist"], "needs data_path"),
        (["train", "--batch-size", "0"], "batch_size must be a positive integer"),
        (["evaluate", "no/such/run"], "checkpoint not found: no/such/run"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    _one_line_error(capsys, match)


def test_unknown_key_in_config_file(tmp_path, capsys):
    (tmp_path / "c.json").write_text('{"hiden": 3}')
    assert main(["train", "--config", str(tmp_path / "c.json")]) == 1
    _one_line_error(capsys, "unknown config key(s) in config file: hiden")


def test_corrupted_and_incompatible_checkpoints(tmp_path, capsys):
    assert _train(tmp_path, "--max-steps", "1") == 0
    run = tmp_path / "runs" / "adding"
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--hidden", "9"]) == 1
    _one_line_error(capsys, "trained with hidden=8 (asked 9)")
    (ckpt,) = (run / "checkpoints").glob("step-*")
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 10)
    assert main(["evaluate", str(run)]) == 1
    _one_line_error(capsys, "could not be loaded")
    assert (ckpt / "optimizer.safetensors").exists()  # nothing saved was removed


def test_forecast_end_to_end_with_plots(tmp_path, capsys):
    rows = ["load,temp"] + [f"{math.sin(i / 4):.5f},{math.cos(i / 7):.5f}" for i in range(120)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    argv = ["train", "--no-compile", "--task", "forecast", "--data-path", str(tmp_path / "s.csv"), "--target-columns", "load",
            "--seq-len", "12", "--levels", "2", "--hidden", "8", "--epochs", "2", "--runs-dir",
            str(tmp_path / "runs"), "--name", "fc", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "runs" / "fc"
    assert (run / "predictions.png").read_bytes()[:4] == b"\x89PNG"
    out_csv, plot = tmp_path / "p.csv", tmp_path / "p.png"
    assert main(["predict", str(run), "--input", str(tmp_path / "s.csv"), "--output", str(out_csv),
                 "--plot", str(plot)]) == 0  # fmt: skip
    lines = out_csv.read_text().splitlines()
    assert (
        lines[0] == "window_end,step,row,pred_load,target_load" and len(lines) == 1 + 120 - 12 + 1
    )
    assert lines[1].startswith("11,1,12,")  # the first window ends at row 11, forecasts row 12
    assert lines[-1].startswith("119,1,120,") and lines[-1].endswith(",nan")  # past the end
    assert plot.read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "short.csv").write_text("load,temp\n1,2\n")
    assert main(["predict", str(run), "--input", str(tmp_path / "short.csv")]) == 1
    _one_line_error(capsys, "shorter than the model's window seq_len=12")


def test_info_and_convert_dispatch(capsys, monkeypatch):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "mlx_version" in out and "GFLOP/s" in out
    assert main(["info", "--no-benchmark"]) == 0
    out = capsys.readouterr().out
    assert "mlx_version" in out and "GFLOP/s" not in out
    import mlx_tcn.interop

    seen = []
    monkeypatch.setattr(mlx_tcn.interop, "run_convert", lambda args: seen.append(args) or 0)
    assert main(["convert", "to-pytorch", "m", "-o", "x.pt"]) == 0
    assert [(a.direction, str(a.model_dir), str(a.out)) for a in seen] == [
        ("to-pytorch", "m", "x.pt")
    ]
    with pytest.raises(SystemExit) as exit_:  # one parser: convert's arguments are checked
        main(["convert", "a.pt", "b", "--num-inputs", "3"])
    assert exit_.value.code == 2 and len(seen) == 1


def test_python_dash_m_and_help():
    out = subprocess.run(
        [sys.executable, "-m", "mlx_tcn", "--help"], capture_output=True, text=True, check=True
    )
    for cmd in ("train", "evaluate", "predict", "summary", "info", "convert"):
        assert cmd in out.stdout
    assert main([]) == 2


@pytest.mark.slow  # a real process and a real SIGINT: a few seconds
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    import signal
    import time

    argv = [sys.executable, "-m", "mlx_tcn", "train", "--runs-dir", str(tmp_path), *TINY,
            "--n-train", "100000", "--checkpoint-every", "100000", "--eval-every", "100000"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "adding" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.2)  # wait for the first logged steps
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "mlx-tcn train --resume" in err
    assert "status           interrupted" in out
    ckpt = json.loads((tmp_path / "adding" / "checkpoints" / "index.json").read_text())["latest"]
    state = json.loads(
        (tmp_path / "adding" / "checkpoints" / ckpt / "trainer_state.json").read_text()
    )
    assert state["loop"]["status"] == "interrupted" and state["loop"]["step"] >= 10


def test_ctrl_c_is_caught_before_the_ranks_connect(tmp_path, monkeypatch):
    """A data-parallel rank that the terminal's Ctrl-C reached before its handler was in
    place died of it, and the other ranks then waited for it in their next collective for
    good; so the handler is in place when the ranks connect, and a Ctrl-C from then on only
    asks the run to stop (after its first step, with a checkpoint)."""
    import os
    import signal

    from mlx_tcn.train import distributed

    connect = distributed.connect

    def connect_and_press_ctrl_c(*args, **kwargs):
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        os.kill(os.getpid(), signal.SIGINT)  # handled at once, in this (the main) thread
        return connect(*args, **kwargs)

    monkeypatch.setattr(distributed, "connect", connect_and_press_ctrl_c)
    argv = ["train", "--runs-dir", str(tmp_path), *TINY, "--quiet"]
    assert main(argv) == 130
    state = json.loads(
        next((tmp_path / "adding").glob("checkpoints/step-*/trainer_state.json")).read_text()
    )
    assert state["loop"]["status"] == "interrupted" and state["loop"]["step"] == 1


def _write_idx(path, array):
    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def test_evaluate_a_builtin_classification_run_prints_its_confusion_matrix(tmp_path, capsys):
    """MNIST's classes have no saved names: the confusion matrix names them by index (it
    raised KeyError: 'classes' after the table)."""
    rng = __import__("numpy").random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 40), ("t10k", 20)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    argv = ["train", "--no-compile", "--task", "mnist", "--data-path", str(folder), "--levels", "1",
            "--hidden", "4", "--kernel-size", "2", "--batch-size", "20", "--max-steps", "1",
            "--runs-dir", str(tmp_path / "runs"), "--name", "m", "--quiet", "--no-plots"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "runs" / "m"), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix" in out and "recall" in out


def test_classify_end_to_end(tmp_path, capsys):
    rng = __import__("numpy").random.default_rng(0)
    rows = ["label," + ",".join(f"t{i}" for i in range(16))]
    for n in range(40):
        up = n % 2
        values = (rng.normal(size=16) + (2.0 if up else -2.0)).round(3)
        rows.append(("up," if up else "down,") + ",".join(map(str, values)))
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    argv = ["train", "--no-compile", "--task", "classify", "--data-path", str(tmp_path / "c.csv"),
            "--target-columns", "label", "--levels", "2", "--hidden", "8", "--kernel-size", "3",
            "--batch-size", "8", "--epochs", "3", "--runs-dir", str(tmp_path / "runs"), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "val accuracy" in capsys.readouterr().out
    run = tmp_path / "runs" / "classify"
    out = tmp_path / "labels.csv"
    assert (
        main(["predict", str(run), "--input", str(tmp_path / "c.csv"), "--output", str(out)]) == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "prediction,probability" and len(lines) == 41
    assert {line.split(",")[0] for line in lines[1:]} <= {"up", "down"}


def test_diverging_loss_stops_with_a_message_and_keeps_checkpoints(tmp_path, capsys):
    assert _train(tmp_path, "--lr", "1e30", "--checkpoint-every", "1") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        "mlx-tcn: training diverged: loss became"
    ) and "Traceback" not in "".join(err)
    run = tmp_path / "runs" / "adding"
    index = json.loads((run / "checkpoints" / "index.json").read_text())
    assert (run / "checkpoints" / index["latest"] / "model.safetensors").exists()
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["event"] == "diverged"


def _snapshot(folder):
    """Every file under ``folder`` with its bytes and modification time."""
    return {
        p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_two_runs_with_one_name_starting_together_get_their_own_folders(tmp_path, monkeypatch):
    # Before: the first run took runs/adding and, until it wrote its first file, the second saw
    # an empty folder and wrote into it too. Here the second run starts exactly in that window.
    from mlx_tcn.train import runner

    real_build_task, started = runner.build_task, []

    def build_task(cfg, **kw):
        if not started:
            started.append(True)
            assert _train(tmp_path, "--max-steps", "2") == 0  # the other process's whole run
        return real_build_task(cfg, **kw)

    monkeypatch.setattr(runner, "build_task", build_task)
    assert _train(tmp_path, "--max-steps", "3") == 0
    runs = tmp_path / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["adding", "adding-2"]
    for name, steps in (("adding", 2), ("adding-2", 3)):
        events = [
            json.loads(line) for line in (runs / name / "metrics.jsonl").read_text().splitlines()
        ]
        assert [e["event"] for e in events].count("end") == 1 and events[-1]["step"] == steps
        assert json.loads((runs / name / "train_config.json").read_text())["max_steps"] == steps


@pytest.mark.parametrize("damage", ["model.safetensors", "config.json", "index"])
@pytest.mark.parametrize("command", ["evaluate", "predict", "resume"])
def test_a_damaged_latest_checkpoint_is_refused_and_nothing_is_written(
    tmp_path, capsys, command, damage
):
    # Before: every command fell back to the previous checkpoint with a warning and exit 0;
    # predict wrote its CSV and --resume trained on from the older state.
    assert (
        _train(tmp_path, "--max-steps", "4", "--checkpoint-every", "2", "--eval-every", "100") == 0
    )
    run = tmp_path / "runs" / "adding"
    latest = run / "checkpoints" / "step-00000004"
    if damage == "index":
        (run / "checkpoints" / "index.json").write_text('{"latest": "step-00000007"}')
    else:
        (latest / damage).unlink()
    before = _snapshot(run)
    capsys.readouterr()
    argv = {"evaluate": ["evaluate", str(run), "--which", "latest"],
            "predict": ["predict", str(run), "--which", "latest"],
            "resume": ["train", "--resume", str(run), "--max-steps", "6", "--quiet"]}[command]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mlx-tcn: error: ") and "Traceback" not in err[0]
    assert (
        "step-00000007, which does not exist" if damage == "index" else f"{damage} is missing"
    ) in err[0]
    usable = "step-00000004" if damage == "index" else "step-00000002"
    assert f"pass its folder instead, e.g. {run / 'checkpoints' / usable}" in err[0]
    assert _snapshot(run) == before


def test_a_failed_resume_changes_nothing_on_disk(tmp_path, capsys):
    # Before: train_config.json was rewritten (epochs=3) before the optimiser state failed to load.
    assert _train(tmp_path, "--max-steps", "2") == 0
    run = tmp_path / "runs" / "adding"
    index = json.loads((run / "checkpoints" / "index.json").read_text())
    opt = run / "checkpoints" / index["latest"] / "optimizer.safetensors"
    opt.write_bytes(opt.read_bytes()[:50])  # truncated
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--max-steps", "none"]) == 1
    _one_line_error(capsys, "optimizer.safetensors could not be loaded")
    assert _snapshot(run) == before


def test_polyphonic_task_without_scipy_says_what_to_install(tmp_path, capsys, monkeypatch):
    # Before: a traceback ending in "No module named 'scipy'" after `pip install .`, and an
    # empty run folder left behind.
    (tmp_path / "JSB_Chorales.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    monkeypatch.setitem(sys.modules, "scipy", None)  # what `import scipy` sees when missing
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    argv = ["train", "--task", "jsb", "--data-path", str(tmp_path / "JSB_Chorales.mat"),
            "--runs-dir", str(tmp_path / "runs"), "--quiet"]  # fmt: skip
    assert main(argv) == 1
    _one_line_error(capsys, 'needs scipy, which is not installed: pip install "mlx-tcn[data]"')
    assert not (tmp_path / "runs").exists()


def test_a_non_utf8_csv_is_named_with_the_fix(tmp_path, capsys):
    # Before: "'utf-8' codec can't decode byte 0xe9 in position 9: ..." without the file.
    (tmp_path / "s.csv").write_bytes("temp,caf\xe9\n".encode("latin-1") + b"1,2\n" * 40)
    argv = ["train", "--task", "forecast", "--data-path", str(tmp_path / "s.csv"),
            "--runs-dir", str(tmp_path / "runs"), "--quiet"]  # fmt: skip
    assert main(argv) == 1
    _one_line_error(capsys, f"data file {tmp_path / 's.csv'} is not UTF-8 text (byte 0xe9")
    capsys.readouterr()
    (tmp_path / "c.toml").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    assert main(["train", "--config", str(tmp_path / "c.toml")]) == 1
    _one_line_error(capsys, f"config file {tmp_path / 'c.toml'} is not UTF-8 text")


def test_a_config_value_of_the_wrong_type_names_the_setting(tmp_path, capsys):
    # Before: "'>' not supported between instances of 'str' and 'int'".
    (tmp_path / "c.toml").write_text('lr = "fast"\n')
    assert main(["train", "--config", str(tmp_path / "c.toml")]) == 1
    _one_line_error(capsys, "lr in the config file must be a number, got 'fast' (str)")


def test_an_unexpected_error_is_one_line_and_verbose_shows_the_traceback(capsys, monkeypatch):
    import mlx_tcn.cli as cli

    def broken(args):
        raise RuntimeError("[matmul] something deep\ninside MLX")

    monkeypatch.setattr(cli, "_cmd_summary", broken)
    assert main(["summary"]) == 1
    _one_line_error(capsys, "RuntimeError: [matmul] something deep inside MLX (-v shows")
    with pytest.raises(RuntimeError):
        main(["-v", "summary"])


def test_a_checkpoint_whose_two_configs_disagree_is_refused(tmp_path, capsys):
    # train_config.json describes the architecture; the model's config.json is derived from
    # it. Before, evaluate and predict compared only the input channels and went on with a
    # checkpoint whose train_config.json said otherwise.
    assert _train(tmp_path, "--max-steps", "2") == 0
    (ckpt,) = (tmp_path / "runs" / "adding" / "checkpoints").glob("step-*")
    saved = json.loads((ckpt / "train_config.json").read_text())
    (ckpt / "train_config.json").write_text(json.dumps({**saved, "hidden": 9}))
    capsys.readouterr()
    assert main(["evaluate", str(ckpt)]) == 1
    _one_line_error(
        capsys, "does not fit the config (num_channels: checkpoint [8, 8], config [9, 9])"
    )


def test_a_run_saved_with_the_old_no_norm_spelling_still_loads(tmp_path, capsys):
    assert _train(tmp_path, "--max-steps", "2", "--use-norm", "none") == 0
    run = tmp_path / "runs" / "adding"
    (ckpt,) = (run / "checkpoints").glob("step-*")
    saved = json.loads((ckpt / "train_config.json").read_text())
    assert saved["use_norm"] is None  # stored in the model's spelling
    (ckpt / "train_config.json").write_text(json.dumps({**saved, "use_norm": "none"}))
    assert main(["evaluate", str(run), "--json"]) == 0
    assert main(["train", "--resume", str(run), "--max-steps", "3", "--quiet"]) == 0


def _gunpoint_like(path, n, seed):
    """Two classes of noisy sequences: a bump early or late (a GunPoint in miniature)."""
    rng = __import__("numpy").random.default_rng(seed)
    np = __import__("numpy")
    t = np.arange(24)
    y = np.arange(n) % 2
    x = np.exp(-((t[None, :] - np.where(y, 16, 6)[:, None]) ** 2) / 8) + 0.1 * rng.normal(
        size=(n, 24)
    )
    np.savez(path, x=x.astype("float32"), y=np.where(y, "late", "early"))


def test_classify_defaults_then_evaluate_a_test_file_with_a_confusion_matrix(tmp_path, capsys):
    # Only the data path given: the budget comes from the data (40 sequences), the mean over
    # the steps is the prediction, the best weights are kept, the majority class is the bar.
    # One model (--folds 1); the default ensemble of small sets: test_train_ensemble.py.
    _gunpoint_like(tmp_path / "train.npz", 40, 0)
    _gunpoint_like(tmp_path / "test.npz", 30, 1)
    argv = ["train", "--no-compile", "--task", "classify", "--data-path", str(tmp_path / "train.npz"),
            "--hidden", "8", "--runs-dir", str(tmp_path / "runs"), "--quiet", "--folds", "1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    # a stratified split: 4 of each class held out; a tie answers the first class
    assert "majority class      loss 0.6931, accuracy 0.5: beaten (model" in out
    assert "classes (training)  early: 16 (50%), late: 16 (50%)" in out
    # the best checkpoint is the latest with the highest validation accuracy
    assert "best val accuracy   1 (step" in out
    run = tmp_path / "runs" / "classify"
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["auto"] == [] and saved["levels"] == 3 and saved["eval_every"] == 25
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["event"] == "baselines" and first["majority_class_accuracy"] == 0.5
    png = tmp_path / "cm.png"
    assert (
        main(["evaluate", str(run), "--data-path", str(tmp_path / "test.npz"), "--plot", str(png)])
        == 0
    )
    out = capsys.readouterr().out
    assert "split           test (30 samples)" in out and "accuracy        1" in out
    assert "majority class  accuracy 0.5: beaten" in out
    assert "true \\ predicted   early    late  recall" in out
    assert "early                 15       0   1.000" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", str(run), "--data-path", str(tmp_path / "test.npz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["confusion"] == [[15, 0], [0, 15]]
    assert main(["evaluate", str(run), "--plot", str(png), "--split", "train"]) == 0
    capsys.readouterr()


def test_summary_of_user_data_shows_the_depth_a_run_would_choose(tmp_path, capsys):
    _gunpoint_like(tmp_path / "train.npz", 20, 0)  # 24 steps: 3 blocks of kernel 3 see 29
    assert main(["summary", "--task", "classify", "--data-path", str(tmp_path / "train.npz")]) == 0
    assert "receptive field: 29 steps" in capsys.readouterr().out
    assert main(["summary", "--task", "classify", "--data-path", str(tmp_path / "train.npz"),
                 "--auto", "none"]) == 0  # fmt: skip
    assert "receptive field: 61 steps" in capsys.readouterr().out  # the preset's 4 blocks


@pytest.mark.parametrize("task", ["mnist", "pmnist", "jsb", "nottingham"])
def test_summary_of_a_paper_task_needs_no_data(task, capsys):
    # docs/training.md's `mlx-tcn summary --task mnist --preset paper` failed with "task
    # 'mnist' needs data_path": the model of a built-in task has a fixed shape.
    assert main(["summary", "--task", task, "--preset", "paper"]) == 0
    assert "receptive field" in capsys.readouterr().out
    assert main(["summary", "--task", "forecast"]) != 0  # a user's data sets its shape
    _one_line_error(capsys, "task 'forecast' needs data_path")
