"""Data-parallel training (train/distributed.py): the row rule, and real runs of 2 local
processes on 127.0.0.1 (a hostfile with MLX_RANK, and mlx.launch) against 1 process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from mlx_tcn._backend.runtime import local_ranks
from mlx_tcn.train.checkpoint import load_checkpoint
from mlx_tcn.train.config import resolve_config
from mlx_tcn.train.distributed import World, connect
from mlx_tcn.train.runner import resume_config, run_training
from mlx_tcn.train.split import Split, iterate_batches

SRC = str(Path(__file__).resolve().parents[1] / "src")
LAUNCH = Path(sys.executable).with_name("mlx.launch")
# Compiled steps, two epochs of 8 batches, an evaluation every 3 steps.
RUN = {"task": "adding", "seq_len": 12, "n_train": 64, "n_val": 40, "batch_size": 8,
       "levels": 2, "hidden": 8, "kernel_size": 3, "epochs": 2, "max_steps": 12,
       "eval_every": 3, "plots": False, "lr": 0.01}  # fmt: skip


class FakeGroup:
    def __init__(self, rank: int, size: int) -> None:
        self._rank, self._size = rank, size

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size


# --------------------------------------------------------------------------- without processes


def test_the_parts_of_a_batch_are_the_batch_of_one_process_in_order():
    split = Split(np.arange(40, dtype=np.float32).reshape(40, 1, 1), np.arange(40))
    one = list(iterate_batches(split, 8, seed=3, epoch=1, start=2))
    for parts in (2, 4):
        shards = [list(iterate_batches(split, 8, seed=3, epoch=1, start=2, shard=(r, parts)))
                  for r in range(parts)]  # fmt: skip
        for b, (_, y, _) in enumerate(one):
            joined = np.concatenate([np.array(shards[r][b][1]) for r in range(parts)])
            assert joined.tolist() == np.array(y).tolist()
            assert len(shards[0][b][1]) == 8 // parts


def test_a_batch_that_does_not_split_evenly_is_refused():
    world = World(FakeGroup(0, 2))
    with pytest.raises(ValueError, match="batch_size 7 is not divisible by the 2 processes"):
        world.check(7, 100)
    with pytest.raises(ValueError, match="5 samples .* do not split into 2 equal parts"):
        world.check(8, 5)
    world.check(8, 100)
    World().check(7, 5)  # one process takes any batch
    # Shuffle off keeps the last partial batch: 643 = 20 x 32 + 3 split 1 + 2 (each rank's
    # mean then averaged as if equal: another loss than one process's), 641 left rank 0 no
    # row ("x must have at least one batch row"). Shuffled, that batch is dropped.
    with pytest.raises(ValueError, match="end with a batch of 3, which does not split into 2"):
        world.check(32, 643, drop_last=False)
    with pytest.raises(ValueError, match="end with a batch of 1"):
        world.check(32, 641, drop_last=False)
    world.check(32, 643)
    world.check(32, 642, drop_last=False)
    World(FakeGroup(0, 4)).check(32, 648, drop_last=False)  # 8 = 4 x 2


def test_one_process_adds_nothing_to_the_step():
    world = World()
    assert world.reduce_gradients() is None and world.size == 1 and world.shard == (0, 1)
    assert world.any(True) and not world.any(False)
    assert world.mean(mx.array(2.5)) == 2.5


def test_connect_without_a_launcher_is_one_process(monkeypatch):
    monkeypatch.delenv("MLX_RANK", raising=False)
    assert connect().size == 1
    monkeypatch.setenv("MLX_RANK", "0")
    monkeypatch.setenv("MLX_HOSTFILE", "/nonexistent/hostfile.json")
    assert connect().size == 1  # mlx.launch -n 1 gives no usable hostfile


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_a_bad_connect_timeout_is_named(tmp_path, monkeypatch, value):
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps([["127.0.0.1:1"], ["127.0.0.1:2"]]))
    monkeypatch.setenv("MLX_HOSTFILE", str(hostfile))
    monkeypatch.setenv("MLX_RANK", "0")
    monkeypatch.setenv("MLX_TCN_CONNECT_TIMEOUT", value)
    with pytest.raises(
        ValueError,
        match=f"MLX_TCN_CONNECT_TIMEOUT must be a positive number of seconds, got '{value}'",
    ):
        connect()


def test_local_ranks_counts_the_ranks_on_this_host(tmp_path, monkeypatch):
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps([["10.0.0.1:5000"], ["10.0.0.1:5001"], ["10.0.0.2:5000"]]))
    monkeypatch.setenv("MLX_HOSTFILE", str(hostfile))
    monkeypatch.setenv("MLX_RANK", "1")
    assert local_ranks() == 2
    monkeypatch.setenv("MLX_RANK", "2")
    assert local_ranks() == 1
    monkeypatch.delenv("MLX_HOSTFILE")
    assert local_ranks() == 1


# --------------------------------------------------------------------------- real processes


def _free_ports(n: int) -> list[int]:
    """``n`` consecutive free ports (mlx.launch numbers its ranks' ports from a first one)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        if first + n > 65535:
            continue
        try:
            for p in range(first, first + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return list(range(first, first + n))
        except OSError:
            continue
    raise RuntimeError("no free ports")


def _flags(values: dict) -> list[str]:
    out = []
    for k, v in values.items():
        flag = "--" + k.replace("_", "-")
        out += (
            ([flag] if v else ["--no-" + k.replace("_", "-")])
            if isinstance(v, bool)
            else [flag, str(v)]
        )
    return out


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLX_RANK", "MLX_HOSTFILE")}
    return {**env, "PYTHONPATH": SRC, **extra}


def _train_argv(runs: Path, name: str, values: dict, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mlx_tcn", "train", "--quiet", "--runs-dir", str(runs),
            "--name", name, *_flags(values), *extra]  # fmt: skip


def _start_ranks(tmp_path: Path, argv: list[str], n: int = 2, **env: str) -> list[subprocess.Popen]:
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps([[f"127.0.0.1:{p}"] for p in _free_ports(n)]))
    return [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(MLX_HOSTFILE=str(hostfile), MLX_RANK=str(r), **env))
            for r in range(n)]  # fmt: skip


