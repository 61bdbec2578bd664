r"""A Gaussian HMM whose covariance update is hmmlearn's: maximum likelihood for the initial
distribution, transitions and means, and for the covariances the posterior mode under a prior of
strength ``covars_prior`` = :math:`p` and weight ``covars_weight`` = :math:`w`,

.. math::
    \text{diag: } \sigma^2_{kf} = \frac{p + S_{kf}}{\max(w - 1, 0) + N_k}, \qquad
    \text{spherical: } \sigma^2_k = \frac{p + \bar S_k}{\max(w - 1, 0) + N_k}, \qquad
    \text{full: } \Sigma_k = \frac{p \mathbf{1}\mathbf{1}^\top + S_k}{\max(w - d, 0) + N_k}, \qquad
    \text{tied: } \Sigma = \frac{p \mathbf{1}\mathbf{1}^\top + \sum_k S_k}{\max(w - d, 0) + N},

with :math:`N_k` the expected visits of state ``k``, :math:`S_k` the weighted scatter about the new
mean (:math:`\bar S_k` its mean over features) and :math:`p` added to every entry of a full or
tied matrix (hmmlearn adds its scalar prior that way). Each is the exact maximiser of the
expected complete log-likelihood plus the log prior

.. math::
    \log p(\Sigma) = -\tfrac{a}{2} \log|\Sigma| - \tfrac12 \operatorname{tr}(P \Sigma^{-1})
    \quad (a = \max(w - d, 0),\ P = p \mathbf{1}\mathbf{1}^\top)

per full covariance (per variance for diag, :math:`a = \max(w - 1, 0)`, :math:`P = p`; spherical
counts it ``d`` times), so EM monitors log-likelihood + this log prior and never lowers it.
hmmlearn's defaults are ``p = 1e-2``, ``w = 1``. A state without weight keeps its mean and
covariance.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from ...components import gaussian as g
from ...components import gaussian_update as gu
from ...components.covariance_types import SPHERICAL, lookup
from ...components.emissions_gaussian import GaussianEmission, GaussianEmissionParams
from .model import HMM


@dataclasses.dataclass(frozen=True)
class CovariancePriorEmission(GaussianEmission):
    """Gaussian emissions with hmmlearn's covariance update (module docstring)."""

    covars_prior: float = 1e-2
    covars_weight: float = 1.0

    def _extra_weight(self, d: int):
        return max(self.covars_weight - (d if lookup(self.covariance_type).matrix else 1), 0.0)

    def m_step(self, stats, params: GaussianEmissionParams) -> GaussianEmissionParams:
        counts, cov_type, ref, p = stats[0], lookup(self.covariance_type), params.means, self.covars_prior
        seen = counts > 0
        means, scatter = gu.means_and_scatter(stats, ref, cov_type)
        a = self._extra_weight(ref.shape[1])
        if cov_type.shared:
            return GaussianEmissionParams(means, (p + scatter) / (a + jnp.sum(counts)))
        if cov_type is SPHERICAL:
            scatter = jnp.mean(scatter, axis=1)
        shape = (-1,) + (1,) * (scatter.ndim - 1)
        cov = (p + scatter) / jnp.maximum(a + counts, 1e-5).reshape(shape)
        if params.covariances is None:  # a restart's start (hmm_emissions' init)
            return GaussianEmissionParams(means, cov)
        return GaussianEmissionParams(means, jnp.where(seen.reshape(shape), cov, params.covariances))

    def log_prior(self, params: GaussianEmissionParams):
        cov_type, p = lookup(self.covariance_type), self.covars_prior
        d = params.means.shape[1]
        a = self._extra_weight(d)
        cov = params.covariances
        if cov_type.matrix:
            prec_chol = g.precision_cholesky(cov, cov_type)  # U U^T = cov^-1
            log_det_cov = -2 * g.log_det_precision_cholesky(prec_chol, cov_type, d)
            quad = jnp.sum(jnp.sum(prec_chol, axis=-2) ** 2, axis=-1)  # 1^T cov^-1 1
            return jnp.sum(-0.5 * a * log_det_cov - 0.5 * p * quad)
        per_variance = -0.5 * a * jnp.log(cov) - 0.5 * p / cov
        return jnp.sum(per_variance) * (d if cov_type is SPHERICAL else 1)


@dataclasses.dataclass(frozen=True)
class CovariancePriorGaussianHMM(HMM):
    """:class:`~emjax.models.hmm.model.HMM` with Gaussian emissions updated as hmmlearn's
    ``GaussianHMM`` (module docstring); the initial distribution and transitions are maximum
    likelihood (``pseudo_count=0``)."""

    covars_prior: float = 1e-2
    covars_weight: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if self.emission != "gaussian" or self.pseudo_count != 0:
            raise ValueError("CovariancePriorGaussianHMM has Gaussian emissions and "
                             "pseudo_count=0; got emission="
                             f"{self.emission!r}, pseudo_count={self.pseudo_count!r}.")
        for name in ("covars_prior", "covars_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
                    or value == float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0 (a scalar); got {value!r}.")

    @property
    def emission_model(self):
        return CovariancePriorEmission(self.covariance_type, 0.0, 0.0, self.init_params,
                                       covars_prior=float(self.covars_prior),
                                       covars_weight=float(self.covars_weight),
                                       formulation=self.formulation)
