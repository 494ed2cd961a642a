"""Convert a UCR/UEA ``.ts`` file (sktime/aeon text format) to the ``.npz`` a classification
run reads: ``x`` ``(N, L, C)`` float32 and ``y`` ``(N,)`` labels as text.

mlx-tcn reads ``.ts`` files itself (``--data-path X_TRAIN.ts``); this is for other tools, or
to keep the data as arrays. The reader is the library's (``mlx_tcn.train.data.read_ts``).
Series of different lengths are padded at the end to the longest one with NaN rows
(``--pad nan``, the default: the archives' convention, from which mlx-tcn reads each
series' length back), by repeating their last value (``--pad edge``: the lengths are lost,
and the padding counts as data) or with zeros (``--pad zero``).

    python scripts/ts_to_npz.py OSULeaf_TRAIN.ts osuleaf_train.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mlx_tcn.train.data import read_ts


def pad(series: list[np.ndarray], mode: str, length: int | None = None) -> np.ndarray:
    """``(N, L, C)``: each series cut or padded at the end to ``length`` (default: the
    longest), with NaN rows, its last row repeated (``edge``) or zeros."""
    length = length or max(len(s) for s in series)
    out = np.full((len(series), length, series[0].shape[1]), np.nan, dtype=np.float32)
    for i, s in enumerate(series):
        s = s[:length]
        out[i, : len(s)] = s
        if mode != "nan":
            out[i, len(s) :] = s[-1] if mode == "edge" else 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ts", type=Path)
    p.add_argument("npz", type=Path)
    p.add_argument("--pad", choices=("nan", "edge", "zero"), default="nan")
    p.add_argument("--length", type=int, help="pad/cut to this length (default: the longest)")
    args = p.parse_args(argv)
    series, labels = read_ts(args.ts)
    x = pad(series, args.pad, args.length)
    np.savez(args.npz, x=x, y=labels)
    lengths = sorted({len(s) for s in series})
    print(
        f"{args.npz}: x {x.shape}, {len(set(labels))} classes, lengths {lengths[0]}-{lengths[-1]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
