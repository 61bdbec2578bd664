"""emjax.inference.hmm against brute-force enumeration of every state path (tests/reference/hmm.py)
and a float64 NumPy forward recursion for a long sequence."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emjax.inference import hmm
from reference.hmm import enumerate_paths, tiny_hmm


def as_logs(initial, trans, log_emit):
    return hmm.safe_log(jnp.asarray(initial)), hmm.safe_log(jnp.asarray(trans)), jnp.asarray(log_emit)


@pytest.mark.parametrize("parallel", [False, True])
def test_forward_backward_equals_enumeration(x64, parallel):
    t = 6
    for seed, length in [(0, 6), (1, 4), (2, 1), (3, 5)]:  # one shape: lengths are traced
        initial, trans, log_emit = tiny_hmm(seed, 3, t)
        ll, marginals, pairwise, best = enumerate_paths(initial, trans, log_emit, length)
        args = as_logs(initial, trans, log_emit) + (length,)
        post = hmm.posterior(*args, parallel=parallel)
        np.testing.assert_allclose(post.log_likelihood, ll, rtol=1e-12)
        np.testing.assert_allclose(hmm.log_likelihood(*args, parallel=parallel), ll, rtol=1e-12)
        np.testing.assert_allclose(post.marginals, marginals, atol=1e-12)
        np.testing.assert_allclose(post.transitions, pairwise.sum(axis=0), atol=1e-12)
        np.testing.assert_allclose(hmm.pairwise_marginals(*args, parallel=parallel), pairwise, atol=1e-12)
        np.testing.assert_array_equal(hmm.viterbi(*args), best)
        # hard zeros: an impossible transition or start has exactly zero posterior mass
        assert np.all(np.asarray(post.transitions)[trans == 0] == 0)
        assert np.all(np.asarray(post.marginals)[0, initial == 0] == 0)


def test_impossible_observation_gives_minus_inf_never_nan(x64):
    initial, trans, log_emit = tiny_hmm(0, k=3, t=6)
    log_emit[3] = -np.inf  # no state can emit step 3
    for parallel in (False, True):
        post = hmm.posterior(*as_logs(initial, trans, log_emit), 6, parallel=parallel)
        assert post.log_likelihood == -np.inf
        assert np.all(np.isfinite(post.marginals)) and np.all(np.isfinite(post.transitions))
    # a path forced through a hard-zero transition is impossible as well
    log_emit = np.full((2, 3), -np.inf)
    log_emit[0, 0] = log_emit[1, 2] = 0.0
    assert hmm.log_likelihood(*as_logs(initial, trans, log_emit), 2) == -np.inf


@pytest.mark.parametrize("parallel", [False, True])
def test_gradients_through_hard_zeros_are_finite(x64, parallel):
    initial, trans, log_emit = tiny_hmm(4, k=3, t=6)

    def loglik(initial, trans, log_emit):
        return hmm.posterior(hmm.safe_log(initial), hmm.safe_log(trans), log_emit, 5,
                             parallel=parallel).log_likelihood

    grads = jax.grad(loglik, argnums=(0, 1, 2))(*map(jnp.asarray, (initial, trans, log_emit)))
    for grad in grads:
        assert np.all(np.isfinite(grad))
    # d log p / d log b_tau(j) is the state marginal: check against enumeration
    _, marginals, _, _ = enumerate_paths(initial, trans, log_emit.astype(np.float64), 5)
    np.testing.assert_allclose(grads[2], marginals, atol=1e-5)


@pytest.mark.slow
def test_long_sequence_matches_float64_reference(x64):
    rng = np.random.default_rng(7)
    k, t = 3, 100_000
    initial = rng.dirichlet(np.ones(k))
    trans = rng.dirichlet(np.ones(k) * 5, size=k)
    log_emit = rng.normal(scale=3.0, size=(t, k)) - 2.0
    # NumPy reference: scaled forward recursion in probability space, log of the scales summed
    probs = np.exp(log_emit - log_emit.max(axis=1, keepdims=True))
    total = log_emit.max(axis=1).sum()
    alpha = initial * probs[0]
    for s in range(1, t):
        norm = alpha.sum()
        total += np.log(norm)
        alpha = (alpha / norm) @ trans * probs[s]
    reference = total + np.log(alpha.sum())
    for parallel in (False, True):  # the associative scan's tree has depth ~17 here
        got = hmm.log_likelihood(*as_logs(initial, trans, log_emit), parallel=parallel)
        np.testing.assert_allclose(got, reference, rtol=1e-10)
    with jax.enable_x64(False):  # float32 stays finite (its rounding is ~1e-7 per step)
        got32 = hmm.log_likelihood(*as_logs(initial.astype(np.float32), trans.astype(np.float32),
                                            log_emit.astype(np.float32)))
        assert got32.dtype == jnp.float32 and np.isfinite(got32)
        np.testing.assert_allclose(got32, reference, rtol=1e-4)


def test_sampled_transitions_follow_the_chain(x64):
    initial = np.array([0.2, 0.8, 0.0])
    trans = np.array([[0.5, 0.5, 0.0], [0.1, 0.6, 0.3], [0.0, 0.3, 0.7]])
    states = np.asarray(hmm.sample_states(jax.random.key(0), jnp.asarray(initial), jnp.asarray(trans), 20_000))
    counts = np.zeros((3, 3))
    np.add.at(counts, (states[:-1], states[1:]), 1)
    freq = counts / counts.sum(axis=1, keepdims=True)
    assert np.all(freq[trans == 0] == 0)
    np.testing.assert_allclose(freq, trans, atol=0.03)  # about 5 standard errors at these counts
    starts = [int(hmm.sample_states(jax.random.key(i), jnp.asarray(initial), jnp.asarray(trans), 1)[0])
              for i in range(3)]
    assert 2 not in starts
