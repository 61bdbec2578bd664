"""The command line's output files: checked before any work, never the input file, JSON and CSV."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from .options import InputError


def check_outputs(data: str, outputs: dict) -> None:
    """Refuses, before anything is fitted, an output (``{option: path or None}``) whose directory
    does not exist, that names the input file (also through a link), or that another output names."""
    given = {option: path for option, path in outputs.items() if path}
    for option, path in given.items():
        if not Path(path).resolve().parent.is_dir():
            raise InputError(f"cannot write {path}: its directory does not exist")
        if os.path.exists(data) and os.path.exists(path) and os.path.samefile(path, data):
            raise InputError(f"{option} {path} is the input data file {data}; refusing to "
                             f"overwrite it (choose another {option})")
    resolved = {}
    for option, path in given.items():
        other = resolved.setdefault(Path(path).resolve(), option)
        if other != option:
            raise InputError(f"{other} and {option} name the same file {path}; choose two files")


def write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror}") from None
    print(f"wrote {path}")


def write_json(path: str, report: dict) -> None:
    write_text(path, json.dumps(report, indent=1) + "\n")


def write_csv(path: str, header: list, columns: list) -> None:
    """A CSV with ``header`` and one column per sequence of ``columns`` (text and integers as
    they are, floats with 17 significant digits, so they read back exactly; quoted as needed)."""
    def text(value):
        if isinstance(value, (str, int, np.integer)):
            return value
        return repr(float(value))

    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([text(value) for value in row] for row in zip(*columns))
    write_text(path, lines.getvalue())


def number(value) -> float | None:
    """A float for JSON; NaN and infinities (not JSON) become null."""
    value = float(value)
    return value if np.isfinite(value) else None


def as_lists(params) -> dict:
    """A NamedTuple of arrays (nested NamedTuples flattened by field name) as JSON lists."""
    out = {}
    for name, value in params._asdict().items():
        if hasattr(value, "_asdict"):
            out.update(as_lists(value))
        else:
            out[name] = np.asarray(value, dtype=np.float64).tolist()
    return out


def row_positions(table) -> tuple:
    """``(header, columns)`` locating each row of ``table``: its file line, or its 1-based row."""
    if table.lines is None:
        return ["row"], [list(range(1, table.X.shape[0] + 1))]
    return ["line"], [list(table.lines)]
