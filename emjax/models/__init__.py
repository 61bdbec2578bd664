"""Latent-variable models: pure functions under the contract of :mod:`emjax.model`."""
from .gaussian_mixture import GaussianMixture, GMMParams

__all__ = ["GaussianMixture", "GMMParams"]
