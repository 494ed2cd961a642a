"""The cross-validated ensemble of a small classification set (``folds``): its folds, its
budget, what predict/evaluate compute with it, and a run killed between its members."""

import json

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlx_tcn.cli import main
from mlx_tcn.train import load_checkpoint, losses, resolve_config, run_training
from mlx_tcn.train.budget import (
    ENSEMBLE_MAX_SEQUENCES,
    TARGET_STEPS,
    apply_auto,
    folds_for,
    steps_per_model,
)
from mlx_tcn.train.checkpoint import CheckpointError
from mlx_tcn.train.ensemble import ENSEMBLE_FILE, Ensemble, member_dir, stratified_folds
from mlx_tcn.train.losses import model_head
from mlx_tcn.train.model import build_model
from mlx_tcn.train.predict import evaluate_checkpoint, load_for_inference, predict
from mlx_tcn.train.runner import resume_config
from mlx_tcn.train.split import step_mask

# --------------------------------------------------------------------------- folds and budget


def test_folds_partition_every_class_evenly_and_follow_the_seed():
    labels = np.array([0] * 12 + [1] * 7 + [2] * 3)
    vals = [stratified_folds(labels, 5, seed=4, fold=k) for k in range(5)]
    every = np.sort(np.concatenate([v for _, v in vals]))
    assert every.tolist() == list(range(22))  # each sequence validates exactly one model
    for train, val in vals:
        assert sorted(np.concatenate([train, val]).tolist()) == list(range(22))
        assert set(np.bincount(labels[train], minlength=3)) and np.all(
            np.bincount(labels[train], minlength=3) >= 2
        )
    per_fold = np.array([np.bincount(labels[v], minlength=3) for _, v in vals])
    # 12 -> 3,3,2,2,2; 7 -> 2,2,1,1,1; 3 -> 1,1,1,0,0 (in some order): at most one apart
    assert (per_fold.max(axis=0) - per_fold.min(axis=0)).tolist() == [1, 1, 1]
    assert per_fold.sum(axis=0).tolist() == [12, 7, 3]
    # the small classes' odd ones go to different folds: no fold holds 3 + 2 + 1 of them
    assert sorted(per_fold.sum(axis=1).tolist()) == [4, 4, 4, 5, 5]
    again = stratified_folds(labels, 5, seed=4, fold=2)
    assert again[1].tolist() == vals[2][1].tolist()
    assert stratified_folds(labels, 5, seed=5, fold=2)[1].tolist() != vals[2][1].tolist()
    with pytest.raises(ValueError, match=r"fold must be in \[0, 5\), got 5"):
        stratified_folds(labels, 5, seed=0, fold=5)


def test_the_data_size_chooses_the_number_of_models_and_their_steps():
    assert [folds_for(n) for n in (4, 9, 10, 50, ENSEMBLE_MAX_SEQUENCES)] == [2, 4, 5, 5, 5]
    assert folds_for(ENSEMBLE_MAX_SEQUENCES + 1) == 1
    assert steps_per_model(1) == TARGET_STEPS
    assert steps_per_model(5) == 400 and steps_per_model(4) == 500  # 2,000 steps in all
    with pytest.raises(ValueError, match="n_sequences must be positive, got 0"):
        folds_for(0)
    # each of 5 models aims at 400 steps (32 training sequences, one step per epoch), and
    # stops after half of them without improvement (20 evaluations of 10 steps)
    cfg = resolve_config({}, {"task": "classify", "data_path": "c.npz", "folds": 5})
    out = apply_auto(cfg, n_train=32, seq_len=24)
    assert (out.epochs, out.eval_every, out.patience) == (400, 10, 20)
    one = apply_auto(resolve_config({}, {"task": "classify", "data_path": "c.npz"}), 32, 24)
    assert (one.epochs, one.eval_every, one.patience) == (1000, 25, 10)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"folds": 0}, "folds must be positive and fold in"),
        ({"folds": 3, "fold": 3}, r"fold in \[0, folds\), got folds=3, fold=3"),
        ({"task": "forecast", "folds": 2}, "folds > 1 .* is for task 'classify', not 'forecast'"),
    ],
)
def test_bad_folds_are_refused(values, match):
    with pytest.raises(ValueError, match=match):
        resolve_config({}, {"task": "classify", "data_path": "c.npz", **values})


