"""Reading and writing the files of a conversion: state dicts (``.pt``/``.pth`` through
torch, ``.safetensors`` through MLX) and JSON, with one clear error naming a bad file, and
outputs that appear all together or not at all.

torch is imported only when a ``.pt``/``.pth`` file is read or written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

__all__ = ["load_state_dict_file", "read_file", "read_json_object"]
__all__ += ["state_dict_writer", "write_outputs"]


def _error_detail(err: BaseException) -> str:
    """One line saying why a file could not be parsed.

    torch's weights-only unpickler reports garbage and foreign pickles alike in a long
    message whose useful part starts with "Unsupported"; other errors say it first.
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    unsupported = [line[line.index("Unsupported") :] for line in lines if "Unsupported" in line]
    if unsupported:
        return f"not a torch.save file of tensors ({unsupported[0].split('. ')[0]})"
    return lines[0] if lines else type(err).__name__


def read_file(path: Path, read: Any, what: str) -> Any:
    """``read(path)``, with any failure to parse the file as one ValueError naming it.

    MLX and torch raise RuntimeError, EOFError, UnpicklingError, UnicodeDecodeError, ... on
    damaged files; callers need one clear error that names the file, not a traceback. The
    message keeps torch's ``weights_only=True`` when that is why a pickle was refused.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} not found")
    try:
        return read(path)
    except Exception as err:  # noqa: BLE001 - every parse failure means "not such a file"
        detail = _error_detail(err)
        if "Unsupported global" in detail:  # a pickle of other objects than tensors
            detail += "; it is read with torch.load(weights_only=True): save model.state_dict()"
        raise ValueError(f"cannot read {what} file {str(path)!r}: {detail}") from None


def _torch_load(path: Path) -> Any:
    import torch

    return torch.load(str(path), map_location="cpu", weights_only=True)


def load_state_dict_file(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return dict(read_file(path, lambda p: mx.load(str(p)), "state dict"))
    if suffix in (".pt", ".pth"):
        loaded = read_file(path, _torch_load, "state dict")
        if not isinstance(loaded, Mapping):
            raise ValueError(
                f"state_dict file {str(path)!r} holds a {type(loaded).__name__}, not a state dict"
            )
        return dict(loaded)
    raise ValueError(f"state_dict path must end in .pt, .pth or .safetensors, got {str(path)!r}")


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; ValueError naming the file when it is anything else."""
    value = read_file(path, lambda p: json.loads(p.read_text(encoding="utf-8")), what)
    if not isinstance(value, dict):
        raise ValueError(f"{what} file {str(path)!r} must hold a JSON object, got {value!r}")
    return value


def write_outputs(outputs: Mapping[Path, Any]) -> None:
    """Write each ``path: writer`` (``writer(tmp_path)``) to a temporary file, then move them
    all into place: a failing write leaves nothing behind."""
    tmps = {path: path.with_name(f".tmp.{path.name}") for path in outputs}  # keeps the suffix
    try:
        for path, write in outputs.items():
            write(tmps[path])
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)


def state_dict_writer(state_dict: Mapping[str, np.ndarray], path: Path) -> Any:
    """A function writing ``state_dict`` in the format of ``path``'s suffix to a given file."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return lambda tmp: mx.save_safetensors(
            str(tmp), {k: mx.array(v) for k, v in state_dict.items()}
        )
    if suffix in (".pt", ".pth"):
        import torch

        return lambda tmp: torch.save(
            {k: torch.from_numpy(v) for k, v in state_dict.items()}, str(tmp)
        )
    raise ValueError(f"--out must end in .pt, .pth or .safetensors, got {str(path)!r}")
