r"""Generalized EM: M-steps that take a few optax steps instead of a closed form.

EM's monotonicity needs only that the M-step does not lower the expected complete
log-likelihood :math:`Q(\theta; \theta_t) = \mathbb E_{z \sim p(z \mid x, \theta_t)}
[\log p(x, z \mid \theta)] + \log p(\theta)`: then
:math:`\log p(x \mid \theta_{t+1}) + \log p(\theta_{t+1}) - \log p(x \mid \theta_t) - \log p(\theta_t)
\ge Q(\theta_{t+1}; \theta_t) - Q(\theta_t; \theta_t) \ge 0` (generalized EM). :func:`gem_ascent`
takes ``n_steps`` optimizer steps uphill on :math:`Q` and guards that condition: it returns the
last iterate when it did not lower :math:`Q` (beyond rounding), otherwise the best iterate seen,
which is :math:`\theta_t` itself when no step helped. A step that would lower the objective is
therefore never taken, and the driver's monotone check stays sound.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from .tree import tree_select

#: The last iterate is kept when it lowers Q by at most this many machine epsilons times
#: (1 + |Q|): rounding, far inside the driver's DECREASED tolerance.
ROUNDING_EPS_FACTOR = 16


def gem_ascent(objective: Callable, params, optimizer: optax.GradientTransformation,
               n_steps: int):
    r"""Ascends ``objective`` from ``params`` with ``n_steps`` steps of ``optimizer``.

    Args:
        objective: differentiable scalar function of a params pytree (e.g. :math:`Q(\cdot;\theta_t)`).
        params: the starting point :math:`\theta_t`.
        optimizer: an optax transformation (it minimises, so it is given :math:`-\nabla Q`); its
            state starts afresh at every call.
        n_steps: optimizer steps (static).

    Returns:
        The last iterate if ``objective`` there is at least its value at ``params`` (up to
        rounding), else the iterate with the highest value seen (``params`` when none is higher).
        Never lowers ``objective`` by more than rounding.
    """
    value_and_grad = jax.value_and_grad(objective)

    def step(carry, _):
        current, state, best, best_value = carry
        value, grad = value_and_grad(current)
        updates, state = optimizer.update(jax.tree_util.tree_map(jnp.negative, grad), state, current)
        better = value > best_value
        best = tree_select(better, current, best)
        best_value = jnp.where(better, value, best_value)
        return (optax.apply_updates(current, updates), state, best, best_value), value

    start_value = jnp.asarray(objective(params))
    carry = (params, optimizer.init(params), params, start_value)
    (last, _, best, best_value), _ = jax.lax.scan(step, carry, None, length=n_steps)
    last_value = objective(last)
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
    """
    def m_step(stats, params):
        return gem_ascent(lambda new: expected_log_joint(new, stats, params), params, optimizer,
                          n_steps)

    return m_step
