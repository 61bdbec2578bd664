"""The hmmlearn-style estimator shell shared by :mod:`emjax.sklearn.hmm`'s HMMs: concatenated
sequences with ``lengths`` in, NumPy out, hmmlearn's attribute and method names over
:func:`emjax.fit` and the :class:`~emjax.models.hmm.model.HMM` model (host-side only)."""
from __future__ import annotations

import abc
import sys
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ..engine.driver import FitError
from ..engine.restarts import fit as fit_restarts
from ..engine.restarts import init_restarts
from ..models.hmm.model import HMMParams
from ..core.status import Status, describe
from .random_state import key_from_random_state

ALGORITHMS = ("viterbi", "map")
IMPLEMENTATIONS = ("log", "scaling")


class ConvergenceMonitor:
    """What a fit did, under hmmlearn's names.

    Attributes:
        history: total objective (log-likelihood, plus the log prior where the model has one)
            after each EM iteration, in hmmlearn's unit (summed over all samples).
        iter: iterations performed.
        converged: True only when the objective changed by less than ``tol`` (hmmlearn's
            ``converged`` is also True when ``n_iter`` was reached; see ``status``).
        status: the emjax status name (CONVERGED, MAX_ITER, ...).
    """

    def __init__(self, tol, n_iter, verbose, history=(), status="RUNNING"):
        self.tol, self.n_iter, self.verbose = tol, n_iter, verbose
        self.history, self.status = deque(history), status
        self.iter = len(self.history)
        self.converged = status == "CONVERGED"

    def __repr__(self):
        return (f"ConvergenceMonitor(iter={self.iter}, converged={self.converged}, "
                f"status={self.status}, history={[float(h) for h in self.history]})")


def concatenated_to_padded(X, lengths):
    """hmmlearn's layout (``X`` ``(n, d)``, ``lengths`` summing to ``n``; None: one sequence) as
    emjax's ``(x (s, t, d), lengths (s,))``, padding with zeros."""
    n = X.shape[0]
    if lengths is None:
        lengths = np.array([n])
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size == 0 or lengths.dtype.kind not in "iu":
        raise ValueError(f"lengths must be a 1-D array of integers (one per sequence); got "
                         f"{lengths!r}.")
    if (lengths < 1).any() or lengths.sum() != n:
        raise ValueError(f"lengths must be >= 1 and sum to the number of samples in X ({n}); got "
                         f"lengths summing to {int(lengths.sum())} with minimum {int(lengths.min())}.")
    mask = np.arange(lengths.max())[None, :] < lengths[:, None]
    padded = np.zeros(mask.shape + X.shape[1:], X.dtype)
    padded[mask] = X
    return padded, lengths, mask