def _finish(procs: list[subprocess.Popen], timeout: float = 60) -> list[tuple[int, str, str]]:
    """Wait for every rank (killing all of them after ``timeout``: a test never hangs)."""
    deadline = time.time() + timeout
    out = []
    try:
        for p in procs:
            o, e = p.communicate(timeout=max(deadline - time.time(), 1))
            out.append((p.returncode, o, e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


def _params(run_dir: Path) -> dict[str, np.ndarray]:
    from mlx.utils import tree_flatten

    model = load_checkpoint(run_dir, "latest").model
    return {k: np.array(v) for k, v in tree_flatten(model.parameters())}


def _evals(run_dir: Path) -> list[tuple[int, float]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["val_loss"]) for r in map(json.loads, lines) if r["event"] == "eval"]


def _assert_same_run(a: Path, b: Path) -> None:
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_allclose(pa[k], pb[k], rtol=1e-4, atol=1e-5, err_msg=k)
    ea, eb = dict(_evals(a)), dict(_evals(b))  # a resumed run also evaluated where it stopped
    common = sorted(ea.keys() & eb.keys())
    assert common == sorted(ea) and len(common) >= 4
    np.testing.assert_allclose([ea[s] for s in common], [eb[s] for s in common], rtol=1e-5)
    assert load_checkpoint(a).loop.step == load_checkpoint(b).loop.step == 12


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """The reference: the same run in one process."""
    runs = tmp_path_factory.mktemp("one")
    return run_training(resolve_config({}, {**RUN, "runs_dir": str(runs), "name": "one"})).run_dir


@pytest.mark.slow  # two processes: a few seconds
def test_two_processes_from_a_hostfile_train_like_one(tmp_path, one_process):
    results = _finish(_start_ranks(tmp_path, _train_argv(tmp_path / "runs", "two", RUN)))
    assert [rc for rc, _, _ in results] == [0, 0], results
    (_, out0, err0), (_, out1, err1) = results
    assert "data-parallel: 2 processes (ring); global batch 8 = 2 x 4 per process; lr 0.01" in err0
    assert "summary" in out0 and out1 == "" and err1 == ""  # rank 1 writes and shows nothing
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["two"]
    _assert_same_run(one_process, tmp_path / "runs" / "two")


@pytest.mark.slow
@pytest.mark.skipif(not LAUNCH.exists(), reason="mlx.launch is not installed next to python")
def test_two_processes_from_mlx_launch_train_like_one(tmp_path, one_process):
    port = _free_ports(2)[0]
    argv = [str(LAUNCH), "--backend", "ring", "-n", "2", "--starting-port", str(port), "--",
            *_train_argv(tmp_path / "runs", "launched", RUN)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=tmp_path)  # fmt: skip
    [(rc, out, err)] = _finish([proc])
    assert rc == 0 and "summary" in out and out.count("summary") == 1, err
    _assert_same_run(one_process, tmp_path / "runs" / "launched")


MPIRUN = shutil.which("mpirun")


@pytest.mark.slow
@pytest.mark.skipif(
    MPIRUN is None, reason="no MPI installed (mpirun); e.g. apt-get install openmpi-bin"
)
def test_two_processes_from_mpirun_train_like_one(tmp_path, one_process):
    argv = [MPIRUN, "-np", "2", "--oversubscribe", "--allow-run-as-root",
            *_train_argv(tmp_path / "runs", "mpi", RUN)]  # fmt: skip
    env = {k: v for k, v in _env().items() if k != "MLX_MPI_LIBNAME"}  # found by mlx-tcn
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)  # fmt: skip
    [(rc, out, err)] = _finish([proc])
    assert rc == 0 and out.count("summary") == 1, err
    assert "data-parallel: 2 processes (mpi)" in err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mpi"]
    _assert_same_run(one_process, tmp_path / "runs" / "mpi")


