r"""The coordinates a :class:`~emjax.models.bayesian_gaussian_mixture.BayesianGaussianMixture` fits
in, and its prior in them.

The fit centres the data on the prior mean :math:`m_0` (default: the weighted data mean) and scales
each feature by the square root of the prior covariance's diagonal (default: the data's standard
deviations), :math:`x' = (x - m_0) / \sqrt{\operatorname{diag} C_0}`, so that an explicit prior has
the known form :math:`m_0' = 0`, :math:`\operatorname{diag} C_0' = 1` there (one common scale for
spherical covariances). Parameters map through the same affine map.

Examples:
    >>> import jax.numpy as jnp, emjax
    >>> model = emjax.BayesianGaussianMixture(2, "diag", mean_prior=[1.0], covariance_prior=[4.0])
    >>> x_std, transform, _ = model.standardizer().standardize(jnp.array([[1.0], [5.0]]), jnp.ones(2))
    >>> x_std.ravel().tolist(), transform.scale.tolist()        # (x - 1) / sqrt(4)
    ([0.0, 2.0], [2.0])
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax.numpy as jnp

from ..components.covariance_types import lookup
from ..components.gaussian import Affine
from ..core.standardizer import Standardizer
from .gaussian_mixture import GaussianMixture
from .vb_priors import resolved_priors

if TYPE_CHECKING:
    from .bayesian_gaussian_mixture import BayesianGaussianMixture, VBGMMParams


@dataclasses.dataclass(frozen=True)
class PriorStandardizer(Standardizer):
    """Centre on ``mean_prior`` (default: the data mean) and scale by the square root of the prior
    covariance's diagonal (default: the data's standard deviations), so that explicit priors have a
    known form in the fit's coordinates. It needs the data whole (the default moments are those
    of :class:`~emjax.models.gaussian_standardizer.GaussianStandardizer` without its float32
    resolution factor)."""

    model: BayesianGaussianMixture

    def standardize(self, x, weights):
        model, d = self.model, x.shape[1]
        explicit_cov, explicit_mean = resolved_priors(model, x.dtype)
        if explicit_cov is None:
            # reg_covar=0: the moments alone (no float32 resolution factor, which is for its prior)
            moments = GaussianMixture(1, model.covariance_type, reg_covar=0.0).standardizer()
            scale = moments.standardize(x, weights)[1].scale
        else:
            scale = prior_scale(explicit_cov, model.covariance_type, d)
        shift = explicit_mean if explicit_mean is not None else (weights @ x) / jnp.sum(weights)
        return (x - shift) / scale, Affine(shift, scale), -jnp.sum(jnp.log(scale))

    def _map(self, params: VBGMMParams, shift, scale) -> VBGMMParams:
        kind = lookup(self.model.covariance_type)
        return params._replace(
            means=(params.means - shift) / scale, mean_prior=(params.mean_prior - shift) / scale,
            covariances=kind.scale(params.covariances, scale),
            covariance_prior=kind.scale(params.covariance_prior, scale))  # one component's shape

    def params_to_standard(self, params, transform: Affine):
        return self._map(params, transform.shift, transform.scale)

    def params_from_standard(self, params, transform: Affine):
        return self._map(params, -transform.shift / transform.scale, 1 / transform.scale)


def prior_scale(prior_cov, covariance_type: str, d: int):
    """Per-feature scale ``sqrt(diag C0)`` (one common value for spherical)."""
    variances = jnp.diagonal(prior_cov) if lookup(covariance_type).matrix else prior_cov
    return jnp.sqrt(jnp.broadcast_to(variances, (d,)))


def prior_in_fit_units(model: BayesianGaussianMixture, x, weights):
    """``(mean_prior, covariance_prior)`` in the fit's (standardised) coordinates ``x``.

    Explicit priors fixed the standardisation (:class:`PriorStandardizer`): there the prior mean
    is 0 and the prior covariance has a unit diagonal. Defaults are the weighted data mean
    and covariance (``ddof=1`` in frequency-weight terms), with variance 1 in the fit's
    coordinates (where such a feature is not rescaled) for a constant feature, whose
    empirical variance 0 would make the Wishart prior improper.
    """
    d, kind = x.shape[1], lookup(model.covariance_type)
    total = jnp.sum(weights)
    data_mean = (weights @ x) / total
    prior_mean = jnp.zeros((d,), x.dtype) if model.mean_prior is not None else data_mean
    explicit, _ = resolved_priors(model, x.dtype)
    if explicit is not None:
        return prior_mean, kind.scale(explicit, prior_scale(explicit, model.covariance_type, d))
    centred = x - data_mean
    dof = jnp.where(total > 1, total - 1, total)
    if kind.matrix:
        prior_cov = (centred * weights[:, None]).T @ centred / dof
        variances = jnp.diagonal(prior_cov)
        return prior_mean, prior_cov + jnp.diag(jnp.where(variances > 0, 0, 1).astype(x.dtype))
    prior_cov = kind.pool_variances((weights @ (centred * centred)) / dof)
    return prior_mean, jnp.where(prior_cov > 0, prior_cov, 1)