class BaseHMMEstimator(BaseEstimator, metaclass=abc.ABCMeta):
    """Subclasses name their emission parameters and convert them (see
    :class:`emjax.sklearn.hmm.GaussianHMM`); the constructor arguments are hmmlearn's."""

    #: letter of ``params``/``init_params`` -> attribute, for the emission's parameters
    _emission_letters: dict = {}
    #: letters whose start the subclass computes itself (not emjax's ``model.init``)
    _own_start: tuple = ()

    # ------------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _check_X(self, X, fitting: bool):
        """``X`` checked and converted for this emission (``fitting``: during ``fit``)."""

    @abc.abstractmethod
    def _model(self, fixed):
        """The emjax HMM for these settings, holding the parts named in ``fixed``."""

    @abc.abstractmethod
    def _emission_from_attributes(self, pick, X):
        """Emission parameters read from the estimator's attributes."""

    @abc.abstractmethod
    def _set_emission(self, emission):
        """Emission parameters stored under hmmlearn's attribute names."""

    # ------------------------------------------------------------------ options
    def _check_options(self):
        letters = "st" + "".join(self._emission_letters)
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str) or set(value) - set(letters):
                raise ValueError(f"{name} must be a string of the letters {letters!r}; got {value!r}.")
        emission = set(self._emission_letters)
        if 1 < len(emission) and 0 < len(emission & set(self.params)) < len(emission):
            raise ValueError(f"emjax updates the emission parameters together: params must contain "
                             f"all of {''.join(sorted(emission))!r} or none; got {self.params!r}.")
        for name, allowed in (("algorithm", ALGORITHMS), ("implementation", IMPLEMENTATIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}.")
        for name in ("startprob_prior", "transmat_prior"):
            if np.ndim(getattr(self, name)) or getattr(self, name) != 1.0:
                raise ValueError(f"{name} must be 1.0 (maximum likelihood, hmmlearn's default): "
                                 f"emjax's HMM estimators have no Dirichlet prior on it; got "
                                 f"{getattr(self, name)!r}.")

    def _fixed(self):
        fixed = [part for part, letter in (("initial", "s"), ("transitions", "t")) if letter not in self.params]
        if not set(self._emission_letters) & set(self.params):
            fixed.append("emissions")
        return tuple(fixed)

    def _needs_init(self, letter, attribute):
        return letter in self.init_params or not hasattr(self, attribute)

    # ------------------------------------------------------------------ fit
    def fit(self, X, lengths=None):
        """Baum-Welch from the attributes already set (those not named in ``init_params``) and
        fresh starts for the rest; ``n_iter`` iterations at most, stopping when the total
        objective changes by less than ``tol``. With ``n_init > 1`` the best of that many
        restarts is kept."""
        self._check_options()
        X = self._check_X(X, fitting=True)
        padded, lengths, _ = concatenated_to_padded(X, lengths)
        model, data = self._model(self._fixed()), (padded, lengths)
        key = key_from_random_state(self.random_state)
        starts = self._starting_params(model, data, key, X)
        result = fit_restarts(model, data, key, n_init=self.n_init, max_iter=self.n_iter,
                              tol=self.tol / len(lengths), init_params=starts, throw=False,
                              verbose=bool(self.verbose))
        status = Status(int(result.status))
        if not status.healthy:
            statuses = np.asarray(result.restarts.status)
            raise FitError(f"every restart failed ({describe(statuses)}): {status.message}.")
        self._set_params(result.params)
        history = np.asarray(result.history)[: int(result.n_iter)] * len(lengths)
        self.monitor_ = ConvergenceMonitor(self.tol, self.n_iter, self.verbose, history, status.name)
        self.restart_statuses_ = [Status(int(s)).name for s in np.asarray(result.restarts.status)]
        if self.verbose:
            for i, value in enumerate(history):
                delta = value - history[i - 1] if i else np.nan
                print(f"{i + 1:>10d} {value:>16.8f} {delta:>+16.8f}", file=sys.stderr)
        return self

    def _starting_params(self, model, data, key, X):
        """Starting parameters with a leading ``(n_init,)`` axis: the set attributes broadcast,
        the others from emjax's own starts (``model.init``); None when all are emjax's."""
        needs = [self._needs_init(letter, attribute) for letter, attribute in
                 [("s", "startprob_"), ("t", "transmat_"), *self._emission_letters.items()]]
        if all(needs) and not self._own_start:
            return None  # emjax.fit draws every start itself (one program fewer to compile)
        drawn = None
        if any(needs):
            drawn = jax.tree_util.tree_map(np.asarray, init_restarts(model, data, key, n_init=self.n_init))

        def pick(letter, attribute, own, engine_field):
            if self._needs_init(letter, attribute):
                return engine_field(drawn)
            return np.broadcast_to(own(), (self.n_init,) + np.shape(own()))

        initial = pick("s", "startprob_", lambda: self.startprob_, lambda p: p.initial)
        transitions = pick("t", "transmat_", lambda: self.transmat_, lambda p: p.transitions)
        emission = self._emission_from_attributes(lambda letter, attribute, own, field: pick(
            letter, attribute, own, lambda p: getattr(p.emission, field)), X)
        return HMMParams(jnp.asarray(initial), jnp.asarray(transitions), emission)

    def _set_params(self, params):
        self.startprob_ = np.asarray(params.initial)
        self.transmat_ = np.asarray(params.transitions)
        self._set_emission(jax.tree_util.tree_map(np.asarray, params.emission))

    # ------------------------------------------------------------------ after fit
    def _engine_params(self):
        for attribute in ("startprob_", "transmat_", *self._emission_letters.values()):
            if not hasattr(self, attribute):
                raise NotFittedError(f"This {type(self).__name__} instance has no {attribute}: call "
                                     "fit, or set the parameters, first.")
        own = lambda letter, attribute, value, field: np.asarray(value())
        return HMMParams(jnp.asarray(self.startprob_), jnp.asarray(self.transmat_),
                         self._emission_from_attributes(own, None))

    def _prepared(self, X, lengths):
        params = self._engine_params()
        X = self._check_X(X, fitting=False)
        padded, lengths, mask = concatenated_to_padded(X, lengths)
        model = self._model(())
        return model, params, X, (padded, lengths), mask

    def score_samples(self, X, lengths=None):
        """``(log_prob, posteriors)``: the total log-likelihood of all sequences and the state
        posteriors ``(n_samples, n_components)``."""
        model, params, _, data, mask = self._prepared(X, lengths)
        log_prob = float(np.sum(np.asarray(model.log_prob(params, data), np.float64)))
        return log_prob, np.asarray(model.posterior(params, data))[mask]

    def score(self, X, lengths=None):
        """Total log-likelihood :math:`\\sum_s \\log p(x_s)` (hmmlearn's unit)."""
        model, params, _, data, _ = self._prepared(X, lengths)
        return float(np.sum(np.asarray(model.log_prob(params, data), np.float64)))

    def predict_proba(self, X, lengths=None):
        """State posteriors :math:`p(z_\\tau = j \\mid x)`, ``(n_samples, n_components)``."""
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """``(log_prob, states)``. "viterbi": the most probable path per sequence and its joint
        log-probability :math:`\\log p(x, z^*)` summed over sequences; "map": the most probable
        state at each step and, as hmmlearn computes it, the sum of those steps' posteriors."""
        algorithm = algorithm or self.algorithm
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}; got {algorithm!r}.")
        if algorithm == "map":
            posteriors = self.predict_proba(X, lengths)
            return float(posteriors.max(axis=1).sum()), posteriors.argmax(axis=1)
        model, params, X, data, mask = self._prepared(X, lengths)
        states = np.asarray(model.predict(params, data))[mask]
        steps = jnp.asarray(np.asarray(model.validate(data).x)[mask])  # the engine's dtype
        log_emit = np.asarray(model.emission_model.log_density(params.emission, steps), np.float64)
        with np.errstate(divide="ignore"):
            log_init = np.log(np.asarray(params.initial, np.float64))
            log_trans = np.log(np.asarray(params.transitions, np.float64))
        first = np.concatenate([[0], np.cumsum(data[1])[:-1]])
        follows = np.ones(len(states), bool)
        follows[first] = False  # step n continues the sequence of step n - 1
        log_prob = (log_init[states[first]].sum() + log_emit[states, np.arange(len(states))].sum()
                    + log_trans[states[:-1][follows[1:]], states[1:][follows[1:]]].sum())
        return float(log_prob), states

    def predict(self, X, lengths=None):
        """The decoded states, ``(n_samples,)`` (``algorithm``'s)."""
        return self.decode(X, lengths)[1]

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """``(X, states)``: one sequence of ``n_samples`` steps drawn from the model
        (``random_state`` defaults to the estimator's)."""
        if currstate is not None:
            raise ValueError("currstate is not supported by emjax's sample: sequences start from "
                             f"startprob_; got currstate={currstate!r}.")
        params = self._engine_params()
        key = key_from_random_state(self.random_state if random_state is None else random_state)
        x, states = self._model(()).sample(key, params, n_samples)
        return np.asarray(x[0]), np.asarray(states[0])
