"""BayesianNetwork against brute-force enumeration of the joint and a NumPy EM step (NumPy code
here), recovery of a latent-variable network from generated data, and the bad inputs."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

import emjax
from emjax import BayesianNetwork, BNParams, Status

# ------------------------------------------------------------------ NumPy references


def random_tables(rng, parents, cards):
    """CPTs with rows drawn uniformly from the simplex (NumPy)."""
    tables = []
    for v, ps in enumerate(parents):
        t = rng.exponential(size=tuple(cards[u] for u in ps) + (cards[v],))
        tables.append(t / t.sum(axis=-1, keepdims=True))
    return tables


def brute_joint(tables, parents, cards):
    """p(x) for every complete assignment x, by enumeration: shape ``cards``."""
    joint = np.zeros(cards)
    for x in itertools.product(*map(range, cards)):
        joint[x] = np.prod([tables[v][tuple(x[u] for u in ps) + (x[v],)] for v, ps in enumerate(parents)])
    return joint


def consistent(row, cards):
    """Boolean mask over all assignments: agrees with the row's observed (non -1) values."""
    mask = np.ones(cards, bool)
    for v, value in enumerate(row):
        if value >= 0:
            shape = [1] * len(cards)
            shape[v] = cards[v]
            mask = mask & (np.arange(cards[v]) == value).reshape(shape)
    return mask


def family_marginal(p, fam):
    """Sum of the joint-shaped array ``p`` over every axis outside ``fam``, axes in ``fam``'s order."""
    others = tuple(a for a in range(p.ndim) if a not in fam)
    kept = sorted(fam)
    return p.sum(axis=others).transpose([kept.index(u) for u in fam])


def brute_force_estep(tables, parents, cards, data, weights):
    """(row log-likelihoods, expected family counts, per-variable posterior marginals)."""
    joint = brute_joint(tables, parents, cards)
    row_ll, counts = [], [np.zeros_like(t) for t in tables]
    marginals = [np.zeros((len(data), c)) for c in cards]
    for n, (row, w) in enumerate(zip(data, weights)):
        p = joint * consistent(row, cards)
        total = p.sum()
        row_ll.append(np.log(total))
        for v, ps in enumerate(parents):
            counts[v] += w * family_marginal(p, ps + (v,)) / total
            marginals[v][n] = family_marginal(p, (v,)) / total
    return np.array(row_ll), counts, marginals


# A tiny network with a v-structure, a chain and a latent root: 0 -> 1, 0 -> 2, (1, 0) -> 3, 3 -> 4.
PARENTS = ((), (0,), (0,), (1, 0), (3,))
CARDS = (2, 3, 2, 2, 3)
TINY = BayesianNetwork({1: 0, 2: [0], 3: (1, 0), 4: (3,)}, CARDS)


def tiny_data(rng, n, missing=0.3):
    data = np.stack([rng.integers(c, size=n) for c in CARDS], axis=1)
    data[rng.random(data.shape) < missing] = -1
    data[0] = -1                      # a fully missing row
    data[1] = [0, 2, 1, 1, 2]         # a fully observed one
    data[:, 0] = -1                   # variable 0 is never seen
    return data


def test_structure_is_canonical_and_hashable():
    same = BayesianNetwork([(3, [1, 0]), (1, 0), (4, 3), (2, 0)], list(CARDS))
    assert TINY.parents == PARENTS and same == TINY and hash(same) == hash(TINY)
    assert TINY.n_free_parameters() == 1 + 2 * 2 + 2 * 1 + 6 * 1 + 2 * 2


@pytest.mark.slow
def test_brute_force_loglik_counts_and_marginals(x64):
    rng = np.random.default_rng(0)
    tables = random_tables(rng, PARENTS, CARDS)
    data = tiny_data(rng, 40)
    weights = rng.uniform(0.5, 2.0, size=len(data))
    weights[5] = 0.0
    row_ll, counts, marginals = brute_force_estep(tables, PARENTS, CARDS, data, weights)
    params = BNParams(tuple(jnp.asarray(t) for t in tables))

    np.testing.assert_allclose(jax.jit(TINY.log_prob)(params, data), row_ll, rtol=1e-12, atol=1e-13)
    assert abs(row_ll[0]) < 1e-13  # nothing observed: probability one
    stats, loglik = jax.jit(TINY.e_step)(params, jnp.asarray(data), jnp.asarray(weights))
    np.testing.assert_allclose(loglik, np.sum(np.where(weights > 0, weights * row_ll, 0)), rtol=1e-12)
    for got, want in zip(stats, counts):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    for got, want in zip(jax.jit(TINY.posterior)(params, data), marginals):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def numpy_em_step(tables, parents, cards, data, weights, pseudo_count):
    _, counts, _ = brute_force_estep(tables, parents, cards, data, weights)
    new = []
    for c in counts:
        smoothed = c + pseudo_count
        new.append(smoothed / smoothed.sum(axis=-1, keepdims=True))
    return new


