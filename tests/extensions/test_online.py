"""Online (stepwise) EM: the update against a NumPy implementation of Cappé & Moulines' recursion,
the objective it reaches against batch EM, and validation of the schedule and batches."""
import jax
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import emjax


def numpy_stepwise(x_batches, params, kappa, t0, data_size, reg_covar):
    """Reference recursion with scikit-learn's M-step (absolute reg_covar), NumPy float64."""
    weights, means, covs = (np.array(p, dtype=float) for p in params)
    stats = None
    for t, x in enumerate(x_batches):
        dens = np.stack([w * multivariate_normal(m, c).pdf(x) for w, m, c in zip(weights, means, covs)], 1)
        resp = dens / dens.sum(1, keepdims=True)
        counts = resp.sum(0)
        sums = resp.T @ x
        second = np.einsum("nk,nd,ne->kde", resp, x, x)
        scale = data_size / len(x)
        new = [scale * counts, scale * sums, scale * second]
        gamma = 1.0 if t == 0 else (t + t0) ** -kappa
        stats = new if stats is None else [(1 - gamma) * s + gamma * n for s, n in zip(stats, new)]
        counts, sums, second = stats
        counts_sk = counts + 10 * np.finfo(float).eps
        weights = counts_sk / counts_sk.sum()
        means = sums / counts_sk[:, None]
        covs = second / counts_sk[:, None, None] - np.einsum("kd,ke->kde", means, means)
        covs += reg_covar * np.eye(x.shape[1])
    return weights, means, covs


def mixture(n, seed, sep=4.0, k=3):
    """``k`` unit Gaussians on a circle, neighbours ``sep`` apart."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(k) / k
    centres = np.stack([np.cos(angles), np.sin(angles)], 1) * sep / (2 * np.sin(np.pi / k))
    return centres[rng.integers(k, size=n)] + rng.normal(size=(n, 2))


def test_update_matches_numpy_recursion(x64):
    x = mixture(600, seed=0) + np.array([3.0, -2.0])
    batches = np.split(x, 4)
    start = (np.array([0.3, 0.3, 0.4]), x[[0, 1, 2]], np.stack([np.eye(2)] * 3))
    model = emjax.GaussianMixture(3, pseudo_count=0, reg_covar=1e-3)
    online = emjax.OnlineEM(model, None, kappa=0.7, t0=1.5, data_size=5000,
                            init_params=emjax.GMMParams(*start))
    for b in batches:
        online.partial_fit(b)
    want = numpy_stepwise(batches, start, kappa=0.7, t0=1.5, data_size=5000, reg_covar=1e-3)
    for got, ref in zip(online.params, want):
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    assert online.n_steps == 4 and online.status == emjax.Status.RUNNING


@pytest.mark.slow
def test_reaches_batch_objective_in_fewer_passes(x64):
    n, batch = 20000, 50
    x = mixture(n, seed=1)
    model = emjax.GaussianMixture(3)
    rows = np.random.default_rng(3).choice(n, 3, replace=False)  # random rows as starting means
    start = emjax.GMMParams(np.full((1, 3), 1 / 3), x[rows][None], np.tile(np.eye(2), (1, 3, 1, 1)))
    batch_em = emjax.fit(model, x, jax.random.key(0), init_params=start, max_iter=300, tol=1e-9)
    best = float(batch_em.objective)
    history = np.asarray(batch_em.history)
    # batch EM: one pass to evaluate the start, then one per iteration
    batch_passes = 1 + int(np.argmax(history >= best - 1e-3)) + 1
    online = emjax.OnlineEM(model, None, kappa=0.6, t0=2.0, data_size=n,
                            init_params=jax.tree_util.tree_map(lambda a: a[0], start))
    rng = np.random.default_rng(4)
    gaps = []
    for _ in range(4):
        order = rng.permutation(n)
        for i in range(0, n, batch):
            online.partial_fit(x[order[i:i + batch]])
        params = online.params
        objective = float(online.score(x)) + float(model.log_prior(
            model.standardizer().params_to_standard(params, online.state.transform))) / n
        gaps.append(best - objective)
        if gaps[-1] < 1e-3:
            break
    assert gaps[-1] < 1e-3, gaps
    assert len(gaps) < batch_passes, (len(gaps), batch_passes)


@pytest.mark.parametrize("kappa, t0, match", [
    (0.5, 1.0, "kappa must be in"), (1.01, 1.0, "kappa must be in"), (float("nan"), 1.0, "kappa"),
    (0.7, -1.0, "t0 must be"), (0.7, float("inf"), "t0 must be"),
])
def test_schedule_is_validated(kappa, t0, match):
    with pytest.raises(ValueError, match=match):
        emjax.OnlineEM(emjax.GaussianMixture(2), jax.random.key(0), kappa=kappa, t0=t0)


def test_batches_must_agree_and_params_need_data(x64):
    model = emjax.GaussianMixture(3, pseudo_count=0, reg_covar=1e-3)  # as above: no compile
    x = mixture(150, seed=0)
    online = emjax.OnlineEM(model, None, data_size=5000, init_params=emjax.GMMParams(
        np.full(3, 1 / 3), x[:3], np.stack([np.eye(2)] * 3)))
    with pytest.raises(RuntimeError, match="partial_fit first"):
        _ = online.params
    online.partial_fit(x)
    with pytest.raises(ValueError, match=r"shape \(3,\).*\(2,\)"):
        online.partial_fit(np.zeros((150, 3)))
    with pytest.raises(ValueError, match="data_size"):
        emjax.OnlineEM(emjax.GaussianMixture(2), jax.random.key(0), data_size=0)
    with pytest.raises(TypeError, match="key must be a PRNG key"):
        emjax.OnlineEM(emjax.GaussianMixture(2), None)
