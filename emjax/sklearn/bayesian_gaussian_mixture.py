"""``emjax.sklearn.BayesianGaussianMixture``: scikit-learn's ``BayesianGaussianMixture`` over
:func:`emjax.fit` and :class:`emjax.BayesianGaussianMixture` (variational EM)."""
from __future__ import annotations

import functools
import numbers

import jax
import numpy as np
from jax.scipy.special import logsumexp
from sklearn.utils.validation import check_is_fitted

from ..components import gauss_wishart as gw
from ..components import mixture_weights as mw
from ..components.covariance_types import lookup
from ..models.bayesian_gaussian_mixture import BayesianGaussianMixture as BayesianGaussianMixtureModel
from ..models.bayesian_gaussian_mixture import VBGMMParams
from ..models.gaussian_mixture import GaussianMixture as GaussianMixtureModel
from ..models.gaussian_mixture import GMMParams
from ..core.xla_options import jit
from . import covariances as cv
from .gaussian_mixture import engine_init_params
from .mixture_base import MixtureEstimator


class BayesianGaussianMixture(MixtureEstimator):
    r"""Variational Bayesian Gaussian mixture, with scikit-learn's interface.

    Dirichlet or stick-breaking (Dirichlet process) prior on the weights, Gauss-Wishart prior on
    the components; coordinate ascent on the evidence lower bound (see
    :class:`emjax.BayesianGaussianMixture`). Arguments, attributes and methods are
    scikit-learn's ``sklearn.mixture.BayesianGaussianMixture``'s, with these differences:

    * ``reg_covar`` must be 0 (its default here): the Wishart prior already keeps every
      covariance positive definite, and adding a constant would break the exact coordinate
      ascent. scikit-learn's default of 1e-6 changes its results by about that much.
    * ``lower_bound_`` is the exact evidence lower bound summed over the rows (scikit-learn's
      unit), of the returned parameters; scikit-learn drops constant terms, so its values differ
      by a constant. ``tol`` applies to that sum, as in scikit-learn.
    * ``accelerator``: None or "squarem"; ``restart_statuses_``, ``restart_lower_bounds_`` as in
      :class:`~emjax.sklearn.GaussianMixture`.
    """

    def __init__(self, *, n_components=1, covariance_type="full", tol=1e-3, reg_covar=0.0,
                 max_iter=100, n_init=1, init_params="kmeans",
                 weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=None,
                 mean_precision_prior=None, mean_prior=None, degrees_of_freedom_prior=None,
                 covariance_prior=None, random_state=None, warm_start=False, verbose=0,
                 verbose_interval=10, accelerator=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.accelerator = accelerator

    def _check_settings(self) -> None:
        super()._check_settings()
        reg = self.reg_covar
        if not isinstance(reg, numbers.Real) or reg != 0:
            raise ValueError(f"reg_covar must be 0 for emjax's BayesianGaussianMixture; got {reg!r}. "
                             "Its Wishart prior keeps covariances positive definite; to regularise "
                             "more, raise degrees_of_freedom_prior or covariance_prior.")

    def _check_data(self, x: np.ndarray, weights: np.ndarray) -> None:
        """The default ``covariance_prior`` of a full or tied model, the data's covariance (a
        variance of 0 counts as 1), must be positive definite: it is not when the rows span fewer
        dimensions than there are features (e.g. fewer rows than features)."""
        if self.covariance_prior is not None or not lookup(self.covariance_type).matrix:
            return
        mean = weights @ x / weights.sum()
        cov = ((x - mean) * weights[:, None]).T @ (x - mean) / max(weights.sum() - 1, 1)
        cov = cov + np.diag((np.diag(cov) <= 0).astype(cov.dtype))
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            rank = np.linalg.matrix_rank(cov)
            raise ValueError(f"covariance_prior defaults to the data's covariance, which is singular "
                             f"here (rank {rank} < n_features={x.shape[1]}; {x.shape[0]} rows): pass "
                             "covariance_prior (e.g. np.eye(n_features) times the data's variance), "
                             "or use covariance_type='diag'.") from None

    def _engine_model(self, n_features: int) -> BayesianGaussianMixtureModel:
        return BayesianGaussianMixtureModel(
            self.n_components, self.covariance_type,
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=self.weight_concentration_prior,
            mean_precision_prior=self.mean_precision_prior, mean_prior=self.mean_prior,
            degrees_of_freedom_prior=self.degrees_of_freedom_prior,
            covariance_prior=self.covariance_prior, init_params=engine_init_params(self.init_params))

    def _bound_scale(self, total_weight: float) -> float:
        return total_weight

    def _set_fitted_params(self, model, params) -> None:
        p = VBGMMParams(*(np.asarray(a) for a in params))
        k, d = p.means.shape
        dirichlet = self.weight_concentration_prior_type == "dirichlet_distribution"
        self.weight_concentration_ = p.weight_concentration if dirichlet else tuple(p.weight_concentration)
        self.weights_ = _mean_weights(p.weight_concentration, dirichlet)
        self.mean_precision_, self.means_ = p.mean_precision, p.means
        self.degrees_of_freedom_, self.covariances_ = p.degrees_of_freedom, p.covariances
        self.precisions_cholesky_ = cv.precisions_cholesky(p.covariances, self.covariance_type)
        self.precisions_ = cv.precisions_from_cholesky(self.precisions_cholesky_, self.covariance_type)
        self.mean_prior_, self.covariance_prior_ = p.mean_prior, p.covariance_prior
        self.weight_concentration_prior_ = float(self.weight_concentration_prior or 1.0 / k)
        self.mean_precision_prior_ = float(self.mean_precision_prior or 1.0)
        self.degrees_of_freedom_prior_ = float(self.degrees_of_freedom_prior or d)

    def _engine_params(self) -> VBGMMParams:
        return VBGMMParams(np.asarray(self.weight_concentration_), self.mean_precision_, self.means_,
                           np.asarray(self.degrees_of_freedom_), self.covariances_, self.mean_prior_,
                           np.asarray(self.covariance_prior_))

    def _outputs(self, model, params, x):
        return _vb_outputs(params, x, model=model)

    def sample(self, n_samples=1):
        """``(X, y)``: ``n_samples`` draws from the plug-in mixture (``weights_``, ``means_``,
        ``covariances_``) and their components, grouped by component."""
        check_is_fitted(self)
        gmm = GaussianMixtureModel(self.n_components, self.covariance_type)
        params = GMMParams(self.weights_, self.means_, self.covariances_)
        return self._sample_from(gmm, params, n_samples)


def _mean_weights(concentration: np.ndarray, dirichlet: bool) -> np.ndarray:
    r"""Posterior mean weights: :math:`\alpha_k / \sum_j \alpha_j` (Dirichlet), or for sticks
    :math:`v_k \sim \mathrm{Beta}(a_k, b_k)`: :math:`E[v_k] \prod_{j<k} (1 - E[v_j])`,
    normalised over the ``K`` components kept."""
    if dirichlet:
        return concentration / concentration.sum()
    a, b = concentration
    stick = a / (a + b)
    weights = stick * np.concatenate([[1.0], np.cumprod(1 - stick[:-1])])
    return weights / weights.sum()


@functools.partial(jit, static_argnames="model")
def _vb_outputs(params, x, *, model):
    r"""Per row: :math:`\log\sum_k\rho_{nk}` with :math:`\log\rho_{nk} = E_q[\log\pi_k] +
    E_q[\log\mathcal N(x_n\mid\mu_k,\Lambda_k^{-1})]` (scikit-learn's ``score_samples``),
    :math:`q(z_n)` and its argmax."""
    log_rho = gw.expected_log_density(x, params.means, params.covariances, params.mean_precision,
                                      params.degrees_of_freedom, model.covariance_type)
    log_rho = log_rho + mw.expected_log_weights(params.weight_concentration,
                                                model.weight_concentration_prior_type)[:, None]
    return logsumexp(log_rho, axis=0), jax.nn.softmax(log_rho, axis=0).T, jax.numpy.argmax(log_rho, axis=0)
