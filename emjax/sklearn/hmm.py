"""hmmlearn's ``GaussianHMM``, ``CategoricalHMM`` and ``PoissonHMM`` over emjax's engine.

Same constructor arguments, attributes (``startprob_``, ``transmat_``, ``means_``, ``covars_``,
``emissionprob_``, ``lambdas_``, ``monitor_``) and methods (``fit(X, lengths)``, ``decode``,
``predict``, ``predict_proba``, ``score``, ``score_samples``, ``sample``) as hmmlearn 0.3, with
its default update: maximum likelihood for ``startprob_``, ``transmat_``, ``means_``,
``emissionprob_`` and ``lambdas_``, and hmmlearn's covariance prior (``covars_prior=1e-2``,
``covars_weight=1``: :mod:`emjax.models.hmm.covariance_prior`). From the same parameters the
numbers are hmmlearn's (tests/shells/sklearn/test_hmm.py). emjax adds ``n_init`` (restarts, the best
kept). What differs: random starts (k-means++ means, Dirichlet ``startprob_``/``transmat_``;
hmmlearn runs KMeans and starts uniform), and priors other than hmmlearn's defaults on
``startprob_``, ``transmat_``, means, emission tables and rates are refused by name.
Float64 needs ``jax.config.update("jax_enable_x64", True)``; otherwise float32.
"""
from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array

from ..components.covariance_types import lookup
from ..models.hmm.model import HMM
from ..models.hmm.covariance_prior import CovariancePriorGaussianHMM
from ..components.emissions_counts import PoissonEmissionParams
from ..components.emissions_discrete import CategoricalEmissionParams
from ..components.emissions_gaussian import GaussianEmissionParams
from .hmm_base import BaseHMMEstimator


def _require(value, expected, name):
    if np.ndim(value) or value != expected:
        raise ValueError(f"{name} must be {expected} (hmmlearn's default); emjax's estimators do "
                         f"not support other values; got {value!r}.")


class GaussianHMM(BaseHMMEstimator):
    """Hidden Markov model with Gaussian emissions (hmmlearn's ``GaussianHMM``).

    ``covars_`` reads as full matrices ``(n_components, n_features, n_features)`` whatever the
    covariance type (as hmmlearn); set it in the type's shape: spherical ``(n_components,)``,
    diag ``(n_components, n_features)``, full ``(n_components, n_features, n_features)``, tied
    ``(n_features, n_features)``. ``min_covar`` is added to the diagonal of the data's covariance
    that every state starts from (hmmlearn's start). ``covars_prior`` and ``covars_weight`` are
    scalars; ``means_prior`` and ``means_weight`` must be 0.
    """

    _emission_letters = {"m": "means_", "c": "covars_"}
    _own_start = ("c",)

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3, startprob_prior=1.0,
                 transmat_prior=1.0, means_prior=0, means_weight=0, covars_prior=1e-2,
                 covars_weight=1, algorithm="viterbi", random_state=None, n_iter=10, tol=1e-2,
                 verbose=False, params="stmc", init_params="stmc", implementation="log", n_init=1):
        self.n_components, self.covariance_type, self.min_covar = n_components, covariance_type, min_covar
        self.startprob_prior, self.transmat_prior = startprob_prior, transmat_prior
        self.means_prior, self.means_weight = means_prior, means_weight
        self.covars_prior, self.covars_weight = covars_prior, covars_weight
        self.algorithm, self.random_state, self.n_iter, self.tol = algorithm, random_state, n_iter, tol
        self.verbose, self.params, self.init_params = verbose, params, init_params
        self.implementation, self.n_init = implementation, n_init

    @property
    def covars_(self):
        cov, k = self._covars_, self.n_components
        d = self.means_.shape[1] if hasattr(self, "means_") else (cov.shape[-1] if cov.ndim > 1 else 1)
        kind = lookup(self.covariance_type)
        if kind.matrix:
            return np.tile(cov, (k, 1, 1)) if kind.shared else cov
        return kind.per_feature(cov)[:, :, None] * np.eye(d)

    @covars_.setter
    def covars_(self, value):
        value, kind = np.array(value, dtype=float), lookup(self.covariance_type)
        if not kind.matrix and value.ndim == 2:  # (k, d) variances; spherical: hmmlearn's tiled form
            value = kind.pool_variances(value)
        self._covars_ = value

    def _check_X(self, X, fitting):
        X = check_array(X, dtype=[np.float64, np.float32])
        if fitting:
            self.n_features = X.shape[1]
        return X

    def _model(self, fixed):
        _require(self.means_prior, 0, "means_prior")
        _require(self.means_weight, 0, "means_weight")
        return CovariancePriorGaussianHMM(
            self.n_components, covariance_type=self.covariance_type, reg_covar=0.0,
            pseudo_count=0, fixed=fixed, scaled=self.implementation == "scaling",
            covars_prior=self.covars_prior, covars_weight=self.covars_weight)

    def _emission_from_attributes(self, pick, X):
        means = pick("m", "means_", lambda: self.means_, "means")
        if X is not None and self._needs_init("c", "covars_"):  # hmmlearn's start, every state
            cv = np.atleast_2d(np.cov(X.T)) + self.min_covar * np.eye(X.shape[1])
            kind = lookup(self.covariance_type)
            start = np.full(kind.shape(self.n_components, X.shape[1]),
                            cv if kind.matrix else kind.pool_variances(np.diag(cv)))
            covariances = np.broadcast_to(start.astype(X.dtype), (self.n_init,) + start.shape)
        else:
            covariances = pick("c", "covars_", lambda: self._covars_, "covariances")
        return GaussianEmissionParams(np.asarray(means), np.asarray(covariances))

    def _set_emission(self, emission):
        self.means_, self._covars_ = emission.means, emission.covariances


