"""Convert a UCR/UEA ``.ts`` file (sktime/aeon text format) to the ``.npz`` a classification
run reads: ``x`` ``(N, L, C)`` float32 and ``y`` ``(N,)`` labels as text.

Used to measure the classification defaults on the archive sets that aeon bundles
(docs/own_data.md) without depending on aeon. Series of different lengths are padded at the
end to the longest one by repeating their last value (``--pad edge``, the default) or with
zeros (``--pad zero``); the archive's own ``_eq`` files are another option where they exist.

    python scripts/ts_to_npz.py OSULeaf_TRAIN.ts osuleaf_train.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """Every case of a ``.ts`` file as a ``(L_i, C)`` array, and its label."""
    series, labels, in_data = [], [], False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *dims, label = line.split(":")
        channels = [np.array([float(v) for v in d.split(",")], dtype=np.float64) for d in dims]
        length = max(len(c) for c in channels)
        case = np.full((length, len(channels)), np.nan)
        for j, c in enumerate(channels):
            case[: len(c), j] = c
        series.append(case)
        labels.append(label.strip())
    if not series:
        raise ValueError(f"{path}: no @data section or no cases")
    return series, labels


def pad(series: list[np.ndarray], mode: str, length: int | None = None) -> np.ndarray:
    """``(N, L, C)``: each series padded at the end to ``length`` (default: the longest)."""
    length = length or max(len(s) for s in series)
    out = np.zeros((len(series), length, series[0].shape[1]), dtype=np.float32)
    for i, s in enumerate(series):
        s = s[:length]
        out[i, : len(s)] = s
        if mode == "edge":
            out[i, len(s) :] = s[-1]
    if np.isnan(out).any():
        raise ValueError("missing values inside a series; this converter does not fill them")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ts", type=Path)
    p.add_argument("npz", type=Path)
    p.add_argument("--pad", choices=("edge", "zero"), default="edge")
    p.add_argument("--length", type=int, help="pad/cut to this length (default: the longest)")
    args = p.parse_args(argv)
    series, labels = read_ts(args.ts)
    x = pad(series, args.pad, args.length)
    np.savez(args.npz, x=x, y=np.array(labels))
    lengths = sorted({len(s) for s in series})
    print(
        f"{args.npz}: x {x.shape}, {len(set(labels))} classes, lengths {lengths[0]}-{lengths[-1]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
