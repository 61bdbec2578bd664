r"""Hidden Markov model inference in log space: forward-backward, Viterbi, sampling.

Pure functions of one sequence; ``jax.vmap`` them over sequences. With ``k`` states, ``t`` steps,
initial log-probabilities :math:`\log\pi` ``(k,)``, transition log-probabilities
:math:`\log A` ``(k, k)`` (row = from, column = to) and emission log-densities
:math:`\log b_\tau(j) = \log p(x_\tau \mid z_\tau = j)` ``(t, k)``:

.. math::
    \alpha_0 = \log\pi + \log b_0, \qquad
    \alpha_\tau(j) = \log\textstyle\sum_i e^{\alpha_{\tau-1}(i) + \log A_{ij}} + \log b_\tau(j),

    \beta_{t-1} = 0, \qquad
    \beta_\tau(i) = \log\textstyle\sum_j e^{\log A_{ij} + \log b_{\tau+1}(j) + \beta_{\tau+1}(j)},

:math:`\log p(x) = \log\sum_j e^{\alpha_{t-1}(j)}`, state marginals
:math:`\gamma_\tau = e^{\alpha_\tau + \beta_\tau - \log p(x)}` and pairwise marginals
:math:`\xi_\tau(i, j) = e^{\alpha_\tau(i) + \log A_{ij} + \log b_{\tau+1}(j) + \beta_{\tau+1}(j)
- \log p(x)}`.

Sequences shorter than the padded axis pass ``length``: steps ``tau >= length`` get emission
log-density 0 and the identity transition, so they change no forward or backward message, and
every marginal there is reported as 0. Probabilities are never multiplied over time and the
sequential pass carries per-step normalised messages (summing the log normalisers), so
``t = 100,000`` stays finite and accurate, in float32 too; an impossible observation gives exactly ``-inf``; hard zeros in
:math:`\pi` or :math:`A` never produce NaN, in values or gradients (all logarithms and
log-sum-exps of zeros go through :func:`safe_log`).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from ..core.xla_options import jit


class Posterior(NamedTuple):
    r"""Forward-backward summary of one sequence.

    Attributes:
        log_likelihood: :math:`\log p(x)` (scalar).
        marginals: :math:`\gamma` ``(t, k)``, zero at padded steps.
        transitions: :math:`\sum_\tau \xi_\tau` ``(k, k)``, expected transition counts.
    """

    log_likelihood: jnp.ndarray
    marginals: jnp.ndarray
    transitions: jnp.ndarray


def safe_log(p):
    """``log p`` with ``log 0 = -inf`` and a zero (not NaN or inf) gradient at ``p = 0``."""
    positive = p > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, p, 1)), -jnp.inf)


def logsumexp(a, axis):
    """``log sum exp a`` along ``axis``; all ``-inf`` gives ``-inf`` with a zero gradient."""
    top = jax.lax.stop_gradient(jnp.max(a, axis=axis, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, 0)
    return safe_log(jnp.sum(jnp.exp(a - top), axis=axis)) + jnp.squeeze(top, axis)


def step_mask(n_steps: int, length=None):
    """``(t,)`` bool, True at the steps ``tau < length`` (every step when ``length`` is None)."""
    steps = jnp.arange(n_steps)
    return steps >= 0 if length is None else steps < length


def _log_transition_per_step(log_trans, mask):
    """``(t, k, k)``: ``log A`` into each step, the identity (0 / -inf) into padded steps."""
    k = log_trans.shape[0]
    log_eye = jnp.where(jnp.eye(k, dtype=bool), 0.0, -jnp.inf).astype(log_trans.dtype)
    return jnp.where(mask[:, None, None], log_trans[None], log_eye[None])


def _log_matmul(a, b):
    """``log(exp(a) @ exp(b))`` over the last axis of ``a`` and the second-last of ``b``."""
    return logsumexp(a[..., :, :, None] + b[..., None, :, :], axis=-2)


@functools.partial(jit, static_argnames="parallel")
def forward_backward_messages(log_init, log_trans, log_emit, length=None, parallel=False):
    r"""Per-step normalised log forward and backward messages and the log-likelihood.

    Args:
        log_init: ``(k,)`` initial log-probabilities.
        log_trans: ``(k, k)`` transition log-probabilities.
        log_emit: ``(t, k)`` emission log-densities.
        length: optional number of real steps (the rest is padding).
        parallel: ``False``: two ``lax.scan`` passes (``O(t)`` depth, ``O(t k^2)`` work);
            ``True``: ``lax.associative_scan`` over ``(k, k)`` log-matrices (``O(log t)`` depth,
            ``O(t k^3)`` work; for accelerators and long sequences).

    Returns:
        ``(alpha, beta, log_likelihood)``: ``alpha`` and ``beta`` ``(t, k)`` equal
        :math:`\alpha_\tau` and :math:`\beta_\tau` up to an additive constant per step (the
        sequential pass carries :math:`\alpha_\tau - \log\sum_j e^{\alpha_\tau(j)}` and sums
        those normalisers, so float32 stays accurate over long sequences).
    """
    t = log_emit.shape[0]
    mask = step_mask(t, length)
    log_emit = jnp.where(mask[:, None], log_emit, 0)
    trans = _log_transition_per_step(log_trans, mask)  # trans[tau]: from tau - 1 into tau
    alpha0 = log_init + log_emit[0]
    if parallel:
        # element tau: M_tau(i, j) = log A_tau(i, j) + log b_tau(j); element 0 has alpha0 in
        # every row. alpha_tau = any row of M_0 ... M_tau; beta_tau = rows of M_{tau+1} ... summed.
        elements = trans + log_emit[:, None, :]
        elements = elements.at[0].set(jnp.broadcast_to(alpha0, elements.shape[1:]))
        alpha = jax.lax.associative_scan(_log_matmul, elements)[:, 0, :]
        if t == 1:
            beta = jnp.zeros_like(alpha)
        else:
            suffix = jax.lax.associative_scan(lambda x, y: _log_matmul(y, x), elements[1:], reverse=True)
            beta = jnp.concatenate([logsumexp(suffix, axis=-1), jnp.zeros_like(alpha0)[None]], axis=0)
        return alpha, beta, logsumexp(alpha[-1], axis=0)

    def forward(alpha, inputs):
        a, e = inputs
        alpha = logsumexp(alpha[:, None] + a, axis=0) + e
        norm = logsumexp(alpha, axis=0)
        return alpha - jnp.where(jnp.isfinite(norm), norm, 0), (alpha, norm)

    norm0 = logsumexp(alpha0, axis=0)
    _, (rest, norms) = jax.lax.scan(forward, alpha0 - jnp.where(jnp.isfinite(norm0), norm0, 0),
                                    (trans[1:], log_emit[1:]))
    alpha = jnp.concatenate([alpha0[None], rest], axis=0)
    ll = norm0 + jnp.sum(jnp.where(mask[1:], norms, 0))

    def backward(beta, inputs):
        a, e, real = inputs  # real: step tau + 1 is not padding (else beta_tau stays exactly 0)
        beta = logsumexp(a + (e + beta)[None, :], axis=1)
        norm = logsumexp(beta, axis=0)
        beta = jnp.where(real, beta - jnp.where(jnp.isfinite(norm), norm, 0), 0)
        return beta, beta

    last = jnp.zeros_like(alpha0)
    _, head = jax.lax.scan(backward, last, (trans[1:], log_emit[1:], mask[1:]), reverse=True)
    return alpha, jnp.concatenate([head, last[None]], axis=0), ll


def _normalised(log_p, axes):
    """``exp(log_p)`` normalised over ``axes``; 0 (never NaN) where every entry is ``-inf``."""
    norm = logsumexp(log_p.reshape(log_p.shape[:-len(axes)] + (-1,)), axis=-1)
    norm = jnp.where(jnp.isfinite(norm), norm, 0)
    return jnp.exp(log_p - norm.reshape(norm.shape + (1,) * len(axes)))


@functools.partial(jit, static_argnames="parallel")
def log_likelihood(log_init, log_trans, log_emit, length=None, parallel=False):
    r""":math:`\log p(x_{0:length})` of one sequence; arguments as :func:`forward_backward_messages`."""
    return forward_backward_messages(log_init, log_trans, log_emit, length, parallel)[2]


def _pairwise(alpha, beta, log_trans, log_emit, mask):
    r"""Unnormalised log :math:`\xi_\tau` ``(t - 1, k, k)``, ``-inf`` where ``tau + 1`` is padding."""
    after = jnp.where(mask[1:, None], log_emit[1:] + beta[1:], -jnp.inf)
    return alpha[:-1, :, None] + log_trans[None] + after[:, None, :]


@functools.partial(jit, static_argnames="parallel")
def pairwise_marginals(log_init, log_trans, log_emit, length=None, parallel=False):
    r""":math:`\xi_\tau(i, j) = p(z_\tau = i, z_{\tau+1} = j \mid x)`, ``(t - 1, k, k)``
    (zero where ``tau + 1 >= length``)."""
    alpha, beta, _ = forward_backward_messages(log_init, log_trans, log_emit, length, parallel)
    mask = step_mask(log_emit.shape[0], length)
    return _normalised(_pairwise(alpha, beta, log_trans, log_emit, mask), (1, 2))


@functools.partial(jit, static_argnames="parallel")
def posterior(log_init, log_trans, log_emit, length=None, parallel=False) -> Posterior:
    r"""Log-likelihood, state marginals and expected transition counts of one sequence.

    Args: as :func:`forward_backward_messages`.

    Returns:
        :class:`Posterior`; the transition counts are :math:`\sum_\tau \xi_\tau` (what
        Baum-Welch needs), the marginals are zero at padded steps. Each step's marginals are
        normalised on their own, so they are exact even where the log-likelihood is huge.
    """
    alpha, beta, ll = forward_backward_messages(log_init, log_trans, log_emit, length, parallel)
    mask = step_mask(log_emit.shape[0], length)
    marginals = jnp.where(mask[:, None], _normalised(alpha + beta, (1,)), 0)
    xi = _normalised(_pairwise(alpha, beta, log_trans, log_emit, mask), (1, 2))
    return Posterior(ll, marginals, jnp.sum(xi, axis=0))


@jit
def viterbi(log_init, log_trans, log_emit, length=None):
    r"""Most probable state path :math:`\arg\max_z p(z \mid x)`, ``(t,)`` int32, -1 at padded
    steps (ties go to the lowest state index)."""
    t = log_emit.shape[0]
    mask = step_mask(t, length)
    log_emit = jnp.where(mask[:, None], log_emit, 0)
    trans = _log_transition_per_step(log_trans, mask)

    def forward(delta, inputs):
        a, e = inputs
        scores = delta[:, None] + a
        return jnp.max(scores, axis=0) + e, jnp.argmax(scores, axis=0).astype(jnp.int32)

    delta, pointers = jax.lax.scan(forward, log_init + log_emit[0], (trans[1:], log_emit[1:]))
    last = jnp.argmax(delta).astype(jnp.int32)

    def backward(state, pointer):
        previous = pointer[state]
        return previous, previous

    _, head = jax.lax.scan(backward, last, pointers, reverse=True)
    path = jnp.concatenate([head, last[None]])
    return jnp.where(mask, path, -1)


@functools.partial(jit, static_argnames="n_steps")
def sample_states(key, initial, transitions, n_steps: int):
    """A state path ``(n_steps,)`` int32 drawn from the Markov chain (probabilities, not logs)."""
    first_key, key = jax.random.split(key)
    log_trans = safe_log(transitions)
    first = jax.random.categorical(first_key, safe_log(initial)).astype(jnp.int32)

    def step(state, step_key):
        state = jax.random.categorical(step_key, log_trans[state]).astype(jnp.int32)
        return state, state

    _, rest = jax.lax.scan(step, first, jax.random.split(key, n_steps - 1))
    return jnp.concatenate([first[None], rest])
