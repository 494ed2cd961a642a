"""Tasks: losses with exact values, user-data forecasting and classification, saved statistics."""

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlx_tcn.train import build_task, resolve_config
from mlx_tcn.train.losses import _loss_sum, evaluate_split, head, loss_fn
from mlx_tcn.train.predict import prepare_user_inputs
from mlx_tcn.train.user_data import denormalize_targets


class Constant(nn.Module):
    """Returns a fixed output whatever the input."""

    def __init__(self, out):
        super().__init__()
        self._out = mx.array(out)

    def __call__(self, x):
        return self._out


def test_regression_last_uses_the_last_step():
    out = mx.array([[[9.0], [1.0]], [[9.0], [3.0]]])  # (2, 2, 1)
    total, count = _loss_sum("regression_last", out, mx.array([[0.0], [1.0]]), None)
    assert (total.item(), count.item()) == (5.0, 2.0)  # (1 - 0)^2 + (3 - 1)^2


def test_cross_entropy_last_and_all():
    logits = mx.array([[[0.0, 0.0], [0.0, math.log(3.0)]]])  # (1, 2, 2)
    total, count = _loss_sum("class_last", logits, mx.array([1]), None)
    assert math.isclose(total.item(), -math.log(0.75), rel_tol=1e-6) and count.item() == 1
    total, count = _loss_sum("class_all", logits, mx.array([[0, 1]]), None)
    assert (
        math.isclose(total.item(), math.log(2) - math.log(0.75), rel_tol=1e-6) and count.item() == 2
    )


def test_sequence_heads_pool_over_the_real_steps_of_a_mask():
    # Before, the mean and the last step included the padding after a shorter sequence.
    out = mx.array([[[1.0, 10.0], [3.0, 20.0], [100.0, 0.0], [100.0, 0.0]],
                    [[2.0, 4.0], [4.0, 8.0], [6.0, 0.0], [8.0, 4.0]]])  # fmt: skip
    mask = mx.array([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])  # lengths 2 and 4
    assert np.array(head("class_mean", out, mask)).tolist() == [[2.0, 15.0], [5.0, 4.0]]
    assert np.array(head("class_last", out, mask)).tolist() == [[3.0, 20.0], [8.0, 4.0]]
    assert np.array(head("class_mean", out)).tolist() == [[51.0, 7.5], [5.0, 4.0]]  # no mask
    assert np.array(head("class_last", out)).tolist() == [[100.0, 0.0], [8.0, 4.0]]
    # the loss and the evaluation read the masked head: class 1 of (2, 15) and class 0 of (5, 4)
    model = Constant(out)
    y = mx.array([1, 0])
    expected = (math.log1p(math.exp(2 - 15)) + math.log1p(math.exp(4 - 5))) / 2
    assert math.isclose(loss_fn("class_mean")(model, None, y, mask).item(), expected, rel_tol=1e-5)
    metrics = evaluate_split(model, "class_mean", [(None, y, mask)])
    assert metrics["accuracy"] == 1.0 and math.isclose(metrics["loss"], expected, rel_tol=1e-5)
    assert evaluate_split(model, "class_mean", [(None, y, None)])["accuracy"] == 0.5


def test_polyphonic_nll_sums_keys_and_averages_unmasked_frames():
    out = mx.zeros((1, 3, 4))  # p = 0.5 everywhere: NLL of a frame = 4 ln 2
    y = mx.zeros((1, 3, 4))
    mask = mx.array([[1.0, 1.0, 0.0]])
    model = Constant(out)
    loss = loss_fn("multilabel_all")(model, None, y, mask)
    assert math.isclose(loss.item(), 4 * math.log(2), rel_tol=1e-6)
    total, count = _loss_sum("multilabel_all", out, y, mask)
    assert math.isclose(total.item(), 8 * math.log(2), rel_tol=1e-6) and count.item() == 2


