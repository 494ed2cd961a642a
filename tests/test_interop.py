"""Tests for mlx_tcn.interop: pytorch-tcn <-> mlx-tcn conversion and parity.

Fixture tests run without torch (references made by scripts/make_pytorch_tcn_fixtures.py);
live tests against pytorch-tcn 1.2.3 run when torch and pytorch-tcn are installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_unflatten

import mlx_tcn
from mlx_tcn import remove_weight_norm
from mlx_tcn.interop import from_pytorch_tcn, main_convert, pytorch_kwargs_to_config, to_pytorch_tcn
from mlx_tcn.tcn import TCN

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "pytorch_tcn"
CASES = {case["name"]: case for case in json.loads((FIXTURES / "cases.json").read_text())}
STREAMING_CASES = [name for name, case in CASES.items() if case["chunks"]]


def _load_fixture_script():
    path = ROOT / "scripts" / "make_pytorch_tcn_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_pytorch_tcn_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fixture(name: str) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(case, state dict as NumPy, arrays) of a committed fixture."""
    state = {k: np.array(v) for k, v in mx.load(str(FIXTURES / f"{name}.safetensors")).items()}
    with np.load(FIXTURES / f"{name}.npz") as data:
        arrays = dict(data)
    return CASES[name], state, arrays


def _embeddings(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [arrays[f"emb{i}"] for i in range(sum(k.startswith("emb") for k in arrays))]


def _offline(model: TCN, x: np.ndarray, embs: list[np.ndarray]) -> np.ndarray:
    y = model(mx.array(x), embeddings=[mx.array(e) for e in embs] or None)
    return np.array(y)


def _streamed(model: TCN, x: np.ndarray, embs: list[np.ndarray], chunks: list[int]) -> np.ndarray:
    """Our streaming output, all samples at once, chunk by chunk."""
    state = model.init_state(x.shape[0])
    pieces, start = [], 0
    for n in chunks:
        e = [mx.array(em if em.ndim == 2 else em[:, start : start + n]) for em in embs]
        y, state = model.stream(mx.array(x[:, start : start + n]), state, embeddings=e or None)
        pieces.append(np.array(y))
        start += n
    return np.concatenate(pieces, axis=1)


def assert_close(actual: np.ndarray, expected: np.ndarray, tol: float = 1e-4) -> None:
    """Max absolute difference <= tol, scaled by the reference's magnitude (at least 1)."""
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(actual - expected).max())
    assert err <= tol * scale, f"max abs diff {err} > {tol} * {scale}"


# --------------------------------------------------------------------------- fixtures, no torch


@pytest.mark.parametrize("name", list(CASES))
def test_fixture_offline_parity(name):
    case, _, arrays = _fixture(name)
    model = from_pytorch_tcn(FIXTURES / f"{name}.safetensors", **case["kwargs"])
    assert_close(_offline(model, arrays["x"], _embeddings(arrays)), arrays["y"])


@pytest.mark.parametrize("name", STREAMING_CASES)
def test_fixture_streaming_parity(name):
    case, state, arrays = _fixture(name)
    model = from_pytorch_tcn(state, **case["kwargs"])
    y = _streamed(model, arrays["x"], _embeddings(arrays), case["chunks"])
    assert_close(y, arrays["y_stream"])


def test_fixture_legacy_weight_g_v_and_conv_buffer_keys():
    # pytorch-tcn < 1.2.2 kept the buffer on the conv (conv1.buffer); torch's old weight_norm
    # saved weight_g / weight_v instead of parametrizations.weight.original0 / original1.
    name = "causal_weight_norm_k3"
    case, state, arrays = _fixture(name)
    renames = {
        ".parametrizations.weight.original0": ".weight_g",
        ".parametrizations.weight.original1": ".weight_v",
        ".padder.buffer": ".buffer",
    }
    legacy = {}
    for key, value in state.items():
        for new, old in renames.items():
            key = key.replace(new, old)
        legacy[key] = value
    assert "network.0.conv1.weight_g" in legacy and "network.0.conv1.buffer" in legacy
    model = from_pytorch_tcn(legacy, **case["kwargs"])
    assert_close(_offline(model, arrays["x"], []), arrays["y"])


