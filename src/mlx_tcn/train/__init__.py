"""Training pipeline. A run goes one way: config -> task -> model -> loop -> checkpoint.

The public entry points are :class:`TrainConfig` (also importable as ``TrainingConfig``,
the name the original README uses) / :func:`resolve_config`, :func:`build_task`,
:func:`build_model`, :func:`train` (the loop) and :func:`run_training` (a whole run with its
folder, checkpoints, metrics log and plots); :mod:`.predict` uses a trained checkpoint.
``mlx-tcn`` is a thin layer over them.
"""

from .checkpoint import CheckpointError, find_checkpoint, load_checkpoint, save_checkpoint
from .config import TASKS, TrainConfig, TrainingConfig, load_config_file, resolve_config
from .loop import LoopState, TrainingDiverged, build_step, make_optimizer, train
from .losses import evaluate_split
from .model import build_model
from .presets import PRESETS
from .runner import RunResult, run_training
from .tasks import TaskData, build_task

__all__ = [
    "PRESETS",
    "TASKS",
    "CheckpointError",
    "LoopState",
    "RunResult",
    "TaskData",
    "TrainConfig",
    "TrainingConfig",
    "TrainingDiverged",
    "build_model",
    "build_step",
    "build_task",
    "evaluate_split",
    "find_checkpoint",
    "load_checkpoint",
    "load_config_file",
    "make_optimizer",
    "resolve_config",
    "run_training",
    "save_checkpoint",
    "train",
]