def test_mpi_launch_is_recognised_and_counts_local_ranks(monkeypatch):
    from mlx_tcn.train.distributed import backend

    for name in ("MLX_RANK", "MLX_HOSTFILE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert backend() is None
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
    assert backend() is None  # one rank: a plain single process
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert backend() == "mpi"
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2")
    assert local_ranks() == 2


@pytest.mark.slow
def test_two_processes_cut_the_learning_rate_where_one_does(tmp_path):
    """The plateau schedule decides on the shared validation loss: every rank makes the same
    cuts (here at steps 9 and 12), so the ranks' rates and weights stay those of one process."""
    values = {**RUN, "schedule": "plateau", "plateau_start": 0, "plateau_window": 1,
              "plateau_factor": 0.5}  # fmt: skip
    one = run_training(resolve_config({}, {**values, "runs_dir": str(tmp_path / "one"),
                                          "name": "one"})).run_dir  # fmt: skip
    results = _finish(_start_ranks(tmp_path, _train_argv(tmp_path / "runs", "two", values)))
    assert [rc for rc, _, _ in results] == [0, 0], results
    two = tmp_path / "runs" / "two"
    _assert_same_run(one, two)
    cuts = [[(r["step"], r["lr_scale"]) for r in map(json.loads, (d / "metrics.jsonl").open())
             if r["event"] == "eval" and r["lr_cut"]] for d in (one, two)]  # fmt: skip
    assert cuts[0] == cuts[1] == [(9, 0.5), (12, 0.25)]
    assert load_checkpoint(two).loop.lr_scale == 0.25


@pytest.mark.slow
def test_a_two_process_run_resumes_in_one_process_and_back(tmp_path, one_process):
    """Steps 1-4 on 2 processes, 5-8 on 1, 9-12 on 2: the run of one process throughout."""
    runs = tmp_path / "runs"
    half = _train_argv(runs, "mixed", {**RUN, "max_steps": 4})
    assert [rc for rc, _, _ in _finish(_start_ranks(tmp_path, half))] == [0, 0]
    run = runs / "mixed"
    ckpt = load_checkpoint(run)
    resumed = run_training(resume_config(ckpt, {}, {"max_steps": 8}), resume=ckpt)
    assert resumed.state.step == 8
    last = [sys.executable, "-m", "mlx_tcn", "train", "--quiet", "--resume", str(run),
            "--max-steps", "12"]  # fmt: skip
    results = _finish(_start_ranks(tmp_path, last))
    assert [rc for rc, _, _ in results] == [0, 0], results
    _assert_same_run(one_process, run)


@pytest.mark.slow
def test_a_rank_whose_peers_never_start_fails_within_the_timeout(tmp_path):
    start = time.time()
    argv = _train_argv(tmp_path / "runs", "alone", RUN)
    [proc, _] = procs = _start_ranks(tmp_path, argv, MLX_TCN_CONNECT_TIMEOUT="2")
    procs[1].kill()  # rank 1 never comes up
    [(rc, _, err), _] = _finish(procs, timeout=30)
    assert rc != 0 and time.time() - start < 25
    assert "rank 0 could not connect to the other ranks" in err and "MLX_TCN_CONNECT_TIMEOUT" in err
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.slow
def test_ctrl_c_on_one_rank_stops_every_rank_and_rank_0_saves(tmp_path):
    values = {**RUN, "n_train": 200000, "max_steps": 100000, "epochs": 1, "eval_every": 100000,
              "checkpoint_every": 100000, "log_every": 5}  # fmt: skip
    procs = _start_ranks(tmp_path, _train_argv(tmp_path / "runs", "stop", values))
    metrics = tmp_path / "runs" / "stop" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGINT)  # a remote rank's Ctrl-C: rank 0 never sees it
    results = _finish(procs)
    assert [rc for rc, _, _ in results] == [130, 130], results
    assert "mlx-tcn train --resume" in results[0][2]
    ckpt = load_checkpoint(tmp_path / "runs" / "stop")
    assert ckpt.loop.status == "interrupted" and ckpt.loop.step >= 5


