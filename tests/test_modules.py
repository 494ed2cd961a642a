"""Tests for mlx_tcn.modules.ModuleList."""

from __future__ import annotations

import copy

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import pytest
from mlx.utils import tree_flatten

from mlx_tcn.modules import ModuleList


class Block(nn.Module):
    """A tiny stand-in for a TemporalBlock with pytorch-tcn-like child names."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_in, n_out, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_out, n_out, kernel_size=3, padding=1)

    def __call__(self, x: mx.array) -> mx.array:
        return nn.relu(self.conv2(nn.relu(self.conv1(x))))


class Net(nn.Module):
    """Blocks in a ModuleList plus a skip list with a ``None`` placeholder."""

    def __init__(self):
        super().__init__()
        self.network = ModuleList([Block(2, 4), Block(4, 3)])
        self.downsample_skip_connection = ModuleList([nn.Linear(4, 3), None])

    def __call__(self, x: mx.array) -> mx.array:
        skip = 0
        for block, proj in zip(self.network, self.downsample_skip_connection, strict=True):
            x = block(x)
            skip = skip + (proj(x) if proj is not None else x)
        return skip


def _linears(n: int) -> list[nn.Linear]:
    return [nn.Linear(1, 1) for _ in range(n)]


# --------------------------------------------------------------------- list API


def test_is_a_list_and_empty_by_default():
    ml = ModuleList()
    assert isinstance(ml, list)
    assert len(ml) == 0
    assert ModuleList(None) == []
    assert repr(ml) == "ModuleList()"


def test_construct_from_any_iterable():
    mods = _linears(3)
    ml = ModuleList(m for m in mods)
    assert len(ml) == 3
    assert all(a is b for a, b in zip(ml, mods, strict=True))


def test_append_extend_insert_keep_order_and_identity():
    a, b, c, d, e = _linears(5)
    ml = ModuleList([a])
    assert ml.append(b) is ml
    assert ml.extend([c, None]) is ml
    ml.insert(1, d)
    ml += [e]
    assert [id(m) for m in ml] == [id(a), id(d), id(b), id(c), id(None), id(e)]


def test_indexing_and_negative_index():
    mods = _linears(3)
    ml = ModuleList(mods)
    assert ml[0] is mods[0]
    assert ml[-1] is mods[2]
    with pytest.raises(IndexError):
        ml[3]


def test_slice_returns_module_list_of_same_modules():
    mods = _linears(5)
    ml = ModuleList(mods)
    part = ml[1:4:2]
    assert type(part) is ModuleList
    assert [id(m) for m in part] == [id(mods[1]), id(mods[3])]
    assert type(ml[::-1]) is ModuleList


def test_setitem_and_slice_assignment():
    a, b, c, d = _linears(4)
    ml = ModuleList([a, b])
    ml[0] = c
    ml[1] = None
    assert ml[0] is c and ml[1] is None
    ml[0:1] = [d, a]
    assert [id(m) for m in ml] == [id(d), id(a), id(None)]


def test_add_gives_module_list():
    a, b = _linears(2)
    both = ModuleList([a]) + [b]
    assert type(both) is ModuleList
    assert both[0] is a and both[1] is b


def test_delete_pop_and_iteration():
    mods = _linears(3)
    ml = ModuleList(mods)
    del ml[0]
    assert ml.pop() is mods[2]
    assert list(iter(ml)) == [mods[1]]


def test_repr_lists_items():
    ml = ModuleList([nn.Linear(2, 3), None])
    assert repr(ml) == (
        "ModuleList(\n  (0): Linear(input_dims=2, output_dims=3, bias=True)\n  (1): None\n)"
    )


# --------------------------------------------------------------------- type checks


def test_constructor_rejects_non_module_item():
    with pytest.raises(TypeError, match=r"ModuleList\(\) item 1 got int: 3"):
        ModuleList([nn.Linear(1, 1), 3])


def test_constructor_rejects_non_iterable_and_single_module():
    with pytest.raises(TypeError, match="expects an iterable of modules, got int: 5"):
        ModuleList(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects an iterable of modules, got Linear"):
        ModuleList(nn.Linear(1, 1))  # type: ignore[arg-type]


def test_append_insert_setitem_reject_non_module():
    ml = ModuleList(_linears(2))
    with pytest.raises(TypeError, match=r"ModuleList.append\(\) got str: 'relu'"):
        ml.append("relu")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ModuleList.insert\(\) got function"):
        ml.insert(0, lambda v: v)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"assignment to ModuleList\[1\] got array"):
        ml[1] = mx.ones(2)
    with pytest.raises(TypeError, match=r"slice assignment item 0 got dict"):
        ml[0:1] = [{"weight": mx.ones(1)}]
    with pytest.raises(TypeError, match=r"ModuleList.extend\(\) item 0 got float: 1.5"):
        ml.extend([1.5])
    with pytest.raises(TypeError, match=r"ModuleList \+ item 0 got int"):
        ml + [0]
    assert len(ml) == 2  # nothing was added by the failed calls


def test_failed_extend_is_atomic():
    ml = ModuleList()
    with pytest.raises(TypeError, match="item 1 got str"):
        ml.extend([nn.Linear(1, 1), "x"])
    assert len(ml) == 0


# --------------------------------------------------------------------- MLX integration


def test_parameter_names_follow_pytorch_tcn():
    names = sorted(k for k, _ in tree_flatten(Net().parameters()))
    assert names == [
        "downsample_skip_connection.0.bias",
        "downsample_skip_connection.0.weight",
        "network.0.conv1.bias",
        "network.0.conv1.weight",
        "network.0.conv2.bias",
        "network.0.conv2.weight",
        "network.1.conv1.bias",
        "network.1.conv1.weight",
        "network.1.conv2.bias",
        "network.1.conv2.weight",
    ]


def test_children_modules_and_mode_propagate():
    net = Net()
    assert len(net.modules()) == 1 + 2 + 4 + 1  # net, 2 blocks, 4 convs, 1 linear
    net.eval()
    assert not net.network[1].conv2.training
    net.train()
    assert net.downsample_skip_connection[0].training


def test_parent_repr_shows_items():
    text = repr(Net())
    assert "(network.1): Block(" in text
    assert "(downsample_skip_connection.0): Linear(input_dims=4" in text


def test_save_and_load_weights_round_trip(tmp_path):
    src, dst = Net(), Net()
    x = mx.random.normal((2, 7, 2), key=mx.random.key(0))
    assert not mx.allclose(src(x), dst(x)).item()
    path = str(tmp_path / "w.safetensors")
    src.save_weights(path)
    assert sorted(mx.load(path)) == sorted(k for k, _ in tree_flatten(src.parameters()))
    dst.load_weights(path, strict=True)
    assert mx.array_equal(src(x), dst(x)).item()


def test_strict_load_rejects_missing_entry(tmp_path):
    weights = tree_flatten(Net().parameters())
    with pytest.raises(ValueError, match="network.1.conv2.weight"):
        Net().load_weights([(k, v) for k, v in weights if k != "network.1.conv2.weight"])


def test_value_and_grad_and_update_train_the_items():
    mx.random.seed(0)
    net = Net()
    x = mx.random.normal((4, 9, 2))
    target = mx.random.normal((4, 9, 3))

    def loss_fn(model: Net) -> mx.array:
        return ((model(x) - target) ** 2).mean()

    grad_fn = nn.value_and_grad(net, loss_fn)
    loss0, grads = grad_fn(net)
    flat = dict(tree_flatten(grads))
    assert set(flat) == {k for k, _ in tree_flatten(net.parameters())}
    assert all(mx.any(g != 0).item() for g in flat.values())

    before = net.network[0].conv1.weight
    opt = optim.SGD(learning_rate=0.05)
    for _ in range(20):
        loss, grads = grad_fn(net)
        opt.update(net, grads)
        mx.eval(net.parameters(), opt.state)
    assert type(net.network) is ModuleList
    assert not mx.array_equal(before, net.network[0].conv1.weight).item()
    assert loss_fn(net).item() < 0.9 * loss0.item()


def test_model_update_replaces_item_parameters():
    net = Net()
    net.update({"network": [{"conv1": {"bias": mx.full((4,), 7.0)}}]})
    assert net.network[0].conv1.bias.tolist() == [7.0] * 4


def test_freeze_reaches_items():
    net = Net()
    net.network[0].freeze()
    names = {k for k, _ in tree_flatten(net.trainable_parameters())}
    assert "network.1.conv1.weight" in names
    assert not any(k.startswith("network.0.") for k in names)


def test_update_modules_swaps_an_item():
    net = Net()
    new = Block(2, 4)
    net.update_modules({"network": [new]})
    assert type(net.network) is ModuleList
    assert net.network[0] is new


def test_compile_with_model_state():
    net = Net()
    x = mx.ones((1, 5, 2))
    step = mx.compile(lambda v: net(v), inputs=[net.state], outputs=[net.state])
    assert mx.allclose(step(x), net(x)).item()


def test_deepcopy_keeps_type_and_values():
    net = Net()
    clone = copy.deepcopy(net)
    assert type(clone.network) is ModuleList
    assert clone.network[0] is not net.network[0]
    assert clone.downsample_skip_connection[1] is None
    x = mx.ones((1, 5, 2))
    assert mx.array_equal(clone(x), net(x)).item()
