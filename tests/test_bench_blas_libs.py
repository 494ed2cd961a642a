"""benchmarks/bench_blas_libs.py: its arguments, its product check and one worker's rates."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_blas_libs  # noqa: E402

SMALL = ((64, 16, 8), (33, 5, 7))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lib", "nameonly"], "--lib must be NAME=PATH"),
        (["--lib", "=/x.so"], "--lib must be NAME=PATH"),
        (["--rounds", "0"], "--rounds and --repeat must be at least 1"),
        (["--repeat", "0"], "--rounds and --repeat must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench_blas_libs.main(argv)
    assert re.search(message, capsys.readouterr().err)


def test_a_wrong_product_is_refused_not_timed(monkeypatch):
    def half_gemm(a, b, c):
        c[...] = a @ b
        c[0, 0] += 1.0  # one wrong element

    monkeypatch.setattr(bench_blas_libs, "SHAPES", SMALL)
    monkeypatch.setattr(bench_blas_libs, "_sgemm", lambda path, symbol: half_gemm)
    with pytest.raises(SystemExit, match="wrong product for \\(64, 16, 8\\)"):
        bench_blas_libs._worker("/some/lib.so::cblas_sgemm", 1)


def test_a_correct_product_is_timed_per_shape(monkeypatch):
    calls = []

    def gemm(a, b, c):
        calls.append(a.shape)
        np.matmul(a, b, out=c)

    monkeypatch.setattr(bench_blas_libs, "SHAPES", SMALL)
    monkeypatch.setattr(bench_blas_libs, "_sgemm", lambda path, symbol: gemm)
    rates = bench_blas_libs._worker("/some/lib.so::cblas_sgemm", 3)
    assert set(rates) == {"64x16x8", "33x5x7"}
    assert all(r > 0 for r in rates.values())
    assert calls == [(64, 16)] * 4 + [(33, 5)] * 4  # the checked call, then 3 timed


def test_the_packaged_openblas_through_ctypes(monkeypatch):
    libs = bench_blas_libs._default_libs()
    if "scipy-openblas32" not in libs:
        pytest.skip("scipy-openblas32 is installed with mlx-tcn on Linux x86_64 only")
    monkeypatch.setattr(bench_blas_libs, "SHAPES", SMALL)
    rates = bench_blas_libs._worker(libs["scipy-openblas32"] + "::cblas_sgemm", 2)
    assert set(rates) == {"64x16x8", "33x5x7"} and all(r > 0 for r in rates.values())
