r"""Discrete components: log-densities, sufficient statistics and MAP updates.

Four emission families for ``k`` components (mixture components or HMM states):

* **categorical**: ``f`` features, feature ``j`` taking values ``0..c_j-1`` (``-1``: missing);
  ``x`` int ``(n, f)``, ``probs`` ``(k, f, c_max)`` with zeros past ``c_j``,
  :math:`\log p(x_n \mid k) = \sum_j [x_{nj} \ge 0] \log \rho_{kj x_{nj}}`;
* **Bernoulli**: ``x`` ``(n, d)`` in {0, 1}, ``probs`` ``(k, d)``,
  :math:`\log p(x_n \mid k) = \sum_d x_{nd} \log p_{kd} + (1 - x_{nd}) \log(1 - p_{kd})`;
* **Poisson**: counts ``x`` ``(n, d)``, ``rates`` ``(k, d)``,
  :math:`\log p(x_n \mid k) = \sum_d x_{nd} \log\lambda_{kd} - \lambda_{kd} - \log x_{nd}!`;
* **multinomial**: count vectors ``x`` ``(n, v)`` with total :math:`T_n`, ``probs`` ``(k, v)``,
  :math:`\log p(x_n \mid k) = \log T_n! - \sum_v \log x_{nv}! + \sum_v x_{nv} \log p_{kv}`.

Densities are component-major ``(k, n)`` (as :func:`emjax.components.gaussian.log_density`) and
use :math:`0 \log 0 = 0`: a zero count never meets a zero probability as ``0 * -inf = NaN``, and a
positive count of a zero-probability outcome gives exactly ``-inf``.

Statistics take responsibilities ``resp`` ``(k, n)`` already multiplied by row weights and are
sums over rows. The updates maximise the expected complete log-likelihood plus a conjugate log
prior whose pseudo-counts are arguments (``a >= 0`` extra observations per outcome):

* Dirichlet(1 + a) on each probability vector: :math:`\rho = (N + a) / \sum (N + a)`;
* Beta(1 + a, 1 + a) on each Bernoulli probability: :math:`p = (S + a) / (N + 2a)`;
* Gamma(1 + a, b) (shape, rate) on each Poisson rate: :math:`\lambda = (S + a) / (N + b)`.

The matching ``*_log_prior`` functions return those log densities up to constants, so a model
that adds them to its objective keeps EM monotone.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln, xlogy

from .gaussian import EXACT


def _sum_xlogy(x, p, log_p):
    r""":math:`\sum_d x_{nd} \log p_{kd}` as ``(k, n)`` with :math:`0 \log 0 = 0`, by matrix products.

    ``log_p`` is ``log(p)`` where ``p > 0`` (any finite value elsewhere). A positive ``x_nd``
    against ``p_kd = 0`` gives ``-inf``.
    """
    finite = jnp.matmul(jnp.where(p > 0, log_p, 0), x.T, precision=EXACT)
    impossible = jnp.matmul((p <= 0).astype(x.dtype), x.T, precision=EXACT) > 0
    return jnp.where(impossible, -jnp.inf, finite)


def _safe_log(p):
    return jnp.log(jnp.where(p > 0, p, 1))


def dirichlet_map(counts, pseudo_count, mask=None):
    r"""MAP probability vectors along the last axis: :math:`\rho = (N + a) / \sum (N + a)`.

    The maximiser of :math:`\sum_c (N_c + a) \log \rho_c` on the simplex (Dirichlet(1 + a) prior).
    Entries where ``mask`` is False (padding) get probability 0; a vector with no counts and no
    pseudo-counts becomes uniform over its valid entries.
    """
    valid = jnp.ones(counts.shape[-1:], bool) if mask is None else mask
    mass = jnp.where(valid, counts + pseudo_count, 0)
    total = jnp.sum(mass, axis=-1, keepdims=True)
    uniform = valid / jnp.sum(valid, axis=-1, keepdims=True)
    return jnp.where(total > 0, mass / jnp.where(total > 0, total, 1), uniform).astype(counts.dtype)


def dirichlet_log_prior(probs, pseudo_count, mask=None):
    r""":math:`a \sum \log \rho` over valid entries (Dirichlet(1 + a) up to a constant)."""
    a = pseudo_count if mask is None else jnp.where(mask, pseudo_count, 0)
    return jnp.sum(xlogy(jnp.asarray(a, probs.dtype), probs))


# --------------------------------------------------------------------------- categorical
def category_mask(n_categories: tuple) -> jnp.ndarray:
    """``(f, c_max)`` bool: True where category ``c < n_categories[j]`` of feature ``j`` exists."""
    return jnp.arange(max(n_categories))[None, :] < jnp.asarray(n_categories)[:, None]


def _one_hot(x, c_max: int, dtype):
    """``(n, f * c_max)`` indicators of ``x`` ``(n, f)``; a missing value (-1) is all zeros."""
    return jax.nn.one_hot(x, c_max, dtype=dtype).reshape(x.shape[0], -1)


def categorical_log_density(x, probs):
    r""":math:`\sum_j \log \rho_{k j x_{nj}}` over observed features, shape ``(k, n)``."""
    k, f, c = probs.shape
    flat = probs.reshape(k, f * c)
    return _sum_xlogy(_one_hot(x, c, probs.dtype), flat, _safe_log(flat))


def categorical_stats(x, resp, c_max: int):
    r"""Expected counts :math:`N_{kjc} = \sum_n r_{kn} [x_{nj} = c]`, shape ``(k, f, c_max)``."""
    counts = jnp.matmul(resp, _one_hot(x, c_max, resp.dtype), precision=EXACT)
    return counts.reshape(resp.shape[0], x.shape[1], c_max)


def categorical_update(counts, n_categories: tuple, pseudo_count):
    """MAP tables ``(k, f, c_max)`` from :func:`categorical_stats` (Dirichlet(1 + a) per row)."""
    return dirichlet_map(counts, pseudo_count, category_mask(n_categories))


def categorical_log_prior(probs, n_categories: tuple, pseudo_count):
    """Log prior of :func:`categorical_update`'s Dirichlets, summed over components and features."""
    return dirichlet_log_prior(probs, pseudo_count, category_mask(n_categories))


