"""emjax: batched Expectation-Maximization on JAX.

Every restart of every fit is one ``vmap``-ed ``lax.while_loop``; models are pure functions that
return additive sufficient statistics (see :mod:`emjax.model`).
"""
from . import datasets, inference, plotting
from .accelerate import ACCELERATORS
from .corpus import Corpus
from .compile_cache import enable_default_cache
from .criteria import aic, bic
from .driver import ConvergenceWarning, EMResult, FitError, em
from .isolated_optimum import IsolatedOptimumWarning
from .fit import FitResult, fit, init_restarts, make_plan, timed_fit
from .gem import gem_ascent, gem_m_step
from .model import Model
from .models import (
    HMM, PLSA, BayesianGaussianMixture, BayesianNetwork, BernoulliEmissionParams, BernoulliHMM,
    BernoulliMixture, BernoulliMixtureParams, BNParams, CategoricalEmissionParams, CategoricalHMM,
    CategoricalMixture, CategoricalMixtureParams, EnumeratedMixture, GaussianEmissionParams, GaussianHMM,
    GaussianMixture, GMMParams, HMMParams, MultinomialMixture, MultinomialMixtureParams, PLSAParams,
    PoissonEmissionParams, PoissonHMM, PoissonMixture, PoissonMixtureParams, Sequences, VBGMMParams,
)
from .online import OnlineEM, OnlineState
from .plan import Formulation, Plan
from .select import SelectResult, select
from .sharding import shard
from .status import Status
from .streaming import PassReport, print_progress, stream_fit

__version__ = "0.1.0"

__all__ = [
    "ACCELERATORS", "BNParams", "BayesianGaussianMixture", "BayesianNetwork",
    "BernoulliEmissionParams", "BernoulliHMM", "BernoulliMixture", "BernoulliMixtureParams",
    "CategoricalEmissionParams", "CategoricalHMM", "CategoricalMixture",
    "CategoricalMixtureParams", "ConvergenceWarning", "Corpus", "EMResult", "EnumeratedMixture",
    "FitError", "FitResult", "Formulation", "IsolatedOptimumWarning", "GMMParams", "GaussianEmissionParams", "GaussianHMM",
    "GaussianMixture", "HMM", "HMMParams", "Model", "MultinomialMixture",
    "MultinomialMixtureParams", "OnlineEM", "OnlineState", "PLSA", "Plan", "PLSAParams", "PassReport",
    "PoissonEmissionParams", "PoissonHMM", "PoissonMixture", "PoissonMixtureParams",
    "SelectResult", "Sequences", "Status", "VBGMMParams", "aic", "bic", "em", "fit",
    "gem_ascent", "gem_m_step", "inference", "init_restarts", "make_plan", "print_progress", "select",
    "shard", "stream_fit", "timed_fit",
]

# JAX's persistent compilation cache in a per-user directory, unless the user configured one or
# set EMJAX_NO_COMPILATION_CACHE=1 (emjax.compile_cache)
enable_default_cache()
