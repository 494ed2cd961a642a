"""The BLAS switch and ``info()``: MLX's matmul stays correct and, on Linux, gets fast."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import textwrap
import time

import mlx.core as mx
import numpy as np
import pytest

from mlx_tcn import _backend

_backend.setup()

LINUX = sys.platform == "linux"
HAS_OPENBLAS = importlib.util.find_spec("scipy_openblas32") is not None
ENV_SET = bool(os.environ.get(_backend.ENV_BLAS))
linux_only = pytest.mark.skipif(not LINUX, reason="the BLAS switch acts on Linux only")
needs_openblas = pytest.mark.skipif(
    not (LINUX and HAS_OPENBLAS and not ENV_SET),
    reason="needs Linux, scipy-openblas32 and MLX_TCN_BLAS unset",
)


def _run(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line, returned as a dict."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLX_TCN_") and k != "MLX_BFS_MAX_WIDTH"  # set by this process's import
    }
    environ.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Prints the BLAS in use, warnings raised by setup(), a matmul check and a GFLOP/s figure.
_PROBE = """
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        {before}
        from mlx_tcn import _backend
        _backend.setup()
    import mlx.core as mx, numpy as np
    a = np.arange(12 * 7, dtype=np.float32).reshape(12, 7) / 10
    ok = bool(np.allclose(np.array(mx.array(a) @ mx.array(a).T), a @ a.T, rtol=1e-5))
    print(json.dumps({{
        "provider": _backend.blas_provider(),
        "blas": _backend.info()["blas"],
        "warnings": [str(w.message) for w in caught],
        "ok": ok,
        "gflops": _backend.matmul_gflops(512, repeat=3),
    }}))
