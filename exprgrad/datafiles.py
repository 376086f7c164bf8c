"""Data files for `exprgrad eval FILE FUNC X=@train.csv y=@labels.csv`.

A CSV file has one row per sample.  A first line that is not all numbers is
a header and is skipped; blank lines are skipped; cells may be padded with
spaces.  A file of one column is a list of numbers (for `y[n]`), a file of
several columns a list of rows (for `X[n][5]`).  A `.npy` file is read with
NumPy (`allow_pickle=False`), when NumPy is installed.

A bad file raises `DataFileError` with one line that names the file, and the
row and column where it can (rows and columns count from 1, header included,
as a spreadsheet shows them).
"""

from __future__ import annotations

import csv
import math


class DataFileError(ValueError):
    """A data file that cannot be read as numbers; the message is one line."""


def read_data(path: str):
    """The numbers in a `.csv` or `.npy` file: a list, a list of rows, or
    (for `.npy`) a NumPy array."""
    if path.lower().endswith(".npy"):
        return _read_npy(path)
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise DataFileError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except (OSError, csv.Error) as error:
        raise DataFileError(f"{path}: {getattr(error, 'strerror', None) or error}") from None
    return _numbers(path, rows)


def _numbers(path: str, rows: list[list[str]]):
    numbered = [(k, row) for k, row in enumerate(rows, 1) if any(cell.strip() for cell in row)]
    if numbered and not all(_is_number(cell) for cell in numbered[0][1]):
        numbered = numbered[1:]  # a header
    if not numbered:
        raise DataFileError(f"{path}: no rows of numbers")
    width = len(numbered[0][1])
    data = []
    for line, row in numbered:
        if len(row) != width:
            raise DataFileError(f"{path}, row {line}: {len(row)} columns, expected {width} "
                                f"(as in row {numbered[0][0]})")
        data.append([_number(path, line, column, cell)
                     for column, cell in enumerate(row, 1)])
    return [row[0] for row in data] if width == 1 else data


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _number(path: str, line: int, column: int, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        shown = repr(cell.strip()) if cell.strip() else "an empty cell"
        raise DataFileError(f"{path}, row {line}, column {column}: {shown} is not a number") \
            from None
    if not math.isfinite(value):
        raise DataFileError(f"{path}, row {line}, column {column}: {cell.strip()!r} is not a "
                            "finite number")
    return value


def _read_npy(path: str):
    try:
        import numpy
    except ImportError:
        raise DataFileError(f"{path}: reading .npy files needs NumPy "
                            "(pip install 'exprgrad[array]'), or save the data as CSV") from None
    try:
        array = numpy.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file") from None
    except (OSError, ValueError) as error:
        raise DataFileError(f"{path}: not a .npy file of numbers ({error})"
                            .replace("\n", " ")) from None
    if not isinstance(array, numpy.ndarray) or array.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: holds {getattr(array, 'dtype', type(array).__name__)} "
                            "data, not numbers")
    bad = numpy.argwhere(~numpy.isfinite(array.astype(numpy.float64)))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        raise DataFileError(f"{path}: element {list(index)} is {float(array[index])!r}, "
                            "not a finite number")
    return array.astype(numpy.float64)
