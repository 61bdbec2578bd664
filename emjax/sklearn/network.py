r"""A discrete Bayesian network with named variables over :class:`emjax.BayesianNetwork`.

Variables are named (``"radius"``, ``"Z"``); data are columns by name (a pandas DataFrame, a dict
of columns, or a NumPy structured array) of integer codes ``0..c-1``, with ``-1``, NaN or None
for a missing value; a latent variable has no column (or an all-missing one). :meth:`query`
answers :math:`p(x_Q \mid e)` for any set of named variables and named evidence, exactly:
each assignment of the queried variables joins the evidence as one row, the engine's
variable elimination gives :math:`\log p(x_Q, e)` for every row, and the rows are normalised.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ..engine.driver import FitError
from ..engine.restarts import fit as fit_restarts
from ..models.bayesian_network.model import BayesianNetwork as NetworkModel
from ..models.bayesian_network.model import BNParams
from ..core.status import Status, describe
from .random_state import key_from_random_state

#: Most assignments of the queried variables :meth:`BayesianNetwork.query` enumerates.
MAX_QUERY_ROWS = 1 << 20


def _names(parents):
    return [parents] if isinstance(parents, str) else list(parents)


def _columns(X) -> dict:
    """``{name: 1-D array}`` from a DataFrame, a mapping of columns or a structured array."""
    if hasattr(X, "columns") and hasattr(X, "__getitem__"):  # pandas DataFrame (duck-typed)
        columns = {str(c): X[c] for c in X.columns}
        return {c: (v.cat.codes if hasattr(v, "cat") else v).to_numpy(dtype=float, na_value=np.nan)
                for c, v in columns.items()}
    if isinstance(X, np.ndarray) and X.dtype.names:
        return {name: X[name] for name in X.dtype.names}
    if isinstance(X, dict):
        return dict(X)
    raise TypeError("X must be a pandas DataFrame, a dict of columns or a NumPy structured array "
                    f"(variables by name); got {type(X).__name__}.")


def _codes(values, name) -> np.ndarray:
    """Integer codes with -1 for missing (NaN / None / -1)."""
    arr = np.asarray([np.nan if v is None else v for v in values] if np.asarray(values).dtype == object
                     else values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"column {name!r} must be 1-D; got shape {arr.shape}.")
    arr = np.where(np.isnan(arr), -1, arr)
    bad = (arr != np.round(arr)) | (arr < -1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"column {name!r} must hold integer codes >= 0 (-1, NaN or None for "
                         f"missing); row {i} is {arr[i]}.")
    return arr.astype(np.int64)


class BayesianNetwork(BaseEstimator):
    """Discrete Bayesian network with named variables, fitted by EM with exact inference.

    Args:
        structure: ``{child: parents}`` by name; ``parents`` a name or a list of names (the CPT's
            leading axes, in order). Variables that are nobody's child have no parents.
        cardinalities: ``{name: number of values}``; a variable not named here takes ``1 +`` the
            largest code in its column at fit (a latent variable must be named).
        latent: names of variables never observed (no column needed).
        pseudo_count, max_iter, tol, n_init, random_state: as in :class:`emjax.BayesianNetwork`
            and :func:`emjax.fit` (``random_state``: None, an int, a NumPy RandomState/Generator
            or a JAX key).

    Attributes:
        variables_: the variable names, in the engine's column order.
        cardinalities_: ``{name: number of values}``.
        parents_: ``{name: tuple of parent names}``.
        cpds_: ``{name: CPT}``, axes (parents in ``parents_`` order, then the variable itself).
        n_iter_, converged_, restart_statuses_: as their names say.
    """

    def __init__(self, structure, cardinalities=None, latent=(), *, pseudo_count=1.0, max_iter=100,
                 tol=1e-3, n_init=1, random_state=None):
        self.structure, self.cardinalities, self.latent = structure, cardinalities, latent
        self.pseudo_count, self.max_iter, self.tol = pseudo_count, max_iter, tol
        self.n_init, self.random_state = n_init, random_state

    def _layout(self, columns):
        """Variable order, cardinalities and parents by name, from the arguments and the data."""
        if not isinstance(self.structure, dict):
            raise TypeError(f"structure must be a dict {{child: parents}} by name; got "
                            f"{type(self.structure).__name__}.")
        given = dict(self.cardinalities or {})
        latent = _names(self.latent)
        names = list(dict.fromkeys([*given, *self.structure, *(p for ps in self.structure.values()
                                    for p in _names(ps)), *latent, *columns]))
        if self.cardinalities is not None:
            unknown = [c for c in columns if c not in given and c not in self.structure
                       and all(c not in _names(ps) for ps in self.structure.values())]
            if unknown:
                raise ValueError(f"X has column {unknown[0]!r}, which is not a variable of the "
                                 "network (not in structure or cardinalities); drop it or add it.")
        cards = {}
        for name in names:
            if name in given:
                cards[name] = given[name]
            elif name in columns and (columns[name] >= 0).any():
                cards[name] = int(columns[name].max()) + 1
            else:
                raise ValueError(f"variable {name!r} has no cardinality: name it in cardinalities "
                                 "(a latent or never-observed variable must be).")
        parents = {name: tuple(_names(self.structure.get(name, ()))) for name in names}
        return names, cards, parents, latent

    def fit(self, X, y=None):
        """EM on the rows of ``X`` (columns by name; missing values and latent variables are
        summed over)."""
        columns = {str(k): _codes(v, k) for k, v in _columns(X).items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"X's columns must have one length; got lengths {sorted(lengths)}.")
        n = lengths.pop()
        names, cards, parents, latent = self._layout(columns)
        for name, column in columns.items():
            if (column >= cards[name]).any():
                i = int(np.argmax(column >= cards[name]))
                raise ValueError(f"column {name!r} row {i} is {column[i]}, outside the variable's "
                                 f"codes 0..{cards[name] - 1}.")
        index = {name: i for i, name in enumerate(names)}
        model = NetworkModel({index[c]: [index[p] for p in ps] for c, ps in parents.items()},
                             tuple(cards[v] for v in names), latent=tuple(index[v] for v in latent),
                             pseudo_count=self.pseudo_count)
        data = np.stack([columns.get(v, np.full(n, -1)) for v in names], axis=1)
        result = fit_restarts(model, data, key_from_random_state(self.random_state),
                              n_init=self.n_init, max_iter=self.max_iter, tol=self.tol, throw=False)
        status = Status(int(result.status))
        if not status.healthy:
            raise FitError(f"every restart failed ({describe(np.asarray(result.restarts.status))}): "
                           f"{status.message}.")
        self.variables_, self.cardinalities_, self.parents_ = names, cards, parents
        self.cpds_ = {v: np.asarray(t) for v, t in zip(names, result.params.tables)}
        self.n_iter_, self.converged_ = int(result.n_iter), status == Status.CONVERGED
        self.restart_statuses_ = [Status(int(s)).name for s in np.asarray(result.restarts.status)]
        self.model_ = dataclasses.replace(model, latent=())  # queries may set a latent variable
        return self

    def _params(self):
        if not hasattr(self, "cpds_"):
            raise NotFittedError("This BayesianNetwork is not fitted yet: call fit first.")
        return BNParams(tuple(self.cpds_[v] for v in self.variables_))

    def _code(self, name, value, what):
        if name not in self.cardinalities_:
            raise ValueError(f"{what} names {name!r}, which is not a variable; the variables are "
                             f"{self.variables_}.")
        card = self.cardinalities_[name]
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 0 <= value < card:
            raise ValueError(f"{what}[{name!r}] must be an integer code in 0..{card - 1}; got {value!r}.")
        return int(value)

    def query(self, variables, evidence=None):
        r""":math:`p(x_Q \mid e)`: the joint table of the named ``variables`` given ``evidence``
        ``{name: code}``, an array with one axis per queried variable in the order given (one
        axis for a single name). Exact: :math:`p(x_Q = q, e)` for every assignment ``q``, by
        the engine's variable elimination, divided by their sum :math:`p(e)`."""
        params = self._params()
        query = [variables] if isinstance(variables, str) else list(variables)
        evidence = dict(evidence or {})
        row = np.full(len(self.variables_), -1, np.int32)
        for name, value in evidence.items():
            code = self._code(name, value, "evidence")
            row[self.variables_.index(name)] = code
        for name in query:
            self._code(name, 0, "variables")
            if name in evidence or query.count(name) > 1:
                raise ValueError(f"variables names {name!r} twice or also in evidence.")
        shape = tuple(self.cardinalities_[v] for v in query)
        if math.prod(shape) > MAX_QUERY_ROWS:
            raise ValueError(f"the queried table has {math.prod(shape)} entries, above "
                             f"MAX_QUERY_ROWS={MAX_QUERY_ROWS}; query fewer variables.")
        rows = np.tile(row, (math.prod(shape), 1))
        for column, values in zip((self.variables_.index(v) for v in query),
                                  zip(*itertools.product(*map(range, shape)))):
            rows[:, column] = values
        log_joint = np.asarray(self.model_.log_prob(params, rows), np.float64)
        if not np.isfinite(log_joint).any():
            raise ValueError(f"the evidence {evidence} has probability zero under the network.")
        table = np.exp(log_joint - np.max(log_joint))
        return (table / table.sum()).reshape(shape)

    def score(self, X, y=None):
        """Total log-likelihood of the rows of ``X``: :math:`\\sum_n \\log p(e_n)`."""
        params = self._params()
        columns = {str(k): _codes(v, k) for k, v in _columns(X).items()}
        unknown = [c for c in columns if c not in self.cardinalities_]
        if unknown:
            raise ValueError(f"X has column {unknown[0]!r}, which is not a variable of the network.")
        n = len(next(iter(columns.values())))
        data = np.stack([columns.get(v, np.full(n, -1)) for v in self.variables_], axis=1)
        return float(np.sum(np.asarray(self.model_.log_prob(params, data), np.float64)))