@pytest.mark.slow
def test_a_rank_that_dies_ends_the_run_with_a_message_and_the_checkpoint_intact(tmp_path):
    values = {**RUN, "n_train": 200000, "max_steps": 100000, "epochs": 1, "eval_every": 100000,
              "checkpoint_every": 4, "log_every": 5}  # fmt: skip
    procs = _start_ranks(tmp_path, _train_argv(tmp_path / "runs", "dies", values))
    index = tmp_path / "runs" / "dies" / "checkpoints" / "index.json"
    deadline = time.time() + 60
    while time.time() < deadline and not index.exists():
        time.sleep(0.2)
    procs[1].kill()  # rank 1 dies without a word
    start = time.time()
    [(rc, _, err), _] = _finish(procs, timeout=30)
    assert rc == 1 and time.time() - start < 20
    assert "rank 0 of 2 lost its connection to another rank" in err and "--resume" in err
    assert "Traceback" not in err
    assert load_checkpoint(tmp_path / "runs" / "dies").loop.step >= 4


def test_ragged_parts_average_to_the_whole_batch_gradient():
    """Masked (ragged) batches: parts hold different numbers of frames, so each part's loss is
    divided by the global count / parts; the mean of the parts' gradients is then the
    whole batch's gradient (a plain per-part mean would weigh short parts too much)."""
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    from mlx_tcn import TCN
    from mlx_tcn.train.losses import loss_fn

    rng = np.random.default_rng(0)
    lengths = [9, 3, 4, 2]
    xs = [rng.random((n, 3)).astype(np.float32) for n in lengths]
    split = Split(xs, [(x > 0.5).astype(np.float32) for x in xs])
    mx.random.seed(1)
    model = TCN(3, [4, 4], kernel_sizes=2, dropout=0.0, causal=True, output_projection=3)

    def grads(loss, rows):
        x, y, mask = split.batch(np.array(rows))
        return dict(tree_flatten(nn.value_and_grad(model, loss)(model, x, y, mask)[1]))

    whole = grads(loss_fn("multilabel_all"), [0, 1, 2, 3])
    frames = sum(lengths)
    shared = loss_fn("multilabel_all", lambda count: mx.array(frames / 2))
    parts = [grads(shared, [0, 1]), grads(shared, [2, 3])]
    plain = [grads(loss_fn("multilabel_all"), [0, 1]), grads(loss_fn("multilabel_all"), [2, 3])]
    for k, g in whole.items():
        np.testing.assert_allclose((parts[0][k] + parts[1][k]) / 2, g, rtol=1e-4, atol=1e-6)
    assert not all(np.allclose((plain[0][k] + plain[1][k]) / 2, g) for k, g in whole.items())


