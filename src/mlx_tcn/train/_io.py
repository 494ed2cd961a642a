"""Reading users' text and config files, with errors that name the file."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["load_config_file", "read_utf8"]


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


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, JSON or YAML config file into a dict (keys are checked later).

    A TOML/YAML file may put the fields at top level or under a ``[train]`` table.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    text = read_utf8(path, "config file")
    parse: Callable[[str], Any]
    if suffix == ".toml":
        if sys.version_info < (3, 11):
            raise ValueError(f"TOML config {path} needs Python 3.11+ (tomllib); use JSON or YAML")
        import tomllib

        parse = tomllib.loads
    elif suffix == ".json":
        parse = json.loads
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(
                f'YAML config {path} needs pyyaml: pip install "mlx-tcn[data]" (or: pip install pyyaml)'
            ) from None

        def parse(text: str) -> Any:
            return yaml.safe_load(text) or {}
    else:
        raise ValueError(f"config file {path}: unknown format {suffix!r} (use .toml, .json, .yaml)")
    try:
        data = parse(text)
    except Exception as err:  # each format's own parse error
        raise ValueError(f"config file {path} could not be parsed: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table/mapping, got {type(data).__name__}")
    if set(data) == {"train"} and isinstance(data["train"], dict):
        data = data["train"]
    return data
