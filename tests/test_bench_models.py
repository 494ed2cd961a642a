"""benchmarks/bench_models.py: the statistics, the verdicts, the shapes and the docs text,
on fixed per-round timings (nothing here measures anything)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_models  # noqa: E402
import bench_models_report as report  # noqa: E402

# -- statistics ------------------------------------------------------------------------------


def test_sign_test_exact_values():
    assert report.sign_test_p(6, 0) == 2 / 64
    assert report.sign_test_p(0, 6) == 2 / 64
    assert report.sign_test_p(5, 1) == 2 * 7 / 64
    assert report.sign_test_p(9, 1) == 2 * 11 / 1024
    assert report.sign_test_p(3, 3) == 1.0
    assert report.sign_test_p(0, 0) == 1.0


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        ([0.9, 0.8, 0.95, 0.7, 0.99, 0.85], "faster"),
        ([1.1, 1.2, 1.01, 1.3, 1.05, 1.15], "slower"),
        # one round of six on the other side: no claim
        ([0.9, 0.8, 0.95, 0.7, 0.99, 1.02], "no clear difference"),
        # five rounds, all agreeing, are too few for p <= 0.05 (p = 1/16)
        ([0.9, 0.8, 0.95, 0.7, 0.99], "no clear difference"),
        # ten rounds: nine of them suffice (p = 0.021)
        ([0.9] * 9 + [1.5], "faster"),
        # ties tell nothing
        ([1.0] * 6, "no clear difference"),
        ([0.5], "no clear difference"),
    ],
)
def test_verdict_from_rounds(ratios, expected):
    assert report.verdict(ratios) == expected


def test_goal_status_both_directions():
    below = [0.7, 0.75, 0.72, 0.78, 0.71, 0.74]
    assert report.goal_status(below, 0.8) == "met"
    assert report.goal_status(below, 0.69) == "not met"
    assert report.goal_status(below, 0.73) == "unclear"
    speedups = [11.0, 12.0, 10.5, 13.0, 11.5, 12.5]
    assert report.goal_status(speedups, 10.0, at_most=False) == "met"
    assert report.goal_status(speedups, 14.0, at_most=False) == "not met"


def test_spread_and_ratios():
    s = report.Spread.of([3.0, 1.0, 2.0, 10.0])
    assert (s.median, s.low, s.high) == (2.5, 1.0, 10.0)
    assert s.text(1) == "2.5 (1.0-10.0)"
    assert report.Spread.of([4.0]).text(2) == "4.00"
    assert report.per_round_ratios([2.0, 3.0], [4.0, 1.5]) == [0.5, 2.0]
    with pytest.raises(ValueError, match="at least one round"):
        report.Spread.of([])
    with pytest.raises(ValueError, match="got 2 and 3"):
        report.per_round_ratios([1.0, 2.0], [1.0, 2.0, 3.0])


# -- shapes ----------------------------------------------------------------------------------


def test_conv_layers_and_flops_of_the_mid_size_model():
    spec = report.MODELS["mid"]
    layers = spec.conv_layers()
    assert layers[:4] == [
        report.ConvLayer(64, 128, 3, 1),
        report.ConvLayer(128, 128, 3, 1),
        report.ConvLayer(64, 128, 1, 1),  # the downsample of the first block
        report.ConvLayer(128, 128, 3, 2),
    ]
    assert [c.dilation for c in layers[-2:]] == [32, 32]
    assert layers[-1].padding == 64
    # 2*B*T * (64*128*3 + 128*128*3 + 64*128 + 5 * 2*128*128*3)
    assert spec.conv_flops() == 2 * 16 * 1024 * 573440 == 18_790_481_920
    assert spec.mode_flops("train") == 3 * spec.conv_flops()
    assert report.MODELS["smnist"].conv_flops() == 6_605_670_400
    assert spec.shape() == "64 in, 6x128, k=3, T=1024, B=16"


def test_grid_covers_each_end_of_every_range():
    grid = list(report.GRID.values())
    ranges = {
        "width": ([s.channels[0] for s in grid], 16, 256),
        "depth": ([len(s.channels) for s in grid], 4, 12),
        "kernel": ([s.kernel_size for s in grid], 2, 8),
        "length": ([s.length for s in grid], 256, 4096),
        "batch": ([s.batch for s in grid], 1, 64),
    }
    for name, (values, low, high) in ranges.items():
        assert min(values) == low and max(values) == high, name
    assert all(len(set(s.channels)) == 1 for s in grid)
    # each shape costs about as much as the others (8-13 GFLOP per forward)
    assert all(8e9 <= s.conv_flops() <= 13e9 for s in grid)
    assert len({s.key for s in grid}) == len(grid) == 5
    assert not set(report.GRID) & set(report.MODELS)


def test_goal_is_stricter_from_64_channels():
    assert report.MODELS["smnist"].goal() == 1.0
    assert report.MODELS["mid"].goal() == 0.8
    assert report.GRID["g-narrow"].goal() == 1.0
    assert {s.goal() for k, s in report.GRID.items() if k != "g-narrow"} == {0.8}


# -- docs text from a fixed result set ---------------------------------------------------------

RESULTS = {
    "meta": {
        "command": "python benchmarks/bench_models.py",
        "elapsed_s": 1234.4,
        "commit": "abc1234",
        "date": "2026-11-29 22:30 UTC",
        "load": [0.2, 1.9],
        "machine": "AMD EPYC, 2 cores visible, Linux x86_64, Python 3.11.7",
        "threads": 2,
        "rounds": 6,
        "warmup": 2,
        "iters": 8,
        "stream_steps": 200,
        "versions": {
            "mlx": "0.32.4",
            "torch": "2.13.0+cpu",
            "pytorch-tcn": "1.2.3",
            "numpy": "2.4.6",
            "mlx-tcn": "0.1.0",
            "blas": "OpenBLAS (/x/libscipy_openblas.so)",
            "blas_core": "Haswell (auto: OpenBLAS's detection; no AVX-512 on this CPU)",
            "device": "Device(cpu, 0)",
            "lanes": 2,
        },
    },
    "gemm": {
        "threads": [250.0, 240.0, 244.0, 246.0, 252.0, 230.0],
        "single": [125.0, 124.0, 126.0, 120.0, 127.0, 125.0],
        "lanes": [251.0, 249.0, 248.0, 250.0, 252.0, 240.0],
    },
    "cases": [
        # sMNIST training: faster in every round, goal 1.0 met
        {
            "model": "smnist",
            "mode": "train",
            "library": "pytorch-tcn",
            "ms": [700.0, 720.0, 710.0, 690.0, 705.0, 800.0],
            "conv_ms": [300.0, 310.0, 305.0, 295.0, 300.0, 320.0],
        },
        {
            "model": "smnist",
            "mode": "train",
            "library": "mlx-tcn",
            "ms": [560.0, 576.0, 639.0, 552.0, 634.5, 640.0],
            "conv_ms": [396.5, 400.0, 410.0, 390.0, 396.5, 420.0],
        },
        # mid-size inference: slower in every round, goal 0.8 not met
        {
            "model": "mid",
            "mode": "infer",
            "library": "pytorch-tcn",
            "ms": [60.0, 62.0, 58.0, 61.0, 86.0, 59.0],
            "conv_ms": [50.0, 52.0, 49.0, 51.0, 60.0, 50.0],
        },
        {
            "model": "mid",
            "mode": "infer",
            "library": "mlx-tcn",
            "ms": [100.0, 99.0, 95.0, 104.0, 110.0, 100.0],
            "conv_ms": [80.0, 81.0, 79.0, 82.0, 85.0, 80.0],
        },
        # mid-size training: faster in five rounds of six: no claim
        {
            "model": "mid",
            "mode": "train",
            "library": "pytorch-tcn",
            "ms": [700.0, 700.0, 700.0, 700.0, 700.0, 700.0],
            "conv_ms": [400.0, 400.0, 400.0, 400.0, 400.0, 400.0],
        },
        {
            "model": "mid",
            "mode": "train",
            "library": "mlx-tcn",
            "ms": [630.0, 665.0, 644.0, 686.0, 602.0, 735.0],
            "conv_ms": [500.0, 500.0, 500.0, 500.0, 500.0, 500.0],
        },
    ],
    "stream": [
        {"model": "k3", "title": "8x32, k=3", "case": c, "us": us}
        for c, us in (
            ("pytorch-tcn, 1 thread", [900.0, 950.0, 1000.0, 920.0, 940.0, 910.0]),
            ("pytorch-tcn, 2 threads", [1200.0, 800.0, 1300.0, 1100.0, 1000.0, 1250.0]),
            ("batch 1", [400.0, 410.0, 420.0, 380.0, 450.0, 400.0]),
            ("batch 32", [960.0, 1024.0, 992.0, 960.0, 1056.0, 1024.0]),
        )
    ],
}

EXPECTED_TIME_TABLE = """\
| model | mode | library | ms | pytorch-tcn ms | time / pytorch-tcn's | verdict | goal | met |
|---|---|---|---:|---:|---:|---|---:|---|
| sMNIST (paper) | train | mlx-tcn | 605.2 (552.0-640.0) | 707.5 (690.0-800.0) \
| 0.80 (0.80-0.90) | faster | <= 1.0 | met |
| mid-size | infer | mlx-tcn | 100.0 (95.0-110.0) | 60.5 (58.0-86.0) \
| 1.65 (1.28-1.70) | slower | <= 0.8 | not met |
| mid-size | train | mlx-tcn | 654.5 (602.0-735.0) | 700.0 | 0.94 (0.86-1.05) \
| no clear difference | <= 0.8 | not met |"""

EXPECTED_RATE_TABLE = """\
| model | mode | GFLOP | pytorch-tcn | mlx-tcn | convolutions alone: torch \
| convolutions alone: mlx-tcn | mlx-tcn / best alone | mlx-tcn / OpenBLAS 2048^3 |
|---|---|---:|---:|---:|---:|---:|---:|---:|
| sMNIST (paper) | train | 19.8 | 28 | 33 | 66 | 50 | 50% | 13% |
| mid-size | infer | 18.8 | 311 | 188 | 372 | 233 | 50% | 77% |
| mid-size | train | 56.4 | 81 | 86 | 141 | 113 | 61% | 35% |"""

EXPECTED_STREAM_TABLE = """\
| model | pytorch-tcn, 1 thread, us | pytorch-tcn, 2 threads, us | pytorch-tcn's best \
| `stream_step`, batch 1, us | speed-up over pytorch-tcn's best | goal >= 10x \
| `stream_step`, batch 32, us | per stream / batch-1 step | goal <= 0.1 |
|---|---:|---:|---|---:|---:|---|---:|---:|---|
| 8x32, k=3 | 930 (900-1000) | 1150 (800-1300) | 1 thread | 405 (380-450) | 2.3 (2.0-2.4)x \
(0.23 of the goal) | not met | 1008 (960-1056) | 0.077 (0.073-0.080) | met |"""

EXPECTED_SUMMARY = """\
- Training step, mlx-tcn against pytorch-tcn: faster on sMNIST (paper); no clear difference \
on mid-size.
- Inference, mlx-tcn against pytorch-tcn: slower on mid-size.
- Issue 14's goal (time at most 1.0x pytorch-tcn's, 0.8x from 64 channels) is met on 1 of 3 \
rows; not met on 2 (mid-size infer, mid-size train).
- Streaming, 8x32, k=3: a batch-1 `stream_step` is 2.3x faster than pytorch-tcn's streaming \
at its best thread count (goal 10x: not met); at batch 32 one stream costs 0.077 of a \
batch-1 step (goal at most 0.1: met).
- A verdict needs the rounds to agree beyond chance (two-sided sign test over 6 alternated \
rounds, p <= 0.05; with 5 rounds or fewer there is none); otherwise the row says \
"no clear difference" or "unclear"."""


def test_time_table_exact():
    assert report.time_table(report.case_rows(RESULTS)) == EXPECTED_TIME_TABLE


def test_rate_table_exact():
    assert report.rate_table(RESULTS) == EXPECTED_RATE_TABLE


def test_stream_table_exact():
    assert report.stream_table(report.stream_rows(RESULTS)) == EXPECTED_STREAM_TABLE


def test_summary_comes_from_the_verdicts():
    rows = report.case_rows(RESULTS)
    streams = report.stream_rows(RESULTS)
    assert report.summary(rows, streams, 6) == EXPECTED_SUMMARY


def test_section_holds_the_run_the_tables_and_the_summary_in_order():
    text = report.section(RESULTS)
    order = [
        "### Summary (generated from the verdicts below)\n\n" + EXPECTED_SUMMARY + "\n",
        "Command: `python benchmarks/bench_models.py` (1234 s), commit `abc1234`, "
        "2026-11-29 22:30 UTC; 1-min load average 0.2 before, 1.9 after.",
        "kernels (`mlx-tcn info` blas_core): Haswell (auto: OpenBLAS's detection; no "
        "AVX-512 on this CPU); mlx-tcn lanes: 2.",
        "**245 (230-252) GFLOP/s** with 2 OpenBLAS threads; 125 (120-127) single-threaded; "
        "250 (240-252) as one single-threaded matmul per lane.",
        "- **sMNIST (paper)** (1 in, 8x25, k=7, T=784, B=64)",
        "- **mid-size** (64 in, 6x128, k=3, T=1024, B=16)",
        "Method: 6 rounds;",
        "then 8 timed iterations",
        EXPECTED_TIME_TABLE + "\n\n![",
        "](img/bench_models_rounds.png)\n",
        EXPECTED_RATE_TABLE,
        "Streaming (200 timed steps per process",
        EXPECTED_STREAM_TABLE + "\n",
    ]
    at = 0
    for part in order:
        found = text.find(part, at)
        assert found >= 0, part
        at = found + len(part)
    assert text.endswith(EXPECTED_STREAM_TABLE + "\n")
    assert text.count("- **") == 2  # each model described once, though it has two modes


def test_section_without_streaming_leaves_the_streaming_part_out():
    text = report.section({**RESULTS, "stream": []})
    assert "stream_step" not in text and "Streaming" not in text


# -- writing the docs --------------------------------------------------------------------------


def test_replace_block_keeps_the_rest_of_the_page():
    page = f"# Title\n\nintro\n\n{report.BEGIN}\nold\n{report.END}\n\n## After\n"
    assert report.replace_block(page, "new\n") == (
        f"# Title\n\nintro\n\n{report.BEGIN}\nnew\n{report.END}\n\n## After\n"
    )
    assert report.replace_block("# Title\n", "new") == (
        f"# Title\n\n{report.BEGIN}\nnew\n{report.END}\n"
    )


def test_the_docs_page_has_one_block_to_replace():
    text = (BENCH.parent / "docs" / "performance_models.md").read_text()
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1
    assert text.index(report.BEGIN) < text.index(report.END)


def test_render_writes_the_docs_from_a_json_file(tmp_path, monkeypatch, capsys):
    raw = tmp_path / "results.json"
    raw.write_text(json.dumps(RESULTS))
    doc, png = tmp_path / "perf.md", tmp_path / "img" / "chart.png"
    doc.write_text(f"# Perf\n\n{report.BEGIN}\nold\n{report.END}\n\n## Kept\n")
    monkeypatch.setattr(bench_models, "DOC", doc)
    monkeypatch.setattr(bench_models, "PNG", png)
    monkeypatch.setattr(bench_models, "ROOT", tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    bench_models.main(["--render", str(raw)])
    assert doc.read_text() == (
        f"# Perf\n\n{report.BEGIN}\n{report.section(RESULTS).rstrip()}\n{report.END}\n\n## Kept\n"
    )
    assert png.stat().st_size > 0
    assert EXPECTED_SUMMARY in capsys.readouterr().out


def test_render_with_no_write_only_prints(tmp_path, monkeypatch, capsys):
    raw = tmp_path / "results.json"
    raw.write_text(json.dumps(RESULTS))
    doc = tmp_path / "perf.md"
    monkeypatch.setattr(bench_models, "DOC", doc)
    bench_models.main(["--render", str(raw), "--no-write"])
    assert not doc.exists()
    assert EXPECTED_TIME_TABLE in capsys.readouterr().out


# -- the command line and the lane split -----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rounds", "0"], "--rounds must be at least 1, got 0"),
        (["--iters", "0"], "--iters must be at least 1, got 0"),
        (["--models", "smnist,huge"], "--models: unknown model 'huge'"),
        (["--modes", "fit"], "--modes: unknown mode 'fit'"),
        (["--stream-models", "k9"], "--stream-models: unknown stream-model 'k9'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_models.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_levels_fill_the_defaults():
    parser = bench_models._parser()
    args = parser.parse_args(["--grid", "--models", "mid,g-deep"])
    bench_models._resolve(args, parser)
    assert (args.rounds, args.warmup, args.iters, args.stream_steps) == (6, 2, 8, 200)
    assert args.model_keys == ["mid", "g-deep", "g-narrow", "g-wide", "g-short", "g-mid"]
    args = parser.parse_args(["--quick", "--rounds", "1", "--no-streaming"])
    bench_models._resolve(args, parser)
    assert (args.rounds, args.warmup, args.iters, args.stream_steps) == (1, 1, 3, 50)
    assert args.stream_keys == []


def _conv(x: np.ndarray, w: np.ndarray, dilation: int) -> np.ndarray:
    """Valid causal convolution of a padded NLC input, the plain way."""
    k = w.shape[1]
    t = x.shape[1] - (k - 1) * dilation
    return sum(x[:, j * dilation : j * dilation + t] @ w[:, j].T for j in range(k))


@pytest.mark.parametrize(("batch", "lanes"), [(5, 2), (1, 2), (1, 3), (4, 1), (2, 4)])
def test_lane_parts_rebuild_the_whole_convolution(batch, lanes):
    rng = np.random.default_rng(0)
    k, d, length = 3, 4, 37
    x = rng.normal(size=(batch, length + (k - 1) * d, 2))
    w = rng.normal(size=(3, k, 2))
    parts = bench_models._lane_parts(batch, length, (k - 1) * d, lanes)
    assert len(parts) == lanes
    outs = [_conv(x[rows, steps], w, d) for rows, steps in parts]
    axis = 0 if batch >= lanes else 1
    np.testing.assert_allclose(np.concatenate(outs, axis=axis), _conv(x, w, d), atol=1e-12)


def test_summary_counts_goals_the_rounds_cannot_decide():
    cases = [dict(c) for c in RESULTS["cases"]]
    # mid-size training: faster than pytorch-tcn in every round, but around the 0.8 goal
    cases[5] = {**cases[5], "ms": [550.0, 570.0, 580.0, 600.0, 540.0, 590.0]}
    rows = report.case_rows({**RESULTS, "cases": cases})
    assert [(r.verdict, r.goal_status) for r in rows][-1] == ("faster", "unclear")
    text = report.summary(rows, [], 6)
    assert "- Training step, mlx-tcn against pytorch-tcn: faster on sMNIST (paper) and " in text
    assert "mid-size.\n" in text
    assert "is met on 1 of 3 rows; not met on 1 (mid-size infer); unclear on 1 " in text
    assert "Streaming" not in text


def test_the_eager_training_step_has_its_own_line_and_no_goal_count():
    eager = [
        {"model": "smnist", "mode": "train", "library": report.EAGER, "ms": [900.0] * 6},
        {"model": "mid", "mode": "train", "library": report.EAGER, "ms": [630.0] * 6},
    ]
    rows = report.case_rows({**RESULTS, "cases": [*RESULTS["cases"], *eager]})
    assert [(r.model.key, r.library, r.verdict) for r in rows if r.library == report.EAGER] == [
        ("smnist", report.EAGER, "slower"),
        ("mid", report.EAGER, "faster"),
    ]
    lines = report.summary(rows, [], 6).splitlines()
    assert lines[2] == (
        "- Training step without `mx.compile` (a user's eager loop), against pytorch-tcn: "
        "faster on mid-size; slower on sMNIST (paper)."
    )
    # the goal is counted over the library's own rows only, as without the eager ones
    assert lines[3] == EXPECTED_SUMMARY.splitlines()[2]
    assert "eager" not in EXPECTED_SUMMARY


def test_the_plan_adds_the_eager_step_to_training_and_the_whole_compile_to_inference():
    parser = bench_models._parser()
    args = parser.parse_args(["--models", "s-tiny", "--no-streaming", "--compile"])
    bench_models._resolve(args, parser)
    plan = bench_models._plan(args, {"cases": [], "stream": []})
    assert plan["libraries"] == {
        "train": [report.REFERENCE, report.LIBRARY, report.EAGER],
        "infer": [report.REFERENCE, report.LIBRARY, bench_models.COMPILED],
    }


@pytest.mark.parametrize("library, compiled", [(report.LIBRARY, True), (report.EAGER, False)])
def test_the_library_row_times_the_compiled_training_step(monkeypatch, library, compiled):
    import mlx_train_step

    seen = []
    real = mlx_train_step.train_step
    monkeypatch.setattr(
        mlx_train_step,
        "train_step",
        lambda *a, compiled: seen.append(compiled) or real(*a, compiled=compiled),
    )
    step = bench_models._mlx_model(TINY, "train", library)
    step()
    step()
    assert seen == [compiled]


TINY = report.ModelSpec("tiny", "tiny", 3, (4, 4), 3, 40, 1, 0.0, None)


@pytest.mark.parametrize("mode", report.MODES)
def test_convolutions_alone_run_split_over_the_lanes(mode):
    step = bench_models._mlx_convs(TINY, mode)  # batch 1: split by time when lanes > 1
    step()
    step()


@pytest.mark.parametrize("mode", report.MODES)
def test_convolutions_alone_run_in_torch(mode):
    pytest.importorskip("torch")
    step = bench_models._torch_convs(TINY, mode)
    step()
    step()
