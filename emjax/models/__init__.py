"""Latent-variable models: pure functions under the contract of :mod:`emjax.model`."""
from .enumerated import EnumeratedMixture
from .gaussian_mixture import GaussianMixture, GMMParams

__all__ = ["EnumeratedMixture", "GaussianMixture", "GMMParams"]
