"""The Python training API refuses arguments of the wrong kind with errors naming them,
before it reads or writes anything."""

import pytest

from mlx_tcn.train import load_checkpoint, resolve_config, run_training

TINY = dict(seq_len=10, levels=1, hidden=4, kernel_size=2, n_train=32, n_val=16, batch_size=16,
            epochs=3, max_steps=2, compile=False, plots=False)  # fmt: skip


@pytest.fixture
def run_dir(tmp_path):
    return run_training(resolve_config({}, {**TINY, "runs_dir": str(tmp_path)})).run_dir


def test_the_python_api_refuses_arguments_of_the_wrong_kind_before_writing(tmp_path, run_dir):
    # Before: AttributeErrors ('dict' object has no attribute 'seed', 'str' object has no
    # attribute 'stats'), and callbacks=print / should_stop=True failed after claiming a
    # run folder. load_checkpoint(which="bset") loaded the latest checkpoint silently.
    from mlx_tcn.train.predict import evaluate_checkpoint, load_for_inference
    from mlx_tcn.train.split import iterate_batches

    cfg = resolve_config({}, {**TINY, "runs_dir": str(tmp_path / "other")})
    cases = [
        (lambda: run_training(dict(TINY)), "cfg must be a TrainConfig"),
        (lambda: run_training(cfg, resume=str(run_dir)), "resume must be a Checkpoint"),
        (lambda: run_training(cfg, callbacks=print), "callbacks must be a list of callables"),
        (lambda: run_training(cfg, should_stop=True), "should_stop must be a callable"),
    ]
    for call, match in cases:
        with pytest.raises(TypeError, match=match):
            call()
    assert not (tmp_path / "other").exists()
    with pytest.raises(ValueError, match="which must be 'latest' or 'best', got 'bset'"):
        load_checkpoint(run_dir, "bset")
    ckpt, task = load_for_inference(run_dir)
    with pytest.raises(ValueError, match="split must be 'val', 'train' or 'test', got 'bogus'"):
        evaluate_checkpoint(ckpt, task, split="bogus")
    with pytest.raises(TypeError, match="ckpt must be a Checkpoint"):
        evaluate_checkpoint(str(run_dir), task)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        list(iterate_batches(task.val, 0))
