r"""Gaussian mixtures padded to a common number of components.

A mixture with :math:`K` components is stored with :math:`K_{max}` slots and a boolean mask
``active``; slot :math:`k \ge K` is padding: weight 0, a frozen unit covariance. Its weighted
density :math:`\log 0 + \log\mathcal N = -\infty` gives it responsibility exactly 0, so it adds
nothing to any density or statistic; the M-step keeps it frozen and the prior and the weights'
normaliser skip it. Mixtures with different :math:`K` then have the same shapes, and one compiled
program (one ``vmap``) fits all of them (:func:`emjax.select`).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp

from ..components import gaussian as g
from ..components.covariance_types import lookup
from ..core.model import Model, delegate
from ..core.standardizer import Standardizer
from ..models.gaussian_mixture import GaussianMixture, GMMParams


class PaddedParams(NamedTuple):
    """``mixture``: GMMParams with ``K_max`` slots; ``active``: ``(K_max,)`` bool, True for the
    first ``K``."""

    mixture: GMMParams
    active: jnp.ndarray


def pad(params: GMMParams, k_max: int, covariance_type: str) -> PaddedParams:
    """``params`` of a ``K``-component mixture in ``k_max`` slots (padding: weight 0, mean 0,
    unit covariance)."""
    weights, means, cov = params
    k, d = means.shape
    extra = k_max - k
    if not lookup(covariance_type).shared:  # unit covariances
        cov = jnp.concatenate([cov, g.add_to_diagonal(jnp.zeros(g.covariance_shape(covariance_type, extra, d),
                                                               cov.dtype), 1, covariance_type)])
    return PaddedParams(
        GMMParams(jnp.concatenate([weights, jnp.zeros((extra,), weights.dtype)]),
                  jnp.concatenate([means, jnp.zeros((extra, d), means.dtype)]), cov),
        jnp.arange(k_max) < k)


def trim(params: PaddedParams, k: int, covariance_type: str) -> GMMParams:
    """The ``k`` active components of padded ``params`` (host-side: ``k`` is concrete)."""
    weights, means, cov = params.mixture
    return GMMParams(weights[:k], means[:k], cov if lookup(covariance_type).shared else cov[:k])


@delegate("mixture", GaussianMixture, "validate", "validate_weights", "work_per_row")
@dataclasses.dataclass(frozen=True)
class PaddedMixture(Model):
    """The model of :class:`PaddedParams`: ``mixture`` (with ``n_components = K_max``) whose
    inactive slots are padding. Its methods are the mixture's, on ``params.mixture`` and with the
    mask where the mixture takes one."""

    mixture: GaussianMixture

    def init(self, key, x, weights) -> PaddedParams:
        """A start with every slot active (``K = K_max``)."""
        return PaddedParams(self.mixture.init(key, x, weights),
                            jnp.ones((self.mixture.n_components,), bool))

    def e_step(self, params: PaddedParams, x, weights):
        return self.mixture.e_step(params.mixture, x, weights)

    def m_step(self, stats, params: PaddedParams) -> PaddedParams:
        return PaddedParams(self.mixture.m_step(stats, params.mixture, params.active), params.active)

    def log_prior(self, params: PaddedParams):
        return self.mixture.log_prior(params.mixture, params.active)

    def is_degenerate(self, params: PaddedParams):
        return self.mixture.is_degenerate(params.mixture, params.active)

    def log_prob(self, params: PaddedParams, x):
        return self.mixture.log_prob(params.mixture, x)

    def posterior(self, params: PaddedParams, x):
        return self.mixture.posterior(params.mixture, x)

    def standardizer(self) -> "PaddedStandardizer":
        return PaddedStandardizer(self.mixture.standardizer())


@dataclasses.dataclass(frozen=True)
class PaddedStandardizer(Standardizer):
    """The mixture's standardisation (of the whole data: :func:`emjax.select` fits a copy), its
    parameter maps applied to ``params.mixture``."""

    mixture: Standardizer

    def standardize(self, data, weights):
        return self.mixture.standardize(data, weights)

    def params_to_standard(self, params: PaddedParams, transform) -> PaddedParams:
        return params._replace(mixture=self.mixture.params_to_standard(params.mixture, transform))

    def params_from_standard(self, params: PaddedParams, transform) -> PaddedParams:
        return params._replace(mixture=self.mixture.params_from_standard(params.mixture, transform))
