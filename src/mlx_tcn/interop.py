"""Convert models between pytorch-tcn (1.2.x) and mlx-tcn, in both directions.

:func:`from_pytorch_tcn` builds a :class:`mlx_tcn.TCN` from a pytorch-tcn state dict and the
pytorch-tcn constructor arguments; :func:`to_pytorch_tcn` gives back a state dict that
``pytorch_tcn.TCN(**kwargs).load_state_dict(...)`` accepts strictly, plus those ``kwargs``;
:func:`main_convert` is ``mlx-tcn convert``.

Layouts: a torch convolution weight is (out, in, k), an mlx-tcn one (out, k, in); torch's 1x1
convolutions (residual downsample, embedding projections, skip downsample, output projection)
are (out, in, 1) and ours are ``nn.Linear`` weights (out, in); weight-norm gains are (out, 1, 1)
on both sides. Both weight-norm formats are read: ``parametrizations.weight.original0/1``
(torch >= 2.1) and the older ``weight_g``/``weight_v``. Streaming buffers (``padder.buffer``,
and ``conv1.buffer``/``conv2.buffer`` from pytorch-tcn < 1.2.2) and batch-norm
``num_batches_tracked`` counters carry no weights and are ignored.

torch is imported only when a ``.pt``/``.pth`` file is read or written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from mlx_tcn import serialization
from mlx_tcn.activations import ACTIVATIONS
from mlx_tcn.parametrizations import is_weight_normed, remove_weight_norm
from mlx_tcn.tcn import TCN

__all__ = ["from_pytorch_tcn", "main_convert", "to_pytorch_tcn"]

logger = logging.getLogger(__name__)

# pytorch-tcn 1.2.3 TCN constructor arguments and their defaults (num_inputs and num_channels
# have none). They differ from mlx-tcn's: causal=True here.
PYTORCH_TCN_DEFAULTS: dict[str, Any] = {
    "kernel_size": 4,
    "dilations": None,
    "dilation_reset": None,
    "dropout": 0.1,
    "causal": True,
    "use_norm": "weight_norm",
    "activation": "relu",
    "kernel_initializer": "xavier_uniform",
    "use_skip_connections": False,
    "input_shape": "NCL",
    "embedding_shapes": None,
    "embedding_mode": "add",
    "use_gate": False,
    "lookahead": 0,
    "output_projection": None,
    "output_activation": None,
}
_REQUIRED = ("num_inputs", "num_channels")
# Arguments with the same name and meaning on both sides.
_SHARED = (
    "num_inputs",
    "num_channels",
    "dilations",
    "dilation_reset",
    "dropout",
    "causal",
    "use_norm",
    "activation",
    "kernel_initializer",
    "use_skip_connections",
    "embedding_mode",
    "use_gate",
    "output_projection",
    "output_activation",
)
# Our activation names are exactly pytorch-tcn's.
_PYTORCH_ACTIVATIONS = tuple(ACTIVATIONS)
_HE_TO_KAIMING = {"he_uniform": "kaiming_uniform", "he_normal": "kaiming_normal"}
_NO_KAIMING_ACTIVATIONS = ("gelu", "elu", "softmax", "log_softmax")
_WN_NEW = (".parametrizations.weight.original0", ".parametrizations.weight.original1")
_WN_OLD = (".weight_g", ".weight_v")


# --------------------------------------------------------------------------- arguments


def pytorch_kwargs_to_config(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """mlx-tcn ``TCN`` arguments for pytorch-tcn ``TCN`` arguments (pytorch-tcn defaults)."""
    unknown = sorted(set(kwargs) - set(PYTORCH_TCN_DEFAULTS) - set(_REQUIRED))
    if unknown:
        raise TypeError(f"unknown pytorch-tcn TCN arguments: {unknown}")
    missing = [k for k in _REQUIRED if k not in kwargs]
    if missing:
        raise TypeError(f"missing required pytorch-tcn TCN arguments: {missing}")
    pt = {**PYTORCH_TCN_DEFAULTS, **kwargs}
    if pt["lookahead"] != 0:
        raise ValueError(f"lookahead must be 0 (as in pytorch-tcn), got {pt['lookahead']!r}")
    if pt["input_shape"] not in ("NCL", "NLC"):
        raise ValueError(f"input_shape must be 'NCL' or 'NLC', got {pt['input_shape']!r}")
    for name in ("activation", "output_activation"):
        value = pt[name]
        if value is not None and not isinstance(value, str):
            raise ValueError(
                f"{name} must be a pytorch-tcn activation name to convert, got {value!r}; "
                f"build the mlx-tcn model with the matching MLX activation instead"
            )
    config = {name: pt[name] for name in _SHARED}  # TCN checks the values, naming them
    if pt["dilations"] is not None:  # pytorch-tcn then ignores dilation_reset
        config["dilation_reset"] = None
    config["kernel_sizes"] = pt["kernel_size"]
    # (C,), (C, None) and (C, T) are kept as given; TCN checks them.
    config["embedding_shapes"] = pt["embedding_shapes"]
    return config


def config_to_pytorch_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """pytorch-tcn ``TCN`` arguments for an mlx-tcn model config; ValueError if it has none."""
    if config.get("use_se"):
        raise ValueError("use_se=True has no pytorch-tcn equivalent (pytorch-tcn has no SE blocks)")
    for name in ("activation", "output_activation"):
        value = config.get(name)
        if value is not None and value not in _PYTORCH_ACTIVATIONS:
            raise ValueError(
                f"{name}={value!r} has no pytorch-tcn equivalent; "
                f"pytorch-tcn names: {list(_PYTORCH_ACTIVATIONS)}"
            )
    kernel_sizes = config["kernel_sizes"]
    if isinstance(kernel_sizes, (list, tuple)):
        if len(set(kernel_sizes)) != 1:
            raise ValueError(
                f"kernel_sizes={list(kernel_sizes)!r}: pytorch-tcn has one kernel size for "
                f"all blocks"
            )
        kernel_sizes = kernel_sizes[0]
    kwargs = {name: config[name] for name in _SHARED}
    kwargs["num_channels"] = list(kwargs["num_channels"])
    if kwargs["dilations"] is not None:
        kwargs["dilations"] = list(kwargs["dilations"])
    kwargs["kernel_size"] = int(kernel_sizes)
    init = _HE_TO_KAIMING.get(kwargs["kernel_initializer"], kwargs["kernel_initializer"])
    if init.startswith("kaiming") and kwargs["activation"] in _NO_KAIMING_ACTIVATIONS:
        # pytorch-tcn refuses this pair; the initialiser does not matter for loaded weights.
        logger.warning(
            "kernel_initializer=%r with activation=%r is refused by pytorch-tcn; exporting "
            "kernel_initializer='xavier_uniform' (it only affects freshly built models)",
            kwargs["kernel_initializer"],
            kwargs["activation"],
        )
        init = "xavier_uniform"
    kwargs["kernel_initializer"] = init
    shapes = config.get("embedding_shapes")
    kwargs["embedding_shapes"] = None if shapes is None else [list(s) for s in shapes]
    return dict(sorted(kwargs.items()))


# --------------------------------------------------------------------------- state dicts


def _to_numpy(value: Any) -> np.ndarray:
    """A torch tensor, MLX array or array-like as a NumPy array."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        return value.numpy()
    if isinstance(value, mx.array):
        if mx.issubdtype(value.dtype, mx.floating):
            value = value.astype(mx.float32)
        return np.array(value)
    return np.asarray(value)


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


