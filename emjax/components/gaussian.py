r"""Gaussian components: log-densities, sufficient statistics and standardisation.

Covariances come in scikit-learn's four shapes for ``k`` components in ``d`` dimensions:
``full`` (k, d, d), ``tied`` (d, d), ``diag`` (k, d), ``spherical`` (k,); what differs between
them is read from one table (:mod:`emjax.components.covariance_types`). Densities use the
precision Cholesky factor :math:`U` (:math:`U U^\top = \Sigma^{-1}`), so
:math:`\log \mathcal N(x \mid m, \Sigma) = -\tfrac12 (d \log 2\pi + \lVert (x - m) U \rVert^2)
+ \log\lvert U \rvert`, computed with matrix products, never per-point solves.

Statistics for responsibilities :math:`r_{nk}` (already multiplied by row weights) are sums:
:math:`N_k = \sum_n r_{nk}`, :math:`s_k = \sum_n r_{nk} x_n` and second moments about reference
means :math:`a_k` (the current means), computed from differences ``x_n - a_k``: the variance
update is a two-pass computation, exact in float32 even for components far tighter than the data.

These are the exact forms. :mod:`emjax.components.gaussian_expanded` has the expanded ones
(:math:`x^\top P x - 2 m^\top P x + m^\top P m`, second moments about zero: two matrix products
per chunk), whose rounding error grows like :math:`\epsilon \lVert P_k\rVert (\lVert x\rVert^2 +
\lVert m_k\rVert^2)`, and the guard that lets a model use them only where that error is small.
The M-steps (MAP and maximum-likelihood updates, the Wishart prior) are in
:mod:`emjax.components.gaussian_update`.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..core import linalg
from ..core.plan import Formulation, on_cpu
from ..core.row_sums import row_sums
from .covariance_types import COVARIANCE_TYPES, lookup  # noqa: F401  (COVARIANCE_TYPES re-exported)

#: Products that feed likelihoods keep full float32 precision on accelerators (no TF32/bf16 passes).
EXACT = jax.lax.Precision.HIGHEST
_mm = functools.partial(jnp.matmul, precision=EXACT)
#: Up to this many features, full and tied second moments are summed entry by entry (see
#: :func:`sufficient_stats`).
SMALL_D = 4


class Affine(NamedTuple):
    """Standardising map ``x' = (x - shift) / scale`` per feature."""

    shift: jnp.ndarray  # (d,)
    scale: jnp.ndarray  # (d,)


def covariance_shape(covariance_type: str, k: int, d: int) -> tuple:
    return lookup(covariance_type).shape(k, d)


def precision_cholesky(cov, covariance_type: str):
    """Upper factor ``U`` with ``U U^T = cov^{-1}`` (elementwise ``cov^{-1/2}`` for diag/spherical).

    A covariance that is not positive definite gives NaN (callers report it as degenerate).
    """
    if lookup(covariance_type).matrix:
        return jnp.swapaxes(linalg.triangular_inverse(linalg.cholesky(cov)), -1, -2)
    return jnp.where(cov > 0, 1.0 / jnp.sqrt(jnp.where(cov > 0, cov, 1.0)), jnp.nan)


def log_det_precision_cholesky(prec_chol, covariance_type: str, d: int):
    """:math:`\\log|U|` per component (a scalar for tied)."""
    return lookup(covariance_type).log_det(prec_chol, d)


def log_cholesky(cov, covariance_type: str):
    """Unconstrained coordinates of covariances: the Cholesky factor ``L`` (``L L^T = cov``) with
    its diagonal replaced by its log (full, tied; zeros above the diagonal), log-variances (diag,
    spherical). Inverse: :func:`covariance_from_log_cholesky`."""
    if lookup(covariance_type).matrix:
        chol = linalg.cholesky(cov)
        eye = jnp.eye(cov.shape[-1], dtype=bool)
        log_diag = jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1))[..., None, :]
        return jnp.where(eye, log_diag, jnp.tril(chol, -1))
    return jnp.log(cov)


def covariance_from_log_cholesky(u, covariance_type: str):
    """Covariances from :func:`log_cholesky`'s coordinates; positive definite for any finite ``u``."""
    if lookup(covariance_type).matrix:
        eye = jnp.eye(u.shape[-1], dtype=bool)
        chol = jnp.where(eye, jnp.exp(jnp.diagonal(u, axis1=-2, axis2=-1))[..., None, :], jnp.tril(u, -1))
        return _mm(chol, jnp.swapaxes(chol, -1, -2))
    return jnp.exp(u)