@pytest.mark.slow
def test_one_em_step_matches_numpy(x64):
    """One iteration of emjax.em (E-step in chunks of 16 rows plus a tail) against NumPy."""
    rng, pseudo_count = np.random.default_rng(1), 0.5
    model = BayesianNetwork(TINY.structure, CARDS, pseudo_count=pseudo_count)
    tables = random_tables(rng, PARENTS, CARDS)
    data = tiny_data(rng, 60, missing=0.2)
    weights = rng.integers(0, 4, size=len(data)).astype(float)
    params = BNParams(tuple(jnp.asarray(t) for t in tables))
    result = emjax.em(model, params, data, weights, max_iter=1, chunk_size=16, throw=False)
    assert result.status == Status.MAX_ITER
    want = numpy_em_step(tables, PARENTS, CARDS, data, weights, pseudo_count)
    for got, ref in zip(result.params.tables, want):
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(got, ref, rtol=1e-10)
    row_ll, _, _ = brute_force_estep(want, PARENTS, CARDS, data, weights)
    log_prior = pseudo_count * sum(np.sum(np.log(t)) for t in want)
    objective = (np.sum(weights * row_ll) + log_prior) / np.sum(weights)
    np.testing.assert_allclose(result.history[0], objective, rtol=1e-10)
    np.testing.assert_allclose(model.log_prior(result.params), log_prior, rtol=1e-10)


def test_maximum_likelihood_m_step_keeps_unseen_parent_rows(x64):
    """pseudo_count=0: counts normalised as they are; a parent configuration never seen keeps
    its previous row instead of becoming 0/0."""
    model = BayesianNetwork(TINY.structure, CARDS, pseudo_count=0.0)
    rng = np.random.default_rng(4)
    old = random_tables(rng, PARENTS, CARDS)
    counts = [rng.uniform(0, 3, size=t.shape) for t in old]
    counts[3][2, 1] = 0.0  # P(x3 | x1 = 2, x0 = 1): no expected counts
    new = model.m_step(tuple(map(jnp.asarray, counts)), BNParams(tuple(map(jnp.asarray, old))))
    for v, (got, c) in enumerate(zip(new.tables, counts)):
        want = c / np.where(c.sum(-1, keepdims=True) > 0, c.sum(-1, keepdims=True), 1)
        if v == 3:
            want[2, 1] = old[3][2, 1]
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert model.log_prior(new) == 0.0


def test_structural_zeros_and_impossible_rows(x64):
    """Tables with zeros (maximum likelihood can produce them): exact counts and no NaN; a row
    that has probability zero gives a log-likelihood of -inf, not a silently wrong number."""
    parents, cards = ((), (0,), (0,), (1,)), (2, 3, 3, 2)
    model = BayesianNetwork(dict(enumerate(parents)), cards, pseudo_count=0.0)
    tables = [np.array([0.5, 0.5]), np.array([[1.0, 0, 0], [0.2, 0.3, 0.5]]),
              np.array([[0, 1.0, 0], [0.5, 0.5, 0]]), np.array([[1.0, 0], [0.5, 0.5], [0.3, 0.7]])]
    params = BNParams(tuple(map(jnp.asarray, tables)))
    data = np.array([[-1, 0, 1, 0], [-1, -1, -1, 1], [-1, 2, 0, -1], [0, -1, 1, -1]])
    row_ll, counts, _ = brute_force_estep(tables, parents, cards, data, np.ones(4))
    e_step = jax.jit(model.e_step)
    stats, loglik = e_step(params, jnp.asarray(data), jnp.ones(4))
    np.testing.assert_allclose(loglik, row_ll.sum(), rtol=1e-12)
    for got, want in zip(stats, counts):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    data[3] = [-1, 1, 2, -1]  # x2 = 2 has probability 0 under both z: log-likelihood -inf,
    _, loglik = e_step(params, jnp.asarray(data), jnp.ones(4))
    assert loglik == -np.inf  # which the driver reports as NONFINITE