def _read_file(path: Path, read: Any, what: str) -> Any:
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


def _load_state_dict_file(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return dict(_read_file(path, lambda p: mx.load(str(p)), "state dict"))
    if suffix in (".pt", ".pth"):
        loaded = _read_file(path, _torch_load, "state dict")
        if not isinstance(loaded, Mapping):
            raise ValueError(
                f"state_dict file {str(path)!r} holds a {type(loaded).__name__}, not a state dict"
            )
        return dict(loaded)
    raise ValueError(f"state_dict path must end in .pt, .pth or .safetensors, got {str(path)!r}")


def _torch_layout(name: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...], str]:
    """The pytorch-tcn key, shape and layout change for an mlx-tcn parameter.

    The layout change is ``"conv"`` ((out, k, in) <-> (out, in, k)), ``"linear"``
    ((out, in) <-> (out, in, 1)) or ``"same"``.
    """
    if name.endswith(".weight_g"):
        return name[: -len(".weight_g")] + _WN_NEW[0], shape, "same"
    if name.endswith(".weight_v") or (name.endswith(".weight") and len(shape) == 3):
        out, k, cin = shape
        key = name[: -len(".weight_v")] + _WN_NEW[1] if name.endswith(".weight_v") else name
        return key, (out, cin, k), "conv"
    if name.endswith(".weight") and len(shape) == 2:  # 1x1 convolution as nn.Linear
        return name, (*shape, 1), "linear"
    return name, shape, "same"


