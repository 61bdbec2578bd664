r"""A finite mixture of any emission family (:class:`~emjax.components.emission.Emission`),
written once: weights, responsibilities, EM, priors, starts and checks.

.. math::
    p(x \mid \theta) = \sum_{k=1}^K \pi_k \, p(x \mid \phi_k), \qquad
    r_{kn} = \frac{\pi_k \, p(x_n \mid \phi_k)}{\sum_j \pi_j \, p(x_n \mid \phi_j)} .

The E-step sums :math:`N_k = \sum_n w_n r_{kn}` and the emission's statistics of the weighted
responsibilities; the weights get a symmetric Dirichlet(1 + a) prior (``a = pseudo_count``), so
the M-step sets :math:`\pi_k = (N_k + a)/(N + Ka)` and the emission its own MAP update. The
monitored objective adds both log priors, so it never decreases.

Two starts: ``"emission"`` (the emission's ``init``, e.g. k-means++ seeds; equal weights) or
``"rows_and_mean"``: ``K`` rows drawn with probability proportional to their weight, and
component ``k``'s statistics those of seed row ``k`` plus the data's average row (one observation
each), so every component begins halfway between one data point and the overall mean (the
discrete mixtures' start; it needs an emission whose ``stats`` do not read its parameters).
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ..components import PSEUDO_COUNT, seeding
from ..components import discrete as dc
from ..components.emission import Emission
from ..components.responsibilities import weighted_responsibilities
from ..core.chunking import choose_chunk_size, chunked_sum
from ..core.model import Model
from ..core.standardizer import Standardizer
from ..core.tree import is_traced
from ..core.validation import (
    check_enough_rows, check_key, check_nonnegative_number, check_param_shape, check_positive_int,
    check_probabilities, checked_post_fit_data, require_method,
)

STARTS = ("emission", "rows_and_mean")


class MixtureParams(NamedTuple):
    """weights ``(k,)`` and the emission's parameters (its ``params_type``).

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.MixtureParams(jnp.array([0.5, 0.5]),
        ...                              emjax.PoissonEmissionParams(rates=jnp.array([[1.0], [10.0]])))
        >>> emjax.Mixture(2, emjax.PoissonEmission()).predict(params, jnp.array([[0], [12]])).tolist()
        [0, 1]
    """

    weights: jnp.ndarray
    emission: Any


class EmissionMixture(Model, abc.ABC):
    """Weights + one emission family: the whole mixture. Subclasses are frozen dataclasses with
    ``n_components`` and ``pseudo_count``; they give :attr:`emission_model`, ``params_type`` and
    ``start`` (one of ``STARTS``). Parameters are ``params_type(weights, *emission fields)`` (the
    named mixtures, :class:`emjax.GaussianMixture`) unless :meth:`pack`/:meth:`unpack` say
    otherwise (:class:`Mixture`). A subclass may score rows its own way
    (:meth:`component_log_density`) or replace the EM steps (``GaussianMixture`` does both)."""

    start = "emission"

    def __post_init__(self):
        check_positive_int(self.n_components, "n_components")
        check_nonnegative_number(self.pseudo_count, "pseudo_count")
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}; got {self.start!r}.")
        if not isinstance(self.emission_model, Emission):  # built here: its own checks run now
            raise TypeError(f"{type(self).__name__}.emission_model must be an emjax.Emission.")

    @property
    @abc.abstractmethod
    def emission_model(self) -> Emission:
        """The emission family of every component."""

    def pack(self, weights, emission):
        return self.params_type(weights, *emission)

    def unpack(self, params):
        """``(weights, emission parameters)``."""
        return params[0], self.emission_model.params_type(*params[1:])

    # ----------------------------------------------------------------- densities and inference
    def component_log_density(self, params, x):
        """:math:`\\log p(x_n \\mid \\phi_k)`, shape ``(k, n)``: the emission's ``log_density``
        (a subclass may score rows its own way: :class:`emjax.GaussianMixture` with NaNs)."""
        return self.emission_model.log_density(self.unpack(params)[1], x)

    def _weighted_log_density(self, params, x):
        return self.component_log_density(params, x) + jnp.log(params[0])[:, None]  # (k, n)

    def log_prob(self, params, x):
        """:math:`\\log p(x_n)`, shape ``(n,)``. Concrete ``x`` and ``params`` are checked as in
        :func:`emjax.fit` (this holds for :meth:`posterior` and :meth:`predict` too)."""
        x = checked_post_fit_data(self, params, x)
        return logsumexp(self._weighted_log_density(params, x), axis=0)

    def posterior(self, params, x):
        """Responsibilities :math:`p(z_n = k \\mid x_n)`, shape ``(n, k)``."""
        x = checked_post_fit_data(self, params, x)
        return jax.nn.softmax(self._weighted_log_density(params, x), axis=0).T

    def predict(self, params, x):
        """Most probable component per row, shape ``(n,)``."""
        x = checked_post_fit_data(self, params, x)
        return jnp.argmax(self._weighted_log_density(params, x), axis=0)

    def sample(self, key, params, n: int):
        """``(x, labels)``: ``n`` draws from the mixture and the component of each (the emission's
        ``sample``; a mixture whose emission has none refuses, naming it)."""
        require_method(self.emission_model, "sample", f"{type(self).__name__}.sample")
        if not is_traced(key, params):
            key = check_key(key)
            check_positive_int(n, "n")
            d = self.emission_model.n_features(self.unpack(params)[1])
            self.validate_params(params, np.empty((1, d)))
        weights, emission = self.unpack(params)
        label_key, noise_key = jax.random.split(key)
        labels = jax.random.categorical(label_key, jnp.log(weights), shape=(n,))
        return self.emission_model.sample(noise_key, emission, labels), labels

    def n_free_parameters(self, params) -> int:
        weights, emission = self.unpack(params)
        return (self.n_components - 1) + self.emission_model.n_free_parameters(emission)

    # ----------------------------------------------------------------- EM contract
    def e_step(self, params, x, weights):
        resp, loglik = weighted_responsibilities(self._weighted_log_density(params, x), weights)
        emission = self.unpack(params)[1]
        return (jnp.sum(resp, axis=1), self.emission_model.stats(emission, x, resp)), loglik

    def m_step(self, stats, params):
        counts, emission_stats = stats
        weights = dc.dirichlet_map(counts, self.pseudo_count)
        return self.pack(weights, self.emission_model.m_step(emission_stats, self.unpack(params)[1]))

    def log_prior(self, params):
        weights, emission = self.unpack(params)
        return dc.dirichlet_log_prior(weights, self.pseudo_count) + self.emission_model.log_prior(emission)

    def is_degenerate(self, params, active=None):
        """The emission's parameters left the family, or a component has weight 0 (among the
        ``active`` ones: ``(k,)`` bool, False for padding, :mod:`emjax.selection.padded_mixture`)."""
        weights, emission = self.unpack(params)
        empty = weights <= 0 if active is None else (weights <= 0) & active
        return self.emission_model.is_degenerate(emission) | jnp.any(empty)

    def init(self, key, x, weights):
        k, emission = self.n_components, self.emission_model
        equal = jnp.full((k,), 1 / k, weights.dtype)
        if self.start == "emission":
            return self.pack(equal, emission.init(key, x, weights, k))
        seeds = seeding.random_rows(key, x, weights, k)
        total = jnp.sum(weights)

        def average_row(rows, w):  # every component gets the data's mean row, total weight 1
            return emission.stats(None, rows, jnp.broadcast_to(w / total, (k, w.shape[0])))

        chunk = choose_chunk_size(weights.shape[0], self.work_per_row(x))
        mean_stats = chunked_sum(average_row, x, weights, chunk)
        seed_stats = emission.stats(None, seeds, jnp.eye(k, dtype=weights.dtype))
        stats = jax.tree_util.tree_map(jnp.add, seed_stats, mean_stats)
        return self.pack(equal, emission.m_step(stats, None))

    def standardizer(self) -> Standardizer | None:
        """The emission's standardisation of the rows (:class:`EmissionStandardizer`), if any."""
        return EmissionStandardizer(self) if self.emission_model.standardizes() else None

    # ----------------------------------------------------------------- host-side checks
    def validate(self, data):
        return self.emission_model.validate(data, "data")

    def validate_weights(self, weights):
        check_enough_rows(weights, self.n_components)

    def validate_params(self, params, data):
        names = self.params_type._fields
        if not isinstance(params, tuple) or len(params) != len(names):
            raise TypeError(f"params must be {self.params_type.__name__}{names}; got "
                            f"{type(params).__name__}.")
        k = self.n_components
        context = f"n_components={k} and data of shape {tuple(data.shape)}"
        check_param_shape(params[0], (k,), f"params.{names[0]}", context)
        prefix = "params.emission" if self.params_type is MixtureParams else "params"
        self.emission_model.validate_params(self.unpack(params)[1], k, data.shape[1], prefix, context)
        check_probabilities(params[0], f"params.{names[0]}")

    def work_per_row(self, data) -> int:
        return 4 * self.n_components + self.emission_model.work_per_row(self.n_components, data.shape[1])


