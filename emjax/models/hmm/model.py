r"""Hidden Markov model: Baum-Welch as one more model under the EM engine.

.. math::
    p(x_{0:t}, z_{0:t}) = \pi_{z_0} \, b_{z_0}(x_0) \prod_{\tau=1}^{t-1} A_{z_{\tau-1} z_\tau}
        \, b_{z_\tau}(x_\tau)

with initial distribution :math:`\pi` ``(k,)``, transition matrix :math:`A` ``(k, k)`` (rows sum
to 1) and emission densities :math:`b_j` from :mod:`emjax.components.emission`.

Data are :class:`Sequences` ``(x (s, t, d), lengths (s,))``: the leading axis is sequences, so the
engine's chunking, weights (one per sequence) and padding work unchanged; a single ``(t, d)``
array is one sequence. The E-step (forward-backward, :mod:`emjax.inference.hmm`) sums over
sequences :math:`w_s \gamma_{s,0}` (initial counts), :math:`w_s \sum_\tau \xi_{s,\tau}`
(transition counts) and the emission statistics of :math:`w_s \gamma_{s,\tau}`.

With ``pseudo_count = c > 0`` (default ``PSEUDO_COUNT``), :math:`\pi` and every row of :math:`A`
get a Dirichlet(1 + c) prior on their nonzero entries and the emissions their conjugate prior of
the same strength (Gaussian: the mixture's Wishart prior), so the M-step is
:math:`\pi_j \propto n_j + c [\pi_j > 0]`, :math:`A_{ij} \propto \xi_{ij} + c [A_{ij} > 0]`:
an entry that is exactly zero stays exactly zero (left-to-right structures), and the monitored
objective (log-likelihood + log prior) never decreases. ``pseudo_count=0`` is maximum
likelihood (hmmlearn's update with its priors off), for parity tests. An emission given as an
instance (``HMM(3, emission=emjax.PoissonEmission())``) brings its own prior; ``pseudo_count``
then sets the chain's.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ...components import PSEUDO_COUNT
from ...components.emission import Emission
from ...inference import hmm as inference
from ...inference import hmm_scaled
from ...core.model import Model
from ...core.plan import Formulation
from ...core.regularization import resolve_pseudo_count
from ...core.standardizer import Standardizer
from ...components.emissions_counts import PoissonEmission
from ...components.emissions_discrete import BernoulliEmission, CategoricalEmission
from ...components.emissions_gaussian import GaussianEmission
from ...core.tree import is_traced
from ...core.validation import (
    check_key, check_nonnegative_number, check_positive_int, check_probabilities,
    checked_post_fit_data, is_positive_int, require_method,
)
from .sequences import Sequences, as_sequences, flat_steps, host_sequences, time_major_steps

INIT_METHODS = ("kmeans++", "random_from_data")
PARTS = ("initial", "transitions", "emissions")
EMISSIONS = ("gaussian", "categorical", "poisson", "bernoulli")
#: The fields that configure an emission named by a string (an instance carries its own).
EMISSION_OPTIONS = ("covariance_type", "n_categories", "init_params", "reg_covar", "collapse_guard")


class HMMParams(NamedTuple):
    """initial ``(k,)``, transitions ``(k, k)`` (row = from), emission parameters.

    Examples:
        >>> import jax, jax.numpy as jnp, emjax
        >>> truth = emjax.HMMParams(
        ...     initial=jnp.array([0.5, 0.5]), transitions=jnp.array([[0.95, 0.05], [0.05, 0.95]]),
        ...     emission=emjax.GaussianEmissionParams(means=jnp.array([[-2.0], [2.0]]),
        ...                                           covariances=jnp.full((2, 1), 0.25)))
        >>> model = emjax.GaussianHMM(2, covariance_type="diag")
        >>> x, states = model.sample(jax.random.key(0), truth, n_steps=200, n_sequences=3)
        >>> model.posterior(truth, x).shape                    # state marginals (s, t, k)
        (3, 200, 2)
    """

    initial: jnp.ndarray
    transitions: jnp.ndarray
    emission: Any


@dataclasses.dataclass(frozen=True)
class HMM(Model):
    """A hidden Markov model with ``n_states`` states.

    Args:
        n_states: number of hidden states ``k``.
        emission: emission family: "gaussian" (data ``(..., t, d)`` floats), "categorical"
            (integer codes ``(..., t, f)``, feature ``j`` in ``0..n_categories[j]-1``, -1 missing),
            "poisson" (counts ``(..., t, d)``) or "bernoulli" (0/1 values ``(..., t, d)``), configured
            by the fields below; or an :class:`~emjax.components.emission.Emission` instance
            (e.g. ``emjax.MultinomialEmission()``), which carries its own options (then the
            emission fields below must keep their defaults).
        covariance_type: Gaussian emissions: "full", "tied", "diag" or "spherical".
        n_categories: categorical emissions: number of symbols of each feature.
        init_params: emission start of a restart: "kmeans++" (k-means++ seeds over all steps,
            then one M-step from the nearest-seed assignment) or "random_from_data"; the initial
            distribution and transition rows are drawn from a flat Dirichlet.
        reg_covar: Gaussian prior scale (standardised units) with ``pseudo_count > 0``; with
            ``pseudo_count=0`` the absolute value added to covariance diagonals.
        pseudo_count: ``c`` of the priors (module docstring; MAP-EM, monotone); 0: maximum
            likelihood. ``regularization="prior"``/``"none"`` is the deprecated spelling.
        fixed: parts held at their starting values: any of "initial", "transitions", "emissions".
        parallel: forward-backward with ``lax.associative_scan`` (``O(log t)`` depth) instead of
            ``lax.scan``; same results.
        scaled: Baum-Welch E-step with the batched scaled-probability forward-backward
            (:mod:`emjax.inference.hmm_scaled`, fast, default) rather than the log-space one per
            sequence (``False``: exact even where one step's likelihood ratio between states
            underflows the dtype). ``parallel=True`` always uses log space.
        collapse_guard: Gaussian emissions: a state fitted to fewer than d + 1 steps or to a
            subspace of the data ends its restart DEGENERATE (:mod:`emjax.components.collapse`).
            ``None`` (default): on when ``pseudo_count > 0``.

    Examples:
        >>> import jax, jax.numpy as jnp, emjax
        >>> truth = emjax.HMMParams(
        ...     initial=jnp.array([0.5, 0.5]), transitions=jnp.array([[0.95, 0.05], [0.05, 0.95]]),
        ...     emission=emjax.GaussianEmissionParams(means=jnp.array([[-2.0], [2.0]]),
        ...                                           covariances=jnp.full((2, 1), 0.25)))
        >>> model = emjax.GaussianHMM(2, covariance_type="diag")
        >>> x, states = model.sample(jax.random.key(0), truth, n_steps=200, n_sequences=3)
        >>> x.shape, states.shape                              # (sequences, steps, features)
        ((3, 200, 1), (3, 200))
        >>> res = emjax.fit(model, x, jax.random.key(1), n_init=2)
        >>> bool((model.predict(res.params, x) == states).mean() > 0.95    # up to label switching
        ...      or (model.predict(res.params, x) != states).mean() > 0.95)
        True
    """

    n_states: int
    emission: str | Emission = "gaussian"
    covariance_type: str = "full"
    n_categories: tuple = ()
    init_params: str = "kmeans++"
    reg_covar: float = 1e-6
    pseudo_count: float = PSEUDO_COUNT
    fixed: tuple = ()
    parallel: bool = False
    scaled: bool = True
    collapse_guard: bool | None = None
    #: deprecated spelling of ``pseudo_count`` (resolved into it, then None)
    regularization: str | None = dataclasses.field(default=None, repr=False)
    #: the engine's E-step choices (:meth:`with_formulation`; not a user setting)
    formulation: Formulation = dataclasses.field(default=Formulation(), repr=False)

    def __post_init__(self):
        check_positive_int(self.n_states, "n_states")
        object.__setattr__(self, "pseudo_count", resolve_pseudo_count(
            self.regularization, self.pseudo_count, default=PSEUDO_COUNT, model=type(self).__name__,
            old_values=("prior", "none")))
        object.__setattr__(self, "regularization", None)
        if not isinstance(self.emission, Emission) and self.emission not in EMISSIONS:
            raise ValueError(f"emission must be one of {EMISSIONS} or an emjax.Emission instance; "
                             f"got {self.emission!r}.")
        for name, allowed in (("init_params", INIT_METHODS),
                              ("covariance_type", ("full", "tied", "diag", "spherical"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}.")
        fixed = (self.fixed,) if isinstance(self.fixed, str) else tuple(self.fixed)
        unknown = [p for p in fixed if p not in PARTS]
        if unknown:
            raise ValueError(f"fixed may name only {PARTS}; got {unknown[0]!r}.")
        object.__setattr__(self, "fixed", fixed)
        categories = self.n_categories
        categories = (categories,) if isinstance(categories, numbers.Integral) else tuple(categories)
        if self.emission == "categorical" and (
                not categories or not all(is_positive_int(c) for c in categories)):
            raise ValueError("categorical emissions need n_categories, a positive integer per feature; "
                             f"got {self.n_categories!r}.")
        object.__setattr__(self, "n_categories", categories)
        check_nonnegative_number(self.reg_covar, "reg_covar")
        if self.collapse_guard not in (None, True, False):
            raise ValueError(f"collapse_guard must be None, True or False; got {self.collapse_guard!r}.")
        if isinstance(self.emission, Emission):
            self._check_no_emission_options()

    def _check_no_emission_options(self) -> None:
        """An emission instance carries its options: the HMM's emission fields keep their defaults."""
        defaults = {f.name: f.default for f in dataclasses.fields(HMM) if f.name in EMISSION_OPTIONS}
        for name, default in defaults.items():
            if getattr(self, name) != default:
                raise ValueError(
                    f"HMM(emission={type(self.emission).__name__}(...)) takes its options from the "
                    f"emission instance; got {name}={getattr(self, name)!r} beside it. Set it on the "
                    f"emission instead, or pass emission as a string.")

    def with_formulation(self, formulation: Formulation) -> "HMM":
        return dataclasses.replace(self, formulation=formulation)

    @property
    def emission_model(self) -> Emission:
        """The emission of every state (an instance passed as ``emission``, or the one its string
        and the emission fields name), computing as :attr:`formulation` says."""
        if isinstance(self.emission, Emission):
            return self.emission.with_formulation(self.formulation)
        c = self.pseudo_count
        if self.emission == "gaussian":
            return GaussianEmission(self.covariance_type, self.reg_covar, c,
                                    self.init_params, collapse_guard=self.collapse_guard,
                                    formulation=self.formulation)
        if self.emission == "categorical":
            return CategoricalEmission(self.n_categories, c)
        return {"poisson": PoissonEmission, "bernoulli": BernoulliEmission}[self.emission](c)

    # ----------------------------------------------------------------- inference
    def _log_emissions(self, params: HMMParams, data: Sequences):
        """``(s, t, k)`` emission log-densities (padded steps hold finite garbage)."""
        s, t = data.x.shape[:2]
        flat, _ = flat_steps(data, jnp.ones((s,), data.x.dtype))
        log_emit = self.emission_model.log_density(params.emission, flat)  # (k, s t)
        return flat, jnp.moveaxis(log_emit.reshape(-1, s, t), 0, -1)

    def _per_sequence(self, fn, params: HMMParams, data):
        """``fn`` of every sequence; concrete ``data`` and ``params`` are checked as in
        :func:`emjax.fit` first."""
        data = as_sequences(checked_post_fit_data(self, params, data))
        _, log_emit = self._log_emissions(params, data)
        log_init, log_trans = inference.safe_log(params.initial), inference.safe_log(params.transitions)
        return jax.vmap(lambda e, n: fn(log_init, log_trans, e, n))(log_emit, data.lengths)

    def log_prob(self, params: HMMParams, data):
        """:math:`\\log p(x_s)` per sequence, ``(s,)``."""
        return self._per_sequence(lambda *a: inference.log_likelihood(*a, parallel=self.parallel),
                                  params, data)

    def posterior(self, params: HMMParams, data):
        """State marginals :math:`p(z_{s\\tau} = j \\mid x_s)`, ``(s, t, k)``, 0 at padded steps."""
        return self._per_sequence(lambda *a: inference.posterior(*a, parallel=self.parallel).marginals,
                                  params, data)

    def predict(self, params: HMMParams, data):
        """Viterbi path per sequence, ``(s, t)`` int32, -1 at padded steps."""
        return self._per_sequence(inference.viterbi, params, data)

    def sample(self, key, params: HMMParams, n_steps: int, n_sequences: int = 1):
        """``(x (s, t, ...), states (s, t))``: ``n_sequences`` sequences of ``n_steps`` steps."""
        require_method(self.emission_model, "sample", "HMM.sample")
        if not is_traced(key, params):
            key = check_key(key)
            check_positive_int(n_steps, "n_steps")
            check_positive_int(n_sequences, "n_sequences")
            self._check_params_alone(params)
        state_key, emission_key = jax.random.split(key)
        keys = jax.random.split(state_key, n_sequences)
        states = jax.vmap(lambda k: inference.sample_states(k, params.initial, params.transitions,
                                                            n_steps))(keys)
        x = self.emission_model.sample(emission_key, params.emission, states.reshape(-1))
        return x.reshape(states.shape + x.shape[1:]), states

    def n_free_parameters(self, params: HMMParams) -> int:
        """Free parameters not held fixed; hard zeros in initial/transitions are not free."""
        count = 0
        if "initial" not in self.fixed:
            count += int(np.count_nonzero(np.asarray(params.initial))) - 1
        if "transitions" not in self.fixed:
            trans = np.asarray(params.transitions)
            count += int(np.sum(np.count_nonzero(trans, axis=1) - 1))
        if "emissions" not in self.fixed:
            count += self.emission_model.n_free_parameters(params.emission)
        return count

    # ----------------------------------------------------------------- EM contract
    def e_step(self, params: HMMParams, data: Sequences, weights):
        if self.parallel or not self.scaled:
            return self._log_space_e_step(params, data, weights)
        s, t = data.x.shape[:2]
        k = self.n_states
        # (t s, ...), materialised once: fused into the statistics it would be re-read per state
        flat = jax.lax.optimization_barrier(time_major_steps(data))
        log_emit = jax.lax.optimization_barrier(  # once, not per consumer
            self.emission_model.log_density_steps(params.emission, flat).reshape(t, s, k))
        keep = weights > 0
        w = jnp.where(keep, weights, 0)
        post = hmm_scaled.batch_posterior(params.initial, params.transitions, log_emit, data.lengths, w)
        resp = post.marginals * w[None, :, None]
        emission = self.emission_model.stats_steps(params.emission, flat, resp)
        loglik = jnp.sum(jnp.where(keep, w * post.log_likelihood, 0))
        return (w @ post.marginals[0], post.transitions, emission), loglik

    def _log_space_e_step(self, params: HMMParams, data: Sequences, weights):
        flat, log_emit = self._log_emissions(params, data)
        log_init, log_trans = inference.safe_log(params.initial), inference.safe_log(params.transitions)
        post = jax.vmap(lambda e, n: inference.posterior(log_init, log_trans, e, n, self.parallel))(
            log_emit, data.lengths)
        keep = weights > 0
        w = jnp.where(keep, weights, 0)
        initial = w @ post.marginals[:, 0]
        transitions = jnp.einsum("s,sij->ij", w, post.transitions)
        resp = (post.marginals * w[:, None, None]).reshape(-1, self.n_states).T  # (k, s t)
        emission = self.emission_model.stats(params.emission, flat, resp)
        loglik = jnp.sum(jnp.where(keep, w * post.log_likelihood, 0))
        return (initial, transitions, emission), loglik

    def m_step(self, stats, params: HMMParams) -> HMMParams:
        initial_counts, transition_counts, emission_stats = stats
        c = self.pseudo_count
        initial = params.initial if "initial" in self.fixed else _normalise_rows(
            initial_counts, params.initial, c)
        transitions = params.transitions if "transitions" in self.fixed else _normalise_rows(
            transition_counts, params.transitions, c)
        emission = params.emission if "emissions" in self.fixed else self.emission_model.m_step(
            emission_stats, params.emission)
        return HMMParams(initial, transitions, emission)

    def log_prior(self, params: HMMParams):
        emission = self.emission_model.log_prior(params.emission)
        if self.pseudo_count == 0:
            return emission
        dirichlet = lambda p: self.pseudo_count * jnp.sum(jnp.where(p > 0, inference.safe_log(p), 0))
        return dirichlet(params.initial) + dirichlet(params.transitions) + emission

    def is_degenerate(self, params: HMMParams):
        return self.emission_model.is_degenerate(params.emission)

    def init(self, key, data: Sequences, weights) -> HMMParams:
        k = self.n_states
        emission_key, dirichlet_key = jax.random.split(key)
        flat, step_weights = flat_steps(data, weights)
        # normalised Exponential(1) draws are Dirichlet(1, ..., 1): row 0 the initial
        # distribution, rows 1..k the transition rows (one draw: less code to compile)
        draws = jax.random.exponential(dirichlet_key, (k + 1, k), step_weights.dtype)
        rows = draws / jnp.sum(draws, axis=-1, keepdims=True)
        return HMMParams(rows[0], rows[1:], self.emission_model.init(emission_key, flat, step_weights, k))

    # ----------------------------------------------------------------- standardisation
    def standardizer(self) -> "StepStandardizer":
        """The emission's standardisation of every step (:class:`StepStandardizer`)."""
        return StepStandardizer(self.emission_model)

    # ----------------------------------------------------------------- host-side checks
    def validate(self, data) -> Sequences:
        x, lengths = host_sequences(data)
        return Sequences(self.emission_model.validate_steps(x, lengths), jnp.asarray(lengths, jnp.int32))

    def validate_params(self, params, data) -> None:
        if not isinstance(params, tuple) or len(params) != 3:
            raise TypeError("params must be HMMParams(initial, transitions, emission); got "
                            f"{type(params).__name__}.")
        params, k = HMMParams(*params), self.n_states
        for name, shape in (("initial", (k,)), ("transitions", (k, k))):
            got = tuple(np.shape(getattr(params, name)))
            if got != shape:
                raise ValueError(f"params.{name} must have shape {shape} for n_states={k}; got {got}.")
        check_probabilities(params.initial, "params.initial")
        check_probabilities(params.transitions, "params.transitions")
        self.emission_model.validate_params(params.emission, k, data.x.shape[2])

    def _check_params_alone(self, params) -> None:
        """:meth:`validate_params` without data: the feature count is read from the emissions."""
        if not isinstance(params, tuple) or len(params) != 3 or not isinstance(params[2], tuple):
            raise TypeError("params must be HMMParams(initial, transitions, emission); got "
                            f"{type(params).__name__}.")
        d = self.emission_model.n_features(params[2])
        self.validate_params(params, Sequences(np.empty((1, 1, d)), None))

    def traced_inputs(self, data, weights):
        """Any accepted data form as :class:`Sequences`, inside ``jit``/``vmap``/``grad``."""
        return as_sequences(data), weights

    def work_per_row(self, data) -> int:
        k, (t, d) = self.n_states, data.x.shape[1:3]
        return t * (3 * k * k + self.emission_model.work_per_step(k, d))


