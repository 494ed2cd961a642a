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
    assert lines[0] == "pred_load,target_load" and len(lines) == 1 + 120 - 12 + 1
    assert lines[-1].endswith(",nan")  # the last window's target lies beyond the file
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
    monkeypatch.setattr(mlx_tcn.interop, "main_convert", lambda argv: seen.append(argv) or 0)
    assert main(["convert", "a.pt", "b", "--num-inputs", "3"]) == 0
    assert seen == [["a.pt", "b", "--num-inputs", "3"]]


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
