"""scikit-learn estimators over emjax's engine: host-side shells, NumPy in and out.

``from emjax.sklearn import GaussianMixture`` is a drop-in for ``sklearn.mixture.GaussianMixture``
(same constructor arguments, fitted attributes and methods; see docs/guide/sklearn.md for what
differs); ``GaussianHMM``, ``CategoricalHMM`` and ``PoissonHMM`` follow hmmlearn's API
(docs/guide/hmmlearn.md); ``PLSA`` is a transformer and ``BayesianNetwork`` takes named variables
(docs/guide/topics-and-networks.md). Needs scikit-learn (``pip install emjax[sklearn]``); ``import emjax`` does not load it.
"""
try:
    import sklearn  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("emjax.sklearn needs scikit-learn: pip install 'emjax[sklearn]'.") from error

from .bayesian_gaussian_mixture import BayesianGaussianMixture
from .gaussian_mixture import GaussianMixture
from .hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from .mixture_base import ConvergenceWarning
from .network import BayesianNetwork
from .plsa import PLSA

__all__ = ["BayesianGaussianMixture", "BayesianNetwork", "CategoricalHMM", "ConvergenceWarning",
           "GaussianHMM", "GaussianMixture", "PLSA", "PoissonHMM"]
