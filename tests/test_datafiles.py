"""Data files for `exprgrad eval ... X=@train.csv`: CSV and .npy, and the
one-line errors that name the file, the row and the column."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from exprgrad.cli import main
from exprgrad.datafiles import DataFileError, read_data

numbers = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4).flatmap(
    lambda width: st.lists(st.lists(numbers, min_size=width, max_size=width), min_size=1,
                           max_size=6)),
       st.booleans(), st.booleans())
def test_a_csv_file_reads_back_the_numbers_written(tmp_path_factory, rows, header, spaces):
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    sep = ", " if spaces else ","
    lines = ([sep.join(f"x{i}" for i in range(len(rows[0])))] if header else []) + \
        [sep.join(repr(v) for v in row) for row in rows] + [""]
    path.write_text("\n".join(lines))
    got = read_data(str(path))
    assert got == ([row[0] for row in rows] if len(rows[0]) == 1 else rows)


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n3,x\n", "data.csv, row 3, column 2: 'x' is not a number"),
    ("1,2\n3\n", "data.csv, row 2: 1 columns, expected 2 (as in row 1)"),
    ("1,2\n3,\n", "data.csv, row 2, column 2: an empty cell is not a number"),
    ("1\nnan\n", "data.csv, row 2, column 1: 'nan' is not a finite number"),
    ("h\n\n", "data.csv: no rows of numbers"),
])
def test_a_bad_csv_file_is_one_line_naming_file_row_and_column(tmp_path, text, message):
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(DataFileError) as caught:
        read_data(str(path))
    assert str(caught.value) == f"{path}{message[len('data.csv'):]}"
    assert "\n" not in str(caught.value)


def test_npy_files_hold_arrays_of_finite_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    good, bad, text = tmp_path / "X.npy", tmp_path / "bad.npy", tmp_path / "s.npy"
    np.save(good, np.arange(6).reshape(3, 2))
    np.save(bad, np.asarray([[1.0, 2.0], [np.inf, 0.0]]))
    np.save(text, np.asarray(["a", "b"]))
    assert read_data(str(good)).tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    with pytest.raises(DataFileError, match=r"bad.npy: element \[1, 0\] is inf"):
        read_data(str(bad))
    with pytest.raises(DataFileError, match="not numbers"):
        read_data(str(text))
    (tmp_path / "junk.npy").write_text("not numpy")
    with pytest.raises(DataFileError, match="junk.npy: not a .npy file"):
        read_data(str(tmp_path / "junk.npy"))


def test_eval_reads_parameters_from_data_files(tmp_path, capsys):
    source = tmp_path / "dot.expr"
    source.write_text("def dot(w[3], x[3]):\n    return sum(w[i]*x[i] for i in range(3))\n")
    (tmp_path / "x.csv").write_text("x\n1\n2\n3\n")
    assert main(["eval", str(source), "dot", "w=[1,1,2]", f"x=@{tmp_path / 'x.csv'}"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["dot = 9.0", "ddot/dw = [1.0, 2.0, 3.0]",
                                "ddot/dx = [1.0, 1.0, 2.0]"]


def test_eval_reports_a_bad_data_file_in_one_line(tmp_path, capsys):
    source = tmp_path / "dot.expr"
    source.write_text("def dot(w[2], x[2]):\n    return w[0]*x[0] + w[1]*x[1]\n")
    (tmp_path / "x.csv").write_text("1\noops\n")
    assert main(["eval", str(source), "dot", "w=[1,1]", f"x=@{tmp_path / 'x.csv'}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"exprgrad: {tmp_path / 'x.csv'}, row 2, column 1: 'oops' is not a number"
    assert main(["eval", str(source), "dot", "w=[1,1]", "x=@missing.csv"]) == 1
    assert "missing.csv: no such file" in capsys.readouterr().err
