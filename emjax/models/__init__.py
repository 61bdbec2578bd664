"""Latent-variable models: pure functions under the contract of :mod:`emjax.model`."""
from .bayesian_gaussian_mixture import BayesianGaussianMixture, VBGMMParams
from .gaussian_mixture import GaussianMixture, GMMParams

__all__ = ["BayesianGaussianMixture", "GMMParams", "GaussianMixture", "VBGMMParams"]
