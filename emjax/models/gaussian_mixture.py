r"""Gaussian mixture model.

.. math::
    p(x \mid \theta) = \sum_{k=1}^K \pi_k \, \mathcal N(x \mid m_k, \Sigma_k)

The fit runs on standardised data (centred, and scaled to unit variance per feature; one common
scale for ``spherical``) and maps the parameters back, so float32 copes with offsets of 1e6 and
scales from 1e-8 to 1e8.

Regularisation:

* ``regularization="prior"`` (default): MAP-EM with a proper prior in standardised coordinates,
  a symmetric Dirichlet(1 + c) on the weights and, per component, a Wishart prior on the precision
  :math:`\Lambda_k` with log density :math:`\tfrac{c}{2}\log|\Lambda_k|
  - \tfrac{\psi}{2}\operatorname{tr}\Lambda_k` (+ const), where ``psi = reg_covar`` and
  ``c = PSEUDO_COUNT``; means have a flat prior. The M-step is then exactly
  :math:`\pi_k = (N_k + c)/(N + Kc)`, :math:`m_k = s_k / N_k`,
  :math:`\Sigma_k = (S_k + \psi I)/(N_k + c)`, so the monitored objective
  (log-likelihood + log prior) never decreases and an empty component stays finite.
  (tied: one Wishart with ``K c``; diag: Gamma priors per precision; spherical: per component.)
* ``regularization="sklearn"``: scikit-learn's update, ``reg_covar`` added to the covariance
  diagonal in the data's own units (data are centred, not rescaled), for parity tests. It is not
  a prior: the monitored objective is the log-likelihood alone.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ..chunking import choose_chunk_size, chunked_sum
from ..components import gaussian as g
from ..model import Model
from ..validation import as_float_array, check_finite, check_ndim
from . import seeding

INIT_METHODS = ("kmeans++", "kmeans", "random_from_data", "random")
REGULARIZATIONS = ("prior", "sklearn")
#: Prior pseudo-count c (in observations) of the weights' Dirichlet and the precisions' Wishart.
PSEUDO_COUNT = 1e-3
LLOYD_STEPS = 10


class GMMParams(NamedTuple):
    """weights ``(k,)``, means ``(k, d)``, covariances (full ``(k,d,d)``, tied ``(d,d)``,
    diag ``(k,d)``, spherical ``(k,)``), as in scikit-learn."""

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
        reg_covar: prior strength ``psi`` (in units of the standardised data's variance) for
            "prior"; the absolute value added to covariance diagonals for "sklearn".
        regularization: "prior" (MAP-EM, monotone) or "sklearn" (scikit-learn's reg_covar).
    """

    n_components: int
    covariance_type: str = "full"
    init_params: str = "kmeans++"
    reg_covar: float = 1e-6
    regularization: str = "prior"

    def __post_init__(self):
        k = self.n_components
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_components must be a positive integer; got {k!r}.")
        for name, allowed in (("covariance_type", g.COVARIANCE_TYPES),
                              ("init_params", INIT_METHODS), ("regularization", REGULARIZATIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}.")
        reg = self.reg_covar
        if not isinstance(reg, numbers.Real) or not np.isfinite(reg) or reg < 0:
            raise ValueError(f"reg_covar must be a finite number >= 0; got {reg!r}.")

    # ----------------------------------------------------------------- densities and inference
    def _weighted_log_density(self, params: GMMParams, x):
        prec_chol = g.precision_cholesky(params.covariances, self.covariance_type)
        log_density = g.log_density(x, params.means, prec_chol, self.covariance_type)
        return log_density + jnp.log(params.weights)[:, None]  # (k, n)

    def log_prob(self, params: GMMParams, x):
        """:math:`\\log p(x_n)`, shape ``(n,)``."""
        return logsumexp(self._weighted_log_density(params, x), axis=0)

    def posterior(self, params: GMMParams, x):
        """Responsibilities :math:`p(z_n = k \\mid x_n)`, shape ``(n, k)``."""
        return jax.nn.softmax(self._weighted_log_density(params, x), axis=0).T

    def predict(self, params: GMMParams, x):
        """Most probable component per row, shape ``(n,)``."""
        return jnp.argmax(self._weighted_log_density(params, x), axis=0)

    def sample(self, key, params: GMMParams, n: int):
        """``(x, labels)``: ``n`` draws from the mixture and the component of each."""
        label_key, noise_key = jax.random.split(key)
        labels = jax.random.categorical(label_key, jnp.log(params.weights), shape=(n,))
        return g.sample(noise_key, params.means, params.covariances, labels, self.covariance_type), labels

    def n_free_parameters(self, params: GMMParams) -> int:
        k, d = params.means.shape
        cov = {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": k * d,
               "spherical": k}[self.covariance_type]
        return (k - 1) + k * d + cov

    # ----------------------------------------------------------------- EM contract
    def e_step(self, params: GMMParams, x, weights):
        lp = self._weighted_log_density(params, x)
        row_ll = logsumexp(lp, axis=0)
        keep = weights > 0
        resp = jnp.where(keep, jnp.exp(lp - row_ll) * weights, 0)
        loglik = jnp.sum(jnp.where(keep, weights * row_ll, 0))
        return g.sufficient_stats(x, resp, params.means, self.covariance_type), loglik

    def m_step(self, stats, params: GMMParams) -> GMMParams:
        """Closed-form update; only ``params.means`` (the statistics' reference point) is read."""
        counts, sums, second = stats
        ref, cov_type = params.means, self.covariance_type
        if self.regularization == "sklearn":
            counts_sk = counts + 10 * jnp.finfo(counts.dtype).eps
            means = sums / counts_sk[:, None]
            scatter = g.scatter_about_means(counts, sums, second, ref, means, cov_type)
            cov = g.add_to_diagonal(g.divide_per_component(scatter, counts_sk, cov_type),
                                    self.reg_covar, cov_type)
            return GMMParams(counts_sk / jnp.sum(counts_sk), means, cov)
        means, cov = g.map_update(stats, ref, self.reg_covar, PSEUDO_COUNT, cov_type)
        return GMMParams((counts + PSEUDO_COUNT) / (jnp.sum(counts) + PSEUDO_COUNT * counts.shape[0]),
                         means, cov)

    def log_prior(self, params: GMMParams):
        if self.regularization == "sklearn":
            return jnp.zeros((), params.weights.dtype)
        c, cov_type = PSEUDO_COUNT, self.covariance_type
        k, d = params.means.shape
        strength = k * c if cov_type == "tied" else c
        wishart = g.log_wishart_prior(params.covariances, self.reg_covar, strength, cov_type, d)
        return c * jnp.sum(jnp.log(params.weights)) + wishart

    def is_degenerate(self, params: GMMParams):
        prec_chol = g.precision_cholesky(params.covariances, self.covariance_type)
        return ~jnp.all(jnp.isfinite(prec_chol)) | ~jnp.all(params.weights > 0)

    def init(self, key, x, weights) -> GMMParams:
        k, (n, d) = self.n_components, x.shape
        if self.init_params == "random":
            ref = jnp.zeros((k, d), x.dtype)

            def responsibilities(rows, row_index):  # uniform draws per row, normalised
                draw = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i), (k,), x.dtype))
                resp = draw(row_index).T
                return resp / jnp.sum(resp, axis=0)
        else:
            if self.init_params == "random_from_data":
                ref = seeding.random_rows(key, x, weights, k)
            else:
                ref = seeding.kmeans_plusplus(key, x, weights, k)
            if self.init_params == "kmeans":
                ref = seeding.lloyd(x, weights, ref, LLOYD_STEPS)
            responsibilities = lambda rows, row_index: seeding.nearest_responsibilities(rows, ref)

        def stats(data, w):
            rows, row_index = data
            return g.sufficient_stats(rows, responsibilities(rows, row_index) * w, ref, self.covariance_type)

        chunk = choose_chunk_size(n, self.work_per_row(x))
        summed = chunked_sum(stats, (x, jnp.arange(n)), weights, chunk)
        return self.m_step(summed, GMMParams(None, ref, None))

    # ----------------------------------------------------------------- standardisation
    def standardize(self, x, weights):
        return g.standardize(x, weights, self.covariance_type, rescale=self.regularization != "sklearn")

    def _map_params(self, params: GMMParams, shift, scale) -> GMMParams:
        """Parameters of ``x' = (x - shift) / scale``'s model from those of ``x``'s."""
        means, cov = g.affine_map(params.means, params.covariances, shift, scale, self.covariance_type)
        return GMMParams(params.weights, means, cov)

    def params_to_standard(self, params, transform: g.Affine):
        return self._map_params(params, transform.shift, transform.scale)

    def params_from_standard(self, params, transform: g.Affine):
        return self._map_params(params, -transform.shift / transform.scale, 1 / transform.scale)

    # ----------------------------------------------------------------- host-side checks
    def validate(self, data):
        x = as_float_array(data, "data")
        check_ndim(x, "data", 2, " Pass an (n_samples, n_features) array; for one feature use "
                   "x.reshape(-1, 1).")
        n, d = x.shape
        if n == 0 or d == 0:
            raise ValueError(f"data must have at least one sample and one feature; got shape {(n, d)}.")
        check_finite(x, "data")
        return x

    def validate_weights(self, weights):
        positive = int(np.sum(np.asarray(weights) > 0))
        if positive < self.n_components:
            raise ValueError(f"n_samples={positive} (rows with positive weight) must be >= "
                             f"n_components={self.n_components}.")

    def validate_params(self, params, data):
        if not isinstance(params, tuple) or len(params) != 3:
            raise TypeError(f"params must be GMMParams(weights, means, covariances); got {type(params).__name__}.")
        params = GMMParams(*params)
        k, d = self.n_components, data.shape[1]
        expected = {"weights": (k,), "means": (k, d),
                    "covariances": g.covariance_shape(self.covariance_type, k, d)}
        for name, shape in expected.items():
            got = tuple(np.shape(getattr(params, name)))
            if got != shape:
                raise ValueError(f"params.{name} must have shape {shape} for n_components={k}, "
                                 f"n_features={d}, covariance_type={self.covariance_type!r}; got {got}.")

    def work_per_row(self, data) -> int:
        k, d = self.n_components, data.shape[1]
        return {"full": 3 * k * d, "tied": 2 * k * d}.get(self.covariance_type, 3 * k + d) + 2 * k
