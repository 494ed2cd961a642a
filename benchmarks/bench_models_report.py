"""The pure half of ``bench_models.py``: the shapes, the statistics and the docs text.

Nothing here imports MLX or torch or measures anything, so that the way a claim is drawn
from the timings (per-round medians, their spread, a sign test over the rounds) and the
exact text written into ``docs/performance_models.md`` are tested on fixed numbers
(``tests/test_bench_models.py``). ``bench_models.py`` runs the workers and the rounds and
hands this module a plain, JSON-serialisable result dict:

* ``meta``: command, run time, commit, date, load, machine, threads, rounds, iterations,
  versions (including mlx-tcn's BLAS and kernel choice);
* ``gemm``: per round, OpenBLAS's 2048^3 sgemm rate through MLX (``threads``: one matmul
  with that many OpenBLAS threads; ``single``: one thread; ``lanes``: one single-threaded
  matmul per parallel lane at once), GFLOP/s;
* ``cases``: per (model, mode, library), the per-round median ms of the whole model
  (``ms``) and of the model's convolutions alone (``conv_ms``, absent for variants);
* ``stream``: per (streaming model, case), the per-round median us of one step.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REFERENCE = "pytorch-tcn"
LIBRARY = "mlx-tcn"  # training: the step compiled, as ``mlx-tcn train`` runs it
EAGER = "mlx-tcn (eager step)"  # training only: the same step without ``mx.compile``
MODES = ("train", "infer")
MODE_TITLES = {"train": "training step", "infer": "inference"}
ALPHA = 0.05  # a verdict needs a two-sided sign test over the rounds at this level
WIDE = 64  # from this many channels the convolutions' GEMMs dominate: the stricter goal
GOAL_RATIO = 1.0
GOAL_RATIO_WIDE = 0.8
GOAL_STREAM_SPEEDUP = 10.0  # batch-1 step against pytorch-tcn's at its best thread count
GOAL_STREAM_PER_ROW = 0.1  # batch-32 per-stream cost over the batch-1 step
CHART_ALT = "mlx-tcn's time over pytorch-tcn's per row: median and range of the rounds"
BEGIN = "<!-- bench_models:begin (written by benchmarks/bench_models.py) -->"
END = "<!-- bench_models:end -->"


# --------------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvLayer:
    """One convolution of a TCN: its channels, kernel and dilation (causal, stride 1)."""

    cin: int
    cout: int
    kernel: int
    dilation: int

    @property
    def padding(self) -> int:
        """Causal left padding: the input is ``length + padding`` steps long."""
        return (self.kernel - 1) * self.dilation


@dataclass(frozen=True)
class ModelSpec:
    """One benchmark model: a causal, weight-normalised TCN (dilations ``2**i``) and its batch."""

    key: str
    title: str
    num_inputs: int
    channels: tuple[int, ...]
    kernel_size: int
    length: int
    batch: int
    dropout: float
    classes: int | None  # a linear head on the last step (sMNIST) or sequence regression

    def conv_layers(self) -> list[ConvLayer]:
        """Every convolution of a forward, in order: two per block, plus a 1x1 downsample
        where a block changes the channel count."""
        layers, cin = [], self.num_inputs
        for i, c in enumerate(self.channels):
            layers.append(ConvLayer(cin, c, self.kernel_size, 2**i))
            layers.append(ConvLayer(c, c, self.kernel_size, 2**i))
            if cin != c:
                layers.append(ConvLayer(cin, c, 1, 1))
            cin = c
        return layers

    def conv_flops(self) -> int:
        """Forward FLOPs of every convolution: ``2*B*T*Cin*Cout*k``, downsamples included."""
        bt = 2 * self.batch * self.length
        return sum(bt * c.cin * c.cout * c.kernel for c in self.conv_layers())

    def mode_flops(self, mode: str) -> int:
        """Convolution FLOPs of one iteration: a training step counts forward, input
        gradient and weight gradient (x3)."""
        return self.conv_flops() * (3 if mode == "train" else 1)

    def goal(self) -> float:
        """Issue 14's goal for mlx-tcn's time over pytorch-tcn's on this shape."""
        return GOAL_RATIO_WIDE if min(self.channels) >= WIDE else GOAL_RATIO

    def shape(self) -> str:
        """``64 in, 6x128, k=3, T=1024, B=16``."""
        return (
            f"{self.num_inputs} in, {len(self.channels)}x{self.channels[0]}, "
            f"k={self.kernel_size}, T={self.length}, B={self.batch}"
        )

    def describe(self) -> str:
        """One line for the docs: the shape, the loss and the FLOPs."""
        loss = (
            f"linear head on the last step + cross-entropy ({self.classes} classes)"
            if self.classes
            else "MSE on the whole output sequence"
        )
        return (
            f"**{self.title}** ({self.shape()}): causal, weight norm, dropout {self.dropout}, "
            f"{loss}; {self.conv_flops() / 1e9:.2f} GFLOP of convolutions per forward"
        )