class CategoricalHMM(BaseHMMEstimator):
    """Hidden Markov model with categorical emissions (hmmlearn's ``CategoricalHMM``): ``X`` is
    ``(n_samples, 1)`` integer symbols ``0..n_features-1``; ``emissionprob_`` is
    ``(n_components, n_features)``. ``n_features=None`` takes ``X.max() + 1`` at fit.
    ``emissionprob_prior`` must be 1.0 (maximum likelihood)."""

    _emission_letters = {"e": "emissionprob_"}

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="ste", init_params="ste",
                 implementation="log", n_init=1):
        self.n_components, self.startprob_prior, self.transmat_prior = n_components, startprob_prior, transmat_prior
        self.emissionprob_prior, self.n_features = emissionprob_prior, n_features
        self.algorithm, self.random_state, self.n_iter, self.tol = algorithm, random_state, n_iter, tol
        self.verbose, self.params, self.init_params = verbose, params, init_params
        self.implementation, self.n_init = implementation, n_init

    def _check_X(self, X, fitting):
        X = check_array(X, dtype=None)
        if X.shape[1] != 1 or X.dtype.kind not in "iu":
            raise ValueError(f"X must be (n_samples, 1) integer symbols; got shape {X.shape}, "
                             f"dtype {X.dtype}.")
        if fitting and self.n_features is None:
            self.n_features = int(X.max()) + 1
        return X

    def _n_symbols(self):
        if self.n_features is not None:
            return int(self.n_features)
        return np.shape(self.emissionprob_)[1]

    def _model(self, fixed):
        _require(self.emissionprob_prior, 1.0, "emissionprob_prior")
        return HMM(self.n_components, emission="categorical", n_categories=(self._n_symbols(),),
                   pseudo_count=0, fixed=fixed, scaled=self.implementation == "scaling")

    def _emission_from_attributes(self, pick, X):
        probs = pick("e", "emissionprob_", lambda: np.asarray(self.emissionprob_)[..., None, :], "probs")
        return CategoricalEmissionParams(np.asarray(probs))

    def _set_emission(self, emission):
        self.emissionprob_ = emission.probs[:, 0, :]


class PoissonHMM(BaseHMMEstimator):
    """Hidden Markov model with independent Poisson counts per feature (hmmlearn's
    ``PoissonHMM``); ``lambdas_`` is ``(n_components, n_features)``. ``lambdas_prior`` and
    ``lambdas_weight`` must be 0 (maximum likelihood)."""

    _emission_letters = {"l": "lambdas_"}

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0, lambdas_prior=0.0,
                 lambdas_weight=0.0, algorithm="viterbi", random_state=None, n_iter=10, tol=1e-2,
                 verbose=False, params="stl", init_params="stl", implementation="log", n_init=1):
        self.n_components, self.startprob_prior, self.transmat_prior = n_components, startprob_prior, transmat_prior
        self.lambdas_prior, self.lambdas_weight = lambdas_prior, lambdas_weight
        self.algorithm, self.random_state, self.n_iter, self.tol = algorithm, random_state, n_iter, tol
        self.verbose, self.params, self.init_params = verbose, params, init_params
        self.implementation, self.n_init = implementation, n_init

    def _check_X(self, X, fitting):
        X = check_array(X, dtype=None)
        if fitting:
            self.n_features = X.shape[1]
        return X

    def _model(self, fixed):
        _require(self.lambdas_prior, 0.0, "lambdas_prior")
        _require(self.lambdas_weight, 0.0, "lambdas_weight")
        return HMM(self.n_components, emission="poisson", pseudo_count=0, fixed=fixed,
                   scaled=self.implementation == "scaling")

    def _emission_from_attributes(self, pick, X):
        return PoissonEmissionParams(np.asarray(pick("l", "lambdas_", lambda: self.lambdas_, "rates")))

    def _set_emission(self, emission):
        self.lambdas_ = emission.rates
