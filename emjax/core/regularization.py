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
                         old_values: tuple = ("prior",) + MAXIMUM_LIKELIHOOD,
                         prior_strength: float | None = None, warn: bool = True,
                         stacklevel: int = 4) -> float:
    """The ``pseudo_count`` a model runs with, from its ``pseudo_count`` and a deprecated
    ``regularization`` (``None`` when not given).

    ``regularization="prior"`` keeps ``pseudo_count``, or gives ``prior_strength`` (default:
    ``default``) where ``pseudo_count`` was left at ``default`` (a scikit-learn shell whose own
    default is 0); ``"none"``/``"sklearn"`` give 0. A ``pseudo_count`` that says the opposite
    (0 beside "prior", > 0 other than ``default`` beside "none"/"sklearn") is a ValueError naming
    both. The old spelling warns (DeprecationWarning, unless ``warn`` is False) with the new one;
    a value outside ``old_values`` is a ValueError naming them.
    """
    if isinstance(pseudo_count, bool):
        raise ValueError(f"pseudo_count must be a finite number >= 0; got {pseudo_count!r}.")
    check_nonnegative_number(pseudo_count, "pseudo_count")
    if regularization is None:
        return float(pseudo_count)
    if regularization not in old_values:
        raise ValueError(f"regularization must be one of {old_values} (deprecated: write "
                         f"pseudo_count=...); got {regularization!r}.")
    if regularization == "prior":
        strength = default if prior_strength is None else prior_strength
        value = float(strength if pseudo_count == default else pseudo_count)
        new = f"pseudo_count={value!r}"
        conflict = value == 0
    else:
        new = "pseudo_count=0 (maximum likelihood)"
        value = 0.0
        conflict = pseudo_count not in (default, 0)
    if conflict:
        raise ValueError(f"{model}: regularization={regularization!r} and pseudo_count={pseudo_count!r} "
                         "disagree (regularization='prior' means pseudo_count > 0, 'none'/'sklearn' "
                         "pseudo_count=0). Pass only pseudo_count.")
    if warn:
        warnings.warn(f"{model}(regularization={regularization!r}) is deprecated; write {new}.",
                      DeprecationWarning, stacklevel=stacklevel)
    return value
