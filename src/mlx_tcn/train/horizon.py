"""Multi-step forecasts: which steps a forecasting run predicts, how its targets are laid out,
and how each step is scored against the baselines.

A forecasting run with ``horizon = H`` predicts every step ``1..H`` after its window at once:
the model's last time step outputs ``H x C`` values for ``C`` target columns, step-major (output
``h * C + c`` is column ``c`` at step ``steps[h]``), so one forward pass gives the whole
forecast and the training loss (MSE over all outputs) is the mean over steps and columns. Runs
saved before multi-step horizons predicted only the single step ``horizon`` ahead; their
statistics have no ``steps`` and keep that meaning (:func:`forecast_steps`).

A single number hides where a forecast fails: a model can beat persistence on the first steps
and lose to seasonal naive on the last. :func:`score_steps` therefore scores the model and each
baseline at every step, in the model's loss units and in the data's, and counts the steps on
which the model is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["StepScores", "by_step", "forecast_steps", "score_steps"]


def forecast_steps(stats: dict[str, Any]) -> np.ndarray:
    """The steps after each window that a forecasting run predicts, from its saved statistics:
    ``1..horizon``, or ``[horizon]`` for a run saved before multi-step horizons."""
    steps = stats.get("steps")
    return np.asarray(steps if steps is not None else [stats["horizon"]], dtype=np.int64)


def by_step(y: np.ndarray, n_steps: int) -> np.ndarray:
    """Flat outputs or targets ``(N, S * C)`` as ``(N, S, C)``."""
    y = np.asarray(y)
    if y.shape[-1] % n_steps:
        raise ValueError(f"{y.shape[-1]} outputs do not split into {n_steps} steps")
    return y.reshape(*y.shape[:-1], n_steps, y.shape[-1] // n_steps)


@dataclass
class StepScores:
    """The model's and the baselines' errors at every step of the horizon.

    Attributes:
        steps: the steps ahead ``(S,)``.
        loss: per name (``"model"``, then each baseline) the MSE at each step in the units of
            the model's loss (divided by the step's scale), averaged over the target columns.
        mse: the same in the data's units.
    """

    steps: list[int]
    loss: dict[str, list[float]]
    mse: dict[str, list[float]]

    def overall(self, units: str = "loss") -> dict[str, float]:
        """Mean over the steps (the whole forecast's error), per name."""
        table = self.loss if units == "loss" else self.mse
        return {name: float(np.mean(v)) for name, v in table.items()}

    def steps_beaten(self) -> dict[str, int]:
        """Per baseline, on how many steps the model's loss is lower."""
        model = np.asarray(self.loss["model"])
        return {name: int(np.sum(model < np.asarray(v)))
                for name, v in self.loss.items() if name != "model"}  # fmt: skip

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable summary (the ``horizon`` line of ``metrics.jsonl``)."""
        return {
            "steps": self.steps,
            "loss_by_step": self.loss,
            "mse_by_step": self.mse,
            "overall_loss": self.overall("loss"),
            "overall_mse": self.overall("mse"),
            "steps_beaten": self.steps_beaten(),
        }


def score_steps(
    pred: np.ndarray,
    target: np.ndarray,
    baselines: dict[str, np.ndarray],
    scale: np.ndarray,
    steps: np.ndarray,
) -> StepScores:
    """Score forecasts step by step.

    Args:
        pred: the model's forecasts ``(N, S, C)`` (or flat ``(N, S * C)``), data units.
        target: the actual values, the same shape.
        baselines: the baselines' forecasts by name, the same shape.
        scale: ``(S, C)`` the scale of each step's normalised target (the loss's units).
        steps: ``(S,)`` the steps ahead.
    """
    n = len(steps)
    actual = by_step(target, n).astype(np.float64)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), actual.shape[1:])
    loss, mse = {}, {}
    for name, values in {"model": pred, **baselines}.items():
        err = by_step(values, n).astype(np.float64) - actual
        loss[name] = ((err / scale) ** 2).mean(axis=(0, 2)).tolist()
        mse[name] = (err**2).mean(axis=(0, 2)).tolist()
    return StepScores([int(h) for h in steps], loss, mse)