def test_an_ensemble_averages_its_members_probabilities():
    class Fixed(nn.Module):
        """Per-step logits that do not depend on the input."""

        def __init__(self, logits):
            super().__init__()
            self.logits = mx.array(logits, dtype=mx.float32)
            self.receptive_field = 7

        def __call__(self, x):
            return mx.broadcast_to(self.logits, (x.shape[0], *self.logits.shape))

    a = Fixed([[0.0, 0.0], [2.0, 0.0]])  # mean over steps: (1, 0)
    b = Fixed([[0.0, 3.0], [0.0, 3.0]])  # (0, 3)
    model = Ensemble([a, b], lambda out: out.mean(axis=1))
    out = np.array(model(mx.zeros((2, 2, 1))))
    assert out.shape == (2, 1, 2)
    pa = np.exp([1, 0]) / np.exp([1, 0]).sum()
    pb = np.exp([0, 3]) / np.exp([0, 3]).sum()
    np.testing.assert_allclose(np.exp(out[0, 0]), (pa + pb) / 2, rtol=1e-6)
    assert model.receptive_field == 7
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([], lambda out: out)


# --------------------------------------------------------------------------- runs


def _data(path, n, seed):
    """Three classes of short noisy sequences (a level, a rise, a fall)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    t = np.linspace(-1, 1, 16)
    shape = np.stack([np.zeros_like(t), t, -t])[y]
    x = shape + 0.6 * rng.normal(size=(n, 16))
    np.savez(path, x=x.astype("float32"), y=np.array(["flat", "up", "down"])[y])


SMALL = dict(task="classify", levels=2, hidden=6, kernel_size=3, batch_size=8, epochs=6,
             eval_every=2, patience=None, compile=False, plots=False, folds=3)  # fmt: skip


def _cfg(tmp_path, **values):
    return resolve_config({}, {**SMALL, "data_path": str(tmp_path / "train.npz"),
                               "runs_dir": str(tmp_path / "runs"), **values})  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An ensemble of 3 trained without interruption, and its data."""
    tmp = tmp_path_factory.mktemp("ens")
    _data(tmp / "train.npz", 24, 0)
    _data(tmp / "test.npz", 30, 1)
    result = run_training(_cfg(tmp))
    return tmp, result


def _member_probs(run_dir, folds, test):
    """Each member's class probabilities on ``test``, each loaded on its own."""
    out = []
    for k in range(folds):
        ckpt, _ = load_for_inference(member_dir(run_dir, k), "best", members=False)
        x = np.load(test)["x"][..., None]
        x = (x - np.array(ckpt.stats["x_mean"])) / np.array(ckpt.stats["x_std"])
        ckpt.model.eval()
        logits = np.array(ckpt.model(mx.array(x.astype("float32"))).mean(axis=1))
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        out.append(e / e.sum(axis=-1, keepdims=True))
    return out


