"""``emjax select``: every (number of components, covariance type) fitted at once by
:func:`emjax.select`; the table of BIC, AIC and ICL, the chosen model, its per-row labels."""
from __future__ import annotations

import contextlib

from ...engine.progress import Ticker
from ...selection.select import select
from .fit_command import load_mixture_data, write_labels
from .options import InputError
from .output import as_lists, check_outputs, number, write_json


def run_select(args) -> dict:
    """Loads the data, fits the grid, prints the table and the choice, optionally writes JSON."""
    check_outputs(args.data, {"--out": args.out, "--labels-out": args.labels_out})
    table = load_mixture_data(args)
    grid = {"n_components": args.components, "covariance_type": args.covariance,
            "init_params": args.init, "missing": args.missing}
    n, d = table.X.shape
    label = (f"fitting {n} x {d}, K in {_ranges(args.components)}, {'/'.join(args.covariance)}, "
             f"{args.n_init} restarts each: compiling, then running")
    try:
        with contextlib.nullcontext() if args.verbose else Ticker(label):
            result = select(grid, table.X, args.seed, n_init=args.n_init, criterion=args.criterion,
                            max_iter=args.max_iter, tol=args.tol, verbose=args.verbose)
    except (ValueError, TypeError) as err:
        raise InputError(f"{args.data}: {err}") from None
    print(result.summary())
    chosen = result.model
    print(f"chosen by {args.criterion.upper()}: K={chosen.n_components} {chosen.covariance_type}")
    report = select_dict(result)
    report.update(data=str(args.data), features=table.names, columns=table.columns,
                  n_samples=n, n_features=d, seed=args.seed, n_init=args.n_init,
                  max_iter=args.max_iter, tol=args.tol)
    if args.out:
        write_json(args.out, report)
    if args.labels_out:
        write_labels(args.labels_out, chosen, result.params, table)
    return report


def select_dict(result) -> dict:
    """The JSON report: the table (one entry per candidate) and the chosen model's parameters."""
    t = result.table
    rows = []
    for i in range(len(t["bic"])):
        rows.append({"n_components": int(t["n_components"][i]),
                     "covariance_type": str(t["covariance_type"][i]),
                     **{name: number(t[name][i]) for name in ("bic", "aic", "icl", "log_likelihood")},
                     "n_parameters": int(t["n_parameters"][i]), "n_iter": int(t["n_iter"][i]),
                     "status": str(t["status"][i])})
    model = result.model
    return {"criterion": result.criterion, "table": rows, "chosen_index": result.index,
            "model": {"n_components": model.n_components, "covariance_type": model.covariance_type,
                      "init_params": model.init_params, "missing": model.missing},
            "params": as_lists(result.params)}


def _ranges(ks) -> str:
    """``(1, 2, 3, 5)`` as ``'1-3,5'``."""
    spans = []
    for k in ks:
        if spans and spans[-1][1] == k - 1:
            spans[-1][1] = k
        else:
            spans.append([k, k])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