def test_fixture_padder_buffers_and_counters_are_optional():
    name = "noncausal_batch_norm_gate_skip_proj_k4"
    case, state, arrays = _fixture(name)
    trimmed = {
        k: v
        for k, v in state.items()
        if not k.endswith((".buffer", "num_batches_tracked")) and "embedding_projection_2" not in k
    }
    model = from_pytorch_tcn(trimmed, **case["kwargs"])
    assert_close(_offline(model, arrays["x"], _embeddings(arrays)), arrays["y"])


@pytest.mark.parametrize("name", list(CASES))
def test_fixture_export_reproduces_the_pytorch_state_dict(name):
    case, state, _ = _fixture(name)
    model = from_pytorch_tcn(state, **case["kwargs"])
    exported, kwargs = to_pytorch_tcn(model)
    assert sorted(exported) == sorted(state)
    for key, value in state.items():
        assert exported[key].shape == value.shape, key
        if key.endswith(".buffer") or key.endswith("num_batches_tracked"):
            assert not exported[key].any(), key
        elif (
            "embedding_projection_2" in key and case["kwargs"].get("embedding_mode", "add") == "add"
        ):
            assert not exported[key].any(), key  # unused by pytorch-tcn in 'add' mode
        else:
            np.testing.assert_array_equal(exported[key], value, err_msg=key)
    assert json.loads(json.dumps(kwargs)) == kwargs
    for arg, value in case["kwargs"].items():
        expected = [list(s) for s in value] if arg == "embedding_shapes" else value
        assert kwargs[arg] == expected, arg


def test_round_trip_mlx_pytorch_mlx_is_identical():
    model = TCN(
        3,
        [4, 6],
        kernel_sizes=3,
        causal=True,
        use_norm="batch_norm",
        use_gate=True,
        use_skip_connections=True,
        embedding_shapes=[(2,)],
        embedding_mode="concat",
        output_projection=2,
    )
    _randomize(model, seed=0)
    state, kwargs = to_pytorch_tcn(model)
    back = from_pytorch_tcn(state, **kwargs)
    ours = dict(tree_flatten(model.parameters()))
    theirs = dict(tree_flatten(back.parameters()))
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        np.testing.assert_array_equal(np.array(ours[key]), np.array(theirs[key]), err_msg=key)
    model.eval()
    x = np.random.default_rng(0).standard_normal((2, 9, 3)).astype(np.float32)
    e = [np.ones((2, 2), np.float32)]
    np.testing.assert_array_equal(_offline(model, x, e), _offline(back, x, e))


# --------------------------------------------------------------------------- errors


def test_mismatched_state_dict_lists_missing_unexpected_and_misshaped_keys():
    case, state, _ = _fixture("causal_weight_norm_k3")
    state = dict(state)
    del state["network.1.conv2.bias"]
    state["network.0.extra.weight"] = np.zeros(3, np.float32)
    state["network.0.downsample.weight"] = np.zeros((5, 2, 1), np.float32)
    with pytest.raises(ValueError) as info:
        from_pytorch_tcn(state, **case["kwargs"])
    message = str(info.value)
    assert "missing keys ['network.1.conv2.bias']" in message
    assert "unexpected keys ['network.0.extra.weight']" in message
    assert "network.0.downsample.weight: got (5, 2, 1), expected (5, 3, 1)" in message


def test_values_that_are_not_tensors_are_named_not_an_attribute_error():
    # Before: AttributeError: 'NoneType' object has no attribute 'shape'.
    case, state, _ = _fixture("causal_weight_norm_k3")
    state = {**state, "network.0.conv1.bias": None, "network.1.conv2.bias": [0.0, 1.0]}
    with pytest.raises(ValueError, match=r"values that are not arrays or tensors \[network.0.conv1"
                       r".bias: NoneType; network.1.conv2.bias: list\]"):  # fmt: skip
        from_pytorch_tcn(state, **case["kwargs"])


