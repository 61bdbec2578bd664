"""Latent-variable models: pure functions under the contract of :mod:`emjax.model`."""
from .gaussian_mixture import GaussianMixture, GMMParams
from .hmm import HMM, GaussianHMM, HMMParams, Sequences
from .hmm_emissions import GaussianEmissionParams

__all__ = ["GMMParams", "GaussianEmissionParams", "GaussianHMM", "GaussianMixture", "HMM",
           "HMMParams", "Sequences"]
