"""pytorch-tcn state dicts <-> mlx-tcn parameters: key names, layouts, weight-norm formats,
and the entries only one side has.

Layouts: a torch convolution weight is (out, in, k), an mlx-tcn one (out, k, in); torch's 1x1
convolutions (residual downsample, embedding projections, skip downsample, output projection)
are (out, in, 1) and ours are ``nn.Linear`` weights (out, in); weight-norm gains are (out, 1, 1)
on both sides. Both weight-norm formats are read: ``parametrizations.weight.original0/1``
(torch >= 2.1) and the older ``weight_g``/``weight_v``. Streaming buffers (``padder.buffer``,
and ``conv1.buffer``/``conv2.buffer`` from pytorch-tcn < 1.2.2) and batch-norm
``num_batches_tracked`` counters carry no weights and are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from mlx_tcn.parametrizations import is_weight_normed, remove_weight_norm
from mlx_tcn.tcn import TCN

__all__ = [
    "change_layout",
    "extra_torch_entries",
    "fit_state_dict",
    "follow_removed_weight_norm",
    "to_numpy",
    "torch_layout",
]

_WN_NEW = (".parametrizations.weight.original0", ".parametrizations.weight.original1")
_WN_OLD = (".weight_g", ".weight_v")


def to_numpy(value: Any) -> np.ndarray:
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


def torch_layout(name: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...], str]:
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


def change_layout(value: np.ndarray, change: str, to_torch: bool) -> np.ndarray:
    """Apply (``to_torch``) or undo a layout change from :func:`torch_layout`."""
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


def extra_torch_entries(model: TCN) -> dict[str, np.ndarray]:
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


def fit_state_dict(model: TCN, state_dict: Mapping[str, Any]) -> list[tuple[str, mx.array]]:
    """Match a pytorch-tcn state dict to ``model``'s parameters, or raise one ValueError."""
    expected = {}
    for name, value in tree_flatten(model.parameters()):
        torch_key, torch_shape, change = torch_layout(name, tuple(value.shape))
        expected[torch_key] = (name, torch_shape, change, value.dtype)
    extra = extra_torch_entries(model)
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
    misshaped, not_arrays = [], []
    for canonical, (key, value) in given.items():
        if not hasattr(value, "shape"):  # None, a number, a list: not a saved tensor
            not_arrays.append(f"{key}: {type(value).__name__}")
            continue
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
    if not_arrays:
        problems.append(f"values that are not arrays or tensors [{'; '.join(sorted(not_arrays))}]")
    if problems:
        raise ValueError(
            "state_dict does not fit the pytorch-tcn configuration: " + "; ".join(problems)
        )
    weights = []
    for canonical, (name, _, change, dtype) in expected.items():
        value = change_layout(to_numpy(given[canonical][1]), change, to_torch=False)
        value = np.ascontiguousarray(value, dtype=np.float32)
        weights.append((name, mx.array(value).astype(dtype)))
    return weights


def follow_removed_weight_norm(model: TCN, state_dict: Mapping[str, Any]) -> None:
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
