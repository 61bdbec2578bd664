r"""Accelerated EM: SQUAREM (Varadhan & Roland 2008), a transform of the EM map.

Write :math:`F` for one EM map (an E-step, then an M-step) and :math:`\phi` for the model's
unconstrained coordinates (:meth:`emjax.core.model.Model.to_unconstrained`). One SQUAREM cycle from
:math:`\theta_0` takes two EM maps, :math:`\theta_1 = F(\theta_0)`, :math:`\theta_2 = F(\theta_1)`,
and in unconstrained coordinates the differences

.. math::
    r = \phi(\theta_1) - \phi(\theta_0), \qquad
    v = \phi(\theta_2) - 2\phi(\theta_1) + \phi(\theta_0), \qquad
    \alpha = \operatorname{clip}(-\lVert r \rVert / \lVert v \rVert, \; -s, \; -1)

(the "S3" step length; :math:`\alpha = -1` gives back :math:`\theta_2`). It extrapolates to
:math:`\theta' = \phi^{-1}(\phi(\theta_0) - 2\alpha r + \alpha^2 v)` and takes one stabilising EM
map, :math:`\theta'' = F(\theta')`. The cycle ends at :math:`\theta''` when it is finite, not
degenerate, has no exact zero where :math:`\theta_0` had none (an extrapolation past a boundary,
e.g. of HMM probabilities kept in their own coordinates, that the M-step would clip into a
permanent structural zero), its objective is at least that of :math:`\theta_1`, and the
stabilising map did not lower the objective, :math:`f(\theta'') \ge f(\theta')` (up to the
driver's rounding allowance); otherwise it falls back to the plain EM step :math:`\theta_2`. So
every accepted point is at least as good as one EM step, the objective never falls, and a change
below ``tol`` over a cycle implies that plain EM's step from the cycle's start changed it by less
than ``tol`` too.

The last condition costs nothing and never binds for a map that does not lower :math:`f` (EM,
MAP-EM, generalized EM). It matters for maps that maximise no fixed objective, such as
``GaussianMixture(pseudo_count=0)``, whose M-step adds ``reg_covar`` to the
maximum-likelihood covariances: its fixed point :math:`\theta^*` is not a maximum of the
monitored log-likelihood, points beside :math:`\theta^*` score higher, and the map pulls them back
down towards :math:`\theta^*`. Plain EM approaches :math:`\theta^*` from below and never sees that
fall; an extrapolation can land beyond :math:`\theta^*`, where the next EM map would fall by about
``reg_covar`` times the distance, which the driver (rightly, for what it monitors) would call
DECREASED. A point whose own EM map lowered :math:`f` is such a point, so it is not accepted.
Falls of about :math:`\lVert\nabla f(\theta^*)\rVert^2` over the map's curvature remain possible
at the first map of the next cycle (no finite look-ahead rules them out); when that first map
lowers :math:`f` beyond rounding but by less than ``tol``, the cycle ends where it started, which
the driver then reports CONVERGED: the EM map from there changes :math:`f` by less than ``tol``,
the driver's own criterion, and the point returned is the best one seen with its own objective.
With ``tol=0``, or a fall of ``tol`` or more, the fall is reported DECREASED as in plain EM.

The M-step is the engine's (:func:`emjax.engine.em_map.em_update`), so generalized-EM models whose
M-step revisits the rows (:meth:`emjax.core.model.Model.m_step_with_data`, e.g.
:class:`emjax.EnumeratedMixture`) are accelerated too.

The bound :math:`s \ge 1` on the step adapts, much as in Varadhan's SQUAREM package: it starts
at 1, grows :data:`STEP_GROWTH`-fold after an accepted cycle whose step reached it, and after a
fallback becomes the failed step's length divided by :data:`STEP_SHRINK` (at least 1), so that a
run of overshooting extrapolations (long steps along a flat ridge of the likelihood) cannot waste
every cycle.

Cost: E-steps at :math:`\theta_1`, :math:`\theta'`, :math:`\theta''` (whose statistics start the
next cycle), and one more at :math:`\theta_2` on a fallback: 3 or 4 per cycle, one E-step per
stage of an inner ``lax.while_loop`` (the E-step is compiled once). Under ``vmap`` a batch runs the
fallback stage when any of its restarts needs it; each restart counts only its own E-steps.

Examples:
    >>> import emjax
    >>> emjax.ACCELERATORS                                 # names accepted by accelerator=
    ('squarem',)
    >>> X = emjax.datasets.load_old_faithful()
    >>> emjax.fit(emjax.GaussianMixture(2), X, 0, accelerator="squareem")
    Traceback (most recent call last):
    ...
    ValueError: accelerator must be None (plain EM) or one of ('squarem',); got 'squareem'.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..core.status import Status
from ..core.tree import tree_select

#: Names accepted by ``accelerator=`` (``None`` is plain EM).
ACCELERATORS = ("squarem",)
#: SQUAREM's bound on the step length grows by this factor after an accepted step that reached it,
STEP_GROWTH = 4.0
#: and becomes the length of a step that failed divided by this factor.
STEP_SHRINK = 2.0


def check_accelerator(accelerator) -> None:
    """Raises ``ValueError`` unless ``accelerator`` is None or one of :data:`ACCELERATORS`."""
    if accelerator is not None and (not isinstance(accelerator, str) or accelerator not in ACCELERATORS):
        raise ValueError(f"accelerator must be None (plain EM) or one of {ACCELERATORS}; "
                         f"got {accelerator!r}.")


def accelerated_update(accelerator: str, model, evaluate, m_step, check, tol):
    """``(state, update)`` for one driver iteration with ``accelerator``.

    ``update(params, stats, loglik, objective, state)`` returns
    ``((params, stats, loglik, objective), n_estep, state)``: the point the iteration ends at, with
    its E-step's results, the E-steps it took and the accelerator's state for the next iteration.

    Args:
        accelerator: one of :data:`ACCELERATORS`.
        model: the model whose EM map is accelerated.
        evaluate: ``params -> (stats, loglik, objective)``, one E-step (mean per-sample values).
        m_step: ``(stats, params) -> params``, the M-step from the E-step's ``stats`` at ``params``.
        check: ``(params, objective, previous_loglik, previous_objective) -> status``:
            ``Status.RUNNING`` when a move to ``params`` from a point of that log-likelihood and
            objective is healthy, else the failure (NONFINITE, DEGENERATE, DECREASED beyond the
            driver's rounding allowance).
        tol: the driver's convergence tolerance (a scalar of the objective's dtype).
    """
    check_accelerator(accelerator)

    def update(params, stats, loglik, objective, step_bound):
        return squarem_cycle(model, params, stats, loglik, objective, step_bound, evaluate=evaluate,
                             m_step=m_step, check=check, tol=tol)

    return jnp.ones((), tol.dtype), update


class _Stages(NamedTuple):
    """Carry of a cycle's stages; each stage is one M-step and one E-step."""

    stage: jnp.ndarray          # stages done: 1 = theta1, 2 = theta', 3 = theta'', 4 = theta2
    last: Any                   # (params, stats, loglik, objective) of the last point evaluated
    first: Any                  # the same for theta1
    second_params: Any          # theta2 = F(theta1), evaluated only on a fallback
    alpha: jnp.ndarray
    fails: jnp.ndarray          # the first EM map failed: the cycle ends at theta1
    settled: jnp.ndarray        # the first EM map fell by less than tol: the cycle ends at theta0
    fallback: jnp.ndarray       # theta'' was rejected: the cycle ends at theta2


