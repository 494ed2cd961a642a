"""1-NN DTW test accuracy of UCR/UEA sets, the baseline docs/own_data.md compares against.

Recomputes the figure rather than quoting it: full-window DTW (no warping constraint),
one nearest neighbour, the archive's train/test split, the series as the archive gives them
(unequal lengths kept, or with ``--pad`` padded to the longest series of each file by
repeating the last value, as ``scripts/ts_to_npz.py --pad edge`` does). For several channels, both
dependent DTW (DTW_D: one warping path for all channels) and independent DTW (DTW_I: the
sum of each channel's DTW distance). Needs aeon, which mlx-tcn does not depend on; use a
throwaway environment:

    python3 -m venv /tmp/aeonvenv && /tmp/aeonvenv/bin/pip install aeon
    /tmp/aeonvenv/bin/python scripts/dtw_1nn.py DATA_DIR GunPoint ArrowHead ...

``DATA_DIR`` holds ``NAME/NAME_TRAIN.ts`` and ``NAME/NAME_TEST.ts`` (aeon's own
``aeon/datasets/data`` folder does).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.datasets import load_from_ts_file
from aeon.distances import dtw_pairwise_distance


def load(data_dir: Path, name: str, split: str, pad: bool) -> tuple[list[np.ndarray], np.ndarray]:
    """The ``(C, L_i)`` series and labels of one file, padded with their last value if asked."""
    x, y = load_from_ts_file(str(data_dir / name / f"{name}_{split}.ts"))
    series = [np.asarray(s, dtype=np.float64) for s in x]
    if pad:
        longest = max(s.shape[1] for s in series)
        series = [np.pad(s, ((0, 0), (0, longest - s.shape[1])), mode="edge") for s in series]
    return series, np.asarray(y)


def dtw_accuracies(data_dir: Path, name: str, pad: bool) -> dict[str, float]:
    """Test accuracy of 1-NN full-window DTW on ``name`` (``DTW_I`` too for several
    channels), and the seconds it took."""
    x_train, y_train = load(data_dir, name, "TRAIN", pad)
    x_test, y_test = load(data_dir, name, "TEST", pad)
    start = time.perf_counter()
    knn = KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1)
    knn.fit(x_train, y_train)
    out = {"DTW": float(np.mean(knn.predict(x_test) == y_test))}
    if x_train[0].shape[0] > 1:  # independent DTW: one warping path per channel
        per_channel = (
            dtw_pairwise_distance([s[c : c + 1] for s in x_test], [s[c : c + 1] for s in x_train])
            for c in range(x_train[0].shape[0])
        )
        nearest = np.argmin(sum(per_channel), axis=1)
        out["DTW_I"] = float(np.mean(y_train[nearest] == y_test))
    out["seconds"] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="folder of NAME/NAME_TRAIN.ts, NAME_TEST.ts")
    parser.add_argument("names", nargs="+", help="data set names")
    parser.add_argument("--pad", action="store_true", help="pad series to one length per file")
    args = parser.parse_args()
    for name in args.names:
        found = dtw_accuracies(args.data_dir, name, args.pad)
        seconds = found.pop("seconds")
        scores = ", ".join(f"{k} {v:.4f}" for k, v in found.items())
        print(f"{name}: 1-NN full-window test accuracy: {scores} ({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