"""


def _probe(before: str = "", **env: str) -> dict:
    return _run(_PROBE.format(before=before), **env)


@pytest.mark.parametrize(
    ("shape_a", "shape_b", "transpose_a", "transpose_b"),
    [
        ((1, 1), (1, 1), False, False),
        ((64, 64), (64, 64), False, False),
        ((37, 53), (53, 29), False, False),
        ((53, 37), (53, 29), True, False),
        ((37, 53), (29, 53), False, True),
        ((53, 37), (29, 53), True, True),
        ((3, 130, 70), (70, 257), False, False),
    ],
)
def test_matmul_matches_numpy(shape_a, shape_b, transpose_a, transpose_b):
    rng = np.random.default_rng(7)
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    xa, xb = mx.array(a), mx.array(b)
    if transpose_a:
        a, xa = np.swapaxes(a, -1, -2), mx.swapaxes(xa, -1, -2)
    if transpose_b:
        b, xb = b.T, xb.T
    got = np.array(xa @ xb)
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(a.shape[-1]))


def test_matmul_float64_and_complex_match_numpy():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((19, 23)) + 1j * rng.standard_normal((19, 23))
    b = rng.standard_normal((23, 11)) + 1j * rng.standard_normal((23, 11))
    with mx.stream(mx.cpu):
        c64 = np.array(mx.array(a.astype(np.complex64)) @ mx.array(b.astype(np.complex64)))
        f64 = np.array(mx.array(a.real, mx.float64) @ mx.array(b.real, mx.float64))
    np.testing.assert_allclose(c64, a @ b, rtol=1e-4, atol=1e-4)
    assert f64.dtype == np.float64
    np.testing.assert_allclose(f64, a.real @ b.real, rtol=1e-12, atol=1e-12)


def test_setup_is_idempotent():
    before = list(_backend.blas.STATE.slots)
    _backend.setup()
    _backend.setup()
    assert _backend.blas.STATE.slots == before


@needs_openblas
def test_openblas_serves_mlx_and_is_much_faster_than_the_reference():
    provider = _backend.blas_provider()
    assert provider is not None and "scipy_openblas32" in provider
    with open("/proc/self/maps") as maps:
        assert provider in maps.read()
    d = _backend.info()
    assert d["blas"].startswith("OpenBLAS") and d["blas_path"] == provider
    reference = _probe(MLX_TCN_BLAS="0")
    assert reference["blas"] == "MLX reference BLAS" and "mlx_cpu.libs" in reference["provider"]
    assert reference["ok"] and reference["warnings"] == []
    # The reference BLAS runs at the same few GFLOP/s for any size, so it is timed at 512
    # (quick) and OpenBLAS at 1024, where its threads pay off even on a busy machine. On
    # the 2-core CI machine OpenBLAS is 10-20x the reference; 3x leaves a wide margin.
    fast = max(_backend.matmul_gflops(1024, repeat=3) for _ in range(2))
    assert fast > 3 * reference["gflops"], (fast, reference["gflops"])


@needs_openblas
def test_importing_mlx_first_still_switches_without_warning():
    out = _probe(before="import mlx.core as mx; mx.eval(mx.ones((8, 8)) @ mx.ones((8, 8)))")
    assert out["warnings"] == []
    assert out["ok"] and "scipy_openblas32" in out["provider"]


@needs_openblas
def test_failed_check_restores_the_reference_and_warns_once():
    code = """
        import json, os, warnings
        import mlx.core as mx
        os.environ["MLX_TCN_BLAS"] = "0"  # a no-op setup() if mlx_tcn runs it on import
        from mlx_tcn import _backend
        _backend.setup()
        del os.environ["MLX_TCN_BLAS"]
        _backend._done = False  # run setup() again, with a failing check

        def broken():
            raise RuntimeError("injected mismatch")

        _backend.blas.check_matmul = broken
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _backend.setup()
        c = mx.ones((4, 3)) @ mx.ones((3, 2))
        print(json.dumps({
            "warnings": [str(w.message) for w in caught],
            "provider": _backend.blas_provider(),
            "sum": c.sum().item(),
        }))
    """
    out = _run(code)
    assert len(out["warnings"]) == 1 and "injected mismatch" in out["warnings"][0]
    assert "mlx_cpu.libs" in out["provider"] and out["sum"] == 24.0


@linux_only
def test_disabled_by_env_leaves_the_reference_blas():
    out = _probe(MLX_TCN_BLAS="off")
    assert out["warnings"] == [] and out["ok"]
    assert out["blas"] == "MLX reference BLAS"


@linux_only
@pytest.mark.parametrize(
    ("value", "message"),
    [("/no/such/libblas.so", "is not a file"), (None, "exports no cblas_sgemm")],
)
def test_bad_library_warns_once_and_keeps_reference(value, message):
    if value is None:  # a real shared library without CBLAS, by name: the C math library
        value = _run("import ctypes.util, json; print(json.dumps(ctypes.util.find_library('m')))")
        assert value and "/" not in value
    out = _probe(MLX_TCN_BLAS=value)
    assert len(out["warnings"]) == 1 and message in out["warnings"][0]
    assert out["ok"] and out["blas"] == "MLX reference BLAS"


@linux_only
def test_elf_reader_finds_mlx_sgemm_slot():
    objects = _backend.got.mlx_objects()
    slots = [
        s
        for path, _ in objects
        for s in _backend.elf.slot_relocations(path, frozenset(_backend.blas.CBLAS))
    ]
    assert {name for _, name in slots} == set(_backend.blas.CBLAS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2GB", 2 << 30),
        ("512MiB", 512 << 20),
        ("1000", 1000),
        ("1.5g", 3 << 29),
        (" 64 kb ", 64 << 10),
    ],
)
def test_parse_size(text, expected):
    assert _backend.runtime.parse_size(text) == expected


def test_parse_size_rejects_garbage():
    with pytest.raises(ValueError, match="MLX_TCN_CACHE_LIMIT must be a size.*'lots'"):
        _backend.runtime.parse_size("lots")


def test_cache_limit_env():
    out = _run(
        "import json, mlx.core as mx; from mlx_tcn import _backend; _backend.setup();"
        "print(json.dumps([_backend.runtime.STATE.cache_limit, mx.set_cache_limit(0)]))",
        MLX_TCN_CACHE_LIMIT="96MB",
    )
    assert out == [96 << 20, 96 << 20]


def test_default_cache_limit_is_bounded():
    limit = _backend.runtime.default_cache_limit()
    assert 0 < limit <= 4 << 30


def test_info_keys_and_benchmark():
    start = time.perf_counter()
    d = _backend.info(benchmark=True)
    assert time.perf_counter() - start < 10
    assert d["mlx_version"] == mx.__version__
    assert d["default_device"] == str(mx.default_device())
    assert d["machine"] == platform.machine()
    assert d["matmul_gflops"] > 0
    if sys.platform == "darwin":
        assert d["blas"] == "Accelerate (macOS)"
    json.dumps(d)


def test_info_says_how_float32_matrices_are_multiplied():
    from mlx_tcn._backend.report import float32_matmul

    assert float32_matmul(mx.DeviceType.cpu, None) == "float32"
    assert float32_matmul(mx.DeviceType.cpu, "1") == "float32"
    assert float32_matmul(mx.DeviceType.gpu, "0") == "float32 (MLX_ENABLE_TF32=0)"
    for env in (None, "1", ""):
        assert float32_matmul(mx.DeviceType.gpu, env).startswith("TF32 ")
    expected = float32_matmul(mx.default_device().type, os.environ.get("MLX_ENABLE_TF32"))
    assert _backend.info()["float32_matmul"] == expected


def test_format_info():
    text = _backend.format_info(
        {"mlx_version": "0.32.4", "blas_note": "", "cache_limit": 3 << 29, "matmul_gflops": 88.1}
    )
    assert text.splitlines() == [
        "mlx_version    0.32.4",
        "blas_note      -",
        "cache_limit    1.50 GiB",
        "matmul_gflops  88.1 GFLOP/s (1024x1024 float32)",
    ]


# --------------------------------------------------------------------------- threads

_THREADS_PROBE = """
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from mlx_tcn import _backend
        _backend.setup()
    d = _backend.info()
    print(json.dumps({
        "streams": _backend.parallel_streams(),
        "blas_threads": d["blas_threads"],
        "info_streams": d["parallel_streams"],
        "warnings": [str(w.message) for w in caught],
    }))
