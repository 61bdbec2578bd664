"""``emjax.sklearn.GaussianMixture``: scikit-learn's ``GaussianMixture`` over :func:`emjax.fit`."""
from __future__ import annotations

import functools

import jax
import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..components import PSEUDO_COUNT
from ..core.regularization import resolve_pseudo_count
from ..engine.restarts import init_restarts
from ..models.gaussian_mixture import GaussianMixture as GaussianMixtureModel
from ..models.gaussian_mixture import GMMParams
from ..core.validation import check_probabilities
from ..core.xla_options import jit
from . import covariances as cv
from . import host_density
from .mixture_base import MixtureEstimator

#: scikit-learn's names of the starting methods -> the engine's.
INIT_PARAMS = {"kmeans": "kmeans", "k-means++": "kmeans++", "random": "random",
               "random_from_data": "random_from_data"}


def engine_init_params(init_params: str) -> str:
    """The engine's name of scikit-learn's ``init_params`` (its own "kmeans++" is taken too)."""
    if init_params == "kmeans++":
        return init_params
    if init_params not in INIT_PARAMS:
        raise ValueError(f"init_params must be one of {sorted(INIT_PARAMS)}; got {init_params!r}.")
    return INIT_PARAMS[init_params]


class GaussianMixture(MixtureEstimator):
    r"""Gaussian mixture fitted by EM, with scikit-learn's interface.

    .. math:: p(x) = \sum_{k=1}^K \pi_k\, \mathcal N(x \mid \mu_k, \Sigma_k)

    Arguments, attributes and methods are scikit-learn's ``sklearn.mixture.GaussianMixture``'s,
    plus:

    Args:
        pseudo_count: 0 (default): maximum likelihood, ``reg_covar`` added to every covariance's
            diagonal in the data's units, scikit-learn's update and numbers; > 0: emjax's MAP-EM,
            a Dirichlet and Wishart prior of that strength in observations with ``reg_covar`` its
            scale in standardised units (monotone, guards against components collapsing onto a
            few rows; see :class:`emjax.GaussianMixture`, whose default is 1e-3).
        regularization: deprecated (a DeprecationWarning at ``fit``): "sklearn" is
            ``pseudo_count=0``, "prior" ``pseudo_count=1e-3`` (or the ``pseudo_count`` given).
        missing: "error" (NaN refused) or "marginalize" (NaN marks a missing value, integrated out).
        accelerator: None (plain EM) or "squarem".

    The ``n_init`` restarts run at once, as one compiled program (``jax.vmap``). float64 data are
    fitted in float64, float32 data in float32. Fitted attributes beyond scikit-learn's:
    ``restart_statuses_`` (an :class:`emjax.Status` per restart) and ``restart_lower_bounds_``
    (NaN for a restart that failed). ``lower_bound_`` is the mean log-likelihood per row of the
    returned parameters (with ``pseudo_count > 0`` plus the mean log prior), where
    scikit-learn reports that of the parameters one EM step earlier.
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None, means_init=None,
                 precisions_init=None, random_state=None, warm_start=False, verbose=0,
                 verbose_interval=10, pseudo_count=0.0, missing="error", accelerator=None,
                 regularization=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.pseudo_count = pseudo_count
        self.missing = missing
        self.accelerator = accelerator
        self.regularization = regularization

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing == "marginalize"
        return tags

    def _allows_nan(self) -> bool:
        return self.missing == "marginalize"

    def _check_settings(self) -> None:
        super()._check_settings()
        self._pseudo_count(warn=True)

    def _pseudo_count(self, warn: bool = False) -> float:
        """``pseudo_count``, or its value from the deprecated ``regularization`` (warning once per
        fit, from :meth:`_check_settings`)."""
        return resolve_pseudo_count(self.regularization, self.pseudo_count, default=0.0,
                                    prior_strength=PSEUDO_COUNT, warn=warn, stacklevel=5,
                                    model="emjax.sklearn.GaussianMixture")

    def _engine_model(self, n_features: int) -> GaussianMixtureModel:
        return GaussianMixtureModel(self.n_components, self.covariance_type,
                                    init_params=engine_init_params(self.init_params),
                                    reg_covar=self.reg_covar, pseudo_count=self._pseudo_count(),
                                    missing=self.missing)

    def _starting_params(self, model, x, weights, key, n_init):
        """``weights_init``, ``means_init`` and ``precisions_init`` in place of the model's starts;
        with all three given, one start (every restart would be the same)."""
        given = self._given_start(x.shape[1])
        if all(v is None for v in given):
            return None
        if all(v is not None for v in given):
            return GMMParams(*(np.asarray(v, x.dtype)[None] for v in given))
        start = jax.device_get(init_restarts(model, x, key, n_init=n_init, weights=weights))
        return GMMParams(*(np.asarray(a) if v is None else np.broadcast_to(np.asarray(v, x.dtype), np.shape(a))
                           for a, v in zip(start, given)))

    def _given_start(self, d: int):
        """Checked ``(weights_init, means_init, covariances from precisions_init)``, None where
        not given."""
        k, cov_type = self.n_components, self.covariance_type
        weights = means = cov = None
        if self.weights_init is not None:
            weights = np.asarray(self.weights_init, np.float64)
            if weights.shape != (k,):
                raise ValueError(f"weights_init must have shape ({k},) (n_components); got {weights.shape}.")
            check_probabilities(weights, "weights_init")
            weights = weights / weights.sum()
        if self.means_init is not None:
            means = np.asarray(self.means_init, np.float64)
            if means.shape != (k, d):
                raise ValueError(f"means_init must have shape ({k}, {d}) (n_components, n_features); "
                                 f"got {means.shape}.")
            if not np.all(np.isfinite(means)):
                raise ValueError("means_init must be finite.")
        if self.precisions_init is not None:
            precisions = cv.check_precisions(self.precisions_init, cov_type, k, d, "precisions_init")
            cov = cv.covariances_from_precisions(precisions, cov_type)
        return weights, means, cov

    def _set_fitted_params(self, model, params) -> None:
        weights, means, cov = (np.asarray(a) for a in params)
        self.weights_, self.means_, self.covariances_ = weights, means, cov
        self.precisions_cholesky_ = cv.precisions_cholesky(cov, self.covariance_type)
        self.precisions_ = cv.precisions_from_cholesky(self.precisions_cholesky_, self.covariance_type)

    def _engine_params(self) -> GMMParams:
        return GMMParams(self.weights_, self.means_, self.covariances_)

    def _outputs(self, model, params, x):
        return _gmm_outputs(params, x, model=model)

    def _outputs_on_host(self, x):
        """Complete rows in NumPy (:mod:`~emjax.sklearn.host_density`); rows with NaN in the engine."""
        if np.isnan(x).any():
            return None
        dtype = x.dtype
        return host_density.mixture_outputs(x, *(np.asarray(a, dtype) for a in (
            self.weights_, self.means_, self.precisions_cholesky_)), self.covariance_type)

    def sample(self, n_samples=1):
        """``(X, y)``: ``n_samples`` draws and their components (grouped by component)."""
        check_is_fitted(self)
        return self._sample_from(self._engine_model(self.means_.shape[1]), self._engine_params(), n_samples)

    def _n_parameters(self) -> int:
        return int(self._engine_model(self.means_.shape[1]).n_free_parameters(self._engine_params()))

    def bic(self, X):
        r"""Bayesian information criterion :math:`-2 \sum_n \log p(x_n) + p \log n` (lower is
        better; ``p`` free parameters)."""
        log_prob = self.score_samples(X)
        return -2 * log_prob.sum() + self._n_parameters() * np.log(len(log_prob))

    def aic(self, X):
        r"""Akaike information criterion :math:`-2 \sum_n \log p(x_n) + 2p` (lower is better)."""
        return -2 * self.score_samples(X).sum() + 2 * self._n_parameters()


@functools.partial(jit, static_argnames="model")
def _gmm_outputs(params, x, *, model):
    return model.log_prob(params, x), model.posterior(params, x), model.predict(params, x)
