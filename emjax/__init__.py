"""emjax: batched Expectation-Maximization on JAX.

Every restart of every fit is one ``vmap``-ed ``lax.while_loop``; models are pure functions that
return additive sufficient statistics (see :mod:`emjax.model`).
"""
from . import datasets, plotting
from .accelerate import ACCELERATORS
from .corpus import Corpus
from .criteria import aic, bic
from .driver import ConvergenceWarning, EMResult, FitError, em
from .fit import FitResult, fit, init_restarts, timed_fit
from .model import Model
from .models import (
    PLSA, BayesianGaussianMixture, BayesianNetwork, BernoulliMixture, BernoulliMixtureParams,
    BNParams, CategoricalMixture, CategoricalMixtureParams, GaussianMixture, GMMParams,
    MultinomialMixture, MultinomialMixtureParams, PLSAParams, PoissonMixture, PoissonMixtureParams,
    VBGMMParams,
)
from .online import OnlineEM, OnlineState
from .select import SelectResult, select
from .sharding import shard
from .status import Status
from .streaming import PassReport, print_progress, stream_fit

__version__ = "0.1.0"

__all__ = [
    "ACCELERATORS", "BNParams", "BayesianGaussianMixture", "BayesianNetwork",
    "BernoulliMixture", "BernoulliMixtureParams", "CategoricalMixture",
    "CategoricalMixtureParams", "ConvergenceWarning", "Corpus", "EMResult", "FitError",
    "FitResult", "GMMParams", "GaussianMixture", "Model", "MultinomialMixture",
    "MultinomialMixtureParams", "OnlineEM", "OnlineState", "PLSA", "PLSAParams", "PassReport",
    "PoissonMixture", "PoissonMixtureParams", "SelectResult", "Status", "VBGMMParams", "aic",
    "bic", "em", "fit", "init_restarts", "print_progress", "select", "shard", "stream_fit",
    "timed_fit",
]
