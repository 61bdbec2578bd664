"""Latent-variable models: pure functions under the contract of :mod:`emjax.model`."""
from .bayesian_gaussian_mixture import BayesianGaussianMixture, VBGMMParams
from .bayesian_network import BayesianNetwork, BNParams
from .discrete_mixtures import (
    BernoulliMixture, BernoulliMixtureParams, CategoricalMixture, CategoricalMixtureParams,
    MultinomialMixture, MultinomialMixtureParams, PoissonMixture, PoissonMixtureParams,
)
from .gaussian_mixture import GaussianMixture, GMMParams
from .plsa import PLSA, PLSAParams

__all__ = [
    "BNParams", "BayesianGaussianMixture", "BayesianNetwork", "BernoulliMixture",
    "BernoulliMixtureParams", "CategoricalMixture", "CategoricalMixtureParams", "GMMParams",
    "GaussianMixture", "MultinomialMixture", "MultinomialMixtureParams", "PLSA", "PLSAParams",
    "PoissonMixture", "PoissonMixtureParams", "VBGMMParams",
]
