"""Read the GOT relocations of a 64-bit little-endian ELF shared object.

Pure parsing of bytes: which global offset table slots of a library bind to which symbol.
:mod:`.got` uses it to find the slots through which MLX calls ``cblas_sgemm``.
"""

from __future__ import annotations

import functools
import mmap
import struct

# ELF relocation types of GOT slots that hold one function address, per e_machine.
EM_X86_64, EM_AARCH64 = 62, 183
SLOT_RELOCS = {EM_X86_64: {6, 7}, EM_AARCH64: {1025, 1026}}  # GLOB_DAT, JUMP_SLOT
PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_STRTAB, DT_SYMTAB, DT_RELA, DT_RELASZ = 0, 5, 6, 7, 8
DT_PLTRELSZ, DT_PLTREL, DT_JMPREL = 2, 20, 23

__all__ = ["parse_slot_relocations", "slot_relocations"]


@functools.lru_cache(maxsize=16)
def slot_relocations(path: str, symbols: frozenset[str]) -> list[tuple[int, str]]:
    """(slot offset, symbol) of the GOT relocations of the ELF file at ``path`` that bind
    one of ``symbols``."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return parse_slot_relocations(data, path, symbols)


def parse_slot_relocations(
    data: bytes | bytearray | mmap.mmap, path: str, symbols: frozenset[str]
) -> list[tuple[int, str]]:
    """(slot offset, symbol) for each GLOB_DAT/JUMP_SLOT relocation of ``symbols`` in the
    ELF image ``data`` (``path`` only names it in errors).

    Raises:
        RuntimeError: not a 64-bit little-endian ELF image of a supported machine, or an
            address outside its segments.
    """
    if bytes(data[:4]) != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise RuntimeError(f"{path} is not a 64-bit little-endian ELF file")
    machine = struct.unpack_from("<H", data, 18)[0]
    if machine not in SLOT_RELOCS:
        raise RuntimeError(f"{path}: unsupported ELF machine {machine}")
    loads, dynamic = _segments(data)
    if dynamic is None:
        return []

    def to_file(vaddr: int) -> int:
        for seg_vaddr, seg_offset, seg_size in loads:
            if seg_vaddr <= vaddr < seg_vaddr + seg_size:
                return vaddr - seg_vaddr + seg_offset
        raise RuntimeError(f"{path}: address {vaddr:#x} outside the file's segments")

    tags = _dynamic_tags(data, *dynamic)
    if DT_SYMTAB not in tags or DT_STRTAB not in tags:
        return []
    symtab, strtab = to_file(tags[DT_SYMTAB]), to_file(tags[DT_STRTAB])
    tables = []
    if DT_RELA in tags:
        tables.append((tags[DT_RELA], tags.get(DT_RELASZ, 0)))
    if DT_JMPREL in tags and tags.get(DT_PLTREL) == DT_RELA:
        tables.append((tags[DT_JMPREL], tags.get(DT_PLTRELSZ, 0)))
    kinds = SLOT_RELOCS[machine]
    found = []
    for start, size in tables:
        begin = to_file(start)
        for pos in range(begin, begin + size, 24):
            r_offset, r_info, _ = struct.unpack_from("<QQq", data, pos)
            if r_info & 0xFFFFFFFF not in kinds:
                continue
            st_name = struct.unpack_from("<I", data, symtab + (r_info >> 32) * 24)[0]
            end = data.find(b"\0", strtab + st_name)
            name = bytes(data[strtab + st_name : end]).decode()
            if name in symbols:
                found.append((r_offset, name))
    return found


def _segments(
    data: bytes | bytearray | mmap.mmap,
) -> tuple[list[tuple[int, int, int]], tuple[int, int] | None]:
    """(vaddr, file offset, size) of each PT_LOAD segment, and (offset, size) of PT_DYNAMIC."""
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    return loads, dynamic


def _dynamic_tags(data: bytes | bytearray | mmap.mmap, offset: int, size: int) -> dict[int, int]:
    """The first value of each tag of the dynamic section, up to DT_NULL."""
    tags: dict[int, int] = {}
    for pos in range(offset, offset + size, 16):
        tag, value = struct.unpack_from("<qQ", data, pos)
        if tag == DT_NULL:
            break
        tags.setdefault(tag, value)
    return tags