def _change_layout(value: np.ndarray, change: str, to_torch: bool) -> np.ndarray:
    """Apply (``to_torch``) or undo a layout change from :func:`_torch_layout`."""
    if change == "conv":
        return value.transpose(0, 2, 1)
    if change == "linear":
        return value[:, :, None] if to_torch else value[:, :, 0]
    return value


def _canonical_key(key: str) -> str:
    """Old weight-norm names (``weight_g``/``weight_v``) -> parametrization names."""
    for old, new in zip(_WN_OLD, _WN_NEW, strict=True):
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def _extra_torch_entries(model: TCN) -> dict[str, np.ndarray]:
    """pytorch-tcn state-dict entries without an mlx-tcn counterpart, at their default values.

    Padder buffers (zeros, (1, in, (k-1)*d)), batch-norm ``num_batches_tracked`` (0) and, in
    ``embedding_mode='add'``, pytorch-tcn's unused ``embedding_projection_2`` (zeros).
    """
    config = model.config
    params = dict(tree_flatten(model.parameters()))
    extra: dict[str, np.ndarray] = {}
    for i, dilation in enumerate(model.dilations):
        block = f"network.{i}"
        for conv in ("conv1", "conv2"):
            key = f"{block}.{conv}.weight_v" if f"{block}.{conv}.weight_v" in params else None
            w = params[key or f"{block}.{conv}.weight"]
            k, cin = w.shape[1], w.shape[2]
            extra[f"{block}.{conv}.padder.buffer"] = np.zeros(
                (1, cin, (k - 1) * dilation), np.float32
            )
        if config.get("use_norm") == "batch_norm":
            for norm in ("norm1", "norm2"):
                extra[f"{block}.{norm}.num_batches_tracked"] = np.zeros((), np.int64)
        if config.get("embedding_shapes") is not None and config.get("embedding_mode") == "add":
            out1 = params[f"{block}.embedding_projection_1.bias"].shape[0]
            extra[f"{block}.embedding_projection_2.weight"] = np.zeros(
                (out1, 2 * out1, 1), np.float32
            )
            extra[f"{block}.embedding_projection_2.bias"] = np.zeros((out1,), np.float32)
    return extra


def _ignorable(key: str, extra: Mapping[str, np.ndarray]) -> bool:
    """Keys read from pytorch-tcn checkpoints and dropped: buffers, counters, unused layers."""
    if key in extra:
        return True
    # pytorch-tcn < 1.2.2 kept the streaming buffer on the conv itself: conv1.buffer.
    return key.endswith(".buffer") and key[: -len(".buffer")] + ".padder.buffer" in extra