def log_density(x, means, prec_chol, covariance_type: str, formulation: Formulation | None = None):
    r""":math:`\log \mathcal N(x_n \mid m_k, \Sigma_k)`, shape ``(k, n)`` (component-major).

    Component-major layout keeps the long row axis innermost, so the sums over features and
    components are vector adds rather than short reductions along the fastest axis.
    ``formulation`` (:class:`emjax.core.plan.Formulation`) as in :func:`mahalanobis`.
    """
    d = x.shape[-1]
    log_det = jnp.reshape(log_det_precision_cholesky(prec_chol, covariance_type, d), (-1, 1))
    return -0.5 * (d * math.log(2 * math.pi) + mahalanobis(x, means, prec_chol, covariance_type,
                                                               formulation)) + log_det


def mahalanobis(x, means, prec_chol, covariance_type: str, formulation: Formulation | None = None):
    r""":math:`\lVert (x_n - m_k) U_k \rVert^2`, shape ``(k, n)``. The quadratic form is not
    expanded here (see :mod:`emjax.components.gaussian_expanded` for the guarded expanded form),
    so its rounding error grows like :math:`1/\sigma_k`, not :math:`1/\sigma_k^2`:
    full/tied as :math:`x U_k - m_k U_k` for all ``k`` in one matrix product (elementwise from
    the differences for ``d <= SMALL_D`` where ``formulation.one_pass``),
    diag/spherical from the differences :math:`x_d - m_{kd}` (:func:`diagonal_mahalanobis`, one
    component at a time as ``formulation.per_component`` says).
    """
    formulation, kind = formulation or Formulation(), lookup(covariance_type)
    if kind.matrix and x.shape[-1] <= SMALL_D and formulation.one_pass:
        return _small_d_mahalanobis(x, means, prec_chol)
    if kind.matrix:
        if not kind.shared:
            y = jnp.einsum("kde,nd->ken", prec_chol, x, precision=EXACT) - jnp.einsum(
                "kd,kde->ke", means, prec_chol, precision=EXACT)[:, :, None]
        else:  # x U once for all k, rows by features: XLA CPU (jaxlib 0.10) fused the
            # transposed product U^T x^T into its reduction wrongly (emjax.core.xla_options)
            y = _mm(x, prec_chol)[None] - _mm(means, prec_chol)[:, None, :]
            return jnp.sum(jnp.square(y), axis=2)
        return sum_of_squares(y, axis=1)
    return diagonal_mahalanobis(x, means, prec_chol, covariance_type, formulation.per_component)


def diagonal_mahalanobis(x, means, prec_chol, covariance_type: str, per_component=None):
    r""":math:`\sum_d p_{kd} (x_{nd} - m_{kd})^2` for diag/spherical precisions
    :math:`p_k = U_k^2`, shape ``(k, n)``.

    Each term is computed from its difference, so the rounding error is a few ulps of the
    result, however tight the component and however far from the origin; the expanded form
    :math:`x^2 p - 2 x m p + m^2 p` would leave errors of order :math:`\epsilon\, p\, (x^2 + m^2)`.
    With ``per_component`` (the default on CPU, :func:`per_component_on_this_backend`) one
    component at a time: the squared differences of the rows, ``(n, d)`` (in cache for a chunk of
    rows), times the component's precisions, a matrix-vector product. On CPU this runs on one core
    and still beats the fused ``(n, k, d)`` form on two (W3, 100,000 x 64, K = 32, 512-row chunks:
    64 against 82 ms per E-step with statistics, 64 against 106 CPU-ms;
    ``benchmarks/probes/bounds.py --w3-differences``). Otherwise (accelerators) all components at once
    from the ``(k, n, d)`` differences: ``K`` small kernels per chunk cost a GPU 2.5x (W3, H200).
    """
    precision = jnp.square(lookup(covariance_type).per_feature(prec_chol))
    precision = jnp.broadcast_to(precision, means.shape)
    if per_component is None:
        per_component = per_component_on_this_backend()
    if per_component:
        return jax.lax.map(lambda mp: _mm(jnp.square(x - mp[0]), mp[1]), (means, precision))
    return jnp.einsum("knd,kd->kn", jnp.square(x[None] - means[:, None]), precision, precision=EXACT)


