"""A training run end to end: run folder, data, model, optimiser, checkpoints, metrics log and
plots, around :func:`mlx_tcn.train.loop.train`. The CLI adds only the terminal (progress bar,
summary table)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    load_optimizer_state,
    restore_random_state,
    save_checkpoint,
)
from .config import TrainConfig, resolve_config
from .data import iterate_batches
from .loop import LoopState, TrainingDiverged, make_optimizer, total_steps, train
from .model import build_model, model_kwargs
from .tasks import TaskData, build_task, denormalize_targets, head

__all__ = ["RESUMABLE_KEYS", "RunResult", "predict_split", "resume_config", "run_training"]

logger = logging.getLogger(__name__)

#: Fields that may change when a run is resumed; every other field must match the checkpoint.
RESUMABLE_KEYS = frozenset({
    "epochs", "max_steps", "eval_every", "eval_batches", "log_every", "checkpoint_every",
    "keep_checkpoints", "patience", "plots", "compile", "runs_dir", "name",
})  # fmt: skip


@dataclass
class RunResult:
    """Outcome of :func:`run_training`."""

    run_dir: Path
    cfg: TrainConfig
    state: LoopState
    seconds: float
    last: dict[str, Any] = field(default_factory=dict)  # latest value of every reported metric
    baseline: float | None = None
    num_params: int = 0
    receptive_field: float = 0
    plots: list[Path] = field(default_factory=list)


def resume_config(
    ckpt: Checkpoint, file_values: dict[str, Any], cli_values: dict[str, Any]
) -> TrainConfig:
    """The saved config with the allowed overrides applied; refuses changes that would make the
    checkpoint incompatible (model, data, optimiser)."""
    saved = ckpt.cfg.to_dict()
    wanted = {**file_values, **cli_values}
    resolve_config(wanted)  # unknown keys and bad values fail here, before anything else
    changed = {
        k: v for k, v in wanted.items() if k in saved and saved[k] != v and k not in RESUMABLE_KEYS
    }
    if changed:
        diff = ", ".join(f"{k}={saved[k]!r} (asked {v!r})" for k, v in sorted(changed.items()))
        raise CheckpointError(f"cannot resume {ckpt.path}: it was trained with {diff}")
    saved.update({k: v for k, v in wanted.items() if k in RESUMABLE_KEYS})
    return resolve_config({**saved, "preset": "none"})


def _new_run_dir(cfg: TrainConfig) -> Path:
    """``runs/<name>``; an existing run is never overwritten (``<name>-2``, ``-3``, ... instead)."""
    base = cfg.run_dir
    path, n = base, 1
    while path.exists() and any(path.iterdir()):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    if path != base:
        logger.info("run folder %s exists; writing to %s", base, path)
    return path


def _check_model_fits(ckpt: Checkpoint, cfg: TrainConfig, task: TaskData) -> None:
    expected = model_kwargs(cfg, task.num_inputs, task.num_outputs)
    have = ckpt.model.config
    diff = [k for k, v in expected.items() if k in have and have[k] != v and not (
        isinstance(v, list) and list(have[k] or []) == v)]  # fmt: skip
    if diff:
        detail = ", ".join(f"{k}: checkpoint {have[k]!r}, config {expected[k]!r}" for k in diff)
        raise CheckpointError(f"checkpoint {ckpt.path} does not fit the config ({detail})")


def run_training(
    cfg: TrainConfig,
    *,
    resume: Checkpoint | None = None,
    callbacks: list[Callable[[dict[str, Any]], None]] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Train ``cfg`` (or continue ``resume``), writing everything into the run folder.

    The run folder receives ``train_config.json``, ``metrics.jsonl``, ``checkpoints/`` and,
    with ``cfg.plots``, ``metrics.png`` (and ``predictions.png`` for forecasting).
    """
    start = time.perf_counter()
    run_dir = resume.path.parent.parent if resume else _new_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    mx.random.seed(cfg.seed)
    task = build_task(cfg, stats=resume.stats if resume else None)
    if resume:
        _check_model_fits(resume, cfg, task)
        model, state = resume.model, resume.loop
    else:
        model, state = build_model(cfg, task.num_inputs, task.num_outputs), LoopState()
    (run_dir / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    optimizer = make_optimizer(cfg, total_steps(cfg, len(task.train)))
    optimizer.init(model.trainable_parameters())
    if resume:
        load_optimizer_state(resume.path, optimizer)
        if resume.random_key is not None:
            restore_random_state(resume.random_key)

    metrics_path = run_dir / "metrics.jsonl"
    records = _read_records(metrics_path, upto_step=state.step)
    result = RunResult(run_dir, cfg, state, 0.0, baseline=task.baseline)
    from mlx.utils import tree_flatten

    result.num_params = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    result.receptive_field = model.receptive_field

    with metrics_path.open("w") as log:
        for r in records:
            log.write(json.dumps(r) + "\n")

        def record(event: dict[str, Any]) -> None:
            if event["event"] != "step":
                log.write(json.dumps(event) + "\n")
                log.flush()
                records.append(event)
            result.last.update({k: v for k, v in event.items() if k != "event"})
            for cb in callbacks or ():
                cb(event)

        def save(st: LoopState, is_best: bool) -> None:
            save_checkpoint(run_dir, model, optimizer, st, cfg, task.stats, is_best=is_best)

        try:
            result.state = train(model, optimizer, task, cfg, state, callback=record, save=save,
                                 should_stop=should_stop)  # fmt: skip
        except TrainingDiverged as err:
            record({"event": "diverged", "step": state.step, "message": str(err)})
            raise
        finally:
            result.seconds = time.perf_counter() - start
            if cfg.plots:
                result.plots = _write_plots(run_dir, cfg, model, task, records)
    return result


def _read_records(path: Path, upto_step: int) -> list[dict[str, Any]]:
    """Earlier records of a resumed run, without those logged after its checkpoint."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if r.get("step", 0) <= upto_step and r.get("event") not in ("end", "diverged"):
            out.append(r)
    return out


def predict_split(
    model: Any, task: TaskData, split: Any, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs (the loss's view: last step or every step) and targets for a split."""
    model.eval()
    preds, targets = [], []
    for x, y, _ in iterate_batches(split, batch_size, shuffle=False, drop_last=False):
        preds.append(np.array(head(task.kind, model(x))))
        targets.append(np.array(y))
    return np.concatenate(preds), np.concatenate(targets)


def _write_plots(
    run_dir: Path, cfg: TrainConfig, model: Any, task: TaskData, records: list
) -> list[Path]:
    from .visualize import plot_metrics, plot_predictions

    paths = []
    try:
        title = run_dir.name if run_dir.name == cfg.task else f"{run_dir.name} ({cfg.task})"
        paths.append(plot_metrics(records, run_dir / "metrics.png", title, task.baseline))
        if cfg.task == "forecast":
            pred, target = predict_split(model, task, task.val)
            names = task.stats.get("target_columns")
            paths.append(plot_predictions(denormalize_targets(target, task.stats),
                                          denormalize_targets(pred, task.stats),
                                          run_dir / "predictions.png", names,
                                          title="validation forecasts"))  # fmt: skip
    except Exception as err:  # a plot must never cost the run its results
        logger.warning("could not write plots into %s: %s", run_dir, err)
    return paths
