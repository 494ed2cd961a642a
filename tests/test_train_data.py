"""Task generators and loaders against their defining properties."""

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from mlx_tcn.train.data import (
    adding_problem,
    copy_memory,
    load_table,
    read_idx,
    read_sequence_file,
    read_ts,
    select_columns,
    split_end_padding,
    to_float,
)
from mlx_tcn.train.split import Split, epoch_order, iterate_batches, num_batches
from mlx_tcn.train.tasks import MNIST_MEAN, MNIST_STD, load_mnist, load_polyphonic
from mlx_tcn.train.user_data import make_windows, numeric_columns, standardize_stats

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MNIST_DIR = SHARED / "mnist"
POLY_DIR = SHARED / "polyphonic"
needs_mnist = pytest.mark.skipif(
    not MNIST_DIR.is_dir(), reason=f"MNIST IDX files not found in {MNIST_DIR}"
)
needs_poly = pytest.mark.skipif(
    not POLY_DIR.is_dir(), reason=f"polyphonic .mat files not found in {POLY_DIR}"
)


def test_adding_problem_target_is_sum_of_marked_values():
    x, y = adding_problem(500, 30, np.random.default_rng(0))
    assert x.shape == (500, 30, 2) and y.shape == (500, 1)
    assert x.dtype == np.float32
    values, marks = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    np.testing.assert_array_equal(marks.sum(axis=1), 2.0)
    assert set(np.unique(marks)) == {0.0, 1.0}
    np.testing.assert_allclose(y[:, 0], (values * marks).sum(axis=1), rtol=1e-6)
    # Marked positions cover the whole sequence (not only the two halves of the original task).
    first = marks.argmax(axis=1)
    assert first.min() == 0 and (30 - 1 - marks[:, ::-1].argmax(axis=1)).max() == 29


def test_adding_problem_trivial_baseline_is_one_sixth():
    _, y = adding_problem(20000, 10, np.random.default_rng(1))
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.01


def test_adding_problem_is_deterministic_for_a_seed():
    a = adding_problem(4, 8, np.random.default_rng(3))
    b = adding_problem(4, 8, np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="seq_len must be at least 2"):
        adding_problem(4, 1, np.random.default_rng(0))


def test_copy_memory_layout():
    t, m = 20, 10
    x, y = copy_memory(64, t, m, np.random.default_rng(0))
    assert x.shape == (64, t + 2 * m, 1) and y.shape == (64, t + 2 * m)
    digits = x[:, :m, 0]
    assert ((digits >= 1) & (digits <= 8)).all()
    np.testing.assert_array_equal(x[:, m : m + t - 1, 0], 0)  # T - 1 blanks
    np.testing.assert_array_equal(x[:, -(m + 1) :, 0], 9)  # marker, then m more nines
    np.testing.assert_array_equal(y[:, : m + t], 0)
    np.testing.assert_array_equal(y[:, -m:], digits.astype(np.int32))
    assert y.dtype == np.int32
    with pytest.raises(ValueError, match="must be positive"):
        copy_memory(1, 0, 10, np.random.default_rng(0))


def _write_idx(path: Path, arr: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    raw = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.idx", arr, compress)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), arr)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(ValueError, match="truncated: expected 9 values, got 2"):
        read_idx(tmp_path / "short")


def test_read_idx_names_damage_it_used_to_misreport(tmp_path):
    # Before: an EOFError the CLI took for a bug, a header of 9 dimensions read past its end
    # ("expected 10278...000 values"), trailing bytes called "truncated".
    _write_idx(tmp_path / "a.gz", np.arange(1000) % 10, True)
    (tmp_path / "cut.gz").write_bytes((tmp_path / "a.gz").read_bytes()[:30])
    with pytest.raises(ValueError, match="cut.gz is a damaged gzip file"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "nine").write_bytes(bytes([0, 0, 8, 9]) + bytes(40))
    with pytest.raises(ValueError, match=r"not an IDX file of 1 to 4 dimensions \(header says 9"):
        read_idx(tmp_path / "nine")
    (tmp_path / "long").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]))
    with pytest.raises(ValueError, match="has 1 bytes more than its header's 2 values"):
        read_idx(tmp_path / "long")


