"""Choose, load, verify and (on failure) undo the BLAS behind MLX's CPU matmul (Linux).

:func:`setup_blas` loads the chosen library (the bundled ``scipy-openblas32`` unless
``MLX_TCN_BLAS`` names another), picks OpenBLAS's kernels for the CPU (``MLX_TCN_BLAS_CORE``),
points MLX's ``cblas_*gemm`` GOT slots at it and checks a matmul against NumPy.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import got
from .elf import slot_relocations

__all__ = [
    "ENV_BLAS",
    "ENV_CORE",
    "STATE",
    "BlasState",
    "blas_provider",
    "blas_threads",
    "choose_core",
    "cpu_flags",
    "set_blas_threads",
    "setup_blas",
    "undo",
]

ENV_BLAS = "MLX_TCN_BLAS"
ENV_CORE = "MLX_TCN_BLAS_CORE"
OPENBLAS_CORETYPE = "OPENBLAS_CORETYPE"
OFF = {"0", "off", "false", "no", "none"}
BLAS_PACKAGE = "scipy_openblas32"
# CBLAS functions MLX's CPU backend calls; each is redirected if the new library has it.
CBLAS = ("cblas_sgemm", "cblas_dgemm", "cblas_cgemm")
PREFIXES = ("", "scipy_")

# The CPU flags OpenBLAS's AVX-512 ("SkylakeX") kernels need, and the extra one of its
# "CooperLake" kernels. OpenBLAS's own detection lags new CPUs: it runs its AVX2 kernels
# on AMD Zen 5, at about half the GEMM rate of its AVX-512 ones (docs/blas.md).
AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
AVX512_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})


@dataclass
class BlasState:
    library: str | None = None  # path of the BLAS mlx-tcn loaded, if any
    prefix: str = ""
    method: str | None = None  # "got" when slots were redirected
    note: str = ""  # why nothing was changed, when nothing was
    core: str | None = None  # OpenBLAS's kernel set in use (openblas_get_corename)
    core_choice: str = ""  # how the kernel set was chosen
    slots: list[got.Slot] = field(default_factory=list)
    handle: Any = None  # keeps the loaded library alive


STATE = BlasState()


def setup_blas() -> None:
    """Route MLX's CPU matmul to the chosen BLAS; raise (after undoing) on any failure."""
    try:
        _setup_blas()
    except Exception:
        undo()
        STATE.method = None
        raise


def _setup_blas() -> None:
    if sys.platform != "linux":
        STATE.note = "not Linux: MLX's own BLAS (Accelerate on macOS) is kept"
        return
    choice = os.environ.get(ENV_BLAS, "").strip()
    if choice.lower() in OFF:
        STATE.note = f"disabled by {ENV_BLAS}={choice}"
        return
    if choice:  # a path, or a name the dynamic linker resolves (libopenblas.so.0)
        path = Path(choice).expanduser()
        if "/" in choice and not path.is_file():
            raise FileNotFoundError(f"{ENV_BLAS}={choice!r} is not a file")
    else:
        path = _find_packaged_blas()
        if path is None:
            STATE.note = f"{BLAS_PACKAGE.replace('_', '-')} is not installed"
            if platform.machine() in ("x86_64", "AMD64"):
                warnings.warn(
                    "mlx_tcn: the optimized BLAS package scipy-openblas32 is not installed, so "
                    "MLX's CPU matmul runs on its slow reference BLAS; run "
                    "`pip install scipy-openblas32` (or set MLX_TCN_BLAS=0 to silence this).",
                    RuntimeWarning,
                    stacklevel=4,
                )
            return
    _load_and_patch(path)


