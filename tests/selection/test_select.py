"""emjax.select against the serial loop it replaces (scikit-learn's BIC example: one
GaussianMixture per K and covariance type, scored with ``bic``), at float64 from the same starts;
padded components against unpadded mixtures; bad input."""
import importlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import xlogy
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

import emjax
from emjax.selection.padded_mixture import PaddedMixture, pad

select_module = importlib.import_module("emjax.selection.select")

KEY = jax.random.key(3)
COV_TYPES = ("full", "tied", "diag", "spherical")
GRID_TYPES = ("full", "spherical")  # two programs keep the test fast; padding is tested per type
N_ITER = 15
KS = (1, 2, 3)
N_INIT = 2


def three_clusters(n=120, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])
    shapes = np.array([[[1.0, 0.4], [0.4, 0.5]], [[0.3, 0.0], [0.0, 1.0]], [[0.6, -0.3], [-0.3, 0.6]]])
    labels = rng.integers(3, size=n)
    noise = np.einsum("nde,ne->nd", np.linalg.cholesky(shapes)[labels], rng.normal(size=(n, 2)))
    return centres[labels] + noise + np.array([10.0, -5.0])


def precisions(cov, cov_type):
    return np.linalg.inv(cov) if cov_type in ("full", "tied") else 1.0 / cov