"""


def _setup_in_subprocess(**env: str) -> dict:
    return _run(_THREADS_PROBE, **env)


@needs_openblas
def test_threads_env_sets_streams_and_single_threaded_blas():
    out = _setup_in_subprocess(MLX_TCN_THREADS="3")
    assert out["streams"] == out["info_streams"] == 3
    assert out["blas_threads"] == 1 and out["warnings"] == []


@needs_openblas
def test_threads_env_1_keeps_blas_threading():
    out = _setup_in_subprocess(MLX_TCN_THREADS="1", OPENBLAS_NUM_THREADS="2")
    # OpenBLAS never runs more threads than the CPUs this process may use (`taskset -c 1`).
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert out["streams"] == 1 and out["blas_threads"] == min(2, usable)
    assert out["warnings"] == []


@needs_openblas
def test_default_streams_follow_the_cpu_count():
    out = _setup_in_subprocess()
    expected = min(len(os.sched_getaffinity(0)), 8)
    assert out["streams"] == expected
    assert out["blas_threads"] == (1 if expected > 1 else out["blas_threads"])


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_threads_env_warns_and_keeps_one_stream(value):
    out = _setup_in_subprocess(MLX_TCN_THREADS=value)
    assert out["streams"] == 1
    assert len(out["warnings"]) == 1
    assert "MLX_TCN_THREADS" in out["warnings"][0] and repr(value) in out["warnings"][0]


def test_no_split_without_blas_routing():
    # MLX's own BLAS (or macOS Accelerate) threads itself or not at all: never split there.
    out = _setup_in_subprocess(MLX_TCN_BLAS="0", MLX_TCN_THREADS="4")
    assert out["streams"] == 1


# --------------------------------------------------------------------------- OpenBLAS kernels

_AVX512 = frozenset({"avx2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})


@pytest.mark.parametrize(
    ("flags", "requested", "inherited", "core", "reason"),
    [
        (_AVX512, "", "", "SkylakeX", "auto: the CPU has AVX-512"),
        (_AVX512, "auto", "", "SkylakeX", "auto"),
        (_AVX512 | {"avx512_bf16"}, "", "", "CooperLake", "auto"),
        (_AVX512 - {"avx512vl"}, "", "", None, "no AVX-512"),  # one flag missing
        (frozenset({"avx2", "fma"}), "", "", None, "no AVX-512"),
        (frozenset(), "", "", None, "no AVX-512"),  # not x86, or no /proc/cpuinfo
        (_AVX512, "native", "", None, "MLX_TCN_BLAS_CORE=native"),
        (_AVX512, "", "Haswell", None, "OPENBLAS_CORETYPE=Haswell from the environment"),
        (_AVX512, "Zen", "Haswell", "Zen", "MLX_TCN_BLAS_CORE=Zen"),  # ours wins
        (frozenset({"avx2"}), "Sandybridge", "", "Sandybridge", "MLX_TCN_BLAS_CORE"),
        (_AVX512, "skylakex", "", "skylakex", "MLX_TCN_BLAS_CORE=skylakex"),
    ],
)
def test_choose_core(flags, requested, inherited, core, reason):
    got, why = _backend.blas.choose_core(flags, requested, inherited)
    assert got == core and reason in why


@pytest.mark.parametrize("name", ["SkylakeX", "cooperlake", "SAPPHIRERAPIDS"])
def test_choose_core_refuses_avx512_kernels_without_avx512(name):
    # they would kill the process with an illegal instruction at the first GEMM
    with pytest.raises(ValueError, match=rf"MLX_TCN_BLAS_CORE='{name}'.*lacks.*avx512"):
        _backend.blas.choose_core(frozenset({"avx2", "fma"}), name, "")


def test_core_is_set_only_while_the_library_loads(monkeypatch, tmp_path):
    # An AVX-512 CPU (Zen 5, say) without running its kernels here: the load sees
    # OPENBLAS_CORETYPE=SkylakeX, the rest of the process (NumPy's OpenBLAS) does not.
    seen = []
    monkeypatch.setattr(_backend.blas, "cpu_flags", lambda: _AVX512)
    monkeypatch.setattr(
        _backend.blas.ctypes,
        "CDLL",
        lambda *a, **k: seen.append(os.environ.get("OPENBLAS_CORETYPE")),
    )
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv("MLX_TCN_BLAS_CORE", raising=False)
    monkeypatch.setattr(_backend.blas, "STATE", _backend.blas.BlasState())
    _backend.blas._open_library(tmp_path / "libopenblas.so")
    assert seen == ["SkylakeX"] and "OPENBLAS_CORETYPE" not in os.environ
    assert "AVX-512" in _backend.blas.STATE.core_choice
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("MLX_TCN_BLAS_CORE", "Zen")
    _backend.blas._open_library(tmp_path / "libopenblas.so")
    assert seen[-1] == "Zen" and os.environ["OPENBLAS_CORETYPE"] == "Haswell"


_CORE_PROBE = """
    import json, os, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from mlx_tcn import _backend
        _backend.setup()
    import mlx.core as mx, numpy as np
    a = np.random.default_rng(1).standard_normal((300, 200)).astype(np.float32)
    ok = bool(np.allclose(np.array(mx.array(a) @ mx.array(a).T), a @ a.T, rtol=1e-4, atol=1e-3))
    print(json.dumps({
        "core": _backend.info()["blas_core"],
        "env": os.environ.get("OPENBLAS_CORETYPE"),
        "warnings": [str(w.message) for w in caught],
        "ok": ok,
    }))
