"""What MLX runs on, for ``mlx-tcn info``: versions, device, BLAS, kernels, GFLOP/s."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from . import blas, runtime

__all__ = ["float32_matmul", "format_info", "info", "matmul_gflops"]


def matmul_gflops(n: int = 1024, repeat: int = 3) -> float:
    """Best-of-``repeat`` GFLOP/s of ``n x n`` float32 ``mx.matmul`` on the default device.

    With parallel CPU lanes (single-threaded BLAS, see ``MLX_TCN_THREADS``) one matmul
    runs on each lane at once and the figure is their total: the machine's GEMM rate as
    mlx-tcn's models use it.
    """
    import mlx.core as mx

    on_cpu = mx.default_device().type == mx.DeviceType.cpu
    if on_cpu and runtime.STATE.lanes > 1:
        lanes = runtime.cpu_lanes()
    else:
        lanes = [mx.default_stream(mx.default_device())]
    a = mx.random.normal((n, n))
    b = mx.random.normal((n, n))
    mx.eval(a, b)

    def run() -> None:
        outs = []
        for lane in lanes:
            with mx.stream(lane):
                outs.append(a @ b)
        mx.eval(outs)

    run()  # warm up threads and buffers
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 * len(lanes) / best / 1e9


def _blas_name(provider: str | None) -> str:
    if sys.platform == "darwin":
        return "Accelerate (macOS)"
    if provider is None:
        return "unknown"
    if blas.STATE.library and provider == os.path.realpath(blas.STATE.library):
        return f"OpenBLAS ({provider})" if "openblas" in provider else provider
    if "mlx_cpu.libs" in provider or "libblas" in Path(provider).name:
        return "MLX reference BLAS"
    return provider


def float32_matmul(device_type: Any, env: str | None) -> str:
    """How MLX multiplies float32 matrices on ``device_type`` given ``MLX_ENABLE_TF32``.

    On CUDA GPUs, and on Apple GPUs with neural accelerators (M5 and later), MLX runs float32
    matmuls and convolutions at TF32 precision (a 10-bit mantissa, ~1e-3 relative) unless
    ``MLX_ENABLE_TF32=0`` is set before its first operation: outputs then differ from the
    CPU's, from pytorch-tcn's and between a stream and the offline pass by ~1e-3 relative.
    """
    import mlx.core as mx

    if device_type == mx.DeviceType.cpu:
        return "float32"
    if (env or "").strip() == "0":
        return "float32 (MLX_ENABLE_TF32=0)"
    return "TF32 on CUDA GPUs and Apple M5 or later; MLX_ENABLE_TF32=0 gives float32"


def info(benchmark: bool = False) -> dict[str, Any]:
    """What MLX runs on: versions, device, BLAS in use and, optionally, a GFLOP/s figure.

    Args:
        benchmark: also time a 1024x1024 float32 matmul (about a second on a slow BLAS).

    Returns:
        A plain dict (JSON-serialisable) with keys ``mlx_version``, ``default_device``,
        ``platform``, ``machine``, ``python``, ``blas``, ``blas_path``, ``blas_note``,
        ``blas_core`` (OpenBLAS's kernel set and how it was chosen), ``cpu_count``,
        ``blas_threads``, ``parallel_streams``, ``cache_limit``, ``bfs_max_width`` (MLX's
        evaluation width and where it came from), ``float32_matmul`` (see
        :func:`float32_matmul`) and, with ``benchmark``, ``matmul_gflops``.
    """
    import mlx.core as mx

    from . import setup

    setup()
    provider = blas.blas_provider()
    core = blas.STATE.core
    uses_core = core is not None and blas.STATE.method == "got"
    result: dict[str, Any] = {
        "mlx_version": mx.__version__,
        "default_device": str(mx.default_device()),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "blas": _blas_name(provider),
        "blas_path": provider,
        "blas_note": blas.STATE.note,
        "blas_core": f"{core} ({blas.STATE.core_choice})" if uses_core else None,
        "cpu_count": os.cpu_count(),
        "blas_threads": blas.blas_threads(),
        "parallel_streams": runtime.STATE.lanes,
        "cache_limit": runtime.STATE.cache_limit,
        "bfs_max_width": runtime.STATE.bfs_width or os.environ.get(runtime.ENV_BFS),
        "float32_matmul": float32_matmul(
            mx.default_device().type, os.environ.get("MLX_ENABLE_TF32")
        ),
    }
    if benchmark:
        result["matmul_gflops"] = round(matmul_gflops(), 1)
    return result


def format_info(d: dict[str, Any]) -> str:
    """Render :func:`info`'s dict as aligned ``key: value`` lines for a terminal."""
    width = max(len(k) for k in d) if d else 0
    lines = []
    for key, value in d.items():
        if key == "cache_limit" and isinstance(value, int):
            value = f"{value / (1 << 30):.2f} GiB"
        elif key == "matmul_gflops":
            value = f"{value} GFLOP/s (1024x1024 float32)"
        elif value in (None, ""):
            value = "-"
        lines.append(f"{key.ljust(width)}  {value}")
    return "\n".join(lines)
