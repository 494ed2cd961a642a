"""scripts/ts_to_npz.py: UCR/UEA .ts files to the .npz a classification run reads."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

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


def test_a_variable_length_multivariate_file_is_padded_with_each_last_value(tmp_path, ts_to_npz):
    (tmp_path / "t.ts").write_text(TS)
    assert ts_to_npz.main([str(tmp_path / "t.ts"), str(tmp_path / "t.npz")]) == 0
    z = np.load(tmp_path / "t.npz")
    assert z["x"].shape == (2, 3, 2) and z["y"].tolist() == ["a", "b"]
    assert z["x"][0].tolist() == [[1, 4], [2, 5], [3, 6]]
    assert z["x"][1].tolist() == [[7, 9], [8, 10], [8, 10]]  # the last step repeated
    ts_to_npz.main([str(tmp_path / "t.ts"), str(tmp_path / "z.npz"), "--pad", "zero",
                    "--length", "4"])  # fmt: skip
    assert np.load(tmp_path / "z.npz")["x"][1, :, 0].tolist() == [7, 8, 0, 0]


def test_a_file_without_data_is_refused(tmp_path, ts_to_npz):
    (tmp_path / "e.ts").write_text("@problemName Empty\n@data\n")
    with pytest.raises(ValueError, match="no @data section or no cases"):
        ts_to_npz.main([str(tmp_path / "e.ts"), str(tmp_path / "e.npz")])