# Runs the CLI in this process and writes its exit status to rc-<rank>, so the test reads each
# rank's own status rather than mlx.launch's report of it.
_RECORD_RC = (
    "import os, sys\n"
    "from mlx_tcn.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "open(f'rc-{os.environ[\"MLX_RANK\"]}', 'w').write(str(rc))\n"
    "sys.exit(rc)\n"
)


@pytest.mark.slow
@pytest.mark.skipif(not LAUNCH.exists(), reason="mlx.launch is not installed next to python")
def test_ctrl_c_on_mlx_launch_stops_every_rank_and_rank_0_saves_once(tmp_path):
    """A terminal's Ctrl-C: SIGINT to the launcher's process group (launcher and ranks)."""
    values = {**RUN, "n_train": 200000, "max_steps": 100000, "epochs": 1, "eval_every": 100000,
              "checkpoint_every": 100000, "log_every": 5}  # fmt: skip
    train = _train_argv(tmp_path / "runs", "stop", values)
    assert train[1:3] == ["-m", "mlx_tcn"]
    argv = [str(LAUNCH), "--backend", "ring", "-n", "2", "--starting-port", str(_free_ports(2)[0]),
            "--", sys.executable, "-c", _RECORD_RC, *train[3:]]  # fmt: skip
    # A terminal's stdin: open, nothing typed. At end of file (pytest's /dev/null) MLX 0.32.4's
    # launcher loops on it, and a Ctrl-C that lands while it hands that input to a rank's
    # queue leaves the queue locked: the launcher then hangs after the ranks have exited.
    stdin_r, stdin_w = os.pipe()
    proc = subprocess.Popen(argv, stdin=stdin_r, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(), cwd=tmp_path, start_new_session=True)  # fmt: skip
    os.close(stdin_r)
    try:
        metrics = tmp_path / "runs" / "stop" / "metrics.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and not (metrics.exists() and metrics.read_text()):
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(stdin_w)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # Each rank stopped at its own Ctrl-C with the interrupted status (none was killed).
    assert {r: (tmp_path / f"rc-{r}").read_text() for r in (0, 1)} == {0: "130", 1: "130"}, err
    assert "rank 0 exited with code 130" in err  # what the launcher tells the user
    ckpts = tmp_path / "runs" / "stop" / "checkpoints"
    assert len(list(ckpts.glob("step-*"))) == 1  # the one save at the stop
    assert load_checkpoint(ckpts.parent).loop.status == "interrupted"


