"""A training run end to end: run folder, data, model, optimiser, checkpoints, metrics log and
plots, around :func:`mlx_tcn.train.loop.train`. The CLI adds only the terminal (progress bar,
summary table).

(Over 300 lines: a run's folder, its resume rules and its crash-safe metrics log share
one order of writes, which reads best in one place.)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx

from ._io import read_utf8
from ._moved import forwarder
from .budget import apply_auto
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_optimizer_state,
    restore_random_state,
    rewind_to,
    save_checkpoint,
    write_json_atomic,
)
from .config import TrainConfig, resolve_config
from .distributed import World
from .ensemble import FINISHED, member_seed, train_members, with_folds
from .loop import (
    LoopState,
    TrainingDiverged,
    make_optimizer,
    steps_per_epoch,
    total_steps,
    train,
)
from .model import build_model, parameter_count
from .predict import predict_split, split_scores
from .runlock import hold_run
from .tasks import TaskData, build_task

__all__ = [
    "RESUMABLE_KEYS",
    "RunResult",
    "claim_run_dir",
    "resume_config",
    "run_training",
]

logger = logging.getLogger(__name__)

#: Fields that may change when a run is resumed; every other field must match the checkpoint.
RESUMABLE_KEYS = frozenset({
    "epochs", "max_steps", "eval_every", "eval_batches", "log_every", "checkpoint_every",
    "keep_checkpoints", "patience", "plots", "compile", "runs_dir", "name", "restore_best",
    "auto",
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
    baselines: dict[str, float] = field(default_factory=dict)  # users' data, by name
    restored_step: int | None = None  # the best checkpoint's step, when its weights were loaded
    ensemble: dict[str, Any] | None = None  # classify with folds > 1: ensemble.json's record
    class_counts: dict[str, int] = field(default_factory=dict)  # classify: training sequences
    data_mse: dict[str, float] = field(default_factory=dict)  # forecast: model and baselines
    horizon: dict[str, Any] = field(default_factory=dict)  # forecast: scores by step (horizon.py)
    anchor: str | None = None  # forecast: the baseline an untrained model is (TaskData.anchor)
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
    checked = resolve_config(wanted).to_dict()  # unknown keys and bad values fail here
    wanted = {k: checked[k] for k in wanted}  # as typed there: lr=1 is 1.0, a column 0 is "0"
    changed = {
        k: v for k, v in wanted.items() if k in saved and saved[k] != v and k not in RESUMABLE_KEYS
    }
    if changed:
        diff = ", ".join(f"{k}={saved[k]!r} (asked {v!r})" for k, v in sorted(changed.items()))
        raise CheckpointError(f"cannot resume {ckpt.path}: it was trained with {diff}")
    saved.update({k: v for k, v in wanted.items() if k in RESUMABLE_KEYS})
    return resolve_config({**saved, "preset": "none"})


def claim_run_dir(base: Path, config: dict[str, Any]) -> Path:
    """Create the folder of a new run: ``base``, or ``base-2``, ``base-3``, ... when taken.

    Safe against concurrent runs with the same name: a folder is only ours once we have
    created its ``train_config.json`` exclusively (``open(..., "x")``), so two processes
    never share a folder. An existing empty folder is claimed the same way; an existing run
    is never written into.

    Returns:
        The claimed folder, holding ``train_config.json`` with ``config``.
    """
    base.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config, indent=2, sort_keys=True)
    n = 1
    while True:
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        if _claim(path, text):
            if path != base:
                logger.info("run folder %s exists; writing to %s", base, path)
            return path
        n += 1


def _claim(path: Path, config_text: str) -> bool:
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir() or any(path.iterdir()):
            return False
    try:
        with (path / "train_config.json").open("x") as f:
            f.write(config_text)
    except FileExistsError:  # another run claimed it between our mkdir and here
        return False
    return True


#: Settings each machine of a data-parallel run may set its own way (where its files are).
_PER_MACHINE = frozenset({"data_path", "runs_dir", "name", "plots"})


def run_training(
    cfg: TrainConfig,
    *,
    resume: Checkpoint | None = None,
    callbacks: list[Callable[[dict[str, Any]], None]] | None = None,
    should_stop: Callable[[], bool] | None = None,
    world: World | None = None,
) -> RunResult:
    """Train ``cfg`` (or continue ``resume``), writing everything into the run folder.

    The run folder receives ``train_config.json``, ``metrics.jsonl``, ``checkpoints/`` and,
    with ``cfg.plots``, ``metrics.png`` (and ``predictions.png``, and ``horizon.png`` for
    several steps ahead, for forecasting).

    With a ``world`` of several processes (:func:`mlx_tcn.train.distributed.connect`) every
    rank trains on its part of each batch and only rank 0 writes and calls ``callbacks``.
    """
    _check_run_arguments(cfg, resume, callbacks, should_stop)
    start = time.perf_counter()
    world = world or World()
    # Everything that can fail on bad data or a damaged checkpoint happens before the first
    # write: a failing command leaves the disk as it was.
    mx.random.seed(member_seed(cfg))
    task = build_task(cfg, stats=resume.stats if resume else None)
    world.check(cfg.batch_size, len(task.train), drop_last=cfg.shuffle)
    if resume:
        resume.check_fits(cfg, task.num_inputs, task.num_outputs)
        model, state = resume.model, resume.loop
    else:
        cfg, task = with_folds(cfg, task, world.size)
        if cfg.folds > 1 and world.size > 1:
            raise ValueError(f"folds={cfg.folds} trains its models one after another in one "
                             "process; use folds=1 in a data-parallel run")  # fmt: skip
        anchored = task.anchor is not None
        cfg = apply_auto(cfg, len(task.train), _sample_length(task), len(task.val), anchored)
        model = build_model(cfg, task.num_inputs, task.num_outputs, zero_output=anchored)
        state = LoopState()
    per_epoch = steps_per_epoch(cfg, len(task.train))
    optimizer = make_optimizer(cfg, total_steps(cfg, len(task.train)), per_epoch)
    optimizer.init(model.trainable_parameters())
    if resume:
        load_optimizer_state(resume.path, optimizer)
        if resume.random_key is not None:
            restore_random_state(resume.random_key)
    # Every rank, the same run: the settings that shape training (a rank's own paths aside)
    world.start({**{k: v for k, v in cfg.to_dict().items() if k not in _PER_MACHINE},
                 "data": [len(task.train), len(task.val), task.num_inputs, task.num_outputs],
                 "step": state.step}, model)  # fmt: skip
    world.split_random_state()
    if not world.is_main:
        return _follow(model, optimizer, task, cfg, state, world, should_stop, start)
    run_dir = resume.path.parent.parent if resume else claim_run_dir(cfg.run_dir, cfg.to_dict())
    with hold_run(run_dir):  # one writer per run folder (runlock), to the end of the run
        return _write_run(run_dir, cfg, resume, task, model, optimizer, state, world,
                          callbacks, should_stop, start)  # fmt: skip


def _check_run_arguments(
    cfg: object, resume: object, callbacks: object, should_stop: object
) -> None:
    """Refuse arguments of the wrong kind before anything is read or written."""
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig (resolve_config), got {type(cfg).__name__}")
    if resume is not None and not isinstance(resume, Checkpoint):
        raise TypeError(
            f"resume must be a Checkpoint (load_checkpoint(run)) or None, got {resume!r}"
        )
    if callbacks is not None and (
        not isinstance(callbacks, (list, tuple)) or not all(callable(cb) for cb in callbacks)
    ):
        raise TypeError(f"callbacks must be a list of callables or None, got {callbacks!r}")
    if should_stop is not None and not callable(should_stop):
        raise TypeError(f"should_stop must be a callable returning a bool, got {should_stop!r}")


def _write_run(
    run_dir: Path,
    cfg: TrainConfig,
    resume: Checkpoint | None,
    task: TaskData,
    model: Any,
    optimizer: Any,
    state: LoopState,
    world: World,
    callbacks: list[Callable[[dict[str, Any]], None]] | None,
    should_stop: Callable[[], bool] | None,
    start: float,
) -> RunResult:
    """The writing part of :func:`run_training` (rank 0), holding the run folder's lock."""
    if resume:
        records = _read_records(run_dir / "metrics.jsonl", resume, _finished_member(resume))
        write_json_atomic(run_dir / "train_config.json", cfg.to_dict())
        moved, aside = rewind_to(resume.path, state.best_step)
        if moved:
            logger.warning("resuming from %s: moved the later checkpoints %s to %s",
                           resume.path.name, ", ".join(moved), aside)  # fmt: skip
    else:
        records = []

    metrics_path = run_dir / "metrics.jsonl"
    _write_records(metrics_path, records)
    result = RunResult(run_dir, cfg, state, 0.0, baseline=task.baseline, baselines=task.baselines,
                       anchor=task.anchor)  # fmt: skip
    if "class_counts" in task.stats:
        result.class_counts = dict(zip(task.stats["classes"], task.stats["class_counts"],
                                       strict=True))  # fmt: skip
    result.num_params = parameter_count(model)
    result.receptive_field = model.receptive_field

    with metrics_path.open("a") as log:

        def record(event: dict[str, Any]) -> None:
            if event["event"] != "step":
                log.write(json.dumps(event) + "\n")
                log.flush()
                records.append(event)
            result.last.update({k: v for k, v in event.items() if k != "event"})
            for cb in callbacks or ():
                cb(event)

        def save(st: LoopState, is_best: bool) -> None:
            save_checkpoint(run_dir, model, optimizer, st, cfg, task.stats, is_best=is_best,
                            metrics_records=len(records))  # fmt: skip

        if task.baselines and not resume:  # a resumed run kept this line from its start
            record({"event": "baselines", **task.baselines})
        try:
            if _finished_member(resume):
                _report_last_eval(result, records)
            else:
                result.state = train(model, optimizer, task, cfg, state, callback=record,
                                     save=save, should_stop=should_stop, world=world,
                                     evaluate_first=task.anchor is not None)  # fmt: skip
            if cfg.restore_best:
                model = _restore_best(run_dir, model, result, records)
            if cfg.task == "forecast":
                scores = split_scores(model, task, task.val)
                result.data_mse, result.horizon = scores.overall("mse"), scores.to_record()
                record({"event": "horizon", **result.horizon})
        except TrainingDiverged as err:
            record({"event": "diverged", "step": state.step, "message": str(err)})
            raise
        finally:
            result.seconds = time.perf_counter() - start
            if cfg.plots:
                result.plots = _write_plots(run_dir, cfg, model, task, records)
    world.barrier()  # the other ranks wait for the last checkpoint before they exit
    if cfg.folds > 1 and cfg.fold == 0 and result.state.status != "interrupted":
        result.ensemble = train_members(run_dir, cfg, train_one=run_training,
                                        callbacks=callbacks, should_stop=should_stop)  # fmt: skip
        if result.ensemble is None:
            result.state.status = "interrupted"
        result.seconds = time.perf_counter() - start
    return result