def per_component_on_this_backend() -> bool:
    """Whether the exact diag/spherical forms go one component at a time (``lax.map``): on a CPU,
    where one component's ``(chunk, d)`` squares stay in cache; not on accelerators."""
    return on_cpu()


def _columns_minus_means(x, means):
    """``[x[:, c] - means[:, c]]`` over features ``c``: ``d`` arrays ``(k, n)``."""
    return [x[:, c][None, :] - means[:, c, None] for c in range(x.shape[-1])]


def _small_d_mahalanobis(x, means, prec_chol):
    r"""Full/tied :func:`mahalanobis` for ``d <= SMALL_D``, elementwise on ``(k, n)`` arrays:
    :math:`\sum_e \big(\sum_c (x_{nc} - m_{kc}) U_{k,ce}\big)^2`. Products with a contraction of
    2-4 features would be tiny ``dot_general`` calls; written out, XLA fuses the differences,
    whitening and squares with the log-sum-exp and statistics that follow."""
    u = jnp.broadcast_to(prec_chol, means.shape[:1] + prec_chol.shape[-2:])  # tied: one U for all k
    diff = _columns_minus_means(x, means)
    d = len(diff)
    return sum(jnp.square(sum(diff[c] * u[:, c, e, None] for c in range(d))) for e in range(d))


def sum_of_squares(y, axis: int):
    """``sum(y**2, axis)``; up to ``SMALL_D`` terms as explicit adds (XLA's CPU reduction over a
    dimension of 2-4 elements runs at a fraction of the speed of elementwise adds)."""
    if y.shape[axis] > SMALL_D:
        return jnp.sum(y * y, axis=axis)
    return sum(jnp.square(part) for part in jnp.unstack(y, axis=axis))


def sufficient_stats(x, resp, ref, covariance_type: str, formulation: Formulation | None = None):
    r"""``(N, s, S)`` for responsibilities ``resp`` ``(k, n)``: weighted counts ``(k,)``, sums
    ``(k, d)`` and second moments about ``ref``: ``(k, d, d)`` for full, ``(d, d)`` (summed over
    components) for tied and ``(k, d)`` (diagonals) for diag and spherical.

    Full and tied second moments :math:`S_{k,ce} = \sum_n r_{kn} (x_{nc} - a_{kc})(x_{ne} - a_{ke})`
    come from differences (exact for components far tighter than the data). Up to ``SMALL_D``
    features each of the :math:`d(d+1)/2` distinct entries is its own length-``n`` dot product of
    ``(k, n)`` rows: under ``vmap`` over many restarts or datasets that is a few long reductions,
    where the ``(k, d, n) x (k, n, d)`` batched product would be thousands of tiny ``dot_general``
    calls dominated by per-call overhead (W5, D=2, K=3 over 2,000 datasets: a third less CPU
    per EM iteration this way). Where ``formulation.one_pass`` (a plan's own program on a CPU,
    :mod:`emjax.core.plan`), full/tied with ``d <= SMALL_D`` take all ``1 + d + d(d+1)/2`` sums in one
    fused pass over the rows instead. Diag and spherical moments come from squared differences,
    one component at a time or all at once as ``formulation.per_component`` says (see
    :func:`diagonal_mahalanobis`).
    """
    d = x.shape[-1]
    formulation, kind = formulation or Formulation(), lookup(covariance_type)
    if kind.matrix and d <= SMALL_D and formulation.one_pass:
        return _one_pass_small_d_stats(x, resp, ref, covariance_type)
    counts = jnp.sum(resp, axis=1)
    sums = _mm(resp, x)
    if kind.matrix and d <= SMALL_D:
        diff = _columns_minus_means(x, ref)  # d arrays (k, n)
        upper = {(c, e): jnp.einsum("kn,kn->k", resp * diff[c], diff[e], precision=EXACT)
                 for c in range(d) for e in range(c, d)}
        second = symmetric_from_upper(upper, d)
    elif kind.matrix:
        diff = x.T[None] - ref[:, :, None]  # (k, d, n)
        second = jnp.einsum("kdn,ken->kde", diff * resp[:, None, :], diff, precision=EXACT)
    elif formulation.components_one_at_a_time():
        # From differences (a matrix-vector product per component): exact for features nearly
        # constant within a component, where the expanded form sum r x^2 - 2 a sum r x + N a^2
        # leaves float32 rounding of ~eps N a^2 that swamps the variance.
        second = jax.lax.map(lambda ra: _mm(ra[0], jnp.square(x - ra[1])), (resp, ref))
    else:
        second = jnp.einsum("kn,knd->kd", resp, jnp.square(x[None] - ref[:, None]), precision=EXACT)
    if kind.shared:
        second = jnp.sum(second, axis=0)
    return counts, sums, second


