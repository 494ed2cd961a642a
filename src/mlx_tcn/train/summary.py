"""Plain-text tables for the terminal: a finished run, an evaluation, a model's layers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mlx.nn as nn

from .config import TrainConfig
from .model import parameter_count

__all__ = [
    "confusion_table",
    "format_table",
    "model_table",
    "forecast_rows",
    "run_table",
    "steps_row",
    "steps_table",
    "task_label",
]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(rows: Sequence[tuple[str, Any]], title: str = "") -> str:
    """Two aligned columns between rules; rows whose value is None are left out."""
    rows = [(k, _fmt(v)) for k, v in rows if v is not None]
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 2 + max(len(v) for _, v in rows))
    out = [title, line] if title else [line]
    out += [f"{k.ljust(width)}  {v}" for k, v in rows]
    out.append(line)
    return "\n".join(out)


def task_label(cfg: TrainConfig) -> str:
    """The task with the settings that define it, e.g. ``adding (T=50)``."""
    if cfg.task == "forecast" and cfg.horizon > 1:
        return f"forecast (T={cfg.seq_len}, steps 1-{cfg.horizon} ahead)"
    if cfg.task in ("adding", "forecast"):
        return f"{cfg.task} (T={cfg.seq_len})"
    if cfg.task == "copy_memory":
        return f"copy_memory (T={cfg.seq_len}, memory {cfg.memory_length})"
    return cfg.task


def run_table(result: Any) -> str:
    """The summary of a :class:`~mlx_tcn.train.runner.RunResult`."""
    cfg, state, last = result.cfg, result.state, result.last
    samples = state.step * cfg.batch_size
    best = state.best_metric
    rows = [
        ("run", str(result.run_dir)),
        ("task", task_label(cfg)),
        ("status", state.status),
        ("steps", f"{state.step:,} ({state.epoch} epoch{'s' if state.epoch != 1 else ''} done)"),
        ("time", f"{result.seconds:.1f} s ({samples / max(result.seconds, 1e-9):,.0f} samples/s)"),
        ("parameters", result.num_params),
        ("receptive field", result.receptive_field),
        ("train loss", last.get("loss")),
        ("val loss", last.get("val_loss")),
        ("val accuracy", last.get("val_accuracy")),
        (
            f"best val {cfg.select}",
            None if best is None else f"{best:.4g} (step {state.best_step})",
        ),
        ("weights", _weights(result)),
        ("anchor", _anchor(result)),
        ("ensemble", _ensemble(result.ensemble)),
        *(
            _baseline_rows(result.baselines, last, _untrained_baseline(result))
            if result.baselines
            else [
                (
                    "baseline loss",
                    None
                    if result.baseline is None
                    else f"{result.baseline:.4g} (trivial predictor)",
                )
            ]
        ),  # fmt: skip
        ("classes (training)", _balance(result.class_counts)),
        ("val MSE, data units", _data_units(result.data_mse)),
        ("by step", steps_row(getattr(result, "horizon", None))),
        ("checkpoints", str(result.run_dir / "checkpoints")),
        ("plots", ", ".join(str(p) for p in result.plots) or None),
    ]
    return format_table(rows, "summary")


def _untrained_baseline(result: Any) -> str | None:
    """The baseline that the run's final weights *are*: an anchored forecast whose best
    checkpoint was the untrained model (step 0, output zero: the anchor's forecast)."""
    anchor = getattr(result, "anchor", None)
    return anchor if anchor is not None and result.restored_step == 0 else None


def _anchor(result: Any) -> str | None:
    """What a window-relative forecast corrects (chosen on the training part)."""
    anchor = getattr(result, "anchor", None)
    if anchor is None:
        return None
    return f"{anchor.replace('_', ' ')} (the model forecasts a correction of its forecast)"


def _weights(result: Any) -> str | None:
    """Which weights the summary describes, when not the last step's."""
    if result.restored_step is None:
        return None
    untrained = _untrained_baseline(result)
    if untrained is not None:
        return (f"the untrained model's (step 0), restored at the end: exactly the "
                f"{untrained.replace('_', ' ')} forecast, as training never improved on it "
                "on validation")  # fmt: skip
    return f"the best checkpoint's (step {result.restored_step}), restored at the end"


def _baseline_rows(
    baselines: dict[str, float], last: dict[str, Any], untrained: str | None = None
) -> list[tuple[str, str]]:
    """One row per baseline: its validation loss, and plainly whether the model beat it
    (``untrained``: the baseline the model's weights are, which it ties)."""
    val = last.get("val_loss")
    rows = []
    for name, loss in baselines.items():
        if name.endswith("_accuracy"):
            continue
        text = f"loss {loss:.4g}"
        if f"{name}_accuracy" in baselines:
            text += f", accuracy {baselines[f'{name}_accuracy']:.4g}"
        if name == untrained:
            text += ": tied (the model is this baseline: training never beat it on validation)"
        elif val is not None:
            verdict = "beaten" if val < loss else "NOT beaten"
            text += f": {verdict} (model {val:.4g}, {val / loss:.2f}x)" if loss > 0 else ""
        rows.append((name.replace("_", " "), text))
    return rows


def _ensemble(record: dict[str, Any] | None) -> str | None:
    """``5 models, cross-validated accuracy 0.9 (best steps 400, 375, ...)``."""
    if not record:
        return None
    steps = ", ".join(str(m["best_step"]) for m in record["members"])
    return (f"{record['folds']} models (averaged), cross-validated accuracy "
            f"{record['cv_accuracy']:.4g} (best steps {steps})")  # fmt: skip


def _data_units(mse: dict[str, float]) -> str | None:
    """``model 0.152, persistence 0.263, ...``: the forecasts' errors in the data's units."""
    return ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in mse.items()) or None


