r"""The E-step of :class:`~emjax.models.gaussian_mixture.GaussianMixture` and the chunk sizes it
is run in.

Three forms give the same statistics ``(N, s, S)`` (:func:`emjax.components.gaussian.sufficient_stats`:
counts, sums, second moments about the current means; the counts are the mixture's too):

* **exact**: log-densities and moments from differences :math:`x_n - m_k`, the mixture's
  responsibilities in between (:func:`~emjax.components.responsibilities.weighted_responsibilities`);
* **expanded**, for one unbatched restart (``formulation.unbatched``, :mod:`emjax.core.plan`): two
  matrix products over the features of :mod:`emjax.components.gaussian_expanded`, chosen per chunk
  by a ``lax.cond`` on its rounding guard, the exact form otherwise (full/tied above ``SMALL_D``
  features, diag, spherical; complete data);
* **missing** (``missing="marginalize"``, chunks with a NaN): each row scored on its observed
  coordinates and the missing ones filled by their conditional moments
  (:mod:`emjax.components.gaussian_missing`).

Examples:
    >>> import jax.numpy as jnp, emjax
    >>> from emjax.models import gaussian_mixture_estep as estep
    >>> model = emjax.GaussianMixture(2, "diag")
    >>> params = emjax.GMMParams(jnp.array([0.5, 0.5]), jnp.array([[0.0], [4.0]]), jnp.ones((2, 1)))
    >>> (counts, sums, second), loglik = estep.e_step(model, params, jnp.array([[0.0], [4.0]]), jnp.ones(2))
    >>> counts.round(3).tolist()                       # one row each
    [1.0, 1.0]
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..components import gaussian as g
from ..components import gaussian_expanded as ge
from ..components import gaussian_missing as gm
from ..components.covariance_types import lookup
from ..components.responsibilities import weighted_responsibilities
from ..core.chunking import choose_chunk_size, chunked_sum


def e_step(model, params, x, weights):
    """``(stats, loglik)`` of ``model`` (a ``GaussianMixture``) on rows ``x`` with ``weights``."""
    if model.missing == "marginalize":
        return jax.lax.cond(jnp.any(jnp.isnan(x)), functools.partial(_missing, model),
                            functools.partial(_complete, model), params, x, weights)
    return _complete(model, params, x, weights)


def _complete(model, params, x, weights):
    """The exact form, or, for one unbatched restart, the expanded one for chunks where its
    rounding guard holds (a ``lax.cond`` per chunk). The chunks are then sized for the expanded
    form (:func:`work_per_row`), and the exact form goes through each in sub-chunks of its own size
    (one shape: :func:`~emjax.core.chunking.chunked_sum`)."""
    cov_type = model.covariance_type
    prec_chol = g.precision_cholesky(params.covariances, cov_type)
    if not (model.formulation.unbatched and expandable(model, x)):
        return _exact(model, params, prec_chol, x, weights)
    size = choose_chunk_size(x.shape[0], exact_work_per_row(model, x))  # balanced sub-chunks

    def exact(p, u, rows, w):
        return chunked_sum(lambda r, v: _exact(model, p, u, r, v), rows, w, size)
    return jax.lax.cond(ge.expansion_is_accurate(x, params.means, prec_chol, cov_type),
                        functools.partial(_expanded, model), exact, params, prec_chol, x, weights)


def expandable(model, x) -> bool:
    """Whether the expanded form applies to ``model`` on rows like ``x`` (module docstring)."""
    small = lookup(model.covariance_type).matrix and x.shape[-1] <= g.SMALL_D
    return model.missing == "error" and not small


def _responsibilities(log_density, params, weights, keep=None):
    """:func:`~emjax.components.responsibilities.weighted_responsibilities` of the component
    log-densities ``(k, n)`` plus the log mixture weights."""
    return weighted_responsibilities(log_density + jnp.log(params.weights)[:, None], weights, keep)


def _exact(model, params, prec_chol, x, weights):
    lp = g.log_density(x, params.means, prec_chol, model.covariance_type, model.formulation)
    resp, loglik = _responsibilities(lp, params, weights)
    return model.emission_model.stats(model.unpack(params)[1], x, resp), loglik


def _expanded(model, params, prec_chol, x, weights):
    f = ge.features(x, model.covariance_type, ge.origin(params.means))
    lp = ge.log_density(f, ge.log_density_weights(params.means, prec_chol, model.covariance_type))
    resp, loglik = _responsibilities(lp, params, weights)
    return ge.sufficient_stats(f, resp, params.means, model.covariance_type), loglik


def _missing(model, params, x, weights):
    """Expected complete-data statistics; rows with nothing observed contribute nothing."""
    lp = gm.marginal_log_density(x, params.means, params.covariances, model.covariance_type)
    keep = (weights > 0) & jnp.any(gm.observed(x), axis=1)
    resp, loglik = _responsibilities(lp, params, weights, keep)
    stats = gm.expected_sufficient_stats(x, resp, params.means, params.covariances,
                                         params.means, model.covariance_type)
    return stats, loglik


def work_per_row(model, data) -> int:
    """Temporary values per row of a chunk: those of the expanded form (features, log-densities
    and responsibilities: W2 and W3 run 10-25% faster in 8,000-16,000-row chunks than in the
    exact form's 250-2,600) while it may be chosen, else :func:`exact_work_per_row`."""
    if model.formulation.unbatched and expandable(model, data):
        return ge.n_features(data.shape[1], model.covariance_type) + 2 * model.n_components
    return exact_work_per_row(model, data)


def exact_work_per_row(model, data) -> int:
    """Temporary values per row of the exact form's chunks (and of the start's)."""
    k, d, kind = model.n_components, data.shape[1], lookup(model.covariance_type)
    if model.missing == "marginalize":  # per (row, component) conditional moments
        return 4 * k * d * (d if kind.matrix else 1)
    if kind.matrix:
        return (2 if kind.shared else 3) * k * d + 2 * k
    # diag/spherical: the E-step reads one component's squared differences of the chunk,
    # (chunk, d), twice (log-densities, then moments); at most 2^21 / 128 = 16K values per
    # component keep them in cache on CPU (W3, d=64, k=32: 256- and 512-row chunks run at
    # one speed, 1,024 twice as slow; d=64, k=8: 512 rows 1.5x faster than 2,016; d=8,
    # k=16: 2,048 rows 1.9x faster than 7,281)
    return max(2 * k * d, 128 * d) + 2 * k