def symmetric_from_upper(upper: dict, d: int):
    """``(..., d, d)`` symmetric matrices from their entries ``upper[c, e]`` for ``c <= e``."""
    return jnp.stack([jnp.stack([upper[min(c, e), max(c, e)] for e in range(d)], -1)
                      for c in range(d)], -2)


def _one_pass_small_d_stats(x, resp, ref, covariance_type: str):
    """:func:`sufficient_stats` for full/tied and ``d <= SMALL_D``: every count, sum and
    second-moment entry is an elementwise product summed along the rows."""
    d = x.shape[-1]
    diff = _columns_minus_means(x, ref)
    weighted = [resp * diff[c] for c in range(d)]
    pairs = [(c, e) for c in range(d) for e in range(c, d)]
    totals = row_sums([resp] + [resp * x[:, c][None, :] for c in range(d)]
                       + [weighted[c] * diff[e] for c, e in pairs])
    counts, sums = totals[0], jnp.stack(totals[1:d + 1], -1)
    upper = dict(zip(pairs, totals[d + 1:]))
    second = symmetric_from_upper(upper, d)
    if lookup(covariance_type).shared:
        second = jnp.sum(second, axis=0)
    return counts, sums, second


def scatter_about_means(counts, sums, second, ref, means, covariance_type: str):
    """Second moments about ``means`` from moments about ``ref`` (exact algebra, no cancellation
    beyond that of ``means - ref``, which is small near convergence)."""
    delta, kind = means - ref, lookup(covariance_type)
    centred = sums - counts[:, None] * ref
    if kind.matrix and not kind.shared:
        cross = delta[:, :, None] * centred[:, None, :]
        return second - cross - jnp.swapaxes(cross, 1, 2) + counts[:, None, None] * (
            delta[:, :, None] * delta[:, None, :])
    if kind.shared:
        cross = delta.T @ centred
        return second - cross - cross.T + (delta * counts[:, None]).T @ delta
    # diag/spherical moments come from expanded products: rounding can leave them slightly below
    # zero (a column that is nearly constant within a component), so clip as sufficient_stats does
    return jnp.maximum(second - 2 * delta * centred + counts[:, None] * delta * delta, 0)


def add_to_diagonal(cov, value, covariance_type: str):
    if lookup(covariance_type).matrix:
        return cov + value * jnp.eye(cov.shape[-1], dtype=cov.dtype)
    return cov + value


def cholesky_factor(cov, covariance_type: str):
    """``L`` with ``L L^T = cov`` per component, broadcast to ``(k, d, d)`` / ``(k, d)`` / ``(k,)``."""
    if lookup(covariance_type).matrix:
        return linalg.cholesky(cov)
    return jnp.sqrt(cov)


def n_covariance_parameters(covariance_type: str, k: int, d: int) -> int:
    """Free parameters of ``k`` covariances of ``d`` features (tied: one matrix)."""
    return lookup(covariance_type).n_parameters(k, d)


def affine_map(means, covariances, shift, scale, covariance_type: str):
    """``(means, covariances)`` of ``x' = (x - shift) / scale`` from those of ``x``."""
    return (means - shift) / scale, scale_covariance(covariances, scale, covariance_type)


def scale_covariance(cov, scale, covariance_type: str):
    """Covariance of ``x / scale`` from that of ``x`` (any covariance type's shape), divided by
    ``scale`` twice, never by its square, which leaves float32's range before the result does."""
    return lookup(covariance_type).scale(cov, scale)