def test_evaluation_parts_add_up_to_the_whole_split():
    """What each rank evaluates (batches r, r+N, ...) sums to the single-process metrics,
    accuracy included."""
    from mlx_tcn import TCN
    from mlx_tcn.train.losses import evaluate_split, evaluate_sums, metrics_from_sums

    rng = np.random.default_rng(1)
    split = Split(rng.random((37, 6, 2)).astype(np.float32), rng.integers(0, 3, 37))
    mx.random.seed(2)
    model = TCN(2, [4], kernel_sizes=2, causal=True, output_projection=3)
    batches = list(iterate_batches(split, 8, shuffle=False, drop_last=False))
    whole = evaluate_split(model, "class_last", iter(batches), max_batches=4)
    parts = [evaluate_sums(model, "class_last", batches[r:4:2]) for r in range(2)]
    summed = metrics_from_sums([a + b for a, b in zip(*parts, strict=True)])
    assert summed.keys() == whole.keys() == {"loss", "accuracy"}
    assert summed["accuracy"] == whole["accuracy"]
    assert summed["loss"] == pytest.approx(whole["loss"], rel=1e-12)
    with pytest.raises(ValueError, match="evaluation got no batches"):
        metrics_from_sums(evaluate_sums(model, "class_last", []))


def test_a_broken_hostfile_is_an_error_and_a_missing_one_a_warning(tmp_path, monkeypatch, caplog):
    # Before: MLX_RANK with a mistyped or broken MLX_HOSTFILE trained one process, silently.
    from mlx_tcn.train.distributed import DistributedError, connect

    monkeypatch.setenv("MLX_RANK", "1")
    monkeypatch.setenv("MLX_HOSTFILE", str(tmp_path / "nope.json"))
    with caplog.at_level("WARNING"):
        assert connect().size == 1  # as before, but said
    assert "nope.json cannot be read" in caplog.text and "training in one process" in caplog.text
    (tmp_path / "broken.json").write_text('[["127.0.0.1:5000"]\n["127.0.0.1:5001"]]')
    monkeypatch.setenv("MLX_HOSTFILE", str(tmp_path / "broken.json"))
    with pytest.raises(DistributedError, match="broken.json is not a JSON list of hosts"):
        connect()
    (tmp_path / "empty.json").write_text("")  # what mlx.launch -n 1 writes
    monkeypatch.setenv("MLX_HOSTFILE", str(tmp_path / "empty.json"))
    assert connect().size == 1


@pytest.mark.slow
def test_ranks_started_with_different_settings_stop_with_a_message(tmp_path):
    # Before: both waited forever in each other's collectives (here: 10 and 20 steps).
    values = {**RUN, "max_steps": 10}
    argv = _train_argv(tmp_path / "runs", "differ", values)
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps([[f"127.0.0.1:{p}"] for p in _free_ports(2)]))
    procs = [subprocess.Popen(argv + (["--max-steps", "20"] if r else []), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=_env(MLX_HOSTFILE=str(hostfile), MLX_RANK=str(r)))
             for r in range(2)]  # fmt: skip
    results = _finish(procs, timeout=60)
    for rank, (rc, _, err) in enumerate(results):
        assert rc == 1, results
        assert f"rank {rank} of 2: the ranks were started with different settings" in err
        assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_rank_that_fails_before_training_does_not_leave_the_other_waiting(tmp_path):
    # Rank 1 stops on its data before the first collective; MLX's ring backend never failed
    # rank 0's parameter sum (it waited forever). The check of the settings fails it.
    good = _train_argv(tmp_path / "runs", "early", RUN)
    bad = [*good, "--n-val", "0"]  # refused while loading, before any collective
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps([[f"127.0.0.1:{p}"] for p in _free_ports(2)]))
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(MLX_HOSTFILE=str(hostfile), MLX_RANK=str(r),
                                       MLX_TCN_CONNECT_TIMEOUT="20"))
             for r, argv in enumerate([good, bad])]  # fmt: skip
    start = time.time()
    [(rc0, _, err0), (rc1, _, err1)] = _finish(procs, timeout=60)
    assert rc1 == 1 and "n_val must be a positive integer" in err1
    assert rc0 != 0 and time.time() - start < 45
    assert "rank 0 of 2" in err0 and "Traceback" not in err0
