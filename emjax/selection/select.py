r"""Model selection in one batched call: every number of components and restart at once.

For each covariance structure, mixtures with :math:`K = 1, \dots, K_{max}` components are padded
to :math:`K_{max}` slots (:mod:`emjax.selection.padded_mixture`), so all :math:`K` and all restarts
run as ONE ``vmap``-ed EM program; each structure is one program. Each (K, structure) keeps its
best healthy restart and is scored (lower is better)

.. math::
    \mathrm{BIC} = -2\ell + p \log N, \qquad \mathrm{AIC} = -2\ell + 2p, \qquad
    \mathrm{ICL} = \mathrm{BIC} + 2 \sum_n w_n H(r_n),

with :math:`\ell = \sum_n w_n \log p(x_n)`, :math:`p` free parameters, :math:`N = \sum_n w_n` and
:math:`H(r_n) = -\sum_k r_{nk} \log r_{nk}` the entropy of row n's responsibilities (Biernacki,
Celeux & Govaert 2000, with soft assignments).
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from ..core.chunking import choose_chunk_size, chunked_sum, default_chunk_budget, n_rows
from ..components.gaussian import COVARIANCE_TYPES
from .criteria import aic_from, bic_from
from ..engine.driver import FitError, run_em, to_user_units
from ..engine.restarts import check_init_params
from ..engine.restarts import starting_points, select_best
from ..models.gaussian_mixture import GaussianMixture
from .padded_mixture import PaddedMixture, pad, trim
from ..engine.progress import FitProgress, monitor
from ..core.standardizer import standardizer_of
from ..core.status import Status
from ..core.validation import check_fit_options, check_key, prepare_inputs
from ..core.xla_options import jit

CRITERIA = ("bic", "aic", "icl")


class SelectResult(NamedTuple):
    """Outcome of :func:`select`.

    Attributes:
        model: the chosen ``GaussianMixture`` (None when every candidate failed, ``throw=False``).
        params: its best restart's parameters, with its own number of components.
        criterion: the criterion that chose it.
        index: its row in ``table`` (-1 when none).
        table: columns (NumPy arrays, one row per candidate): ``n_components``,
            ``covariance_type``, ``bic``, ``aic``, ``icl``, ``log_likelihood`` (summed over rows),
            ``n_parameters``, ``n_iter``, ``status`` (names); scores are NaN for failed candidates.
        candidates: ``(model, params)`` of every row's best restart.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> grid = {"n_components": 3, "covariance_type": "full"}   # K = 1..3
        >>> res = emjax.select(grid, X, jax.random.key(0), n_init=4)
        >>> bool(res.table["bic"][res.index] == min(res.table["bic"]))
        True
        >>> model, params = res.candidates[res.index]
        >>> model.n_components, params.means.shape
        (2, (2, 2))
    """

    model: Any
    params: Any
    criterion: str
    index: int
    table: dict
    candidates: tuple

    def summary(self) -> str:
        """The table as aligned text, the chosen row marked with ``*``."""
        t = self.table
        lines = [f"  {'K':>3} {'covariance':<10} {'BIC':>12} {'AIC':>12} {'ICL':>12} {'status':<10}"]
        for i in range(len(t["bic"])):
            mark = "*" if i == self.index else " "
            lines.append(f"{mark} {t['n_components'][i]:>3} {t['covariance_type'][i]:<10} "
                         f"{t['bic'][i]:>12.2f} {t['aic'][i]:>12.2f} {t['icl'][i]:>12.2f} "
                         f"{t['status'][i]:<10}")
        return "\n".join(lines)


def select(models_or_grid, data, key, *, n_init: int = 1, criterion: str = "bic", weights=None,
           max_iter: int = 100, tol: float = 1e-3, chunk_size: int | None = None,
           init_params: dict | None = None, throw: bool = True, verbose: bool = False) -> SelectResult:
    """Fits every candidate mixture at once and picks the one with the lowest ``criterion``.

    Candidate (K, structure) restart ``r`` starts where ``emjax.fit(GaussianMixture(K, ...),
    data, jax.random.fold_in(key, K), n_init=n_init)``'s restart ``r`` would, and the best
    healthy restart of each candidate is scored as :func:`emjax.fit` would choose it.

    Args:
        models_or_grid: a ``GaussianMixture`` (candidates ``K = 1..n_components`` with its other
            settings), a sequence of ``GaussianMixture`` (exactly those), or a dict of
            ``GaussianMixture`` fields: ``n_components`` an int ``K_max`` (meaning ``1..K_max``)
            or a sequence of ints, ``covariance_type`` a name or a sequence of names, others fixed.
        data: observations ``(n, d)``.
        key: a PRNG key, or an integer seed (``jax.random.key(seed)``).
        n_init: restarts per candidate.
        criterion: "bic", "aic" or "icl" (lower is better).
        weights, max_iter, tol, chunk_size: as in :func:`emjax.fit`.
        init_params: optional ``{(K, covariance_type): params}`` with a leading ``(n_init,)``
            axis, in the data's units, for every candidate: starts in place of ``key``'s.
        throw: raise :class:`emjax.FitError` when every candidate failed (host-side).
        verbose: per covariance structure, the compile time, then iterations and the best
            objective while its candidates run (as :func:`emjax.fit`'s ``verbose``).

    Returns:
        :class:`SelectResult`.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> grid = {"n_components": 3, "covariance_type": "full"}   # K = 1..3
        >>> res = emjax.select(grid, X, jax.random.key(0), n_init=4)
        >>> res.model.n_components, res.criterion              # K = 1, 2, 3 fitted in one program
        (2, 'bic')
        >>> [int(k) for k in res.table["n_components"]]
        [1, 2, 3]
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}.")
    check_fit_options(max_iter=max_iter, tol=tol, chunk_size=chunk_size, n_init=n_init)
    key = check_key(key, optional=init_params is not None)
    groups = _candidate_groups(models_or_grid)
    rows, candidates = [], []
    for template, ks in groups.items():
        x, w = prepare_inputs(template, data, weights)
        _check_components(ks, int(np.sum(np.asarray(w) > 0)))
        model = dataclasses.replace(template, n_components=max(ks))
        n, work = n_rows(x), model.work_per_row(x)
        batch = len(ks) * n_init
        chunk = min(chunk_size or choose_chunk_size(n, work, batch=batch), n)
        init_batch = min(n_init, max(1, default_chunk_budget() // max(1, n * work)))
        starts = None if init_params is None else _given_starts(init_params, template, ks, x, n_init)
        options = dict(model=model, ks=ks, n_init=n_init, max_iter=max_iter, chunk_size=chunk,
                       init_batch=init_batch)
        if verbose:
            progress = FitProgress(f"emjax.select {template.covariance_type}", max_iter)
            with progress.compiling():
                compiled = _select_jit.lower(x, w, key, tol, starts, **options, monitor=monitor).compile()
            with progress:
                best, entropy = jax.block_until_ready(compiled(x, w, key, tol, starts))
            progress.finished(f"{progress.seconds:.2f} s running")
        else:
            best, entropy = _select_jit(x, w, key, tol, starts, **options)
        total_weight = float(jnp.sum(w))
        for i, k in enumerate(ks):
            candidate = dataclasses.replace(template, n_components=k)
            params = trim(jax.tree_util.tree_map(lambda a: a[i], best.params), k,
                          template.covariance_type)
            candidates.append((candidate, params))
            rows.append(_score(candidate, params, best, i, float(entropy[i]), total_weight))
    table = {name: np.array([row[name] for row in rows]) for name in rows[0]}
    scores = np.where(np.isfinite(table[criterion]), table[criterion], np.inf)
    if not np.isfinite(scores).any():
        if throw:
            raise FitError(f"every candidate failed (statuses {sorted(set(table['status']))}); "
                           "pass throw=False to inspect the table.")
        return SelectResult(None, None, criterion, -1, table, tuple(candidates))
    index = int(np.argmin(scores))
    return SelectResult(*candidates[index], criterion, index, table, tuple(candidates))


def _given_starts(init_params, template, ks, data, n_init) -> tuple:
    """The user's starts of every K of one group, checked, as a tuple ordered like ``ks``."""
    starts = []
    for k in ks:
        name = (k, template.covariance_type)
        if name not in init_params:
            raise ValueError(f"init_params has no entry for candidate {name}; it needs one per "
                             "(n_components, covariance_type) of the grid.")
        check_init_params(dataclasses.replace(template, n_components=k), init_params[name], data,
                          n_init)
        starts.append(init_params[name])
    return tuple(starts)


def _candidate_groups(models_or_grid) -> dict:
    """``{GaussianMixture with n_components=1: sorted tuple of K}``: one group per program."""
    if isinstance(models_or_grid, GaussianMixture):
        models = [dataclasses.replace(models_or_grid, n_components=k)
                  for k in range(1, models_or_grid.n_components + 1)]
    elif isinstance(models_or_grid, dict):
        models = _grid_models(dict(models_or_grid))
    else:
        models = list(models_or_grid)
        wrong = [m for m in models if not isinstance(m, GaussianMixture)]
        if wrong or not models:
            got = f"a {type(wrong[0]).__name__}" if wrong else "an empty sequence"
            raise TypeError("models_or_grid must be a GaussianMixture, a non-empty sequence of "
                            f"them or a dict grid; got {got}.")
    groups: dict = {}
    for m in models:
        groups.setdefault(dataclasses.replace(m, n_components=1), set()).add(m.n_components)
    return {template: tuple(sorted(ks)) for template, ks in groups.items()}


def _grid_models(grid: dict) -> list:
    if "n_components" not in grid:
        raise ValueError("a grid needs 'n_components' (K_max, or a sequence of K).")
    ks = grid.pop("n_components")
    if isinstance(ks, numbers.Integral) and not isinstance(ks, bool):
        _check_components((int(ks),), None)
        ks = range(1, int(ks) + 1)
    types = grid.pop("covariance_type", "full")
    types = (types,) if isinstance(types, str) else tuple(types)
    unknown = [t for t in types if t not in COVARIANCE_TYPES]
    if unknown:
        raise ValueError(f"covariance_type must be among {COVARIANCE_TYPES}; got {unknown[0]!r}.")
    ks = tuple(ks)
    _check_components(ks, None)
    return [GaussianMixture(k, t, **grid) for t in types for k in ks]


def _check_components(ks, n_samples) -> None:
    """Every K an integer in ``1..n_samples`` (rows with positive weight; unchecked if None)."""
    for k in ks:
        bad = not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1
        if bad or (n_samples is not None and k > n_samples):
            upper = "n_samples" if n_samples is None else f"n_samples={n_samples}"
            raise ValueError(f"n_components must be integers in 1..{upper} (rows with positive "
                             f"weight); got {k!r}.")


def _score(model, params, best, i, entropy, total_weight) -> dict:
    status = Status(int(best.status[i]))
    log_likelihood = float(best.log_likelihood[i]) * total_weight
    p = model.n_free_parameters(params)
    bic = float(bic_from(log_likelihood, p, total_weight))
    scores = {"bic": bic, "aic": float(aic_from(log_likelihood, p)), "icl": bic + 2 * entropy}
    if not status.healthy:
        scores = {name: np.nan for name in scores}
    return {"n_components": model.n_components, "covariance_type": model.covariance_type,
            **scores, "log_likelihood": log_likelihood, "n_parameters": p,
            "n_iter": int(best.n_iter[i]), "status": status.name}


@functools.partial(jit, static_argnames=("model", "ks", "n_init", "max_iter", "chunk_size",
                                                   "init_batch", "monitor"))
def _select_jit(data, weights, key, tol, given, *, model, ks, n_init, max_iter, chunk_size,
                init_batch, monitor=None):
    """Best restart per K (user units, padded params) and its summed weighted entropy."""
    padded = PaddedMixture(model)
    k_max, cov_type = model.n_components, model.covariance_type
    data_std, transform, log_jacobian = standardizer_of(model).standardize(data, weights)
    starts = []
    for i, k in enumerate(ks):  # one small init program per K; the EM below is shared
        if given is None:
            base = dataclasses.replace(model, n_components=k)
            start = starting_points(base, data_std, weights, jax.random.fold_in(key, k), n_init,
                                     init_batch)
        else:
            start = jax.vmap(lambda p: standardizer_of(model).params_to_standard(p, transform))(given[i])
        starts.append(jax.vmap(lambda p: pad(p, k_max, cov_type))(start))
    start = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *starts)
    shown = None if monitor is None else (
        lambda i, objective, status: monitor(i, objective + log_jacobian, status))
    one = lambda p: to_user_units(padded, run_em(padded, p, data_std, weights, max_iter=max_iter,
                                                 tol=tol, chunk_size=chunk_size, monitor=shown),
                                  transform, log_jacobian)
    runs = jax.vmap(one)(start)
    runs = jax.tree_util.tree_map(lambda a: a.reshape((len(ks), n_init) + a.shape[1:]), runs)
    best = jax.vmap(select_best)(runs)

    def entropy(x, w):
        counted = (w > 0) & jnp.any(~jnp.isnan(x), axis=1)  # a row with nothing observed: none

        def of(p):
            resp = padded.posterior(p, x)
            return -jnp.sum(jnp.where(counted, w * jnp.sum(xlogy(resp, resp), axis=1), 0))
        return jax.vmap(of)(best.params)

    return best, chunked_sum(entropy, data, weights, chunk_size)
