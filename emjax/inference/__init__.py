"""Exact inference routines: pure functions of arrays, usable without a model or the driver
(HMM forward-backward and Viterbi, the batched scaled HMM forward-backward, Bayesian-network
contraction).

Examples:
    >>> import jax.numpy as jnp
    >>> from emjax.inference import hmm
    >>> log_init = jnp.log(jnp.array([0.5, 0.5]))
    >>> log_trans = jnp.log(jnp.array([[0.9, 0.1], [0.1, 0.9]]))           # row = from
    >>> log_emit = jnp.log(jnp.array([[0.9, 0.1], [0.9, 0.1], [0.01, 0.99]]))   # (steps, states)
    >>> hmm.viterbi(log_init, log_trans, log_emit).tolist()
    [0, 0, 1]
    >>> hmm.posterior(log_init, log_trans, log_emit).marginals.shape
    (3, 2)
"""
from . import hmm, hmm_scaled

__all__ = ["hmm", "hmm_scaled"]
