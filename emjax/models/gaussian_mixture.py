r"""Gaussian mixture model.

.. math::
    p(x \mid \theta) = \sum_{k=1}^K \pi_k \, \mathcal N(x \mid m_k, \Sigma_k)

The fit runs on standardised data (centred, and scaled to unit variance per feature; one common
scale for ``spherical``) and maps the parameters back, so float32 copes with offsets of 1e6 and
scales from 1e-8 to 1e8.

Regularisation, one setting ``pseudo_count = c`` (:mod:`emjax.core.regularization`):

* ``pseudo_count > 0`` (default ``PSEUDO_COUNT`` = 1e-3): MAP-EM with a proper prior in
  standardised coordinates, a symmetric Dirichlet(1 + c) on the weights and, per component, a
  Wishart prior on the precision :math:`\Lambda_k` with log density :math:`\tfrac{c}{2}\log|\Lambda_k|
  - \tfrac{\psi}{2}\operatorname{tr}\Lambda_k` (+ const), where ``psi = reg_covar``; means have a
  flat prior. The M-step is then exactly
  :math:`\pi_k = (N_k + c)/(N + Kc)`, :math:`m_k = s_k / N_k`,
  :math:`\Sigma_k = (S_k + \psi I)/(N_k + c)`, so the monitored objective
  (log-likelihood + log prior) never decreases and an empty component stays finite.
  (tied: one Wishart with ``K c``; diag: Gamma priors per precision; spherical: per component.)
  A prior this weak bounds the likelihood only far above any real fit, so with it comes the
  collapse guard (:mod:`emjax.components.collapse`): a component fitted to fewer than d + 1 rows
  or to a subspace of the data gets weight 0 and its restart ends DEGENERATE, so more restarts
  never pick such a spurious optimum (docs/guide/spurious-optima.md).
* ``pseudo_count=0``: maximum likelihood with scikit-learn's update, ``reg_covar`` added to the
  covariance diagonal in the data's own units (data are centred, not rescaled; every count gets
  scikit-learn's ``10 eps``), for parity tests. It is not a prior: the monitored objective is the
  log-likelihood alone.

The older spelling ``regularization="prior"`` / ``"sklearn"`` still works (a DeprecationWarning):
``"sklearn"`` is ``pseudo_count=0`` and gives an equal model (same hash, same compiled programs).

Missing values (``missing="marginalize"``): NaN entries are marginalised out, the exact EM for
data missing at random (:mod:`emjax.components.gaussian_missing`). Chunks without NaN take the
complete-data path (in a ``lax.cond``), so data without NaN give the plain model's results to the
last bits. The standardisation moments of each feature run over the rows where it is observed, as
additive passes, so streamed fits (:func:`emjax.stream_fit`) take NaN as well.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ..core.chunking import choose_chunk_size, chunked_sum
from ..components import PSEUDO_COUNT
from ..components import gaussian as g
from ..components import gaussian_update as gu
from ..components import gaussian_expanded as ge
from ..components import gaussian_missing as gm
from ..components.covariance_types import lookup
from ..components.responsibilities import weighted_responsibilities
from ..core.model import Model
from ..core.plan import Formulation
from ..core.regularization import resolve_pseudo_count
from ..core.tree import is_traced
from ..core.validation import (
    check_enough_rows, check_key, check_positive_int, checked_post_fit_data,
)
from ..components import seeding
from .gaussian_mixture_checks import check_enough_observed, check_params, check_rows
from .gaussian_standardizer import GaussianStandardizer

INIT_METHODS = ("kmeans++", "kmeans", "random_from_data", "random")
OLD_REGULARIZATIONS = ("prior", "sklearn")  # deprecated spellings of pseudo_count
MISSING = ("error", "marginalize")


class GMMParams(NamedTuple):
    """weights ``(k,)``, means ``(k, d)``, covariances (full ``(k,d,d)``, tied ``(d,d)``,
    diag ``(k,d)``, spherical ``(k,)``), as in scikit-learn.

    Examples:
        >>> import jax, jax.numpy as jnp, emjax
        >>> params = emjax.GMMParams(weights=jnp.array([0.5, 0.5]), means=jnp.array([[0.0], [3.0]]),
        ...                          covariances=jnp.ones((2, 1)))                 # diag: (k, d)
        >>> model = emjax.GaussianMixture(2, covariance_type="diag")
        >>> model.posterior(params, jnp.array([[1.5]])).round(2).tolist()   # halfway: equal odds
        [[0.5, 0.5]]
    """

    weights: jnp.ndarray
    means: jnp.ndarray
    covariances: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class GaussianMixture(Model):
    """A mixture of ``n_components`` Gaussians.

    Args:
        n_components: number of components ``K``.
        covariance_type: "full", "tied", "diag" or "spherical".
        init_params: how ``init`` starts a restart: "kmeans++" (greedy k-means++ seeds, then one
            M-step from the nearest-seed assignment), "kmeans" (k-means++ then Lloyd steps),
            "random_from_data" (K random rows as seeds) or "random" (random responsibilities).
        reg_covar: prior strength ``psi`` (in units of the standardised data's variance) when
            ``pseudo_count > 0``; the absolute value added to covariance diagonals when it is 0.
        pseudo_count: the prior's strength ``c`` in observations (module docstring): > 0 is
            MAP-EM (monotone), 0 is maximum likelihood with scikit-learn's ``reg_covar``.
        missing: "error" (NaN in the data is refused) or "marginalize" (NaN marks a missing
            value; each row is scored on its observed coordinates and the E-step uses the
            conditional moments of the missing ones).
        collapse_guard: give a component that collapsed onto a few rows or onto a subspace of the
            data (:mod:`emjax.components.collapse`) weight 0, so its restart ends DEGENERATE and
            is never the winner. ``None`` (default): on with a prior, off with
            ``pseudo_count=0`` (whose scikit-learn numbers it then keeps exactly).
        regularization: deprecated: "prior" (keeps ``pseudo_count``) or "sklearn"
            (``pseudo_count=0``); it warns and is stored as ``pseudo_count``.

    Examples:
        >>> import jax, jax.numpy as jnp, emjax
        >>> params = emjax.GMMParams(weights=jnp.array([0.5, 0.5]), means=jnp.array([[0.0], [3.0]]),
        ...                          covariances=jnp.ones((2, 1)))                 # diag: (k, d)
        >>> model = emjax.GaussianMixture(2, covariance_type="diag")
        >>> model.predict(params, jnp.array([[0.1], [2.9]])).tolist()
        [0, 1]
        >>> x, labels = model.sample(jax.random.key(0), params, 5)
        >>> x.shape, labels.shape
        ((5, 1), (5,))
    """

    n_components: int
    covariance_type: str = "full"
    init_params: str = "kmeans++"
    reg_covar: float = 1e-6
    pseudo_count: float = PSEUDO_COUNT
    missing: str = "error"
    collapse_guard: bool | None = None
    #: deprecated spelling of ``pseudo_count``; always None once constructed
    regularization: str | None = dataclasses.field(default=None, repr=False)
    #: the engine's E-step choices (:meth:`with_formulation`; not a user setting)
    formulation: Formulation = dataclasses.field(default=Formulation(), repr=False)

    def __post_init__(self):
        pseudo_count = resolve_pseudo_count(self.regularization, self.pseudo_count, default=PSEUDO_COUNT,
                                            model="GaussianMixture", old_values=OLD_REGULARIZATIONS)
        object.__setattr__(self, "pseudo_count", pseudo_count)
        object.__setattr__(self, "regularization", None)
        k = self.n_components
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_components must be a positive integer; got {k!r}.")
        for name, allowed in (("covariance_type", g.COVARIANCE_TYPES),
                              ("init_params", INIT_METHODS), ("missing", MISSING)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}.")
        reg = self.reg_covar
        if not isinstance(reg, numbers.Real) or not np.isfinite(reg) or reg < 0:
            raise ValueError(f"reg_covar must be a finite number >= 0; got {reg!r}.")
        if self.collapse_guard not in (None, True, False):
            raise ValueError(f"collapse_guard must be None, True or False; got {self.collapse_guard!r}.")

    @property
    def has_prior(self) -> bool:
        """MAP-EM (``pseudo_count > 0``) rather than maximum likelihood."""
        return self.pseudo_count > 0

    @property
    def guards_collapse(self) -> bool:
        """Whether the M-step applies the collapse guard (``collapse_guard``, resolved)."""
        if self.collapse_guard is None:
            return self.has_prior
        return self.collapse_guard

    # ----------------------------------------------------------------- densities and inference
    def _complete_log_density(self, params: GMMParams, x):
        prec_chol = g.precision_cholesky(params.covariances, self.covariance_type)
        return g.log_density(x, params.means, prec_chol, self.covariance_type, self.formulation)

    def _marginal_log_density(self, params: GMMParams, x):
        return gm.marginal_log_density(x, params.means, params.covariances, self.covariance_type)

    def _weighted_log_density(self, params: GMMParams, x):
        if self.missing == "marginalize":
            log_density = jax.lax.cond(jnp.any(jnp.isnan(x)), self._marginal_log_density,
                                       self._complete_log_density, params, x)
        else:
            log_density = self._complete_log_density(params, x)
        return log_density + jnp.log(params.weights)[:, None]  # (k, n)

    def log_prob(self, params: GMMParams, x):
        """:math:`\\log p(x_n)`, shape ``(n,)``. Concrete ``x`` and ``params`` are checked as in
        :func:`emjax.fit` (this holds for every method that takes data)."""
        x = checked_post_fit_data(self, params, x)
        return logsumexp(self._weighted_log_density(params, x), axis=0)

    def posterior(self, params: GMMParams, x):
        """Responsibilities :math:`p(z_n = k \\mid x_n)`, shape ``(n, k)``."""
        x = checked_post_fit_data(self, params, x)
        return jax.nn.softmax(self._weighted_log_density(params, x), axis=0).T

    def predict(self, params: GMMParams, x):
        """Most probable component per row, shape ``(n,)``."""
        x = checked_post_fit_data(self, params, x)
        return jnp.argmax(self._weighted_log_density(params, x), axis=0)

    def impute(self, params: GMMParams, x):
        r"""``x`` with each NaN replaced by its conditional mean given the row's observed values,
        :math:`\mathbb E[x_m \mid x_o] = \sum_k p(k \mid x_o)\,(\mu_{k,m} + \Sigma_{k,mo}
        \Sigma_{k,oo}^{-1}(x_o - \mu_{k,o}))`; a row with nothing observed gets the mixture mean.
        Works whatever ``missing`` is set to."""
        x = checked_post_fit_data(self, params, x, validate=lambda data: check_rows(data, allow_nan=True))
        x = jnp.asarray(x, params.means.dtype)
        cov_type = self.covariance_type
        log_post = self._marginal_log_density(params, x) + jnp.log(params.weights)[:, None]
        resp = jax.nn.softmax(log_post, axis=0)
        x_hat = gm.conditional_means(x, params.means, params.covariances, cov_type)
        filled = jnp.einsum("kn,knd->nd", resp, x_hat, precision=g.EXACT)
        return jnp.where(jnp.isnan(x), filled, x)

    def sample(self, key, params: GMMParams, n: int):
        """``(x, labels)``: ``n`` draws from the mixture and the component of each."""
        if not is_traced(key, params):
            key = check_key(key)
            check_positive_int(n, "n")
            self.validate_params(params, np.empty((1, np.shape(params.means)[-1])))
        label_key, noise_key = jax.random.split(key)
        labels = jax.random.categorical(label_key, jnp.log(params.weights), shape=(n,))
        return g.sample(noise_key, params.means, params.covariances, labels, self.covariance_type), labels

    def n_free_parameters(self, params: GMMParams) -> int:
        k, d = params.means.shape
        return (k - 1) + k * d + g.n_covariance_parameters(self.covariance_type, k, d)

    # ----------------------------------------------------------------- EM contract
    def e_step(self, params: GMMParams, x, weights):
        if self.missing == "marginalize":
            return jax.lax.cond(jnp.any(jnp.isnan(x)), self._e_step_missing,
                                self._e_step_complete, params, x, weights)
        return self._e_step_complete(params, x, weights)

    def _e_step_complete(self, params: GMMParams, x, weights):
        """Exact E-step, or, for one unbatched restart (``self.formulation.unbatched``,
        :mod:`emjax.core.plan`), the expanded one for chunks where its
        rounding guard holds (:mod:`emjax.components.gaussian_expanded`; a ``lax.cond`` per
        chunk). The chunks are then sized for the expanded form (:meth:`work_per_row`), and the
        exact form goes through each in sub-chunks of its own size."""
        cov_type = self.covariance_type
        prec_chol = g.precision_cholesky(params.covariances, cov_type)
        if not (self.formulation.unbatched and self._expandable(x)):
            return self._e_step_exact(params, prec_chol, x, weights)
        n = x.shape[0]
        pieces = -(-n // choose_chunk_size(n, self.exact_work_per_row(x)))
        size, pad = -(-n // pieces), -(-n // pieces) * pieces - n  # equal sub-chunks: rows of
        # weight 0 pad the last, so the exact form is compiled once per chunk shape, not twice

        def exact(p, u, rows, w):
            rows, w = jnp.pad(rows, ((0, pad), (0, 0))), jnp.pad(w, (0, pad))
            return chunked_sum(lambda r, v: self._e_step_exact(p, u, r, v), rows, w, size)
        return jax.lax.cond(ge.expansion_is_accurate(x, params.means, prec_chol, cov_type),
                            self._e_step_expanded, exact, params, prec_chol, x, weights)

    def _expandable(self, x) -> bool:
        """Whether the expanded E-step applies (full/tied above ``SMALL_D`` features, diag,
        spherical; complete data)."""
        small = lookup(self.covariance_type).matrix and x.shape[-1] <= g.SMALL_D
        return self.missing == "error" and not small

    def _e_step_exact(self, params: GMMParams, prec_chol, x, weights):
        lp = g.log_density(x, params.means, prec_chol, self.covariance_type, self.formulation)
        resp, loglik = _responsibilities(lp, params.weights, weights)
        return g.sufficient_stats(x, resp, params.means, self.covariance_type, self.formulation), loglik

    def _e_step_expanded(self, params: GMMParams, prec_chol, x, weights):
        f = ge.features(x, self.covariance_type, ge.origin(params.means))
        lp = ge.log_density(f, ge.log_density_weights(params.means, prec_chol, self.covariance_type))
        resp, loglik = _responsibilities(lp, params.weights, weights)
        return ge.sufficient_stats(f, resp, params.means, self.covariance_type), loglik

    def _e_step_missing(self, params: GMMParams, x, weights):
        """Expected complete-data statistics; rows with nothing observed contribute nothing."""
        lp = self._marginal_log_density(params, x) + jnp.log(params.weights)[:, None]
        keep = (weights > 0) & jnp.any(gm.observed(x), axis=1)
        resp, loglik = weighted_responsibilities(lp, weights, keep)
        stats = gm.expected_sufficient_stats(x, resp, params.means, params.covariances,
                                             params.means, self.covariance_type)
        return stats, loglik

    def m_step(self, stats, params: GMMParams, active=None) -> GMMParams:
        """Closed-form update; only ``params.means`` (the statistics' reference point) is read.

        ``active`` (optional ``(k,)`` bool) marks the components that exist; the others are
        padding (see :mod:`emjax.selection.padded_mixture`): they keep weight 0, means and
        covariances, and the prior and the weights' normaliser count active components only.
        """
        counts, cov_type = stats[0], self.covariance_type
        present = jnp.ones_like(counts) if active is None else active.astype(counts.dtype)
        previous = None if active is None else params.covariances
        if not self.has_prior:  # scikit-learn adds 10 eps to every count
            floor = 10 * jnp.finfo(counts.dtype).eps
            update = gu.ml_update(stats, params.means, self.reg_covar, cov_type, count_floor=floor,
                                 present=active, previous=previous, guard=self.guards_collapse)
            weights = (counts + floor * present) / jnp.sum(counts + floor * present)
        else:
            c = self.pseudo_count
            update = gu.map_update(stats, params.means, self.reg_covar, c, cov_type,
                                  present=active, previous=previous, guard=self.guards_collapse)
            weights = (counts + c * present) / (jnp.sum(counts) + c * jnp.sum(present))
        if self.guards_collapse:
            weights = jnp.where(update.collapsed, 0, weights)
        return GMMParams(weights, update.means, update.covariances)

    def restate_stats(self, stats, params_from: GMMParams, params_to: GMMParams):
        """Second moments moved from about ``params_from.means`` to about ``params_to.means``."""
        counts, sums, second = stats
        return counts, sums, g.scatter_about_means(counts, sums, second, params_from.means,
                                                   params_to.means, self.covariance_type)

    def log_prior(self, params: GMMParams, active=None):
        """Log density of the prior (module docstring); ``active`` as in :meth:`m_step`."""
        if not self.has_prior:
            return jnp.zeros((), params.weights.dtype)
        k, d = params.means.shape
        present = jnp.ones((k,), bool) if active is None else active
        wishart = gu.log_wishart_prior(params.covariances, self.reg_covar, self.pseudo_count,
                                      self.covariance_type, k, d, active)
        return self.pseudo_count * jnp.sum(jnp.where(present, jnp.log(params.weights), 0)) + wishart

    def is_degenerate(self, params: GMMParams, active=None):
        """A covariance that is not positive definite, or an active component of weight 0."""
        prec_chol = g.precision_cholesky(params.covariances, self.covariance_type)
        empty = params.weights <= 0 if active is None else (params.weights <= 0) & active
        return ~jnp.all(jnp.isfinite(prec_chol)) | jnp.any(empty)

    def init(self, key, x, weights) -> GMMParams:
        return self.init_reading(key, x, weights, lambda rows: rows)

    def init_reading(self, key, x, weights, to_fit_units) -> GMMParams:
        """:meth:`init` on ``to_fit_units(x)``, mapping only the rows it reads (a start from the
        user's rows copies nothing; :class:`~emjax.models.gaussian_standardizer.GaussianStandardizer`)."""
        k, n = self.n_components, x.shape[0]
        if self.missing == "marginalize":  # seeds from mean-imputed rows (0 is the mean here)
            weights = jnp.where(jnp.any(gm.observed(x), axis=1), weights, 0)
            x = jnp.where(gm.observed(x), x, 0)
        ref, responsibilities = seeding.starting_responsibilities(key, x, weights, k, self.init_params,
                                                                  to_fit_units)

        def stats(data, w):
            rows, row_index = data
            rows = to_fit_units(rows)
            return g.sufficient_stats(rows, responsibilities(rows, row_index) * w, ref, self.covariance_type,
                                      self.formulation)

        chunk = choose_chunk_size(n, self.exact_work_per_row(x))
        summed = chunked_sum(stats, (x, jnp.arange(n)), weights, chunk)
        return self.m_step(summed, GMMParams(None, ref, None))

    def to_unconstrained(self, params: GMMParams) -> GMMParams:
        """Log-weights, means and :func:`~emjax.components.gaussian.log_cholesky` covariances."""
        return GMMParams(jnp.log(params.weights), params.means,
                         g.log_cholesky(params.covariances, self.covariance_type))

    def from_unconstrained(self, u: GMMParams) -> GMMParams:
        return GMMParams(jax.nn.softmax(u.weights), u.means,
                         g.covariance_from_log_cholesky(u.covariances, self.covariance_type))

    # ----------------------------------------------------------------- standardisation
    def standardizer(self) -> GaussianStandardizer:
        """Shift and scale per feature (:class:`~emjax.models.gaussian_standardizer.GaussianStandardizer`),
        computed in two passes over the rows; the fit's start reads raw rows (except with
        ``missing="marginalize"``, which imputes the standardised mean 0 and needs the copy)."""
        return GaussianStandardizer(self.covariance_type, self.has_prior, self.reg_covar,
                                    self.missing, init_reads_rows=self.missing != "marginalize")

    # ----------------------------------------------------------------- host-side checks
    def validate(self, data):
        x = self.validate_chunk(data)
        if self.missing == "marginalize":
            check_enough_observed(np.asarray(x), self.n_components)
        return x

    def validate_chunk(self, data):
        return check_rows(data, allow_nan=self.missing == "marginalize")

    def validate_weights(self, weights):
        check_enough_rows(weights, self.n_components)

    def validate_params(self, params, data):
        if not isinstance(params, tuple) or len(params) != 3:
            raise TypeError(f"params must be GMMParams(weights, means, covariances); got {type(params).__name__}.")
        check_params(GMMParams(*params), self.n_components, data.shape[1], self.covariance_type)

    def init_ignores_padding(self, n_rows: int) -> bool:
        return seeding.draws_ignore_padding(self.init_params, n_rows)

    def work_per_row(self, data) -> int:
        """Temporary values per row of a chunk: those of the expanded E-step (features, log-densities
        and responsibilities: W2 and W3 run 10-25% faster in 8,000-16,000-row chunks than in the
        exact form's 250-2,600) while it may be chosen (:meth:`_e_step_complete`), else the exact
        form's."""
        if self.formulation.unbatched and self._expandable(data):
            return ge.n_features(data.shape[1], self.covariance_type) + 2 * self.n_components
        return self.exact_work_per_row(data)

    def with_formulation(self, formulation: Formulation) -> "GaussianMixture":
        return dataclasses.replace(self, formulation=formulation)

    def exact_work_per_row(self, data) -> int:
        """Temporary values per row of the exact E-step's chunks (and of :meth:`init`'s)."""
        k, d, kind = self.n_components, data.shape[1], lookup(self.covariance_type)
        if self.missing == "marginalize":  # per (row, component) conditional moments
            return 4 * k * d * (d if kind.matrix else 1)
        if kind.matrix:
            return (2 if kind.shared else 3) * k * d + 2 * k
        # diag/spherical: the E-step reads one component's squared differences of the chunk,
        # (chunk, d), twice (log-densities, then moments); at most 2^21 / 128 = 16K values per
        # component keep them in cache on CPU (W3, d=64, k=32: 256- and 512-row chunks run at
        # one speed, 1,024 twice as slow; d=64, k=8: 512 rows 1.5x faster than 2,016; d=8,
        # k=16: 2,048 rows 1.9x faster than 7,281)
        return max(2 * k * d, 128 * d) + 2 * k


def _responsibilities(log_density, mixture_weights, weights):
    """:func:`~emjax.components.responsibilities.weighted_responsibilities` of ``log_density``
    ``(k, n)`` plus the log mixture weights."""
    return weighted_responsibilities(log_density + jnp.log(mixture_weights)[:, None], weights)

