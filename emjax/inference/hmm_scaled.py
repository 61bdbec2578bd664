r"""Batched HMM forward-backward with scaled probabilities (Rabiner scaling): the fast E-step.

All sequences advance together: one ``lax.scan`` over time whose step is a
``(s, k) @ (k, k)`` matrix product over every sequence at once, a multiply, a sum and a divide.
With emission log-densities :math:`\log b_\tau(j)` shifted by their per-step maximum
:math:`m_\tau = \max_j \log b_\tau(j)`, :math:`\tilde b_\tau = e^{\log b_\tau - m_\tau} \le 1`:

.. math::
    \hat\alpha_0 \propto \pi \odot \tilde b_0, \qquad
    \hat\alpha_\tau \propto (\hat\alpha_{\tau-1} A) \odot \tilde b_\tau, \qquad
    c_\tau = \textstyle\sum_j [(\hat\alpha_{\tau-1} A) \odot \tilde b_\tau]_j,

    \hat\beta_{t-1} = 1, \qquad
    \hat\beta_\tau = A (\tilde b_{\tau+1} \odot \hat\beta_{\tau+1}) / c_{\tau+1},

with :math:`\sum_j \hat\alpha_\tau(j) = 1`. Then :math:`\log p(x) = \sum_\tau (m_\tau + \log c_\tau)`
(exact: the scale factors are carried in log space, so ``t = 100,000`` stays finite),
:math:`\gamma_\tau = \hat\alpha_\tau \odot \hat\beta_\tau` and the expected transition counts are
one matrix product after the scans,
:math:`\sum_\tau \xi_\tau = A \odot \sum_{\tau \ge 1} \hat\alpha_{\tau-1}^\top
(\tilde b_\tau \odot \hat\beta_\tau / c_\tau)` (no ``(t, k, k)`` tensor). Both are divided
by :math:`\sum_j \gamma_\tau(j)`, which is 1 up to the rounding the backward pass accumulates,
so each step's posteriors are normalised on their own.

An impossible step (:math:`c_\tau = 0`) gives exactly ``-inf`` and zero marginals, never NaN;
hard zeros in :math:`\pi` or :math:`A` stay zeros. Limit of scaling (shared with every scaled
implementation): a path whose probability within one step is below the dtype's smallest normal
number relative to the best emission (about ``1e-38`` in float32) counts as impossible; the
log-space functions of :mod:`emjax.inference.hmm` have no such limit.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .hmm import safe_log
from ..core.xla_options import jit

#: Forward and backward steps per loop iteration of the time scans (the answer does not depend
#: on it). On the 2-core CPU of benchmarks/results/cpu.md, 1, 2, 4 and 8 ran W4's E-step equally fast
#: (the per-step work over all sequences hides the loop overhead); 1 compiles fastest.
UNROLL = 1
#: Up to this many states, products with the transition matrix, and sums or maxima over states
#: outside the time loops, are written as ``k`` elementwise terms: on CPU, XLA's ``(s, k) @ (k, k)``
#: dot and its reductions over a short minor axis cost 2-3x more than the adds at W4's size (8
#: states); at 16 states they are level, beyond that the dot wins.
SMALL_K = 8


def state_sum(a):
    """``sum(a, axis=-1)`` over the states axis."""
    if a.shape[-1] > SMALL_K:
        return jnp.sum(a, axis=-1)
    return sum(jnp.unstack(a, axis=-1))


def state_max(a):
    """``max(a, axis=-1)`` over the states axis."""
    if a.shape[-1] > SMALL_K:
        return jnp.max(a, axis=-1)
    return functools.reduce(jnp.maximum, jnp.unstack(a, axis=-1))


def times_matrix(v, m):
    """``v @ m`` for ``v`` ``(s, k)`` and ``m`` ``(k, k)``."""
    if m.shape[0] > SMALL_K:
        return v @ m
    return sum(v[:, i, None] * m[i] for i in range(m.shape[0]))


class BatchPosterior(NamedTuple):
    r"""Forward-backward summary of a batch of sequences.

    Attributes:
        log_likelihood: :math:`\log p(x_s)` ``(s,)``.
        marginals: :math:`\gamma` ``(t, s, k)`` (time-major), zero at padded steps.
        transitions: :math:`\sum_s w_s \sum_\tau \xi_{s\tau}` ``(k, k)``.
    """

    log_likelihood: jnp.ndarray
    marginals: jnp.ndarray
    transitions: jnp.ndarray


def _guarded(c):
    """``c`` where positive, 1 elsewhere (a safe divisor)."""
    return jnp.where(c > 0, c, 1)


@functools.partial(jit, static_argnames="unroll")
def batch_posterior(initial, transitions, log_emit, lengths, weights, unroll: int = UNROLL):
    r"""Log-likelihoods, state marginals and weighted transition counts of a batch of sequences.

    Args:
        initial: :math:`\pi` ``(k,)`` (probabilities, not logs).
        transitions: :math:`A` ``(k, k)``, row = from.
        log_emit: ``(t, s, k)`` time-major emission log-densities (any finite value at padded steps).
        lengths: ``(s,)`` real steps per sequence; steps ``tau >= length`` change nothing.
        weights: ``(s,)`` sequence weights for the transition counts.
        unroll: time steps per loop iteration of the scans.

    Returns:
        :class:`BatchPosterior`.
    """
    t = log_emit.shape[0]
    real = jnp.arange(t)[:, None] < lengths[None, :]  # (t, s)
    log_emit = jnp.where(real[..., None], log_emit, 0)
    top = jax.lax.stop_gradient(state_max(log_emit))
    # per-step values (t, s) materialised (here and below): fused into the (t, s, k) consumers,
    # XLA recomputes the k-term maximum or sum, and what feeds it, for every state
    top = jax.lax.optimization_barrier(jnp.where(jnp.isfinite(top), top, 0))
    emit = jnp.exp(log_emit - top[..., None])  # (t, s, k), <= 1

    first = jnp.arange(t) == 0

    def forward(alpha, inputs):
        b, is_first = inputs
        a = jnp.where(is_first, initial, times_matrix(alpha, transitions)) * b
        c = jnp.sum(a, axis=-1)  # in the loop, XLA's reduction is as fast as state_sum or faster
        alpha = a / _guarded(c)[:, None]
        return alpha, (alpha, c)

    start = jnp.zeros(emit.shape[1:], emit.dtype)
    _, (alpha, norms) = jax.lax.scan(forward, start, (emit, first), unroll=unroll)
    log_likelihood = jnp.sum(jnp.where(real, top + safe_log(norms), 0), axis=0)

    per_norm = 1 / _guarded(norms)  # (t, s)

    def backward(beta, inputs):
        b, scale, is_real = inputs  # beta is beta_tau; returns beta_{tau - 1} (1 when tau is padding)
        previous = times_matrix(b * beta * scale[:, None], transitions.T)
        return jnp.where(is_real[:, None], previous, 1), beta

    _, beta = jax.lax.scan(backward, jnp.ones_like(start), (emit, per_norm, real), reverse=True,
                           unroll=unroll)
    # sum_j alpha_tau beta_tau is 1 up to rounding that the backward pass accumulates (~sqrt(t)
    # eps): dividing each step's gamma and xi by it makes them exact per step, as in log space
    gamma = alpha * beta
    total = jnp.where(real, state_sum(gamma), 0)
    inverse = jax.lax.optimization_barrier(jnp.where(total > 0, 1 / _guarded(total), 0))
    marginals = gamma * inverse[..., None]
    k = initial.shape[0]
    before = alpha[:-1].reshape(-1, k)  # a view: the per-step factors all go into ``after``
    per_step = (inverse * per_norm * weights[None, :] * real)[1:, :, None]
    after = (emit[1:] * beta[1:] * per_step).reshape(-1, k)
    counts = transitions * (before.T @ after)
    return BatchPosterior(log_likelihood, marginals, counts)