# --------------------------------------------------------------------------- Bernoulli
def bernoulli_log_density(x, probs):
    r""":math:`\sum_d x_{nd} \log p_{kd} + (1 - x_{nd}) \log(1 - p_{kd})`, shape ``(k, n)``."""
    on = _sum_xlogy(x, probs, _safe_log(probs))
    off = _sum_xlogy(1 - x, 1 - probs, jnp.log1p(-jnp.where(probs < 1, probs, 0)))
    return on + off


def bernoulli_stats(x, resp):
    r"""``(N, S)``: :math:`N_k = \sum_n r_{kn}` ``(k,)`` and :math:`S_{kd} = \sum_n r_{kn} x_{nd}`."""
    return jnp.sum(resp, axis=1), jnp.matmul(resp, x, precision=EXACT)


def bernoulli_update(counts, sums, pseudo_count):
    r"""MAP probabilities :math:`p = (S + a) / (N + 2a)` ``(k, d)`` (Beta(1 + a, 1 + a) prior;
    0.5 for a component with no weight and no pseudo-counts)."""
    total = (counts + 2 * pseudo_count)[:, None]
    probs = jnp.where(total > 0, (sums + pseudo_count) / jnp.where(total > 0, total, 1), 0.5)
    return probs.astype(sums.dtype)


def bernoulli_log_prior(probs, pseudo_count):
    r""":math:`a \sum \log p + \log(1 - p)` (Beta(1 + a, 1 + a) up to a constant)."""
    a = jnp.asarray(pseudo_count, probs.dtype)
    return jnp.sum(xlogy(a, probs) + xlogy(a, 1 - probs))


# --------------------------------------------------------------------------- Poisson
def poisson_log_density(x, rates):
    r""":math:`\sum_d x_{nd} \log \lambda_{kd} - \lambda_{kd} - \log x_{nd}!`, shape ``(k, n)``.

    Computed in Loader's (2000) saddle-point form, which never forms the terms
    :math:`x \log\lambda`, :math:`\lambda` and :math:`\log x!` that cancel (they are ~1e8
    for counts ~1e7, where float32 would keep nothing of their sum):

    .. math::
        \log p(x \mid \lambda) = -\delta(x) - \tfrac12 \log(2\pi x) - D(x, \lambda),
        \qquad D(x, \lambda) = x \log\tfrac{x}{\lambda} + \lambda - x \ge 0,

    with Stirling's error :math:`\delta` (:func:`_stirling_error`) and the deviance term
    :math:`D` (:func:`_poisson_deviance`); a zero count gives :math:`-\lambda`.
    """
    positive = x > 0
    safe_x = jnp.where(positive, x, 1)
    row = jnp.sum(jnp.where(positive, -_stirling_error(safe_x) - 0.5 * jnp.log(2 * jnp.pi * safe_x),
                            0), axis=1)
    deviance = _poisson_deviance(x[None, :, :], rates[:, None, :].astype(x.dtype))
    return row[None] - jnp.sum(deviance, axis=2)