def test_many_observed_children_do_not_underflow_float32():
    """A latent root with 55 observed 8-valued children: the row likelihood is ~1e-50, below
    float32's range, yet the rescaled contraction keeps it exact in log space (and more variables
    than there are ASCII letters for einsum subscripts)."""
    n_children, card = 55, 8
    model = BayesianNetwork({v: 0 for v in range(1, n_children + 1)}, (2,) + (card,) * n_children)
    rng = np.random.default_rng(2)
    tables = [np.array([0.3, 0.7])] + [rng.dirichlet(np.full(card, 2.0), size=2) for _ in range(n_children)]
    data = rng.integers(card, size=(3, n_children + 1))
    data[:, 0] = -1
    picked = [sum(np.log(tables[v][z, x]) for v, x in enumerate(row[1:], 1)) for row in data for z in (0, 1)]
    want = logsumexp(np.reshape(picked, (3, 2)) + np.log(tables[0]), axis=1)
    params = BNParams(tuple(jnp.asarray(t, jnp.float32) for t in tables))
    got = jax.jit(model.log_prob)(params, data)
    assert np.all(want < -100)
    np.testing.assert_allclose(got, want, rtol=1e-5)


# ------------------------------------------------------------------ fitting

# Truth for recovery: latent Z (3 states) -> A, B, C (4 states each); an observed binary root R;
# (Z, R) -> D (binary).
LATENT_CARDS = (3, 4, 4, 4, 2, 2)
LATENT_NET = BayesianNetwork({1: 0, 2: 0, 3: 0, 5: (0, 4)}, LATENT_CARDS, latent=(0,))


def latent_truth():
    prior = np.array([0.5, 0.3, 0.2])
    child = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    d_given = np.array([[0.1, 0.8], [0.9, 0.3], [0.5, 0.2]])  # P(D = 0 | z, r)
    return [prior, child, np.roll(child, 1, axis=1), child[:, ::-1], np.array([0.5, 0.5]),
            np.stack([d_given, 1 - d_given], axis=-1)]


def generate(tables, n, rng, missing=0.1):
    """Ancestral sampling in NumPy (variables are already in topological order)."""
    z = rng.choice(3, size=n, p=tables[0])
    cols = [z] + [np.array([rng.choice(4, p=tables[v][zi]) for zi in z]) for v in (1, 2, 3)]
    cols.append(rng.choice(2, size=n, p=tables[4]))
    cols.append(np.array([rng.choice(2, p=tables[5][zi, ri]) for zi, ri in zip(z, cols[4])]))
    data = np.stack(cols, axis=1)
    data[rng.random(data.shape) < missing] = -1
    data[:, 0] = -1
    return data


@pytest.fixture(scope="module")
def latent_fit():
    truth = latent_truth()
    data = generate(truth, 4000, np.random.default_rng(3))
    result = emjax.fit(LATENT_NET, data, jax.random.key(0), n_init=8, max_iter=300, tol=1e-6)
    return truth, result


@pytest.mark.slow
def test_recovers_latent_network_up_to_label_permutation(latent_fit):
    truth, result = latent_fit
    learned = [np.asarray(t, np.float64) for t in result.params.tables]
    errors = {}
    for perm in itertools.permutations(range(3)):
        relabelled = [t[list(perm)] for t in learned[:4]] + [learned[4], learned[5][list(perm)]]
        errors[perm] = max(np.max(np.abs(a - b)) for a, b in zip(relabelled, truth))
    assert min(errors.values()) < 0.1, errors


def test_objective_never_decreases_on_any_restart(latent_fit):
    _, result = latent_fit
    restarts = result.restarts
    assert np.all(np.isin(np.asarray(restarts.status), [Status.CONVERGED, Status.MAX_ITER]))
    for history, n_iter in zip(np.asarray(restarts.history), np.asarray(restarts.n_iter)):
        steps = np.diff(history[:n_iter])
        rounding = 256 * np.finfo(np.float32).eps * (1 + np.abs(history[:n_iter - 1]))
        assert n_iter > 5 and np.all(steps >= -rounding)


