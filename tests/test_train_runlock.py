"""One writer per run folder: a resume, or a second resume, never writes into a run that
another thread or process is training (train/runlock.py)."""

import json
import subprocess
import sys
import threading
import time

import pytest

from mlx_tcn.cli import main
from mlx_tcn.train import load_checkpoint, resolve_config, run_training
from mlx_tcn.train.runlock import RunInUseError, hold_run
from mlx_tcn.train.runner import resume_config

TINY = dict(seq_len=10, levels=1, hidden=4, kernel_size=2, n_train=32, n_val=16, batch_size=16,
            epochs=3, max_steps=2, compile=False, plots=False)  # fmt: skip


def _in_thread(fn):
    """``fn()`` run in another thread: what it returned, or the exception it raised."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            out["error"] = err

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out


def test_the_lock_is_reentrant_in_a_thread_and_refused_to_another(tmp_path):
    with hold_run(tmp_path):
        with hold_run(tmp_path):  # the CLI's hold, then run_training's
            got = _in_thread(lambda: hold_run(tmp_path).__enter__())
            assert isinstance(got.get("error"), RunInUseError)
            assert str(tmp_path) in str(got["error"])
        assert isinstance(
            _in_thread(lambda: hold_run(tmp_path).__enter__())["error"], RunInUseError
        )

    def take_and_release():
        with hold_run(tmp_path):
            return "taken"

    assert _in_thread(take_and_release) == {"value": "taken"}  # released at the outer exit
    assert sorted(tmp_path.iterdir()) == []  # no lock file: the folder is locked itself


HOLDER = """
import sys, time
from mlx_tcn.train.runlock import hold_run
with hold_run(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_another_process_is_refused_and_a_killed_holder_leaves_it_free(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunInUseError, match="being written by another process"):
            with hold_run(tmp_path):
                pass
    finally:
        proc.kill()  # kill -9: none of its own clean-up runs
        proc.wait(timeout=60)
    deadline = time.time() + 10
    while True:  # the kernel drops the lock with the process
        try:
            with hold_run(tmp_path):
                break
        except RunInUseError:
            assert time.time() < deadline
            time.sleep(0.05)


@pytest.fixture
def run_dir(tmp_path):
    return run_training(resolve_config({}, {**TINY, "runs_dir": str(tmp_path)})).run_dir


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_run_training_refuses_to_resume_a_run_another_thread_holds(run_dir):
    before = _files(run_dir)
    ck = load_checkpoint(run_dir)
    cfg = resume_config(ck, {}, {"max_steps": 4})
    got = _in_thread(lambda: run_training(cfg, resume=ck))
    assert got == {"value": got["value"]}  # free: it resumes
    ck = load_checkpoint(run_dir)
    before = _files(run_dir)
    with hold_run(run_dir):
        got = _in_thread(lambda: run_training(resume_config(ck, {}, {}), resume=ck))
    assert isinstance(got.get("error"), RunInUseError)
    assert _files(run_dir) == before  # nothing written


def test_the_cli_refuses_a_second_resume_with_one_line(run_dir, capsys):
    # Before: two resumes of one run pruned each other's half-written checkpoints and one
    # replaced the metrics log the other was appending to (records lost, runs "completed").
    before = _files(run_dir)
    capsys.readouterr()
    held, release = threading.Event(), threading.Event()

    def other_holder():  # the other process, as far as the CLI (in this thread) can tell
        with hold_run(run_dir):
            held.set()
            release.wait(60)

    holder = threading.Thread(target=other_holder)
    holder.start()
    held.wait(60)
    try:
        code = main(["train", "--resume", str(run_dir), "--max-steps", "4"])
    finally:
        release.set()
        holder.join()
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mlx-tcn: error: ") and "Traceback" not in err[0]
    assert "being written by another process" in err[0] and str(run_dir) in err[0]
    assert _files(run_dir) == before
    assert main(["train", "--resume", str(run_dir), "--max-steps", "4", "--quiet"]) == 0  # free
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["event"] == "end" and records[-1]["step"] == 4


def test_a_file_system_without_flock_trains_on_with_a_warning(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with hold_run(tmp_path):  # not refused: nothing says another process has it
        pass
    assert "cannot lock" in caplog.text and "No locks available" in caplog.text