@dataclasses.dataclass(frozen=True)
class Mixture(EmissionMixture):
    """A mixture of ``n_components`` components of one emission family (module docstring).

    Args:
        n_components: number of components ``K``.
        emission: an :class:`~emjax.components.emission.Emission` (e.g. ``emjax.PoissonEmission()``),
            with its own prior strength.
        pseudo_count: ``a`` of the Dirichlet(1 + a) prior on the weights (0: maximum likelihood).
        start: "emission" (the emission's own start) or "rows_and_mean".

    Parameters are :class:`MixtureParams` ``(weights, emission)``.

    Examples:
        >>> import jax, numpy as np, emjax
        >>> rng = np.random.default_rng(0)
        >>> counts = np.concatenate([rng.poisson(2.0, (300, 1)), rng.poisson(20.0, (300, 1))])
        >>> model = emjax.Mixture(3, emjax.PoissonEmission())
        >>> res = emjax.fit(model, counts, jax.random.key(0), n_init=4)
        >>> res.params.weights.shape, res.params.emission.rates.shape
        ((3,), (3, 1))
    """

    n_components: int
    emission: Emission
    pseudo_count: float = PSEUDO_COUNT
    start: str = "emission"
    params_type = MixtureParams

    def __post_init__(self):
        if not isinstance(self.emission, Emission):
            raise TypeError("emission must be an emjax.Emission (e.g. emjax.PoissonEmission()); got "
                            f"{type(self.emission).__name__}.")
        super().__post_init__()

    @property
    def emission_model(self) -> Emission:
        return self.emission

    def pack(self, weights, emission):
        return MixtureParams(weights, emission)

    def unpack(self, params):
        return params[0], self.emission.params_type(*params[1])

    def with_formulation(self, formulation) -> "Mixture":
        emission = self.emission.with_formulation(formulation)
        return self if emission == self.emission else dataclasses.replace(self, emission=emission)


@dataclasses.dataclass(frozen=True)
class EmissionStandardizer(Standardizer):
    """The emission's ``standardize`` over all rows; parameters mapped through its
    ``to_standard``/``from_standard``."""

    mixture: Any

    def standardize(self, data, weights):
        return self.mixture.emission_model.standardize(data, weights)

    def params_to_standard(self, params, transform):
        weights, emission = self.mixture.unpack(params)
        return self.mixture.pack(weights, self.mixture.emission_model.to_standard(emission, transform))

    def params_from_standard(self, params, transform):
        weights, emission = self.mixture.unpack(params)
        return self.mixture.pack(weights, self.mixture.emission_model.from_standard(emission, transform))