def test_fit_dtype_and_ancestral_sampling(latent_fit):
    truth, result = latent_fit
    assert all(t.dtype == jnp.float32 for t in result.params.tables)
    params = BNParams(tuple(jnp.asarray(t, jnp.float32) for t in truth))
    x = np.asarray(jax.jit(LATENT_NET.sample, static_argnums=2)(jax.random.key(1), params, 20000))
    assert x.shape == (20000, 6) and x.dtype == np.int32
    np.testing.assert_allclose(np.bincount(x[:, 0], minlength=3) / len(x), truth[0], atol=0.015)
    for z in range(3):  # P(A | Z = z) and P(D | Z = z, R = 1) from the draws
        rows = x[:, 0] == z
        np.testing.assert_allclose(np.bincount(x[rows, 1], minlength=4) / rows.sum(), truth[1][z], atol=0.03)
        rows &= x[:, 4] == 1
        np.testing.assert_allclose(np.mean(x[rows, 5] == 0), truth[5][z, 1, 0], atol=0.04)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("structure, cards, match", [
    ({0: (1,), 1: (2,), 2: (0,)}, (2, 2, 2), r"cycle: (0 -> 2 -> 1 -> 0|1 -> 0 -> 2 -> 1|2 -> 1 -> 0 -> 2)"),
    ({1: (1,)}, (2, 2), r"cycle: 1 -> 1"),
    ({1: (5,)}, (2, 2), r"unknown parent of variable 1: 5"),
    ({3: (0,)}, (2, 2), r"unknown child 3"),
    ({1: (0, 0)}, (2, 2), r"repeated parent"),
    ({}, (2, 0), r"cardinalities\[1\] must be a positive integer; got 0"),
    ({v: tuple(range(v)) for v in range(9)}, (4,) * 9,
     r"262144 elements per row.*max_elements_per_row=65536"),
])
def test_bad_structures(structure, cards, match):
    with pytest.raises(ValueError, match=match):
        BayesianNetwork(structure, cards)


@pytest.mark.parametrize("data, match", [
    ([[0, 2, 1, 1, 3]], r"data\[0, 4\] = 3 is outside the categories of variable 4: 0..2"),
    ([[0, 1, 1, 1, 0], [-2, 0, 0, 0, 0]], r"data\[1, 0\] = -2 is outside"),
    ([[0, 0.5, 1, 1, 0]], r"integer categories.*data\[0, 1\] = 0.5"),
    ([[0, np.nan, 1, 1, 0]], r"data\[0, 1\] = nan"),
    ([["a", "b", "c", "d", "e"]], r"integer categories"),
    ([[0, 1, 1, 1]], r"one column per variable \(5\)"),
])
def test_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        emjax.fit(TINY, np.array(data), jax.random.key(0))


@pytest.mark.parametrize("options, match", [
    ({"pseudo_count": -1.0}, r"pseudo_count must be a finite number >= 0; got -1.0"),
    ({"latent": (7,)}, r"latent must name variables in 0..4; got \(7,\)"),
    ({"max_elements_per_row": 0}, r"max_elements_per_row must be a positive integer; got 0"),
])
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        BayesianNetwork(TINY.structure, CARDS, **options)


def test_observed_value_of_declared_latent_variable():
    data = np.full((4, 6), -1)
    data[2, 0] = 1
    with pytest.raises(ValueError, match=r"variable 0 is declared latent.*data\[2, 0\] = 1"):
        emjax.fit(LATENT_NET, data, jax.random.key(0))


def test_bad_tables():
    data = np.zeros((3, 5), int)
    good = [np.full(TINY.table_shape(v), 1 / CARDS[v]) for v in range(5)]
    wrong_shape = good[:3] + [np.full((2, 3, 2), 0.5)] + good[4:]
    with pytest.raises(ValueError, match=r"params.tables\[3\] must have shape \(3, 2, 2\).*got \(2, 3, 2\)"):
        emjax.em(TINY, BNParams(tuple(wrong_shape)), data)
    with pytest.raises(ValueError, match="sequence of 5 tables"):
        emjax.em(TINY, BNParams(tuple(good[:4])), data)
    unnormalised = good[:1] + [np.full((2, 3), 0.5)] + good[2:]
    with pytest.raises(ValueError, match=r"params.tables\[1\]: every row must sum to 1; row 0 sums to 1.5.*parents \(0,\)"):
        emjax.em(TINY, BNParams(tuple(unnormalised)), data)
