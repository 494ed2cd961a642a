"""Data-parallel training on MLX's own distributed engine (``mx.distributed``: ring or MPI).

(Over 300 lines: the world, the connection with its watchdog and the two launchers'
environments belong to one contract between ranks, which reads best in one place.)

``mlx.launch --backend ring -n N -- python -m mlx_tcn train ...`` (or Open MPI's
``mpirun -np N python -m mlx_tcn train ...``) starts N processes (ranks) that each run the
same command. :func:`connect` joins them into a :class:`World`; the loop
then asks the world for everything that differs from a single process:

- rows: rank ``r`` of ``N`` takes the contiguous rows ``r*B/N .. (r+1)*B/N`` of every global
  batch of ``B = batch_size`` rows, the batch a single process would take (same epoch order,
  same ``(seed, epoch)``), so 1 and N processes see the same global batches and a run can be
  resumed with another N;
- gradients: averaged over the ranks (``nn.average_gradients``) inside the step, before
  clipping and the optimiser update, so every rank applies the same update;
- the loss reported and the stop request (Ctrl-C on any rank): reduced over the ranks after
  each step, so every rank sees the same loss and stops at the same step;
- evaluation: rank ``r`` evaluates validation batches ``r, r+N, ...``; the sums are added up,
  so every rank gets the single-process figure and takes the same early-stopping decision.

With one process every method is the identity and adds no operation to the step.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_map

from .losses import evaluate_split, evaluate_sums, loss_fn, metrics_from_sums

__all__ = [
    "ENV_CONNECT_TIMEOUT",
    "DistributedError",
    "World",
    "connect",
    "backend",
    "launched",
]

ENV_CONNECT_TIMEOUT = "MLX_TCN_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = 60.0


class DistributedError(RuntimeError):
    """The ranks of a data-parallel run could not connect, or lost each other."""


@dataclass(frozen=True)
class World:
    """The processes of one run; ``World()`` is a single process (every method a no-op)."""

    group: Any = None  # mx.distributed.Group, None for a single process
    kind: str = "ring"  # the backend: ring or mpi

    @property
    def size(self) -> int:
        """Number of processes."""
        return 1 if self.group is None else self.group.size()

    @property
    def rank(self) -> int:
        """This process's index; rank 0 writes the run folder and shows progress."""
        return 0 if self.group is None else self.group.rank()

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """``(rank, size)``: which part of every training batch this process takes."""
        return self.rank, self.size

    def check(self, batch_size: int, n_train: int, drop_last: bool = True) -> None:
        """Refuse a global batch that does not split into equal parts, one per process: every
        batch of an epoch, its last partial one included where it is kept (``drop_last``
        False: training in the samples' own order, ``shuffle=False``)."""
        if self.size == 1:
            return
        if batch_size % self.size:
            raise ValueError(
                f"batch_size {batch_size} is not divisible by the {self.size} processes: "
                f"each takes batch_size / {self.size} rows of every batch (pick a multiple "
                f"of {self.size})"
            )
        if n_train < batch_size and n_train % self.size:
            raise ValueError(
                f"the training split's {n_train} samples (one batch smaller than batch_size "
                f"{batch_size}) do not split into {self.size} equal parts"
            )
        last = n_train % batch_size
        if not drop_last and n_train > batch_size and last % self.size:
            raise ValueError(
                f"in the samples' own order (shuffle off) the training split's {n_train} "
                f"samples end with a batch of {last}, which does not split into {self.size} "
                f"equal parts (use a training set of a multiple of {self.size} samples, or "
                "shuffle)"
            )

    def describe(self, batch_size: int, lr: float) -> str:
        """The line a data-parallel run prints when it starts."""
        return (
            f"data-parallel: {self.size} processes ({self.kind}); global batch {batch_size} = "
            f"{self.size} x {batch_size // self.size} per process; lr {lr:g}"
        )

    def loss(self, kind: str) -> Callable[..., mx.array]:
        """The training loss; averaging its gradients over the ranks gives the whole batch's."""
        if self.size == 1:
            return loss_fn(kind)
        size, group = self.size, self.group
        return loss_fn(kind, lambda count: mx.distributed.all_sum(count, group=group) / size)

    def reduce_gradients(self) -> Callable[[Any], Any] | None:
        """Averages a gradient tree over the ranks; None for a single process."""
        if self.size == 1:
            return None
        return lambda grads: nn.average_gradients(grads, group=self.group)

    def start(self, settings: dict[str, Any], model: nn.Module) -> None:
        """The run's first collectives, under a watchdog: check that every rank runs with
        the same ``settings`` (the config and the data's sizes), then give every rank rank
        0's parameters (:meth:`sync_parameters`).

        Both would otherwise wait forever: MLX's ring backend never fails a collective that
        a rank which stopped before it (its data failed to load) will never join, and ranks
        started with different settings train different models, or different numbers of
        steps, into each other's collectives. After ``MLX_TCN_CONNECT_TIMEOUT`` seconds (60)
        the watchdog ends this rank with a message.
        """
        if self.size == 1:
            return
        seconds = _connect_timeout()
        watchdog = _start_watchdog(seconds, (
            f"mlx-tcn: error: rank {self.rank} of {self.size}: another rank did not reach "
            f"the start of training within {seconds:g} s (did it fail? see its output); "
            f"stopped this one ({ENV_CONNECT_TIMEOUT} sets the time)"))  # fmt: skip
        try:
            text = json.dumps(settings, sort_keys=True, default=str).encode()
            digest = np.frombuffer(hashlib.sha256(text).digest()[:8], dtype=np.int32)
            every = np.array(mx.distributed.all_gather(mx.array(digest), group=self.group))
            every = every.reshape(self.size, -1)
            if (every != every[0]).any():
                differ = [r for r in range(self.size) if (every[r] != every[0]).any()]
                raise DistributedError(
                    f"rank {self.rank} of {self.size}: the ranks were started with different "
                    f"settings or data (ranks {differ} differ from rank 0): every rank must run "
                    "the same command on the same data"
                )
            self.sync_parameters(model)
        finally:
            watchdog.kill()
            watchdog.wait()

    def sync_parameters(self, model: nn.Module) -> None:
        """Give every rank rank 0's parameters (a sum in which the other ranks add zeros)."""
        if self.size == 1:
            return
        keep = self.is_main
        params = tree_map(
            lambda p: mx.distributed.all_sum(p if keep else mx.zeros_like(p), group=self.group),
            model.parameters(),
        )
        model.update(params)
        mx.eval(model.parameters())

    def split_random_state(self) -> None:
        """Give each rank its own random stream (dropout masks), derived from the shared one.

        Rank 0 keeps the key a checkpoint saves, so a resume with any number of processes
        continues rank 0's stream and derives the others' again.
        """
        if self.rank == 0:
            return
        hi, lo = (int(v) for v in mx.random.state[0].tolist())
        mx.random.seed((((hi << 32) | lo) ^ (self.rank * 0x9E3779B97F4A7C15)) % (1 << 64))

    def mean(self, value: mx.array) -> float:
        """The mean of a scalar over the ranks (a batch's loss: each rank has its part's)."""
        if self.size == 1:
            return value.item()
        return mx.distributed.all_sum(value, group=self.group).item() / self.size

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any (a stop request: Ctrl-C)."""
        if self.size == 1:
            return flag
        return mx.distributed.all_sum(mx.array(float(flag)), group=self.group).item() > 0

    def evaluate(
        self, model: nn.Module, kind: str, batches: Any, max_batches: int | None
    ) -> dict[str, float]:
        """Metrics over ``batches`` (the first ``max_batches``), shared out between the ranks."""
        if self.size == 1:
            return evaluate_split(model, kind, batches, max_batches)
        mine = itertools.islice(batches, self.rank, max_batches, self.size)
        sums = mx.array(evaluate_sums(model, kind, mine), dtype=mx.float32)
        return metrics_from_sums(mx.distributed.all_sum(sums, group=self.group).tolist())

    @contextmanager
    def lost_ranks(self) -> Iterator[None]:
        """Turns MLX's error for a rank that died (or whose connection broke) into a
        :class:`DistributedError` that says what happened and what is left."""
        try:
            yield
        except RuntimeError as err:
            if self.size == 1 or "[ring]" not in str(err):
                raise
            raise DistributedError(
                f"rank {self.rank} of {self.size} lost its connection to another rank ({err}): "
                "did a rank stop? The run folder keeps its last checkpoint; continue with "
                "mlx-tcn train --resume RUN"
            ) from None

    def barrier(self) -> None:
        """Wait until every rank gets here (rank 0 has finished writing)."""
        if self.size > 1:
            mx.eval(mx.distributed.all_sum(mx.array(0.0), group=self.group))


# What an MPI launcher (Open MPI's mpirun, MPICH's mpiexec) sets in each rank's environment.
_MPI_SIZE = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
_MPI_RANK = ("OMPI_COMM_WORLD_RANK", "PMI_RANK")


def _mpi_size() -> int:
    for name in _MPI_SIZE:
        try:
            return int(os.environ[name])
        except (KeyError, ValueError):
            continue
    return 1


def backend() -> str | None:
    """The backend this process was launched for: ``"ring"`` (``MLX_RANK`` and a hostfile
    of several ranks, as ``mlx.launch --backend ring`` sets them), ``"mpi"`` (started by
    ``mpirun``/``mpiexec`` with several ranks), or ``None`` for a single process."""
    if "MLX_RANK" in os.environ:
        try:
            with open(os.environ.get("MLX_HOSTFILE", "")) as f:
                hosts = json.load(f)
        except (OSError, ValueError):
            hosts = []  # mlx.launch -n 1 writes an empty hostfile
        if isinstance(hosts, list) and len(hosts) > 1:
            return "ring"
    return "mpi" if _mpi_size() > 1 else None


def launched() -> bool:
    """True when this process was started as one rank of several (ring or MPI)."""
    return backend() is not None


def _mpi_library() -> None:
    """Point MLX at the MPI library (``MLX_MPI_LIBNAME``) unless the user did: MLX looks for
    ``libmpi.so``, which only MPI's development package provides (Debian: ``libmpi.so.40``)."""
    if "MLX_MPI_LIBNAME" not in os.environ:
        import ctypes.util

        found = ctypes.util.find_library("mpi")
        if found:
            os.environ["MLX_MPI_LIBNAME"] = found


