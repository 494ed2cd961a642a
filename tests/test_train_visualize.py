"""PNG plots of metrics and forecasts."""

import json

import numpy as np

from mlx_tcn.train.visualize import plot_metrics, plot_predictions, read_metrics

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