MODELS = {
    "smnist": ModelSpec("smnist", "sMNIST (paper)", 1, (25,) * 8, 7, 784, 64, 0.05, 10),
    "mid": ModelSpec("mid", "mid-size", 64, (128,) * 6, 3, 1024, 16, 0.1, None),
}

# ``--grid``: shapes a user would train, chosen so that each end of every range (width
# 16-256, depth 4-12, kernel 2-8, length 256-4096, batch 1-64) appears in at least one,
# with 8-13 GFLOP of convolutions per forward each (the mid-size model has 18.8), so that
# no shape dominates the run time.
GRID = {
    "g-narrow": ModelSpec("g-narrow", "narrow, long", 8, (16,) * 4, 8, 4096, 64, 0.1, None),
    "g-wide": ModelSpec("g-wide", "wide, batch 1", 16, (256,) * 8, 3, 2048, 1, 0.1, None),
    "g-deep": ModelSpec("g-deep", "deep, k=2", 32, (64,) * 12, 2, 4096, 8, 0.1, None),
    "g-short": ModelSpec("g-short", "short, batch 64", 64, (64,) * 6, 5, 256, 64, 0.1, None),
    "g-mid": ModelSpec("g-mid", "10 levels, k=4", 32, (128,) * 10, 4, 1024, 4, 0.1, None),
}
# ``--small``: small models at batch 1, where a forward costs per MLX operation more than
# per FLOP (0.002-0.2 GFLOP of convolutions per forward): the user-like shapes on which
# mlx-tcn was furthest behind in session 16.
SMALL = {
    "s-tiny": ModelSpec("s-tiny", "tiny, batch 1", 16, (16,) * 4, 2, 256, 1, 0.1, None),
    "s-narrow": ModelSpec("s-narrow", "narrow, batch 1", 16, (16,) * 4, 8, 4096, 1, 0.1, None),
    "s-64": ModelSpec("s-64", "64 channels, batch 1", 64, (64,) * 6, 4, 512, 1, 0.1, None),
}
ALL_MODELS = {**MODELS, **GRID, **SMALL}


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """The median of per-round values and their range over the rounds."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("values must hold at least one round, got none")
        return cls(statistics.median(values), min(values), max(values))

    def scaled(self, factor: float) -> Spread:
        return Spread(self.median * factor, self.low * factor, self.high * factor)

    def text(self, digits: int) -> str:
        """``1.23 (1.10-1.31)``; a single round shows its value only."""
        if self.low == self.high:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def per_round_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """``numerator[r] / denominator[r]`` for each round ``r`` (both measured in that round)."""
    if len(numerator) != len(denominator):
        raise ValueError(
            f"both sides need one value per round, got {len(numerator)} and {len(denominator)}"
        )
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def sign_test_p(below: int, above: int) -> float:
    """Two-sided sign test: the chance of a split at least this uneven between ``below``
    and ``above`` if each round fell on either side with probability 1/2 (ties left out)."""
    n = below + above
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(below, above) + 1)) / 2**n
    return min(1.0, 2 * tail)


def side(values: Sequence[float], threshold: float, alpha: float = ALPHA) -> str:
    """``"below"`` or ``"above"`` when the rounds put the values on that side of
    ``threshold`` beyond chance (sign test at ``alpha``), else ``"unclear"``.

    With 6 rounds every round must agree (p = 2/64); with 10, nine of them. A single slow
    round of a shared machine cannot make a claim, and a claim needs enough rounds: with 5
    or fewer none is ever made.
    """
    below = sum(v < threshold for v in values)
    above = sum(v > threshold for v in values)
    if sign_test_p(below, above) > alpha:
        return "unclear"
    return "below" if below > above else "above"


def verdict(ratios: Sequence[float]) -> str:
    """mlx-tcn's time over pytorch-tcn's, per round: ``faster``, ``slower`` or
    ``no clear difference``."""
    return {"below": "faster", "above": "slower", "unclear": "no clear difference"}[
        side(ratios, 1.0)
    ]


def goal_status(values: Sequence[float], goal: float, *, at_most: bool = True) -> str:
    """``met``, ``not met`` or ``unclear`` for a goal "at most ``goal``" (or at least)."""
    where = side(values, goal)
    if where == "unclear":
        return "unclear"
    return "met" if (where == "below") == at_most else "not met"


# --------------------------------------------------------------------------------------------
# rows drawn from a result set
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseRow:
    """One (model, mode, library) compared with pytorch-tcn over the rounds."""

    model: ModelSpec
    mode: str
    library: str
    ms: Spread
    ref_ms: Spread
    ratio: Spread
    verdict: str
    goal: float
    goal_status: str


def _cases(results: dict) -> dict[tuple[str, str, str], dict]:
    return {(c["model"], c["mode"], c["library"]): c for c in results["cases"]}


def _groups(results: dict) -> list[tuple[str, str]]:
    """(model, mode) in the order the run measured them."""
    seen: list[tuple[str, str]] = []
    for c in results["cases"]:
        if (c["model"], c["mode"]) not in seen:
            seen.append((c["model"], c["mode"]))
    return seen


def case_rows(results: dict) -> list[CaseRow]:
    """Every non-reference library of every (model, mode), against pytorch-tcn."""
    cases = _cases(results)
    rows = []
    for model, mode in _groups(results):
        ref = cases[(model, mode, REFERENCE)]["ms"]
        spec = ALL_MODELS[model]
        for (m, md, library), case in cases.items():
            if (m, md) != (model, mode) or library == REFERENCE:
                continue
            ratios = per_round_ratios(case["ms"], ref)
            rows.append(
                CaseRow(
                    spec,
                    mode,
                    library,
                    Spread.of(case["ms"]),
                    Spread.of(ref),
                    Spread.of(ratios),
                    verdict(ratios),
                    spec.goal(),
                    goal_status(ratios, spec.goal()),
                )
            )
    return rows


# --------------------------------------------------------------------------------------------
# docs text
# --------------------------------------------------------------------------------------------


def time_table(rows: Sequence[CaseRow]) -> str:
    lines = [
        "| model | mode | library | ms | pytorch-tcn ms | time / pytorch-tcn's | verdict "
        "| goal | met |",
        "|---|---|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model.title} | {r.mode} | {r.library} | {r.ms.text(1)} | {r.ref_ms.text(1)} "
            f"| {r.ratio.text(2)} | {r.verdict} | <= {r.goal:.1f} | {r.goal_status} |"
        )
    return "\n".join(lines)


def _gflops(spec: ModelSpec, mode: str, ms: Sequence[float]) -> float:
    return spec.mode_flops(mode) / (statistics.median(ms) / 1e3) / 1e9


def rate_table(results: dict) -> str:
    """Achieved convolution GFLOP/s of each library, whole model and convolutions alone,
    against the best rate on those convolutions and OpenBLAS's large-GEMM rate."""
    cases = _cases(results)
    peak = statistics.median(results["gemm"]["threads"])
    lines = [
        "| model | mode | GFLOP | pytorch-tcn | mlx-tcn | convolutions alone: torch "
        "| convolutions alone: mlx-tcn | mlx-tcn / best alone | mlx-tcn / OpenBLAS 2048^3 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, mode in _groups(results):
        spec = ALL_MODELS[model]
        ref, lib = cases[(model, mode, REFERENCE)], cases[(model, mode, LIBRARY)]
        whole = [_gflops(spec, mode, c["ms"]) for c in (ref, lib)]
        alone = [_gflops(spec, mode, c["conv_ms"]) for c in (ref, lib)]
        lines.append(
            f"| {spec.title} | {mode} | {spec.mode_flops(mode) / 1e9:.1f} | {whole[0]:.0f} "
            f"| {whole[1]:.0f} | {alone[0]:.0f} | {alone[1]:.0f} "
            f"| {100 * whole[1] / max(alone):.0f}% | {100 * whole[1] / peak:.0f}% |"
        )
    return "\n".join(lines)


STREAM_CASES = ("pytorch-tcn, 1 thread", "pytorch-tcn, 2 threads", "batch 1", "batch 32")


@dataclass(frozen=True)
class StreamRow:
    """One streaming model: mlx-tcn's ``stream_step`` against pytorch-tcn's streaming."""

    title: str
    torch_1: Spread
    torch_2: Spread
    best_threads: int
    step_1: Spread
    step_32: Spread
    speedup: Spread
    speedup_status: str
    per_row: Spread
    per_row_status: str


def stream_rows(results: dict) -> list[StreamRow]:
    """Per streaming model: the per-round speed-up of a batch-1 step over pytorch-tcn's
    faster thread count in that round, and the batch-32 cost per stream over the batch-1
    step."""
    by_model: dict[str, dict[str, list[float]]] = {}
    titles: dict[str, str] = {}
    for s in results.get("stream", []):
        by_model.setdefault(s["model"], {})[s["case"]] = s["us"]
        titles[s["model"]] = s["title"]
    rows = []
    for model, us in by_model.items():
        best_ref = [
            min(a, b) for a, b in zip(us[STREAM_CASES[0]], us[STREAM_CASES[1]], strict=True)
        ]
        speedup = per_round_ratios(best_ref, us["batch 1"])
        per_row = per_round_ratios([v / 32 for v in us["batch 32"]], us["batch 1"])
        one, two = (statistics.median(us[c]) for c in STREAM_CASES[:2])
        rows.append(
            StreamRow(
                titles[model],
                Spread.of(us[STREAM_CASES[0]]),
                Spread.of(us[STREAM_CASES[1]]),
                1 if one <= two else 2,
                Spread.of(us["batch 1"]),
                Spread.of(us["batch 32"]),
                Spread.of(speedup),
                goal_status(speedup, GOAL_STREAM_SPEEDUP, at_most=False),
                Spread.of(per_row),
                goal_status(per_row, GOAL_STREAM_PER_ROW),
            )
        )
    return rows


def stream_table(rows: Sequence[StreamRow]) -> str:
    lines = [
        "| model | pytorch-tcn, 1 thread, us | pytorch-tcn, 2 threads, us | pytorch-tcn's best "
        "| `stream_step`, batch 1, us | speed-up over pytorch-tcn's best | goal >= 10x "
        "| `stream_step`, batch 32, us | per stream / batch-1 step | goal <= 0.1 |",
        "|---|---:|---:|---|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        best = f"{r.best_threads} thread" + ("s" if r.best_threads > 1 else "")
        lines.append(
            f"| {r.title} | {r.torch_1.text(0)} | {r.torch_2.text(0)} | {best} "
            f"| {r.step_1.text(0)} "
            f"| {r.speedup.text(1)}x ({r.speedup.median / GOAL_STREAM_SPEEDUP:.2f} of the goal) "
            f"| {r.speedup_status} | {r.step_32.text(0)} | {r.per_row.text(3)} "
            f"| {r.per_row_status} |"
        )
    return "\n".join(lines)


def _names(rows: Sequence[CaseRow]) -> str:
    titles = [r.model.title for r in rows]
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]


def _by_verdict(rows: Sequence[CaseRow]) -> str:
    """``faster on A; slower on B and C``: the rows named under each verdict."""
    return "; ".join(
        f"{word} on {_names(hits)}"
        for word in ("faster", "slower", "no clear difference")
        if (hits := [r for r in rows if r.verdict == word])
    )


def summary(rows: Sequence[CaseRow], streams: Sequence[StreamRow], rounds: int) -> str:
    """The summary, drawn from the verdicts and goal statuses only."""
    lines = []
    mine = [r for r in rows if r.library == LIBRARY]
    for mode in MODES:
        if verdicts := _by_verdict([r for r in mine if r.mode == mode]):
            title = MODE_TITLES[mode].capitalize()
            lines.append(f"- {title}, mlx-tcn against pytorch-tcn: {verdicts}.")
    if verdicts := _by_verdict([r for r in rows if r.library == EAGER]):
        lines.append(
            f"- Training step without `mx.compile` (a user's eager loop), against "
            f"pytorch-tcn: {verdicts}."
        )
    if mine:
        counts = []
        for status in ("not met", "unclear"):
            hits = [f"{r.model.title} {r.mode}" for r in mine if r.goal_status == status]
            if hits:
                counts.append(f"{status} on {len(hits)} ({', '.join(hits)})")
        met = sum(r.goal_status == "met" for r in mine)
        lines.append(
            f"- Issue 14's goal (time at most {GOAL_RATIO:.1f}x pytorch-tcn's, "
            f"{GOAL_RATIO_WIDE:.1f}x from {WIDE} channels) is met on {met} of {len(mine)} rows"
            + "".join(f"; {c}" for c in counts)
            + "."
        )
    for s in streams:
        lines.append(
            f"- Streaming, {s.title}: a batch-1 `stream_step` is {s.speedup.median:.1f}x "
            f"faster than pytorch-tcn's streaming at its best thread count (goal 10x: "
            f"{s.speedup_status}); at batch 32 one stream costs {s.per_row.median:.3f} of a "
            f"batch-1 step (goal at most 0.1: {s.per_row_status})."
        )
    lines.append(
        f"- A verdict needs the rounds to agree beyond chance (two-sided sign test over "
        f"{_plural(rounds, 'alternated round')}, p <= {ALPHA}; with 5 rounds "
        f'or fewer there is none); otherwise the row says "no clear difference" or "unclear".'
    )
    return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    """``1 round``, ``6 rounds``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def _gemm_line(results: dict) -> str:
    g = results["gemm"]
    threads = results["meta"]["threads"]
    parts = [
        f"**{Spread.of(g['threads']).text(0)} GFLOP/s** with {_plural(threads, 'OpenBLAS thread')}"
    ]
    parts.append(f"{Spread.of(g['single']).text(0)} single-threaded")
    if g.get("lanes"):
        parts.append(f"{Spread.of(g['lanes']).text(0)} as one single-threaded matmul per lane")
    return (
        "OpenBLAS's large-GEMM rate (a 2048^3 `float32` matmul through MLX, best of 5, "
        "median over the rounds with their range): " + "; ".join(parts) + "."
    )


def section(results: dict) -> str:
    """The whole generated block of ``docs/performance_models.md``."""
    meta, v = results["meta"], results["meta"]["versions"]
    rows, streams = case_rows(results), stream_rows(results)
    models = dict.fromkeys(m for m, _ in _groups(results))
    specs = "\n".join(f"- {ALL_MODELS[m].describe()}" for m in models)
    out = [
        "### Summary (generated from the verdicts below)",
        "",
        summary(rows, streams, meta["rounds"]),
        "",
        "### Run",
        "",
        f"Command: `{meta['command']}` ({meta['elapsed_s']:.0f} s), commit `{meta['commit']}`, "
        f"{meta['date']}; 1-min load average {meta['load'][0]:.1f} before, "
        f"{meta['load'][1]:.1f} after.",
        "",
        f"Machine: {meta['machine']}. Threads: {meta['threads']} for both libraries "
        f"(`torch.set_num_threads({meta['threads']})`; `MLX_TCN_THREADS`, `OMP_NUM_THREADS`, "
        f"`OPENBLAS_NUM_THREADS` = {meta['threads']}).",
        "",
        f"Versions: mlx {v['mlx']} ({v['device']}), mlx-tcn {v['mlx-tcn']}, torch {v['torch']}, "
        f"pytorch-tcn {v['pytorch-tcn']}, numpy {v['numpy']}. MLX's BLAS: {v['blas']}; "
        f"kernels (`mlx-tcn info` blas_core): {v['blas_core']}; mlx-tcn lanes: {v['lanes']}.",
        "",
        _gemm_line(results),
        "",
        specs,
        "",
        f"Method: {_plural(meta['rounds'], 'round')}; in each, every library runs each case in its own "
        f"fresh process, the libraries in alternating order (reversed every other round); a "
        f"process runs {_plural(meta['warmup'], 'warm-up iteration')}, then "
        f"{_plural(meta['iters'], 'timed iteration')}, and "
        f"reports their median. A cell shows the median over the rounds and, in brackets, the "
        f"lowest and highest round. The time ratio is the median of the per-round ratios "
        f"(both libraries measured in the same round). Training = forward + backward + Adam "
        f"update: mlx-tcn's through `mx.compile` over the model, optimizer and random states, "
        f"as `mlx-tcn train` runs it (the warm-up includes the trace), and the same step "
        f"without it in the `{EAGER}` rows; inference = forward in eval mode "
        f"(`torch.inference_mode()`); every MLX iteration ends in `mx.eval`. Goal: issue 14's (at most {GOAL_RATIO:.1f}x, "
        f"{GOAL_RATIO_WIDE:.1f}x from {WIDE} channels).",
        "",
        time_table(rows),
        "",
        f"![{CHART_ALT}](img/bench_models_rounds.png)",
        "",
        "Convolution GFLOP/s (counted analytically, `2*B*T*Cin*Cout*k` per convolution, 1x1 "
        "downsamples included, x3 for a training step; medians over the rounds). "
        '"Convolutions alone": the same process, after the model, times only the model\'s '
        "convolutions with their per-layer shapes on already padded inputs: "
        "`torch.nn.functional.conv1d` for torch, `mlx_tcn.ops.conv1d` split over the lanes "
        "for mlx-tcn (forward, or forward + backward for training). The last two columns: "
        "mlx-tcn's whole-model rate over the better of the two, and over the multi-threaded "
        "2048^3 sgemm rate above.",
        "",
        rate_table(results),
    ]
    if streams:
        out += [
            "",
            f"Streaming ({meta['stream_steps']} timed steps per process after 20 warm-up "
            f"ones, same rounds), the models of `benchmarks/bench_streaming.py` (8 levels, "
            f"dilations 1-128, eval mode, weight norm): mlx-tcn's `model.stream_step()` "
            f"(compiled, weight norm folded) at batch 1 and 32, pytorch-tcn's "
            f"`model(x, inference=True)` (batch 1 only) at 1 and 2 threads. The speed-up "
            f"is per round over pytorch-tcn's faster thread count in that round (its overall "
            f"faster count is the one with the lower median).",
            "",
            stream_table(streams),
        ]
    return "\n".join(out) + "\n"


def replace_block(text: str, block: str) -> str:
    """``text`` with the part between the markers replaced by ``block`` (appended, with the
    markers, when they are missing)."""
    wrapped = f"{BEGIN}\n{block.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + wrapped + rest.split(END, 1)[1]
    return text.rstrip() + "\n\n" + wrapped + "\n"


def write_doc(path: Path, block: str) -> None:
    """Write ``block`` between the markers of ``path`` (created if missing)."""
    text = path.read_text() if path.exists() else "# Whole-model performance\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_block(text, block))
