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

Environment variables (read once, by :func:`setup`):

``MLX_TCN_BLAS``
    ``0`` (or ``off``/``false``/``no``/``none``) leaves MLX's BLAS alone. A path to a
    shared library (or a name the dynamic linker finds, such as ``libopenblas.so.0``)
    selects it instead of the bundled OpenBLAS; it must export the CBLAS
    functions (``cblas_sgemm`` ...) with 32-bit integers, optionally behind a prefix
    such as ``scipy_`` (e.g. ``libmkl_rt.so``, ``libopenblas.so.0``, ``libblis.so``).
``MLX_TCN_THREADS``
    How many CPU threads mlx-tcn's models use. MLX runs its CPU operations one at a time on
    one thread and only the GEMMs inside use more; the elementwise work (activations,
    padding, residual adds, dropout) stays on one core. So when MLX's GEMMs go to the
    bundled OpenBLAS, :func:`setup` makes OpenBLAS single-threaded and :class:`mlx_tcn.TCN`
    instead splits a batch over this many MLX CPU streams, which run in parallel, each
    with all of its work. Default: the CPUs this process may use, at most 8. ``1`` turns
    the split off and leaves OpenBLAS's own threading as it was.
``MLX_TCN_CACHE_LIMIT``
    MLX's buffer cache limit. MLX's CPU default (32 MiB) makes training steps 15-45%
    slower through page faults, so :func:`setup` raises it to a quarter of RAM, at most
    4 GiB (it never lowers a larger limit, such as Metal's). ``0``/``off`` keeps MLX's
    default; a size such as ``2GB``, ``512MiB`` or a byte count sets it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import logging
import mmap
import os
import platform
import re
import struct
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "setup",
    "info",
    "format_info",
    "matmul_gflops",
    "blas_provider",
    "parallel_streams",
    "cpu_streams",
]

logger = logging.getLogger(__name__)

ENV_BLAS = "MLX_TCN_BLAS"
ENV_CACHE = "MLX_TCN_CACHE_LIMIT"
ENV_THREADS = "MLX_TCN_THREADS"
_OFF = {"0", "off", "false", "no", "none"}
_BLAS_PACKAGE = "scipy_openblas32"
# CBLAS functions MLX's CPU backend calls; each is redirected if the new library has it.
_CBLAS = ("cblas_sgemm", "cblas_dgemm", "cblas_cgemm")
_PREFIXES = ("", "scipy_")
_DEFAULT_CACHE_CAP = 4 << 30
_DEFAULT_MAX_STREAMS = 8

# ELF relocation types of GOT slots that hold one function address, per e_machine.
_EM_X86_64, _EM_AARCH64 = 62, 183
_SLOT_RELOCS = {_EM_X86_64: {6, 7}, _EM_AARCH64: {1025, 1026}}  # GLOB_DAT, JUMP_SLOT
_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_STRTAB, _DT_SYMTAB, _DT_RELA, _DT_RELASZ = 0, 5, 6, 7, 8
_DT_PLTRELSZ, _DT_PLTREL, _DT_JMPREL = 2, 20, 23


@dataclass
class _Slot:
    """One GOT slot in a loaded MLX object, with the value it held before patching."""

    address: int
    symbol: str
    old: int


@dataclass
class _State:
    done: bool = False
    library: str | None = None  # path of the BLAS mlx-tcn loaded, if any
    prefix: str = ""
    method: str | None = None  # "got" when slots were redirected
    note: str = ""  # why nothing was changed, when nothing was
    slots: list[_Slot] = field(default_factory=list)
    handle: Any = None  # keeps the loaded library alive
    cache_limit: int | None = None
    streams: int = 1  # CPU streams a TCN batch is split over (1: no split)
    stream_objects: list[Any] = field(default_factory=list)


_STATE = _State()