def _fit_state_dict(model: TCN, state_dict: Mapping[str, Any]) -> list[tuple[str, mx.array]]:
    """Match a pytorch-tcn state dict to ``model``'s parameters, or raise one ValueError."""
    expected = {}
    for name, value in tree_flatten(model.parameters()):
        torch_key, torch_shape, change = _torch_layout(name, tuple(value.shape))
        expected[torch_key] = (name, torch_shape, change, value.dtype)
    extra = _extra_torch_entries(model)
    given: dict[str, tuple[str, Any]] = {}
    unexpected, duplicate = [], []
    for key, value in state_dict.items():
        canonical = _canonical_key(key)
        if canonical in expected:
            if canonical in given:
                duplicate.append(f"{given[canonical][0]} / {key}")
            given[canonical] = (key, value)
        elif not _ignorable(key, extra):
            unexpected.append(key)
    missing = [k for k in expected if k not in given]
    misshaped = []
    for canonical, (key, value) in given.items():
        shape = tuple(value.shape)
        if shape != expected[canonical][1]:
            misshaped.append(f"{key}: got {shape}, expected {expected[canonical][1]}")
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {sorted(unexpected)}")
    if misshaped:
        problems.append(f"mis-shaped keys [{'; '.join(misshaped)}]")
    if duplicate:
        problems.append(f"keys given twice (two weight-norm formats) {duplicate}")
    if problems:
        raise ValueError(
            "state_dict does not fit the pytorch-tcn configuration: " + "; ".join(problems)
        )
    weights = []
    for canonical, (name, _, change, dtype) in expected.items():
        value = _change_layout(_to_numpy(given[canonical][1]), change, to_torch=False)
        value = np.ascontiguousarray(value, dtype=np.float32)
        weights.append((name, mx.array(value).astype(dtype)))
    return weights


def _follow_removed_weight_norm(model: TCN, state_dict: Mapping[str, Any]) -> None:
    """Fold weight norm in the convolutions that the checkpoint holds as plain weights.

    pytorch-tcn users remove weight norm in torch (``remove_parametrizations`` or the legacy
    ``remove_weight_norm``, per convolution) before saving, while their constructor
    arguments still say ``use_norm='weight_norm'``; the model then matches the checkpoint
    (``use_norm=None`` in its config when every convolution was folded).
    """
    for i, block in enumerate(model.network):
        for name in ("conv1", "conv2"):
            prefix = f"network.{i}.{name}"
            has_norm = any(prefix + suffix in state_dict for suffix in _WN_NEW + _WN_OLD)
            if is_weight_normed(block[name]) and prefix + ".weight" in state_dict and not has_norm:
                remove_weight_norm(block[name])


def from_pytorch_tcn(state_dict: Mapping[str, Any] | str | os.PathLike, **kwargs: Any) -> TCN:
    """Build an mlx-tcn :class:`~mlx_tcn.TCN` from a pytorch-tcn checkpoint.

    Args:
        state_dict: pytorch-tcn ``TCN.state_dict()``: a mapping of names to torch tensors,
            NumPy arrays or MLX arrays, or the path of a ``.pt``/``.pth`` file written by
            ``torch.save(model.state_dict(), path)`` or of a ``.safetensors`` file.
        **kwargs: the pytorch-tcn ``TCN`` constructor arguments, as written for PyTorch
            (``kernel_size``, not ``kernel_sizes``); omitted ones take pytorch-tcn's defaults
            (``causal=True``, ``kernel_size=4``, ``use_norm='weight_norm'``, ...). ``input_shape``
            is accepted and has no effect: mlx-tcn always takes (batch, length, channels).

    Returns:
        The model in eval mode, with every weight loaded. Its output for an input ``x`` of
        shape (batch, length, channels) equals pytorch-tcn's (transposed when it used 'NCL').
        Convolutions whose weight norm was removed in torch before saving (plain ``weight``
        in the state dict) come without weight norm, whatever ``use_norm`` says.

    Raises:
        ValueError: if the state dict does not fit the configuration; the message lists every
            missing, unexpected and mis-shaped key. Nothing is loaded in that case.
        TypeError: for unknown or missing constructor arguments.
    """
    if isinstance(state_dict, (str, os.PathLike)):
        state_dict = _load_state_dict_file(Path(state_dict))
    elif not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict must be a mapping or a file path, got {type(state_dict).__name__}"
        )
    model = TCN(**pytorch_kwargs_to_config(kwargs))
    _follow_removed_weight_norm(model, state_dict)
    model.load_weights(_fit_state_dict(model, state_dict), strict=True)
    model.eval()
    mx.eval(model.parameters())
    return model


