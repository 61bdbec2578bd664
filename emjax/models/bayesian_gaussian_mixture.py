r"""Variational Bayesian Gaussian mixture (scikit-learn's ``BayesianGaussianMixture``).

Model: weights with a Dirichlet or truncated stick-breaking (Dirichlet process) prior
(:mod:`emjax.components.mixture_weights`), components with a Gauss-Wishart prior
(:mod:`emjax.components.gauss_wishart`), :math:`x_n \mid z_n = k \sim \mathcal N(\mu_k,
\Lambda_k^{-1})`. Variational EM keeps :math:`q(z)\,q(\pi)\prod_k q(\mu_k, \Lambda_k)`; the
"params" are the parameters of :math:`q(\pi)` and :math:`q(\mu, \Lambda)` (plus the prior's
mean and covariance, which default to the data's).

The monitored objective is the evidence lower bound. With the optimal
:math:`q(z_n = k) \propto \rho_{nk}`, :math:`\log\rho_{nk} = \mathbb E_q[\log\pi_k]
+ \mathbb E_q[\log\mathcal N(x_n \mid \mu_k, \Lambda_k^{-1})]`, it is

.. math::
    \mathcal L = \sum_n w_n \log\sum_k \rho_{nk} - \mathrm{KL}(q(\pi)\|p(\pi))
        - \sum_k \mathrm{KL}(q(\mu_k, \Lambda_k)\|p(\mu_k, \Lambda_k)),

so ``e_step`` returns the first term as its "log-likelihood" and ``log_prior`` the negated KL
terms. ``m_step`` is the exact coordinate-ascent update of :math:`q(\pi), q(\mu, \Lambda)`, so
:math:`\mathcal L` never decreases.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from ..core.chunking import choose_chunk_size, chunked_sum
from ..components import gauss_wishart as gw
from ..components import gaussian as g
from ..components import mixture_weights as mw
from ..components.covariance_types import lookup
from ..components.responsibilities import weighted_responsibilities
from ..core.model import Model
from ..core.plan import Formulation
from ..core.validation import (
    as_float_array, check_finite, check_param_shapes, checked_post_fit_data, prepare_inputs,
)
from ..components import seeding
from .gaussian_mixture import GaussianMixture, GMMParams
from .prior_standardizer import PriorStandardizer, prior_in_fit_units
from .vb_priors import check_prior_shapes, prior_tuple, validate_static
from ..core.xla_options import jit


class VBGMMParams(NamedTuple):
    """Parameters of the variational posterior (scikit-learn's attribute names, no underscore).

    weight_concentration: ``(k,)`` Dirichlet ``alpha`` or ``(2, k)`` stick-breaking ``(a, b)``.
    mean_precision: ``(k,)`` ``beta_k``.   means: ``(k, d)`` ``m_k``.
    degrees_of_freedom: ``(k,)`` ``nu_k`` (a scalar for tied).
    covariances: ``(nu_k W_k)^{-1}`` in the usual covariance shapes.
    mean_prior: ``(d,)`` ``m_0``.   covariance_prior: ``W_0^{-1}``: ``(d, d)`` full/tied, ``(d,)``
    diag, scalar spherical.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> model = emjax.BayesianGaussianMixture(3, covariance_type="diag")
        >>> params = emjax.init_restarts(model, X, jax.random.key(0), n_init=1)
        >>> params.means.shape, params.degrees_of_freedom.shape    # a leading (n_init,) axis
        ((1, 3, 2), (1, 3))
    """

    weight_concentration: jnp.ndarray
    mean_precision: jnp.ndarray
    means: jnp.ndarray
    degrees_of_freedom: jnp.ndarray
    covariances: jnp.ndarray
    mean_prior: jnp.ndarray
    covariance_prior: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class BayesianGaussianMixture(Model):
    """Variational Bayesian Gaussian mixture with scikit-learn's priors and defaults.

    Args:
        n_components: truncation level ``K`` (components not needed shrink to negligible weight).
        covariance_type: "full", "tied", "diag" or "spherical".
        weight_concentration_prior_type: "dirichlet_process" (stick-breaking) or
            "dirichlet_distribution".
        weight_concentration_prior: ``gamma_0`` / ``alpha_0`` (> 0); default ``1 / K``.
        mean_precision_prior: ``beta_0`` (> 0); default 1.
        mean_prior: ``m_0``, shape ``(d,)``; default the (weighted) data mean.
        degrees_of_freedom_prior: ``nu_0`` (> d - 1); default ``d``.
        covariance_prior: ``W_0^{-1}``: ``(d, d)`` positive definite for full/tied, ``(d,)``
            positive for diag, a positive number for spherical; default the data's covariance
            (``ddof=1``; its diagonal for diag, the diagonal's mean for spherical).
        init_params: starting responsibilities: "kmeans" (default, k-means++ then Lloyd steps),
            "kmeans++", "random_from_data" or "random", as in :class:`GaussianMixture`.

    Unlike scikit-learn there is no ``reg_covar``: the Wishart prior keeps every covariance
    positive definite, and adding ``reg_covar`` would break the exact coordinate ascent.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> model = emjax.BayesianGaussianMixture(5)
        >>> res = emjax.fit(model, X, jax.random.key(0), n_init=2, max_iter=200, tol=1e-4)
        >>> weights = model.mixture_params(res.params).weights    # plug-in weights (weights_)
        >>> int((weights > 0.05).sum())                        # the unneeded components empty out
        2
    """

    n_components: int
    covariance_type: str = "full"
    weight_concentration_prior_type: str = "dirichlet_process"
    weight_concentration_prior: float | None = None
    mean_precision_prior: float | None = None
    mean_prior: tuple | None = None
    degrees_of_freedom_prior: float | None = None
    covariance_prior: tuple | float | None = None
    init_params: str = "kmeans"
    #: the engine's E-step choices (:meth:`with_formulation`; not a user setting)
    formulation: Formulation = dataclasses.field(default=Formulation(), repr=False)

    def __post_init__(self):
        for name in ("mean_prior", "covariance_prior"):
            object.__setattr__(self, name, prior_tuple(getattr(self, name), name))
        validate_static(self)

    def with_formulation(self, formulation: Formulation) -> "BayesianGaussianMixture":
        return dataclasses.replace(self, formulation=formulation)

    # ----------------------------------------------------------------- derived quantities
    def _weight_prior(self):
        return self.weight_concentration_prior or 1.0 / self.n_components

    def _beta0(self):
        return self.mean_precision_prior or 1.0

    def _nu0(self, d: int):
        return self.degrees_of_freedom_prior or float(d)

    def _log_rho(self, params: VBGMMParams, x):
        """Expected log joint :math:`\\log\\rho_{nk}`, shape ``(k, n)``."""
        log_weights = mw.expected_log_weights(params.weight_concentration,
                                              self.weight_concentration_prior_type)
        return gw.expected_log_density(x, params.means, params.covariances, params.mean_precision,
                                       params.degrees_of_freedom, self.covariance_type,
                                       self.formulation) + log_weights[:, None]

    # ----------------------------------------------------------------- inference
    def posterior(self, params: VBGMMParams, x):
        """Variational responsibilities :math:`q(z_n = k)`, shape ``(n, k)`` (scikit-learn's
        ``predict_proba``)."""
        x = checked_post_fit_data(self, params, x)
        return jax.nn.softmax(self._log_rho(params, x), axis=0).T

    def predict(self, params: VBGMMParams, x):
        """Most probable component under :math:`q(z_n)`, shape ``(n,)``."""
        x = checked_post_fit_data(self, params, x)
        return jnp.argmax(self._log_rho(params, x), axis=0)

    def log_prob(self, params: VBGMMParams, x):
        """Posterior predictive :math:`\\log \\sum_k \\bar\\pi_k\\, t_k(x_n)`, shape ``(n,)``:
        a mixture of Student t densities with the normalised mean weights (scikit-learn's
        ``weights_``)."""
        x = checked_post_fit_data(self, params, x)
        weights = mw.mean_weights(params.weight_concentration, self.weight_concentration_prior_type)
        log_t = gw.predictive_log_density(x, params.means, params.covariances, params.mean_precision,
                                          params.degrees_of_freedom, self.covariance_type)
        return logsumexp(log_t + jnp.log(weights)[:, None], axis=0)

    def mixture_params(self, params: VBGMMParams) -> GMMParams:
        """Plug-in Gaussian mixture: scikit-learn's ``weights_``, ``means_``, ``covariances_``."""
        weights = mw.mean_weights(params.weight_concentration, self.weight_concentration_prior_type)
        return GMMParams(weights, params.means, params.covariances)

    def n_free_parameters(self, params: VBGMMParams) -> int:
        """Free parameters of the plug-in mixture (as :class:`GaussianMixture`'s)."""
        plug_in = GaussianMixture(self.n_components, self.covariance_type)
        return plug_in.n_free_parameters(self.mixture_params(params))

    # ----------------------------------------------------------------- EM contract
    def e_step(self, params: VBGMMParams, x, weights):
        """Statistics under the optimal :math:`q(z)` and :math:`\\sum_n w_n \\log\\sum_k \\rho_{nk}`."""
        resp, loglik = weighted_responsibilities(self._log_rho(params, x), weights)
        return g.sufficient_stats(x, resp, params.means, self.covariance_type, self.formulation), loglik

    def m_step(self, stats, params: VBGMMParams) -> VBGMMParams:
        """Coordinate ascent on :math:`q(\\pi), q(\\mu, \\Lambda)`; ``params.means`` is the
        statistics' reference point, the priors are carried over."""
        counts, sums, _ = stats
        (k, d), kind = params.means.shape, lookup(self.covariance_type)
        beta0 = self._beta0()
        beta = beta0 + counts
        means = (beta0 * params.mean_prior + sums) / beta[:, None]
        dof = self._nu0(d) + (jnp.sum(counts) / k if kind.shared else counts)
        scale = gw.posterior_scale(stats, params.means, means, params.mean_prior,
                                   params.covariance_prior, beta0, self.covariance_type)
        cov = scale / (dof if kind.shared else jnp.reshape(dof, (-1,) + (1,) * kind.component_ndim))
        concentration = mw.update(counts, self._weight_prior(), self.weight_concentration_prior_type)
        return params._replace(weight_concentration=concentration, mean_precision=beta, means=means,
                               degrees_of_freedom=dof, covariances=cov)

    def log_prior(self, params: VBGMMParams):
        """Minus the KL divergences of :math:`q(\\pi)` and :math:`q(\\mu, \\Lambda)` from the prior."""
        d = params.means.shape[1]
        kl_weights = mw.kl_divergence(params.weight_concentration, self._weight_prior(),
                                      self.weight_concentration_prior_type)
        kl_components = gw.kl_divergence(params.means, params.covariances, params.mean_precision,
                                         params.degrees_of_freedom, params.mean_prior,
                                         params.covariance_prior, self._beta0(), self._nu0(d),
                                         self.covariance_type)
        return -(kl_weights + kl_components)

    def is_degenerate(self, params: VBGMMParams):
        """True when a covariance is not positive definite."""
        prec_chol = g.precision_cholesky(params.covariances, self.covariance_type)
        return ~jnp.all(jnp.isfinite(prec_chol))

    # ----------------------------------------------------------------- starting points
    def _prior_params(self, x, weights, k: int) -> VBGMMParams:
        """Empty posterior holding the prior in the fit's (standardised) coordinates
        (:func:`~emjax.models.prior_standardizer.prior_in_fit_units`)."""
        prior_mean, prior_cov = prior_in_fit_units(self, x, weights)
        zeros = jnp.zeros((k,), x.dtype)
        return VBGMMParams(None, zeros, jnp.broadcast_to(prior_mean, (k, x.shape[1])), None, None,
                           prior_mean, prior_cov)

    def init(self, key, x, weights) -> VBGMMParams:
        """One M-step from responsibilities chosen by ``init_params``."""
        k, n = self.n_components, x.shape[0]
        start = self._prior_params(x, weights, k)
        _, responsibilities = seeding.starting_responsibilities(key, x, weights, k, self.init_params)

        def stats(data, w):
            rows, row_index = data
            return g.sufficient_stats(rows, responsibilities(rows, row_index) * w, start.means,
                                      self.covariance_type, self.formulation)

        chunk = choose_chunk_size(n, self.work_per_row(x))
        return self.m_step(chunked_sum(stats, (x, jnp.arange(n)), weights, chunk), start)

    def init_from_responsibilities(self, data, resp, weights=None) -> VBGMMParams:
        """Parameters after one M-step from given responsibilities ``(n, k)``, in the data's units
        (scikit-learn's ``_initialize``): a reproducible starting point for :func:`emjax.em`."""
        x, w = prepare_inputs(self, data, weights)
        resp = as_float_array(resp, "resp").astype(x.dtype)
        if resp.shape != (x.shape[0], self.n_components):
            raise ValueError(f"resp must have shape {(x.shape[0], self.n_components)} (rows, "
                             f"n_components); got {resp.shape}.")
        check_finite(resp, "resp")
        return _from_responsibilities(self, x, w, resp)

    # ----------------------------------------------------------------- standardisation
    def standardizer(self) -> PriorStandardizer:
        """Centring and scaling that give explicit priors a known form
        (:class:`~emjax.models.prior_standardizer.PriorStandardizer`)."""
        return PriorStandardizer(self)

    # ----------------------------------------------------------------- host-side checks
    def validate(self, data):
        x = GaussianMixture(self.n_components, self.covariance_type).validate(data)
        check_prior_shapes(self, x.shape[1])
        return x

    def validate_weights(self, weights):
        GaussianMixture(self.n_components, self.covariance_type).validate_weights(weights)

    def validate_params(self, params, data):
        if not isinstance(params, tuple) or len(params) != len(VBGMMParams._fields):
            raise TypeError(f"params must be VBGMMParams{VBGMMParams._fields}; "
                            f"got {type(params).__name__}.")
        params = VBGMMParams(*params)
        k, d, kind = self.n_components, data.shape[1], lookup(self.covariance_type)
        dirichlet = self.weight_concentration_prior_type == "dirichlet_distribution"
        expected = {
            "weight_concentration": (k,) if dirichlet else (2, k), "mean_precision": (k,),
            "means": (k, d), "degrees_of_freedom": () if kind.shared else (k,),
            "covariances": kind.shape(k, d), "mean_prior": (d,),
            "covariance_prior": (d,) * kind.component_ndim,
        }
        check_param_shapes(params, expected, f"n_components={k}, n_features={d}, "
                           f"covariance_type={self.covariance_type!r}")

    def init_ignores_padding(self, n_rows: int) -> bool:
        return seeding.draws_ignore_padding(self.init_params, n_rows)

    def work_per_row(self, data) -> int:
        return GaussianMixture(self.n_components, self.covariance_type).exact_work_per_row(data)


@functools.partial(jit, static_argnums=0)
def _from_responsibilities(model: BayesianGaussianMixture, x, weights, resp):
    standardizer = model.standardizer()
    x_std, transform, _ = standardizer.standardize(x, weights)
    start = model._prior_params(x_std, weights, model.n_components)
    stats = g.sufficient_stats(x_std, (resp * weights[:, None]).T, start.means, model.covariance_type)
    return standardizer.params_from_standard(model.m_step(stats, start), transform)