def test_evaluate_split_accuracy():
    model = Constant([[[0.0, 1.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
    batches = [(mx.zeros((3, 1, 1)), mx.array([1, 1, 0]), None)]
    metrics = evaluate_split(model, "class_last", batches)
    assert math.isclose(metrics["accuracy"], 2 / 3)
    with pytest.raises(ValueError, match="evaluation got no batches"):
        evaluate_split(model, "class_last", [])


def test_builtin_task_shapes_and_baselines():
    adding = build_task(resolve_config({}, {"seq_len": 12, "n_train": 8, "n_val": 4}))
    assert (adding.kind, adding.num_inputs, adding.num_outputs) == ("regression_last", 2, 1)
    assert adding.train.x.shape == (8, 12, 2) and math.isclose(adding.baseline, 1 / 6)
    copy = build_task(
        resolve_config({}, {"task": "copy_memory", "seq_len": 30, "n_train": 8, "n_val": 4})
    )
    assert (copy.kind, copy.num_inputs, copy.num_outputs) == ("class_all", 1, 10)
    assert copy.train.x.shape == (8, 50, 1)
    assert math.isclose(copy.baseline, 10 * math.log(8) / 50)
    # The validation data differs from the training data but is fixed by the seed.
    assert not np.array_equal(adding.train.x[:4], adding.val.x)
    again = build_task(resolve_config({}, {"seq_len": 12, "n_train": 8, "n_val": 4}))
    np.testing.assert_array_equal(again.val.x, adding.val.x)


def _series_csv(path, n=60):
    t = np.arange(n)
    rows = ["time,load,temp"] + [f"{i},{10 + math.sin(i / 3):.6f},{20 + i * 0.5:.6f}" for i in t]
    path.write_text("\n".join(rows) + "\n")


def test_forecast_windows_split_and_normalisation(tmp_path):
    _series_csv(tmp_path / "s.csv")
    cfg = resolve_config({}, {"task": "forecast", "data_path": str(tmp_path / "s.csv"), "seq_len": 8,
                              "horizon": 2, "input_columns": ["load", "temp"],
                              "target_columns": ["load"], "val_fraction": 0.25,
                              "relative": False})  # fmt: skip
    task = build_task(cfg)
    # horizon 2: both steps ahead are predicted (before: only the second), one output each
    assert (task.kind, task.num_inputs, task.num_outputs) == ("regression_last", 2, 2)
    st = task.stats
    assert st["input_columns"] == ["load", "temp"] and st["target_columns"] == ["load"]
    assert st["steps"] == [1, 2]
    # Statistics come from the training part only (first 45 rows).
    temp = 20 + np.arange(45) * 0.5
    assert math.isclose(st["x_mean"][1], temp.mean(), rel_tol=1e-5)
    assert math.isclose(st["x_std"][1], temp.std(), rel_tol=1e-4)
    assert len(task.train) == 45 - 8 - 2 + 1
    # validation: the windows whose two targets both lie in the last 15 rows
    assert len(task.val) == 15 - 2 + 1 and task.val.rows[0] == 44
    # Targets are normalised; denormalising gives back the CSV values of rows 8 and 9.
    raw = 10 + np.sin(np.array([8, 9]) / 3)
    np.testing.assert_allclose(denormalize_targets(task.train.y[0], st), raw, rtol=1e-5)
    # Prediction reapplies the saved statistics to a new file.
    x, extras = prepare_user_inputs(tmp_path / "s.csv", st, "regression_last")
    assert x.shape == (60 - 8 + 1, 8, 2)
    np.testing.assert_allclose(x[0], task.train.x[0], rtol=1e-5, atol=1e-6)
    assert extras["ends"][0] == 7 and extras["rows"][0].tolist() == [8, 9]
    assert extras["targets"].shape == (60, 1)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"target_columns": ["nope"]}, "target column 'nope' not in"),
        ({"input_columns": ["time", "x"]}, "input column 'x' not in"),
        ({"seq_len": 50}, r"training part \(48 rows\) is shorter than seq_len \+ horizon = 51"),
    ],
)
def test_forecast_bad_input(tmp_path, values, match):
    _series_csv(tmp_path / "s.csv")
    cfg = resolve_config({}, {"task": "forecast", "data_path": str(tmp_path / "s.csv"), **values})
    with pytest.raises(ValueError, match=match):
        build_task(cfg)


def test_forecast_from_npz_without_normalisation(tmp_path):
    np.savez(tmp_path / "s.npz", a=np.arange(40.0), b=np.ones(40))
    cfg = resolve_config({}, {"task": "forecast", "data_path": str(tmp_path / "s.npz"), "seq_len": 5,
                              "target_columns": ["a"], "normalize": False})  # fmt: skip
    task = build_task(cfg)
    assert task.num_inputs == 2 and "x_mean" not in task.stats
    np.testing.assert_array_equal(task.train.x[1, :, 0], [1, 2, 3, 4, 5])
    assert task.train.y[1, 0] == 6