def test_mnist_labels_and_shapes_are_checked(tmp_path):
    # Labels outside 0-9 trained silently (cross-entropy of an out-of-range class is
    # undefined); swapped files failed in a reshape naming no file.
    _fake_mnist(tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 200]), False)
    with pytest.raises(
        ValueError, match="MNIST test in .*: labels must be digits 0-9, found 0-200"
    ):
        load_mnist(tmp_path)
    _fake_mnist(tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((6, 14, 14)), False)
    with pytest.raises(
        ValueError, match=r"images of shape \(6, 14, 14\) .* expected \(N, 28, 28\)"
    ):
        load_mnist(tmp_path)


def _fake_mnist(folder: Path, n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    for prefix in ("train", "t10k"):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", images, False)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, False)
    return images


def test_mnist_sequence_normalisation_and_fixed_permutation(tmp_path):
    images = _fake_mnist(tmp_path)
    train, test, perm = load_mnist(tmp_path)
    assert perm is None
    x, y, mask = train.batch(np.array([0, 1]))
    assert x.shape == (2, 784, 1) and mask is None
    expected = (images[:2].reshape(2, 784) / 255.0 - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(np.array(x)[..., 0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.array(y), [0, 1])
    _, _, perm1 = load_mnist(tmp_path, permute=True, seed=4)
    ptrain, ptest, perm2 = load_mnist(tmp_path, permute=True, seed=4)
    np.testing.assert_array_equal(perm1, perm2)  # one fixed permutation per seed
    assert sorted(perm1.tolist()) == list(range(784))
    px = np.array(ptrain.batch(np.array([0]))[0])[0, :, 0]
    pt = np.array(ptest.batch(np.array([0]))[0])[0, :, 0]
    np.testing.assert_allclose(px, expected[0][perm1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pt, expected[0][perm1], rtol=1e-5, atol=1e-6)  # same for test
    capped, _, _ = load_mnist(tmp_path, n_train=3)
    assert len(capped) == 3


def test_mnist_missing_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST folder not found"):
        load_mnist(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="no train-images IDX file"):
        load_mnist(tmp_path)


@needs_mnist
def test_real_mnist_shapes_and_labels():
    train, test, _ = load_mnist(MNIST_DIR, n_train=100)
    assert len(train) == 100 and len(test) == 10000
    x, y, _ = test.batch(np.arange(8))
    assert x.shape == (8, 784, 1)
    assert set(np.array(test.y).tolist()) == set(range(10))
    # Normalised pixel values span [(0 - mean) / std, (1 - mean) / std].
    assert math.isclose(float(np.array(x).min()), -MNIST_MEAN / MNIST_STD, rel_tol=1e-5)


@needs_poly
@pytest.mark.parametrize(
    ("name", "counts"), [("JSB_Chorales", (229, 76, 77)), ("Nottingham", (694, 173, 170))]
)
def test_polyphonic_next_frame_pairs(name, counts):
    splits = load_polyphonic(POLY_DIR / f"{name}.mat")
    assert tuple(len(splits[s]) for s in ("train", "val", "test")) == counts
    s = splits["train"]
    assert all(a.shape[1] == 88 for a in s.x[:10])
    np.testing.assert_array_equal(s.x[0][1:], s.y[0][:-1])  # target is the input shifted by one
    assert set(np.unique(s.x[0]).tolist()) <= {0.0, 1.0}
    x, y, mask = s.batch(np.array([0, 1]))
    lengths = [len(s.x[0]), len(s.x[1])]
    assert x.shape == (2, max(lengths), 88)
    np.testing.assert_array_equal(np.array(mask).sum(axis=1), lengths)


def test_polyphonic_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="polyphonic data file not found"):
        load_polyphonic(tmp_path / "x.mat")


def _mat(path, **splits):
    scipy_io = pytest.importorskip("scipy.io")
    scipy_io.savemat(str(path), splits)
    return path


def _cells(rolls, column=False):
    cells = np.empty((len(rolls), 1) if column else (1, len(rolls)), dtype=object)
    for i, roll in enumerate(rolls):
        cells.flat[i] = roll
    return cells


def test_polyphonic_files_as_cell_rows_or_columns(tmp_path):
    # Before: a column of cells ({a; b; c}) was read as its first row: one sequence a split.
    rng = np.random.default_rng(0)
    rolls = [(rng.random((t, 88)) < 0.1).astype(np.uint8) for t in (5, 7, 9)]
    for column in (False, True):
        cells = _cells(rolls, column)
        got = load_polyphonic(_mat(tmp_path / "p.mat", traindata=cells, validdata=cells,
                                   testdata=cells))  # fmt: skip
        assert [len(s) for s in got["train"].x] == [4, 6, 8]
        np.testing.assert_array_equal(got["val"].y[2], rolls[2][1:])


def test_damaged_polyphonic_files_are_refused_before_training(tmp_path):
    # Before: "max() arg is an empty sequence", "len() of unsized object", a broadcast error,
    # or (40 keys, an empty split) an error only after the run folder was created.
    good = _cells([np.zeros((6, 88))] * 2)
    cases = [
        ({"traindata": np.empty((1, 0), dtype=object)}, "'traindata' is an empty cell array"),
        ({"traindata": np.zeros((3, 88))}, "'traindata' is not a cell array"),
        ({"traindata": _cells([np.zeros((88, 6))])}, r"shape \(88, 6\), expected \(time, 88\)"),
        ({"traindata": _cells([np.zeros((6, 40))])}, r"sequence 0 has shape \(6, 40\)"),
        ({"validdata": _cells([np.zeros((1, 88))])}, "no val sequence has the 2 frames"),
    ]
    for i, (bad, match) in enumerate(cases):
        splits = {"traindata": good, "validdata": good, "testdata": good, **bad}
        with pytest.raises(ValueError, match=match):
            load_polyphonic(_mat(tmp_path / f"bad{i}.mat", **splits))


def test_ragged_batches_pad_and_mask():
    split = Split([np.ones((2, 1)), np.ones((4, 1))], [np.ones((2, 1)), np.ones((4, 1))])
    x, y, mask = split.batch(np.array([0, 1]))
    np.testing.assert_array_equal(np.array(mask), [[1, 1, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(np.array(x)[0, :, 0], [1, 1, 0, 0])


def test_epoch_order_depends_only_on_seed_and_epoch():
    np.testing.assert_array_equal(epoch_order(10, 1, 2), epoch_order(10, 1, 2))
    assert not np.array_equal(epoch_order(10, 1, 2), epoch_order(10, 1, 3))
    np.testing.assert_array_equal(epoch_order(5, 1, 2, shuffle=False), np.arange(5))
    assert num_batches(10, 3, drop_last=True) == 3
    assert num_batches(10, 3, drop_last=False) == 4
    assert num_batches(2, 3, drop_last=True) == 1


def test_iterate_batches_resumes_mid_epoch():
    split = Split(np.arange(10, dtype=np.float32)[:, None, None], np.arange(10))
    full = [np.array(y).tolist() for _, y, _ in iterate_batches(split, 3, seed=0, epoch=1)]
    tail = [np.array(y).tolist() for _, y, _ in iterate_batches(split, 3, seed=0, epoch=1, start=1)]
    assert tail == full[1:] and len(full) == 3


def test_make_windows():
    series = np.arange(10, dtype=np.float32)[:, None]
    x, y, rows = make_windows(series, series * 10, seq_len=4, horizon=2, stride=3)
    np.testing.assert_array_equal(x[:, :, 0], [[0, 1, 2, 3], [3, 4, 5, 6]])
    np.testing.assert_array_equal(y[:, 0], [50, 80])
    np.testing.assert_array_equal(rows, [5, 8])
    with pytest.raises(ValueError, match="too short for seq_len=9 and horizon=2"):
        make_windows(series, series, seq_len=9, horizon=2)


def test_load_table_formats(tmp_path):
    (tmp_path / "a.csv").write_text("t,v\n1,2.5\n2,3.5\n")
    header, table = load_table(tmp_path / "a.csv")
    assert header == ["t", "v"]
    np.testing.assert_array_equal(to_float(table, [1], header, "a.csv")[:, 0], [2.5, 3.5])
    np.save(tmp_path / "b.npy", np.arange(6.0).reshape(3, 2))
    assert load_table(tmp_path / "b.npy")[0] == ["0", "1"]
    np.savez(tmp_path / "c.npz", load=np.arange(3.0), temp=np.ones(3))
    header, table = load_table(tmp_path / "c.npz")
    assert header == ["load", "temp"] and table.shape == (3, 2)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("a.csv", "t,v\n1\n", "row 2 has 1 fields, header has 2"),
        ("a.csv", "t,v\n", "needs a header row and at least one data row"),
        ("a.txt", "x", "unknown format '.txt'"),
        # a repeated name: evaluate and predict chose the first column twice
        ("a.csv", "v,v\n1,2\n", "the header names 'v' more than once"),
        # NumPy's own errors named no file (EOFError, BadZipFile, "allow_pickle=")
        ("a.npy", "", r"a.npy is not a readable .npy file \(No data left in file\)"),
        ("a.npz", "", r"a.npz is not a readable .npz file"),
        ("a.npy", "t,v\n1,2\n", r"a.npy holds Python objects \(pickled data\) or is not a"),
    ],
)
def test_load_table_errors(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=match):
        load_table(tmp_path / name)


def test_numpy_files_that_numpy_cannot_read_are_named(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"o.npy holds Python objects"):
        load_table(tmp_path / "o.npy")
    np.save(tmp_path / "t.npy", np.ones((300, 2)))
    (tmp_path / "t.npy").write_bytes((tmp_path / "t.npy").read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match=r"t.npy is not a readable .npy file: Failed to read"):
        load_table(tmp_path / "t.npy")
    np.savez(tmp_path / "z.npz", x=np.zeros((6, 0)), y=np.arange(6))
    with pytest.raises(ValueError, match=r"'x' has shape \(6, 0, 1\): no sequences, steps"):
        read_sequence_file(tmp_path / "z.npz", labels=True)


def test_load_table_names_a_file_that_is_not_utf8(tmp_path):
    # Before: "'utf-8' codec can't decode byte 0xe9 in position 7 ..." without the file name.
    (tmp_path / "a.csv").write_bytes("t,v\n1,\xe9\n".encode("latin-1"))
    with pytest.raises(
        ValueError,
        match=r"data file .*a.csv is not UTF-8 text \(byte 0xe9 at offset 6\); save it as UTF-8",
    ):
        load_table(tmp_path / "a.csv")


def test_load_table_reads_utf8_with_a_byte_order_mark(tmp_path):
    # Spreadsheet exports start with a BOM; it must not become part of the first column name.
    (tmp_path / "a.csv").write_bytes("\ufeffcafé,v\n1,2\n".encode())
    assert load_table(tmp_path / "a.csv")[0] == ["café", "v"]


def test_load_table_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="data file not found"):
        load_table(tmp_path / "x.csv")


def test_inputs_chosen_by_default_leave_out_text_and_refuse_typos_and_empty_columns():
    # A text column (a date) is left out; a column of numbers with one stray word, or with no
    # value at all, was left out too, silently (docs/own_data.md: an error naming it).
    t = np.array([["2020-01-01", "1.0", "", "1"], ["2020-01-02", "oops", "NA", "2"]], dtype=object)
    h = ["date", "x", "empty", "y"]
    assert numeric_columns([h[0], h[3]], t[:, [0, 3]], "f.csv") == [1]
    with pytest.raises(ValueError, match=r"column 'x' of f.csv is not numeric: row 3 holds 'oops'"):
        numeric_columns(h[:2], t[:, :2], "f.csv")
    with pytest.raises(ValueError, match="column 'empty' of f.csv has no value at all"):
        numeric_columns([h[2], h[3]], t[:, [2, 3]], "f.csv")
    with pytest.raises(ValueError, match="column '1' of f.npy has no finite value"):
        numeric_columns(["0", "1"], np.array([[1.0, np.nan], [2.0, np.nan]]), "f.npy")


def test_column_selection_and_numeric_errors():
    header = ["a", "b", "c"]
    assert select_columns(header, ["c", "0"], "f.csv", "input") == [2, 0]
    assert select_columns(header, None, "f.csv", "input") == [0, 1, 2]
    with pytest.raises(ValueError, match=r"target column 'z' not in f.csv \(columns: a, b, c\)"):
        select_columns(header, ["z"], "f.csv", "target")
    table = np.array([["1", "x"], ["2", "3"]], dtype=object)
    with pytest.raises(ValueError, match="column 'b' of f.csv is not numeric"):
        to_float(table, [1], ["a", "b"], "f.csv")
    with pytest.raises(ValueError, match="non-finite value in column 'a', row 2"):
        to_float(np.array([["1"], ["nan"]], dtype=object), [0], ["a"], "f.csv")


@pytest.mark.parametrize("missing", ["", "NA", " nan ", "?", "null", "N/A"])
def test_to_float_fills_a_series_gaps(missing, caplog):
    # A series with missing cells (pandas writes an empty cell for NaN, R writes NA): before,
    # "column 'v' of f.csv is not numeric: could not convert string to float: ''".
    cells = [missing, "2", missing, missing, "8", "9", missing]
    table = np.array([[c] for c in cells], dtype=object)
    with caplog.at_level("WARNING"):
        out = to_float(table, [0], ["v"], "f.csv", fill_gaps=True)
    # before the first value: that value; inside: linear; after the last: the last
    np.testing.assert_array_equal(out[:, 0], [2, 2, 4, 6, 8, 9, 9])
    assert "4 missing value(s) in column 'v' (data rows 1, 3, 4, 7)" in caplog.text
    # without fill_gaps (a table of separate sequences) a missing cell is still an error
    with pytest.raises(ValueError, match="non-finite value in column 'v', row 1"):
        to_float(table, [0], ["v"], "f.csv")


def test_to_float_gap_filling_refuses_what_it_cannot_fill():
    empty = np.array([[""], ["NA"]], dtype=object)
    with pytest.raises(ValueError, match="column 'v' has no values, only missing cells"):
        to_float(empty, [0], ["v"], "f.csv", fill_gaps=True)
    with pytest.raises(ValueError, match="non-finite value in column 'v', row 2"):
        to_float(
            np.array([["1"], ["inf"], [""]], dtype=object), [0], ["v"], "f.csv", fill_gaps=True
        )
    with pytest.raises(ValueError, match="column 'v' of f.csv is not numeric"):
        to_float(np.array([["1"], ["n.a."]], dtype=object), [0], ["v"], "f.csv", fill_gaps=True)


def test_standardize_stats():
    mean, std = standardize_stats(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_allclose(mean, [2.0, 5.0])
    np.testing.assert_allclose(std, [1.0, 1.0])  # constant column: std 0 becomes 1


# --------------------------------------------------------------------------- sequence files

TS_HEADER = """% an ARFF-style comment
# a comment
@problemName Tiny
@timeStamps false
@univariate false
@equalLength false
@classLabel true a b
@data
"""


def test_a_ts_file_of_different_lengths_and_two_channels(tmp_path):
    # Before, only scripts/ts_to_npz.py read .ts files, and the lengths were lost in padding.
    (tmp_path / "t.ts").write_text(TS_HEADER + "1,2,3:4,5,6:a\n\n7,8:9,10:b\n1.5,?,?:2,NaN,?: a \n")
    cases, labels = read_ts(tmp_path / "t.ts")
    assert [c.tolist() for c in cases] == [[[1, 4], [2, 5], [3, 6]], [[7, 9], [8, 10]], [[1.5, 2]]]
    assert labels.tolist() == ["a", "b", "a"]
    x, y, lengths = read_sequence_file(tmp_path / "t.ts", labels=True)
    assert x.dtype == np.float32 and x.shape == (3, 3, 2) and y.tolist() == ["a", "b", "a"]
    assert lengths.tolist() == [3, 2, 1]
    assert x[1].tolist() == [[7, 9], [8, 10], [8, 10]]  # padded with its last row
    assert x[2].tolist() == [[1.5, 2]] * 3
    assert read_sequence_file(tmp_path / "t.ts", labels=False).y is None


def test_a_ts_file_of_equal_lengths_has_no_lengths_and_unlabelled_cases(tmp_path):
    text = TS_HEADER.replace("@classLabel true a b", "@classLabel false") + "1,2:3,4\n5,6:7,8\n"
    (tmp_path / "u.ts").write_text(text)
    x, y, lengths = read_sequence_file(tmp_path / "u.ts", labels=False)
    assert x[:, :, 1].tolist() == [[3, 4], [7, 8]] and y is None and lengths is None
    with pytest.raises(ValueError, match=r"u.ts has no class labels \(@classLabel false\)"):
        read_sequence_file(tmp_path / "u.ts", labels=True)


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ("1,2:3,4:a\n1,x,3:a\n", r"line 10, channel 0: 'x' is not a number"),
        ("1,2,3:4,5:a\n", r"line 9: the channels have different lengths \(3, 2\)"),
        ("1,2:3,4:a\n1,2:b\n", r"line 10: 1 channel\(s\), the first case has 2"),
        ("1,?,3:a\n", r"line 9, channel 0: missing value at step 1, inside the series"),
        ("1,2:c\n", r"line 9: label 'c' is not one of @classLabel's a, b"),
        ("1,2:\n", r"line 9: expected channels and a label after the last ':'"),
        ("1,2,inf:a\n", r"line 9, channel 0: an infinite value"),
        ("?,?:a\n", r"line 9, channel 0: no values"),
    ],
)
def test_malformed_ts_lines_are_refused_naming_file_and_line(tmp_path, lines, match):
    (tmp_path / "m.ts").write_text(TS_HEADER + lines)
    with pytest.raises(ValueError, match="m.ts, " + match):
        read_sequence_file(tmp_path / "m.ts", labels=True)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("@problemName E\n@data\n", r"e.ts: no cases after @data"),
        ("@problemName E\n1,2:a\n", r"e.ts, line 2: expected a header line \(@...\) or @data"),
        ("@problemName E\n", r"e.ts: no @data line"),
        ("@timeStamps true\n@data\n(0,1):a\n", r"e.ts, line 1: @timeStamps true files are not"),
    ],
)
def test_ts_files_without_cases_or_in_another_layout_are_refused(tmp_path, text, match):
    (tmp_path / "e.ts").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_ts(tmp_path / "e.ts")
    with pytest.raises(FileNotFoundError, match="data file not found"):
        read_ts(tmp_path / "missing.ts")


