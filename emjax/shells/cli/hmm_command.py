"""``emjax hmm``: a hidden Markov model fitted to the sequences of a CSV (rows grouped by a
sequence-id column, in file order, of any lengths); parameters, and optionally Viterbi states."""
from __future__ import annotations

import sys
import warnings

import numpy as np

from ...selection.criteria import aic_from, bic_from
from ...engine.driver import ConvergenceWarning
from ...models import HMM
from ...engine.progress import Ticker
from ...core.status import Status, describe
from .fit_command import fit_with_progress
from .options import InputError
from .output import as_lists, check_outputs, number, row_positions, write_csv, write_json
from .table import load_data, refuse_nonfinite

NAN_HINT = "an HMM here takes no missing values; remove or fill those rows"


def run_hmm(args) -> dict:
    """Loads and groups the rows, fits, prints a summary, optionally writes JSON and states."""
    check_outputs(args.data, {"--out": args.out, "--states-out": args.states_out})
    with Ticker(f"loading {args.data}"):
        table = load_data(args.data, args.delimiter, args.columns, args.sequence_column)
    refuse_nonfinite(args.data, table, None if args.emission == "categorical" else NAN_HINT)
    model = _model(args, table)
    x, lengths, ids, order = group_sequences(table)
    try:
        steps = x.astype(np.int32) if args.emission == "categorical" else x
        label = (f"fitting {len(ids)} sequence(s), {table.X.shape[0]} steps x {x.shape[2]}, "
                 f"{args.n_states} {args.emission} states, {args.n_init} restarts: compiling, then running")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            result, compile_s, run_s = fit_with_progress(label, args.verbose, model, (steps, lengths),
                                                         args.seed, n_init=args.n_init,
                                                         max_iter=args.max_iter, tol=args.tol)
        log_likelihood = float(np.sum(np.asarray(model.log_prob(result.params, (steps, lengths)))))
    except (ValueError, TypeError) as err:
        raise InputError(f"{args.data}: {err}") from None
    for warning in caught:
        print(f"emjax: warning: {warning.message}", file=sys.stderr)
    n_steps, p = int(lengths.sum()), model.n_free_parameters(result.params)
    statuses = np.asarray(result.restarts.status)
    report = {
        "model": {"n_states": model.n_states, "emission": model.emission,
                  "covariance_type": model.covariance_type, "n_categories": list(model.n_categories)},
        "data": str(args.data), "features": table.names, "columns": table.columns,
        "sequence_ids": ids, "lengths": lengths.tolist(), "n_steps": n_steps,
        "params": as_lists(result.params), "log_likelihood": number(log_likelihood),
        "log_likelihood_per_step": number(log_likelihood / n_steps), "n_parameters": p,
        "bic": number(bic_from(log_likelihood, p, n_steps)), "aic": number(aic_from(log_likelihood, p)),
        "status": Status(int(result.status)).name, "n_iter": int(result.n_iter),
        "best_index": int(result.best_index), "restarts": describe(statuses),
        "seed": args.seed, "n_init": args.n_init, "max_iter": args.max_iter, "tol": args.tol,
        "compile_seconds": compile_s, "run_seconds": run_s,
    }
    print(hmm_summary(report))
    if args.out:
        write_json(args.out, report)
    if args.states_out:
        states = np.asarray(model.predict(result.params, (steps, lengths)))
        write_states(args.states_out, table, states, ids, order)
    return report


def group_sequences(table):
    """Rows grouped by sequence id (first appearance first, file order within a sequence):
    ``(x (s, t_max, d) zero-padded, lengths (s,), ids, order)`` where ``order[s]`` lists the
    table rows of sequence ``s``."""
    keys = table.keys if table.keys is not None else [""] * table.X.shape[0]
    groups: dict = {}
    for row, key in enumerate(keys):
        groups.setdefault(key, []).append(row)
    ids, order = list(groups), list(groups.values())
    lengths = np.array([len(rows) for rows in order], np.int32)
    x = np.zeros((len(ids), int(lengths.max()), table.X.shape[1]))
    for s, rows in enumerate(order):
        x[s, :len(rows)] = table.X[rows]
    return x, lengths, ids, order


def write_states(path: str, table, states, ids, order) -> None:
    """CSV in file order: each row's file line (``row`` for ``.npy``), sequence id, step within
    its sequence (from 1) and Viterbi state (0-based, as in the JSON's parameter lists)."""
    n = table.X.shape[0]
    sequence, step, state = [None] * n, np.zeros(n, np.int64), np.zeros(n, np.int64)
    for s, rows in enumerate(order):
        for t, row in enumerate(rows):
            sequence[row], step[row], state[row] = ids[s], t + 1, states[s, t]
    header, columns = row_positions(table)
    write_csv(path, header + ["sequence", "step", "state"], columns + [sequence, step, state])


def _model(args, table) -> HMM:
    """The HMM of the arguments; counts and codes are checked here, at their line and column."""
    n_categories = ()
    if args.emission in ("poisson", "categorical"):
        X = table.X
        bad = ~np.isnan(X) & ((X < 0) | (X != np.round(X)))
        if bad.any():
            row, column = np.argwhere(bad)[0]
            what = "counts" if args.emission == "poisson" else "category codes"
            raise InputError(f"{args.data}: {args.emission} emissions need {what}, integers >= 0; "
                             f"{table.where(row, column)} holds {X[row, column]:g}")
        if args.emission == "categorical":
            table.X[np.isnan(X)] = -1  # missing: the model skips it
            n_categories = tuple(int(m) + 1 for m in np.max(np.where(np.isnan(X), 0, X), axis=0))
    return HMM(args.n_states, emission=args.emission, covariance_type=args.covariance,
               n_categories=n_categories)


def hmm_summary(report: dict) -> str:
    """A few lines for the terminal."""
    g = lambda value: "n/a" if value is None else f"{value:.6g}"
    params = report["params"]
    emission = {name: value for name, value in params.items() if name not in ("initial", "transitions")}
    lines = [
        f"best restart #{report['best_index']}: {report['status']} after {report['n_iter']} iterations, "
        f"log-likelihood {g(report['log_likelihood'])} ({g(report['log_likelihood_per_step'])} "
        f"per step) over {len(report['lengths'])} sequence(s), {report['n_steps']} steps",
        f"restarts: {report['restarts']}",
        f"BIC {g(report['bic'])}, AIC {g(report['aic'])} ({report['n_parameters']} free parameters)",
        f"compile {report['compile_seconds']:.1f}s, run {report['run_seconds']:.1f}s",
        "initial " + np.array2string(np.asarray(params["initial"]), precision=3),
        "transitions\n" + np.array2string(np.asarray(params["transitions"]), precision=3),
    ]
    for name, value in emission.items():
        lines.append(f"{name}\n" + np.array2string(np.asarray(value), precision=4))
    return "\n".join(lines)
