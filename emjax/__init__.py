"""emjax: batched Expectation-Maximization on JAX.

Every restart of every fit is one ``vmap``-ed ``lax.while_loop``; models are pure functions that
return additive sufficient statistics (see :mod:`emjax.model`).
"""
from . import datasets, inference, plotting
from .criteria import aic, bic
from .driver import ConvergenceWarning, EMResult, FitError, em
from .fit import FitResult, fit, init_restarts, timed_fit
from .model import Model
from .models import (HMM, BernoulliEmissionParams, BernoulliHMM, CategoricalEmissionParams,
                     CategoricalHMM, GaussianEmissionParams, GaussianHMM, GaussianMixture, GMMParams,
                     HMMParams, PoissonEmissionParams, PoissonHMM, Sequences)
from .status import Status

__version__ = "0.1.0"

__all__ = [
    "BernoulliEmissionParams", "BernoulliHMM", "CategoricalEmissionParams", "CategoricalHMM",
    "ConvergenceWarning", "EMResult", "FitError", "FitResult", "GMMParams", "GaussianEmissionParams",
    "GaussianHMM", "GaussianMixture", "HMM", "HMMParams", "Model", "PoissonEmissionParams",
    "PoissonHMM", "Sequences", "Status", "aic", "bic", "em", "fit", "inference", "init_restarts",
    "timed_fit",
]
