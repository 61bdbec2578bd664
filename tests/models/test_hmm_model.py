"""emjax.HMM under the EM engine: one Baum-Welch step against enumeration, padding, weights,
freezing, hard zeros, monotone restarts, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from reference.hmm import baum_welch_step

K, D, T = 3, 2, 6


def tiny_problem(seed=0):
    """Two sequences (lengths 6 and 4, padded to 6) from a 3-state full-covariance HMM with hard
    zeros, sequence weights, and starting params."""
    rng = np.random.default_rng(seed)
    initial = np.array([0.6, 0.4, 0.0])
    trans = np.array([[0.7, 0.3, 0.0], [0.0, 0.6, 0.4], [0.2, 0.0, 0.8]])
    means = rng.normal(scale=2.0, size=(K, D))
    a = rng.normal(size=(K, D, D))
    covs = a @ np.swapaxes(a, 1, 2) + 0.5 * np.eye(D)
    x = rng.normal(scale=2.0, size=(2, T, D))
    x[1, 4:] = 1e3  # padding: garbage that must not matter
    lengths = np.array([6, 4])
    weights = np.array([1.0, 2.5])
    params = emjax.HMMParams(jnp.asarray(initial), jnp.asarray(trans),
                             emjax.GaussianEmissionParams(jnp.asarray(means), jnp.asarray(covs)))
    return x, lengths, weights, params


@pytest.mark.parametrize("regularization", ["none", "prior"])  # pseudo_count 0 / default
def test_one_baum_welch_step_equals_enumeration(x64, regularization):
    x, lengths, weights, params = tiny_problem()
    p = jax.tree_util.tree_map(np.asarray, params)
    total, posteriors, new = baum_welch_step(x, lengths, weights, p.initial, p.transitions,
                                             p.emission.means, p.emission.covariances)
    # 16 weighted steps, 3 states: some state has fewer than d + 1 steps, which the collapse guard
    # would reject; this test checks the M-step's arithmetic, so the guard is off
    pseudo_count = 0 if regularization == "none" else emjax.components.PSEUDO_COUNT
    model = emjax.GaussianHMM(K, pseudo_count=pseudo_count, reg_covar=0.01, collapse_guard=False)
    data = (x, lengths)
    if regularization == "none":  # inference does not depend on the regularization
        np.testing.assert_allclose(model.log_prob(params, data), [ll for ll, _, _ in posteriors], rtol=1e-12)
        np.testing.assert_allclose(model.posterior(params, data), [g for _, g, _ in posteriors], atol=1e-12)
        np.testing.assert_array_equal(model.predict(params, data), [b for _, _, b in posteriors])

    result = emjax.em(model, params, data, weights, max_iter=1, tol=0.0, throw=False)
    got = result.params
    c = 1e-3 if regularization == "prior" else 0.0
    allowed = p.transitions > 0
    expected_trans = (new["transition_counts"] + c * allowed)
    expected_trans /= expected_trans.sum(axis=1, keepdims=True)
    expected_initial = new["start_counts"] + c * (p.initial > 0)
    expected_initial /= expected_initial.sum()
    if regularization == "none":  # reg_covar is absolute, in the data's units
        expected_covs = new["scatter"] / new["counts"][:, None, None] + 0.01 * np.eye(D)
    else:  # Wishart prior in standardised units: psi diag(scale^2) in the data's units
        w, steps = new["step_weights"], new["steps"]
        var = w @ (steps - w @ steps / w.sum()) ** 2 / w.sum()
        expected_covs = (new["scatter"] + 0.01 * np.diag(var)) / (new["counts"] + c)[:, None, None]
    np.testing.assert_allclose(got.initial, expected_initial, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.transitions, expected_trans, rtol=1e-10, atol=1e-14)
    assert np.all(np.asarray(got.transitions)[~allowed] == 0) and float(got.initial[2]) == 0
    np.testing.assert_allclose(got.emission.means, new["means"], rtol=1e-10)
    np.testing.assert_allclose(got.emission.covariances, expected_covs, rtol=1e-10)
    # the reported log-likelihood is that of the returned params, per unit sequence weight
    np.testing.assert_allclose(result.log_likelihood * weights.sum(),
                               np.sum(weights * np.asarray(model.log_prob(got, data))), rtol=1e-12)
    if regularization == "none":  # no prior: the monitored objective is the log-likelihood
        np.testing.assert_allclose(result.history[0], result.log_likelihood, rtol=1e-12)


def test_padding_changes_nothing(x64):
    x, lengths, weights, params = tiny_problem()
    e_step = jax.jit(emjax.GaussianHMM(K).e_step)

    def stats(x, lengths, weights):
        return jax.tree_util.tree_leaves(e_step(params, emjax.Sequences(jnp.asarray(x), jnp.asarray(lengths)),
                                                jnp.asarray(weights, jnp.float64)))

    reference = stats(x, lengths, weights)
    other = x.copy()
    other[1, 4:] = np.nan  # same shape, other garbage: bitwise the same
    for a, b in zip(reference, stats(other, lengths, weights)):
        np.testing.assert_array_equal(a, b)
    longer = np.concatenate([x, np.full((2, 3, D), -7.0)], axis=1)  # three more padded steps
    for a, b in zip(reference, stats(longer, lengths, weights)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    # a zero-weight sequence contributes exactly nothing; weight 2 equals the sequence twice
    changed = x.copy()
    changed[1] = 5.0
    for a, b in zip(stats(x, lengths, [1.0, 0.0]), stats(changed, [6, 6], [1.0, 0.0])):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(stats(x, lengths, [2.0, 0.0]), stats(x[[0, 0]], [6, 6], [1.0, 1.0])):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


TRUE_TRANSITIONS = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.05, 0.1, 0.85]])
TRUE_MEANS = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 3.0]])


def regimes(n_sequences=4, n_steps=100, seed=1):
    """A generated corpus (NumPy): 3 sticky regimes, 2-d Gaussian emissions, unequal lengths."""
    rng = np.random.default_rng(seed)
    states = np.zeros((n_sequences, n_steps), int)
    for s in range(n_sequences):
        for t in range(1, n_steps):
            states[s, t] = rng.choice(3, p=TRUE_TRANSITIONS[states[s, t - 1]])
    x = TRUE_MEANS[states] + rng.normal(scale=0.7, size=(n_sequences, n_steps, 2))
    return x, np.array([n_steps - 13 * i for i in range(n_sequences)])


@pytest.mark.slow
def test_every_restart_is_monotone_and_recovers_the_regimes():
    x, lengths = regimes()
    model = emjax.GaussianHMM(3, covariance_type="full")
    res = emjax.fit(model, (x, lengths), jax.random.key(0), n_init=4, max_iter=25, tol=0.0, throw=False)
    statuses = np.asarray(res.restarts.status)
    assert np.all(statuses == emjax.Status.MAX_ITER), statuses
    history = np.asarray(res.restarts.history)
    eps = np.finfo(np.float32).eps
    assert np.all(np.diff(history, axis=1) >= -256 * eps * (1 + np.abs(history[:, :-1])))
    # the best restart finds the regimes (states matched to the true ones by their means)
    order = np.argmin(((np.asarray(res.params.emission.means)[None] - TRUE_MEANS[:, None]) ** 2).sum(-1), axis=1)
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(np.asarray(res.params.emission.means)[order], TRUE_MEANS, atol=0.2)
    np.testing.assert_allclose(np.asarray(res.params.transitions)[order][:, order], TRUE_TRANSITIONS, atol=0.1)


def test_fixed_parts_stay_and_gradients_through_hard_zeros_are_finite(x64):
    x, lengths, weights, params = tiny_problem()
    data = (x, lengths)
    fixed = ("transitions", "emissions")
    got = emjax.em(emjax.GaussianHMM(K, fixed=fixed), params, data, weights, max_iter=5, tol=0.0,
                   throw=False).params
    np.testing.assert_array_equal(got.transitions, params.transitions)
    # emissions round-trip through the standardised coordinates
    np.testing.assert_allclose(got.emission.means, params.emission.means, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(got.emission.covariances, params.emission.covariances, rtol=1e-14)
    assert not np.allclose(got.initial, params.initial) and float(got.initial[2]) == 0
    # the objective's gradient with respect to the parameters is finite despite the hard zeros
    model = emjax.GaussianHMM(K)
    seqs = emjax.Sequences(jnp.asarray(x), jnp.asarray(lengths))
    grad = jax.jit(jax.grad(lambda p: model.e_step(p, seqs, jnp.asarray(weights))[1] + model.log_prior(p)))(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grad))


def test_bad_input_names_the_value():
    x, lengths, weights, params = tiny_problem()
    model = emjax.GaussianHMM(K)
    key = jax.random.key(0)
    cases = [
        ((x, [6, 0]), "lengths must be >= 1; 1 are not, the first at index 1 (length 0)"),
        ((x, [-2, 4]), "the first at index 0 (length -2)"),
        ((x, [6, 7]), "lengths must be <= n_steps=6 (the padded axis); 1 are not, the first at index 1 (length 7)"),
        ((x, [6]), "lengths must have shape (2,)"),
        ((x, [6.5, 4]), "lengths must be integers"),
        (x[0, :, 0], "data must be one sequence"),
    ]
    for data, message in cases:
        with pytest.raises(ValueError, match=__import__("re").escape(message)):
            emjax.fit(model, data, key)
    bad = x.copy()
    bad[1, 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"data contains 1 NaN value\(s\); the first at index \(1, 2, 1\)"):
        emjax.fit(model, (bad, lengths), key)
    rows = params.transitions.at[1].set(jnp.array([0.5, 0.2, 0.2]))
    with pytest.raises(ValueError, match=r"params.transitions: every row must sum to 1; row 1 sums to 0.9"):
        emjax.em(model, params._replace(transitions=rows), (x, lengths))
    with pytest.raises(ValueError, match=r"params.initial must be non-negative; entry 1 is -0.1"):
        emjax.em(model, params._replace(initial=jnp.array([1.1, -0.1, 0.0])), (x, lengths))
    with pytest.raises(ValueError, match="fixed may name only"):
        emjax.HMM(3, fixed=("transition",))
    with pytest.raises(ValueError, match="n_states must be a positive integer; got 0"):
        emjax.HMM(0)


def test_bernoulli_step_with_priors_equals_enumeration(x64):
    from reference.hmm import enumerate_paths

    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(2, 5, 3)).astype(float)
    lengths, k, c = np.array([5, 3]), 2, 1e-3
    initial, trans, probs = np.array([0.3, 0.7]), np.array([[0.8, 0.2], [0.4, 0.6]]), rng.uniform(0.2, 0.8, (k, 3))
    start_counts, trans_counts = np.zeros(k), np.zeros((k, k))
    counts, sums = np.zeros(k), np.zeros((k, 3))
    for xs, length in zip(x, lengths):
        log_emit = xs @ np.log(probs).T + (1 - xs) @ np.log(1 - probs).T
        _, gamma, xi, _ = enumerate_paths(initial, trans, log_emit, length)
        start_counts += gamma[0]
        trans_counts += xi.sum(axis=0)
        counts += gamma[:length].sum(axis=0)
        sums += gamma[:length].T @ xs[:length]
    params = emjax.HMMParams(jnp.asarray(initial), jnp.asarray(trans), emjax.BernoulliEmissionParams(jnp.asarray(probs)))
    got = emjax.em(emjax.BernoulliHMM(k), params, (x, lengths), max_iter=1, tol=0.0, throw=False).params
    np.testing.assert_allclose(got.initial, (start_counts + c) / (start_counts.sum() + k * c), rtol=1e-12)
    np.testing.assert_allclose(got.transitions, (trans_counts + c) / (trans_counts.sum(1, keepdims=True) + k * c),
                               rtol=1e-12)
    np.testing.assert_allclose(got.emission.probs, (sums + c) / (counts[:, None] + 2 * c), rtol=1e-12)


def test_bad_discrete_input_names_the_value():
    key = jax.random.key(0)
    symbols = np.zeros((2, 4, 2), int)
    symbols[1, 2, 1] = 5
    with pytest.raises(ValueError, match=r"data\[1\] \(steps x features\) has 1 category code\(s\) out of "
                                         r"range; the first at index \(2, 1\) is 5, but feature 1 allows"):
        emjax.fit(emjax.CategoricalHMM(2, n_categories=(3, 4)), (symbols, [4, 4]), key)
    symbols[1, 2, 1] = 0
    symbols[1, 3, 0] = 9  # beyond lengths[1] = 3: padding, never read
    emjax.CategoricalHMM(2, n_categories=(3, 4)).validate((symbols, [4, 3]))
    counts = np.ones((5, 2))
    counts[3, 1] = -2
    with pytest.raises(ValueError, match=r"data\[0\] \(steps x features\) must hold non-negative integer "
                                         r"counts; 1 value\(s\) do not, the first at index \(3, 1\) \(-2.0\)"):
        emjax.fit(emjax.PoissonHMM(2), counts, key)
    with pytest.raises(ValueError, match="categorical emissions need n_categories"):
        emjax.HMM(2, emission="categorical")
