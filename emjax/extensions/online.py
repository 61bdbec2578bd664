r"""Online (stepwise) EM for streams: Cappé & Moulines (2009); Liang & Klein (2009).

Mini-batch :math:`t` (rows :math:`B_t`, total weight :math:`W_t`) gives statistics
:math:`\hat s_t = \tfrac{N}{W_t} \sum_{n \in B_t} w_n s(x_n; \theta_{t-1})` (scaled to
``data_size`` :math:`N` rows; :math:`N = W_t` when it is not given), and

.. math::
    S_t = (1 - \gamma_t) S_{t-1} + \gamma_t \hat s_t, \qquad
    \gamma_t = (t - 1 + t_0)^{-\kappa}, \qquad \theta_t = \text{M-step}(S_t),

with :math:`\gamma_1 = 1`. For :math:`\kappa \in (0.5, 1]` the steps satisfy
:math:`\sum \gamma_t = \infty`, :math:`\sum \gamma_t^2 < \infty`, so :math:`\theta_t` settles at a
stationary point of the likelihood; one pass over large data often gets close to the batch-EM
optimum. The fit runs in the coordinates of the first mini-batch's standardisation.
"""
from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..core.chunking import choose_chunk_size, chunked_sum, n_rows
from ..engine.driver import failure_status
from ..core.model import check_streamable
from ..core.standardizer import standardizer_of
from ..core.status import Status
from ..core.tree import row_signature, row_signature_difference, tree_select
from ..core.validation import check_key, check_nonnegative_number, prepare_inputs
from ..core.xla_options import jit


class OnlineState(NamedTuple):
    """Online EM state (a pytree; ``params`` and ``stats`` in standardised coordinates).

    ``stats`` are the running statistics as seen from ``params`` (``Model.restate_stats``), so
    the next mini-batch's statistics, computed under ``params``, average with them consistently.

    ``status`` is RUNNING while every update was usable; an update whose parameters are
    non-finite or degenerate is rejected and sets NONFINITE / DEGENERATE for good.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> import numpy as np
        >>> online = emjax.OnlineEM(emjax.GaussianMixture(2), jax.random.key(0), data_size=len(X))
        >>> online = online.partial_fit(np.array_split(X, 4)[0])
        >>> int(online.state.step)                             # one mini-batch so far
        1
    """

    params: Any
    stats: Any
    step: jnp.ndarray
    status: jnp.ndarray
    transform: Any


def check_schedule(kappa, t0) -> None:
    """Step sizes ``(t + t0)^-kappa`` need ``kappa`` in (0.5, 1] and ``t0 >= 0`` (so ``gamma <= 1``)."""
    if not isinstance(kappa, numbers.Real) or not 0.5 < kappa <= 1:
        raise ValueError(f"kappa must be in (0.5, 1] (steps (t + t0)^-kappa must sum to infinity "
                         f"while their squares stay finite); got {kappa!r}.")
    check_nonnegative_number(t0, "t0")


def online_update(model, state: OnlineState, data, weights, *, kappa: float, t0: float,
                  data_size: float | None) -> OnlineState:
    """One stepwise-EM update with a mini-batch in the data's units (pure, jittable)."""
    x = standardizer_of(model).apply(data, state.transform)
    chunk = min(choose_chunk_size(n_rows(x), model.work_per_row(x)), n_rows(x))
    batch_stats, _ = chunked_sum(functools.partial(model.e_step, state.params), x, weights, chunk)
    dtype = weights.dtype
    scale = 1 if data_size is None else data_size / jnp.sum(weights)
    gamma = jnp.where(state.step == 0, 1, (state.step + t0) ** -kappa).astype(dtype)
    stats = jax.tree_util.tree_map(lambda old, new: (1 - gamma) * old + gamma * scale * new,
                                   state.stats, batch_stats)
    params = model.m_step(stats, state.params)
    stats = model.restate_stats(stats, state.params, params)  # kept about the new iterate
    trouble = failure_status(model, params, jnp.zeros((), dtype))
    ok = (state.status == Status.RUNNING) & (trouble == Status.RUNNING)
    params, stats = tree_select(ok, (params, stats), (state.params, state.stats))
    status = jnp.where(state.status == Status.RUNNING, trouble, state.status).astype(jnp.int32)
    return state._replace(params=params, stats=stats, step=state.step + 1, status=status)