def test_both_weight_norm_formats_at_once_is_an_error():
    case, state, _ = _fixture("causal_weight_norm_k3")
    key = "network.0.conv1.parametrizations.weight.original0"
    state = {**state, "network.0.conv1.weight_g": state[key]}
    with pytest.raises(ValueError, match=f"keys given twice .*{key} / network.0.conv1.weight_g"):
        from_pytorch_tcn(state, **case["kwargs"])


def test_wrong_configuration_is_reported_not_partly_loaded():
    case, state, _ = _fixture("causal_weight_norm_k3")
    kwargs = {**case["kwargs"], "use_norm": None}  # checkpoint is weight-normed
    with pytest.raises(ValueError, match=r"missing keys \['network.0.conv1.weight'"):
        from_pytorch_tcn(state, **kwargs)


def test_unknown_and_missing_kwargs():
    _, state, _ = _fixture("causal_weight_norm_k3")
    with pytest.raises(TypeError, match=r"unknown pytorch-tcn TCN arguments: \['kernel_sizes'\]"):
        from_pytorch_tcn(state, num_inputs=3, num_channels=[5, 5, 6], kernel_sizes=3)
    with pytest.raises(TypeError, match=r"missing required .*\['num_channels'\]"):
        from_pytorch_tcn(state, num_inputs=3)
    with pytest.raises(ValueError, match="lookahead must be 0"):
        from_pytorch_tcn(state, num_inputs=3, num_channels=[5, 5, 6], lookahead=2)
    with pytest.raises(ValueError, match="input_shape must be 'NCL' or 'NLC', got 'LNC'"):
        from_pytorch_tcn(state, num_inputs=3, num_channels=[5, 5, 6], input_shape="LNC")
    with pytest.raises(ValueError, match="activation must be a pytorch-tcn activation name"):
        from_pytorch_tcn(state, num_inputs=3, num_channels=[5, 5, 6], activation=object)


def test_bad_state_dict_argument(tmp_path):
    with pytest.raises(ValueError, match="must end in .pt, .pth or .safetensors"):
        from_pytorch_tcn(tmp_path / "model.ckpt", num_inputs=3, num_channels=[4])
    with pytest.raises(TypeError, match="state_dict must be a mapping or a file path, got list"):
        from_pytorch_tcn([], num_inputs=3, num_channels=[4])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"use_se": True}, "use_se=True has no pytorch-tcn equivalent"),
        ({"activation": lambda x: x}, "activation=<function .* has no pytorch-tcn equivalent"),
        ({"output_activation": mx.abs}, "output_activation=.* has no pytorch-tcn equivalent"),
        ({"kernel_sizes": [2, 3]}, r"kernel_sizes=\[2, 3\]: pytorch-tcn has one kernel size"),
    ],
)
def test_export_rejects_features_pytorch_tcn_lacks(kwargs, match):
    model = TCN(3, [4, 4], **kwargs)
    with pytest.raises(ValueError, match=match):
        to_pytorch_tcn(model)


def test_export_accepts_equal_per_layer_kernel_sizes():
    _, kwargs = to_pytorch_tcn(TCN(3, [4, 4], kernel_sizes=[3, 3]))
    assert kwargs["kernel_size"] == 3


@pytest.mark.parametrize(
    ("init", "activation", "exported"),
    [
        ("he_normal", "relu", "kaiming_normal"),
        ("he_uniform", "tanh", "kaiming_uniform"),
        ("kaiming_uniform", "gelu", "xavier_uniform"),  # pytorch-tcn refuses kaiming + gelu
        ("normal", "elu", "normal"),
    ],
)
def test_export_initializer_names(init, activation, exported, caplog):
    model = TCN(3, [4], kernel_initializer=init, activation=activation)
    _, kwargs = to_pytorch_tcn(model)
    assert kwargs["kernel_initializer"] == exported
    assert ("refused by pytorch-tcn" in caplog.text) == (exported != init and init[:2] != "he")
    if importlib.util.find_spec("pytorch_tcn") is not None:
        ref = _load_fixture_script()
        ref.make_torch_tcn(kwargs, 0)  # pytorch-tcn accepts the exported arguments