def test_classify_from_csv_rows_and_npz(tmp_path):
    rows = ["label,t0,t1,t2,t3"] + [
        f"{'up' if i % 2 else 'down'},{i},{i + 1},{i + 2},{i + 3}" for i in range(20)
    ]
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    cfg = resolve_config({}, {"task": "classify", "data_path": str(tmp_path / "c.csv"),
                              "target_columns": ["label"], "val_fraction": 0.25})  # fmt: skip
    task = build_task(cfg)
    assert (task.kind, task.num_inputs, task.num_outputs) == ("class_mean", 1, 2)  # pool="mean"
    assert task.stats["classes"] == ["down", "up"] and task.stats["input_columns"] == [
        "t0",
        "t1",
        "t2",
        "t3",
    ]
    assert (len(task.train), len(task.val)) == (16, 4)  # round(10 * 0.25) = 2 of each class
    # The baseline is the majority class: the training frequencies (add-one smoothed) scored
    # on the validation labels.
    train_counts = np.bincount(task.train.y, minlength=2)
    assert task.stats["class_counts"] == train_counts.tolist()
    prior = (train_counts + 1) / (train_counts.sum() + 2)
    assert math.isclose(task.baseline, -np.mean(np.log(prior[task.val.y])), rel_tol=1e-6)
    assert task.baselines["majority_class"] == task.baseline
    x, _ = prepare_user_inputs(tmp_path / "c.csv", task.stats, "class_last")
    assert x.shape == (20, 4, 1)
    np.savez(
        tmp_path / "c.npz", x=np.random.default_rng(0).normal(size=(10, 6, 3)), y=np.arange(10) % 3
    )
    task = build_task(
        resolve_config({}, {"task": "classify", "data_path": str(tmp_path / "c.npz")})
    )
    assert task.num_inputs == 3 and task.num_outputs == 3 and task.train.x.shape[1:] == (6, 3)


@pytest.mark.parametrize(
    ("content", "values", "match"),
    [
        (
            "label,a\nx,1\nx,2\n",
            {"target_columns": ["label"]},
            r"need at least 2 classes, found \['x'\]",
        ),
        ("label,a\nx,1\ny,2\n", {}, "needs exactly one label column"),
        (
            "label,a\nx,1\ny,oops\n",
            {"target_columns": ["label"]},
            "column 'a' of .* is not numeric",
        ),
    ],
)
def test_classify_bad_input(tmp_path, content, values, match):
    (tmp_path / "c.csv").write_text(content)
    cfg = resolve_config({}, {"task": "classify", "data_path": str(tmp_path / "c.csv"), **values})
    with pytest.raises(ValueError, match=match):
        build_task(cfg)


def test_classify_npz_needs_x_and_y(tmp_path):
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 3)))
    cfg = resolve_config({}, {"task": "classify", "data_path": str(tmp_path / "c.npz")})
    with pytest.raises(ValueError, match="must hold arrays 'x'"):
        build_task(cfg)


@pytest.mark.parametrize("task", ["adding", "copy_memory"])
def test_the_shape_table_is_the_shape_of_the_generated_data(task):
    from mlx_tcn.train.tasks import TASK_SHAPES, task_shape

    cfg = resolve_config({"task": task, "n_train": 4, "n_val": 2, "seq_len": 10})
    data = build_task(cfg)
    kind, n_in, n_out = TASK_SHAPES[task]
    assert (data.kind, data.num_inputs, data.num_outputs) == (kind, n_in, n_out)
    assert task_shape(cfg) == (n_in, n_out) and data.train.x.shape[-1] == n_in
    y = np.array(data.train.y)
    assert (y.shape[-1] == n_out) if kind == "regression_last" else (y.max() < n_out)


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("data", "iterate_batches", "split"),
        ("data", "Split", "split"),
        ("data", "load_mnist", "tasks"),
        ("data", "make_windows", "user_data"),
        ("tasks", "evaluate_split", "losses"),
        ("tasks", "TaskData", "split"),
        ("tasks", "prepare_user_inputs", "predict"),
        ("tasks", "denormalize_targets", "user_data"),
        ("runner", "predict_split", "predict"),
    ],
)
def test_names_moved_by_the_restructure_keep_their_old_import_path(old, name, new):
    import importlib

    before = importlib.import_module(f"mlx_tcn.train.{old}")
    after = importlib.import_module(f"mlx_tcn.train.{new}")
    assert getattr(before, name) is getattr(after, name)
    with pytest.raises(AttributeError, match=f"mlx_tcn.train.{old}' has no attribute 'nope'"):
        before.nope  # noqa: B018