#: Terms of the odd series of :func:`_poisson_deviance` (enough for |v| < 0.1 in float64).
_DEVIANCE_TERMS = 9


def _poisson_deviance(x, rates):
    r""":math:`D(x, \lambda) = x \log(x/\lambda) + \lambda - x` without cancellation: for
    :math:`|x - \lambda| < (x + \lambda)/10`, with :math:`v = (x - \lambda)/(x + \lambda)`,
    :math:`D = (x - \lambda) v + 2x \sum_{j \ge 1} v^{2j+1}/(2j+1)`; directly elsewhere.
    :math:`D(0, \lambda) = \lambda`, :math:`D(x > 0, 0) = \infty`; NaN-free derivatives."""
    difference, total = x - rates, x + rates
    near = jnp.abs(difference) < 0.1 * total
    v = jnp.where(near, difference / jnp.where(near, total, 1), 0)  # no overflow off its branch
    v2 = v * v
    series = jnp.zeros_like(v)
    for j in range(_DEVIANCE_TERMS, 0, -1):
        series = (series + 1 / (2 * j + 1)) * v2
    near_value = difference * v + 2 * x * v * series
    positive = (x > 0) & (rates > 0)
    ratio = jnp.where(positive, x, 1) / jnp.where(positive, rates, 1)
    far_value = jnp.where(positive, x * jnp.log(ratio), jnp.where(x > 0, jnp.inf, 0)) - difference
    return jnp.where(near, near_value, far_value)


#: Stirling's series for :func:`_stirling_error` from this count on (direct formula below).
_STIRLING_SERIES_FROM = 15.0


def _stirling_error(x):
    r"""Stirling's error :math:`\delta(x) = \log x! - (x + \tfrac12)\log x + x -
    \tfrac12\log 2\pi` for :math:`x \ge 1` (the series
    :math:`\tfrac1{12x} - \tfrac1{360x^3} + \tfrac1{1260x^5} - \tfrac1{1680x^7} + \tfrac1{1188x^9}`
    from :data:`_STIRLING_SERIES_FROM` on, where the direct formula cancels)."""
    large = x >= _STIRLING_SERIES_FROM
    big = jnp.where(large, x, _STIRLING_SERIES_FROM)
    small = jnp.where(large, 1, x)
    inv2 = 1 / (big * big)
    series = (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 * (1 / 1680 - inv2 / 1188)))) / big
    direct = gammaln(small + 1) - (small + 0.5) * jnp.log(small) + small - 0.5 * jnp.log(2 * jnp.pi)
    return jnp.where(large, series, direct)


def poisson_stats(x, resp):
    r"""``(N, S)`` as :func:`bernoulli_stats`: weights ``(k,)`` and weighted count sums ``(k, d)``."""
    return bernoulli_stats(x, resp)


def poisson_update(counts, sums, shape_pseudo_count, rate_pseudo_count):
    r"""MAP rates :math:`\lambda = (S + a) / (N + b)` ``(k, d)`` (Gamma(1 + a, b) prior).

    Keep ``b > 0`` so a component with no weight stays finite (its rate becomes ``a / b``).
    """
    return ((sums + shape_pseudo_count) / (counts + rate_pseudo_count)[:, None]).astype(sums.dtype)


def poisson_log_prior(rates, shape_pseudo_count, rate_pseudo_count):
    r""":math:`\sum a \log \lambda - b \lambda` (Gamma(1 + a, b) up to a constant)."""
    a = jnp.asarray(shape_pseudo_count, rates.dtype)
    return jnp.sum(xlogy(a, rates) - rate_pseudo_count * rates)


# --------------------------------------------------------------------------- multinomial
def multinomial_log_density(x, probs):
    r""":math:`\log T_n! - \sum_v \log x_{nv}! + \sum_v x_{nv} \log p_{kv}`, shape ``(k, n)``."""
    row = gammaln(jnp.sum(x, axis=1) + 1) - jnp.sum(gammaln(x + 1), axis=1)
    return _sum_xlogy(x, probs, _safe_log(probs)) + row[None]


def multinomial_stats(x, resp):
    r"""Expected counts :math:`S_{kv} = \sum_n r_{kn} x_{nv}`, shape ``(k, v)``."""
    return jnp.matmul(resp, x, precision=EXACT)


def multinomial_update(sums, pseudo_count):
    """MAP probabilities ``(k, v)``: :func:`dirichlet_map` of the expected counts."""
    return dirichlet_map(sums, pseudo_count)


def multinomial_log_prior(probs, pseudo_count):
    """Log prior of :func:`multinomial_update`'s Dirichlets, summed over components."""
    return dirichlet_log_prior(probs, pseudo_count)
