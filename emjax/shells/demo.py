"""The emjax demo: many restarts of a Gaussian mixture fit, timed, tabulated and plotted.

Two datasets, each fitted from ``n_init`` random starts as one XLA program with
:func:`emjax.timed_fit`: Old Faithful (272 rows, K=3, full covariances) and a generated 2-D
mixture (100,000 rows). The generated set uses K=4 and ``max_iter=25`` by default, chosen by
measurement on a 2-core CPU: one EM iteration of 1000 restarts over 100,000 rows takes about 5 s
at K=4 and 18 s at K=8, and a batch of restarts runs as long as its slowest member (up to 38
iterations at K=4), so K=8 with ``max_iter=200`` would take tens of minutes. At ``max_iter=25``
about 98% of the restarts converge; the rest stop healthy with status MAX_ITER, counted in the
table.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import numpy as np

from . import plotting
from .datasets import load_old_faithful, make_mixture
from ..engine.driver import ConvergenceWarning
from ..engine.restarts import timed_fit
from ..models import GaussianMixture
from ..engine.progress import Ticker
from ..core.status import Status

OLD_FAITHFUL_COMPONENTS = 3
OLD_FAITHFUL_MAX_ITER = 200

COLUMNS = (("dataset", "<16", "{}"), ("n", ">7", "{}"), ("K", ">2", "{}"),
           ("best obj", ">9", "{:.4f}"), ("conv", ">5", "{}"), ("max_it", ">6", "{}"),
           ("failed", ">6", "{}"), ("med it", ">6", "{:g}"), ("max it", ">6", "{}"),
           ("compile s", ">9", "{:.1f}"), ("run s", ">7", "{:.1f}"), ("restarts/s", ">10", "{:.0f}"))


class Case(NamedTuple):
    name: str
    X: np.ndarray
    model: GaussianMixture
    max_iter: int


def run_demo(out: str = "emjax-demo.png", n_init: int = 1000, *, n: int = 100_000,
             n_components: int = 4, max_iter: int = 25, tol: float = 1e-3,
             seed: int = 0) -> list[dict]:
    """Fits both datasets, prints the table and writes the figure to ``out``.

    Args:
        out: path of the PNG (data with fitted ellipses, histograms of restart objectives).
        n_init: restarts per dataset.
        n: rows of the generated mixture.
        n_components: K for the generated mixture (it is drawn with the same K).
        max_iter: iteration cap for the generated mixture (Old Faithful uses 200).
        tol: convergence tolerance on the per-sample objective, both datasets.
        seed: seed of the generated data and of the restarts.

    Returns:
        One dict per dataset with the table's values.
    """
    X, _ = make_mixture(seed, n, n_components)
    cases = [
        Case("Old Faithful", load_old_faithful(),
             GaussianMixture(OLD_FAITHFUL_COMPONENTS, "full"), OLD_FAITHFUL_MAX_ITER),
        Case(f"{n_components}-cluster 2-D", X, GaussianMixture(n_components, "full"), max_iter),
    ]
    device = jax.devices()[0]
    print(f"emjax demo on {device.platform.upper()} ({device.device_kind}): {n_init} restarts per "
          f"dataset, tol={tol:g}; generated set n={n}, K={n_components}, max_iter={max_iter} "
          "(sized to take minutes on 2 CPU cores)",
          flush=True)
    key = jax.random.key(seed)
    rows, results = [], []
    for i, case in enumerate(cases):
        with Ticker(f"[{case.name}] compiling, then running {n_init} restarts"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # MAX_ITER counts are in the table
            result, compile_s, run_s = timed_fit(case.model, case.X, jax.random.fold_in(key, i),
                                                 n_init=n_init, max_iter=case.max_iter, tol=tol)
        results.append(result)
        rows.append(summarize(case, result, compile_s, run_s))
    print(format_table(rows), flush=True)
    with Ticker("drawing figure"):
        write_figure(out, cases, results, n_init)
    print(f"wrote {out}", flush=True)
    return rows


def summarize(case: Case, result, compile_s: float, run_s: float) -> dict:
    """The table's row for one fit."""
    status = np.asarray(result.restarts.status)
    n_iter = np.asarray(result.restarts.n_iter)
    converged = int(np.sum(status == Status.CONVERGED))
    at_max = int(np.sum(status == Status.MAX_ITER))
    return {"dataset": case.name, "n": case.X.shape[0], "K": case.model.n_components,
            "best obj": float(result.objective), "conv": converged, "max_it": at_max,
            "failed": status.size - converged - at_max, "med it": float(np.median(n_iter)),
            "max it": int(n_iter.max()), "compile s": compile_s, "run s": run_s,
            "restarts/s": status.size / run_s}


def format_table(rows: list[dict]) -> str:
    """Fixed-width text table of :func:`summarize` rows."""
    header = " ".join(f"{name:{align}}" for name, align, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(" ".join(f"{fmt.format(row[name]):{align}}" for name, align, fmt in COLUMNS))
    return "\n".join(lines)


def write_figure(out: str, cases: list[Case], results: list, n_init: int) -> None:
    """Top row: data and fitted ellipses; bottom row: restart objectives; one column per case."""
    plt = plotting.pyplot()
    fig, axes = plt.subplots(2, len(cases), figsize=(6 * len(cases), 10), squeeze=False)
    for column, (case, result) in enumerate(zip(cases, results)):
        plotting.plot_fit(axes[0, column], case.model, result.params, case.X)
        axes[0, column].set_title(f"{case.name}: K={case.model.n_components} "
                                  f"{case.model.covariance_type}, best of {n_init} restarts")
        plotting.plot_restart_objectives(axes[1, column], result.restarts)
    axes[0, 0].set_xlabel("eruption duration (min)")
    axes[0, 0].set_ylabel("waiting time (min)")
    fig.suptitle("emjax: fitted components (1- and 2-sigma ellipses, weights) and restart objectives")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
