"""Which BLAS multiplies the convolutions' matrices fastest on this CPU?

``ops.conv1d`` runs one GEMM per kernel tap, ``(rows, C_in) @ (C_in, C_out)``; this script
times ``cblas_sgemm`` (row-major, no transposes, float32) of each library on those shapes,
so that a candidate BLAS can be judged before it is wired into MLX (``MLX_TCN_BLAS``,
docs/blas.md)::

    python benchmarks/bench_blas_libs.py                       # scipy-openblas32 (+ MKL if installed)
    python benchmarks/bench_blas_libs.py --lib mkl=/path/libmkl_rt.so.3 --cython-blis
    python benchmarks/bench_blas_libs.py --threads 1,2 --rounds 6

Each library runs in its own fresh process per round, the libraries alternated (order
reversed every other round); a process times each shape ``--repeat`` times and keeps the
best, after one call checked against NumPy in float64. The table gives GFLOP/s as the median
over the rounds (lowest-highest round).

Libraries:

* ``scipy-openblas32`` (mlx-tcn's own; found in this interpreter's packages); every
  OpenBLAS (a path containing "openblas") is loaded with the kernels ``import mlx_tcn``
  would choose here: ``--coretype``, else ``OPENBLAS_CORETYPE``, else
  ``mlx_tcn._backend.blas.choose_core`` when mlx-tcn is importable;
* ``mkl``: ``libmkl_rt.so.*`` in this environment's ``lib`` (``pip install mkl``), if there;
* ``--lib NAME=PATH[:SYMBOL]``: any library exporting the CBLAS ``sgemm`` (default symbol
  ``cblas_sgemm``, with ``scipy_`` tried as a prefix);
* ``--cython-blis``: the BLIS inside the ``blis`` package (spaCy's), through its
  ``blis.py.gemm``; it exports no CBLAS, so MLX could not use it as it is.

Thread counts are set per process through ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``BLIS_NUM_THREADS`` and ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import statistics
import subprocess
import sys
import time

# (rows, C_in, C_out): one tap of a hidden convolution of the bench_models.py models
SHAPES = (
    (16384, 128, 128),  # mid-size: B=16, T=1024, 128 channels
    (4096, 128, 128),  # 10 levels, k=4: B=4, T=1024
    (2048, 256, 256),  # wide, batch 1: T=2048, 256 channels
    (16384, 64, 64),  # short, batch 64: B=64, T=256, 64 channels
    (512, 64, 64),  # 64 channels, batch 1: T=512
    (4096, 16, 16),  # narrow, batch 1: T=4096, 16 channels
    (50176, 25, 25),  # sMNIST: B=64, T=784, 25 channels
    (2048, 2048, 2048),  # the large-GEMM reference of bench_models.py
)
CBLAS_ROW_MAJOR, CBLAS_NO_TRANS = 101, 111


def _default_libs() -> dict[str, str]:
    libs = {}
    try:
        import importlib.util

        spec = importlib.util.find_spec("scipy_openblas32")
        if spec is not None and spec.submodule_search_locations:
            found = glob.glob(
                os.path.join(spec.submodule_search_locations[0], "lib", "libscipy_openblas*.so")
            )
            if found:
                libs["scipy-openblas32"] = found[0]
    except ImportError:
        pass
    mkl = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    if mkl:
        libs["mkl"] = mkl[-1]
    return libs


def _openblas_coretype() -> str | None:
    """The kernels ``import mlx_tcn`` would load scipy-openblas32 with here."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return os.environ["OPENBLAS_CORETYPE"]
    try:
        from mlx_tcn._backend import blas
    except ImportError:
        return None
    core, _ = blas.choose_core(blas.cpu_flags(), os.environ.get(blas.ENV_CORE, "auto"), "")
    return core


# -- worker (one library, one thread count, in its own process) --------------------------


