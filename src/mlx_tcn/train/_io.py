"""Reading users' text files with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["read_utf8"]


def read_utf8(path: Path, what: str, **open_kw: Any) -> str:
    """The text of ``path`` (a UTF-8 byte-order mark is dropped).

    Raises:
        ValueError: the file is not UTF-8; the message names the file, the first bad byte and
            how to convert it, instead of Python's bare ``'utf-8' codec can't decode ...``.
    """
    try:
        with path.open(encoding="utf-8-sig", **open_kw) as f:
            return f.read()
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{what} {path} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
            f"{err.start}); save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name}"
        ) from None