"""


@needs_openblas
def test_core_env_selects_openblas_kernels_and_is_reported():
    out = _run(_CORE_PROBE, MLX_TCN_BLAS_CORE="Sandybridge")
    assert out["core"] == "Sandybridge (MLX_TCN_BLAS_CORE=Sandybridge)"
    assert out["ok"] and out["warnings"] == [] and out["env"] is None
    out = _run(_CORE_PROBE, OPENBLAS_CORETYPE="Sandybridge")
    assert out["core"] == "Sandybridge (OPENBLAS_CORETYPE=Sandybridge from the environment)"
    assert out["ok"] and out["env"] == "Sandybridge"


@needs_openblas
@pytest.mark.skipif(
    {"avx512f", "avx512bw", "avx512vl"} <= _backend.blas.cpu_flags(), reason="CPU has AVX-512"
)
def test_avx512_core_on_a_cpu_without_it_warns_and_keeps_openblas_detection():
    out = _run(_CORE_PROBE, MLX_TCN_BLAS_CORE="SkylakeX")  # would crash with SIGILL if used
    assert len(out["warnings"]) == 1 and "lacks" in out["warnings"][0]
    assert out["ok"] and "SkylakeX" not in out["core"].split()[0]


@needs_openblas
def test_default_core_follows_the_cpu():
    out = _run(_CORE_PROBE)
    avx512 = _backend.blas.AVX512_FLAGS <= _backend.blas.cpu_flags()
    assert out["ok"] and out["warnings"] == []
    assert out["core"].startswith(
        ("SkylakeX", "CooperLake")
        if avx512
        else (
            "Haswell",
            "Zen",
            "Sandybridge",
            "Nehalem",
            "Core2",
            "Prescott",
            "Barcelona",
            "Excavator",
            "Steamroller",
            "Piledriver",
            "Bulldozer",
        )
    )


# --------------------------------------------------------------------------- ELF parsing


def _elf_image(relocs: list[tuple[int, str, int]], machine: int = 62) -> bytes:
    """A minimal 64-bit ELF shared object: one PT_LOAD over the file, a dynamic section,
    and a RELA table of ``(slot offset, symbol, relocation type)``."""
    import struct

    names = sorted({name for _, name, _ in relocs})
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in names)
    name_at = {n: strtab.index(b"\0" + n.encode() + b"\0") + 1 for n in names}
    symtab = bytes(24) + b"".join(
        struct.pack("<IBBHQQ", name_at[n], 0x12, 0, 0, 0, 0) for n in names
    )
    sym_index = {n: i + 1 for i, n in enumerate(names)}
    rela = b"".join(
        struct.pack("<QQq", off, (sym_index[n] << 32) | kind, 0) for off, n, kind in relocs
    )
    header_size, phdr_size = 64, 56
    dyn_at = header_size + 2 * phdr_size
    body_at = dyn_at + 5 * 16
    symtab_at, strtab_at = body_at, body_at + len(symtab)
    rela_at = strtab_at + len(strtab)
    dynamic = struct.pack("<qQqQqQqQqQ", 6, symtab_at, 5, strtab_at, 7, rela_at, 8, len(rela), 0, 0)
    size = rela_at + len(rela)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 3, machine, 1, 0, header_size, 0, 0, 64, phdr_size, 2, 64, 0, 0
    )
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, size, size, 4096)
    dyn = struct.pack("<IIQQQQQQ", 2, 6, dyn_at, dyn_at, dyn_at, 80, 80, 8)
    return header + load + dyn + dynamic + symtab + strtab + rela


def test_elf_parser_finds_slot_relocations_in_bytes():
    image = _elf_image(
        [
            (0x1000, "cblas_sgemm", 6),  # GLOB_DAT
            (0x1008, "cblas_dgemm", 7),  # JUMP_SLOT
            (0x1010, "cblas_sgemm", 1),  # R_X86_64_64: not a GOT slot
            (0x1018, "memcpy", 7),  # not asked for
        ]
    )
    parse = _backend.elf.parse_slot_relocations
    wanted = frozenset({"cblas_sgemm", "cblas_dgemm"})
    assert parse(image, "x.so", wanted) == [(0x1000, "cblas_sgemm"), (0x1008, "cblas_dgemm")]
    assert parse(image, "x.so", frozenset({"cblas_cgemm"})) == []
    arm = _elf_image([(0x20, "cblas_sgemm", 1026)], machine=183)  # AArch64 JUMP_SLOT
    assert parse(arm, "a.so", wanted) == [(0x20, "cblas_sgemm")]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (b"MZ" + bytes(100), "not a 64-bit little-endian ELF"),
        (b"\x7fELF" + bytes([1, 1]) + bytes(100), "not a 64-bit little-endian ELF"),  # 32-bit
        (_elf_image([(0, "cblas_sgemm", 6)], machine=3), "unsupported ELF machine 3"),
    ],
)
def test_elf_parser_rejects_other_files(image, message):
    with pytest.raises(RuntimeError, match=message):
        _backend.elf.parse_slot_relocations(image, "x.so", frozenset({"cblas_sgemm"}))


_BFS_PROBE = """
    import json, os
    import mlx.core as mx
    if {cpu}:
        mx.set_default_device(mx.cpu)
    else:
        mx.set_default_device(mx.Device(mx.DeviceType.gpu, 0)) if mx.is_available(mx.gpu) else None
    import mlx_tcn
    from mlx_tcn import _backend
    print(json.dumps([os.environ.get("MLX_BFS_MAX_WIDTH"), _backend.info()["bfs_max_width"],
                      str(mx.default_device())]))
