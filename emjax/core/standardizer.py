r"""Standardisation: the opt-in object that maps a model's data and parameters to the coordinates
its fit runs in.

A model that fits in standardised coordinates returns one of these from
:meth:`emjax.core.model.Model.standardizer` (``None``, the default, fits in the data's units). The
engine composes it: it standardises the data (or, for a :class:`RowStandardizer`, each chunk as it
reads it), maps given parameters in, and maps the result out, adding ``log_jacobian`` to the
objective so that it is reported in the user's units:

.. math::
    x' = T(x), \qquad \log p(x) = \log p'(T(x)) + \log\lvert\det \partial T / \partial x\rvert .

Two forms:

- :class:`Standardizer` needs the data whole (``standardize``), e.g. a transform that depends on
  how rows group into sequences; in-memory fits then iterate on a standardised copy.
- :class:`RowStandardizer` computes the transform from additive passes over the rows and maps each
  row on its own, so streamed data (:func:`emjax.stream_fit`, :class:`emjax.OnlineEM`) get exactly
  the transform of in-memory data, and in-memory fits never copy the data
  (:mod:`emjax.engine.raw_rows`).
"""
from __future__ import annotations

import abc
from typing import Any

import jax.numpy as jnp

from .tree import float_dtype

PyTree = Any


class Standardizer(abc.ABC):
    """Whole-data standardisation: the transform, and parameters to and from its coordinates.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> class Centre(emjax.Standardizer):                 # fit 1-D means about the data mean
        ...     def standardize(self, x, weights):
        ...         shift = weights @ x / weights.sum()
        ...         return x - shift, shift, jnp.zeros(())   # a shift has log-Jacobian 0
        ...     def params_to_standard(self, means, shift):
        ...         return means - shift
        ...     def params_from_standard(self, means, shift):
        ...         return means + shift
        >>> x_std, shift, _ = Centre().standardize(jnp.array([1.0, 3.0]), jnp.ones(2))
        >>> x_std.tolist(), Centre().params_from_standard(jnp.array([0.5]), shift).tolist()
        ([-1.0, 1.0], [2.5])
    """

    @abc.abstractmethod
    def standardize(self, data, weights):
        """``(data', transform, log_jacobian)``: the data in the fit's coordinates, the transform
        (a pytree) and the per-row log-Jacobian added to the objective."""

    @abc.abstractmethod
    def params_to_standard(self, params: PyTree, transform) -> PyTree:
        """``params`` of the data's model as parameters of the standardised data's model."""

    @abc.abstractmethod
    def params_from_standard(self, params: PyTree, transform) -> PyTree:
        """Inverse of :meth:`params_to_standard`."""


class RowStandardizer(Standardizer):
    """Standardisation written as additive passes over the rows.

    Pass ``i`` sums :meth:`stats` over rows given the totals of passes ``0..i-1`` (e.g. a weighted
    mean, then the variance about it); :meth:`from_stats` turns the totals into the transform and
    :meth:`apply` maps rows independently, so any chunking of the rows gives the same transform.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> s = emjax.GaussianMixture(2, "diag").standardizer()
        >>> x, w = jnp.array([[1.0], [3.0]]), jnp.ones(2)
        >>> x_std, transform, _ = s.standardize(x, w)
        >>> x_std.ravel().tolist(), transform.shift.tolist()
        ([-1.0, 1.0], [2.0])
    """

    @abc.abstractmethod
    def passes(self) -> int:
        """Passes over the rows that the transform needs."""

    @abc.abstractmethod
    def stats(self, data, weights, previous: tuple) -> PyTree:
        """Additive statistics (sums over rows) of pass ``len(previous)`` given earlier passes' totals."""

    @abc.abstractmethod
    def from_stats(self, totals: tuple):
        """``(transform, log_jacobian)`` from every pass's summed statistics."""

    @abc.abstractmethod
    def apply(self, data, transform):
        """Rows in the coordinates the fit runs in (each row mapped on its own)."""

    def init_from_raw(self, model, key, data, weights, transform) -> PyTree:
        """``model.init`` on ``apply(data, transform)`` for ``data`` in the user's units.

        This default standardises every row at once (a copy of the data); a standardiser whose
        model can start from rows mapped as it reads them overrides it.
        """
        return model.init(key, self.apply(data, transform), weights)

    def standardize(self, data, weights):
        """Every pass over all rows at once, then :meth:`apply`."""
        totals = pass_totals(self, lambda previous: self.stats(data, weights, previous))
        if not totals:
            return data, None, jnp.zeros((), float_dtype(data))
        transform, log_jacobian = self.from_stats(totals)
        return self.apply(data, transform), transform, log_jacobian


def pass_totals(standardizer: RowStandardizer, sum_over_rows) -> tuple:
    r"""Every pass's totals, in order: pass :math:`i` is ``sum_over_rows(previous)``, the sum of
    ``standardizer.stats(x, w, previous)`` over all rows (in whatever chunks, on whatever devices
    or hosts) given ``previous``, the totals of passes :math:`0, \dots, i-1`.

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> from emjax.core.standardizer import pass_totals
        >>> s = emjax.GaussianMixture(2, "diag").standardizer()
        >>> x, w = jnp.array([[1.0], [3.0]]), jnp.ones(2)
        >>> totals = pass_totals(s, lambda previous: s.stats(x, w, previous))
        >>> len(totals) == s.passes()
        True
    """
    totals = ()
    for _ in range(standardizer.passes()):
        totals += (sum_over_rows(totals),)
    return totals


class Identity(RowStandardizer):
    """No standardisation: the fit runs in the data's units (what the engine uses for a model
    whose :meth:`~emjax.core.model.Model.standardizer` is ``None``)."""

    def passes(self) -> int:
        return 0

    def stats(self, data, weights, previous):
        raise AssertionError("Identity has no passes")

    def from_stats(self, totals):
        return None, jnp.zeros(())

    def apply(self, data, transform):
        return data

    def params_to_standard(self, params, transform):
        return params

    def params_from_standard(self, params, transform):
        return params


def standardizer_of(model) -> Standardizer:
    """``model.standardizer()``, or :class:`Identity` when the model fits in the data's units."""
    standardizer = model.standardizer()
    if standardizer is None:
        return Identity()
    if not isinstance(standardizer, Standardizer):
        raise TypeError(f"{type(model).__name__}.standardizer() must return None or an "
                        "emjax.core.standardizer.Standardizer (or RowStandardizer); got "
                        f"{type(standardizer).__name__}.")
    return standardizer
