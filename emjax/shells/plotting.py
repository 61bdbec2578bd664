"""Host-side matplotlib figures of fitted mixtures and of their restarts.

matplotlib is optional (``pip install emjax[plot]``) and imported on first use; without a display
the non-interactive Agg backend is chosen, so figures can always be saved to files.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..components.covariance_types import lookup
from ..engine.restarts import healthy

SIGMAS = (1.0, 2.0)


def pyplot():
    """``matplotlib.pyplot``, with the Agg backend when no display is available."""
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("emjax.plotting needs matplotlib: pip install emjax[plot]") from err
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if (headless and sys.platform.startswith("linux") and "MPLBACKEND" not in os.environ
            and "matplotlib.pyplot" not in sys.modules):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def full_covariances(covariances, covariance_type: str, k: int, d: int) -> np.ndarray:
    """Any of the four covariance shapes as ``(k, d, d)`` matrices.

    Examples:
        >>> import numpy as np
        >>> from emjax.shells.plotting import full_covariances
        >>> full_covariances(np.array([1.0, 4.0]), "spherical", 2, 2)[1].tolist()
        [[4.0, 0.0], [0.0, 4.0]]
    """
    kind, cov = lookup(covariance_type), np.asarray(covariances, dtype=np.float64)
    if kind.matrix:  # full as they are, tied repeated for every component
        return np.broadcast_to(cov, (k, d, d))
    return kind.per_feature(cov)[:, :, None] * np.eye(d)


def plot_fit(ax, model, params, X, *, max_points: int = 20_000, seed: int = 0):
    """Data coloured by most probable component, and 1- and 2-sigma ellipses of each component.

    Data with more than two features are shown in their first two, with the components'
    marginal ellipses there. At most ``max_points`` rows (a random subset) are drawn.

    Args:
        ax: a matplotlib ``Axes``.
        model: a fitted model's configuration (a :class:`~emjax.GaussianMixture`).
        params: its ``GMMParams``.
        X: ``(n, d)`` data, ``d >= 2``.
    """
    from matplotlib.patches import Ellipse

    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] < 2:
        raise ValueError(f"plot_fit needs (n, d) data with d >= 2; got shape {X.shape}.")
    if X.shape[0] > max_points:
        X = X[np.random.default_rng(seed).choice(X.shape[0], max_points, replace=False)]
    weights, means = np.asarray(params.weights), np.asarray(params.means)
    k, d = means.shape
    cov = full_covariances(params.covariances, model.covariance_type, k, d)[:, :2, :2]
    labels = np.asarray(model.predict(params, X))
    colors = [f"C{i % 10}" for i in range(k)]
    small = len(X) < 2000
    ax.scatter(X[:, 0], X[:, 1], c=[colors[i] for i in labels], s=8 if small else 2,
               alpha=0.7 if small else 0.4, linewidths=0, rasterized=True)
    for i in range(k):
        variances, vectors = np.linalg.eigh(cov[i])
        angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
        for sigma, style in zip(SIGMAS, ("-", "--")):
            width, height = 2 * sigma * np.sqrt(np.maximum(variances[::-1], 0))
            ax.add_patch(Ellipse(means[i, :2], width, height, angle=angle, fill=False,
                                 edgecolor="k", linestyle=style, linewidth=1.2))
        ax.plot(*means[i, :2], marker="x", color="k", markersize=6)
        ax.annotate(f"{weights[i]:.2f}", means[i, :2], textcoords="offset points", xytext=(5, 5),
                    fontsize=8)
    ax.set_xlabel("feature 0")
    ax.set_ylabel("feature 1")
    return ax


def plot_restart_objectives(ax, restarts, bins: int = 50):
    """Histogram (log counts) of the final objective of every healthy restart, best marked.

    Args:
        ax: a matplotlib ``Axes``.
        restarts: ``FitResult.restarts`` (fields with a leading ``(n_init,)`` axis).
    """
    objective = np.asarray(restarts.objective, dtype=np.float64)
    status = np.asarray(restarts.status)
    ok = healthy(status) & np.isfinite(objective)
    if not ok.any():
        raise ValueError("no healthy restart to plot: every restart failed.")
    values, best = objective[ok], objective[ok].max()
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.hist(values, bins=bins, log=True, color="C0", alpha=0.8)
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.axvline(best, color="C3", linewidth=1.5, label=f"best {best:.4f}")
    failed = int((~ok).sum())
    ax.set_title(f"{ok.sum()} healthy restarts" + (f" ({failed} failed)" if failed else ""),
                 fontsize=10)
    ax.set_xlabel("final objective per sample")
    ax.set_ylabel("restarts")
    ax.legend(loc="upper left", fontsize=8)
    return ax
