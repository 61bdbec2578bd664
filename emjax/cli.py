"""The ``emjax`` command line: ``emjax demo`` and ``emjax fit data.csv``.

Bad input (a missing file, a non-numeric CSV, an unknown option value, ``--out`` naming the input
file) gives a one-line error and exit code 2; a fit in which every restart failed, or whose best
restart has no finite objective, gives a one-line failure report and exit code 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import jax
import numpy as np

from .components.gaussian import COVARIANCE_TYPES
from .criteria import aic, bic
from .driver import ConvergenceWarning, FitError
from .fit import timed_fit
from .models import GaussianMixture
from .models.gaussian_mixture import INIT_METHODS
from .progress import Ticker
from .status import Status, describe


class InputError(Exception):
    """Bad command-line input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise InputError(f"{message} (see '{self.prog} --help')")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emjax", description="Batched Expectation-Maximization on JAX.")
    commands = parser.add_subparsers(dest="command", metavar="{demo,fit}")

    demo = commands.add_parser("demo", help="fit Old Faithful and a generated mixture, write a PNG")
    demo.add_argument("--n-init", type=positive_int, default=1000, help="restarts per dataset (default 1000)")
    demo.add_argument("--out", default="emjax-demo.png", help="PNG to write (default emjax-demo.png)")

    fit = commands.add_parser("fit", help="fit a Gaussian mixture to a CSV or .npy file")
    fit.add_argument("data", help="CSV (optional header row, '#' comments) or .npy, rows = samples")
    fit.add_argument("--delimiter", help="CSV field separator (default: detected among tab, ';' "
                     "and ',')")
    fit.add_argument("--missing", default="error", choices=("error", "marginalize"),
                     help="NaN (missing) values: refuse them (default) or marginalise them out")
    fit.add_argument("--n-components", type=positive_int, required=True, help="number of components K")
    fit.add_argument("--covariance", default="full", choices=COVARIANCE_TYPES)
    fit.add_argument("--n-init", type=positive_int, default=1000, help="restarts (default 1000)")
    fit.add_argument("--max-iter", type=positive_int, default=200, help="EM iterations per restart (default 200)")
    fit.add_argument("--tol", type=float, default=1e-3,
                     help="stop when the per-sample objective changes by less (default 1e-3)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the restarts' PRNG key (default 0)")
    fit.add_argument("--init", default="kmeans++", choices=INIT_METHODS, help="how restarts start")
    fit.add_argument("--out", help="write the result as JSON to this file")
    return parser


def main(argv=None) -> int:
    """Runs the command line on ``argv`` (``sys.argv[1:]`` by default); returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "demo":
            from .demo import run_demo

            run_demo(args.out, args.n_init)
        elif args.command == "fit":
            run_fit(args)
        else:
            build_parser().print_help(sys.stderr)
            return 2
    except InputError as err:
        print(f"emjax: error: {err}", file=sys.stderr)
        return 2
    except FitError as err:
        print(f"emjax: fit failed: {err}", file=sys.stderr)
        return 1
    return 0


def run_fit(args) -> dict:
    """``emjax fit``: loads the data, fits, prints a summary and optionally writes JSON."""
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise InputError(f"cannot write {args.out}: its directory does not exist")
    if (args.out and os.path.exists(args.data) and os.path.exists(args.out)
            and os.path.samefile(args.out, args.data)):
        raise InputError(f"--out {args.out} is the input data file {args.data}; refusing to "
                         "overwrite it (choose another --out)")
    with Ticker(f"loading {args.data}"):
        X, features, lines = load_data(args.data, args.delimiter)
    if args.missing == "error":
        _refuse_missing(args.data, X, lines)
    try:
        model = GaussianMixture(args.n_components, args.covariance, init_params=args.init,
                                missing=args.missing)
        options = dict(n_init=args.n_init, max_iter=args.max_iter, tol=args.tol)
        label = (f"fitting {X.shape[0]} x {X.shape[1]}, K={model.n_components} "
                 f"{model.covariance_type}, {args.n_init} restarts: compiling, then running")
        with Ticker(label), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            result, compile_s, run_s = timed_fit(model, X, jax.random.key(args.seed), **options)
    except (ValueError, TypeError) as err:
        raise InputError(f"{args.data}: {err}") from None
    for warning in caught:
        print(f"emjax: warning: {warning.message}", file=sys.stderr)
    report = result_dict(model, result, X, compile_s, run_s)
    report.update(data=str(args.data), features=features, seed=args.seed, **options)
    if report["objective"] is None or not np.isfinite(np.asarray(result.params.means)).all():
        scale = float(np.nanmax(np.abs(X)))
        raise FitError(f"the best restart (#{report['best_index']}, {report['status']}) has no "
                       f"finite objective or means (restarts: {report['restarts']['summary']}); "
                       f"the data's largest |value| is {scale:.3g} (rescale the data if that is extreme)")
    print(summary(report))
    if args.out:
        try:
            Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
        except OSError as err:
            raise InputError(f"cannot write {args.out}: {err.strerror}") from None
        print(f"wrote {args.out}")
    return report


def load_data(path: str, delimiter: str | None = None):
    """``(X, feature names or None, 1-based line of each row or None)`` from a ``.npy`` file or a
    delimited text file (:func:`read_table`)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such file")
    if file.suffix == ".npy":
        try:
            X = np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InputError(f"{path}: not a readable .npy array ({err})") from None
        if X.dtype.kind not in "biuf":
            raise InputError(f"{path}: the array must be numeric; got dtype {X.dtype}")
        names = lines = None
    else:
        X, names, lines = read_table(file, delimiter)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.shape[0] == 0:
        raise InputError(f"{path}: expected a non-empty (rows, features) table; got shape {X.shape}")
    return X.astype(np.float64), names, lines


