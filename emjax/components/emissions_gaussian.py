"""Gaussian emissions (:class:`~emjax.components.emission.Emission`): the densities, statistics
and updates of :mod:`emjax.components.gaussian` for any model that composes an emission (an HMM's
states, :class:`emjax.Mixture`'s components), with the step-major forms the scaled HMM E-step reads.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core.plan import Formulation
from ..core.row_sums import row_sums
from ..core.validation import as_float_array, check_finite, check_nonnegative_number, feature_mismatch
from . import PSEUDO_COUNT, seeding
from . import gaussian as g
from . import gaussian_update as gu
from .covariance_types import FULL, lookup
from .emission import Emission, component_major

#: Steps a restart's start is computed from (a weighted sample without replacement).
INIT_SAMPLE = 4096


class GaussianEmissionParams(NamedTuple):
    """means ``(k, d)`` and covariances in scikit-learn's shapes (full ``(k, d, d)``, tied
    ``(d, d)``, diag ``(k, d)``, spherical ``(k,)``).

    Examples:
        >>> import jax, jax.numpy as jnp, emjax
        >>> truth = emjax.HMMParams(
        ...     initial=jnp.array([0.5, 0.5]), transitions=jnp.array([[0.95, 0.05], [0.05, 0.95]]),
        ...     emission=emjax.GaussianEmissionParams(means=jnp.array([[-2.0], [2.0]]),
        ...                                           covariances=jnp.full((2, 1), 0.25)))
        >>> model = emjax.GaussianHMM(2, covariance_type="diag")
        >>> x, states = model.sample(jax.random.key(0), truth, n_steps=200, n_sequences=3)
        >>> model.log_prob(truth, x).shape                     # log p(sequence), one per sequence
        (3,)
    """

    means: jnp.ndarray
    covariances: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class GaussianEmission(Emission):
    """Gaussian emissions sharing :mod:`emjax.components.gaussian` with the mixture models.

    ``pseudo_count = c > 0``: the mixture's Wishart prior of strength ``c`` in standardised
    coordinates (:func:`emjax.components.gaussian_update.map_update`); ``c = 0``: maximum likelihood
    with ``reg_covar`` added to covariance diagonals in the data's units (hmmlearn's update with
    ``covars_prior=reg_covar``, ``covars_weight=1``; for parity tests). ``collapse_guard`` (``None``:
    on when ``c > 0``): a component whose rows collapsed onto a few points or a subspace
    (:mod:`emjax.components.collapse`) gets a zero covariance, so its restart ends DEGENERATE.
    ``init_params``: "kmeans++" or "random_from_data" seeds.

    Examples:
        >>> import jax, jax.numpy as jnp, emjax
        >>> model = emjax.HMM(2, emission=emjax.GaussianEmission(covariance_type="diag"))
        >>> x = jnp.concatenate([jnp.zeros((50, 1)), 4 + jnp.zeros((50, 1))]) + jax.random.normal(jax.random.key(0), (100, 1))
        >>> res = emjax.fit(model, x, jax.random.key(1), n_init=2)
        >>> sorted(round(float(m)) for m in res.params.emission.means[:, 0])
        [0, 4]
    """

    covariance_type: str = "full"
    reg_covar: float = 1e-6
    pseudo_count: float = PSEUDO_COUNT
    init_params: str = "kmeans++"
    collapse_guard: bool | None = None
    formulation: Formulation = dataclasses.field(default=Formulation(), repr=False)  # engine's choices
    params_type = GaussianEmissionParams

    def __post_init__(self):
        lookup(self.covariance_type)
        check_nonnegative_number(self.reg_covar, "reg_covar")
        check_nonnegative_number(self.pseudo_count, "pseudo_count")
        if self.init_params not in ("kmeans++", "random_from_data"):
            raise ValueError("init_params must be 'kmeans++' or 'random_from_data'; got "
                             f"{self.init_params!r}.")
        if self.collapse_guard not in (None, True, False):
            raise ValueError(f"collapse_guard must be None, True or False; got {self.collapse_guard!r}.")

    def with_formulation(self, formulation: Formulation) -> "GaussianEmission":
        return dataclasses.replace(self, formulation=formulation)

    def log_density(self, params: GaussianEmissionParams, x):
        """``(k, n)`` log-densities."""
        prec_chol = g.precision_cholesky(params.covariances, self.covariance_type)
        return g.log_density(x, params.means, prec_chol, self.covariance_type, self.formulation)

    def log_density_steps(self, params: GaussianEmissionParams, x):
        r"""``(n, k)`` log-densities, step-major (the batched forward-backward's layout).

        Full covariances: :math:`y_{nk} = x_n U_k - m_k U_k` for all ``k`` in one ``(n, d) @
        (d, d k)`` product whose columns run over the output feature, then the state, and
        :math:`\log b = -\tfrac12 (d \log 2\pi + |y|^2) + \log|U_k|`: the sum over features
        adds ``d`` slices ``(n, k)`` (several times faster on CPU than the component-major einsum
        or a reduction over a minor axis of ``d`` entries).
        """
        if lookup(self.covariance_type) is not FULL:
            return self.log_density(params, x).T
        k, d = params.means.shape
        prec_chol = g.precision_cholesky(params.covariances, FULL)  # (k, d in, d out)
        y = jnp.matmul(x, jnp.transpose(prec_chol, (1, 2, 0)).reshape(d, d * k), precision=g.EXACT)
        y = y.reshape(-1, d, k) - jnp.einsum("kd,kde->ek", params.means, prec_chol, precision=g.EXACT)
        log_det = FULL.log_det(prec_chol, d)
        return -0.5 * (d * math.log(2 * math.pi) + g.sum_of_squares(y, axis=1)) + log_det

    def stats(self, params: GaussianEmissionParams, x, resp):
        """Sufficient statistics for responsibilities ``resp`` ``(k, n)`` (weights included)."""
        return g.sufficient_stats(x, resp, params.means, self.covariance_type, self.formulation)

    def stats_steps(self, params: GaussianEmissionParams, x, resp):
        r""":meth:`stats` for step-major responsibilities ``resp`` ``(t, s, k)`` of the rows ``x``
        ``(t s, d)`` (time-major, as the batched forward-backward gives them).

        Up to ``SMALL_D`` features, the counts :math:`\sum_\tau r_{\tau k}`, the sums
        :math:`\sum_\tau r_{\tau k} x_{\tau c}` and each distinct second moment about the
        reference means :math:`\sum_\tau r_{\tau k} (x_{\tau c} - a_{kc})(x_{\tau e} - a_{ke})`
        (from differences, as :func:`emjax.components.gaussian.sufficient_stats`) are the terms of one
        variadic reduction over the sequences of each step (contiguous in memory; 2x faster on CPU
        than reducing over time first), then over time: a single pass over ``resp`` and ``x``,
        without the transposed copy of ``resp`` that the component-major statistics read.
        """
        t, s, k = resp.shape
        d = x.shape[-1]
        if d > g.SMALL_D:
            return self.stats(params, x, component_major(resp))
        x = x.reshape(t, s, d, 1)
        ref = params.means
        diff = [x[:, :, c] - ref[:, c] for c in range(d)]  # d arrays (t, s, k)
        kind = lookup(self.covariance_type)
        full = kind.matrix
        pairs = [(c, e) for c in range(d) for e in (range(c, d) if full else (c,))]
        terms = [resp] + [resp * x[:, :, c] for c in range(d)] + [resp * diff[c] * diff[e] for c, e in pairs]
        totals = [jnp.sum(p, axis=0) for p in row_sums(terms, axis=1)]  # (k,) each
        counts, sums = totals[0], jnp.stack(totals[1:d + 1], axis=-1)
        moment = dict(zip(pairs, totals[d + 1:]))
        if not full:
            return counts, sums, jnp.stack([moment[c, c] for c in range(d)], axis=-1)
        second = g.symmetric_from_upper(moment, d)
        return counts, sums, jnp.sum(second, axis=0) if kind.shared else second

    @property
    def guards_collapse(self) -> bool:
        """Whether the M-step applies the collapse guard (``collapse_guard``; ``None``: with the prior)."""
        return self.pseudo_count > 0 if self.collapse_guard is None else self.collapse_guard

    def update(self, stats, params: GaussianEmissionParams, *, present=None,
               count_floor: float = 0.0) -> gu.GaussianUpdate:
        """Means, covariances and the components the collapse guard marks (``None`` unguarded)
        from statistics about ``params.means``: :func:`~emjax.components.gaussian_update.map_update`
        with the prior, else :func:`~emjax.components.gaussian_update.ml_update` with
        ``count_floor`` added to every count. ``present`` (optional ``(k,)`` bool): the components
        that exist; the others (padding) keep ``params.covariances``."""
        cov_type, ref = self.covariance_type, params.means
        previous = None if present is None else params.covariances
        if self.pseudo_count > 0:
            return gu.map_update(stats, ref, self.reg_covar, self.pseudo_count, cov_type, present=present,
                                 previous=previous, guard=self.guards_collapse)
        return gu.ml_update(stats, ref, self.reg_covar, cov_type, count_floor=count_floor, present=present,
                            previous=previous, guard=self.guards_collapse)

    def m_step(self, stats, params: GaussianEmissionParams) -> GaussianEmissionParams:
        """:meth:`update`; a collapsed component's covariance becomes 0, so its restart ends
        DEGENERATE (a mixture gives it weight 0 instead: :class:`emjax.GaussianMixture`)."""
        update = self.update(stats, params)
        cov = update.covariances
        if self.guards_collapse and not lookup(self.covariance_type).shared:
            cov = jnp.where(update.collapsed.reshape((-1,) + (1,) * (cov.ndim - 1)), 0, cov)
        return GaussianEmissionParams(update.means, cov)

    def log_prior(self, params: GaussianEmissionParams, present=None):
        """The Wishart log prior of :meth:`update`; ``present`` as there (padding counts for nothing)."""
        if self.pseudo_count == 0:
            return jnp.zeros((), params.means.dtype)
        k, d = params.means.shape
        return gu.log_wishart_prior(params.covariances, self.reg_covar, self.pseudo_count,
                                    self.covariance_type, k, d, present)

    def is_degenerate(self, params: GaussianEmissionParams):
        return ~jnp.all(jnp.isfinite(g.precision_cholesky(params.covariances, self.covariance_type)))

    def init(self, key, x, weights, k: int) -> GaussianEmissionParams:
        r"""k-means++ (or random-row) seeds, then one M-step from the nearest-seed assignment, both
        on a sample of ``INIT_SAMPLE`` steps (all steps when there are no more), so a start costs
        O(``INIT_SAMPLE``) beyond one cumulative sum over the steps.

        The sample is systematic: with cumulative weights :math:`W_i` and one uniform draw
        :math:`u`, step :math:`i` is taken for each :math:`j` with
        :math:`W_{i-1} \le (j + u) W_n / m < W_i`: step :math:`i` is drawn :math:`m w_i / W_n`
        times on average (that number rounded down or up), steps of weight 0 never, and the sample
        spreads evenly over the sequences; each drawn step then weighs 1.
        """
        sample_key, key = jax.random.split(key)
        if x.shape[0] > INIT_SAMPLE:
            cumulative = jnp.cumsum(weights)
            u = (jnp.arange(INIT_SAMPLE) + jax.random.uniform(sample_key, (), weights.dtype)) / INIT_SAMPLE
            rows = jnp.minimum(jnp.searchsorted(cumulative, u * cumulative[-1], side="right"), x.shape[0] - 1)
            x, weights = x[rows], (weights[rows] > 0).astype(weights.dtype)  # (rounding at the end)
        if self.init_params == "random_from_data":
            ref = seeding.random_rows(key, x, weights, k)
        else:
            ref = seeding.kmeans_plusplus(key, x, weights, k)
        resp = seeding.nearest_responsibilities(x, ref) * weights
        return self.m_step(self.stats(GaussianEmissionParams(ref, None), x, resp),
                           GaussianEmissionParams(ref, None))

    def sample(self, key, params: GaussianEmissionParams, states):
        """One draw per entry of ``states`` ``(n,)``: ``(n, d)``."""
        return g.sample(key, params.means, params.covariances, states, self.covariance_type)

    # ------------------------------------------------------------------ standardisation
    def standardize(self, x, weights):
        """``(x', Affine, log_jacobian per step)``: centred (and, with the prior, unit variance)."""
        return g.standardize(x, weights, self.covariance_type, rescale=self.pseudo_count > 0)

    def to_standard(self, params: GaussianEmissionParams, transform: g.Affine):
        return GaussianEmissionParams(*g.affine_map(*params, transform.shift, transform.scale,
                                                    self.covariance_type))

    def from_standard(self, params: GaussianEmissionParams, transform: g.Affine):
        return GaussianEmissionParams(*g.affine_map(*params, -transform.shift / transform.scale,
                                                    1 / transform.scale, self.covariance_type))

    # ------------------------------------------------------------------ host side
    def validate_steps(self, x, lengths):
        """``x`` ``(s, t, d)`` as floats, finite on the real (unpadded) steps."""
        x = as_float_array(x, "data")
        mask = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]
        check_finite(np.where(mask[:, :, None], np.asarray(x), 0), "data")
        return x

    def param_shapes(self, k: int, d: int) -> dict:
        return {"means": (k, d), "covariances": g.covariance_shape(self.covariance_type, k, d)}

    def validate_params(self, params, k: int, d: int, prefix: str = "params.emission",
                        context: str | None = None) -> None:
        if not isinstance(params, tuple) or len(params) != 2:
            raise TypeError(f"{prefix} must be GaussianEmissionParams(means, covariances); "
                            f"got {type(params).__name__}.")
        context = context or f"n_states={k}, n_features={d}"
        for name, shape in self.param_shapes(k, d).items():
            got = tuple(np.shape(getattr(GaussianEmissionParams(*params), name)))
            if got != shape:
                lead = feature_mismatch(d, got[1]) if name == "means" and len(got) == 2 and got[0] == k else ""
                raise ValueError(f"{lead}{prefix}.{name} must have shape {shape} for {context}, "
                                 f"covariance_type={self.covariance_type!r}; got {got}.")

    def n_free_parameters(self, params: GaussianEmissionParams) -> int:
        k, d = np.shape(params.means)
        return k * d + g.n_covariance_parameters(self.covariance_type, k, d)

    def work_per_step(self, k: int, d: int) -> int:
        kind = lookup(self.covariance_type)
        return ((2 if kind.shared else 3) * k * d) if kind.matrix else 3 * k + d

    work_per_row = work_per_step