def test_forecast_windows_relative_to_their_last_row(tmp_path):
    # The default: inputs and targets relative to each window's last row, scaled by the
    # training part's typical change; denormalising gives back the CSV's values.
    _series_csv(tmp_path / "s.csv")
    cfg = resolve_config({}, {"task": "forecast", "data_path": str(tmp_path / "s.csv"), "seq_len": 8,
                              "horizon": 2, "input_columns": ["load", "temp"],
                              "target_columns": ["load"], "val_fraction": 0.25})  # fmt: skip
    task = build_task(cfg)
    st = task.stats
    assert st["relative"] and "x_mean" not in st
    load = 10 + np.sin(np.arange(60) / 3)
    temp = 20 + np.arange(60) * 0.5
    # scales: step h's is the std of h-step changes over the training part (45 rows); the
    # inputs' that of 1-step changes (temp's are all 0.5: std 0 -> left unscaled)
    s1, s2 = np.std(load[1:45] - load[:44]), np.std(load[2:45] - load[:43])
    np.testing.assert_allclose(st["y_scale"], [[s1], [s2]], rtol=1e-5)
    assert math.isclose(st["x_scale"][0], s1, rel_tol=1e-5) and st["x_scale"][1] == 1.0
    np.testing.assert_allclose(task.train.x[0, :, 1], temp[:8] - temp[7], atol=1e-6)
    expected = [(load[8] - load[7]) / s1, (load[9] - load[7]) / s2]
    np.testing.assert_allclose(task.train.y[0], expected, rtol=1e-5)
    # validation: windows ending at rows 44..57, whose targets are rows 45..59; back in the
    # data's units with the reference: the anchor's forecasts (persistence: the last value,
    # at both steps; the cycle of about 19 rows does not fit in the window of 8)
    assert st["anchor"] == task.anchor == "persistence"
    np.testing.assert_allclose(task.val.reference, np.repeat(load[44:58, None, None], 2, 1),
                               rtol=1e-6)  # fmt: skip
    restored = denormalize_targets(task.val.y, st, task.val.reference)
    np.testing.assert_allclose(restored, np.column_stack([load[45:59], load[46:60]]), rtol=1e-5)
    # baselines in the loss's units: persistence repeats the reference at both steps, each
    # step divided by its own scale; their forecasts for the plot, flat like the targets
    step1 = np.mean(((load[45:59] - load[44:58]) / s1) ** 2)
    step2 = np.mean(((load[46:60] - load[44:58]) / s2) ** 2)
    assert math.isclose(task.baselines["persistence"], (step1 + step2) / 2, rel_tol=1e-5)
    assert task.baseline == task.baselines["persistence"]
    np.testing.assert_allclose(task.val_forecasts["persistence"], np.repeat(load[44:58, None], 2, 1),
                               rtol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="need each window's anchor forecasts"):
        denormalize_targets(task.val.y, st)


