"""A TCN batch split over parallel CPU lanes computes what one lane computes."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from test_backend import _run as run_python_json  # a fresh interpreter, one JSON line back

from mlx_tcn import TCN, _backend
from mlx_tcn import parallel as tcn_module

on_cpu = pytest.mark.skipif(
    mx.default_device().type != mx.DeviceType.cpu, reason="the split is for the CPU device"
)


def _unsplit(monkeypatch) -> None:
    """Turn both splits off: one stream from here on."""
    monkeypatch.setattr(tcn_module, "_batch_parts", lambda batch, length: [(0, batch)])
    monkeypatch.setattr(tcn_module, "_time_parts", lambda length, context, n: [(0, length)])


def _assert_same(split: mx.array, whole: mx.array) -> None:
    assert split.shape == whole.shape
    np.testing.assert_allclose(np.array(split), np.array(whole), rtol=1e-5, atol=1e-5)


@on_cpu
@pytest.mark.parametrize(
    ("streams_n", "batch", "length", "expected"),
    [
        (1, 8, 1000, [(0, 8)]),  # no parallel streams
        (2, 1, 5000, [(0, 1)]),  # one row cannot be split
        (2, 4, 100, [(0, 4)]),  # 400 steps: too little work to pay for the hand-offs
        (2, 4, 512, [(0, 2), (2, 4)]),
        (2, 5, 1000, [(0, 2), (2, 5)]),
        (3, 5, 1000, [(0, 1), (1, 3), (3, 5)]),
        (8, 3, 1000, [(0, 1), (1, 3)]),  # 3000 steps: two parts of >= 1024
        (8, 3, 4000, [(0, 1), (1, 2), (2, 3)]),  # at most one part per row
        (8, 16, 200, [(0, 5), (5, 10), (10, 16)]),  # 3200 steps: three parts of >= 1024
    ],
)
def test_batch_parts(monkeypatch, streams_n, batch, length, expected):
    monkeypatch.setattr(_backend.runtime.STATE, "lanes", streams_n)
    assert tcn_module._batch_parts(batch, length) == expected


@on_cpu
def test_batch_parts_cover_the_batch_exactly(monkeypatch):
    monkeypatch.setattr(_backend.runtime.STATE, "lanes", 4)
    for batch in range(1, 40):
        parts = tcn_module._batch_parts(batch, 2048)
        assert parts[0][0] == 0 and parts[-1][1] == batch
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(parts, parts[1:], strict=False))


CONFIGS = [
    {},
    {"use_skip_connections": True, "output_projection": 5, "output_activation": "tanh"},
    {"use_norm": "layer_norm", "activation": "gelu", "use_gate": True},
    {"use_norm": "batch_norm"},  # eval mode: running statistics, row by row
    {"use_se": True, "causal": False},
    {"embedding_shapes": [(4,), (2,)], "embedding_mode": "concat"},
    {"embedding_shapes": [(3,)], "embedding_mode": "add", "kernel_sizes": 5},
]


def _model_and_input(config: dict, batch: int = 5, length: int = 700):
    mx.random.seed(1)
    config.setdefault("dropout", 0.0)  # training mode deterministic unless asked
    model = TCN(3, [8, 12], kernel_sizes=config.pop("kernel_sizes", 3), **config)
    mx.eval(model.parameters())
    x = mx.random.normal((batch, length, 3))
    embeddings = None
    if model.embedding_shapes:
        embeddings = [mx.random.normal((batch, s[0])) for s in model.embedding_shapes[:1]]
        embeddings += [mx.random.normal((batch, length, s[0])) for s in model.embedding_shapes[1:]]
    return model, x, embeddings


@on_cpu
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(map(str, c)) or "default")
def test_split_forward_equals_one_stream(monkeypatch, streams, config):
    used = streams(2)
    model, x, embeddings = _model_and_input(dict(config))
    model.eval()
    split = model(x, embeddings)
    mx.eval(split)
    assert len(used) == 1 and len(used[0]) == 2  # it did split
    _unsplit(monkeypatch)
    _assert_same(split, model(x, embeddings))


@on_cpu
def test_three_uneven_parts_equal_one_stream(monkeypatch, streams):
    streams(3)
    model, x, _ = _model_and_input({}, batch=7, length=600)
    model.eval()
    split = model(x)
    mx.eval(split)
    _unsplit(monkeypatch)
    _assert_same(split, model(x))


def _loss(model, x):
    return (model(x) ** 2).mean()


@on_cpu
@pytest.mark.parametrize("config", [{}, {"use_norm": "layer_norm", "use_skip_connections": True}])
def test_split_gradients_equal_one_stream(monkeypatch, streams, config):
    used = streams(2)
    model, x, _ = _model_and_input(dict(config), batch=4, length=640)
    model.train()
    loss, grads = nn.value_and_grad(model, _loss)(model, x)
    mx.eval(loss, grads)
    assert used
    _unsplit(monkeypatch)
    loss1, grads1 = nn.value_and_grad(model, _loss)(model, x)
    assert abs(loss.item() - loss1.item()) <= 1e-6 * abs(loss1.item())
    for (name, a), (_, b) in zip(tree_flatten(grads), tree_flatten(grads1), strict=True):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-4, atol=1e-6, err_msg=name)


@on_cpu
def test_batch_norm_in_training_is_not_split(monkeypatch, streams):
    # Its statistics span the whole batch: a split would normalise each part on its own.
    used = streams(2)
    model, x, _ = _model_and_input({"use_norm": "batch_norm"}, batch=4, length=600)
    x = x + mx.arange(4).reshape(4, 1, 1) * 3.0  # parts with different statistics
    model.train()
    y = np.array(model(x))
    assert used == []
    _unsplit(monkeypatch)
    np.testing.assert_array_equal(y, np.array(model(x)))


@on_cpu
def test_split_training_step_compiles(streams, compiled_sgd_losses):
    streams(2)
    model, x, _ = _model_and_input({"dropout": 0.1}, batch=4, length=600)
    model.train()
    losses = compiled_sgd_losses(model, _loss, x)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


@on_cpu
def test_exported_split_model_runs_in_a_plain_mlx_process(tmp_path, streams):
    streams(2)
    model, x, _ = _model_and_input({}, batch=4, length=600)
    model.eval()
    path = tmp_path / "tcn.mlxfn"
    mx.export_function(str(path), lambda x: model(x), x)
    np.save(tmp_path / "x.npy", np.array(x))
    code = f"""
        import json, mlx.core as mx, numpy as np
        f = mx.import_function({str(path)!r})
        y = f(mx.array(np.load({str(tmp_path / "x.npy")!r})))[0]
        print(json.dumps(np.array(y).tolist()))
    """
    got = np.array(run_python_json(code))
    _assert_same(mx.array(got, dtype=mx.float32), model(x))


@on_cpu
@pytest.mark.parametrize(
    ("streams_n", "length", "context", "expected"),
    [
        (1, 10000, 10, [(0, 10000)]),
        (2, 2047, 10, [(0, 2047)]),  # parts would be shorter than 1024 steps
        (2, 2048, 10, [(0, 1024), (1024, 2048)]),
        (2, 4000, 1500, [(0, 4000)]),  # parts must be at least twice the context
        (2, 6000, 1500, [(0, 3000), (3000, 6000)]),
        (4, 5000, 0, [(0, 1250), (1250, 2500), (2500, 3750), (3750, 5000)]),
        (4, 3000, 0, [(0, 1500), (1500, 3000)]),
    ],
)
def test_time_parts(monkeypatch, streams_n, length, context, expected):
    assert tcn_module._time_parts(length, context, streams_n) == expected


TIME_CONFIGS = [
    {},
    {"causal": False},
    {"causal": False, "kernel_sizes": 4},  # even kernels: unequal left/right padding
    {"use_skip_connections": True, "use_norm": "layer_norm", "output_projection": 3},
    {"use_norm": "batch_norm", "activation": "tanh", "use_gate": True},
    {"embedding_shapes": [(4,), (2,)], "embedding_mode": "concat"},
    {"embedding_shapes": [(2,)], "dilations": [1, 16], "kernel_sizes": 5},
]


@on_cpu
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("config", TIME_CONFIGS, ids=lambda c: ",".join(map(str, c)) or "default")
def test_time_split_of_one_sequence_equals_one_stream(monkeypatch, streams, config, n):
    used = streams(n)
    model, x, embeddings = _model_and_input(dict(config), batch=1, length=3500)
    model.eval()
    left, right = model._context()
    assert left + right > 0 and len(tcn_module._time_parts(3500, left + right, n)) == n
    split = model(x, embeddings)
    mx.eval(split)
    assert len(used) == 1
    _unsplit(monkeypatch)
    _assert_same(split, model(x, embeddings))


@on_cpu
def test_context_is_the_receptive_field():
    model = TCN(2, [4, 4, 4], kernel_sizes=3, causal=True)
    assert model._context() == (model.receptive_field - 1, 0)
    model = TCN(2, [4, 4], kernel_sizes=4, causal=False)  # (k-1)*d = 3, 6 per conv
    assert model._context() == (1 + 1 + 3 + 3, 2 + 2 + 3 + 3)
    assert TCN(2, [4], use_se=True)._context() is None


@on_cpu
@pytest.mark.parametrize(
    ("config", "train"), [({"use_se": True}, False), ({}, True)], ids=["se", "training"]
)
def test_no_time_split_with_se_or_in_training(streams, config, train):
    used = streams(2)
    model, x, _ = _model_and_input(dict(config), batch=1, length=3500)
    model.train(train)
    mx.eval(model(x))
    assert used == []


@on_cpu
@pytest.mark.parametrize(("batch", "length"), [(4, 700), (1, 4000)], ids=["rows", "time"])
def test_weight_norm_is_computed_once_per_call_not_per_part(monkeypatch, streams, batch, length):
    from mlx_tcn import parametrizations

    used = streams(2)
    calls = []
    real = parametrizations.compute_weight
    monkeypatch.setattr(
        parametrizations, "compute_weight", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    model, x, _ = _model_and_input({}, batch=batch, length=length)
    model.eval()
    mx.eval(model(x))
    assert len(used) == 1
    assert len(calls) == 4  # two blocks, two weight-normalised convolutions each
    assert all(getattr(m, "_shared_weights", None) is None for m in model.modules())


@on_cpu
def test_an_unsplit_forward_does_not_walk_the_module_tree(monkeypatch, streams):
    # listing a model's modules costs as much as a small batch-1 forward's GEMMs: only a
    # split forward (weight norm shared by its parts) asks for them
    streams(2)
    model, x, _ = _model_and_input({}, batch=1, length=200)
    model.eval()
    walks = []
    real = TCN.modules
    monkeypatch.setattr(TCN, "modules", lambda self: walks.append(1) or real(self))
    mx.eval(model(x))  # too short to split
    assert walks == []
    mx.eval(model(mx.random.normal((4, 700, x.shape[-1]))))  # split by rows
    assert walks == [1]


def test_shared_weights_context(monkeypatch):
    from mlx_tcn import TemporalConv1d, parametrizations

    conv = parametrizations.weight_norm(TemporalConv1d(3, 4, 3))
    plain = TemporalConv1d(3, 4, 3)
    with parametrizations.shared_weights([conv, plain]):
        first = parametrizations.get_weight(conv)
        assert parametrizations.get_weight(conv) is first
        np.testing.assert_allclose(
            np.array(first),
            np.array(parametrizations.compute_weight(conv.weight_g, conv.weight_v)),
            rtol=1e-6,
        )
        assert parametrizations.get_weight(plain) is plain.weight
    assert parametrizations.get_weight(conv) is not first
    with pytest.raises(RuntimeError), parametrizations.shared_weights([conv]):
        raise RuntimeError("boom")
    assert conv._shared_weights is None  # cleared on the way out of an error


def _count_forwards(monkeypatch) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    real = TCN._forward

    def counting(self, x, *args):
        shapes.append(tuple(x.shape))
        return real(self, x, *args)

    monkeypatch.setattr(TCN, "_forward", counting)
    return shapes


@on_cpu
@pytest.mark.parametrize(
    ("config", "embedded"),
    [({}, False), ({"causal": False, "embedding_shapes": [(2,), (3,)]}, True)],
    ids=["causal", "non-causal-embeddings"],
)
def test_rows_and_time_split_together_equal_one_stream(monkeypatch, streams, config, embedded):
    # Four streams, two rows: each row's part is split by time over two streams.
    streams(4)
    model, x, embeddings = _model_and_input(dict(config), batch=2, length=3000)
    model.eval()
    shapes = _count_forwards(monkeypatch)
    split = model(x, embeddings)
    mx.eval(split)
    left, right = model._context()
    assert sorted(shapes) == sorted(
        [(1, 1500 + right, 3), (1, 1500 + left, 3)] * 2
    )  # 2 rows x 2 time parts, each with its context
    shapes.clear()
    _unsplit(monkeypatch)
    whole = model(x, embeddings)
    assert shapes == [(2, 3000, 3)]
    _assert_same(split, whole)


@on_cpu
def test_training_splits_rows_only(monkeypatch, streams):
    streams(4)
    model, x, _ = _model_and_input({}, batch=2, length=3000)
    model.train()
    shapes = _count_forwards(monkeypatch)
    mx.eval(model(x))
    assert shapes == [(1, 3000, 3), (1, 3000, 3)]


def test_a_split_forward_runs_in_any_thread():
    # MLX's streams belong to the thread that made them: the lanes made by the first split
    # forward failed every other thread ("There is no Stream(cpu, 2) in current thread").
    import threading

    from mlx_tcn import TCN, _backend

    if _backend.parallel_lanes() < 2:
        pytest.skip("one lane: nothing splits")
    mx.random.seed(0)
    model = TCN(3, [8, 8], dropout=0.0)
    model.eval()
    x = mx.random.normal((4, 1200, 3))
    expected = np.array(model(x))
    got = {}

    def other():
        got["y"] = np.array(model(x))
        mx.clear_streams()  # MLX 0.32 asks each thread to, before it ends (docs/blas.md)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    np.testing.assert_allclose(got["y"], expected, rtol=1e-5, atol=1e-6)