def _finished_member(resume: Checkpoint | None) -> bool:
    """Whether a resumed run is an ensemble's model 0 that had finished (the run was stopped
    while its other models trained): it is not trained again, its log is kept whole."""
    if resume is None or resume.cfg.folds == 1:
        return False
    return resume.loop.status in FINISHED


def _report_last_eval(result: RunResult, records: list[dict[str, Any]]) -> None:
    """Put the last logged evaluation into ``result`` (a run that is not trained again)."""
    evals = [r for r in records if r.get("event") == "eval"]
    if evals:
        result.last.update({k: v for k, v in evals[-1].items() if k.startswith("val_")})


def _follow(
    model: Any,
    optimizer: Any,
    task: TaskData,
    cfg: TrainConfig,
    state: LoopState,
    world: World,
    should_stop: Callable[[], bool] | None,
    start: float,
) -> RunResult:
    """A rank other than 0: the same training, writing nothing."""
    state = train(model, optimizer, task, cfg, state, should_stop=should_stop, world=world,
                  evaluate_first=task.anchor is not None)  # fmt: skip
    world.barrier()
    return RunResult(cfg.run_dir, cfg, state, time.perf_counter() - start)


def _sample_length(task: TaskData) -> int:
    """Steps per training sample (the window, or the sequences' length)."""
    return task.train.x.shape[1] if not task.train.ragged else max(len(s) for s in task.train.x)