def test_nan_rows_at_the_end_give_each_sequence_its_length(tmp_path):
    # Before, the NaN padding was filled and the lengths dropped.
    x = np.arange(24, dtype=np.float32).reshape(3, 4, 2)
    x[1, 2:] = np.nan
    x[2, 1:] = np.nan
    filled, lengths = split_end_padding(x, "f.npz")
    assert lengths.tolist() == [4, 2, 1]
    assert filled[1].tolist() == [[8, 9], [10, 11], [10, 11], [10, 11]]
    assert filled[2].tolist() == [[16, 17]] * 4
    np.savez(tmp_path / "c.npz", x=x, y=np.array(["p", "q", "p"]))
    found = read_sequence_file(tmp_path / "c.npz", labels=True)
    assert found.lengths.tolist() == [4, 2, 1] and np.array_equal(found.x, filled)
    # steps no sequence reaches are dropped; then equal lengths need no lengths at all
    x[0, 2:] = np.nan
    x[2, 1:2] = [[16, 17]]
    shorter, lengths = split_end_padding(x, "f.npz")
    assert shorter.shape == (3, 2, 2) and lengths is None


def test_an_equal_length_file_comes_back_unchanged_without_lengths():
    x = np.random.default_rng(0).normal(size=(3, 5, 2)).astype(np.float32)
    filled, lengths = split_end_padding(x, "f.npz")
    assert filled is x and lengths is None


def test_batches_of_sequences_with_lengths_carry_their_step_mask():
    split = Split(np.zeros((3, 4, 1), dtype=np.float32), np.zeros(3), lengths=np.array([4, 2, 1]))
    _, _, mask = split.batch(np.array([2, 0]))
    np.testing.assert_array_equal(np.array(mask), [[1, 0, 0, 0], [1, 1, 1, 1]])
    assert Split(np.zeros((3, 4, 1)), np.zeros(3)).batch(np.array([0]))[2] is None
