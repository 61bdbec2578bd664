r"""Generalized EM: M-steps that take a few optax steps instead of a closed form.

EM's monotonicity needs only that the M-step does not lower the expected complete
log-likelihood :math:`Q(\theta; \theta_t) = \mathbb E_{z \sim p(z \mid x, \theta_t)}
[\log p(x, z \mid \theta)] + \log p(\theta)`: then
:math:`\log p(x \mid \theta_{t+1}) + \log p(\theta_{t+1}) - \log p(x \mid \theta_t) - \log p(\theta_t)
\ge Q(\theta_{t+1}; \theta_t) - Q(\theta_t; \theta_t) \ge 0` (generalized EM). :func:`gem_ascent`
takes ``n_steps`` optimizer steps uphill on :math:`Q` and guards that condition: it returns the
last iterate when it did not lower :math:`Q` (beyond rounding); otherwise it damps the step (the
best of the iterates and of shorter and shorter fractions of the first step), which is
:math:`\theta_t` itself when nothing helped. A step that would lower the objective is
therefore never taken, and the driver's monotone check stays sound.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from ..core.tree import tree_select

#: The last iterate is kept when it lowers Q by at most this many machine epsilons times
#: (1 + |Q|): rounding, far inside the driver's DECREASED tolerance.
ROUNDING_EPS_FACTOR = 16
#: Halvings of the optimizer's first step tried when the last iterate lowered Q.
DAMPING_STEPS = 12


def gem_ascent(objective: Callable, params, optimizer: optax.GradientTransformation,
               n_steps: int):
    r"""Ascends ``objective`` from ``params`` with ``n_steps`` steps of ``optimizer``, guarded.

    Args:
        objective: differentiable scalar function of a params pytree (e.g. :math:`Q(\cdot;\theta_t)`).
        params: the starting point :math:`\theta_t`.
        optimizer: an optax transformation (it minimises, so it is given :math:`-\nabla Q`); its
            state starts afresh at every call.
        n_steps: optimizer steps (static).

    Returns:
        The last iterate if ``objective`` there is at least its value at ``params`` (up to
        rounding). Otherwise the step is damped: the best of the iterates and of the points
        :math:`\theta_t + 2^{-j}(\theta_1 - \theta_t)`, :math:`j = 1..` ``DAMPING_STEPS``, along the
        optimizer's first step :math:`\theta_1` (uphill for gradient-based optimizers); ``params``
        itself when none is higher. Never lowers ``objective`` by more than rounding.

    Examples:
        >>> import jax.numpy as jnp, optax, emjax
        >>> q = lambda p: -jnp.sum((p - 3.0) ** 2)             # maximised at p = 3
        >>> p = emjax.gem_ascent(q, jnp.zeros(2), optax.sgd(0.1), n_steps=50)
        >>> p.round(3).tolist()
        [3.0, 3.0]
    """
    value_and_grad = jax.value_and_grad(objective)
    uphill = lambda grad: jax.tree_util.tree_map(jnp.negative, grad)

    def step(carry, _):
        current, state, best, best_value = carry
        value, grad = value_and_grad(current)
        updates, state = optimizer.update(uphill(grad), state, current)
        better = value > best_value
        best = tree_select(better, current, best)
        best_value = jnp.where(better, value, best_value)
        return (optax.apply_updates(current, updates), state, best, best_value), None

    start_value, start_grad = value_and_grad(params)
    updates, state = optimizer.update(uphill(start_grad), optimizer.init(params), params)
    first = optax.apply_updates(params, updates)
    carry = (first, state, params, start_value)
    (last, _, best, best_value), _ = jax.lax.scan(step, carry, None, length=n_steps - 1)
    last_value = objective(last)

    fractions = 0.5 ** jnp.arange(1, DAMPING_STEPS + 1, dtype=start_value.dtype)
    damped_at = lambda a: jax.tree_util.tree_map(lambda p, u: p + a.astype(p.dtype) * u, params, updates)
    damped_values = jax.lax.map(lambda a: objective(damped_at(a)), fractions)
    damped_values = jnp.where(jnp.isfinite(damped_values), damped_values, -jnp.inf)
    j = jnp.argmax(damped_values)
    damped_better = damped_values[j] > best_value
    best = tree_select(damped_better, damped_at(fractions[j]), best)

    rounding = ROUNDING_EPS_FACTOR * jnp.finfo(start_value.dtype).eps * (1 + jnp.abs(start_value))
    keep_last = jnp.isfinite(last_value) & (last_value >= start_value - rounding)
    return tree_select(keep_last, last, best)


def gem_m_step(expected_log_joint: Callable, optimizer: optax.GradientTransformation,
               n_steps: int = 20) -> Callable:
    r"""Builds an M-step ``m_step(stats, params)`` from a differentiable expected complete
    log-likelihood, for components without a closed-form update.

    Args:
        expected_log_joint: ``(new_params, stats, old_params) -> scalar``, the E-step's
            :math:`Q(\theta; \theta_t)` (plus the log prior) as a function of :math:`\theta` given
            the statistics summed over rows at :math:`\theta_t`.
        optimizer: an optax transformation, e.g. ``optax.adam(1e-2)``.
        n_steps: optimizer steps per EM iteration.

    Returns:
        A function ``m_step(stats, params) -> params`` for a model's ``m_step``, ascending
        :math:`Q` with :func:`gem_ascent` (so it never lowers it).

    Examples:
        >>> import jax.numpy as jnp, optax, emjax
        >>> q = lambda new, stats, old: -jnp.sum((new - stats) ** 2)   # Q maximised at new = stats
        >>> m_step = emjax.gem_m_step(q, optax.sgd(0.1), n_steps=50)
        >>> m_step(jnp.array([1.0, 2.0]), jnp.zeros(2)).round(3).tolist()
        [1.0, 2.0]
    """
    def m_step(stats, params):
        return gem_ascent(lambda new: expected_log_joint(new, stats, params), params, optimizer,
                          n_steps)

    return m_step