def GaussianHMM(n_states: int, covariance_type: str = "full", **options) -> HMM:
    """``HMM(n_states, emission="gaussian", covariance_type=..., **options)``.

    Examples:
        >>> import jax, jax.numpy as jnp, emjax
        >>> truth = emjax.HMMParams(
        ...     initial=jnp.array([0.5, 0.5]), transitions=jnp.array([[0.95, 0.05], [0.05, 0.95]]),
        ...     emission=emjax.GaussianEmissionParams(means=jnp.array([[-2.0], [2.0]]),
        ...                                           covariances=jnp.full((2, 1), 0.25)))
        >>> model = emjax.GaussianHMM(2, covariance_type="diag")
        >>> x, states = model.sample(jax.random.key(0), truth, n_steps=200, n_sequences=3)
        >>> model.emission, model.covariance_type
        ('gaussian', 'diag')
        >>> bool((model.predict(truth, x) == states).mean() > 0.95)   # Viterbi with the true parameters
        True
    """
    return HMM(n_states, emission="gaussian", covariance_type=covariance_type, **options)


def CategoricalHMM(n_states: int, n_categories, **options) -> HMM:
    """``HMM(n_states, emission="categorical", n_categories=..., **options)``.

    Examples:
        >>> import emjax
        >>> model = emjax.CategoricalHMM(3, n_categories=(4, 2))   # two features: 4 and 2 categories
        >>> model == emjax.HMM(3, emission="categorical", n_categories=(4, 2)), model.emission
        (True, 'categorical')
    """
    return HMM(n_states, emission="categorical", n_categories=n_categories, **options)


