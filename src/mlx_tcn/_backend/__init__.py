"""Make MLX's CPU backend fast on Linux, and report what it runs on.

The ``mlx[cpu]`` wheel for Linux links a vendored *reference* BLAS (netlib), so
``mx.matmul`` and every convolution lowered to a GEMM run at a few GFLOP/s. On Linux
x86_64 mlx-tcn depends on ``scipy-openblas32`` (OpenBLAS built with ``DYNAMIC_ARCH``: it
picks its kernels for the running CPU, from old SSE machines to AVX-512; no system
libraries needed). Its symbols carry a ``scipy_`` prefix, so it cannot simply be
preloaded in place of the reference library. Instead :func:`setup` loads it and points
the GOT (global offset table) slots through which MLX's own shared objects call
``cblas_sgemm``, ``cblas_dgemm`` and ``cblas_cgemm`` at OpenBLAS's functions. This works
whatever was imported first, also after MLX already ran a matmul. Every slot is checked
before it is written (it must currently hold the matching ``cblas_*`` function or MLX's
own lazy-binding stub), and a small matmul is compared against NumPy afterwards; any
problem undoes the change and becomes a single warning, never an import error.

On macOS nothing is changed: MLX uses Accelerate and Metal.

The modules, one concern each: :mod:`.elf` (parsing an ELF file's GOT relocations),
:mod:`.got` (finding and rewriting slots in this process), :mod:`.blas` (choosing, loading,
verifying and undoing the BLAS), :mod:`.runtime` (threads, lanes, cache limit) and
:mod:`.report` (``mlx-tcn info``).

Environment variables (read once, by :func:`setup`):

``MLX_TCN_BLAS``
    ``0`` (or ``off``/``false``/``no``/``none``) leaves MLX's BLAS alone. A path to a
    shared library (or a name the dynamic linker finds, such as ``libopenblas.so.0``)
    selects it instead of the bundled OpenBLAS; it must export the CBLAS
    functions (``cblas_sgemm`` ...) with 32-bit integers, optionally behind a prefix
    such as ``scipy_`` (e.g. ``libmkl_rt.so``, ``libopenblas.so.0``, ``libblis.so``).
``MLX_TCN_BLAS_CORE``
    Which of OpenBLAS's kernel sets to load. ``auto`` (default): OpenBLAS's AVX-512
    kernels (``SkylakeX``, or ``CooperLake`` with AVX-512 BF16) when Linux reports the
    AVX-512 F/CD/BW/DQ/VL flags, since OpenBLAS's own detection runs its AVX2 kernels on
    CPUs it does not know yet (AMD Zen 5), else OpenBLAS's detection. ``native``:
    OpenBLAS's detection always. An OpenBLAS core name (``Haswell``, ``SkylakeX``, ...)
    forces that set; AVX-512 sets on a CPU without AVX-512 are refused with a warning.
    ``OPENBLAS_CORETYPE``, when set, is respected under ``auto``.
``MLX_TCN_THREADS``
    How many CPU threads mlx-tcn's models use. MLX runs its CPU operations one at a time on
    one thread and only the GEMMs inside use more; the elementwise work (activations,
    padding, residual adds, dropout) stays on one core. So when MLX's GEMMs go to the
    bundled OpenBLAS, :func:`setup` makes OpenBLAS single-threaded and :class:`mlx_tcn.TCN`
    instead splits a forward over this many lanes (MLX CPU streams, see
    :mod:`mlx_tcn.parallel`), which run in parallel, each with all of its work. Default: the CPUs this process may use, at most 8. ``1`` turns
    the split off and leaves OpenBLAS's own threading as it was.
``MLX_BFS_MAX_WIDTH``
    MLX's own variable: how wide its breadth-first evaluation order goes (MLX's default
    20). On the CPU :func:`setup` sets it to 256 unless it is set, so that a compiled
    training step split over the lanes keeps both busy (see
    :func:`.runtime.setup_scheduling`); it takes effect when ``mlx_tcn`` is imported before
    MLX evaluated anything.
``MLX_TCN_CACHE_LIMIT``
    MLX's buffer cache limit. MLX's CPU default (32 MiB) makes training steps 15-45%
    slower through page faults, so :func:`setup` raises it to a quarter of RAM, at most
    4 GiB (it never lowers a larger limit, such as Metal's). ``0``/``off`` keeps MLX's
    default; a size such as ``2GB``, ``512MiB`` or a byte count sets it.
"""

from __future__ import annotations

import warnings

from . import blas, runtime
from .blas import ENV_BLAS, ENV_CORE, blas_provider
from .report import format_info, info, matmul_gflops
from .runtime import (
    ENV_CACHE,
    ENV_THREADS,
    cpu_lanes,
    cpu_streams,
    on_lane,
    parallel_lanes,
    parallel_streams,
)

__all__ = [
    "ENV_BLAS",
    "ENV_CACHE",
    "ENV_CORE",
    "ENV_THREADS",
    "blas_provider",
    "cpu_lanes",
    "cpu_streams",
    "format_info",
    "info",
    "matmul_gflops",
    "on_lane",
    "parallel_lanes",
    "parallel_streams",
    "setup",
]

_done = False


def setup() -> None:
    """Route MLX's CPU matmul to an optimized BLAS and size MLX's buffer cache.

    Idempotent and safe: called by ``import mlx_tcn``; every failure becomes one
    ``RuntimeWarning`` and leaves MLX as it was. See the module docstring for the
    environment variables.
    """
    global _done
    if _done:
        return
    _done = True
    try:  # first: MLX reads it at its first evaluation (the BLAS check below evaluates)
        runtime.setup_scheduling()
    except Exception as exc:
        _warn(f"could not set {runtime.ENV_BFS} ({exc!r}); set it yourself to silence this.")
    try:
        blas.setup_blas()
    except Exception as exc:  # never break the import
        blas.STATE.note = f"failed: {exc!r}"
        _warn(
            f"could not switch MLX to an optimized BLAS ({exc!r}); MLX's CPU matmul keeps its "
            f"slow reference BLAS. Set {ENV_BLAS}=0 to silence this."
        )
    try:
        runtime.setup_threads()
    except Exception as exc:
        _warn(
            f"could not set up parallel CPU lanes ({exc!r}); models run on one MLX stream. "
            f"Set {ENV_THREADS}=1 to silence this."
        )
    try:
        runtime.setup_cache()
    except Exception as exc:
        _warn(
            f"could not set MLX's buffer cache limit ({exc!r}); set {ENV_CACHE}=0 to silence this."
        )


def _warn(message: str) -> None:
    warnings.warn(f"mlx_tcn: {message}", RuntimeWarning, stacklevel=3)