"""


def test_import_widens_mlx_evaluation_order_on_the_cpu():
    value, reported, _ = _run(_BFS_PROBE.format(cpu=True))
    assert value == "256" == str(_backend.runtime.DEFAULT_BFS_WIDTH)
    assert reported == "256 (mlx-tcn's default for the CPU)"


def test_a_users_evaluation_width_is_kept():
    value, reported, _ = _run(_BFS_PROBE.format(cpu=True), MLX_BFS_MAX_WIDTH="20")
    assert (value, reported) == ("20", "20 (from the environment)")


@pytest.mark.parametrize("bad", ["", "abc", "0"])
def test_a_width_mlx_would_hang_on_is_replaced_with_a_warning(bad):
    # MLX 0.32 hangs at its first evaluation with these (the import's BLAS check evaluates).
    value, reported, _ = _run(_BFS_PROBE.format(cpu=True), MLX_BFS_MAX_WIDTH=bad)
    assert value == "256" and reported == f"256 (mlx-tcn's default; {bad!r} was not valid)"


def test_settings_past_what_mlx_holds_are_refused_with_a_warning():
    # Before: MLX_TCN_THREADS=10**20 hung creating streams at the first split forward, and a
    # cache limit past size_t raised MLX's binding error inside the warning.
    got = _run(_PROBE.format(before=""), MLX_TCN_THREADS="99999999999999999999",
               MLX_TCN_CACHE_LIMIT="16777216TB")  # fmt: skip
    joined = " ".join(got["warnings"])
    assert "MLX_TCN_THREADS must be at most 256" in joined
    assert "MLX_TCN_CACHE_LIMIT must be under 8 EiB" in joined
    assert got["ok"]


def test_evaluation_width_is_left_alone_off_the_cpu():
    value, reported, device = _run(_BFS_PROBE.format(cpu=False))
    if "cpu" in device:
        pytest.skip("no GPU: the default device stays the CPU")
    assert value is None and reported is None


def test_the_width_is_set_before_the_first_evaluation_of_setup(monkeypatch):
    """MLX reads MLX_BFS_MAX_WIDTH once, at its first evaluation: setup() must set it before
    the BLAS check, which evaluates a matmul."""
    calls = []
    monkeypatch.setattr(_backend, "_done", False)
    monkeypatch.setattr(_backend.runtime, "setup_scheduling", lambda: calls.append("width"))
    monkeypatch.setattr(_backend.blas, "setup_blas", lambda: calls.append("blas"))
    monkeypatch.setattr(_backend.runtime, "setup_threads", lambda: calls.append("threads"))
    monkeypatch.setattr(_backend.runtime, "setup_cache", lambda: calls.append("cache"))
    _backend.setup()
    assert calls == ["width", "blas", "threads", "cache"]
