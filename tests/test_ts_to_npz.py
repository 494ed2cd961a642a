"""scripts/ts_to_npz.py: UCR/UEA .ts files to the .npz a classification run reads."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mlx_tcn.train.data import read_sequence_file

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ts_to_npz.py"


@pytest.fixture(scope="module")
def ts_to_npz():
    spec = importlib.util.spec_from_file_location("ts_to_npz", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TS = """# a comment
@problemName Tiny
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b
@data
1,2,3:4,5,6:a
7,8:9,10:b
"""


def test_a_variable_length_file_keeps_its_lengths_as_nan_padding(tmp_path, ts_to_npz):
    # Before, the default padding repeated the last value, and the lengths were lost.
    (tmp_path / "t.ts").write_text(TS)
    assert ts_to_npz.main([str(tmp_path / "t.ts"), str(tmp_path / "t.npz")]) == 0
    z = np.load(tmp_path / "t.npz")
    assert z["x"].shape == (2, 3, 2) and z["y"].tolist() == ["a", "b"]
    assert z["x"][0].tolist() == [[1, 4], [2, 5], [3, 6]]
    assert z["x"][1, :2].tolist() == [[7, 9], [8, 10]] and np.isnan(z["x"][1, 2]).all()
    back = read_sequence_file(tmp_path / "t.npz", labels=True)
    assert back.lengths.tolist() == [3, 2]  # what a run reads back from it


def test_edge_and_zero_padding_and_a_given_length(tmp_path, ts_to_npz):
    (tmp_path / "t.ts").write_text(TS)
    ts_to_npz.main([str(tmp_path / "t.ts"), str(tmp_path / "e.npz"), "--pad", "edge"])
    assert np.load(tmp_path / "e.npz")["x"][1].tolist() == [[7, 9], [8, 10], [8, 10]]
    ts_to_npz.main([str(tmp_path / "t.ts"), str(tmp_path / "z.npz"), "--pad", "zero",
                    "--length", "4"])  # fmt: skip
    assert np.load(tmp_path / "z.npz")["x"][1, :, 0].tolist() == [7, 8, 0, 0]


def test_a_file_without_data_is_refused(tmp_path, ts_to_npz):
    (tmp_path / "e.ts").write_text("@problemName Empty\n@data\n")
    with pytest.raises(ValueError, match="no cases after @data"):
        ts_to_npz.main([str(tmp_path / "e.ts"), str(tmp_path / "e.npz")])