def _restore_best(run_dir: Path, model: Any, result: RunResult, records: list[dict]) -> Any:
    """The best checkpoint's model when it is not the last one's (``result`` then reports
    that checkpoint's validation numbers); ``model`` itself otherwise."""
    state = result.state
    if state.best_step is None or state.best_step == state.step:
        return model
    best = load_checkpoint(run_dir, "best")
    result.restored_step = best.loop.step
    for r in records:
        if r.get("event") == "eval" and r.get("step") == best.loop.step:
            result.last.update({k: v for k, v in r.items() if k.startswith("val_")})
    return best.model


def _read_records(path: Path, resume: Checkpoint, whole: bool = False) -> list[dict[str, Any]]:
    """The records of a resumed run that its checkpoint accounts for (``whole``: all).

    Later ones (an evaluation logged just before a kill, the ``end`` record) are dropped: the
    resumed run logs them again, so none appears twice. Checkpoints written before the count
    was saved fall back to the records up to the checkpoint's step.
    """
    if not path.exists():
        return []
    out = []
    for line in read_utf8(path, "metrics log").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(r, dict):
            out.append(r)
    if whole:
        return out
    if resume.metrics_records is not None:
        return out[: resume.metrics_records]
    return [r for r in out if r.get("step", 0) <= resume.loop.step
            and r.get("event") not in ("end", "diverged")]  # fmt: skip


