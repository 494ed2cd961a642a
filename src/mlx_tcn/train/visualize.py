"""PNG plots of a run: loss and metric curves, forecasts against targets.

matplotlib is imported inside the functions with the non-interactive ``Agg`` backend, so
plotting works on machines without a display and costs nothing when unused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "plot_confusion",
    "plot_forecast_steps",
    "plot_metrics",
    "plot_predictions",
    "plot_step_scores",
    "read_metrics",
]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, out_path: str | Path, title: str) -> Path:
    """Title, lay out and write ``fig`` as a PNG, then free it."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` file (one JSON object per line)."""
    records = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


def plot_metrics(
    records: Sequence[dict[str, Any]],
    out_path: str | Path,
    title: str = "",
    baseline: float | None = None,
) -> Path:
    """Training and validation loss against step, and validation accuracy when present.

    Args:
        records: metric dicts as the training loop emits them (``event`` ``"train"``/``"eval"``).
        out_path: PNG file to write.
        title: figure title (e.g. the run name).
        baseline: loss of a trivial predictor, drawn as a dashed line.
    """
    plt = _pyplot()
    train = [r for r in records if r.get("event") == "train"]
    evals = [r for r in records if r.get("event") == "eval"]
    has_acc = any("val_accuracy" in r for r in evals)
    fig, axes = plt.subplots(
        1, 2 if has_acc else 1, figsize=(11 if has_acc else 6, 4), squeeze=False
    )
    ax = axes[0, 0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    if evals:
        ax.plot(
            [r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", label="validation"
        )
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", linewidth=1, label="trivial predictor")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    losses = [r["loss"] for r in train] + [r["val_loss"] for r in evals]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if train or evals or baseline is not None:
        ax.legend()
    if has_acc:
        ax = axes[0, 1]
        acc = [r for r in evals if "val_accuracy" in r]
        ax.plot([r["step"] for r in acc], [r["val_accuracy"] for r in acc], "o-", color="C1")
        ax.set_xlabel("step")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
    return _save(plt, fig, out_path, title)


def plot_predictions(
    targets: np.ndarray,
    predictions: np.ndarray,
    out_path: str | Path,
    names: Sequence[str] | None = None,
    title: str = "",
    baselines: dict[str, np.ndarray] | None = None,
    x: Sequence[np.ndarray] | None = None,
    last: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Path:
    """Forecasts against targets, one panel per target column; each line's MSE is in the
    legend, so the plot says whether the model beat the baselines.

    Args:
        targets: ``(N, C)`` actual values (NaN where unknown).
        predictions: ``(N, C)`` predicted values.
        out_path: PNG file to write.
        names: column names for the panel titles.
        title: figure title.
        baselines: other forecasts ``(N, C)`` by name (persistence, seasonal_naive), drawn thin.
        x: per panel, the position of each value (the rows forecast); default: its index.
        last: per panel, positions and values of one more forecast drawn dashed (the whole
            horizon forecast from the last window).
    """
    plt = _pyplot()
    targets, predictions = np.atleast_2d(targets.T).T, np.atleast_2d(predictions.T).T
    lines = {"prediction": predictions, **(baselines or {})}
    n = predictions.shape[1]
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.6 * n), squeeze=False, sharex=True)
    for c in range(n):
        ax = axes[c, 0]
        pos = np.arange(len(targets)) if x is None else np.asarray(x[c])
        ax.plot(pos, targets[:, c], label="target", color="black", linewidth=1)
        for i, (name, values) in enumerate(lines.items()):
            err = (np.atleast_2d(values.T).T[:, c] - targets[:, c]) ** 2
            label = name.replace("_", " ")
            if np.isfinite(err).any():
                label += f" (MSE {np.nanmean(err):.4g})"
            ax.plot(pos, np.atleast_2d(values.T).T[:, c], label=label, color=f"C{3 + i}",
                    linewidth=1 if i == 0 else 0.7, alpha=1 if i == 0 else 0.6)  # fmt: skip
        if last is not None:
            ax.plot(*last[c], "--", color="C3", linewidth=1, label="forecast from the last window")
        ax.set_ylabel(names[c] if names else f"target {c}")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("window" if x is None else "row forecast")
    return _save(plt, fig, out_path, title)


def plot_forecast_steps(
    targets: np.ndarray,
    predictions: np.ndarray,
    out_path: str | Path,
    names: Sequence[str],
    steps: Sequence[int],
    baselines: dict[str, np.ndarray] | None = None,
    ends: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Multi-step forecasts against targets: one panel per target column for the first step
    ahead and (when there are several) one for the last, each point drawn at the row it
    forecasts, with each line's MSE in the legend (:func:`plot_predictions`), and the whole
    forecast from the last window dashed (past the end of a file given to ``predict``: the
    series continued).

    Args:
        targets, predictions: flat ``(N, S * C)``, step-major (NaN where unknown).
        names: the ``C`` target columns.
        steps: the ``S`` steps ahead.
        baselines: other forecasts by name, flat like ``predictions``.
        ends: ``(N,)`` the row where each window ends (default: the window's index).
    """
    n_steps, n_cols = len(steps), len(names)
    picks = [(0, c) for c in range(n_cols)]
    if n_steps > 1:
        picks += [(n_steps - 1, c) for c in range(n_cols)]

    def columns(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a).reshape(len(a), n_steps, n_cols)
        return np.stack([a[:, s, c] for s, c in picks], axis=1)

    labels = [f"{names[c]}, {steps[s]} step{'s' if steps[s] != 1 else ''} ahead" for s, c in picks]
    base = {k: columns(v) for k, v in (baselines or {}).items()}
    x = last = None
    if ends is not None:
        x = [np.asarray(ends) + steps[s] for s, _ in picks]
        final = np.asarray(predictions)[-1].reshape(n_steps, n_cols)
        last = [(ends[-1] + np.asarray(steps), final[:, c]) for _, c in picks]
    return plot_predictions(columns(targets), columns(predictions), out_path, labels, title,
                            base, x=x, last=last)  # fmt: skip


def plot_step_scores(scores: Any, out_path: str | Path, title: str = "") -> Path:
    """The model's and the baselines' validation MSE at each step of the horizon (data units);
    the legend gives each one's MSE over all steps and on how many steps the model beat it.

    Args:
        scores: a :class:`~mlx_tcn.train.horizon.StepScores`.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    beaten, overall = scores.steps_beaten(), scores.overall("mse")
    n = len(scores.steps)
    for i, (name, values) in enumerate(scores.mse.items()):
        label = f"{name.replace('_', ' ')} (all steps {overall[name]:.4g}"
        if name in beaten:
            label += f"; model better on {beaten[name]}/{n} steps"
        label += ")"
        ax.plot(scores.steps, values, "o-" if i == 0 else "s--", label=label,
                color=f"C{3 + i}", linewidth=1.5 if i == 0 else 1)  # fmt: skip
    ax.set_xticks(scores.steps if n <= 24 else scores.steps[:: math.ceil(n / 24)])
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("validation MSE (data units)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, out_path, title)


def plot_confusion(
    matrix: np.ndarray, classes: Sequence[str], out_path: str | Path, title: str = ""
) -> Path:
    """A confusion matrix (rows: true class, columns: predicted) with the counts written in."""
    plt = _pyplot()
    k = len(classes)
    side = max(3.5, 1.2 + 0.6 * k)  # room for the title at two classes
    fig, ax = plt.subplots(figsize=(side, side - 0.3))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45 if k > 4 else 0)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = matrix.max() if matrix.size else 0
    for i in range(k):
        for j in range(k):
            color = "white" if matrix[i, j] > top / 2 else "black"
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", color=color)
    return _save(plt, fig, out_path, title)
