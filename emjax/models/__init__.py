"""Latent-variable models: pure functions under the contract of :mod:`emjax.core.model`."""
from .bayesian_gaussian_mixture import BayesianGaussianMixture, VBGMMParams
from .bayesian_network.model import BayesianNetwork, BNParams
from .discrete_mixtures import (
    BernoulliMixture, BernoulliMixtureParams, CategoricalMixture, CategoricalMixtureParams,
    MultinomialMixture, MultinomialMixtureParams, PoissonMixture, PoissonMixtureParams,
)
from .enumerated import EnumeratedMixture
from .mixture import Mixture, MixtureParams
from .gaussian_mixture import GaussianMixture, GMMParams
from .hmm.model import (
    HMM, BernoulliHMM, CategoricalHMM, GaussianHMM, HMMParams, PoissonHMM, Sequences,
)
from .plsa.model import PLSA, PLSAParams

__all__ = [
    "BNParams", "BayesianGaussianMixture", "BayesianNetwork", "BernoulliEmissionParams",
    "BernoulliHMM", "BernoulliMixture", "BernoulliMixtureParams", "CategoricalEmissionParams",
    "CategoricalHMM", "CategoricalMixture", "CategoricalMixtureParams", "EnumeratedMixture",
    "GMMParams", "GaussianHMM", "GaussianMixture", "HMM", "HMMParams", "Mixture", "MixtureParams",
    "MultinomialMixture", "MultinomialMixtureParams", "PLSA", "PLSAParams", "PoissonEmissionParams",
    "PoissonHMM", "PoissonMixture", "PoissonMixtureParams", "Sequences", "VBGMMParams",
]
