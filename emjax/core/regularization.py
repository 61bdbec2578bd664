r"""One spelling of regularisation for every model: ``pseudo_count``.

Every model's prior has one strength, ``pseudo_count = c`` (in observations): Dirichlet(1 + c) on
mixture weights, transition rows and categorical probabilities, Beta(1 + c, 1 + c), Gamma(1 + c, c),
and the Gaussian's Wishart prior of strength ``c``. ``pseudo_count=0`` is maximum likelihood: no
prior (for Gaussians, scikit-learn's and hmmlearn's ``reg_covar`` added to covariance diagonals in
the data's units). The older spellings ``regularization="prior"`` (the default strength) and
``regularization="sklearn"`` / ``"none"`` (maximum likelihood) still work and warn.

Examples:
    >>> import warnings
    >>> from emjax.core.regularization import resolve_pseudo_count
    >>> resolve_pseudo_count(None, 0.5, default=1e-3, model="GaussianMixture")
    0.5
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     resolve_pseudo_count("sklearn", 1e-3, default=1e-3, model="GaussianMixture")
    0.0
    >>> caught[0].category.__name__
    'DeprecationWarning'
"""
from __future__ import annotations

import warnings

from .validation import check_nonnegative_number

#: Old ``regularization`` values meaning maximum likelihood (pseudo_count=0).
MAXIMUM_LIKELIHOOD = ("none", "sklearn")


def resolve_pseudo_count(regularization, pseudo_count, *, default: float, model: str,
                         old_values: tuple = ("prior",) + MAXIMUM_LIKELIHOOD) -> float:
    """The ``pseudo_count`` a model runs with, from its ``pseudo_count`` and a deprecated
    ``regularization`` (``None`` when not given).

    ``regularization="prior"`` keeps ``pseudo_count``; ``"none"``/``"sklearn"`` give 0 (and refuse
    a ``pseudo_count`` other than ``default`` beside them, since the two would disagree). Either
    warns (DeprecationWarning) with the new spelling; a value outside ``old_values`` is a
    ValueError naming them.
    """
    check_nonnegative_number(pseudo_count, "pseudo_count")
    if regularization is None:
        return float(pseudo_count)
    if regularization not in old_values:
        raise ValueError(f"regularization must be one of {old_values} (deprecated: write "
                         f"pseudo_count=...); got {regularization!r}.")
    if regularization == "prior":
        new = "pseudo_count=<strength> (the default is the old 'prior')"
        value = float(pseudo_count)
    else:
        if pseudo_count != default:
            raise ValueError(f"{model}: regularization={regularization!r} means pseudo_count=0; "
                             f"got pseudo_count={pseudo_count!r} beside it. Pass only pseudo_count.")
        new = "pseudo_count=0 (maximum likelihood)"
        value = 0.0
    warnings.warn(f"{model}(regularization={regularization!r}) is deprecated; write {new}.",
                  DeprecationWarning, stacklevel=4)
    return value
