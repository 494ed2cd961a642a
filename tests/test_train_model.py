"""The model factory: the TCN a TrainConfig builds, and the reference code's initialisation."""

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten

from mlx_tcn import TCN
from mlx_tcn.cli import _parser
from mlx_tcn.train import build_model, resolve_config
from mlx_tcn.train.model import model_kwargs, reference_init

SMALL = dict(levels=3, hidden=8, kernel_size=3, seq_len=20)


def _built(seed: int, **overrides) -> dict:
    cfg = resolve_config({}, {**SMALL, **overrides})
    mx.random.seed(seed)
    return dict(tree_flatten(build_model(cfg, num_inputs=2, num_outputs=1).parameters()))


@pytest.mark.parametrize("seed", [0, 3])
def test_reference_init_redraws_only_the_downsample_and_the_head(seed):
    """The reference code's N(0, 0.01) reaches the 1x1 downsample and the linear head only:
    every other parameter is the draw the same seed gives without it, and the two weights
    are the next normal draws after the model, scaled by 0.01, downsample first."""
    plain, ref = _built(seed), _built(seed, reference_init=True)
    assert plain.keys() == ref.keys()
    changed = {k for k in plain if not mx.array_equal(plain[k], ref[k]).item()}
    assert changed == {"network.0.downsample.weight", "projection_out.weight"}

    mx.random.seed(seed)
    TCN(**model_kwargs(resolve_config({}, SMALL), 2, 1))  # the same draws as build_model
    downsample = 0.01 * mx.random.normal(plain["network.0.downsample.weight"].shape)
    head = 0.01 * mx.random.normal(plain["projection_out.weight"].shape)
    assert mx.array_equal(ref["network.0.downsample.weight"], downsample).item()
    assert mx.array_equal(ref["projection_out.weight"], head).item()
    # the library's own draws are far wider (xavier_uniform, PyTorch's default for the head)
    assert mx.abs(plain["network.0.downsample.weight"]).max().item() > 0.1


def test_reference_init_without_downsample_changes_the_head_only():
    cfg = resolve_config({}, SMALL)
    mx.random.seed(0)
    model = TCN(**model_kwargs(cfg, num_inputs=8, num_outputs=1))  # 8 in, 8 channels
    before = dict(tree_flatten(model.parameters()))
    reference_init(model, std=0.5)
    after = dict(tree_flatten(model.parameters()))
    changed = {k for k in before if not mx.array_equal(before[k], after[k]).item()}
    assert changed == {"projection_out.weight"}
    assert 0.3 < mx.std(after["projection_out.weight"]).item() < 0.7


def test_reference_init_is_a_cli_flag_and_off_by_default():
    args = vars(_parser().parse_args(["train", "--reference-init"]))
    assert args["reference_init"] is True
    assert vars(_parser().parse_args(["train", "--no-reference-init"]))["reference_init"] is False
    assert resolve_config().reference_init is False


def test_reference_init_must_be_a_bool():
    with pytest.raises(TypeError, match="reference_init"):
        resolve_config({"reference_init": "yes"})