def to_pytorch_tcn(model: TCN) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Export an mlx-tcn model as a pytorch-tcn state dict and constructor arguments.

    Args:
        model: an mlx-tcn :class:`~mlx_tcn.TCN` that uses only features pytorch-tcn has.

    Returns:
        ``(state_dict, kwargs)``: NumPy arrays under pytorch-tcn 1.2.3 names and layouts,
        such that ``net = pytorch_tcn.TCN(**kwargs)`` then
        ``net.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()})``
        loads strictly and ``net`` computes the same outputs (in 'NCL' layout). Streaming
        buffers and ``num_batches_tracked`` are zeros; in ``embedding_mode='add'``
        pytorch-tcn's unused ``embedding_projection_2`` is filled with zeros.

    Raises:
        ValueError: for features pytorch-tcn lacks: SE blocks, activations that are not
            pytorch-tcn names (callables included), per-block kernel sizes, weight norm
            removed from some convolutions only (a model folded everywhere exports as
            ``use_norm=None``).
    """
    serialization.check_describable(
        model
    )  # weight norm on some convolutions only: no pytorch-tcn kwargs
    kwargs = config_to_pytorch_kwargs(model.config)
    state_dict: dict[str, np.ndarray] = {}
    for name, value in tree_flatten(model.parameters()):
        torch_key, _, change = _torch_layout(name, tuple(value.shape))
        array = _change_layout(_to_numpy(value), change, to_torch=True)
        state_dict[torch_key] = np.ascontiguousarray(array)
    state_dict.update(_extra_torch_entries(model))
    return state_dict, kwargs


# --------------------------------------------------------------------------- command line


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlx-tcn convert",
        description="Convert models between pytorch-tcn and mlx-tcn.",
    )
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
    return parser


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; ValueError naming the file when it is anything else."""
    value = _read_file(path, lambda p: json.loads(p.read_text(encoding="utf-8")), what)
    if not isinstance(value, dict):
        raise ValueError(f"{what} file {str(path)!r} must hold a JSON object, got {value!r}")
    return value


def _read_pytorch_kwargs(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        return _read_json_object(path, "--config")
    config_file = path / "config.json"
    config = _read_json_object(config_file, "config.json")
    try:
        config = TCN(**config).config  # checks every value
    except (TypeError, ValueError) as err:
        raise ValueError(f"{str(config_file)!r} does not describe a TCN: {err}") from None
    return config_to_pytorch_kwargs(config)


def _write_outputs(outputs: Mapping[Path, Any]) -> None:
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


def _state_dict_writer(state_dict: Mapping[str, np.ndarray], path: Path) -> Any:
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


def main_convert(argv: list[str]) -> int:
    """``mlx-tcn convert``: both directions, files in and out. Returns the exit status.

    ``mlx-tcn convert from-pytorch CKPT --config KWARGS.json --out MODEL_DIR`` reads a
    pytorch-tcn state dict and writes an mlx-tcn model directory (``TCN.load`` reads it);
    ``mlx-tcn convert to-pytorch MODEL_DIR --out CKPT [--config-out KWARGS.json]`` writes the
    state dict and the pytorch-tcn constructor arguments as JSON.
    """
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        if args.direction == "from-pytorch":
            model = from_pytorch_tcn(args.checkpoint, **_read_pytorch_kwargs(args.config))
            model.save(args.out)
            logger.info("wrote mlx-tcn model %s", args.out)
        else:
            state_dict, kwargs = to_pytorch_tcn(TCN.load(args.model_dir))
            config_out = args.config_out or args.out.with_suffix(".json")
            text = json.dumps(kwargs, indent=2, sort_keys=True) + "\n"
            _write_outputs(
                {
                    args.out: _state_dict_writer(state_dict, args.out),
                    config_out: lambda tmp: tmp.write_text(text),
                }
            )
            logger.info("wrote pytorch-tcn state dict %s and arguments %s", args.out, config_out)
    except (OSError, ValueError, TypeError) as exc:
        logger.error("mlx-tcn convert: %s", " ".join(str(exc).split()))  # one line
        return 1
    return 0
