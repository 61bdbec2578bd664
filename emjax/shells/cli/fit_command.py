"""``emjax fit``: one Gaussian mixture from many restarts; a summary, a JSON report, per-row labels."""
from __future__ import annotations

import sys
import warnings

import jax
import numpy as np

from ...selection.criteria import aic, bic
from ...engine.driver import ConvergenceWarning, FitError
from ...engine.restarts import fit, timed_fit
from ...models import GaussianMixture
from ...engine.progress import Ticker
from ...core.status import Status, describe
from .options import InputError
from .output import as_lists, check_outputs, number, row_positions, write_csv, write_json
from .table import load_data, refuse_nonfinite

NAN_HINT = "pass --missing marginalize to fit with them"


def load_mixture_data(args):
    """The chosen columns of ``args.data``, NaN refused unless ``--missing marginalize``."""
    with Ticker(f"loading {args.data}"):
        table = load_data(args.data, args.delimiter, args.columns)
    refuse_nonfinite(args.data, table, NAN_HINT if args.missing == "error" else None)
    return table


def run_fit(args) -> dict:
    """Loads the data, fits, prints a summary and optionally writes JSON and per-row labels."""
    check_outputs(args.data, {"--out": args.out, "--labels-out": args.labels_out})
    table = load_mixture_data(args)
    X = table.X
    options = dict(n_init=args.n_init, max_iter=args.max_iter, tol=args.tol)
    try:
        model = GaussianMixture(args.n_components, args.covariance, init_params=args.init,
                                missing=args.missing)
        label = (f"fitting {X.shape[0]} x {X.shape[1]}, K={model.n_components} "
                 f"{model.covariance_type}, {args.n_init} restarts: compiling, then running")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            result, compile_s, run_s = fit_with_progress(label, args.verbose, model, X, args.seed,
                                                         **options)
    except (ValueError, TypeError) as err:
        raise InputError(f"{args.data}: {err}") from None
    for warning in caught:
        print(f"emjax: warning: {warning.message}", file=sys.stderr)
    report = result_dict(model, result, X, compile_s, run_s)
    report.update(data=str(args.data), features=table.names, columns=table.columns, seed=args.seed,
                  **options)
    if report["objective"] is None or not np.isfinite(np.asarray(result.params.means)).all():
        scale = float(np.nanmax(np.abs(X)))
        raise FitError(f"the best restart (#{report['best_index']}, {report['status']}) has no "
                       f"finite objective or means (restarts: {report['restarts']['summary']}); "
                       f"the data's largest |value| is {scale:.3g} (rescale the data if that is extreme)")
    print(summary(report))
    if args.out:
        write_json(args.out, report)
    if args.labels_out:
        write_labels(args.labels_out, model, result.params, table)
    return report


def fit_with_progress(label: str, verbose: bool, model, data, seed: int, **options):
    """``(result, compile_seconds, run_seconds)`` of :func:`emjax.fit`: with ``verbose``, its live
    progress (compile time, then iterations and the best objective); otherwise ``label`` with
    the elapsed time (:class:`emjax.engine.progress.Ticker`) around :func:`emjax.timed_fit`."""
    if not verbose:
        with Ticker(label):
            return timed_fit(model, data, jax.random.key(seed), **options)
    result = fit(model, data, jax.random.key(seed), verbose=True, **options)
    compile_s = result.timing.compile_seconds
    return result, compile_s, result.timing.seconds - compile_s


def write_labels(path: str, model, params, table) -> None:
    """CSV: each row's file line (``row`` for ``.npy``), most probable component (0-based, as in
    the JSON's parameter lists) and responsibilities ``p_k`` = P(component k | row)."""
    resp = np.asarray(model.posterior(params, table.X), dtype=np.float64)
    labels = np.asarray(model.predict(params, table.X))
    header, columns = row_positions(table)
    header += ["component"] + [f"p_{k}" for k in range(resp.shape[1])]
    write_csv(path, header, columns + [labels] + list(resp.T))


def result_dict(model, result, X, compile_s: float, run_s: float) -> dict:
    """The JSON report of a fit: parameters as lists, the best restart, every restart's outcome."""
    statuses = np.asarray(result.restarts.status)
    objectives = np.asarray(result.restarts.objective, dtype=np.float64)
    counts = {Status(int(c)).name: int(n) for c, n in zip(*np.unique(statuses, return_counts=True))}
    return {
        "model": {"n_components": model.n_components, "covariance_type": model.covariance_type,
                  "init_params": model.init_params, "missing": model.missing},
        "n_samples": int(X.shape[0]), "n_features": int(X.shape[1]),
        "params": as_lists(result.params),
        "objective": number(result.objective), "log_likelihood": number(result.log_likelihood),
        "n_iter": int(result.n_iter), "status": Status(int(result.status)).name,
        "best_index": int(result.best_index),
        "restarts": {"status_counts": counts, "summary": describe(statuses),
                     "objectives": [number(v) for v in objectives],
                     "n_iter": np.asarray(result.restarts.n_iter).tolist()},
        "bic": number(bic(model, result.params, X)), "aic": number(aic(model, result.params, X)),
        "compile_seconds": compile_s, "run_seconds": run_s,
    }


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
