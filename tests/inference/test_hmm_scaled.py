"""emjax.inference.hmm_scaled (the batched, scaled-probability forward-backward of the HMM E-step)
against brute-force enumeration of every state path and a float64 NumPy forward recursion."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emjax.inference import hmm_scaled
from reference.hmm import enumerate_paths, tiny_hmm

LENGTHS = np.array([6, 4, 1, 5])
WEIGHTS = np.array([1.0, 2.5, 0.5, 0.0])


def batch(seed, t=6, k=3):
    """One tiny HMM (hard zeros in initial and transitions) and per-sequence emissions ``(t, s, k)``."""
    initial, trans, _ = tiny_hmm(seed, k, t)
    log_emit = np.stack([tiny_hmm(seed + 1 + i, k, t)[2] for i in range(len(LENGTHS))], axis=1)
    return initial, trans, log_emit


def run(initial, trans, log_emit, lengths=LENGTHS, weights=WEIGHTS):
    return hmm_scaled.batch_posterior(*map(jnp.asarray, (initial, trans, log_emit, lengths, weights)))


def test_batch_posterior_equals_enumeration(x64):
    for seed in (0, 10):
        initial, trans, log_emit = batch(seed)
        post = run(initial, trans, log_emit)
        counts = np.zeros_like(trans)
        for i, (length, w) in enumerate(zip(LENGTHS, WEIGHTS)):
            ll, marginals, pairwise, _ = enumerate_paths(initial, trans, log_emit[:, i], length)
            np.testing.assert_allclose(post.log_likelihood[i], ll, rtol=1e-12)
            np.testing.assert_allclose(post.marginals[:, i], marginals, atol=1e-12)  # 0 when padded
            counts += w * pairwise.sum(axis=0)
        np.testing.assert_allclose(post.transitions, counts, atol=1e-12)
        # hard zeros stay exact zeros
        assert np.all(np.asarray(post.transitions)[trans == 0] == 0)
        assert np.all(np.asarray(post.marginals)[0][:, initial == 0] == 0)


def test_padding_changes_nothing_and_impossible_steps_give_minus_inf(x64):
    initial, trans, log_emit = batch(20)
    reference = run(initial, trans, log_emit)
    garbage = log_emit.copy()
    for i, length in enumerate(LENGTHS):
        garbage[length:, i] = np.array([np.inf, -np.inf, np.nan])[i % 3]  # padded steps only
    got = run(initial, trans, garbage)
    for name in ("log_likelihood", "marginals", "transitions"):
        np.testing.assert_array_equal(getattr(got, name), getattr(reference, name))
    impossible = log_emit.copy()
    impossible[2, 0] = -np.inf  # no state can emit step 2 of sequence 0
    impossible[:2, 3] = [[0.0, -np.inf, -np.inf], [-np.inf, -np.inf, 0.0]]  # forced 0 -> 2: a hard zero
    post = run(initial, trans, impossible, weights=np.ones(4))
    np.testing.assert_array_equal(np.asarray(post.log_likelihood)[[0, 3]], -np.inf)
    np.testing.assert_allclose(np.asarray(post.log_likelihood)[1:3], np.asarray(reference.log_likelihood)[1:3], rtol=1e-12)
    assert np.all(np.isfinite(post.marginals)) and np.all(np.isfinite(post.transitions))
    assert np.all(np.asarray(post.marginals)[:, [0, 3]] == 0)


def test_gradient_of_log_likelihood_is_the_marginals_and_finite_at_hard_zeros(x64):
    initial, trans, log_emit = batch(30)

    def total(initial, trans, log_emit):
        return jnp.sum(run(initial, trans, log_emit).log_likelihood)

    grads = jax.grad(total, argnums=(0, 1, 2))(*map(jnp.asarray, (initial, trans, log_emit)))
    assert all(np.all(np.isfinite(g)) for g in grads)
    # d log p / d log b_tau(j) = gamma_tau(j), zero at padded steps (enumeration)
    for i, length in enumerate(LENGTHS):
        marginals = enumerate_paths(initial, trans, log_emit[:, i], length)[1]
        np.testing.assert_allclose(grads[2][:, i], marginals, atol=1e-12)


@pytest.mark.slow
def test_long_float32_sequences_match_float64_reference():
    rng = np.random.default_rng(7)
    k, t = 3, 100_000
    initial = rng.dirichlet(np.ones(k))
    trans = rng.dirichlet(np.ones(k) * 5, size=k)
    log_emit = rng.normal(scale=3.0, size=(t, 2, k)) - 2.0
    log_emit[:, 1] -= 40.0  # a second sequence, far less likely: its own scale factors
    # NumPy float64 reference, both sequences at once: forward recursion in probability space
    # with every step's maximum and normaliser kept as logs
    top = log_emit.max(axis=2, keepdims=True)
    probs = np.exp(log_emit - top)
    total = top.sum(axis=(0, 2))
    alpha = initial * probs[0]
    for s in range(1, t):
        norm = alpha.sum(axis=1, keepdims=True)
        total += np.log(norm[:, 0])
        alpha = (alpha / norm) @ trans * probs[s]
    reference = total + np.log(alpha.sum(axis=1))
    post = run(initial.astype(np.float32), trans.astype(np.float32), log_emit.astype(np.float32),
               np.array([t, t]), np.ones(2, np.float32))
    assert post.log_likelihood.dtype == jnp.float32 and post.marginals.dtype == jnp.float32
    np.testing.assert_allclose(post.log_likelihood, reference, rtol=1e-5)
    np.testing.assert_allclose(np.sum(post.marginals, axis=2), 1.0, rtol=1e-5)
