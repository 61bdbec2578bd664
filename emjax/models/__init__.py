"""Latent-variable models: pure functions under the contract of :mod:`emjax.model`."""
from .bayesian_network import BayesianNetwork, BNParams
from .gaussian_mixture import GaussianMixture, GMMParams

__all__ = ["BNParams", "BayesianNetwork", "GMMParams", "GaussianMixture"]
