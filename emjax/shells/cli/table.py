"""Reading the command line's input: a delimited text file or a ``.npy`` array, its columns chosen
by name or 1-based index, every problem reported at its 1-based file line and column."""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .options import InputError

DELIMITER_NAMES = {"\\t": "\t", "tab": "\t"}


class Table(NamedTuple):
    """The chosen numeric columns of an input file.

    Attributes:
        X: ``(rows, columns)`` float64; an empty text field is NaN.
        names: header names of the chosen columns, or None (no header row).
        lines: 1-based file line of each row; None for a ``.npy`` file (rows are 1-based there).
        columns: 1-based file column of each chosen column.
        keys: text of the key column (``key_column``) of each row, or None.
    """

    X: np.ndarray
    names: list | None
    lines: list | None
    columns: list
    keys: list | None = None

    def where(self, row: int, column: int) -> str:
        """``'line 7 column 2'`` for a CSV, ``'row 6 column 2'`` for ``.npy`` (0-based in, 1-based out)."""
        place = f"line {self.lines[row]}" if self.lines is not None else f"row {row + 1}"
        return f"{place} column {self.columns[column]}"


def load_data(path: str, delimiter: str | None = None, columns: str | None = None,
              key_column: str | None = None) -> Table:
    """The chosen columns of a ``.npy`` file or a delimited text file (:func:`read_fields`).

    ``columns`` and ``key_column`` name columns as in :func:`choose_columns`; without
    ``columns`` every column except ``key_column`` is chosen.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such file")
    if file.suffix == ".npy":
        names, lines, rows = None, None, _read_npy(file)
        width = rows.shape[1]
    else:
        names, lines, rows = read_fields(file, delimiter)
        width = len(rows[0])
    keys = None
    if key_column is not None:
        (key,) = choose_columns(key_column, names, width, file, option="--sequence-column")
        keys = [_key_text(row[key]) for row in rows]
    chosen = (choose_columns(columns, names, width, file) if columns is not None
              else [c for c in range(width) if key_column is None or c != key])
    if not chosen:
        raise InputError(f"{path}: no data columns left besides the sequence column (see --columns)")
    if lines is None:
        X = rows[:, chosen].astype(np.float64)
    else:
        X = _numbers(file, rows, lines, chosen, names)
    return Table(X, None if names is None else [names[c] for c in chosen], lines,
                 [c + 1 for c in chosen], keys)


def _read_npy(file: Path) -> np.ndarray:
    try:
        X = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{file}: not a readable .npy array ({err})") from None
    if X.dtype.kind not in "biuf":
        raise InputError(f"{file}: the array must be numeric; got dtype {X.dtype}")
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{file}: expected a non-empty (rows, features) array; got shape {X.shape}")
    return X


def read_fields(file: Path, delimiter: str | None = None):
    """``(header names or None, 1-based line of each row, rows of text fields)``.

    Blank lines and lines starting with '#' are skipped; when every line ends with the delimiter,
    that trailing delimiter is dropped (otherwise an empty last field is a missing value).
    Without ``delimiter`` it is the first of tab, ';' and ',' found on the first line.
    The first line is a header when one of its fields is not a number while the same field of
    the next line is; every line must have as many fields as the first.
    """
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{file}: cannot read as text ({err})") from None
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1)]
    lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
    if not lines:
        raise InputError(f"{file}: no data rows")
    delimiter = DELIMITER_NAMES.get(delimiter, delimiter)
    if delimiter == "":
        raise InputError("--delimiter must not be empty")
    if delimiter is None:
        delimiter = next((d for d in ("\t", ";", ",") if d in lines[0][1]), ",")
    trailing = all(line.endswith(delimiter) for _, line in lines)
    table = [(i, _fields(line, delimiter, trailing)) for i, line in lines]
    names = None
    if not all(map(_is_number, table[0][1])):
        if len(table) == 1:
            raise InputError(f"{file}: no data rows after the header on line {table[0][0]}")
        if any(not _is_number(a) and _is_number(b) for a, b in zip(table[0][1], table[1][1])):
            names, table = table[0][1], table[1:]
    width = len(names) if names else len(table[0][1])
    for number, fields in table:
        if len(fields) != width:
            raise InputError(f"{file}: line {number} has {len(fields)} fields separated by "
                             f"{delimiter!r}; expected {width} (see --delimiter)")
    return names, [number for number, _ in table], [fields for _, fields in table]


def read_table(file: Path, delimiter: str | None = None):
    """``(X, header names or None, 1-based line of each row)``: every column of a text file."""
    names, lines, rows = read_fields(file, delimiter)
    return _numbers(file, rows, lines, list(range(len(rows[0]))), names), names, lines


def choose_columns(spec: str, names: list | None, width: int, file, option: str = "--columns") -> list:
    """0-based indices of a comma-separated list of header names, 1-based indices and ranges
    ``a-b`` of them (a header name is matched first), in the order given, without repeats."""
    chosen = []
    for token in (t.strip() for t in str(spec).split(",")):
        if names is not None and token in names:
            picked = [names.index(token)]
        elif re.fullmatch(r"\d+", token):
            picked = [int(token) - 1]
        elif re.fullmatch(r"\d+-\d+", token):
            low, high = (int(t) for t in token.split("-"))
            if low > high:
                raise InputError(f"{option} {spec}: range {token!r} is empty (write low-high)")
            picked = list(range(low - 1, high))
        else:
            known = (f"its header names are {', '.join(names)}" if names is not None
                     else "it has no header row, so use 1-based column numbers")
            raise InputError(f"{option} {spec}: {file} has no column named {token!r}; {known}")
        bad = [c + 1 for c in picked if not 0 <= c < width]
        if bad:
            raise InputError(f"{option} {spec}: column {bad[0]} is out of range; {file} has "
                             f"{width} column(s), numbered from 1")
        chosen += picked
    repeated = sorted({c + 1 for c in chosen if chosen.count(c) > 1})
    if repeated:
        raise InputError(f"{option} {spec}: column {repeated[0]} is chosen more than once")
    return chosen


def _numbers(file, rows, lines, chosen, names) -> np.ndarray:
    """The chosen fields as float64 (an empty field is NaN); the first non-number is reported
    with its line and column."""
    X = np.empty((len(rows), len(chosen)))
    for r, fields in enumerate(rows):
        for j, c in enumerate(chosen):
            text = fields[c]
            try:
                X[r, j] = float(text) if text else np.nan
            except ValueError:
                named = f", {names[c]!r}" if names is not None else ""
                raise InputError(f"{file}: line {lines[r]}: {text!r} is not a number (column "
                                 f"{c + 1}{named}; choose columns with --columns)") from None
    return X


def refuse_nonfinite(path, table: Table, nan_hint: str | None) -> None:
    """One-line error for an infinite value, and for NaN (missing) unless ``nan_hint`` is None
    (then for a column with no value at all)."""
    checks = [(np.isinf(table.X), "infinite value(s)", "remove or rescale them")]
    if nan_hint is not None:
        checks.append((np.isnan(table.X), "NaN value(s) (missing)", nan_hint))
    else:
        empty = np.flatnonzero(np.isnan(table.X).all(axis=0))
        if empty.size:
            column = table.columns[empty[0]]
            named = f" ({table.names[empty[0]]!r})" if table.names is not None else ""
            raise InputError(f"{path}: column {column}{named} has no value on any row; leave it "
                             "out with --columns")
    for bad, what, hint in checks:
        if bad.any():
            row, column = np.argwhere(bad)[0]
            raise InputError(f"{path}: {int(bad.sum())} {what}, the first on "
                             f"{table.where(row, column)}; {hint}")


def _key_text(value) -> str:
    """A key field as text: as written in a CSV; a ``.npy`` number as an integer when it is one."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _fields(line: str, delimiter: str, trailing: bool) -> list:
    fields = [field.strip() for field in line.split(delimiter)]
    return fields[:-1] if trailing and len(fields) > 1 else fields


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