def _sgemm(path: str, symbol: str):
    lib = ctypes.CDLL(path)
    names = [symbol, "scipy_" + symbol]
    for name in names:
        if hasattr(lib, name):
            fn = getattr(lib, name)
            break
    else:
        raise SystemExit(f"{path} exports none of {names}")
    f, i, p = ctypes.c_float, ctypes.c_int, ctypes.c_void_p
    fn.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    fn.restype = None

    def gemm(a, b, c):
        m, k = a.shape
        n = b.shape[1]
        fn(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, m, n, k, 1.0,
           a.ctypes.data, k, b.ctypes.data, n, 0.0, c.ctypes.data, n)  # fmt: skip

    return gemm


def _blis_gemm():
    from blis.py import gemm as blis_gemm

    def gemm(a, b, c):
        blis_gemm(a, b, out=c)

    return gemm


def _worker(kind: str, repeat: int) -> dict:
    import numpy as np

    if kind == "cython-blis":
        gemm = _blis_gemm()
    else:
        path, _, symbol = kind.partition("::")
        gemm = _sgemm(path, symbol or "cblas_sgemm")
    rng = np.random.default_rng(0)
    out = {}
    for m, k, n in SHAPES:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        gemm(a, b, c)
        want = a.astype(np.float64) @ b.astype(np.float64)
        err = float(np.max(np.abs(c - want)) / (np.max(np.abs(want)) + 1e-30))
        if err > 1e-4:
            raise SystemExit(f"{kind}: wrong product for {(m, k, n)} (relative error {err:.2e})")
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            gemm(a, b, c)
            best = min(best, time.perf_counter() - t0)
        out[f"{m}x{k}x{n}"] = 2.0 * m * k * n / best / 1e9
    return out


# -- driver -------------------------------------------------------------------------------


def _run(kind: str, threads: int, repeat: int, coretype: str | None) -> dict | None:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "OMP_NUM_THREADS"):
        env[var] = str(threads)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        print(f"  {kind} ({threads} threads) failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", action="append", default=[], help="NAME=PATH[:SYMBOL]")
    ap.add_argument("--cython-blis", action="store_true", help="also the blis package's BLIS")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts (1,2)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=7, help="timed calls per shape per process")
    ap.add_argument("--coretype", help="OPENBLAS_CORETYPE for OpenBLAS libraries")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.repeat < 1:
        ap.error("--rounds and --repeat must be at least 1")
    if args.worker:
        print(json.dumps(_worker(args.worker, args.repeat)))
        return

    libs = {name: f"{path}::cblas_sgemm" for name, path in _default_libs().items()}
    for spec in args.lib:
        name, _, target = spec.partition("=")
        path, _, symbol = target.partition(":")
        if not name or not path:
            ap.error(f"--lib must be NAME=PATH[:SYMBOL], got {spec!r}")
        libs[name] = f"{path}::{symbol or 'cblas_sgemm'}"
    if args.cython_blis:
        libs["cython-blis"] = "cython-blis"
    if not libs:
        ap.error("no library found: install scipy-openblas32 or give --lib")
    coretype = args.coretype or _openblas_coretype()
    threads = [int(t) for t in args.threads.split(",")]
    names = list(libs)
    results: dict = {n: {t: [] for t in threads} for n in names}
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for t in threads:
            for name in order:
                core = coretype if "openblas" in libs[name].lower() else None
                got = _run(libs[name], t, args.repeat, core)
                if got is not None:
                    results[name][t].append(got)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    print(f"OpenBLAS kernels: {coretype or 'OpenBLAS own detection'}")
    print(f"GFLOP/s of cblas_sgemm, (rows, C_in) @ (C_in, C_out), median (lowest-highest) over "
          f"{args.rounds} alternated rounds, best of {args.repeat} calls per process\n")  # fmt: skip
    shapes = [f"{m}x{k}x{n}" for m, k, n in SHAPES]
    print("| library | threads | " + " | ".join(shapes) + " |")
    print("|---|---:|" + "---:|" * len(shapes))
    for name in names:
        for t in threads:
            runs = results[name][t]
            if not runs:
                continue
            cells = []
            for s in shapes:
                vals = [run[s] for run in runs]
                cells.append(f"{statistics.median(vals):.0f} ({min(vals):.0f}-{max(vals):.0f})")
            print(f"| {name} | {t} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"coretype": coretype, "libs": libs, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