def read_table(file: Path, delimiter: str | None = None):
    """``(X, header names or None, 1-based line of each row)`` of a delimited text file.

    Blank lines and lines starting with '#' are skipped; one trailing delimiter per line is
    dropped. Without ``delimiter`` it is the first of tab, ';' and ',' found on the first line.
    The first line is a header only when it holds a non-number while the next line is all
    numbers; every line must have as many fields as the first.
    """
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{file}: cannot read as text ({err})") from None
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1)]
    lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
    if not lines:
        raise InputError(f"{file}: no data rows")
    delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
    if delimiter == "":
        raise InputError("--delimiter must not be empty")
    if delimiter is None:
        delimiter = next((d for d in ("\t", ";", ",") if d in lines[0][1]), ",")
    table = [(i, _fields(line, delimiter)) for i, line in lines]
    names = None
    if not all(map(_is_number, table[0][1])):
        if len(table) == 1:
            raise InputError(f"{file}: no data rows after the header on line {table[0][0]}")
        if all(map(_is_number, table[1][1])):
            names, table = table[0][1], table[1:]
    width = len(names) if names else len(table[0][1])
    rows = []
    for number, fields in table:
        if len(fields) != width:
            raise InputError(f"{file}: line {number} has {len(fields)} fields separated by "
                             f"{delimiter!r}; expected {width} (see --delimiter)")
        bad = next((f for f in fields if not _is_number(f)), None)
        if bad is not None:
            raise InputError(f"{file}: line {number}: {bad!r} is not a number")
        rows.append([float(f) for f in fields])
    X = np.array(rows, dtype=np.float64).reshape(len(rows), width)
    return X, names, [number for number, _ in table]


def _fields(line: str, delimiter: str) -> list[str]:
    fields = [field.strip() for field in line.split(delimiter)]
    return fields[:-1] if len(fields) > 1 and not fields[-1] else fields


def _refuse_missing(path, X, lines) -> None:
    """A one-line error for NaN when ``--missing error`` (the default)."""
    missing = np.isnan(X)
    if missing.any():
        row, column = np.argwhere(missing)[0]
        where = f"line {lines[row]}" if lines is not None else f"row index {row}"
        raise InputError(f"{path}: {int(missing.sum())} NaN value(s) (missing), the first on {where} "
                         f"column {column + 1}; pass --missing marginalize to fit with them")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def result_dict(model, result, X, compile_s: float, run_s: float) -> dict:
    """The JSON report of a fit: parameters as lists, the best restart, every restart's outcome."""
    statuses = np.asarray(result.restarts.status)
    objectives = np.asarray(result.restarts.objective, dtype=np.float64)
    counts = {Status(int(c)).name: int(n) for c, n in zip(*np.unique(statuses, return_counts=True))}
    return {
        "model": {"n_components": model.n_components, "covariance_type": model.covariance_type,
                  "init_params": model.init_params, "missing": model.missing},
        "n_samples": int(X.shape[0]), "n_features": int(X.shape[1]),
        "params": {name: np.asarray(value, dtype=np.float64).tolist()
                   for name, value in result.params._asdict().items()},
        "objective": _number(result.objective), "log_likelihood": _number(result.log_likelihood),
        "n_iter": int(result.n_iter), "status": Status(int(result.status)).name,
        "best_index": int(result.best_index),
        "restarts": {"status_counts": counts, "summary": describe(statuses),
                     "objectives": [_number(v) for v in objectives],
                     "n_iter": np.asarray(result.restarts.n_iter).tolist()},
        "bic": _number(bic(model, result.params, X)), "aic": _number(aic(model, result.params, X)),
        "compile_seconds": compile_s, "run_seconds": run_s,
    }


def _number(value) -> float | None:
    """A float for JSON; NaN and infinities (not JSON) become null."""
    value = float(value)
    return value if np.isfinite(value) else None


def summary(report: dict) -> str:
    """A few lines for the terminal (a value that is not finite, null in the JSON, shows as n/a)."""
    params = report["params"]
    restarts = len(report["restarts"]["objectives"])
    g = lambda value: "n/a" if value is None else f"{value:.6g}"
    return "\n".join([
        f"best restart #{report['best_index']}: {report['status']} after {report['n_iter']} "
        f"iterations, objective {g(report['objective'])}, log-likelihood "
        f"{g(report['log_likelihood'])} per sample",
        f"restarts: {report['restarts']['summary']}",
        f"BIC {g(report['bic'])}, AIC {g(report['aic'])}",
        f"compile {report['compile_seconds']:.1f}s, run {report['run_seconds']:.1f}s "
        f"({restarts / max(report['run_seconds'], 1e-9):.0f} restarts/s)",
        "weights " + np.array2string(np.asarray(params["weights"]), precision=3),
        "means\n" + np.array2string(np.asarray(params["means"]), precision=4),
    ])
