"""Tasks: the arrays that :mod:`.data` reads, turned into what the loop trains on: splits,
normalisation, the loss kind (:mod:`.losses`) and the loss of a trivial predictor. The
built-in tasks are here; users' tables (forecast, classify) are in :mod:`.user_data`.

The path of a run's data is one-way: :func:`build_task` asks :mod:`.data` for arrays and
returns a :class:`TaskData`; nothing in :mod:`.data` calls back here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._moved import forwarder
from .config import TrainConfig
from .data import adding_problem, copy_memory, read_mnist, read_polyphonic
from .split import Split, TaskData
from .user_data import classify_task, forecast_task

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "TASK_SHAPES",
    "TaskData",
    "build_task",
    "load_mnist",
    "load_polyphonic",
    "task_shape",
]

MNIST_MEAN = 0.1307  # torchvision's normalisation, used by the reference code
MNIST_STD = 0.3081

#: ``(kind, input channels, output channels)`` of the built-in tasks; user data (forecast,
#: classify) has the shape of its columns and classes.
TASK_SHAPES: dict[str, tuple[str, int, int]] = {
    "adding": ("regression_last", 2, 1),
    "copy_memory": ("class_all", 1, 10),
    "mnist": ("class_last", 1, 10),
    "pmnist": ("class_last", 1, 10),
    "jsb": ("multilabel_all", 88, 88),
    "nottingham": ("multilabel_all", 88, 88),
}


def task_shape(cfg: TrainConfig) -> tuple[int, int]:
    """``(inputs, outputs)`` of the model ``cfg`` trains; reads user data only when it must."""
    if cfg.task in TASK_SHAPES:
        return TASK_SHAPES[cfg.task][1:]
    task = build_task(cfg)
    return task.num_inputs, task.num_outputs


def _builtin(task: str, train: Split, val: Split, **kw: Any) -> TaskData:
    return TaskData(*TASK_SHAPES[task], train, val, **kw)


def build_task(cfg: TrainConfig, stats: dict[str, Any] | None = None) -> TaskData:
    """Generate or load the data of ``cfg.task``.

    Args:
        cfg: the resolved training config.
        stats: statistics saved with a checkpoint; when given, user data is normalised with
            them instead of recomputing (evaluation of a trained model).
    """
    rng_train = np.random.default_rng([cfg.seed, 1])
    rng_val = np.random.default_rng([cfg.seed, 2])
    if cfg.task == "adding":
        train = Split(*adding_problem(cfg.n_train, cfg.seq_len, rng_train))
        val = Split(*adding_problem(cfg.n_val, cfg.seq_len, rng_val))
        # Always predicting 1 (the mean of the target) scores Var(u1 + u2) = 1/6.
        return _builtin("adding", train, val, baseline=1 / 6)
    if cfg.task == "copy_memory":
        train = Split(*copy_memory(cfg.n_train, cfg.seq_len, cfg.memory_length, rng_train))
        val = Split(*copy_memory(cfg.n_val, cfg.seq_len, cfg.memory_length, rng_val))
        # Chance: blanks are predictable, the digits are uniform over 8 values.
        base = cfg.memory_length * math.log(8) / (cfg.seq_len + 2 * cfg.memory_length)
        return _builtin("copy_memory", train, val, baseline=base)
    if cfg.task in ("mnist", "pmnist"):
        train, test, perm = load_mnist(
            cfg.data_path,
            permute=cfg.task == "pmnist",
            seed=cfg.seed,
            n_train=cfg.n_train,
            n_test=cfg.n_val,
        )
        if stats and stats.get("permutation") is not None:
            perm = np.asarray(stats["permutation"])
            train.transform = test.transform = mnist_transform(perm)
        info = {"permutation": None if perm is None else perm.tolist()}
        return _builtin(cfg.task, train, test, test=test, stats=info, baseline=math.log(10))
    if cfg.task in ("jsb", "nottingham"):
        splits = load_polyphonic(cfg.data_path)
        return _builtin(cfg.task, splits["train"], splits["val"], test=splits["test"])
    if cfg.task == "forecast":
        return forecast_task(cfg, stats)
    return classify_task(cfg, stats)


# --------------------------------------------------------------------------- MNIST, music


def load_mnist(
    folder: str | Path,
    *,
    permute: bool = False,
    seed: int = 0,
    n_train: int = 0,
    n_test: int = 0,
) -> tuple[Split, Split, np.ndarray | None]:
    """Sequential (or permuted) MNIST splits from the four standard IDX files in ``folder``.

    Each image becomes 784 steps of one pixel, scaled to ``[0, 1]`` and normalised with mean
    0.1307 and std 0.3081. With ``permute`` one fixed permutation (drawn from ``seed``) reorders
    the pixels of every image.

    Returns:
        ``(train, test, permutation)``; labels are int32 in ``0..9``.
    """
    arrays = read_mnist(folder)
    perm = np.random.default_rng(seed).permutation(784) if permute else None
    splits = []
    for name, cap in (("train", n_train), ("test", n_test)):
        x, y = arrays[name]
        if cap:
            x, y = x[:cap], y[:cap]
        splits.append(Split(x, y, transform=mnist_transform(perm)))
    return splits[0], splits[1], perm


def mnist_transform(perm: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
    """Turn uint8 images ``(B, 784)`` into normalised sequences ``(B, 784, 1)``."""

    def transform(x: np.ndarray) -> np.ndarray:
        x = (x.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD
        if perm is not None:
            x = x[:, perm]
        return x[..., None]

    return transform


def load_polyphonic(path: str | Path) -> dict[str, Split]:
    """JSB Chorales / Nottingham as next-frame prediction: input frames ``0..T-2``, target
    frames ``1..T-1`` of each ``(T, 88)`` piano roll.

    Returns:
        ``{"train", "val", "test"}`` ragged splits.
    """
    out = {}
    for name, rolls in read_polyphonic(path).items():
        seqs = [s for s in rolls if len(s) > 1]  # one frame predicts nothing
        if not seqs:
            raise ValueError(f"{path}: no {name} sequence has the 2 frames a prediction needs")
        out[name] = Split([s[:-1] for s in seqs], [s[1:] for s in seqs])
    return out


# Names that lived here before train/ took one role per module (issue 11).
__getattr__ = forwarder(
    __name__,
    {
        "KINDS": "losses",
        "head": "losses",
        "loss_fn": "losses",
        "evaluate_split": "losses",
        "TaskData": "split",
        "normalize_inputs": "user_data",
        "normalize_targets": "user_data",
        "denormalize_targets": "user_data",
        "prepare_user_inputs": "predict",
    },
)
