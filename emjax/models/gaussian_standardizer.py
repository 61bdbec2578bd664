r"""The standardisation of Gaussian mixtures: a shift and a scale per feature.

.. math::
    x' = (x - \text{shift}) / \text{scale}, \qquad
    \log\lvert\det \partial x' / \partial x\rvert = -\textstyle\sum_j \log \text{scale}_j

computed in two additive passes over the rows (the weighted mean, then the variance about it: exact
in float32), so streamed chunks, in-memory chunks and all rows at once give one transform. A
Gaussian mixture's parameters map through the same affine map (means shift and scale, covariances
scale on both sides).
"""
from __future__ import annotations

import dataclasses
import jax.numpy as jnp

from ..components import gaussian as g
from ..components import gaussian_missing as gm
from ..components.covariance_types import lookup
from ..core.standardizer import RowStandardizer


@dataclasses.dataclass(frozen=True)
class GaussianStandardizer(RowStandardizer):
    """Per-feature shift and scale for a :class:`~emjax.models.gaussian_mixture.GaussianMixture`.

    Args:
        covariance_type, reg_covar, missing: the mixture's settings.
        rescale: scale each feature to unit variance, the coordinates of the mixture's prior
            (``has_prior``); False (maximum likelihood, ``pseudo_count=0``): centre only.
        init_reads_rows: the model's ``init_reading(key, rows, weights, to_fit_units)`` maps only
            the rows it reads (so a start from raw rows copies nothing); False: standardise a
            copy first.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> s = emjax.GaussianMixture(1, "diag").standardizer()
        >>> x, w = jnp.array([[1.0], [3.0], [5.0]]), jnp.ones(3)
        >>> transform, _ = s.from_stats((s.stats(x, w, ()), s.stats(x, w, (s.stats(x, w, ()),))))
        >>> s.apply(x, transform).ravel().round(3).tolist()      # mean 3, standard deviation 1.633
        [-1.225, 0.0, 1.225]
    """

    covariance_type: str
    rescale: bool
    reg_covar: float
    missing: str
    init_reads_rows: bool = False

    def passes(self) -> int:
        return 2  # the weighted mean, then the variance about it (two-pass: exact in float32)

    def stats(self, x, weights, previous):
        """Pass 0: total weight, weighted sums and weighted absolute values; pass 1: weighted
        squares about the mean, in units of each feature's mean absolute value (so that no raw
        value is squared: float32 data of magnitude 1e20 or 1e-20 neither overflow nor underflow).

        With ``missing="marginalize"`` each feature's moments run over the rows where it is
        observed (pass 0 also sums the weight observed per feature), so chunks of streamed data
        with NaN add up to the in-memory transform.
        """
        observed = gm.observed(x) if self.missing == "marginalize" else None
        if not previous:
            if observed is None:
                return jnp.sum(weights), weights @ x, weights @ jnp.abs(x)
            x = jnp.where(observed, x, 0)
            return (jnp.sum(weights), weights @ x, weights @ jnp.abs(x),
                    weights @ observed.astype(x.dtype))
        total, weighted_sum, absolute_sum, *per_feature = previous[0]
        shift, magnitude = g.location_and_magnitude(weighted_sum, absolute_sum,
                                                    per_feature[0] if per_feature else total)
        centred = (x - shift) / magnitude
        if observed is not None:
            centred = jnp.where(observed, centred, 0)
        return weights @ (centred * centred)

    def from_stats(self, totals):
        """Shift and scale per feature; the log-Jacobian counts each row's observed features."""
        (total, weighted_sum, absolute_sum, *per_feature), squares = totals
        count = per_feature[0] if per_feature else total
        shift, magnitude = g.location_and_magnitude(weighted_sum, absolute_sum, count)
        scale = self._scale(squares / count, magnitude, shift, total)
        if per_feature:
            return g.Affine(shift, scale), -(count / total) @ jnp.log(scale)
        return g.Affine(shift, scale), -jnp.sum(jnp.log(scale))

    def apply(self, x, transform: g.Affine):
        return (x - transform.shift) / transform.scale  # NaN (missing) stays NaN

    def init_from_raw(self, model, key, x, weights, transform: g.Affine):
        """``model.init`` on standardised rows, standardising only the rows it reads."""
        if not self.init_reads_rows:
            return super().init_from_raw(model, key, x, weights, transform)
        return model.init_reading(key, x, weights, lambda rows: self.apply(rows, transform))

    def _scale(self, ratio, magnitude, shift, total):
        """Per-feature scale (ones without ``rescale``) from the variances ``magnitude**2 * ratio``
        (:func:`~emjax.components.gaussian.scale_from_moments`), for full/tied covariances
        enlarged by :func:`~emjax.components.gaussian.resolution_factor` of the ``total``
        weight, so that the prior keeps covariances positive definite at the dtype's resolution."""
        if not self.rescale:
            return jnp.ones_like(shift)
        kind = lookup(self.covariance_type)
        scale = g.scale_from_moments(ratio, magnitude, kind.common_scale)
        if kind.matrix and self.reg_covar > 0:
            scale = scale * g.resolution_factor(self.reg_covar, total, shift.shape[-1])
        return scale

    def _map_params(self, params, shift, scale):
        """Parameters of ``x' = (x - shift) / scale``'s mixture from those of ``x``'s."""
        means, cov = g.affine_map(params.means, params.covariances, shift, scale, self.covariance_type)
        return params._replace(means=means, covariances=cov)

    def params_to_standard(self, params, transform: g.Affine):
        return self._map_params(params, transform.shift, transform.scale)

    def params_from_standard(self, params, transform: g.Affine):
        return self._map_params(params, -transform.shift / transform.scale, 1 / transform.scale)
