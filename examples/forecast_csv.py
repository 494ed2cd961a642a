"""Forecast a CSV series with the training pipeline from Python, then predict.

The same as the command line's

    mlx-tcn train --task forecast --data-path demand.csv --target-columns demand \
        --seq-len 48 --horizon 1

    python examples/forecast_csv.py [folder]    # default: a temporary folder
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from mlx_tcn.cli import main
from mlx_tcn.train import resolve_config, run_training

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
folder.mkdir(parents=True, exist_ok=True)

# A demand series with a daily cycle (24 steps), driven by a temperature column, plus noise.
rng = np.random.default_rng(0)
t = np.arange(2000)
temperature = 10 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, t.size)
demand = 50 + 2 * temperature + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, t.size)
csv = folder / "demand.csv"
np.savetxt(csv, np.column_stack([temperature, demand]), delimiter=",",
           header="temperature,demand", comments="")  # fmt: skip

cfg = resolve_config(
    cli_values=dict(
        task="forecast",
        data_path=str(csv),
        target_columns=["demand"],
        seq_len=48,
        horizon=1,
        levels=3,
        hidden=16,
        kernel_size=6,
        epochs=3,
        runs_dir=str(folder / "runs"),
        plots=False,
    )
)
result = run_training(cfg)
val_loss = result.last["val_loss"]
persistence = result.baselines["persistence"]
print(f"validation loss {val_loss:.4f} after {result.state.step} steps (units: the typical change)")
print(f"persistence (tomorrow = today) scores {persistence:.4f}")
print(f"validation MSE in the data's units: {result.data_mse}")
assert val_loss < 0.5 * persistence

# Forecast new data: `mlx-tcn predict` cuts it into windows relative to their last row with
# the scales saved in the checkpoint, predicts the steps after each window (with --horizon H:
# all of steps 1..H; the last window's lie past the end of the file: the series continued)
# and writes the forecasts in the data's own units, one row per window and step, with the
# row where the window ends and the row each value forecasts.
new = folder / "demand_new.csv"
np.savetxt(new, np.column_stack([temperature, demand])[-200:], delimiter=",",
           header="temperature,demand", comments="")  # fmt: skip
out = folder / "forecast.csv"
assert main(["predict", str(result.run_dir), "--input", str(new), "--output", str(out)]) == 0
forecast = np.genfromtxt(out, delimiter=",", names=True)
print("columns:", forecast.dtype.names)
print(forecast[-3:])
