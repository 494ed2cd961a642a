"""``mlx-tcn convert``: both directions, files in and out."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from mlx_tcn.tcn import TCN

from .api import from_pytorch_tcn, to_pytorch_tcn
from .args import config_to_pytorch_kwargs
from .files import read_json_object, state_dict_writer, write_outputs

__all__ = ["add_convert_arguments", "main_convert", "run_convert"]

logger = logging.getLogger("mlx_tcn.interop")


DESCRIPTION = "Convert models between pytorch-tcn and mlx-tcn."


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``mlx-tcn convert``, defined once: the CLI's ``convert`` subparser
    and :func:`main_convert` both take them from here."""
    sub = parser.add_subparsers(dest="direction", required=True)
    frm = sub.add_parser(
        "from-pytorch",
        help="pytorch-tcn state dict (.pt/.pth/.safetensors) -> mlx-tcn model directory",
    )
    frm.add_argument("checkpoint", type=Path, help="pytorch-tcn state dict file")
    frm.add_argument(
        "--config",
        type=Path,
        required=True,
        help="JSON file of the pytorch-tcn TCN constructor arguments, or an mlx-tcn model "
        "directory whose config.json describes the same architecture",
    )
    frm.add_argument("--out", "-o", type=Path, required=True, help="mlx-tcn model directory")
    to = sub.add_parser(
        "to-pytorch",
        help="mlx-tcn model directory -> pytorch-tcn state dict (.pt/.pth/.safetensors)",
    )
    to.add_argument("model_dir", type=Path, help="mlx-tcn model directory (TCN.save)")
    to.add_argument("--out", "-o", type=Path, required=True, help="state dict file to write")
    to.add_argument(
        "--config-out",
        type=Path,
        default=None,
        help="where to write the pytorch-tcn constructor arguments (default: OUT with .json)",
    )


def _read_pytorch_kwargs(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        return read_json_object(path, "--config")
    config_file = path / "config.json"
    config = read_json_object(config_file, "config.json")
    try:
        config = TCN(**config).config  # checks every value
    except (TypeError, ValueError) as err:
        raise ValueError(f"{str(config_file)!r} does not describe a TCN: {err}") from None
    return config_to_pytorch_kwargs(config)


def main_convert(argv: list[str]) -> int:
    """``mlx-tcn convert``: both directions, files in and out. Returns the exit status.

    ``mlx-tcn convert from-pytorch CKPT --config KWARGS.json --out MODEL_DIR`` reads a
    pytorch-tcn state dict and writes an mlx-tcn model directory (``TCN.load`` reads it);
    ``mlx-tcn convert to-pytorch MODEL_DIR --out CKPT [--config-out KWARGS.json]`` writes the
    state dict and the pytorch-tcn constructor arguments as JSON.
    """
    parser = argparse.ArgumentParser(prog="mlx-tcn convert", description=DESCRIPTION)
    add_convert_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    return run_convert(args)


def run_convert(args: argparse.Namespace) -> int:
    """Carry out a parsed ``mlx-tcn convert``; errors become one logged line and status 1."""
    try:
        if args.direction == "from-pytorch":
            model = from_pytorch_tcn(args.checkpoint, **_read_pytorch_kwargs(args.config))
            model.save(args.out)
            logger.info("wrote mlx-tcn model %s", args.out)
        else:
            state_dict, kwargs = to_pytorch_tcn(TCN.load(args.model_dir))
            config_out = args.config_out or args.out.with_suffix(".json")
            text = json.dumps(kwargs, indent=2, sort_keys=True) + "\n"
            write_outputs(
                {
                    args.out: state_dict_writer(state_dict, args.out),
                    config_out: lambda tmp: tmp.write_text(text),
                }
            )
            logger.info("wrote pytorch-tcn state dict %s and arguments %s", args.out, config_out)
    except (OSError, ValueError, TypeError) as exc:
        logger.error("mlx-tcn convert: %s", " ".join(str(exc).split()))  # one line
        return 1
    return 0