def connect(timeout: float | None = None) -> World:
    """Join the other ranks when launched as one of several; else a single-process world.

    Args:
        timeout: seconds to wait for every rank (default ``MLX_TCN_CONNECT_TIMEOUT`` or 60).
            MLX's ring backend waits forever for a rank that never starts, so a watchdog
            process ends this one with a message when the time is up.

    Raises:
        DistributedError: a rank could not connect.
    """
    kind = backend()
    if kind is None:
        _check_hostfile()
        return World()
    seconds = _connect_timeout() if timeout is None else timeout
    if kind == "ring":
        rank = os.environ["MLX_RANK"]
        peers = os.environ["MLX_HOSTFILE"]
    else:
        _mpi_library()
        rank = next((os.environ[n] for n in _MPI_RANK if n in os.environ), "?")
        peers = f"the MPI job ({_mpi_size()} ranks)"
    message = (
        f"mlx-tcn: error: rank {rank} could not connect to the other ranks of {peers} "
        f"within {seconds:g} s (is every rank started, is each address reachable and its "
        f"port free?); stopped it ({ENV_CONNECT_TIMEOUT} sets the time)"
    )
    watchdog = _start_watchdog(seconds, message)
    try:
        group = mx.distributed.init(backend=kind, strict=True)
    except RuntimeError as err:
        hint = " (set MLX_MPI_LIBNAME to your libmpi.so)" if kind == "mpi" else ""
        raise DistributedError(f"rank {rank} could not connect ({peers}): {err}{hint}") from None
    finally:
        watchdog.kill()
        watchdog.wait()
    return World(group, kind)