class OnlineEM:
    """Stepwise EM with a ``partial_fit`` interface for data that arrive in mini-batches.

    Example::

        online = emjax.OnlineEM(emjax.GaussianMixture(8), key, kappa=0.6, data_size=len(X))
        for batch in batches:
            online.partial_fit(batch)
        online.params, online.score(X_test)

    Args:
        model: a model following :mod:`emjax.core.model`'s contract.
        key: PRNG key, or an integer seed, for ``model.init`` on the first mini-batch (unused
            with ``init_params``).
        kappa: step-size exponent in (0.5, 1]; smaller forgets old batches faster.
        t0: step-size offset >= 0; larger damps the early steps.
        data_size: rows the statistics are scaled to (the dataset's size, so a model's prior
            weighs as in batch EM); by default each mini-batch's own total weight.
        init_params: optional starting parameters in the data's units.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> import numpy as np
        >>> online = emjax.OnlineEM(emjax.GaussianMixture(2), jax.random.key(0), data_size=len(X))
        >>> for batch in np.array_split(X, 4):
        ...     online = online.partial_fit(batch)
        >>> online.status.name, online.params.means.shape
        ('RUNNING', (2, 2))
        >>> bool(online.score(X) > -5.0)                        # mean log-likelihood per row
        True
    """

    def __init__(self, model, key, *, kappa: float = 0.6, t0: float = 2.0,
                 data_size: float | None = None, init_params=None):
        check_schedule(kappa, t0)
        check_streamable(model)
        if data_size is not None and (not isinstance(data_size, numbers.Real) or not data_size > 0):
            raise ValueError(f"data_size must be a positive number or None; got {data_size!r}.")
        key = check_key(key, optional=init_params is not None)
        self.model, self.key, self.init_params = model, key, init_params
        self.schedule = dict(kappa=float(kappa), t0=float(t0),
                             data_size=None if data_size is None else float(data_size))
        self.state: OnlineState | None = None
        self._rows = None

    def partial_fit(self, data, weights=None) -> "OnlineEM":
        """Updates the parameters with one mini-batch (rows of ``data``, optional ``weights``)."""
        data, weights = prepare_inputs(self.model, data, weights)
        if self.state is None:
            if self.init_params is not None:
                self.model.validate_params(self.init_params, data)
            self.state = _start(self.model, self.key, data, weights, self.init_params)
            self._rows = row_signature(data)
        elif (difference := row_signature_difference(row_signature(data), self._rows)):
            what, this, first = difference
            raise ValueError(f"data: this mini-batch has the {what} {this}; the first had the "
                             f"{what} {first}. Every mini-batch needs the same {what}.")
        self.state = _update(self.model, self.state, data, weights, **self.schedule)
        return self

    @property
    def params(self):
        """Current parameters in the data's units."""
        self._check_started()
        return standardizer_of(self.model).params_from_standard(self.state.params, self.state.transform)

    @property
    def n_steps(self) -> int:
        return 0 if self.state is None else int(self.state.step)

    @property
    def status(self) -> Status:
        self._check_started()
        return Status(int(self.state.status))

    def score(self, data, weights=None):
        """Mean log-likelihood per unit weight of ``data`` under the current parameters."""
        self._check_started()
        data, weights = prepare_inputs(self.model, data, weights)
        return _mean_log_prob(self.model, self.params, data, weights)

    def _check_started(self):
        if self.state is None:
            raise RuntimeError("OnlineEM has seen no data yet: call partial_fit first.")


@functools.partial(jit, static_argnames="model")
def _start(model, key, data, weights, init_params):
    x, transform, _ = standardizer_of(model).standardize(data, weights)
    if init_params is None:
        params = model.init(key, x, weights)
    else:
        params = standardizer_of(model).params_to_standard(init_params, transform)
    stats_shape = jax.eval_shape(lambda: model.e_step(params, x, weights)[0])
    stats = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), stats_shape)
    return OnlineState(params, stats, jnp.int32(0), jnp.int32(Status.RUNNING), transform)


_update = jit(online_update, static_argnames=("model", "data_size"))


@functools.partial(jit, static_argnames="model")
def _mean_log_prob(model, params, data, weights):
    return jnp.sum(weights * model.log_prob(params, data)) / jnp.sum(weights)
