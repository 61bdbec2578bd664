r"""A mixture of linear experts with a small neural gating network, as an
:class:`emjax.EnumeratedMixture` (generalized EM: the M-step takes optax steps).

.. math::
    p(y \mid x, \theta) = \sum_{k=1}^K g_k(x; \phi) \, \mathcal N(y \mid a_k^\top x + b_k, \sigma_k^2),
    \qquad g(x; \phi) = \operatorname{softmax}(\mathrm{MLP}_\phi(x)).

Neither the gate nor (jointly) the experts has a closed-form update under a shared optimizer, so
the whole params pytree is updated by a few Adam steps uphill on the expected complete
log-likelihood; :func:`emjax.gem.gem_ascent` keeps every EM iteration monotone.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

import emjax


def gate_logits(gate, x):
    """A one-hidden-layer tanh network: ``x (d,) -> logits (K,)``."""
    hidden = jnp.tanh(x @ gate["w1"] + gate["b1"])
    return hidden @ gate["w2"] + gate["b2"]


def log_joint(params, row, z):
    r""":math:`\log g_z(x) + \log \mathcal N(y \mid a_z^\top x + b_z, \sigma_z^2)` for one row ``(x, y)``."""
    x, y = row
    log_gate = jax.nn.log_softmax(gate_logits(params["gate"], x))[z]
    mean = x @ params["slopes"][z] + params["intercepts"][z]
    log_sigma = params["log_sigmas"][z]
    return log_gate - 0.5 * math.log(2 * math.pi) - log_sigma - 0.5 * ((y - mean) / jnp.exp(log_sigma)) ** 2


def make_init(n_experts: int, hidden: int = 8):
    """``init_fn(key, data, weights)``: small random gate, experts through random rows."""
    def init_fn(key, data, weights):
        x, y = data
        d = x.shape[1]
        keys = jax.random.split(key, 4)
        normal = lambda k, shape, scale: scale * jax.random.normal(k, shape, x.dtype)
        gate = {"w1": normal(keys[0], (d, hidden), 1.0), "b1": jnp.zeros(hidden, x.dtype),
                "w2": normal(keys[1], (hidden, n_experts), 0.1), "b2": jnp.zeros(n_experts, x.dtype)}
        rows = jax.random.choice(keys[2], x.shape[0], (n_experts,), replace=False, p=weights / weights.sum())
        return {"gate": gate, "slopes": normal(keys[3], (n_experts, d), 1.0),
                "intercepts": y[rows], "log_sigmas": jnp.full(n_experts, jnp.log(jnp.std(y)), x.dtype)}
    return init_fn


def mixture_of_experts(n_experts: int = 2, hidden: int = 8, learning_rate: float = 3e-2,
                       n_steps: int = 10) -> emjax.EnumeratedMixture:
    """The model; create it once and reuse it (functions compare by identity)."""
    return emjax.EnumeratedMixture(log_joint, make_init(n_experts, hidden), n_states=n_experts,
                                   optimizer=optax.adam(learning_rate), n_steps=n_steps)
