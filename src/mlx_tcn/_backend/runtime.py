"""MLX runtime settings: the parallel CPU lanes (``MLX_TCN_THREADS``) and the buffer
cache limit (``MLX_TCN_CACHE_LIMIT``).

A *lane* is an MLX CPU stream (``mx.new_stream(mx.cpu)``) that runs one part of a split
forward (see :mod:`mlx_tcn.parallel`); "stream" in the rest of the library means the
chunked inference of :mod:`mlx_tcn._stateful`, hence the other word.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from . import blas

__all__ = [
    "DEFAULT_BFS_WIDTH",
    "ENV_BFS",
    "ENV_CACHE",
    "ENV_THREADS",
    "STATE",
    "cpu_lanes",
    "cpu_streams",
    "default_cache_limit",
    "parallel_lanes",
    "local_ranks",
    "on_lane",
    "parallel_streams",
    "parse_size",
    "setup_cache",
    "setup_scheduling",
    "setup_threads",
]

ENV_BFS = "MLX_BFS_MAX_WIDTH"  # MLX's own variable, read once, at MLX's first evaluation
DEFAULT_BFS_WIDTH = 256  # MLX's default is 20
ENV_CACHE = "MLX_TCN_CACHE_LIMIT"
ENV_THREADS = "MLX_TCN_THREADS"
DEFAULT_CACHE_CAP = 4 << 30
DEFAULT_MAX_STREAMS = 8


@dataclass
class RuntimeState:
    cache_limit: int | None = None
    lanes: int = 1  # CPU lanes a TCN forward is split over (1: no split)
    lane_streams: list[Any] = field(default_factory=list)
    bfs_width: str | None = None  # MLX_BFS_MAX_WIDTH and its source, for mlx-tcn info


STATE = RuntimeState()

#: The most lanes MLX_TCN_THREADS may ask for (each one an MLX stream with its own thread).
MAX_LANES = 256


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def local_ranks() -> int:
    """How many ranks of a distributed run share this process's host, this one included
    (from MPI's local size, or ``MLX_HOSTFILE``/``MLX_RANK`` as ``mlx.launch`` sets them);
    1 outside such a run."""
    for name in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"):  # Open MPI, MPICH
        if os.environ.get(name, "").isdigit():
            return max(int(os.environ[name]), 1)
    try:
        with open(os.environ["MLX_HOSTFILE"]) as f:
            hosts = [node[0].rsplit(":", 1)[0] for node in json.load(f)]
        mine = hosts[int(os.environ["MLX_RANK"])]
    except (KeyError, OSError, ValueError, TypeError, IndexError, AttributeError):
        return 1
    return max(hosts.count(mine), 1)


def setup_threads() -> None:
    """Split models over ``MLX_TCN_THREADS`` CPU lanes with a single-threaded BLAS.

    The default is this process's share of the CPUs: all of them, or, when several ranks of
    a distributed run share the machine, the CPUs divided by their number (then OpenBLAS,
    unless ``OPENBLAS_NUM_THREADS`` is set, also gets no more than that share).
    """
    choice = os.environ.get(ENV_THREADS, "").strip()
    ranks = local_ranks()
    share = max(_available_cpus() // ranks, 1)
    if choice:
        if not (choice.isascii() and choice.isdigit()) or int(choice) < 1:
            raise ValueError(f"{ENV_THREADS} must be a positive integer, got {choice!r}")
        if int(choice) > MAX_LANES:  # each lane is an MLX stream and a thread
            raise ValueError(f"{ENV_THREADS} must be at most {MAX_LANES}, got {choice}")
        wanted = int(choice)
    else:
        wanted = min(share, DEFAULT_MAX_STREAMS)
    if wanted <= 1:
        if ranks > 1 and "OPENBLAS_NUM_THREADS" not in os.environ:
            blas.set_blas_threads(share)
        return
    # Only with a BLAS whose thread count we own: two lanes each running a
    # multi-threaded GEMM would oversubscribe the cores (OpenBLAS threads busy-wait).
    if not blas.set_blas_threads(1):
        return
    STATE.lanes = wanted


def parallel_lanes() -> int:
    """How many CPU lanes a :class:`mlx_tcn.TCN` forward may be split over (1: none)."""
    return STATE.lanes


#: Each thread's lanes: MLX's streams belong to the thread that made them (a stream of
#: another thread fails with "There is no Stream(cpu, 2) in current thread"), so a model
#: called from several threads (a server's pool) gets lanes in each.
_THREAD = threading.local()


def cpu_lanes() -> list[Any]:
    """The ``parallel_lanes()`` lanes (MLX CPU streams) of the calling thread, created on
    its first split forward and reused."""
    import mlx.core as mx

    streams = _thread_lanes()
    while len(streams) < STATE.lanes:
        streams.append(mx.new_stream(mx.cpu))
    if threading.current_thread() is threading.main_thread():
        STATE.lane_streams = streams  # the main thread's, as mlx-tcn info reports them
    return streams[: STATE.lanes]


def _thread_lanes() -> list[Any]:
    if not hasattr(_THREAD, "streams"):
        _THREAD.streams = []
    return _THREAD.streams


def on_lane() -> bool:
    """Whether the current default stream is one of the lanes: code running inside a part
    of a split forward, which must not split its own work over the lanes again."""
    import mlx.core as mx

    return mx.default_stream(mx.default_device()) in _thread_lanes()


# The names before the lanes were called lanes; kept for code that uses them.
parallel_streams = parallel_lanes
cpu_streams = cpu_lanes


def parse_size(text: str) -> int:
    """Bytes in a size such as ``2GB``, ``512MiB``, ``1.5g`` or ``1000``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", text.lower())
    if not match:
        raise ValueError(f"{ENV_CACHE} must be a size such as 2GB or 512MiB, got {text!r}")
    scale = 1 << (10 * "bkmgt".index(match.group(2) or "b"))
    size = int(float(match.group(1)) * scale)
    if size >= 1 << 63:
        raise ValueError(f"{ENV_CACHE} must be under 8 EiB, got {text!r}")
    return size


def default_cache_limit() -> int:
    """A quarter of RAM, at most 4 GiB."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 30
    return min(DEFAULT_CACHE_CAP, ram // 4)


def setup_scheduling() -> None:
    """Widen MLX's evaluation order on the CPU: ``MLX_BFS_MAX_WIDTH`` to 256 unless set.

    MLX orders a graph's operations breadth first, at most ``MLX_BFS_MAX_WIDTH`` (20) wide,
    and dispatches them in that order with only a few in flight. In a compiled training
    step whose batch is split over the CPU lanes, 20 left one lane idle while the other
    ran ahead: the sMNIST model's step used 1.64 cores of 2 against 1.86 eagerly. At 256
    the lanes' work interleaves (1.92 cores), and the step took 0.80-0.87 of the time
    (docs/blas.md). MLX reads the variable once, at its first evaluation in the process,
    so this works when ``mlx_tcn`` is imported before anything was evaluated; a value the
    user set is kept, and on a GPU (not measured) nothing is changed.
    """
    import mlx.core as mx

    if ENV_BFS in os.environ and not _valid_bfs_width(os.environ[ENV_BFS]):
        # MLX 0.32 hangs at its first evaluation with an empty, non-numeric or zero width
        bad = os.environ.pop(ENV_BFS)
        if mx.default_device().type == mx.DeviceType.cpu:
            os.environ[ENV_BFS] = str(DEFAULT_BFS_WIDTH)
            STATE.bfs_width = f"{DEFAULT_BFS_WIDTH} (mlx-tcn's default; {bad!r} was not valid)"
        raise ValueError(
            f"{ENV_BFS} must be a positive integer, got {bad!r} (MLX would hang at its first "
            f"evaluation); using {os.environ.get(ENV_BFS, 'MLX default')} instead"
        )
    if ENV_BFS in os.environ:
        STATE.bfs_width = f"{os.environ[ENV_BFS]} (from the environment)"
    elif mx.default_device().type == mx.DeviceType.cpu:
        os.environ[ENV_BFS] = str(DEFAULT_BFS_WIDTH)
        STATE.bfs_width = f"{DEFAULT_BFS_WIDTH} (mlx-tcn's default for the CPU)"


def _valid_bfs_width(text: str) -> bool:
    return text.strip().isascii() and text.strip().isdigit() and int(text) > 0


def setup_cache() -> None:
    """Raise MLX's buffer cache limit (never lower a larger default, such as Metal's)."""
    choice = os.environ.get(ENV_CACHE, "").strip()
    if choice.lower() in blas.OFF:
        return
    import mlx.core as mx

    limit = parse_size(choice) if choice else default_cache_limit()
    previous = mx.set_cache_limit(limit)
    if not choice and previous > limit:
        mx.set_cache_limit(previous)
        limit = previous
    STATE.cache_limit = limit