def squarem_cycle(model, params, stats, loglik, objective, step_bound, *, evaluate, m_step, check,
                  tol):
    """One SQUAREM cycle from ``params`` whose E-step gave ``stats``, ``loglik`` and ``objective``.

    Returns ``((params, stats, loglik, objective), n_estep, step_bound)`` for the point the cycle
    ends at. When the first EM map already fails (``check`` is not RUNNING), the cycle ends at that
    map's result, so the driver reports the failure exactly as plain EM would; when that failure
    is a fall smaller than ``tol``, it ends at ``params`` (module docstring).

    The stages run in a ``lax.while_loop`` whose body holds the program's only E-step: each stage
    takes an M-step from the last point evaluated, picks the next point (theta1, theta', theta'' or,
    on a fallback, theta2) and evaluates it, so the E-step is compiled once, not four times.
    """
    u0 = model.to_unconstrained(params)

    def extrapolate(params1, params2):
        u1, u2 = model.to_unconstrained(params1), model.to_unconstrained(params2)
        r = jax.tree_util.tree_map(lambda a, b: b - a, u0, u1)
        v = jax.tree_util.tree_map(lambda a, b, c: c - 2 * b + a, u0, u1, u2)
        alpha = s3_step_length(r, v, step_bound)
        point = jax.tree_util.tree_map(lambda a, dr, dv: a - 2 * alpha * dr + alpha * alpha * dv, u0, r, v)
        return model.from_unconstrained(point), alpha

    def body(c: _Stages) -> _Stages:
        last_params, last_stats = c.last[0], c.last[1]
        mapped = m_step(last_stats, last_params)  # theta1, theta2, theta'' (unused at stage 3)
        extrapolated, alpha = extrapolate(c.first[0], mapped)
        second = tree_select(c.stage == 1, mapped, c.second_params)
        point = tree_select(c.stage == 1, extrapolated, tree_select(c.stage == 3, second, mapped))
        evaluated = (point, *evaluate(point))
        first = tree_select(c.stage == 0, evaluated, c.first)
        first_status = check(point, evaluated[3], loglik, objective)
        settled = (c.stage == 0) & (first_status == Status.DECREASED) & (objective - evaluated[3] < tol)
        fails = jnp.where(c.stage == 0, (first_status != Status.RUNNING) & ~settled, c.fails)
        healthy_from = lambda before: check(point, evaluated[3], before[2], before[3]) == Status.RUNNING
        accept = (healthy_from(first) & (evaluated[3] >= first[3]) & healthy_from(c.last)
                  & ~new_zeros(params, point))  # at stage 2 (theta''), c.last is theta'
        fallback = jnp.where(c.stage == 2, ~accept, c.fallback)
        alpha = jnp.where(c.stage == 1, alpha, c.alpha)
        return _Stages(c.stage + 1, evaluated, first, second, alpha, fails, settled | c.settled,
                       fallback)

    def more(c: _Stages):
        return ~c.fails & ~c.settled & ((c.stage < 3) | ((c.stage == 3) & c.fallback))

    start = (params, stats, loglik, objective)
    false = jnp.zeros((), bool)
    init = _Stages(jnp.int32(0), start, start, params, -jnp.ones_like(step_bound), false, false, false)
    done = jax.lax.while_loop(more, body, init)

    accept = ~done.fails & ~done.settled & ~done.fallback
    at_bound = -done.alpha >= step_bound
    step_bound = jnp.where(at_bound & accept, step_bound * STEP_GROWTH, step_bound)
    step_bound = jnp.where(done.fallback, jnp.maximum(-done.alpha / STEP_SHRINK, 1), step_bound)
    return tree_select(done.settled, start, done.last), done.stage, step_bound


def new_zeros(start, point):
    """True when some entry of ``point`` is exactly 0 where ``start``'s is not."""
    found = jax.tree_util.tree_map(lambda a, b: jnp.any((a != 0) & (b == 0)), start, point)
    return jnp.any(jnp.stack(jax.tree_util.tree_leaves(found)))


def s3_step_length(r, v, step_bound):
    """:math:`\\alpha = \\operatorname{clip}(-\\lVert r\\rVert / \\lVert v\\rVert, -s, -1)` over all
    leaves of the pytrees ``r`` and ``v``, for the bound ``s = step_bound >= 1``; -1 (a plain
    double EM step) when the ratio is not finite."""
    norm_r, norm_v = _tree_norm(r), _tree_norm(v)
    ratio = norm_r / jnp.where(norm_v > 0, norm_v, 1)
    ratio = jnp.where((norm_v > 0) & jnp.isfinite(ratio), ratio, 1)
    return -jnp.clip(ratio, 1, step_bound).astype(step_bound.dtype)


def _tree_norm(tree):
    """Euclidean norm of all leaves of ``tree`` together."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))