def numpy_starts(x, k, cov_type, seed):
    """``N_INIT`` valid starting points in scikit-learn's shapes, with a leading restart axis."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    starts = []
    for _ in range(N_INIT):
        a = rng.normal(size=(k, d, d)) * 0.3
        full = np.einsum("kde,kfe->kdf", a, a) + np.eye(d) * rng.uniform(0.5, 2.0, size=(k, 1, 1))
        cov = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 2.0, size=(k, d)),
               "spherical": rng.uniform(0.5, 2.0, size=k)}[cov_type]
        starts.append((rng.dirichlet(np.full(k, 5.0)), x[rng.choice(n, k, replace=False)], cov))
    return emjax.GMMParams(*(jnp.asarray(np.stack(a)) for a in zip(*starts)))


def sklearn_serial_loop(x, starts):
    """The loop select replaces: per (K, type), every start run in scikit-learn; keep the
    restart with the highest mean log-likelihood, score it with ``bic``/``aic``."""
    rows = []
    for (k, cov_type), start in starts.items():
        fits = []
        for r in range(N_INIT):
            w0, m0, c0 = (np.asarray(a[r]) for a in start)
            sk = SkGaussianMixture(k, covariance_type=cov_type, max_iter=N_ITER, tol=0.0,
                                   weights_init=w0, means_init=m0,
                                   precisions_init=precisions(c0, cov_type))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SkConvergenceWarning)
                fits.append(sk.fit(x))
        best = max(fits, key=lambda f: f.score(x))
        resp = best.predict_proba(x)
        rows.append({"k": k, "type": cov_type, "bic": best.bic(x), "aic": best.aic(x),
                     "icl": best.bic(x) - 2 * np.sum(xlogy(resp, resp)), "model": best})
    return rows


def test_same_choice_and_scores_as_the_serial_sklearn_loop(x64):
    x = three_clusters()
    starts = {(k, t): numpy_starts(x, k, t, seed=10 * k + i)
              for i, t in enumerate(GRID_TYPES) for k in KS}
    with threadpool_limits(limits=1, user_api="blas"):
        reference = sklearn_serial_loop(x, starts)
    grid = {"n_components": KS, "covariance_type": GRID_TYPES, "pseudo_count": 0}
    cached = select_module._select_jit._cache_size()
    res = emjax.select(grid, x, KEY, n_init=N_INIT, max_iter=N_ITER, tol=0.0, init_params=starts)
    assert select_module._select_jit._cache_size() - cached == len(GRID_TYPES)  # one per type
    table = res.table
    assert [(r["k"], r["type"]) for r in reference] == list(zip(table["n_components"],
                                                                table["covariance_type"]))
    for name in ("bic", "aic", "icl"):
        np.testing.assert_allclose(table[name], [r[name] for r in reference], rtol=1e-9)
    assert set(table["status"]) == {"MAX_ITER"}
    chosen = min(reference, key=lambda r: r["bic"])
    assert (res.model.n_components, res.model.covariance_type) == (chosen["k"], chosen["type"])
    np.testing.assert_allclose(res.params.means, chosen["model"].means_, rtol=1e-8)
    np.testing.assert_allclose(res.params.covariances, chosen["model"].covariances_, rtol=1e-8)
    by_aic = emjax.select(grid, x, KEY, n_init=N_INIT, max_iter=N_ITER, tol=0.0,
                          init_params=starts, criterion="aic")
    assert by_aic.index == int(np.argmin([r["aic"] for r in reference]))
    assert select_module._select_jit._cache_size() - cached == len(GRID_TYPES)  # reused


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_padded_components_contribute_nothing(x64, cov_type):
    """A 2-component mixture in 4 slots: the same statistics (zero for padding), log-likelihood,
    prior and M-step as the unpadded mixture, padding frozen (MAP-EM; the scikit-learn mode is
    covered end to end above)."""
    x, w = jnp.asarray(three_clusters(40)), jnp.ones(40)
    small = emjax.GaussianMixture(2, cov_type)
    padded = PaddedMixture(emjax.GaussianMixture(4, cov_type))
    cov = {"full": [[[2.0, 0.3], [0.3, 1.0]], np.eye(2)], "tied": [[2.0, 0.3], [0.3, 1.0]],
           "diag": [[2.0, 1.0], [0.5, 1.5]], "spherical": [2.0, 0.5]}[cov_type]
    params = emjax.GMMParams(jnp.array([0.3, 0.7]), jnp.array([[10.0, -5.0], [13.0, -2.0]]),
                             jnp.asarray(cov))

    @jax.jit
    def one_step(params):
        p = pad(params, 4, cov_type)
        stats, ll = padded.e_step(p, x, w)
        new = padded.m_step(stats, p)
        want_stats, want_ll = small.e_step(params, x, w)
        want = small.m_step(want_stats, params)
        return (p, stats, ll, padded.log_prior(p), new, padded.is_degenerate(new),
                want_stats, want_ll, small.log_prior(params), want)

    (p, (counts, sums, second), ll, log_prior, new, degenerate, want_stats, want_ll,
     want_log_prior, want) = one_step(params)
    np.testing.assert_array_equal(counts[2:], 0)
    np.testing.assert_array_equal(sums[2:], 0)
    for got, expected in zip((counts[:2], sums[:2], ll, log_prior),
                         (want_stats[0], want_stats[1], want_ll, want_log_prior)):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(new.mixture.weights[:2], want.weights, rtol=1e-12)
    np.testing.assert_array_equal(new.mixture.weights[2:], 0)
    np.testing.assert_allclose(new.mixture.means[:2], want.means, rtol=1e-12)
    np.testing.assert_array_equal(new.mixture.means[2:], p.mixture.means[2:])
    if cov_type == "tied":
        np.testing.assert_allclose(new.mixture.covariances, want.covariances, rtol=1e-12)
    else:
        np.testing.assert_allclose(new.mixture.covariances[:2], want.covariances, rtol=1e-12)
        np.testing.assert_array_equal(new.mixture.covariances[2:], p.mixture.covariances[2:])
    assert not degenerate


def test_bad_input_names_value_and_allowed_set():
    x = three_clusters(20)
    with pytest.raises(ValueError, match=r"criterion must be one of \('bic', 'aic', 'icl'\); got 'dic'"):
        emjax.select({"n_components": 2}, x, KEY, criterion="dic")
    with pytest.raises(ValueError, match=r"n_components must be integers in 1\.\.n_samples.*got 0"):
        emjax.select({"n_components": 0}, x, KEY)
    with pytest.raises(ValueError, match=r"1\.\.n_samples=20.*got 21"):
        emjax.select({"n_components": 21}, x, KEY)
    with pytest.raises(ValueError, match=r"covariance_type must be among \('full'.*got 'banana'"):
        emjax.select({"n_components": 2, "covariance_type": ["full", "banana"]}, x, KEY)
    with pytest.raises(TypeError, match="sequence of them"):
        emjax.select([emjax.GaussianMixture(2), "full"], x, KEY)
    with pytest.raises(ValueError, match=r"no entry for candidate \(1, 'full'\)"):
        emjax.select({"n_components": 2}, x, KEY, init_params={})