def _check_hostfile() -> None:
    """Refuse a hostfile that ``MLX_RANK`` names but that is not JSON, and warn about one
    that cannot be read: :func:`backend` takes either for a single process (``mlx.launch -n
    1`` writes an empty one), so a broken file would train one process where several were
    meant, silently."""
    path = os.environ.get("MLX_HOSTFILE", "")
    if "MLX_RANK" not in os.environ or not path:
        return
    try:
        with open(path) as f:
            text = f.read()
    except OSError as err:  # a launcher's file already gone, or a typo: say so, train on
        logging.getLogger(__name__).warning(
            "MLX_RANK is set but its hostfile MLX_HOSTFILE=%s cannot be read (%s): training "
            "in one process", path, err.strerror or err)  # fmt: skip
        return
    if text.strip():
        try:
            json.loads(text)
        except ValueError as err:
            raise DistributedError(
                f"MLX_HOSTFILE={path} is not a JSON list of hosts ({err}); unset MLX_RANK and "
                "MLX_HOSTFILE to train in one process"
            ) from None


def _connect_timeout() -> float:
    text = os.environ.get(ENV_CONNECT_TIMEOUT, "").strip()
    if not text:
        return DEFAULT_CONNECT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(
            f"{ENV_CONNECT_TIMEOUT} must be a positive number of seconds, got {text!r}"
        )
    return value


_WATCHDOG = (
    "import os, sys, time\n"
    "time.sleep(float(sys.argv[1]))\n"
    "sys.stderr.write(sys.argv[2] + '\\n')\n"
    "os.kill(int(sys.argv[3]), int(sys.argv[4]))\n"
)


def _start_watchdog(seconds: float, message: str) -> subprocess.Popen:
    """A process that prints ``message`` and terminates this one after ``seconds``.

    A process, not a thread: ``mx.distributed.init`` holds the GIL while it waits.
    """
    argv = [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(seconds), message,
            str(os.getpid()), str(int(signal.SIGTERM))]  # fmt: skip
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL)