def location_and_magnitude(weighted_sum, absolute_sum, count):
    """``(mean, magnitude)`` per feature from weighted sums of ``x`` and ``|x|`` and the weight
    they ran over. The magnitude is 1 unless the squares of values of the mean absolute size
    would leave the dtype's normal range (with a margin of 2**16 either side); then it is a power
    of two within a factor 4 of that size, taken from the exponents of the sums. Dividing by it
    is exact, so the rescaled values round as the raw ones would."""
    info = jnp.finfo(absolute_sum.dtype)
    _, exponent = jnp.frexp(jnp.where(absolute_sum > 0, absolute_sum, count))
    _, count_exponent = jnp.frexp(count)
    exponent = exponent - count_exponent
    safe = (2 * exponent > info.minexp + 16) & (2 * exponent < info.maxexp - 16)
    magnitude = jnp.ldexp(jnp.ones_like(absolute_sum), jnp.where(safe, 0, exponent))
    return weighted_sum / count, magnitude


def scale_from_moments(ratio, magnitude, common: bool = False):
    r"""Standard deviations :math:`s_j = m_j \sqrt{r_j}` from the variance in units of a
    magnitude, :math:`r_j = \operatorname{var}_j / m_j^2`, without forming :math:`m_j^2` (which
    overflows or underflows in float32 for data of magnitude beyond about :math:`10^{\pm 19}`).
    ``common``: one scale for all features, :math:`\sqrt{\operatorname{mean}_j s_j^2}`. A
    feature without variance gets 1."""
    if common:
        largest = jnp.max(magnitude)
        relative = magnitude / largest
        ratio = jnp.full_like(ratio, jnp.mean(relative * relative * ratio))
        magnitude = jnp.full_like(magnitude, largest)
    return jnp.where(ratio > 0, magnitude * jnp.sqrt(jnp.where(ratio > 0, ratio, 1)), 1)


#: Smallest eigenvalue of a full/tied covariance the prior must keep, in units of
#: ``n_features * eps`` of the dtype times the largest (see :func:`resolution_factor`).
RESOLUTION = 10.0


def resolution_factor(reg_covar, total, d: int):
    r"""Extra factor :math:`a \ge 1` of the standardising scale for a full/tied MAP fit.

    The prior's M-step gives :math:`\Sigma_k = (S_k + \psi I)/(N_k + c)`, whose smallest
    eigenvalue is at least :math:`\psi/(N_k + c)`, but :math:`S_k` is only known to the dtype's
    rounding, about :math:`d\,\epsilon\,\lambda_{max}(S_k)`: for collinear features in float32,
    :math:`\psi = 10^{-6}` is below it and the Cholesky factorisation fails. Dividing the
    standardised data by :math:`a` makes the same prior :math:`\psi a^2` in unit-variance terms,
    and :math:`a^2 = \max(1, R\, d\, \epsilon N / \psi)` (:data:`RESOLUTION` :math:`R`, total weight
    :math:`N \ge N_k`) keeps :math:`\lambda_{min} \ge R\,d\,\epsilon` for every component. It is
    1 in float64 unless :math:`N` exceeds ~1e8 / d. The prior stays a fixed, proper prior of the fit,
    so EM stays monotone."""
    eps = jnp.finfo(total.dtype).eps
    return jnp.sqrt(jnp.maximum(1, RESOLUTION * d * eps * total / reg_covar))


def standardize(x, weights, covariance_type: str, rescale: bool = True):
    """``(x', Affine, log_jacobian)``: rows ``x`` centred on their weighted mean and, when
    ``rescale``, divided by their weighted standard deviation per feature (one common scale for
    spherical; computed by :func:`scale_from_moments` about each feature's mean absolute value,
    so no raw value is squared); ``log_jacobian = -sum(log scale)`` per row."""
    total = jnp.sum(weights)
    shift, magnitude = location_and_magnitude(weights @ x, weights @ jnp.abs(x), total)
    centred = x - shift
    if rescale:
        relative = centred / magnitude
        ratio = (weights @ (relative * relative)) / total
        scale = scale_from_moments(ratio, magnitude, lookup(covariance_type).common_scale)
    else:
        scale = jnp.ones_like(shift)
    return centred / scale, Affine(shift, scale), -jnp.sum(jnp.log(scale))


def sample(key, means, covariances, labels, covariance_type: str):
    """One draw from component ``labels[n]`` per entry of ``labels`` ``(n,)``: ``(n, d)``."""
    means = jnp.asarray(means)
    z = jax.random.normal(key, labels.shape + means.shape[1:], means.dtype)
    chol = cholesky_factor(covariances, covariance_type)
    return means[labels] + lookup(covariance_type).noise(chol, z, labels)
