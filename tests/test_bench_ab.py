"""benchmarks/bench_ab.py: its arguments, its table and one worker's measurement."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_ab  # noqa: E402


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--models", "nope"], "--models: unknown \\['nope'\\]"),
        (["--modes", "infer,fast"], "--modes: unknown \\['fast'\\]"),
        (["--rounds", "0"], "--rounds and --iters must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench_ab.main(["--against", "/nowhere", *argv])
    assert re.search(message, capsys.readouterr().err)


def test_a_worker_prints_its_median_milliseconds(capsys):
    bench_ab._worker("tiny", "train-compiled", 2)
    ms = json.loads(capsys.readouterr().out.strip())
    assert 0 < ms < 10_000


def test_the_table_pairs_the_rounds(monkeypatch, capsys):
    # old takes 10 ms in every round; new 8, 9 and 11: ratios 0.8, 0.9, 1.1
    new_times = iter([8.0, 9.0, 11.0])
    monkeypatch.setattr(
        bench_ab, "_run", lambda src, *_: 10.0 if src == "/old" else next(new_times)
    )
    bench_ab.main(
        [
            "--against",
            "/old",
            "--new",
            "/new",
            "--models",
            "tiny",
            "--modes",
            "infer",
            "--rounds",
            "3",
        ]
    )
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row == "| tiny | infer | 10.000 | 9.000 | 0.900 (0.80-1.10) | 2 of 3 |"