def _write_records(path: Path, records: list[dict[str, Any]]) -> None:
    """Start the metrics log with ``records``, replacing the file atomically."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, path)


def _write_plots(
    run_dir: Path, cfg: TrainConfig, model: Any, task: TaskData, records: list
) -> list[Path]:
    from .visualize import plot_metrics

    paths = []
    try:
        title = run_dir.name if run_dir.name == cfg.task else f"{run_dir.name} ({cfg.task})"
        paths.append(plot_metrics(records, run_dir / "metrics.png", title, task.baseline))
        if cfg.task == "forecast":
            paths += _forecast_plots(run_dir, model, task)
    except Exception as err:  # a plot must never cost the run its results
        logger.warning("could not write plots into %s: %s", run_dir, err)
    return paths


def _forecast_plots(run_dir: Path, model: Any, task: TaskData) -> list[Path]:
    """``predictions.png`` (the first and last steps ahead against the targets) and, for a
    multi-step horizon, ``horizon.png`` (the error at each step, model and baselines)."""
    from .horizon import forecast_steps
    from .visualize import plot_forecast_steps, plot_step_scores

    pred, target = predict_split(model, task, task.val)
    steps = forecast_steps(task.stats)
    paths = [plot_forecast_steps(target, pred, run_dir / "predictions.png",
                                 task.stats["target_columns"], steps, task.val_forecasts,
                                 ends=task.val.rows, title="validation forecasts")]  # fmt: skip
    if len(steps) > 1:
        scores = split_scores(model, task, task.val)
        paths.append(plot_step_scores(scores, run_dir / "horizon.png", "validation MSE by step"))
    return paths


# Names that lived here before train/ took one role per module (issue 11).
__getattr__ = forwarder(
    __name__,
    {
        "predict_split": "predict",
    },
)
