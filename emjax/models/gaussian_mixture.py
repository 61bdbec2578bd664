r"""Gaussian mixture model.

.. math::
    p(x \mid \theta) = \sum_{k=1}^K \pi_k \, \mathcal N(x \mid m_k, \Sigma_k)

The fit runs on standardised data (centred, and scaled to unit variance per feature; one common
scale for ``spherical``) and maps the parameters back, so float32 copes with offsets of 1e6 and
scales from 1e-8 to 1e8.

It is the generic mixture (:class:`~emjax.models.mixture.EmissionMixture`: ``log_prob``,
``posterior``, ``predict``, degeneracy, parameter counts) over a
:class:`~emjax.components.emissions_gaussian.GaussianEmission` of its fields (densities,
statistics, the MAP update, the Wishart prior, draws: ``sample``). Its own: the E-step's other forms
(:mod:`emjax.models.gaussian_mixture_estep`), missing values, the weights' update (below), a start
from all rows (four ``init_params``), a standardiser and SQUAREM's coordinates.

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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..components import PSEUDO_COUNT, seeding
from ..components import gaussian as g
from ..components import gaussian_missing as gm
from ..components.emissions_gaussian import GaussianEmission
from ..core.chunking import choose_chunk_size, chunked_sum
from ..core.plan import Formulation
from ..core.regularization import resolve_pseudo_count
from ..core.validation import check_positive_int, checked_post_fit_data
from . import gaussian_mixture_estep as estep
from .gaussian_mixture_checks import check_enough_observed, check_params, check_rows
from .gaussian_standardizer import GaussianStandardizer
from .mixture import EmissionMixture

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
class GaussianMixture(EmissionMixture):
    """A mixture of ``n_components`` Gaussians: the generic mixture over ``emission_model``, a
    :class:`~emjax.components.emissions_gaussian.GaussianEmission` (module docstring), whose
    ``log_prob``, ``posterior``, ``predict``, ``sample`` and ``n_free_parameters`` it inherits.

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
    params_type = GMMParams

    def __post_init__(self):
        pseudo_count = resolve_pseudo_count(self.regularization, self.pseudo_count, default=PSEUDO_COUNT,
                                            model="GaussianMixture", old_values=OLD_REGULARIZATIONS)
        object.__setattr__(self, "pseudo_count", pseudo_count)
        object.__setattr__(self, "regularization", None)
        check_positive_int(self.n_components, "n_components")
        for name, allowed in (("covariance_type", g.COVARIANCE_TYPES),
                              ("init_params", INIT_METHODS), ("missing", MISSING)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}.")
        super().__post_init__()  # the emission checks reg_covar and collapse_guard

    @property
    def emission_model(self) -> GaussianEmission:
        """The components: a :class:`~emjax.components.emissions_gaussian.GaussianEmission` of
        this model's settings (its own start, the HMM's, is not used: :meth:`init`)."""
        return GaussianEmission(self.covariance_type, self.reg_covar, self.pseudo_count,
                                collapse_guard=self.collapse_guard, formulation=self.formulation)

    @property
    def has_prior(self) -> bool:
        """MAP-EM (``pseudo_count > 0``) rather than maximum likelihood."""
        return self.pseudo_count > 0

    @property
    def guards_collapse(self) -> bool:
        """Whether the M-step applies the collapse guard (``collapse_guard``, resolved)."""
        return self.emission_model.guards_collapse

    # ----------------------------------------------------------------- densities and inference
    def component_log_density(self, params: GMMParams, x):
        """The emission's log-densities ``(k, n)``; with ``missing="marginalize"``, those of each
        row's observed coordinates where ``x`` has a NaN (:mod:`emjax.components.gaussian_missing`)."""
        if self.missing == "marginalize":
            marginal = lambda p, rows: gm.marginal_log_density(rows, p.means, p.covariances, self.covariance_type)
            return jax.lax.cond(jnp.any(jnp.isnan(x)), marginal, super().component_log_density, params, x)
        return super().component_log_density(params, x)

    def impute(self, params: GMMParams, x):
        """``x`` with each NaN replaced by its conditional mean given the row's observed values
        (:func:`emjax.components.gaussian_missing.impute`). Works whatever ``missing`` is set to."""
        x = checked_post_fit_data(self, params, x, validate=lambda data: check_rows(data, allow_nan=True))
        return gm.impute(jnp.asarray(x, params.means.dtype), *params, self.covariance_type)

    # ----------------------------------------------------------------- EM contract
    def e_step(self, params: GMMParams, x, weights):
        """Statistics ``(N, s, S)`` and the weighted log-likelihood: the exact, expanded or
        missing-data form (:mod:`emjax.models.gaussian_mixture_estep`)."""
        return estep.e_step(self, params, x, weights)

    def m_step(self, stats, params: GMMParams, active=None) -> GMMParams:
        """The weights (module docstring; a collapsed component gets 0) and the emission's
        ``update`` (only ``params.means``, the statistics' reference point, is read). ``active``
        (optional ``(k,)`` bool) marks the components that exist; the others are padding
        (:mod:`emjax.selection.padded_mixture`): they keep weight 0, means and covariances, and
        the prior and the weights' normaliser count active components only."""
        counts = stats[0]
        present = jnp.ones_like(counts) if active is None else active.astype(counts.dtype)
        floor = 0.0 if self.has_prior else 10 * jnp.finfo(counts.dtype).eps  # scikit-learn's
        update = self.emission_model.update(stats, self.unpack(params)[1], present=active, count_floor=floor)
        if self.has_prior:
            c = self.pseudo_count
            weights = (counts + c * present) / (jnp.sum(counts) + c * jnp.sum(present))
        else:
            weights = (counts + floor * present) / jnp.sum(counts + floor * present)
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
        weights, emission = self.unpack(params)
        if not self.has_prior:
            return jnp.zeros((), weights.dtype)
        present = jnp.ones(weights.shape, bool) if active is None else active
        dirichlet = self.pseudo_count * jnp.sum(jnp.where(present, jnp.log(weights), 0))
        return dirichlet + self.emission_model.log_prior(emission, active)

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
        start = GMMParams(None, ref, None)

        def stats(data, w):
            rows, row_index = data
            rows = to_fit_units(rows)
            return self.emission_model.stats(self.unpack(start)[1], rows, responsibilities(rows, row_index) * w)

        chunk = choose_chunk_size(n, self.exact_work_per_row(x))
        summed = chunked_sum(stats, (x, jnp.arange(n)), weights, chunk)
        return self.m_step(summed, start)

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

    def validate_params(self, params, data):
        if not isinstance(params, tuple) or len(params) != 3:
            raise TypeError(f"params must be GMMParams(weights, means, covariances); got {type(params).__name__}.")
        check_params(GMMParams(*params), self.n_components, data.shape[1], self.covariance_type)

    def init_ignores_padding(self, n_rows: int) -> bool:
        return seeding.draws_ignore_padding(self.init_params, n_rows)

    def work_per_row(self, data) -> int:
        """Temporary values per row of a chunk (:func:`emjax.models.gaussian_mixture_estep.work_per_row`)."""
        return estep.work_per_row(self, data)

    def with_formulation(self, formulation: Formulation) -> "GaussianMixture":
        return dataclasses.replace(self, formulation=formulation)

    def exact_work_per_row(self, data) -> int:
        """Temporary values per row of the exact E-step's chunks (and of :meth:`init`'s)."""
        return estep.exact_work_per_row(self, data)