def test_forecast_default_inputs_leave_out_text_columns(tmp_path):
    # A date column is not an input (before: "column 'date' ... is not numeric").
    rows = ["date,load"] + [f"2020-01-{i % 28 + 1:02d},{math.sin(i / 3):.4f}" for i in range(60)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    cfg = resolve_config({}, {"task": "forecast", "data_path": str(tmp_path / "s.csv"),
                              "target_columns": ["load"], "seq_len": 8})  # fmt: skip
    task = build_task(cfg)
    assert task.stats["input_columns"] == ["load"] and task.num_inputs == 1


def test_forecast_and_predict_fill_the_gaps_of_a_series(tmp_path, caplog):
    # statsmodels' weekly CO2 record, exported with pandas, has 59 empty cells: before, the
    # run stopped at "column 'co2' ... is not numeric". The gaps are filled once per column
    # (the target is also an input: one warning) and the task equals that of the filled file.
    t = np.arange(80)
    co2 = 300 + 0.1 * t + np.sin(2 * np.pi * t / 13)
    dates = [f"{1958 + i // 52}-w{i % 52}" for i in t]
    gaps = {0, 17, 18, 19, 50, 79}
    filled = co2.copy()
    filled[0], filled[79] = co2[1], co2[78]
    filled[17:20] = np.interp([17, 18, 19], [16, 20], co2[[16, 20]])
    filled[50] = (co2[49] + co2[51]) / 2
    for name, values, blank in (("gaps.csv", co2, gaps), ("filled.csv", filled, set())):
        rows = [
            f"{d},{'' if i in blank else f'{v:.6f}'}"
            for i, (d, v) in enumerate(zip(dates, values, strict=True))
        ]
        (tmp_path / name).write_text("date,co2\n" + "\n".join(rows) + "\n")
    tasks = []
    for name in ("gaps.csv", "filled.csv"):
        cfg = resolve_config({}, {"task": "forecast", "data_path": str(tmp_path / name),
                                  "target_columns": ["co2"], "seq_len": 16})  # fmt: skip
        with caplog.at_level("WARNING"):
            tasks.append(build_task(cfg))
    assert caplog.text.count("6 missing value(s) in column 'co2'") == 1
    gapped, full = tasks
    assert gapped.stats["input_columns"] == ["co2"]  # the column with gaps is still an input
    for split in ("train", "val"):
        np.testing.assert_allclose(getattr(gapped, split).x, getattr(full, split).x, atol=1e-5)
        np.testing.assert_allclose(getattr(gapped, split).y, getattr(full, split).y, atol=1e-5)
    x_gaps, extras = prepare_user_inputs(tmp_path / "gaps.csv", gapped.stats, "regression_last")
    x_full, _ = prepare_user_inputs(tmp_path / "filled.csv", gapped.stats, "regression_last")
    np.testing.assert_allclose(x_gaps, x_full, atol=1e-5)
    np.testing.assert_allclose(extras["targets"][:, 0], filled, rtol=1e-6)


def test_forecast_season_detected_or_given(tmp_path):
    t = np.arange(240)
    np.savez(tmp_path / "s.npz", y=np.sin(2 * np.pi * t / 12) + 0.01 * t)
    base = {"task": "forecast", "data_path": str(tmp_path / "s.npz"), "seq_len": 24}
    task = build_task(resolve_config({}, base))
    assert task.stats["season"] == 12
    # a clean season: seasonal naive misses only the trend over a season (0.12), persistence
    # misses the cycle's change over one step
    assert task.baselines["seasonal_naive"] < 0.2 * task.baselines["persistence"]
    assert build_task(resolve_config({}, {**base, "season": 7})).stats["season"] == 7
    np.savez(tmp_path / "n.npz", y=np.random.default_rng(0).normal(size=240))
    task = build_task(resolve_config({}, {**base, "data_path": str(tmp_path / "n.npz")}))
    assert task.stats["season"] is None and set(task.baselines) == {"persistence"}


def test_classify_on_saved_statistics_tests_the_whole_file(tmp_path):
    np.savez(
        tmp_path / "c.npz", x=np.random.default_rng(0).normal(size=(10, 6)), y=np.arange(10) % 2
    )
    cfg = resolve_config({}, {"task": "classify", "data_path": str(tmp_path / "c.npz")})
    task = build_task(cfg)
    assert task.test is None  # training: no test split
    again = build_task(cfg, stats=task.stats)
    assert len(again.test) == 10
    np.testing.assert_array_equal(again.test.y, np.arange(10) % 2)


def test_classify_multivariate_csv_in_the_long_layout(tmp_path):
    # One row per step: sequence id, label, two channels; rows of a sequence need not be
    # adjacent, their order within the sequence is the file order.
    rows = ["id,label,ax,ay"]
    for step in range(3):
        for seq, label in (("s1", "walk"), ("s2", "run"), ("s3", "walk")):
            k = int(seq[1])
            rows.append(f"{seq},{label},{10 * k + step},{-step}")
    (tmp_path / "long.csv").write_text("\n".join(rows) + "\n")
    cfg = resolve_config({}, {"task": "classify", "data_path": str(tmp_path / "long.csv"),
                              "target_columns": ["label"], "sequence_column": "id",
                              "val_fraction": 0.34, "normalize": False})  # fmt: skip
    task = build_task(cfg)
    assert task.num_inputs == 2 and task.stats["input_columns"] == ["ax", "ay"]
    assert task.stats["classes"] == ["run", "walk"] and task.stats["sequence_column"] == "id"
    x = np.concatenate([task.train.x, task.val.x])
    y = np.concatenate([task.train.y, task.val.y])
    by_first = {int(s[0, 0]): (s, label) for s, label in zip(x, y, strict=True)}
    np.testing.assert_array_equal(by_first[20][0], [[20, 0], [21, -1], [22, -2]])
    assert [by_first[k][1] for k in (10, 20, 30)] == [1, 0, 1]  # walk, run, walk
    x_pred, _ = prepare_user_inputs(tmp_path / "long.csv", task.stats, "class_mean")
    np.testing.assert_array_equal(x_pred[:, 0, 0], [10, 20, 30])  # file order of first rows


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (["a,x,1", "a,x,2", "b,y,3"], r"same number of rows; sequence 'b' has 1, 'a' has 2"),
        (
            ["a,x,1", "a,y,2", "b,y,3", "b,y,4"],
            r"sequence 'a' has more than one label in column 'label'",
        ),
        (["a,x,1"], "sequence column 'nope' not in"),
    ],
)
def test_classify_long_layout_errors(tmp_path, rows, match):
    (tmp_path / "long.csv").write_text("\n".join(["id,label,v", *rows]) + "\n")
    seq = "nope" if "nope" in match else "id"
    cfg = resolve_config({}, {"task": "classify", "data_path": str(tmp_path / "long.csv"),
                              "target_columns": ["label"], "sequence_column": seq})  # fmt: skip
    with pytest.raises(ValueError, match=match):
        build_task(cfg)