def test_evaluate_and_predict_use_the_average_of_all_members(trained):
    tmp, result = trained
    run = result.run_dir
    record = json.loads((run / ENSEMBLE_FILE).read_text())
    assert result.ensemble == record and record["folds"] == 3
    assert [m["folder"] for m in record["members"]] == [".", "members/fold-1", "members/fold-2"]
    # every member is a run of its own, validated on its fold; all share one normalisation
    stats = [load_checkpoint(member_dir(run, k)).stats for k in range(3)]
    assert stats[1]["x_mean"] == stats[0]["x_mean"] == stats[2]["x_mean"]
    cfgs = [load_checkpoint(member_dir(run, k)).cfg for k in range(3)]
    assert [(c.fold, c.folds, c.seed) for c in cfgs] == [(0, 3, 0), (1, 3, 0), (2, 3, 0)]
    assert sum(m["val_sequences"] for m in record["members"]) == 24  # the whole file
    pooled = sum(m["val_accuracy"] * m["val_sequences"] for m in record["members"]) / 24
    assert record["cv_accuracy"] == pytest.approx(pooled)

    probs = _member_probs(run, 3, tmp / "test.npz")
    mean = sum(probs) / 3
    y = np.load(tmp / "test.npz")["y"]
    classes = load_checkpoint(run).stats["classes"]
    expected_acc = float((np.array(classes)[mean.argmax(-1)] == y).mean())
    single = float((np.array(classes)[probs[0].argmax(-1)] == y).mean())
    ckpt, task = load_for_inference(run, data_path=str(tmp / "test.npz"))
    metrics, size = evaluate_checkpoint(ckpt, task, "test")
    assert size == 30 and metrics["accuracy"] == pytest.approx(expected_acc)
    true = np.array([classes.index(v) for v in y])
    assert metrics["loss"] == pytest.approx(float(-np.log(mean[np.arange(30), true]).mean()),
                                            rel=1e-5)  # fmt: skip
    alone, _ = load_for_inference(run, data_path=str(tmp / "test.npz"), members=False)
    assert evaluate_checkpoint(alone, task, "test")[0]["accuracy"] == pytest.approx(single)

    out = tmp / "pred.csv"
    assert main(["predict", str(run), "--input", str(tmp / "test.npz"), "--output", str(out)]) == 0
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == [classes[k] for k in mean.argmax(-1)]
    np.testing.assert_allclose([float(r[1]) for r in rows], mean.max(-1), atol=6e-5)


