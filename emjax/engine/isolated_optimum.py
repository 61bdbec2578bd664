r"""A warning when the best restart's objective stands alone.

Many restarts that converge to one optimum agree on its objective to within the tolerance. A
winner that no other restart came near, above all the others by more than their own spread, is
often a spurious optimum (a component fitted to a few rows or to the lattice of rounded values)
that one start happened to find; :func:`emjax.fit` then warns with
:class:`IsolatedOptimumWarning`. With :math:`f_1 \ge f_2 \ge \dots` the healthy restarts' mean
per-row objectives, the winner is isolated when at least :data:`MIN_OTHERS` other restarts are
healthy,

.. math::
    f_1 - f_2 > a = \max(10\,\mathrm{tol},\ 10^{-6}(1 + |f_1|)) \quad\text{and}\quad
    f_1 - f_2 > \operatorname{IQR}(f_2, f_3, \dots).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core.status import Status

#: Healthy restarts besides the winner needed before a winner can be called isolated.
MIN_OTHERS = 3


class IsolatedOptimumWarning(UserWarning):
    """The best restart's objective is far from every other restart's (see the module).

    Examples:
        >>> import emjax
        >>> from emjax.engine.isolated_optimum import isolated_margin
        >>> ok = [emjax.Status.CONVERGED] * 5
        >>> isolated_margin([-1.0, -1.2, -1.21, -1.2, -1.19], ok, tol=1e-3)  # one stands alone
        0.19
        >>> isolated_margin([-1.0, -1.0004, -1.2, -1.2, -1.19], ok, tol=1e-3) is None  # agreed
        True
        >>> # to silence it: warnings.simplefilter("ignore", emjax.IsolatedOptimumWarning)
    """


def isolated_margin(objectives, statuses, tol: float) -> float | None:
    """The winner's margin over the runner-up when the winner is isolated, else None
    (host-side; ``objectives`` and ``statuses`` per restart)."""
    objectives, statuses = np.asarray(objectives, np.float64), np.asarray(statuses)
    healthy = np.isin(statuses, [Status.CONVERGED, Status.MAX_ITER]) & np.isfinite(objectives)
    ranked = np.sort(objectives[healthy])[::-1]
    if ranked.size < MIN_OTHERS + 1:
        return None
    best, others = ranked[0], ranked[1:]
    margin = best - others[0]
    agree = max(10 * float(tol), 1e-6 * (1 + abs(best)))
    spread = np.subtract(*np.percentile(others, [75, 25]))
    return float(margin) if margin > agree and margin > spread else None


def warn_if_isolated(result, tol: float, stacklevel: int = 3) -> None:
    """Warns with :class:`IsolatedOptimumWarning` when ``result`` (a :class:`emjax.FitResult`)
    won by an isolated restart."""
    margin = isolated_margin(result.restarts.objective, result.restarts.status, tol)
    if margin is not None:
        warnings.warn(f"the best restart's objective ({float(result.objective):.6g} per row) is "
                      f"{margin:.3g} above every other restart's, and no other restart came near "
                      "it: it may be a spurious optimum (a component fitted to a few rows or to "
                      "rounded values). Inspect result.restarts and the winner's components.",
                      IsolatedOptimumWarning, stacklevel=stacklevel)