def test_stratified_split_holds_out_each_class_in_proportion():
    from mlx_tcn.train.user_data import stratified_split

    labels = np.array([0] * 12 + [1] * 12 + [2] * 12 + [3] * 3)
    tr, va = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(39))
    np.testing.assert_array_equal(np.bincount(labels[va]), [2, 2, 2, 1])  # round(0.6) = 1
    tr2, va2 = stratified_split(labels, 0.2, seed=0)
    np.testing.assert_array_equal(va, va2)  # fixed by the seed
    assert not np.array_equal(va, stratified_split(labels, 0.2, seed=1)[1])
    # a class of one keeps it for training; still one validation sequence overall
    tr, va = stratified_split(np.array([0, 1]), 0.2, seed=0)
    assert len(va) == 1 and len(tr) == 1


def test_a_long_validation_part_is_thinned_to_evenly_spaced_windows(tmp_path, monkeypatch):
    # A series of 100,000 rows has 20,000 validation windows, evaluated up to 40 times; they
    # are thinned to at most MAX_VAL_WINDOWS (here 5 of the 14), every k-th from the first,
    # with the baselines scored on the same windows.
    from mlx_tcn.train import user_data

    assert user_data.validation_stride(20_000, 512, [1]) == 20  # 19,489 windows -> 975
    assert user_data.validation_stride(457, 104, [1, 2]) == 1  # weekly CO2: all of them
    _series_csv(tmp_path / "s.csv")
    values = {"task": "forecast", "data_path": str(tmp_path / "s.csv"), "seq_len": 8,
              "horizon": 2, "target_columns": ["load"], "val_fraction": 0.25}  # fmt: skip
    full = build_task(resolve_config({}, values))
    monkeypatch.setattr(user_data, "MAX_VAL_WINDOWS", 5)
    thin = build_task(resolve_config({}, values))
    assert len(full.val) == 14 and thin.val.rows.tolist() == [44, 47, 50, 53, 56]
    np.testing.assert_array_equal(thin.val.x, full.val.x[::3])
    np.testing.assert_array_equal(thin.val_forecasts["persistence"],
                                  full.val_forecasts["persistence"][::3])  # fmt: skip
    load = 10 + np.sin(np.arange(60) / 3)
    s1, s2 = thin.stats["y_scale"][0][0], thin.stats["y_scale"][1][0]
    ends = np.array([44, 47, 50, 53, 56])
    expected = (np.mean(((load[ends + 1] - load[ends]) / s1) ** 2)
                + np.mean(((load[ends + 2] - load[ends]) / s2) ** 2)) / 2  # fmt: skip
    assert math.isclose(thin.baselines["persistence"], expected, rel_tol=1e-5)
    assert len(thin.train) == len(full.train)  # training keeps every window
