"""Latent-variable models: pure functions under the contract of :mod:`emjax.model`."""
from .gaussian_mixture import GaussianMixture, GMMParams
from .hmm import HMM, BernoulliHMM, CategoricalHMM, GaussianHMM, HMMParams, PoissonHMM, Sequences
from .hmm_discrete_emissions import (BernoulliEmissionParams, CategoricalEmissionParams,
                                     PoissonEmissionParams)
from .hmm_emissions import GaussianEmissionParams

__all__ = ["BernoulliEmissionParams", "BernoulliHMM", "CategoricalEmissionParams", "CategoricalHMM",
           "GMMParams", "GaussianEmissionParams", "GaussianHMM", "GaussianMixture", "HMM", "HMMParams",
           "PoissonEmissionParams", "PoissonHMM", "Sequences"]
