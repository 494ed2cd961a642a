"""The ``mlx-tcn`` command line: ``train``, ``evaluate``, ``predict``, ``summary``, ``info`` and
``convert``.

(Over 300 lines: one argparse definition per subcommand, with its help text; every
subcommand body is a few lines that call the library.)

This module only parses arguments and owns the terminal (progress bar, tables, one-line
errors); the work happens in :mod:`mlx_tcn.train`, :mod:`mlx_tcn.interop` and
:mod:`mlx_tcn._backend`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


class CLIError(Exception):
    """An error reported as one line, without a traceback."""


# --------------------------------------------------------------------------- argument parsing


def _none_or(convert: Any) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null", "off") else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (``--seq-len``, ``--no-causal``, ``--grad-clip none``)."""
    from .train.config import TrainConfig, config_fields, field_comments

    hints = typing.get_type_hints(TrainConfig)
    comments = field_comments()
    group = parser.add_argument_group("config (override the config file and the task preset)")
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if args else hint
        kw: dict[str, Any] = {
            "dest": f.name,
            "default": argparse.SUPPRESS,
            "help": comments.get(f.name),
        }
        if base is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            continue
        if typing.get_origin(base) is list or isinstance(base, types.GenericAlias):
            metavar = "COL" if f.name.endswith("_columns") else "NAME"
            group.add_argument(flag, nargs="+", metavar=metavar, **kw)
            continue
        convert = {int: int, float: float, str: str}.get(base, str)
        group.add_argument(
            flag, type=_none_or(convert) if optional else convert, metavar=f.name.upper(), **kw
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlx-tcn",
        description="Temporal Convolutional Networks on MLX: train, evaluate, predict, inspect.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "train", help="train a TCN (no arguments: the adding problem, about a minute)"
    )
    p.add_argument("--config", metavar="FILE", help="TOML, JSON or YAML file with config fields")
    p.add_argument("--resume", metavar="RUN", help="continue a run from its latest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_flags(p)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on a data split")
    p.add_argument("checkpoint", help="run folder or checkpoint folder")
    p.add_argument(
        "--split",
        choices=("val", "test", "train"),
        help="default: val; test (all of the file) when a classification run gets --data-path",
    )
    p.add_argument("--data-path", help="data file/folder (default: the one used in training)")
    p.add_argument(
        "--which", choices=("best", "latest"), default="best", help="checkpoint of a run"
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--plot", metavar="PNG", help="classification: write the confusion matrix")

    p = sub.add_parser("predict", help="predict with a checkpoint and write a CSV (and a plot)")
    p.add_argument("checkpoint", help="run folder or checkpoint folder")
    p.add_argument(
        "--input",
        help="CSV/.npy/.npz (classify: also .ts) to predict (default: the validation split)",
    )
    p.add_argument("--output", help="CSV to write (default: <run>/predictions.csv)")
    p.add_argument("--plot", help="PNG of forecasts against targets (forecasting runs)")
    p.add_argument("--which", choices=("best", "latest"), default="best")
    p.add_argument("--batch-size", type=int, default=256)

    p = sub.add_parser("summary", help="layer table, parameter count and receptive field")
    p.add_argument("checkpoint", nargs="?", help="run or checkpoint folder (else: from the config)")
    p.add_argument("--config", metavar="FILE", help="config file (when no checkpoint is given)")
    _add_config_flags(p)

    p = sub.add_parser("info", help="MLX version, device, the BLAS in use and its GFLOP/s")
    p.add_argument(
        "--no-benchmark",
        dest="benchmark",
        action="store_false",
        help="skip the quick matmul timing (GFLOP/s)",
    )

    from .interop.convert import DESCRIPTION, add_convert_arguments

    p = sub.add_parser("convert", help="convert pytorch-tcn checkpoints", description=DESCRIPTION)
    add_convert_arguments(p)  # the one definition of convert's arguments
    return parser


def _config_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    from .train.config import config_fields, load_config_file

    file_values = load_config_file(args.config) if getattr(args, "config", None) else {}
    cli_values = {f.name: getattr(args, f.name) for f in config_fields() if hasattr(args, f.name)}
    return file_values, cli_values


# --------------------------------------------------------------------------- commands


def _cmd_train(args: argparse.Namespace) -> int:
    from ._terminal import Progress, once, stop_on_ctrl_c
    from .train.checkpoint import find_checkpoint, load_checkpoint
    from .train.config import resolve_config
    from .train.distributed import connect
    from .train.runlock import hold_run
    from .train.runner import resume_config, run_training
    from .train.summary import run_table, steps_table

    # Ctrl-C is caught from before the ranks connect: in a data-parallel run a terminal's
    # Ctrl-C reaches every rank at once, and a rank that had not yet installed the handler
    # would die of it while the others wait for it in their next collective (for good).
    with stop_on_ctrl_c() as should_stop:
        # One process unless mlx.launch (or MLX_RANK/MLX_HOSTFILE) started several.
        world = connect()
        if not world.is_main:
            logging.getLogger("mlx_tcn").setLevel(logging.ERROR)  # rank 0 reports for the run
        file_values, cli_values = _config_from_args(args)
        resume, callbacks = None, []
        with contextlib.ExitStack() as held:
            if args.resume:
                if world.is_main:  # the run's lock before its checkpoint is read (runlock)
                    held.enter_context(hold_run(find_checkpoint(args.resume).parent.parent))
                resume = load_checkpoint(args.resume, "latest")
                cfg = resume_config(resume, file_values, cli_values)
                callbacks.append(once(f"resuming {resume.path} at step {resume.loop.step}"))
            else:
                cfg = resolve_config(file_values, cli_values)
            if world.size > 1:
                callbacks.append(once(world.describe(cfg.batch_size, cfg.lr)))
            with world.lost_ranks(), Progress(args.quiet or not world.is_main) as progress:
                result = run_training(cfg, resume=resume, callbacks=[*callbacks, progress],
                                      should_stop=should_stop, world=world)  # fmt: skip
    if not world.is_main:
        return 130 if result.state.status == "interrupted" else 0
    print(run_table(result))
    if len(result.horizon.get("steps", ())) > 1:
        print(steps_table(result.horizon))
    if result.state.status == "interrupted":
        print(
            f"interrupted; continue with: mlx-tcn train --resume {result.run_dir}", file=sys.stderr
        )
        return 130
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .train.predict import class_report, evaluate_checkpoint, load_for_inference, split_scores
    from .train.summary import (
        confusion_table,
        forecast_rows,
        format_table,
        steps_table,
        task_label,
    )
    from .train.user_data import forecast_anchor

    ckpt, task = load_for_inference(args.checkpoint, args.which, args.data_path)
    split = args.split or ("test" if args.data_path and task.test is not None else "val")
    metrics, size = evaluate_checkpoint(ckpt, task, split, args.batch_size)
    report = class_report(ckpt, task, split, args.batch_size)
    data = {"val": task.val, "train": task.train, "test": task.test}[split]
    scores = None
    if ckpt.cfg.task == "forecast":
        scores = split_scores(ckpt.model, task, data, args.batch_size).to_record()
    if args.plot:
        if report is None:
            raise CLIError("--plot draws a confusion matrix; this run does not classify sequences")
        from .train.visualize import plot_confusion

        plot_confusion(report["confusion"], ckpt.stats["classes"], args.plot,
                       f"{task_label(ckpt.cfg)}, {split}: accuracy {metrics['accuracy']:.3f}")  # fmt: skip
    models = ckpt.cfg.folds if ckpt.cfg.fold == 0 else 1
    if args.json:
        extra = {} if report is None else {"confusion": report["confusion"].tolist(),
                                           "majority_accuracy": report["majority_accuracy"]}  # fmt: skip
        if scores is not None:
            extra["horizon"] = scores
        print(json.dumps({"checkpoint": str(ckpt.path), "models": models, "split": split,
                          "samples": size, **metrics, **extra}))  # fmt: skip
        return 0
    rows = [("checkpoint", str(ckpt.path)), ("task", task_label(ckpt.cfg)),
            ("models", _models_row(models, split)),
            ("split", _split_text(split, size, ckpt.cfg, args.data_path)),
            *metrics.items()]  # fmt: skip
    if scores is not None:
        if ckpt.stats.get("season") and "seasonal_naive" not in scores["overall_loss"]:
            rows.append(("seasonal naive", "not scored: the first windows lack a season of "
                                           "history before their targets"))  # fmt: skip
        untrained = forecast_anchor(ckpt.stats) if ckpt.loop.step == 0 else None
        rows += [*forecast_rows(scores, metrics["loss"], untrained),
                 ("MSE, data units", ", ".join(f"{k.replace('_', ' ')} {v:.4g}"
                                               for k, v in scores["overall_mse"].items()))]  # fmt: skip
    elif report is None:
        rows.append(("baseline loss", task.baseline))
    else:
        verdict = "beaten" if metrics["accuracy"] > report["majority_accuracy"] else "NOT beaten"
        rows.append(("majority class", f"accuracy {report['majority_accuracy']:.4g}: {verdict}"))
    print(format_table(rows, "evaluation"))
    if report is not None:
        # Built-in tasks (MNIST) name their classes by index; users' data saves its names.
        classes = ckpt.stats.get("classes") or range(len(report["confusion"]))
        print(confusion_table(report["confusion"], classes))
    if scores is not None and len(scores["steps"]) > 1:
        print(steps_table(scores, f"{split} MSE by step"))
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _split_text(split: str, size: int, cfg: Any, data_path: str | None) -> str:
    """What ``evaluate`` scored: for a forecast's test split, every window of the file."""
    path = data_path or cfg.data_path
    if cfg.task == "forecast" and split == "test":
        return (f"test: all {size:,} windows of {path} (every window whose "
                f"{cfg.horizon} step{'s' if cfg.horizon > 1 else ''} ahead lie in the file)")  # fmt: skip
    if cfg.task == "forecast" and split == "val":
        return (
            f"val ({size:,} windows: the last val_fraction={cfg.val_fraction} of {cfg.data_path})"
        )
    return f"{split} ({size:,} samples)"


def _models_row(models: int, split: str) -> str | None:
    """What ``evaluate`` scored: one model, or an ensemble (whose other members trained on
    this run's validation part, so only another file is a fair test of it)."""
    if models == 1:
        return None
    text = f"ensemble of {models} (their class probabilities averaged)"
    if split != "test":
        text += "; members trained on this split (see ensemble.json: cv_accuracy)"
    return text


def _cmd_predict(args: argparse.Namespace) -> int:
    from .train.predict import (
        load_for_inference,
        load_for_input,
        plot_forecasts,
        predict_input,
        predict_table,
        write_predictions,
    )

    if args.input:  # the checkpoint and the new file: the training data is not read
        ckpt, kind = load_for_input(args.checkpoint, args.which)
        task = None
    else:
        ckpt, task = load_for_inference(args.checkpoint, args.which)
        kind = task.kind
    if args.plot and kind != "regression_last":  # before anything is written
        raise CLIError("--plot draws forecasts; this run is not a regression/forecasting run")
    if task is None:
        pred, targets, ends = predict_input(ckpt, kind, args.input, args.batch_size)
    else:
        pred, targets, ends = predict_table(ckpt, task, None, args.batch_size)
    out = Path(args.output) if args.output else ckpt.path.parent.parent / "predictions.csv"
    write_predictions(out, kind, pred, targets, ckpt.stats, ends)
    if ends is None:
        print(f"wrote {len(pred):,} predictions of {ckpt.path} to {out}")
    else:
        h = ckpt.cfg.horizon
        print(f"wrote the forecasts of {len(pred):,} windows of {ckpt.path} to {out}, "
              f"{'steps 1-' + str(h) if h > 1 else 'one step'} ahead each; the last window ends "
              f"at row {int(ends[-1])}")  # fmt: skip
    if args.plot:
        plot_forecasts(args.plot, kind, pred, targets, ckpt.stats, ends)
        print(f"wrote {args.plot}")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from .train.summary import model_table, task_label

    if args.checkpoint:
        from .train.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.checkpoint, "latest")
        model, title = ckpt.model, str(ckpt.path)
    else:
        from .train.budget import apply_auto
        from .train.config import resolve_config
        from .train.model import build_model
        from .train.tasks import TASK_SHAPES, build_task, task_shape

        values = _config_from_args(args)
        task = {**values[0], **values[1]}.get("task", "adding")
        # a built-in task's model has a fixed shape: its data is not read, so not needed
        cfg = resolve_config(*values, need_data=task not in TASK_SHAPES)
        if cfg.auto and not cfg.data_path and task in TASK_SHAPES:
            raise CLIError(f"auto settings ({', '.join(cfg.auto)}) come from the data: give "
                           "--data-path, or --auto none")  # fmt: skip
        if cfg.auto:  # the depth a run would choose from the data
            task = build_task(cfg)
            cfg = apply_auto(cfg, len(task.train), task.train.x.shape[1], len(task.val))
        model = build_model(cfg, *task_shape(cfg))
        title = f"{task_label(cfg)} ({cfg.preset} preset)"
    print(model_table(model, title))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    try:
        from ._backend import format_info, info
    except ImportError as err:
        raise CLIError(f"backend report unavailable in this install ({err})") from None
    print(format_info(info(benchmark=args.benchmark)))
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from . import interop

    return int(interop.run_convert(args))


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mlx-tcn`` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = bool(argv) and argv[0] in ("-v", "--verbose")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="mlx-tcn: %(message)s"
    )
    from .train.checkpoint import CheckpointError
    from .train.distributed import DistributedError
    from .train.loop import TrainingDiverged

    try:
        args = _parser().parse_args(argv)
        if args.command is None:
            _parser().print_help()
            return 2
        handler = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict,
                   "summary": _cmd_summary, "info": _cmd_info,
                   "convert": _cmd_convert}[args.command]  # fmt: skip
        return handler(args)
    except TrainingDiverged as err:
        print(f"mlx-tcn: training diverged: {_one_line(err)}", file=sys.stderr)
        return 3
    except (CLIError, CheckpointError, DistributedError, ValueError, TypeError,
            FileNotFoundError, ImportError) as err:  # fmt: skip
        print(f"mlx-tcn: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:
        print(
            f"mlx-tcn: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("mlx-tcn: aborted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug or an MLX error: still one line, the traceback with -v
        if verbose:
            raise
        print(
            f"mlx-tcn: error: {type(err).__name__}: {_one_line(err)} (-v shows the traceback)",
            file=sys.stderr,
        )
        return 1


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (MLX and safetensors errors span several)."""
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip())