# --------------------------------------------------------------------------- command line


def test_convert_cli_both_directions(tmp_path):
    name = "causal_layer_norm_concat_k2_reset"
    case, _, arrays = _fixture(name)
    config = tmp_path / "kwargs.json"
    config.write_text(json.dumps(case["kwargs"]))
    model_dir = tmp_path / "mlx_model"
    argv = ["from-pytorch", str(FIXTURES / f"{name}.safetensors"), "--config", str(config)]
    assert main_convert([*argv, "--out", str(model_dir)]) == 0
    embs = _embeddings(arrays)
    assert_close(_offline(TCN.load(model_dir).eval(), arrays["x"], embs), arrays["y"])

    out = tmp_path / "back.safetensors"
    assert main_convert(["to-pytorch", str(model_dir), "--out", str(out)]) == 0
    kwargs = json.loads(out.with_suffix(".json").read_text())
    assert_close(_offline(from_pytorch_tcn(out, **kwargs), arrays["x"], embs), arrays["y"])

    # --config may also name an mlx-tcn model directory.
    again = tmp_path / "again"
    assert (
        main_convert(["from-pytorch", str(out), "--config", str(model_dir), "-o", str(again)]) == 0
    )
    assert_close(_offline(TCN.load(again).eval(), arrays["x"], embs), arrays["y"])


def test_convert_cli_errors(tmp_path, caplog):
    name = "causal_weight_norm_k3"
    config = tmp_path / "kwargs.json"
    config.write_text(json.dumps({"num_inputs": 3, "num_channels": [5, 5]}))
    ckpt = str(FIXTURES / f"{name}.safetensors")
    out = str(tmp_path / "m")
    assert main_convert(["from-pytorch", ckpt, "--config", str(config), "--out", out]) == 1
    assert "unexpected keys" in caplog.text
    assert not (tmp_path / "m").exists()
    assert main_convert(["from-pytorch", ckpt]) == 2
    assert main_convert(["sideways"]) == 2


# --------------------------------------------------------------------------- live pytorch-tcn


def _randomize(model: TCN, seed: int) -> None:
    """Random values for every array (positive variances and gains), so nothing is trivial."""
    rng = np.random.default_rng(seed)
    params = []
    for name, value in tree_flatten(model.parameters()):
        v = rng.uniform(-0.6, 0.6, value.shape).astype(np.float32)
        if name.endswith(("running_var", "weight_g")):
            v = np.abs(v) + 0.5
        params.append((name, mx.array(v)))
    model.update(tree_unflatten(params))


NORMS = ["weight_norm", "batch_norm", "layer_norm", None]
ACTIVATIONS = [
    "relu",
    "tanh",
    "leaky_relu",
    "sigmoid",
    "elu",
    "gelu",
    "selu",
    "softmax",
    "log_softmax",
]
OUTPUT_ACTIVATIONS = [None, "softmax", "tanh", "log_softmax", "sigmoid"]
EMBEDDINGS = [
    ([], "add"),
    ([["global", 2]], "add"),
    ([["time", 3]], "add"),
    ([["global", 2], ["time", 3]], "concat"),
    ([["time", 2]], "concat"),
]
CHANNELS = [[4, 4], [3, 5, 5], [5, 3, 4]]


