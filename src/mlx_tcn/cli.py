"""The ``mlx-tcn`` command line: ``train``, ``evaluate``, ``predict``, ``summary``, ``info`` and
``convert``.

This module only parses arguments and owns the terminal (progress bar, tables, one-line
errors); the work happens in :mod:`mlx_tcn.train`, :mod:`mlx_tcn.interop` and
:mod:`mlx_tcn._backend`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

logger = logging.getLogger("mlx_tcn.cli")

BUILTIN_SHAPES = {  # (inputs, outputs) of the built-in tasks, for `summary` without data
    "adding": (2, 1),
    "copy_memory": (1, 10),
    "mnist": (1, 10),
    "pmnist": (1, 10),
    "jsb": (88, 88),
    "nottingham": (88, 88),
}


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
            group.add_argument(flag, nargs="+", metavar="COL", **kw)
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
    p.add_argument("--split", choices=("val", "test", "train"), default="val")
    p.add_argument("--data-path", help="data file/folder (default: the one used in training)")
    p.add_argument(
        "--which", choices=("best", "latest"), default="best", help="checkpoint of a run"
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")

    p = sub.add_parser("predict", help="predict with a checkpoint and write a CSV (and a plot)")
    p.add_argument("checkpoint", help="run folder or checkpoint folder")
    p.add_argument("--input", help="CSV/.npy/.npz to predict (default: the validation split)")
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

    sub.add_parser(
        "convert",
        help="convert pytorch-tcn checkpoints (see: mlx-tcn convert --help)",
        add_help=False,
    )
    return parser


def _config_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    from .train.config import config_fields, load_config_file

    file_values = load_config_file(args.config) if getattr(args, "config", None) else {}
    cli_values = {f.name: getattr(args, f.name) for f in config_fields() if hasattr(args, f.name)}
    return file_values, cli_values


# --------------------------------------------------------------------------- terminal output


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(rows: Sequence[tuple[str, Any]], title: str = "") -> str:
    rows = [(k, _fmt(v)) for k, v in rows if v is not None]
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 2 + max(len(v) for _, v in rows))
    out = [title, line] if title else [line]
    out += [f"{k.ljust(width)}  {v}" for k, v in rows]
    out.append(line)
    return "\n".join(out)


class _Progress:
    """tqdm progress bar fed by the loop's metric dicts."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        kind = event["event"]
        if kind == "step":
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=event["total_steps"], initial=event["step"] - 1, unit="step",
                                dynamic_ncols=True, file=sys.stderr)  # fmt: skip
            self.bar.update(event["step"] - self.bar.n)
        elif kind == "train" and self.bar is not None:
            self.bar.set_postfix(
                loss=f"{event['loss']:.4g}", samples_s=f"{event['samples_per_s']:.0f}"
            )
        elif kind == "eval":
            msg = f"step {event['step']}: val_loss {event['val_loss']:.4g}"
            if "val_accuracy" in event:
                msg += f", val_accuracy {event['val_accuracy']:.4f}"
            if event.get("best"):
                msg += " (best)"
            self._write(msg)
        elif kind == "end":
            self.close()

    def _write(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _once(message: str) -> Any:
    """A callback that prints ``message`` at the run's first event, i.e. once the run has
    really started (a resume that fails while loading prints only its error)."""
    done: list[bool] = []

    def callback(event: dict[str, Any]) -> None:
        if not done:
            done.append(True)
            print(message, file=sys.stderr)

    return callback


def _task_label(cfg: Any) -> str:
    if cfg.task in ("adding", "forecast", "classify"):
        return f"{cfg.task} (T={cfg.seq_len})" if cfg.task != "classify" else cfg.task
    if cfg.task == "copy_memory":
        return f"copy_memory (T={cfg.seq_len}, memory {cfg.memory_length})"
    return cfg.task


# --------------------------------------------------------------------------- commands


def _cmd_train(args: argparse.Namespace) -> int:
    from .train.checkpoint import load_checkpoint
    from .train.config import resolve_config
    from .train.runner import resume_config, run_training

    file_values, cli_values = _config_from_args(args)
    resume = None
    callbacks: list[Any] = []
    if args.resume:
        resume = load_checkpoint(args.resume, "latest")
        cfg = resume_config(resume, file_values, cli_values)
        callbacks.append(_once(f"resuming {resume.path} at step {resume.loop.step}"))
    else:
        cfg = resolve_config(file_values, cli_values)

    stop = {"requested": False}

    def on_sigint(signum: int, frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print(
            "\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, on_sigint)
    progress = _Progress(args.quiet)
    try:
        result = run_training(cfg, resume=resume, callbacks=[*callbacks, progress],
                              should_stop=lambda: stop["requested"])  # fmt: skip
    finally:
        progress.close()
        signal.signal(signal.SIGINT, previous)
    print(_summary_table(result))
    if result.state.status == "interrupted":
        print(
            f"interrupted; continue with: mlx-tcn train --resume {result.run_dir}", file=sys.stderr
        )
        return 130
    return 0


def _summary_table(result: Any) -> str:
    cfg, state, last = result.cfg, result.state, result.last
    samples = state.step * cfg.batch_size
    rows = [
        ("run", str(result.run_dir)),
        ("task", _task_label(cfg)),
        ("status", state.status),
        ("steps", f"{state.step:,} ({state.epoch} epoch{'s' if state.epoch != 1 else ''} done)"),
        ("time", f"{result.seconds:.1f} s ({samples / max(result.seconds, 1e-9):,.0f} samples/s)"),
        ("parameters", result.num_params),
        ("receptive field", result.receptive_field),
        ("train loss", last.get("loss")),
        ("val loss", last.get("val_loss")),
        ("val accuracy", last.get("val_accuracy")),
        (
            "best val loss",
            None
            if state.best_metric is None
            else f"{state.best_metric:.4g} (step {state.best_step})",
        ),
        (
            "baseline loss",
            None if result.baseline is None else f"{result.baseline:.4g} (trivial predictor)",
        ),
        ("checkpoints", str(result.run_dir / "checkpoints")),
        ("plots", ", ".join(str(p) for p in result.plots) or None),
    ]
    return _table(rows, "summary")


def _load_for_inference(path: str, which: str, data_path: str | None) -> tuple[Any, Any]:
    from .train.checkpoint import load_checkpoint
    from .train.config import resolve_config
    from .train.tasks import build_task

    ckpt = load_checkpoint(path, which)
    cfg = ckpt.cfg
    if data_path:
        cfg = resolve_config({**cfg.to_dict(), "data_path": data_path, "preset": "none"})
    task = build_task(cfg, stats=ckpt.stats)
    if task.num_inputs != ckpt.model.num_inputs:
        raise CLIError(
            f"data has {task.num_inputs} input channels, the model in {ckpt.path} expects {ckpt.model.num_inputs}"
        )
    return ckpt, task


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .train.data import iterate_batches
    from .train.tasks import evaluate_split

    ckpt, task = _load_for_inference(args.checkpoint, args.which, args.data_path)
    split = {"val": task.val, "train": task.train, "test": task.test}[args.split]
    if split is None:
        raise CLIError(f"task {ckpt.cfg.task!r} has no {args.split} split")
    metrics = evaluate_split(
        ckpt.model,
        task.kind,
        iterate_batches(split, args.batch_size, shuffle=False, drop_last=False),
    )
    if args.json:
        print(json.dumps({"checkpoint": str(ckpt.path), "split": args.split, **metrics}))
    else:
        rows = [
            ("checkpoint", str(ckpt.path)),
            ("task", _task_label(ckpt.cfg)),
            ("split", f"{args.split} ({len(split):,} samples)"),
        ]
        rows += [(k, v) for k, v in metrics.items()]
        if task.baseline is not None:
            rows.append(("baseline loss", task.baseline))
        print(_table(rows, "evaluation"))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import mlx.core as mx
    import numpy as np

    from .train.runner import predict_split
    from .train.tasks import denormalize_targets, prepare_user_inputs

    ckpt, task = _load_for_inference(args.checkpoint, args.which, None)
    model, stats, kind = ckpt.model, ckpt.stats, task.kind
    model.eval()
    targets = None
    if args.input:
        if ckpt.cfg.task not in ("forecast", "classify"):
            raise CLIError(
                f"--input works for forecast/classify runs; {ckpt.cfg.task!r} predicts its validation split"
            )
        x, extras = prepare_user_inputs(args.input, stats, kind)
        rf = model.receptive_field
        if kind == "class_last" and x.shape[1] < min(rf, stats["seq_len"]):
            raise CLIError(
                f"sequences in {args.input} have {x.shape[1]} steps, fewer than the model needs ({min(rf, stats['seq_len'])})"
            )
        pred = np.concatenate(
            [
                np.array(model(mx.array(x[i : i + args.batch_size]))[:, -1, :])
                for i in range(0, len(x), args.batch_size)
            ]
        )
        if "targets" in extras:
            rows = extras["rows"]
            t = np.full((len(rows), extras["targets"].shape[1]), np.nan, dtype=np.float32)
            ok = rows < len(extras["targets"])
            t[ok] = extras["targets"][rows[ok]]
            targets = t
    else:
        pred, targets = predict_split(model, task, task.val, args.batch_size)
        if kind == "regression_last" and ckpt.cfg.task == "forecast":
            targets = denormalize_targets(targets, stats)
    if kind == "regression_last" and ckpt.cfg.task == "forecast":
        pred = denormalize_targets(pred, stats)
    out = Path(args.output) if args.output else ckpt.path.parent.parent / "predictions.csv"
    _write_predictions(out, kind, pred, targets, stats, ckpt.cfg)
    print(f"wrote {len(pred):,} predictions of {ckpt.path} to {out}")
    if args.plot:
        if kind != "regression_last":
            raise CLIError("--plot draws forecasts; this run is not a regression/forecasting run")
        from .train.visualize import plot_predictions

        t = targets if targets is not None else np.full_like(pred, np.nan)
        plot_predictions(t, pred, args.plot, stats.get("target_columns"))
        print(f"wrote {args.plot}")
    return 0


def _write_predictions(
    out: Path, kind: str, pred: Any, targets: Any, stats: dict, cfg: Any
) -> None:
    import csv

    import numpy as np

    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        if kind == "regression_last":
            names = stats.get("target_columns") or [f"y{i}" for i in range(pred.shape[1])]
            header = [f"pred_{n}" for n in names] + (
                [f"target_{n}" for n in names] if targets is not None else []
            )
            w.writerow(header)
            for i in range(len(pred)):
                w.writerow(
                    [f"{v:.6g}" for v in pred[i]]
                    + ([f"{v:.6g}" for v in targets[i]] if targets is not None else [])
                )
        elif kind == "class_last":
            classes = stats.get("classes") or [str(i) for i in range(pred.shape[-1])]
            probs = np.exp(pred - pred.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            w.writerow(["prediction", "probability"] + (["target"] if targets is not None else []))
            for i in range(len(pred)):
                k = int(pred[i].argmax())
                row = [classes[k], f"{probs[i, k]:.4f}"]
                if targets is not None:
                    row.append(classes[int(targets[i])])
                w.writerow(row)
        else:  # per-step outputs: one row per sequence and step
            w.writerow(["sequence", "step", "prediction"])
            for i in range(len(pred)):
                labels = (
                    pred[i].argmax(axis=-1)
                    if kind == "class_all"
                    else (pred[i] > 0).astype(int).sum(axis=-1)
                )
                for t, v in enumerate(labels):
                    w.writerow([i, t, int(v)])


def _cmd_summary(args: argparse.Namespace) -> int:
    from mlx.utils import tree_flatten

    if args.checkpoint:
        from .train.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.checkpoint, "latest")
        model, title = ckpt.model, str(ckpt.path)
    else:
        from .train.config import resolve_config
        from .train.model import build_model

        cfg = resolve_config(*_config_from_args(args))
        if cfg.task in BUILTIN_SHAPES:
            n_in, n_out = BUILTIN_SHAPES[cfg.task]
        else:
            from .train.tasks import build_task

            task = build_task(cfg)
            n_in, n_out = task.num_inputs, task.num_outputs
        model, title = build_model(cfg, n_in, n_out), f"{_task_label(cfg)} ({cfg.preset} preset)"
    groups: dict[str, int] = {}
    for name, value in tree_flatten(model.parameters()):
        parts = name.split(".")
        key = (
            ".".join(parts[:2])
            if parts[0] in ("network", "downsample_skip_connection")
            else parts[0]
        )
        groups[key] = groups.get(key, 0) + value.size
    header = f"{'layer':<26}{'in':>6}{'out':>6}{'kernel':>8}{'dilation':>10}{'params':>12}"
    lines = [f"model: {title}", header, "-" * len(header)]
    n_in = model.num_inputs
    kernels = (
        model.kernel_sizes
        if isinstance(model.kernel_sizes, list)
        else [model.kernel_sizes] * len(model.network)
    )
    for i in range(len(model.network)):
        n_out = model.num_channels[i]
        lines.append(
            f"{f'network.{i} (TemporalBlock)':<26}{n_in:>6}{n_out:>6}{kernels[i]:>8}{model.dilations[i]:>10}{groups.pop(f'network.{i}', 0):>12,}"
        )
        n_in = n_out
    for key, count in groups.items():
        lines.append(f"{key:<26}{'':>6}{'':>6}{'':>8}{'':>10}{count:>12,}")
    lines.append("-" * len(header))
    total = sum(v.size for _, v in tree_flatten(model.parameters()))
    trainable = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    rf = model.receptive_field
    lines.append(f"parameters: {total:,} ({trainable:,} trainable)")
    lines.append(
        f"receptive field: {'unbounded (SE blocks pool over all past steps)' if rf == math.inf else f'{rf:,} steps'}"
    )
    print("\n".join(lines))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    try:
        from ._backend import format_info, info
    except ImportError as err:
        raise CLIError(f"backend report unavailable in this install ({err})") from None
    print(format_info(info(benchmark=args.benchmark)))
    return 0


def _cmd_convert(argv: list[str]) -> int:
    try:
        from .interop import main_convert
    except ImportError as err:
        raise CLIError(f"convert is unavailable in this install ({err})") from None
    return int(main_convert(argv))


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mlx-tcn`` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = bool(argv) and argv[0] in ("-v", "--verbose")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="mlx-tcn: %(message)s"
    )
    from .train.checkpoint import CheckpointError
    from .train.loop import TrainingDiverged

    try:
        rest = argv[1:] if verbose else argv
        if rest and rest[0] == "convert":
            return _cmd_convert(rest[1:])
        args = _parser().parse_args(argv)
        if args.command is None:
            _parser().print_help()
            return 2
        handler = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict,
                   "summary": _cmd_summary, "info": _cmd_info}[args.command]  # fmt: skip
        return handler(args)
    except TrainingDiverged as err:
        print(f"mlx-tcn: training diverged: {_one_line(err)}", file=sys.stderr)
        return 3
    except (CLIError, CheckpointError, ValueError, TypeError, FileNotFoundError,
            ImportError) as err:  # fmt: skip
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