def _find_packaged_blas() -> Path | None:
    """The OpenBLAS shared library inside the installed ``scipy-openblas32`` package."""
    spec = importlib.util.find_spec(BLAS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        libs = sorted((Path(location) / "lib").glob("libscipy_openblas*.so*"))
        if libs:
            return libs[0]
    return None


# --------------------------------------------------------------------------- kernels


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (``/proc/cpuinfo``), empty where it reports none.

    Linux lists an AVX-512 flag only when the kernel also saves the AVX-512 registers, so
    a flag here means the instructions can run.
    """
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def choose_core(flags: frozenset[str], requested: str, inherited: str) -> tuple[str | None, str]:
    """The OpenBLAS kernel set to load with, and why.

    Args:
        flags: the CPU's feature flags (:func:`cpu_flags`).
        requested: ``MLX_TCN_BLAS_CORE``: ``""``/``auto``, ``native`` (OpenBLAS's own
            detection), or an OpenBLAS core name such as ``SkylakeX`` or ``Haswell``.
        inherited: ``OPENBLAS_CORETYPE`` as the environment has it (``""`` if unset).

    Returns:
        ``(core, reason)``: the value to give ``OPENBLAS_CORETYPE`` while the library loads
        (``None``: leave it as it is) and a sentence for ``mlx-tcn info``.

    Raises:
        ValueError: ``requested`` names AVX-512 kernels on a CPU without AVX-512 (they
            would crash the process with an illegal instruction).
    """
    req = requested.strip()
    if req.lower() == "native":
        return None, f"OpenBLAS's detection, {ENV_CORE}={req}"
    if req and req.lower() != "auto":
        if req.lower() in AVX512_CORES and not AVX512_FLAGS <= flags:
            raise ValueError(
                f"{ENV_CORE}={req!r} selects AVX-512 kernels, but this CPU lacks "
                f"{', '.join(sorted(AVX512_FLAGS - flags))}"
            )
        return req, f"{ENV_CORE}={req}"
    if inherited.strip():
        return None, f"{OPENBLAS_CORETYPE}={inherited.strip()} from the environment"
    if AVX512_FLAGS <= flags:
        core = "CooperLake" if "avx512_bf16" in flags else "SkylakeX"
        return core, "auto: the CPU has AVX-512 F/CD/BW/DQ/VL"
    return None, "auto: OpenBLAS's detection; no AVX-512 on this CPU"


def _open_library(path: Path) -> ctypes.CDLL:
    """Load ``path`` with the OpenBLAS kernels :func:`choose_core` picks.

    ``OPENBLAS_CORETYPE`` is read by OpenBLAS once, when it loads; it is set for that
    moment only, so NumPy's or SciPy's own OpenBLAS, loaded later, keep their detection.
    """
    inherited = os.environ.get(OPENBLAS_CORETYPE, "")
    try:
        core, STATE.core_choice = choose_core(cpu_flags(), os.environ.get(ENV_CORE, ""), inherited)
    except ValueError as exc:
        warnings.warn(f"mlx_tcn: {exc}; using OpenBLAS's own detection", RuntimeWarning, 6)
        core, STATE.core_choice = None, f"OpenBLAS's detection; {exc}"
    if core is not None:
        os.environ[OPENBLAS_CORETYPE] = core
    try:
        # RTLD_LOCAL: only MLX's slots are redirected; other libraries (SciPy ships its own
        # OpenBLAS with the same scipy_ names) keep binding to their own copies.
        return ctypes.CDLL(str(path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
    finally:
        if core is not None:
            if inherited:
                os.environ[OPENBLAS_CORETYPE] = inherited
            else:
                del os.environ[OPENBLAS_CORETYPE]


def _core_name(handle: ctypes.CDLL, prefix: str) -> str | None:
    get = getattr(handle, prefix + "openblas_get_corename", None)
    if get is None:
        return None
    get.restype = ctypes.c_char_p
    name = get()
    return name.decode(errors="replace") if name else None


# --------------------------------------------------------------------------- patching


def _load_and_patch(path: Path) -> None:
    handle = _open_library(path)
    prefix = next((p for p in PREFIXES if hasattr(handle, p + "cblas_sgemm")), None)
    if prefix is None:
        raise OSError(f"{path} exports no cblas_sgemm (tried prefixes {PREFIXES})")
    targets = {
        name: ctypes.cast(getattr(handle, prefix + name), ctypes.c_void_p).value
        for name in CBLAS
        if hasattr(handle, prefix + name)
    }
    fname = got.dladdr(targets["cblas_sgemm"])[0]
    STATE.handle, STATE.prefix = handle, prefix
    STATE.library = os.path.realpath(fname) if fname else str(path)
    STATE.core = _core_name(handle, prefix)

    import mlx.core  # noqa: F401  (loads libmlx.so so that its GOT can be found)

    slots = [s for obj, base in got.mlx_objects() for s in got.find_slots(obj, base, targets)]
    if not slots:  # e.g. a build that links its BLAS statically: nothing to redirect
        STATE.note = "MLX imports no cblas_* function; its BLAS is kept"
        return
    for slot in slots:
        if slot.old != targets[slot.symbol]:
            got.write_pointer(slot.address, targets[slot.symbol])
            STATE.slots.append(slot)
    STATE.method = "got"
    check_matmul()


def check_matmul() -> None:
    """Compare a small non-square, transposed matmul against NumPy; raise on mismatch."""
    import mlx.core as mx
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 53)).astype(np.float32)
    b = rng.standard_normal((29, 53)).astype(np.float32)
    with mx.stream(mx.cpu):
        got_ = np.array(mx.matmul(mx.array(a), mx.array(b).T))
    want = a.astype(np.float64) @ b.T.astype(np.float64)
    if not np.allclose(got_, want, rtol=1e-4, atol=1e-4):
        raise RuntimeError("matmul through the new BLAS disagrees with NumPy")


def undo() -> None:
    """Give every redirected slot back its old function."""
    while STATE.slots:
        slot = STATE.slots.pop()
        try:
            got.write_pointer(slot.address, slot.old)
        except Exception:  # pragma: no cover - best effort on an already failing path
            warnings.warn(f"mlx_tcn: could not restore {slot.symbol}", RuntimeWarning, 2)


# --------------------------------------------------------------------------- queries


def blas_provider() -> str | None:
    """Path of the library whose ``cblas_sgemm`` MLX calls now (Linux), else ``None``."""
    if sys.platform != "linux":
        return None
    import mlx.core  # noqa: F401

    for obj, base in got.mlx_objects():
        for offset, _ in slot_relocations(obj, frozenset({"cblas_sgemm"})):
            fname, _ = got.dladdr(got.read_pointer(base + offset))
            if fname:
                return os.path.realpath(fname)
    return None


def blas_threads() -> int | None:
    """Threads the loaded BLAS uses for one GEMM, if it says."""
    lib, prefix = STATE.handle, STATE.prefix
    for name in (prefix + "openblas_get_num_threads", "MKL_Get_Max_Threads"):
        if lib is not None and hasattr(lib, name):
            return int(getattr(lib, name)())
    return None


def set_blas_threads(n: int) -> bool:
    """Set the loaded OpenBLAS's thread count; False when MLX does not call a BLAS whose
    threads mlx-tcn owns."""
    set_threads = getattr(STATE.handle, STATE.prefix + "openblas_set_num_threads", None)
    if STATE.method != "got" or set_threads is None:
        return False
    set_threads(n)
    return True