def _grid() -> list[dict]:
    cases = []
    for i, (norm, causal, gate) in enumerate(
        itertools.product(NORMS, [True, False], [False, True])
    ):
        embeddings, mode = EMBEDDINGS[i % len(EMBEDDINGS)]
        kwargs = {
            "num_inputs": 3,
            "num_channels": CHANNELS[i % len(CHANNELS)],
            "kernel_size": [2, 3, 4, 5][i % 4],
            "causal": causal,
            "use_norm": norm,
            "use_gate": gate,
            "activation": ACTIVATIONS[i % len(ACTIVATIONS)],
            "use_skip_connections": i % 3 != 1,
            "output_projection": [None, 3][i % 2],
            "output_activation": OUTPUT_ACTIVATIONS[i % len(OUTPUT_ACTIVATIONS)],
        }
        if i % 4 == 1:
            kwargs["dilation_reset"] = 2
        if embeddings:
            kwargs["embedding_mode"] = mode
            kwargs["embedding_shapes"] = [[d] if k == "global" else [d, 11] for k, d in embeddings]
        cases.append({"id": f"g{i}", "kwargs": kwargs, "embeddings": embeddings})
    for causal in (True, False):
        kwargs = {"num_inputs": 2, "num_channels": [3, 4], "kernel_size": 1, "causal": causal}
        cases.append({"id": f"k1-causal={causal}", "kwargs": kwargs, "embeddings": []})
    kwargs = {"num_inputs": 2, "num_channels": [3, 3, 4], "kernel_size": 3, "dilations": [1, 3, 2]}
    cases.append({"id": "explicit-dilations", "kwargs": kwargs, "embeddings": []})
    kwargs = {
        "num_inputs": 2,
        "num_channels": [4],
        "input_shape": "NLC",
        "dropout": 0.5,
        "use_skip_connections": True,
    }
    cases.append({"id": "nlc-defaults", "kwargs": kwargs, "embeddings": []})
    return cases


GRID = _grid()


@pytest.mark.parametrize("case", GRID, ids=[c["id"] for c in GRID])
def test_live_parity_with_pytorch_tcn(case):
    torch = pytest.importorskip("torch")
    pytest.importorskip("pytorch_tcn")
    ref = _load_fixture_script()
    kwargs, seed = case["kwargs"], len(case["id"])
    chunks = [1, 3, 5, 2]
    x, embs = ref.make_inputs(kwargs["num_inputs"], case["embeddings"], 2, sum(chunks), seed)
    nlc = kwargs.get("input_shape") == "NLC"

    def torch_out(net):
        if nlc:  # pytorch-tcn takes channels-last directly
            with torch.no_grad():
                return net(torch.from_numpy(x), embeddings=None).numpy()
        return ref.torch_offline(net, x, embs)

    # pytorch-tcn -> mlx-tcn, from torch tensors
    net = ref.make_torch_tcn(kwargs, seed)
    model = from_pytorch_tcn(net.state_dict(), **kwargs)
    expected = torch_out(net)
    assert_close(_offline(model, x, embs), expected)
    if kwargs.get("causal", True) and not nlc:
        # pytorch-tcn's kernel_size=1 streaming is wrong; its offline output is the target there
        target = (
            ref.torch_streaming(net, x, embs, chunks) if kwargs["kernel_size"] > 1 else expected
        )
        assert_close(_streamed(model, x, embs, chunks), target)

    # mlx-tcn -> pytorch-tcn, from independent random weights, strict load
    _randomize(model, seed + 100)
    state, out_kwargs = to_pytorch_tcn(model)
    net = ref.make_torch_tcn({**out_kwargs, "input_shape": kwargs.get("input_shape", "NCL")}, 0)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    assert_close(_offline(model, x, embs), torch_out(net))