def PoissonHMM(n_states: int, **options) -> HMM:
    """``HMM(n_states, emission="poisson", **options)``.

    Examples:
        >>> import emjax
        >>> model = emjax.PoissonHMM(3)                       # counts; fit it with emjax.fit
        >>> model == emjax.HMM(3, emission="poisson"), model.emission
        (True, 'poisson')
    """
    return HMM(n_states, emission="poisson", **options)


def BernoulliHMM(n_states: int, **options) -> HMM:
    """``HMM(n_states, emission="bernoulli", **options)``.

    Examples:
        >>> import emjax
        >>> model = emjax.BernoulliHMM(3)                     # 0/1 features; fit it with emjax.fit
        >>> model == emjax.HMM(3, emission="bernoulli"), model.emission
        (True, 'bernoulli')
    """
    return HMM(n_states, emission="bernoulli", **options)


def _normalise_rows(counts, current, pseudo_count):
    """Rows of ``counts + c [current > 0]`` normalised; a row with no mass keeps ``current``."""
    mass = jnp.where(current > 0, counts + pseudo_count, 0)
    total = jnp.sum(mass, axis=-1, keepdims=True)
    return jnp.where(total > 0, mass / jnp.where(total > 0, total, 1), current)


@dataclasses.dataclass(frozen=True)
class StepStandardizer(Standardizer):
    """The emission's ``standardize`` over the steps of every sequence (it needs the data whole);
    the log-Jacobian per sequence is that per step times the mean weighted steps per sequence."""

    emission_model: Any

    def standardize(self, data: Sequences, weights):
        flat, step_weights = flat_steps(data, weights)
        x, transform, log_jacobian_per_step = self.emission_model.standardize(flat, step_weights)
        steps_per_sequence = jnp.sum(step_weights) / jnp.sum(weights)
        return (Sequences(x.reshape(data.x.shape), data.lengths), transform,
                log_jacobian_per_step * steps_per_sequence)

    def params_to_standard(self, params: HMMParams, transform):
        return params._replace(emission=self.emission_model.to_standard(params.emission, transform))

    def params_from_standard(self, params: HMMParams, transform):
        return params._replace(emission=self.emission_model.from_standard(params.emission, transform))