def test_the_cli_says_what_it_scored(trained, capsys):
    tmp, result = trained
    assert main(["evaluate", str(result.run_dir), "--data-path", str(tmp / "test.npz")]) == 0
    out = capsys.readouterr().out
    assert "models          ensemble of 3 (their class probabilities averaged)\n" in out
    assert main(["evaluate", str(result.run_dir)]) == 0  # the validation part of model 0
    assert "members trained on this split" in capsys.readouterr().out
    assert main(["evaluate", str(result.run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == 3
    from mlx_tcn.train.summary import run_table

    steps = ", ".join(str(m["best_step"]) for m in result.ensemble["members"])
    assert (f"ensemble            3 models (averaged), cross-validated accuracy "
            f"{result.ensemble['cv_accuracy']:.4g} (best steps {steps})") in run_table(result)  # fmt: skip


def test_a_run_stopped_between_members_resumes_them_and_matches_an_unbroken_one(tmp_path, trained):
    ref_dir, ref = trained
    _data(tmp_path / "train.npz", 24, 0)
    polls = []

    def stop_in_the_second_member():  # model 0 polls 6 x 2 = 12 times, model 1 stops at 3
        polls.append(1)
        return len(polls) == 15

    cfg = _cfg(tmp_path)
    broken = run_training(cfg, should_stop=stop_in_the_second_member)
    run = broken.run_dir
    assert broken.state.status == "interrupted" and broken.ensemble is None
    assert not (run / ENSEMBLE_FILE).exists()
    assert load_checkpoint(member_dir(run, 1)).loop.status == "interrupted"
    assert not member_dir(run, 2).exists()
    with pytest.raises(CheckpointError, match="members are not all trained .* --resume"):
        load_for_inference(run)
    first_log = (run / "metrics.jsonl").read_text()

    ckpt = load_checkpoint(run)
    resumed = run_training(resume_config(ckpt, {}, {}), resume=ckpt)
    assert resumed.state.status == "completed"
    assert (run / "metrics.jsonl").read_text() == first_log  # model 0 was not trained again
    # the same members, and the same predictions, as the run that was never stopped
    assert resumed.ensemble == ref.ensemble
    test = str(ref_dir / "test.npz")
    a = predict(*load_for_inference(run), test)[0]
    b = predict(*load_for_inference(ref.run_dir), test)[0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_small_sets_get_an_ensemble_by_default_and_folds_1_keeps_one_model(tmp_path):
    _data(tmp_path / "train.npz", 24, 0)
    values = dict(task="classify", data_path=str(tmp_path / "train.npz"), hidden=4,
                  runs_dir=str(tmp_path / "runs"), max_steps=4, compile=False, plots=False)  # fmt: skip
    cfg = resolve_config({}, values)
    assert cfg.auto == ["epochs", "eval_every", "patience", "levels", "folds"] and cfg.folds == 1
    result = run_training(cfg)
    saved = json.loads((result.run_dir / "train_config.json").read_text())
    # 24 sequences: 5 models, 400 steps each (one batch per epoch)
    assert saved["folds"] == 5 and saved["auto"] == [] and saved["epochs"] == 400
    assert result.ensemble["folds"] == 5
    one = run_training(resolve_config({}, {**values, "folds": 1, "name": "one"}))
    assert one.ensemble is None and not (one.run_dir / "members").exists()
    # one model: 1,000 steps
    assert json.loads((one.run_dir / "train_config.json").read_text())["epochs"] == 1000


# --------------------------------------------------------------------------- variable lengths


def test_nan_rows_at_the_end_pad_a_shorter_sequence_with_its_last_row(tmp_path):
    # The archives pad shorter sequences with NaN; before, they made every loss NaN.
    from mlx_tcn.train.tasks import build_task

    x = np.arange(16, dtype="float32").reshape(4, 2, 2).repeat(2, axis=1)  # (4, 4, 2)
    x[1, 2:] = np.nan  # sequence 1 is 2 steps long
    np.savez(tmp_path / "c.npz", x=x, y=np.array(["a", "b", "a", "b"]))
    cfg = resolve_config({}, {"task": "classify", "data_path": str(tmp_path / "c.npz"),
                              "normalize": False, "folds": 2})  # fmt: skip
    task = build_task(cfg)
    every = {tuple(s.ravel()) for s in [*task.train.x, *task.val.x]}
    assert (4.0, 5.0) * 4 in every  # steps 2 and 3 repeat step 1 (it was 4, 5, 4, 5, 6, 7, 6, 7)
    x[2, 1, 0] = np.nan  # missing inside a sequence: refused, with where
    np.savez(tmp_path / "c.npz", x=x, y=np.array(["a", "b", "a", "b"]))
    with pytest.raises(ValueError, match="non-finite value in sequence 2, step 1, channel 0"):
        build_task(cfg)


def test_a_mean_pooled_classifier_predicts_shorter_sequences_as_evaluate_scores_them(trained):
    # Before: predict refused sequences shorter than the training ones, which evaluate scored.
    tmp, result = trained
    x = np.load(tmp / "test.npz")["x"][:, :12]
    np.savez(tmp / "short.npz", x=x, y=np.load(tmp / "test.npz")["y"])
    ckpt, task = load_for_inference(result.run_dir, data_path=str(tmp / "short.npz"))
    pred, _ = predict(ckpt, task, str(tmp / "short.npz"))
    classes = np.array(ckpt.stats["classes"])
    accuracy = float((classes[pred.argmax(-1)] == np.load(tmp / "short.npz")["y"]).mean())
    assert evaluate_checkpoint(ckpt, task, "test")[0]["accuracy"] == pytest.approx(accuracy)


def _ragged(n, seed, low=6, high=16):
    """:func:`_data`'s three classes, each sequence cut to a random length in [low, high]
    and NaN-padded to 16 steps (the archives' layout); the lengths."""
    rng = np.random.default_rng([seed, 9])
    y = np.arange(n) % 3
    t = np.linspace(-1, 1, 16)
    x = np.stack([np.zeros_like(t), t, -t])[y] + 0.6 * rng.normal(size=(n, 16))
    lengths = rng.integers(low, high + 1, size=n)
    x[np.arange(16) >= lengths[:, None]] = np.nan
    return x.astype("float32"), np.array(["flat", "up", "down"])[y], lengths


def _write_ts(path, x, labels):
    """``x`` (N, L) NaN-padded as a univariate .ts file (each case at its own length)."""
    cases = [",".join(f"{v:.9g}" for v in row[~np.isnan(row)]) for row in x]
    path.write_text("@problemName R\n@univariate true\n@equalLength false\n"
                    "@classLabel true down flat up\n@data\n"
                    + "".join(f"{c}:{lab}\n" for c, lab in zip(cases, labels, strict=True)))  # fmt: skip


@pytest.fixture(scope="module")
def ragged(tmp_path_factory):
    """An ensemble of 3 trained on sequences of 6-16 steps (NaN-padded), and its data."""
    tmp = tmp_path_factory.mktemp("ragged")
    x, y, _ = _ragged(24, 0)
    np.savez(tmp / "train.npz", x=x, y=y)
    x, y, lengths = _ragged(30, 1)
    np.savez(tmp / "test.npz", x=x, y=y)
    _write_ts(tmp / "test.ts", x, y)
    return tmp, run_training(_cfg(tmp)), lengths


def test_lengths_reach_every_split_and_the_normalisation_fits_real_steps(tmp_path):
    from mlx_tcn.train.tasks import build_task

    x, y, lengths = _ragged(24, 0)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    task = build_task(_cfg(tmp_path))
    assert sorted([*task.train.lengths, *task.val.lengths]) == sorted(lengths)
    real = x[~np.isnan(x)]
    assert task.stats["x_mean"] == pytest.approx([real.mean()], rel=1e-5)  # not the padded mean
    assert task.stats["x_std"] == pytest.approx([real.std()], rel=1e-5)
    _, _, mask = task.val.batch(np.arange(len(task.val)))
    assert np.array(mask).sum(axis=1).tolist() == task.val.lengths.tolist()


@pytest.mark.parametrize("kind", ["class_mean", "class_last"])
@pytest.mark.parametrize("norm", ["weight_norm", "batch_norm", "layer_norm"])
def test_a_masked_prediction_does_not_depend_on_the_padding(kind, norm):
    # A causal model's outputs at the real steps do not see the steps after them, so padded
    # to 50 or to 500 steps, with any values, a sequence gets the same logits (in eval mode).
    cfg = resolve_config({}, {"task": "classify", "data_path": "c.npz", "levels": 3,
                              "hidden": 8, "use_norm": norm})  # fmt: skip
    mx.random.seed(3)
    model = build_model(cfg, 2, 4)
    model.eval()
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2, 30, 2)).astype("float32")
    lengths = np.array([30, 17])
    outs = []
    for steps, fill in ((50, 0.0), (500, 7.0)):
        x = np.concatenate([real, np.full((2, steps - 30, 2), fill, dtype="float32")], axis=1)
        x[1, 17:] = rng.normal(size=(steps - 17, 2)) * fill  # whatever follows step 17
        outs.append(np.array(model_head(model, kind, mx.array(x), step_mask(lengths, steps))))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    alone = np.array(model_head(model, kind, mx.array(real[1:, :17])))  # no padding at all
    np.testing.assert_allclose(outs[0][1:], alone, rtol=1e-5, atol=1e-6)


def test_predict_and_evaluate_pool_each_sequence_over_its_real_steps(ragged):
    # Padded to the file's longest sequence, 50 or 500 steps, a sequence is predicted alike;
    # before, the padding (its last value repeated) entered the mean.
    tmp, result, lengths = ragged
    x, y = np.load(tmp / "test.npz")["x"], np.load(tmp / "test.npz")["y"]
    preds = []
    for steps in (50, 500):
        longer = np.full((len(x), steps), np.nan, dtype="float32")
        longer[:, :16] = x
        longer[0, :steps] = np.linspace(-1, 1, steps)  # sequence 0: all steps real
        np.savez(tmp / f"pad{steps}.npz", x=longer, y=y)
        ckpt, task = load_for_inference(result.run_dir, data_path=str(tmp / f"pad{steps}.npz"))
        preds.append(predict(ckpt, task, str(tmp / f"pad{steps}.npz"))[0][1:])
    np.testing.assert_allclose(preds[0], preds[1], rtol=1e-5, atol=1e-6)
    # the ensemble's probabilities: each member's mean over the real steps, averaged
    probs = []
    for k in range(3):
        member, _ = load_for_inference(member_dir(result.run_dir, k), members=False)
        member.model.eval()
        z = (x - np.array(member.stats["x_mean"])) / np.array(member.stats["x_std"])
        logits = np.stack([np.array(member.model(mx.array(z[i : i + 1, : lengths[i], None]
                                                           .astype("float32")))).mean(axis=1)[0]
                           for i in range(len(x))])  # fmt: skip
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs.append(e / e.sum(axis=-1, keepdims=True))
    expected = np.log(sum(probs) / 3)
    ckpt, task = load_for_inference(result.run_dir, data_path=str(tmp / "test.npz"))
    pred = predict(ckpt, task, str(tmp / "test.npz"))[0]
    np.testing.assert_allclose(pred, expected, rtol=1e-4, atol=1e-5)
    classes = np.array(ckpt.stats["classes"])
    accuracy = float((classes[expected.argmax(-1)] == y).mean())
    assert evaluate_checkpoint(ckpt, task, "test")[0]["accuracy"] == pytest.approx(accuracy)


def test_train_evaluate_and_predict_read_ts_files(ragged, capsys):
    # Before, a .ts file needed scripts/ts_to_npz.py first ("unknown format '.ts'").
    tmp, result, _ = ragged
    x, y, _ = _ragged(24, 0)
    _write_ts(tmp / "train.ts", x, y)
    run = run_training(_cfg(tmp, data_path=str(tmp / "train.ts"), name="from_ts"))
    assert run.ensemble == result.ensemble  # the same data as the NaN-padded .npz
    assert main(["evaluate", str(run.run_dir), "--data-path", str(tmp / "test.ts"), "--json"]) == 0
    from_ts = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(run.run_dir), "--data-path", str(tmp / "test.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == from_ts["accuracy"]
    out = tmp / "pred.csv"
    assert (
        main(["predict", str(run.run_dir), "--input", str(tmp / "test.ts"), "--output", str(out)])
        == 0
    )
    expected = predict(*load_for_inference(run.run_dir), str(tmp / "test.npz"))[0]
    classes = load_checkpoint(run.run_dir).stats["classes"]
    rows = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert rows == [classes[k] for k in expected.argmax(-1)]


def test_equal_length_runs_take_the_unmasked_path(tmp_path, monkeypatch):
    # Sequences of one length get no mask anywhere: training, evaluation, the ensemble and
    # predict pool exactly as before lengths were kept (a run at the previous commit gave
    # bit-identical metrics and predictions).
    masks = []
    real = losses.head

    def spy(kind, out, mask=None):
        masks.append(mask)
        return real(kind, out, mask)

    monkeypatch.setattr(losses, "head", spy)
    _data(tmp_path / "train.npz", 24, 0)
    result = run_training(_cfg(tmp_path, epochs=2))
    predict(*load_for_inference(result.run_dir), str(tmp_path / "train.npz"))
    assert len(masks) > 10 and all(m is None for m in masks)