def setup() -> None:
    """Route MLX's CPU matmul to an optimized BLAS and size MLX's buffer cache.

    Idempotent and safe: called by ``import mlx_tcn``; every failure becomes one
    ``RuntimeWarning`` and leaves MLX as it was. See the module docstring for the
    ``MLX_TCN_BLAS``, ``MLX_TCN_THREADS`` and ``MLX_TCN_CACHE_LIMIT`` environment variables.
    """
    if _STATE.done:
        return
    _STATE.done = True
    try:
        _setup_blas()
    except Exception as exc:  # never break the import
        _undo_slots()
        _STATE.method = None
        _STATE.note = f"failed: {exc!r}"
        warnings.warn(
            f"mlx_tcn: could not switch MLX to an optimized BLAS ({exc!r}); MLX's CPU matmul "
            f"keeps its slow reference BLAS. Set {ENV_BLAS}=0 to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
    try:
        _setup_threads()
    except Exception as exc:
        warnings.warn(
            f"mlx_tcn: could not set up parallel CPU streams ({exc!r}); models run on one "
            f"MLX stream. Set {ENV_THREADS}=1 to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
    try:
        _setup_cache()
    except Exception as exc:
        warnings.warn(
            f"mlx_tcn: could not set MLX's buffer cache limit ({exc!r}); set "
            f"{ENV_CACHE}=0 to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )


# --------------------------------------------------------------------------- BLAS


def _setup_blas() -> None:
    if sys.platform != "linux":
        _STATE.note = "not Linux: MLX's own BLAS (Accelerate on macOS) is kept"
        return
    choice = os.environ.get(ENV_BLAS, "").strip()
    if choice.lower() in _OFF:
        _STATE.note = f"disabled by {ENV_BLAS}={choice}"
        return
    if choice:  # a path, or a name the dynamic linker resolves (libopenblas.so.0)
        path = Path(choice).expanduser()
        if "/" in choice and not path.is_file():
            raise FileNotFoundError(f"{ENV_BLAS}={choice!r} is not a file")
    else:
        path = _find_packaged_blas()
        if path is None:
            _STATE.note = f"{_BLAS_PACKAGE.replace('_', '-')} is not installed"
            if platform.machine() in ("x86_64", "AMD64"):
                warnings.warn(
                    "mlx_tcn: the optimized BLAS package scipy-openblas32 is not installed, so "
                    "MLX's CPU matmul runs on its slow reference BLAS; run "
                    "`pip install scipy-openblas32` (or set MLX_TCN_BLAS=0 to silence this).",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return
    _load_and_patch(path)


def _find_packaged_blas() -> Path | None:
    """The OpenBLAS shared library inside the installed ``scipy-openblas32`` package."""
    spec = importlib.util.find_spec(_BLAS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        libs = sorted((Path(location) / "lib").glob("libscipy_openblas*.so*"))
        if libs:
            return libs[0]
    return None


def _load_and_patch(path: Path) -> None:
    # RTLD_LOCAL: only MLX's slots are redirected; other libraries (SciPy ships its own
    # OpenBLAS with the same scipy_ names) keep binding to their own copies.
    handle = ctypes.CDLL(str(path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
    prefix = next((p for p in _PREFIXES if hasattr(handle, p + "cblas_sgemm")), None)
    if prefix is None:
        raise OSError(f"{path} exports no cblas_sgemm (tried prefixes {_PREFIXES})")
    targets = {
        name: ctypes.cast(getattr(handle, prefix + name), ctypes.c_void_p).value
        for name in _CBLAS
        if hasattr(handle, prefix + name)
    }
    fname = _dladdr(targets["cblas_sgemm"])[0]
    _STATE.handle, _STATE.prefix = handle, prefix
    _STATE.library = os.path.realpath(fname) if fname else str(path)

    import mlx.core  # noqa: F401  (loads libmlx.so so that its GOT can be found)

    slots = [s for obj, base in _mlx_objects() for s in _find_slots(obj, base, targets)]
    if not slots:  # e.g. a build that links its BLAS statically: nothing to redirect
        _STATE.note = "MLX imports no cblas_* function; its BLAS is kept"
        logger.info("mlx_tcn: %s", _STATE.note)
        return
    for slot in slots:
        if slot.old != targets[slot.symbol]:
            _write_pointer(slot.address, targets[slot.symbol])
            _STATE.slots.append(slot)
    _STATE.method = "got"
    _check_matmul()


def _check_matmul() -> None:
    """Compare a small non-square, transposed matmul against NumPy; undo on mismatch."""
    import mlx.core as mx
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 53)).astype(np.float32)
    b = rng.standard_normal((29, 53)).astype(np.float32)
    with mx.stream(mx.cpu):
        got = np.array(mx.matmul(mx.array(a), mx.array(b).T))
    want = a.astype(np.float64) @ b.T.astype(np.float64)
    if not np.allclose(got, want, rtol=1e-4, atol=1e-4):
        raise RuntimeError("matmul through the new BLAS disagrees with NumPy")


def _mlx_objects() -> list[tuple[str, int]]:
    """(path, load base) of every loaded shared object inside the mlx package."""
    spec = importlib.util.find_spec("mlx")
    if spec is None or not spec.submodule_search_locations:
        return []
    roots = [os.path.realpath(p) for p in spec.submodule_search_locations]
    found: list[tuple[str, int]] = []
    for name, base in _loaded_objects():
        real = os.path.realpath(name) if name else ""
        if real and any(real.startswith(root + os.sep) for root in roots):
            found.append((real, base))
    return found


class _DlPhdrInfo(ctypes.Structure):
    _fields_ = [("dlpi_addr", ctypes.c_size_t), ("dlpi_name", ctypes.c_char_p)]


_PHDR_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(_DlPhdrInfo), ctypes.c_size_t, ctypes.c_void_p
)


def _loaded_objects() -> list[tuple[str, int]]:
    """(name, load base) of every object in the process, from ``dl_iterate_phdr``."""
    out: list[tuple[str, int]] = []

    def visit(info, _size, _data):  # type: ignore[no-untyped-def]
        name = info.contents.dlpi_name
        out.append((name.decode(errors="replace") if name else "", info.contents.dlpi_addr))
        return 0

    _libc().dl_iterate_phdr(_PHDR_CALLBACK(visit), None)
    return out


def _find_slots(path: str, base: int, targets: dict[str, int | None]) -> list[_Slot]:
    """GOT slots of ``path`` (loaded at ``base``) that bind to one of ``targets``."""
    slots = []
    for offset, symbol in _elf_slot_relocations(path, frozenset(targets)):
        address = base + offset
        old = ctypes.c_void_p.from_address(address).value or 0
        if old != targets[symbol] and not _holds(old, symbol, path):
            raise RuntimeError(f"{symbol} slot in {path} holds an unexpected address {old:#x}")
        slots.append(_Slot(address, symbol, old))
    return slots


def _holds(value: int, symbol: str, owner: str) -> bool:
    """True if ``value`` is ``symbol`` in some library, or a lazy PLT stub of ``owner``."""
    fname, sname = _dladdr(value)
    if sname == symbol:
        return True
    return fname is not None and os.path.realpath(fname) == owner and sname is None


@functools.lru_cache(maxsize=16)
def _elf_slot_relocations(path: str, symbols: frozenset[str]) -> list[tuple[int, str]]:
    """(slot offset, symbol) of the GOT relocations of a 64-bit little-endian ELF file."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _parse_slot_relocations(data, path, symbols)


def _parse_slot_relocations(
    data: mmap.mmap, path: str, symbols: frozenset[str]
) -> list[tuple[int, str]]:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise RuntimeError(f"{path} is not a 64-bit little-endian ELF file")
    machine = struct.unpack_from("<H", data, 18)[0]
    if machine not in _SLOT_RELOCS:
        raise RuntimeError(f"{path}: unsupported ELF machine {machine}")
    phoff, phentsize, phnum = (
        struct.unpack_from("<Q", data, 32)[0],
        *struct.unpack_from("<HH", data, 54),
    )
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []

    def to_file(vaddr: int) -> int:
        for seg_vaddr, seg_offset, seg_size in loads:
            if seg_vaddr <= vaddr < seg_vaddr + seg_size:
                return vaddr - seg_vaddr + seg_offset
        raise RuntimeError(f"{path}: address {vaddr:#x} outside the file's segments")

    tags: dict[int, int] = {}
    for pos in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, pos)
        if tag == _DT_NULL:
            break
        tags.setdefault(tag, value)
    if _DT_SYMTAB not in tags or _DT_STRTAB not in tags:
        return []
    symtab, strtab = to_file(tags[_DT_SYMTAB]), to_file(tags[_DT_STRTAB])
    tables = []
    if _DT_RELA in tags:
        tables.append((tags[_DT_RELA], tags.get(_DT_RELASZ, 0)))
    if _DT_JMPREL in tags and tags.get(_DT_PLTREL) == _DT_RELA:
        tables.append((tags[_DT_JMPREL], tags.get(_DT_PLTRELSZ, 0)))
    kinds = _SLOT_RELOCS[machine]
    found = []
    for start, size in tables:
        begin = to_file(start)
        for pos in range(begin, begin + size, 24):
            r_offset, r_info, _ = struct.unpack_from("<QQq", data, pos)
            if r_info & 0xFFFFFFFF not in kinds:
                continue
            st_name = struct.unpack_from("<I", data, symtab + (r_info >> 32) * 24)[0]
            end = data.find(b"\0", strtab + st_name)
            name = data[strtab + st_name : end].decode()
            if name in symbols:
                found.append((r_offset, name))
    return found


def _write_pointer(address: int, value: int) -> None:
    """Store a pointer at ``address``, lifting RELRO write protection for the moment."""
    page = os.sysconf("SC_PAGE_SIZE")
    start = address & ~(page - 1)
    prot = _protection(address)
    libc = _libc()
    writable = prot | 2  # PROT_WRITE
    if prot != writable and libc.mprotect(ctypes.c_void_p(start), page, writable) != 0:
        raise OSError(ctypes.get_errno(), f"mprotect({start:#x}) failed")
    try:
        ctypes.c_void_p.from_address(address).value = value
    finally:
        if prot != writable:
            libc.mprotect(ctypes.c_void_p(start), page, prot)


def _protection(address: int) -> int:
    """PROT_* bits of the mapping that contains ``address``, from /proc/self/maps."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            if lo <= address < hi:
                return (perms[0] == "r") * 1 | (perms[1] == "w") * 2 | (perms[2] == "x") * 4
    raise RuntimeError(f"address {address:#x} is not mapped")


def _undo_slots() -> None:
    while _STATE.slots:
        slot = _STATE.slots.pop()
        try:
            _write_pointer(slot.address, slot.old)
        except Exception:  # pragma: no cover - best effort on an already failing path
            logger.exception("could not restore %s", slot.symbol)


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def _dladdr(address: int) -> tuple[str | None, str | None]:
    """(file, symbol) that contain ``address``, as the dynamic linker sees them."""
    info = _DlInfo()
    lib = _libdl()
    if not address or not lib.dladdr(ctypes.c_void_p(address), ctypes.byref(info)):
        return None, None
    fname = info.dli_fname.decode(errors="replace") if info.dli_fname else None
    sname = info.dli_sname.decode(errors="replace") if info.dli_sname else None
    return fname, sname


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.dl_iterate_phdr.argtypes = [_PHDR_CALLBACK, ctypes.c_void_p]
    return libc


def _libdl() -> ctypes.CDLL:
    lib = ctypes.CDLL(None)
    if not hasattr(lib, "dladdr"):  # glibc < 2.34 keeps it in libdl
        lib = ctypes.CDLL(ctypes.util.find_library("dl") or "libdl.so.2")
    lib.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    return lib


def blas_provider() -> str | None:
    """Path of the library whose ``cblas_sgemm`` MLX calls now (Linux), else ``None``."""
    if sys.platform != "linux":
        return None
    import mlx.core  # noqa: F401

    for obj, base in _mlx_objects():
        for offset, _ in _elf_slot_relocations(obj, frozenset({"cblas_sgemm"})):
            value = ctypes.c_void_p.from_address(base + offset).value or 0
            fname, _ = _dladdr(value)
            if fname:
                return os.path.realpath(fname)
    return None


# --------------------------------------------------------------------------- threads


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _setup_threads() -> None:
    choice = os.environ.get(ENV_THREADS, "").strip()
    if choice:
        if not choice.isdigit() or int(choice) < 1:
            raise ValueError(f"{ENV_THREADS} must be a positive integer, got {choice!r}")
        wanted = int(choice)
    else:
        wanted = min(_available_cpus(), _DEFAULT_MAX_STREAMS)
    # Only with a BLAS whose thread count we own: two streams each running a
    # multi-threaded GEMM would oversubscribe the cores (OpenBLAS threads busy-wait).
    set_threads = getattr(_STATE.handle, _STATE.prefix + "openblas_set_num_threads", None)
    if wanted <= 1 or _STATE.method != "got" or set_threads is None:
        return
    set_threads(1)
    _STATE.streams = wanted


def parallel_streams() -> int:
    """How many CPU streams a :class:`mlx_tcn.TCN` batch may be split over (1: none)."""
    return _STATE.streams


def cpu_streams() -> list[Any]:
    """The ``parallel_streams()`` MLX CPU streams, created once and reused."""
    import mlx.core as mx

    while len(_STATE.stream_objects) < _STATE.streams:
        _STATE.stream_objects.append(mx.new_stream(mx.cpu))
    return _STATE.stream_objects[: _STATE.streams]


# --------------------------------------------------------------------------- cache


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", text.lower())
    if not match:
        raise ValueError(f"{ENV_CACHE} must be a size such as 2GB or 512MiB, got {text!r}")
    scale = 1 << (10 * "bkmgt".index(match.group(2) or "b"))
    return int(float(match.group(1)) * scale)


def _default_cache_limit() -> int:
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 30
    return min(_DEFAULT_CACHE_CAP, ram // 4)


def _setup_cache() -> None:
    choice = os.environ.get(ENV_CACHE, "").strip()
    if choice.lower() in _OFF:
        return
    import mlx.core as mx

    limit = _parse_size(choice) if choice else _default_cache_limit()
    previous = mx.set_cache_limit(limit)
    if not choice and previous > limit:  # never lower a larger default (Metal's)
        mx.set_cache_limit(previous)
        limit = previous
    _STATE.cache_limit = limit


# --------------------------------------------------------------------------- info


def matmul_gflops(n: int = 1024, repeat: int = 3) -> float:
    """Best-of-``repeat`` GFLOP/s of ``n x n`` float32 ``mx.matmul`` on the default device.

    With parallel CPU streams (single-threaded BLAS, see ``MLX_TCN_THREADS``) one matmul
    runs on each stream at once and the figure is their total: the machine's GEMM rate as
    mlx-tcn's models use it.
    """
    import mlx.core as mx

    on_cpu = mx.default_device().type == mx.DeviceType.cpu
    streams = (
        cpu_streams() if on_cpu and _STATE.streams > 1 else [mx.default_stream(mx.default_device())]
    )
    a = mx.random.normal((n, n))
    b = mx.random.normal((n, n))
    mx.eval(a, b)

    def run() -> None:
        outs = []
        for stream in streams:
            with mx.stream(stream):
                outs.append(a @ b)
        mx.eval(outs)

    run()  # warm up threads and buffers
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 * len(streams) / best / 1e9


def _blas_threads() -> int | None:
    lib, prefix = _STATE.handle, _STATE.prefix
    for name in (prefix + "openblas_get_num_threads", "MKL_Get_Max_Threads"):
        if lib is not None and hasattr(lib, name):
            return int(getattr(lib, name)())
    return None


def info(benchmark: bool = False) -> dict[str, Any]:
    """What MLX runs on: versions, device, BLAS in use and, optionally, a GFLOP/s figure.

    Args:
        benchmark: also time a 1024x1024 float32 matmul (about a second on a slow BLAS).

    Returns:
        A plain dict (JSON-serialisable) with keys ``mlx_version``, ``default_device``,
        ``platform``, ``machine``, ``python``, ``blas``, ``blas_path``, ``blas_note``,
        ``cpu_count``, ``blas_threads``, ``parallel_streams``, ``cache_limit`` and, with ``benchmark``,
        ``matmul_gflops``.
    """
    import mlx.core as mx

    setup()
    provider = blas_provider()
    if sys.platform == "darwin":
        blas = "Accelerate (macOS)"
    elif provider is None:
        blas = "unknown"
    elif _STATE.library and provider == os.path.realpath(_STATE.library):
        blas = f"OpenBLAS ({provider})" if "openblas" in provider else provider
    elif "mlx_cpu.libs" in provider or "libblas" in Path(provider).name:
        blas = "MLX reference BLAS"
    else:
        blas = provider
    result: dict[str, Any] = {
        "mlx_version": mx.__version__,
        "default_device": str(mx.default_device()),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "blas": blas,
        "blas_path": provider,
        "blas_note": _STATE.note,
        "cpu_count": os.cpu_count(),
        "blas_threads": _blas_threads(),
        "parallel_streams": _STATE.streams,
        "cache_limit": _STATE.cache_limit,
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
