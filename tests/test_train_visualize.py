"""PNG plots of metrics and forecasts."""

import json

import numpy as np

from mlx_tcn.train.visualize import (
    plot_forecast_steps,
    plot_metrics,
    plot_predictions,
    plot_step_scores,
    read_metrics,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_metrics_plot_with_accuracy_panel(tmp_path):
    records = [
        {"event": "train", "step": 10, "loss": 2.0},
        {"event": "train", "step": 20, "loss": 1.0},
        {"event": "eval", "step": 20, "val_loss": 1.5, "val_accuracy": 0.4},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    assert read_metrics(path) == records
    out = plot_metrics(records, tmp_path / "m.png", title="run", baseline=1 / 6)
    assert out.read_bytes()[:8] == PNG


def test_metrics_plot_without_records(tmp_path):
    assert plot_metrics([], tmp_path / "empty.png").read_bytes()[:8] == PNG


def test_prediction_plot_multiple_columns(tmp_path):
    t = np.linspace(0, 6, 50)
    targets = np.stack([np.sin(t), np.cos(t)], axis=1)
    targets[-3:] = np.nan  # unknown future targets are simply not drawn
    out = plot_predictions(targets, targets + 0.1, tmp_path / "p.png", names=["a", "b"])
    assert out.read_bytes()[:8] == PNG
    assert (
        plot_predictions(np.arange(5.0), np.arange(5.0), tmp_path / "q.png").read_bytes()[:8] == PNG
    )


def test_prediction_plot_with_baselines_and_confusion_plot(tmp_path):
    from mlx_tcn.train.visualize import plot_confusion

    t = np.arange(20.0)[:, None]
    out = plot_predictions(t, t + 0.5, tmp_path / "p.png", ["y"],
                           baselines={"persistence": t - 1, "seasonal_naive": t + 2})  # fmt: skip
    assert out.read_bytes()[:8] == PNG
    cm = np.array([[5, 1], [0, 4]])
    assert plot_confusion(cm, ["a", "b"], tmp_path / "c.png", "t").read_bytes()[:8] == PNG


def _capture(monkeypatch):
    """Keep the figures a plot function draws (their text is what a reader sees)."""
    from mlx_tcn.train import visualize

    figures = []
    real = visualize._save

    def save(plt, fig, out_path, title):
        figures.append([[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes])
        figures[-1].append([ax.get_ylabel() for ax in fig.axes])
        return real(plt, fig, out_path, title)

    monkeypatch.setattr(visualize, "_save", save)
    return figures


def test_step_scores_plot_says_how_many_steps_the_model_beat(tmp_path, monkeypatch):
    from mlx_tcn.train.horizon import StepScores

    figures = _capture(monkeypatch)
    scores = StepScores([1, 2, 3], loss={"model": [1, 2, 3], "persistence": [2, 1, 4]},
                        mse={"model": [1.0, 2.0, 3.0], "persistence": [2.0, 1.0, 4.0]})  # fmt: skip
    out = plot_step_scores(scores, tmp_path / "h.png")
    assert out.read_bytes()[:8] == PNG
    assert figures[0][0] == ["model (all steps 2)",
                             "persistence (all steps 2.333; model better on 2/3 steps)"]  # fmt: skip


def test_forecast_steps_plot_shows_the_first_and_last_step(tmp_path, monkeypatch):
    figures = _capture(monkeypatch)
    pred = np.arange(12.0).reshape(4, 3)  # 4 windows, steps 1..3, one column
    out = plot_forecast_steps(pred + 1, pred, tmp_path / "f.png", ["load"], [1, 2, 3],
                              {"persistence": pred * 0}, ends=np.arange(10, 14))  # fmt: skip
    assert out.read_bytes()[:8] == PNG
    legends, ylabels = figures[0][:-1], figures[0][-1]
    assert ylabels == ["load, 1 step ahead", "load, 3 steps ahead"]
    assert legends[0][:2] == ["target", "prediction (MSE 1)"]
    assert legends[1][-1] == "forecast from the last window"
