"""Per-restart outcome codes of the EM driver."""
from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """How one EM restart ended.

    ``CONVERGED`` and ``MAX_ITER`` are healthy: their parameters are usable. The others mark a
    restart that stopped because something went wrong; the parameters it returns are the best
    healthy ones it saw before the failure, but it is never chosen as the best restart.

    Examples:
        >>> import emjax
        >>> emjax.Status(1).name, int(emjax.Status.DEGENERATE)
        ('CONVERGED', 5)
        >>> [s.name for s in emjax.Status if s not in (emjax.Status.RUNNING,)]
        ['CONVERGED', 'MAX_ITER', 'NONFINITE', 'DECREASED', 'DEGENERATE']
    """

    RUNNING = 0
    CONVERGED = 1
    MAX_ITER = 2
    NONFINITE = 3
    DECREASED = 4
    DEGENERATE = 5

    def __str__(self) -> str:  # print(Status(1)) and f"{status}" show CONVERGED, not 1
        return self.name

    def __format__(self, spec: str) -> str:
        return self.name if not spec else format(int(self), spec)

    @property
    def healthy(self) -> bool:
        return self in (Status.CONVERGED, Status.MAX_ITER)

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Status.RUNNING: "still running (the loop was cut short)",
    Status.CONVERGED: "converged: the objective changed by less than tol",
    Status.MAX_ITER: "stopped at max_iter before the objective changed by less than tol",
    Status.NONFINITE: ("the objective or the parameters became NaN or infinite, or are not "
                       "representable in the data's dtype and units (e.g. float32 variances of data "
                       "beyond about 1e19 or below 1e-19: fit in float64 or rescale the data)"),
    Status.DECREASED: "the objective decreased by more than rounding error (EM never lowers it)",
    Status.DEGENERATE: "a component collapsed (zero weight or a covariance that is not positive definite)",
}


def describe(statuses) -> str:
    """Counts of each status in an array of status codes, e.g. ``'3 CONVERGED, 1 NONFINITE'``."""
    import numpy as np

    codes, counts = np.unique(np.asarray(statuses).ravel(), return_counts=True)
    return ", ".join(f"{int(n)} {Status(int(c)).name}" for c, n in zip(codes, counts))
