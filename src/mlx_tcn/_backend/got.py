"""Find and rewrite, in this process, the GOT slots through which MLX calls a function.

Linux only (``dl_iterate_phdr``, ``dladdr``, ``mprotect`` through ctypes). Every slot is
checked before it is written: it must hold the function it is named for, or the owning
library's lazy-binding stub.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
from dataclasses import dataclass

from .elf import slot_relocations

__all__ = ["Slot", "dladdr", "find_slots", "mlx_objects", "read_pointer", "write_pointer"]


@dataclass
class Slot:
    """One GOT slot in a loaded MLX object, with the value it held before patching."""

    address: int
    symbol: str
    old: int


def mlx_objects() -> list[tuple[str, int]]:
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


def find_slots(path: str, base: int, targets: dict[str, int]) -> list[Slot]:
    """GOT slots of ``path`` (loaded at ``base``) that bind to one of ``targets``' names.

    Raises:
        RuntimeError: a slot holds neither its function nor ``path``'s lazy stub.
    """
    slots = []
    for offset, symbol in slot_relocations(path, frozenset(targets)):
        address = base + offset
        old = read_pointer(address)
        if old != targets[symbol] and not _holds(old, symbol, path):
            raise RuntimeError(f"{symbol} slot in {path} holds an unexpected address {old:#x}")
        slots.append(Slot(address, symbol, old))
    return slots


def read_pointer(address: int) -> int:
    return ctypes.c_void_p.from_address(address).value or 0


def write_pointer(address: int, value: int) -> None:
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


def dladdr(address: int) -> tuple[str | None, str | None]:
    """(file, symbol) that contain ``address``, as the dynamic linker sees them."""
    info = _DlInfo()
    lib = _libdl()
    if not address or not lib.dladdr(ctypes.c_void_p(address), ctypes.byref(info)):
        return None, None
    fname = info.dli_fname.decode(errors="replace") if info.dli_fname else None
    sname = info.dli_sname.decode(errors="replace") if info.dli_sname else None
    return fname, sname


def _holds(value: int, symbol: str, owner: str) -> bool:
    """True if ``value`` is ``symbol`` in some library, or a lazy PLT stub of ``owner``."""
    fname, sname = dladdr(value)
    if sname == symbol:
        return True
    return fname is not None and os.path.realpath(fname) == owner and sname is None


def _protection(address: int) -> int:
    """PROT_* bits of the mapping that contains ``address``, from /proc/self/maps."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            if lo <= address < hi:
                return (perms[0] == "r") * 1 | (perms[1] == "w") * 2 | (perms[2] == "x") * 4
    raise RuntimeError(f"address {address:#x} is not mapped")


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


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


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
