"""TCNConfig: one frozen, validated value from which a TCN is built and saved."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlx_tcn import TCN, TCNConfig


def test_config_is_frozen_and_normalised():
    cfg = TCNConfig(np.int64(3), np.array([4, 5]), kernel_sizes=[3, 2], dilation_reset=2)
    assert cfg.num_inputs == 3 and type(cfg.num_inputs) is int
    assert cfg.num_channels == (4, 5) and cfg.kernels == [3, 2]
    assert cfg.dilation_list == [1, 2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.num_inputs = 4  # type: ignore[misc]


def test_model_config_is_the_dataclass_as_a_dict():
    model = TCN(2, [3, 4], kernel_sizes=5, embedding_shapes=[(2,), (3, None)], use_norm=None)
    assert model.tcn_config.to_dict() == model.config
    assert model.config["kernel_sizes"] == 5  # an int stays an int in config.json
    assert model.config["embedding_shapes"] == [[2], [3, None]]
    assert TCNConfig(**model.config) == model.tcn_config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"use_norm": "group_norm"}, "use_norm must be one of"),
        ({"embedding_mode": "mul"}, "embedding_mode must be one of"),
        ({"dropout": 1.5}, "dropout must be in"),
        ({"num_channels": []}, "num_channels must not be empty"),
    ],
)
def test_config_and_model_report_the_same_errors(kwargs, message):
    args = {"num_inputs": 2, "num_channels": [3], **kwargs}
    with pytest.raises(ValueError, match=message):
        TCNConfig(**args)
    with pytest.raises(ValueError, match=message):
        TCN(**args)
