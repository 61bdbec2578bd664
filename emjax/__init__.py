"""emjax: batched Expectation-Maximization on JAX.

Every restart of every fit is one ``vmap``-ed ``lax.while_loop``; models are pure functions that
return additive sufficient statistics (see :mod:`emjax.model`).
"""
from . import datasets, plotting
from .criteria import aic, bic
from .driver import ConvergenceWarning, EMResult, FitError, em
from .fit import FitResult, fit, init_restarts, timed_fit
from .gem import gem_ascent, gem_m_step
from .model import Model
from .models import EnumeratedMixture, GaussianMixture, GMMParams
from .status import Status

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning", "EMResult", "EnumeratedMixture", "FitError", "FitResult", "GMMParams",
    "GaussianMixture", "Model", "Status", "aic", "bic", "em", "fit", "gem_ascent", "gem_m_step",
    "init_restarts", "timed_fit",
]