def forecast_rows(
    record: dict[str, Any], model_loss: float, untrained: str | None = None
) -> list[tuple[str, str | None]]:
    """Rows of an evaluation of a forecast: each baseline's loss and whether the model (whose
    loss is ``model_loss``) beat it over the whole horizon, and on how many steps
    (``untrained``: the baseline an untrained anchored model is, which it ties)."""
    baselines = {k: v for k, v in record["overall_loss"].items() if k != "model"}
    rows = _baseline_rows(baselines, {"val_loss": model_loss}, untrained)
    return [*rows, ("by step", steps_row(record))]


def steps_row(record: dict[str, Any] | None) -> str | None:
    """``model better than persistence on 12/12 steps, seasonal naive on 9/12``: for a
    multi-step forecast (a :meth:`~mlx_tcn.train.horizon.StepScores.to_record`); else None."""
    if not record or len(record["steps"]) < 2:
        return None
    n = len(record["steps"])
    counts = [f"{k.replace('_', ' ')} on {v}/{n} steps" for k, v in record["steps_beaten"].items()]
    return "model better than " + ", ".join(counts) if counts else None


def steps_table(record: dict[str, Any], title: str = "validation MSE by step") -> str:
    """One row per step ahead: the model's and each baseline's MSE in the data's units, and
    the name of the best (a :meth:`~mlx_tcn.train.horizon.StepScores.to_record`)."""
    names = list(record["mse_by_step"])
    width = max(12, *(len(n) + 2 for n in names))
    head = "step".ljust(6) + "".join(n.replace("_", " ").rjust(width) for n in names)
    lines = [title, head + "  best", "-" * (len(head) + 6)]
    for i, step in enumerate(record["steps"]):
        losses = {n: record["loss_by_step"][n][i] for n in names}
        cells = "".join(_fmt(float(record["mse_by_step"][n][i])).rjust(width) for n in names)
        best = min(losses, key=losses.get).replace("_", " ")
        lines.append(f"{step:<6}{cells}  {best}")
    overall = "".join(_fmt(float(record["overall_mse"][n])).rjust(width) for n in names)
    lines.append("all".ljust(6) + overall)
    return "\n".join(lines)


def _balance(counts: dict[str, int]) -> str | None:
    """Training sequences per class, e.g. ``1: 24 (48%), 2: 26 (52%)``."""
    total = sum(counts.values())
    if not total:
        return None
    return ", ".join(f"{c}: {n} ({n / total:.0%})" for c, n in counts.items())


def confusion_table(matrix: Any, classes: Sequence[str]) -> str:
    """A confusion matrix as text: one row per true class, one column per predicted class,
    and each class's recall (the fraction of its sequences classified right)."""
    names = [str(c) for c in classes]
    corner = "true \\ predicted"
    width = 2 + max(6, *(len(n) for n in names), *(len(f"{int(v):,}") for v in matrix.ravel()))
    first = max(len(corner), *(len(n) for n in names))
    lines = ["confusion matrix", corner.ljust(first) + "".join(n.rjust(width) for n in names)
             + "recall".rjust(width)]  # fmt: skip
    for i, (name, row) in enumerate(zip(names, matrix, strict=True)):
        recall = f"{row[i] / row.sum():.3f}" if row.sum() else "-"
        cells = "".join(f"{int(v):,}".rjust(width) for v in row)
        lines.append(name.ljust(first) + cells + recall.rjust(width))
    return "\n".join(lines)


def model_table(model: nn.Module, title: str) -> str:
    """One row per block (channels, kernel, dilation, parameters), the other parameter
    groups, the totals and the receptive field."""
    from mlx.utils import tree_flatten

    groups: dict[str, int] = {}
    for name, value in tree_flatten(model.parameters()):
        parts = name.split(".")
        nested = parts[0] in ("network", "downsample_skip_connection")
        key = ".".join(parts[:2]) if nested else parts[0]
        groups[key] = groups.get(key, 0) + value.size
    header = f"{'layer':<26}{'in':>6}{'out':>6}{'kernel':>8}{'dilation':>10}{'params':>12}"
    lines = [f"model: {title}", header, "-" * len(header)]
    n_in = model.num_inputs
    for i, (n_out, k, d) in enumerate(zip(model.num_channels, model.kernel_sizes,
                                          model.dilations, strict=True)):  # fmt: skip
        count = groups.pop(f"network.{i}", 0)
        lines.append(f"{f'network.{i} (TemporalBlock)':<26}{n_in:>6}{n_out:>6}{k:>8}{d:>10}{count:>12,}")  # fmt: skip
        n_in = n_out
    for key, count in groups.items():
        lines.append(f"{key:<26}{'':>6}{'':>6}{'':>8}{'':>10}{count:>12,}")
    lines.append("-" * len(header))
    total, trainable = parameter_count(model, trainable=False), parameter_count(model)
    rf = model.receptive_field
    lines.append(f"parameters: {total:,} ({trainable:,} trainable)")
    unbounded = "unbounded (SE blocks pool over all past steps)"
    lines.append(f"receptive field: {unbounded if rf == math.inf else f'{rf:,} steps'}")
    return "\n".join(lines)
