"""emjax: batched Expectation-Maximization on JAX.

Every restart of every fit is one ``vmap``-ed ``lax.while_loop``; models are pure functions that
return additive sufficient statistics (see :mod:`emjax.core.model`).
"""
from .shells import datasets as datasets, plotting as plotting  # emjax.datasets, emjax.plotting
from . import inference
from .engine.accelerate import ACCELERATORS
from .models.plsa.corpus import Corpus
from .engine.compile_cache import enable_default_cache
from .selection.criteria import aic, bic
from .engine.driver import ConvergenceWarning, EMResult, FitError, em
from .engine.isolated_optimum import IsolatedOptimumWarning
from .engine.restarts import FitResult, fit, init_restarts, make_plan, timed_fit
from .components.gem import gem_ascent, gem_m_step
from .core.model import Model
from .components.emission import Emission
from .components.emissions_counts import (
    MultinomialEmission, MultinomialEmissionParams, PoissonEmission, PoissonEmissionParams,
)
from .components.emissions_discrete import (
    BernoulliEmission, BernoulliEmissionParams, CategoricalEmission, CategoricalEmissionParams,
)
from .components.emissions_gaussian import GaussianEmission, GaussianEmissionParams
from .core.standardizer import RowStandardizer, Standardizer
from .models import (
    HMM, PLSA, BayesianGaussianMixture, BayesianNetwork, BernoulliHMM,
    BernoulliMixture, BernoulliMixtureParams, BNParams, CategoricalHMM,
    CategoricalMixture, CategoricalMixtureParams, EnumeratedMixture, GaussianHMM,
    GaussianMixture, GMMParams, HMMParams, Mixture, MixtureParams, MultinomialMixture, MultinomialMixtureParams, PLSAParams,
    PoissonHMM, PoissonMixture, PoissonMixtureParams, Sequences, VBGMMParams,
)
from .extensions.online import OnlineEM, OnlineState
from .core.plan import Formulation, Plan
from .selection.select import SelectResult, select
from .engine.sharding import shard
from .core.status import Status
from .extensions.streaming import PassReport, print_progress, stream_fit

__version__ = "0.1.0"

__all__ = [
    "ACCELERATORS", "BNParams", "BayesianGaussianMixture", "BayesianNetwork",
    "BernoulliEmission", "BernoulliEmissionParams", "BernoulliHMM", "BernoulliMixture", "BernoulliMixtureParams",
    "CategoricalEmission", "CategoricalEmissionParams", "Emission", "CategoricalHMM", "CategoricalMixture",
    "CategoricalMixtureParams", "ConvergenceWarning", "Corpus", "EMResult", "EnumeratedMixture",
    "FitError", "FitResult", "Formulation", "IsolatedOptimumWarning", "GMMParams", "GaussianEmission", "GaussianEmissionParams", "GaussianHMM",
    "GaussianMixture", "HMM", "HMMParams", "Mixture", "MixtureParams", "Model", "MultinomialMixture",
    "MultinomialMixtureParams", "OnlineEM", "OnlineState", "PLSA", "Plan", "PLSAParams", "PassReport",
    "PoissonEmission", "PoissonEmissionParams", "MultinomialEmission", "MultinomialEmissionParams", "PoissonHMM", "PoissonMixture", "PoissonMixtureParams",
    "RowStandardizer", "SelectResult", "Sequences", "Standardizer", "Status", "VBGMMParams", "aic", "bic", "em", "fit",
    "gem_ascent", "gem_m_step", "inference", "init_restarts", "make_plan", "print_progress", "select",
    "shard", "stream_fit", "timed_fit",
]

# JAX's persistent compilation cache in a per-user directory, unless the user configured one or
# set EMJAX_NO_COMPILATION_CACHE=1 (emjax.engine.compile_cache)
enable_default_cache()
