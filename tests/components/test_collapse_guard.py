"""The collapse guard (emjax.components.collapse): the rule against a NumPy reference written
with eigenvalues, and "more restarts never give a worse model" on the iris reproducer of issue
"Trust" (default GaussianMixture(3): 100 restarts used to pick a 3-row component, 1000 a 21-29-row
component on a plane, ARI 0.44-0.56), the HMM's Gaussian emissions and model selection."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

import emjax
from emjax import Status
from emjax.components.collapse import collapsed

PSI = 1e-6


def reference_collapsed(counts, means, scatter, present, psi, covariance_type):
    """The rule of the module docstring with eigenvalues (NumPy, float64)."""
    k, d = means.shape
    present = present > 0
    if covariance_type == "tied":
        return np.zeros(k, bool)
    needed = d + 1 if covariance_type == "full" else 2
    total = counts[present].sum()
    guarded = present & (total >= needed * present.sum())
    if covariance_type != "full":
        return guarded & (counts < needed)
    eps = np.finfo(np.float64).eps
    threshold = lambda m: psi + 64 * eps * np.trace(m)
    centre = (counts[:, None] * means).sum(0) / total
    between = np.where(present[:, None], means - centre, 0)
    data = np.where(present[:, None, None], scatter, 0).sum(0) + np.einsum("k,kd,ke->de", counts, between, between)
    spreads = np.linalg.eigvalsh(data)[0] > 100 * threshold(data)
    thin = np.array([np.linalg.eigvalsh(w)[0] <= threshold(w) for w in scatter])
    return guarded & ((counts < needed) | (spreads & thin))


def component(rng, rows, d, flat_directions=0):
    """``rows`` points in ``d`` dimensions, exactly flat in ``flat_directions`` random directions."""
    x = rng.normal(size=(rows, d))
    if flat_directions:
        basis = np.linalg.qr(rng.normal(size=(d, d)))[0][:, :flat_directions]
        x = x - (x @ basis) @ basis.T
    x = x + rng.normal(scale=3, size=d)
    m = x.mean(0)
    return float(rows), m, (x - m).T @ (x - m)


CASES = {  # per component: (rows, flat directions); d = 4
    "spread": [(50, 0), (40, 0), (60, 0)],
    "on a plane": [(50, 0), (29, 1), (60, 0)],
    "too few rows": [(50, 0), (3, 0), (60, 0)],
    "two flat": [(30, 2), (40, 0), (25, 0)],
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_rule_matches_the_eigenvalue_reference(x64, case, covariance_type):
    rng = np.random.default_rng(len(case))
    parts = [component(rng, rows, 4, flat) for rows, flat in CASES[case]]
    counts = np.array([p[0] for p in parts])
    means = np.stack([p[1] for p in parts])
    scatter = np.stack([p[2] for p in parts])
    present = np.ones(len(parts))
    got = np.asarray(collapsed(jnp.asarray(counts), jnp.asarray(means), jnp.asarray(scatter),
                               jnp.asarray(present), PSI, covariance_type))
    expected = reference_collapsed(counts, means, scatter, present, PSI, covariance_type)
    np.testing.assert_array_equal(got, expected)
    if covariance_type == "full":  # the cases are built to be on either side, far from the edge
        assert got.tolist() == [False, case not in ("spread", "two flat"), False] if case != "two flat" \
            else got.tolist() == [True, False, False]


def test_rule_exempts_padding_collinear_data_and_small_data(x64):
    rng = np.random.default_rng(1)
    parts = [component(rng, 50, 3), component(rng, 30, 3, flat_directions=1), component(rng, 2, 3)]
    counts = np.array([p[0] for p in parts])
    means, scatter = np.stack([p[1] for p in parts]), np.stack([p[2] for p in parts])
    args = lambda c, m, s, p: (jnp.asarray(c), jnp.asarray(m), jnp.asarray(s), jnp.asarray(p))
    # a padding component (present 0) is never collapsed
    got = collapsed(*args(counts, means, scatter, np.array([1.0, 1.0, 0.0])), PSI, "full")
    assert np.asarray(got).tolist() == [False, True, False]
    # data flat in a direction (a collinear feature): only the row count applies
    flat = np.diag([1.0, 1.0, 0.0])
    flat_scatter = np.einsum("de,kef,fg->kdg", flat, scatter, flat)
    flat_means = means * np.array([1, 1, 0])
    got = collapsed(*args(counts, flat_means, flat_scatter, np.ones(3)), PSI, "full")
    assert np.asarray(got).tolist() == [False, False, True]
    # fewer rows than K (d + 1): the guard is off
    small = np.array([3.0, 4.0, 2.0])
    got = collapsed(*args(small, means, scatter, np.ones(3)), PSI, "full")
    assert not np.asarray(got).any()


def iris_fit(n_init, collapse_guard=None):
    x, species = load_iris(return_X_y=True)
    model = emjax.GaussianMixture(3, collapse_guard=collapse_guard)
    res = emjax.fit(model, x.astype(np.float32), 0, n_init=n_init)
    labels = np.asarray(model.predict(res.params, x.astype(np.float32)))
    return adjusted_rand_score(species, labels), np.bincount(labels, minlength=3).min(), res


@pytest.mark.parametrize("n_init", [10, 100, pytest.param(1000, marks=pytest.mark.slow),
                                    pytest.param(10_000, marks=pytest.mark.slow)])
def test_more_restarts_never_pick_a_collapsed_iris_component(n_init):
    """float32, the default model: every n_init keeps the species partition (ARI 0.904, scikit-
    learn's, with 45+ rows per component) and the guard's rejections end DEGENERATE."""
    score, smallest, res = iris_fit(n_init)
    assert score >= 0.85 and smallest >= 40, (score, smallest)
    assert Status(int(res.status)) == Status.CONVERGED
    assert np.isin(np.asarray(res.restarts.status), [Status.CONVERGED, Status.DEGENERATE]).all()


@pytest.mark.slow
def test_without_the_guard_1000_restarts_pick_a_spurious_optimum():
    """What the guard prevents (the test above can fail): the same fit with the guard off wins
    with a component on a subspace of the data, at a higher objective."""
    score, smallest, unguarded = iris_fit(1000, collapse_guard=False)
    assert score < 0.85, score
    _, _, guarded = iris_fit(1000)
    assert float(unguarded.objective) > float(guarded.objective)


@pytest.mark.slow  # a selection grid of 24 models (K = 1..6, four covariance types), 10 restarts each
def test_select_on_standardised_iris_chooses_two_components():
    """scikit-learn's BIC loop and mclust choose 2 components on standardised iris; without the
    guard emjax chose 4 full components (some of them collapsed)."""
    x = StandardScaler().fit_transform(load_iris().data)
    grid = {"n_components": 6, "covariance_type": ["full", "tied", "diag", "spherical"]}
    sel = emjax.select(grid, x, jax.random.key(0), n_init=10)
    assert sel.model.n_components == 2, sel.summary()


def test_hmm_state_on_a_few_steps_ends_degenerate(x64):
    """A Gaussian HMM state that owns two steps of 2-D data (fewer than d + 1) gets a zero
    covariance and its restart ends DEGENERATE; with the guard off it stays healthy."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 60, 2))
    x[0, 30:32] = [8.0, 8.0]  # two steps far from the rest
    far = np.array([[0.0, 0.0], [8.0, 8.0]])
    start = emjax.HMMParams(jnp.array([0.5, 0.5]), jnp.full((2, 2), 0.5),
                            emjax.GaussianEmissionParams(jnp.asarray(far), jnp.stack([jnp.eye(2)] * 2)))
    guarded = emjax.em(emjax.GaussianHMM(2), start, x, max_iter=5, throw=False)
    assert Status(int(guarded.status)) == Status.DEGENERATE
    free = emjax.em(emjax.GaussianHMM(2, collapse_guard=False), start, x, max_iter=5, throw=False)
    assert Status(int(free.status)).healthy