def test_live_pt_file_and_torch_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("pytorch_tcn")
    case, _, arrays = _fixture("causal_weight_norm_k3")
    ref = _load_fixture_script()
    net = ref.make_torch_tcn(case["kwargs"], case["seed"])
    path = tmp_path / "model.pt"
    torch.save(net.state_dict(), path)
    model = from_pytorch_tcn(path, **case["kwargs"])
    assert_close(_offline(model, arrays["x"], []), arrays["y"])
    torch.save(argparse.Namespace(weights=1), tmp_path / "pickled.pth")
    with pytest.raises(Exception, match="weights_only"):
        from_pytorch_tcn(tmp_path / "pickled.pth", **case["kwargs"])
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="list.pth' holds a list, not a state dict"):
        from_pytorch_tcn(tmp_path / "list.pth", **case["kwargs"])
    # a bfloat16 checkpoint loads (converted to float32)
    half = {
        k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in net.state_dict().items()
    }
    model = from_pytorch_tcn(half, **case["kwargs"])
    assert_close(_offline(model, arrays["x"], []), arrays["y"], tol=5e-2)


def test_live_convert_cli_to_pt_loads_strictly_into_pytorch_tcn(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("pytorch_tcn")
    ref = _load_fixture_script()
    name = "noncausal_batch_norm_gate_skip_proj_k4"
    case, state, arrays = _fixture(name)
    model_dir = tmp_path / "model"
    from_pytorch_tcn(state, **case["kwargs"]).save(model_dir)
    out = tmp_path / "net.pt"
    assert main_convert(["to-pytorch", str(model_dir), "-o", str(out)]) == 0
    net = ref.make_torch_tcn(json.loads(out.with_suffix(".json").read_text()), 0)
    net.load_state_dict(torch.load(out, weights_only=True), strict=True)
    assert_close(ref.torch_offline(net, arrays["x"], _embeddings(arrays)), arrays["y"])


def test_live_local_conditioning_with_c_none_ports_both_ways():
    """pytorch-tcn's documented local-conditioning form (C, None) converts both ways, comes
    back as given, and the models compute the same outputs, offline and streamed."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("pytorch_tcn")
    ref = _load_fixture_script()
    kwargs = {
        "num_inputs": 3,
        "num_channels": [4, 5],
        "kernel_size": 3,
        "embedding_shapes": [(3, None), (2,), (2, 11)],
        "embedding_mode": "concat",
    }
    x, embs = ref.make_inputs(3, [["time", 3], ["global", 2], ["time", 2]], 2, 11, 5)
    net = ref.make_torch_tcn(kwargs, 5)
    model = from_pytorch_tcn(net.state_dict(), **kwargs)
    assert model.embedding_shapes == [(3, None), (2,), (2, 11)]
    expected = ref.torch_offline(net, x, embs)
    assert_close(_offline(model, x, embs), expected)
    assert_close(_streamed(model, x, embs, [4, 7]), ref.torch_streaming(net, x, embs, [4, 7]))

    _randomize(model, 6)
    state, out_kwargs = to_pytorch_tcn(model)
    assert out_kwargs["embedding_shapes"] == [[3, None], [2], [2, 11]]
    assert json.loads(json.dumps(out_kwargs)) == out_kwargs
    back = ref.make_torch_tcn(out_kwargs, 0)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    assert_close(_offline(model, x, embs), ref.torch_offline(back, x, embs))


def test_convert_cli_keeps_the_c_none_form(tmp_path):
    kwargs = {"num_inputs": 3, "num_channels": [4], "embedding_shapes": [[3, None], [2]]}
    model = TCN(**pytorch_kwargs_to_config(kwargs))
    state, _ = to_pytorch_tcn(model)
    ckpt, config = tmp_path / "net.safetensors", tmp_path / "kwargs.json"
    mx.save_safetensors(str(ckpt), {k: mx.array(v) for k, v in state.items()})
    config.write_text(json.dumps(kwargs))
    assert (
        main_convert(
            ["from-pytorch", str(ckpt), "--config", str(config), "-o", str(tmp_path / "m")]
        )
        == 0
    )
    assert TCN.load(tmp_path / "m").config["embedding_shapes"] == [[3, None], [2]]
    out = tmp_path / "back.safetensors"
    assert main_convert(["to-pytorch", str(tmp_path / "m"), "-o", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["embedding_shapes"] == [[3, None], [2]]


def test_live_folded_model_exports_as_use_norm_none():
    """After remove_weight_norm the export says use_norm=None and pytorch-tcn loads it."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("pytorch_tcn")
    ref = _load_fixture_script()
    model = TCN(3, [4, 5], kernel_sizes=3, causal=True)
    _randomize(model, 3)
    model.eval()
    x, _ = ref.make_inputs(3, [], 2, 9, 3)
    expected = _offline(model, x, [])
    model.remove_weight_norm()
    state, kwargs = to_pytorch_tcn(model)
    assert kwargs["use_norm"] is None
    net = ref.make_torch_tcn(kwargs, 0)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    assert_close(ref.torch_offline(net, x, []), expected)
    assert_close(_offline(from_pytorch_tcn(state, **kwargs), x, []), expected)


def test_export_refuses_a_partly_folded_model():
    model = TCN(3, [4, 5], kernel_sizes=3, causal=True)
    remove_weight_norm(model.network[0].conv2)
    with pytest.raises(ValueError, match=r"not on \['network.0.conv2'\]"):
        to_pytorch_tcn(model)


def _garbage_files(tmp_path: Path) -> dict[str, Path]:
    good = FIXTURES / "causal_weight_norm_k3.safetensors"
    noise = np.random.default_rng(0).bytes(300)
    files = {
        "noise.pt": noise,
        "noise.safetensors": noise,
        "empty.pth": b"",
        "truncated.safetensors": good.read_bytes()[:100],
        "truncated.pt": b"PK\x03\x04" + noise[:50],
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize(
    "name", ["noise.pt", "noise.safetensors", "empty.pth", "truncated.safetensors", "truncated.pt"]
)
def test_convert_cli_on_a_damaged_checkpoint_is_one_line_and_writes_nothing(name, tmp_path, caplog):
    ckpt = _garbage_files(tmp_path)[name]
    config = tmp_path / "kwargs.json"
    config.write_text(json.dumps(CASES["causal_weight_norm_k3"]["kwargs"]))
    out = tmp_path / "out"
    assert main_convert(["from-pytorch", str(ckpt), "--config", str(config), "-o", str(out)]) == 1
    (record,) = caplog.records
    assert "\n" not in record.getMessage()
    assert f"cannot read state dict file '{ckpt}'" in record.getMessage()
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"num_inputs": 3, "num_channels": [5, 5]', r"cannot read --config file .*: Expecting"),
        ("\xff\xfe", r"cannot read --config file .*codec can't decode"),
        ("[1, 2]", r"must hold a JSON object, got \[1, 2\]"),
        ('{"num_inputs": 3, "num_channels": 5}', r"num_channels must be a list of ints, got 5"),
        ('{"num_inputs": 3, "num_channels": [5], "kernel_size": "3"}', r"kernel_sizes must be"),
    ],
    ids=["truncated", "not-utf8", "list", "channels", "kernel"],
)
def test_convert_cli_on_a_bad_config_is_one_line_and_writes_nothing(text, match, tmp_path, caplog):
    config = tmp_path / "kwargs.json"
    config.write_bytes(text.encode("latin-1"))
    ckpt = FIXTURES / "causal_weight_norm_k3.safetensors"
    out = tmp_path / "out"
    assert main_convert(["from-pytorch", str(ckpt), "--config", str(config), "-o", str(out)]) == 1
    (record,) = caplog.records
    assert "\n" not in record.getMessage()
    assert re.search(match, record.getMessage()), record.getMessage()
    assert not out.exists()


def test_convert_cli_on_a_damaged_model_directory(tmp_path, caplog):
    model_dir = tmp_path / "m"
    TCN(3, [4]).save(model_dir)
    (model_dir / "config.json").write_text('{"num_inputs": 3}')
    ckpt = FIXTURES / "causal_weight_norm_k3.safetensors"
    argv = ["from-pytorch", str(ckpt), "--config", str(model_dir), "-o", str(tmp_path / "o")]
    assert main_convert(argv) == 1  # as --config: was a KeyError traceback
    assert "config.json' does not describe a TCN" in caplog.text
    (model_dir / "config.json").write_bytes(b"\xff")
    out = tmp_path / "net.pt"
    assert main_convert(["to-pytorch", str(model_dir), "-o", str(out)]) == 1
    assert "config.json is not valid JSON" in caplog.text
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_convert_cli_to_pytorch_writes_both_files_or_neither(tmp_path, caplog):
    model_dir = tmp_path / "m"
    TCN(3, [4]).save(model_dir)
    out = tmp_path / "net.safetensors"
    argv = [
        "to-pytorch",
        str(model_dir),
        "-o",
        str(out),
        "--config-out",
        str(tmp_path / "no" / "k.json"),
    ]
    assert main_convert(argv) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_convert_command_on_garbage_prints_one_line_without_traceback(tmp_path):
    ckpt = _garbage_files(tmp_path)["noise.safetensors"]
    config = tmp_path / "kwargs.json"
    config.write_text(json.dumps({"num_inputs": 3, "num_channels": [4]}))
    out = tmp_path / "out"
    argv = ["convert", "from-pytorch", str(ckpt), "--config", str(config), "-o", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(mlx_tcn.__file__).parents[1])}  # this package
    done = subprocess.run(
        [sys.executable, "-m", "mlx_tcn", *argv], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "cannot read state dict file" in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("fold", ["all", "some"])
def test_live_checkpoint_with_weight_norm_removed_in_torch(fold, tmp_path):
    """pytorch-tcn users remove weight norm per convolution in torch before saving, and keep
    use_norm='weight_norm' in their arguments: the checkpoint still converts, exactly."""
    pytest.importorskip("torch")
    pytest.importorskip("pytorch_tcn")
    from torch.nn.utils import parametrize

    ref = _load_fixture_script()
    kwargs = {"num_inputs": 3, "num_channels": [4, 5], "kernel_size": 3}
    net = ref.make_torch_tcn(kwargs, 2)
    x, _ = ref.make_inputs(3, [], 2, 9, 2)
    expected = ref.torch_offline(net, x, [])
    convs = [block.conv1 for block in net.network] + [block.conv2 for block in net.network]
    for conv in convs if fold == "all" else convs[:1]:
        parametrize.remove_parametrizations(conv, "weight")
    model = from_pytorch_tcn(net.state_dict(), **kwargs)
    assert_close(_offline(model, x, []), expected)
    if fold == "all":
        assert model.config["use_norm"] is None
        model.save(tmp_path / "m")
        assert_close(_offline(TCN.load(tmp_path / "m"), x, []), expected)
    else:
        with pytest.raises(ValueError, match=r"but not on \['network.0.conv1'\]"):
            model.save(tmp_path / "m")
        assert_close(_offline(model.remove_weight_norm(), x, []), expected)


def test_weight_norm_no_configuration_describes_is_refused_by_save_and_export(tmp_path):
    # Before: weight norm over dim 1 saved a folder TCN.load could not
    # read ("Expected shape (4, 1, 1) but received (1, 3, 1)") and exported original0 tensors
    # pytorch-tcn refused.
    from mlx_tcn import weight_norm

    over_dim_1 = TCN(2, [4], kernel_sizes=3)
    over_dim_1.remove_weight_norm()
    for block in over_dim_1.network:
        weight_norm(block.conv1, dim=1)
        weight_norm(block.conv2, dim=1)
    match = "weight norm over dim=1 on network.0.conv"
    with pytest.raises(ValueError, match=match):
        over_dim_1.save(tmp_path / "m")
    with pytest.raises(ValueError, match=match):
        to_pytorch_tcn(over_dim_1)
    over_dim_1.remove_weight_norm()  # the way out the message names
    over_dim_1.save(tmp_path / "m")
