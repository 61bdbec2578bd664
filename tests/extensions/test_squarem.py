"""SQUAREM acceleration (``accelerator="squarem"``): same optimum as independent references
(scikit-learn's EM, a NumPy EM for a Poisson mixture), far fewer E-steps on slow problems,
a monotone objective, honest E-step counts and statuses, and clear errors."""
import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
from jax.scipy.special import gammaln, logsumexp
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emjax
from emjax import Status

KEY = jax.random.key(0)
#: Hasselblad (1969): number of days with 0, 1, ..., 9 deaths (1096 days).
DEATHS = np.arange(10.0)
DAYS = np.array([162, 267, 271, 185, 111, 61, 27, 8, 3, 1], dtype=float)


class PoissonParams(NamedTuple):
    weights: jnp.ndarray
    rates: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class PoissonMixture(emjax.Model):
    """A user-defined mixture of Poissons (counts in a 1-D array), extrapolated in log-weights and
    log-rates."""

    n_components: int = 2

    def validate(self, data):
        return jnp.asarray(np.asarray(data, dtype=float))

    def _joint(self, p, x):
        return (jnp.log(p.weights)[:, None] + x[None] * jnp.log(p.rates)[:, None]
                - p.rates[:, None] - gammaln(x + 1)[None])

    def log_prob(self, p, x):
        return logsumexp(self._joint(p, x), axis=0)

    def posterior(self, p, x):
        return jax.nn.softmax(self._joint(p, x), axis=0).T

    def e_step(self, p, x, weights):
        joint = self._joint(p, x)
        row = logsumexp(joint, axis=0)
        resp = jnp.exp(joint - row) * weights
        return (jnp.sum(resp, axis=1), resp @ x), jnp.sum(weights * row)

    def m_step(self, stats, p):
        counts, sums = stats
        return PoissonParams(counts / jnp.sum(counts), sums / counts)

    def init(self, key, x, weights):
        return PoissonParams(jnp.full(self.n_components, 1 / self.n_components),
                             jnp.quantile(x, jnp.linspace(0.25, 0.75, self.n_components)))

    def to_unconstrained(self, p):
        return PoissonParams(jnp.log(p.weights), jnp.log(p.rates))

    def from_unconstrained(self, u):
        return PoissonParams(jax.nn.softmax(u.weights), jnp.exp(u.rates))


@dataclasses.dataclass(frozen=True)
class RawCoordinatesPoissonMixture(PoissonMixture):
    """The same model without unconstrained coordinates: extrapolates the raw parameters (the
    Model default), so some extrapolated points have negative weights or rates."""

    to_unconstrained = emjax.Model.to_unconstrained
    from_unconstrained = emjax.Model.from_unconstrained


def hasselblad_start():
    return PoissonParams(jnp.array([0.3, 0.7]), jnp.array([1.0, 2.5]))


@pytest.fixture(scope="module")
def hasselblad_optimum():
    """Reference without EM: the maximum-likelihood two-Poisson mixture by Nelder-Mead (SciPy)
    over (logit weight, log rates); returns ``(weights, rates, mean log-likelihood)``."""
    def mean_negative_log_likelihood(theta):
        weight, rates = 1 / (1 + np.exp(-theta[0])), np.exp(theta[1:])
        joint = (np.log([weight, 1 - weight])[:, None] + DEATHS * np.log(rates)[:, None]
                 - rates[:, None] - scipy.special.gammaln(DEATHS + 1))
        return -(DAYS @ scipy.special.logsumexp(joint, axis=0)) / DAYS.sum()

    best = scipy.optimize.minimize(mean_negative_log_likelihood, [0.0, 0.0, 1.0], method="Nelder-Mead",
                                   options=dict(xatol=1e-12, fatol=1e-16, maxiter=10000, maxfev=10000))
    weight = 1 / (1 + np.exp(-best.x[0]))
    return np.array([weight, 1 - weight]), np.exp(best.x[1:]), -best.fun


_E_STEPS = []


@dataclasses.dataclass(frozen=True)
class CountingPoissonMixture(PoissonMixture):
    """Counts E-step evaluations on the host as they run."""

    def e_step(self, p, x, weights):
        jax.debug.callback(lambda: _E_STEPS.append(1))
        return super().e_step(p, x, weights)


def counted_em(*args, **kwargs):
    """``emjax.em`` and the number of E-steps that actually ran."""
    _E_STEPS.clear()
    result = emjax.em(*args, **kwargs)
    jax.effects_barrier()
    return result, len(_E_STEPS)


def test_hasselblad_plain_em_takes_over_a_thousand_e_steps_and_squarem_under_150(x64, hasselblad_optimum):
    tol = float(1e-8 / DAYS.sum())  # 1e-8 on the summed log-likelihood (emjax's objective is per sample)
    model = CountingPoissonMixture()
    plain, plain_count = counted_em(model, hasselblad_start(), DEATHS, DAYS, max_iter=5000, tol=tol)
    fast, fast_count = counted_em(model, hasselblad_start(), DEATHS, DAYS, max_iter=5000, tol=tol,
                                  accelerator="squarem")
    assert int(plain.status) == int(fast.status) == Status.CONVERGED
    # n_estep counts the E-steps that ran: n_iter + 1 for plain EM, 3 or 4 per SQUAREM cycle + 1
    assert int(plain.n_estep) == plain_count == int(plain.n_iter) + 1 > 1000
    assert int(fast.n_estep) == fast_count < 150
    assert 3 * int(fast.n_iter) + 1 <= fast_count <= 4 * int(fast.n_iter) + 1
    weights, rates, objective = hasselblad_optimum
    assert float(fast.objective) >= float(plain.objective)
    assert float(fast.objective) == pytest.approx(objective, abs=1e-9)
    np.testing.assert_allclose(fast.params.weights, weights, atol=1e-3)
    np.testing.assert_allclose(fast.params.rates, rates, atol=2e-3)


@pytest.mark.parametrize("model", [CountingPoissonMixture(), RawCoordinatesPoissonMixture()],
                         ids=["log-coordinates", "raw-coordinates"])
def test_poisson_mixture_reaches_the_numpy_optimum_with_a_monotone_objective(x64, hasselblad_optimum, model):
    fast = emjax.em(model, hasselblad_start(), DEATHS, DAYS, max_iter=5000, tol=1e-14,
                    accelerator="squarem")
    weights, rates, objective = hasselblad_optimum
    assert int(fast.status) == Status.CONVERGED
    assert float(fast.objective) == pytest.approx(objective, abs=1e-12)
    np.testing.assert_allclose(fast.params.weights, weights, atol=1e-5)
    np.testing.assert_allclose(fast.params.rates, rates, atol=2e-5)
    history = np.asarray(fast.history)[: int(fast.n_iter)]
    assert np.all(np.diff(history) >= 0)


N_ROWS, MAX_ITER = 400, 3000  # shared by the GMM tests so that they share compiled programs


def overlapping_gaussians(seed=0):
    """Two unit-variance Gaussians whose means are 1.1 standard deviations apart."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(2, size=N_ROWS)
    return rng.normal(size=(N_ROWS, 2)) + labels[:, None] * np.array([1.0, 0.5])


def first_start(model, x):
    return jax.tree_util.tree_map(lambda a: a[0], emjax.init_restarts(model, x, KEY, n_init=1))


@pytest.mark.parametrize("cov", ["full", *[pytest.param(c, marks=pytest.mark.slow) for c in ("tied", "diag", "spherical")]])
def test_gmm_reaches_scikit_learns_optimum_from_the_same_start(x64, cov):
    rng = np.random.default_rng(1)
    half = N_ROWS // 2
    x = np.concatenate([rng.normal(size=(half, 2)), rng.normal(size=(half, 2)) * 0.7 + [2.5, 1.0]])
    model = emjax.GaussianMixture(2, covariance_type=cov, pseudo_count=0)
    start = first_start(model, x)
    fast = emjax.em(model, start, x, max_iter=MAX_ITER, tol=1e-13, accelerator="squarem")
    cov_start = np.asarray(start.covariances)
    precisions = np.linalg.inv(cov_start) if cov in ("full", "tied") else 1 / cov_start
    sk = SkGaussianMixture(2, covariance_type=cov, tol=1e-13, max_iter=20000, reg_covar=1e-6,
                           weights_init=np.asarray(start.weights), means_init=np.asarray(start.means),
                           precisions_init=precisions).fit(x)
    assert sk.converged_ and int(fast.status) == Status.CONVERGED
    assert float(fast.log_likelihood) == pytest.approx(sk.score(x), abs=1e-11)
    np.testing.assert_allclose(fast.params.weights, sk.weights_, atol=1e-5)
    np.testing.assert_allclose(fast.params.means, sk.means_, atol=1e-5)
    np.testing.assert_allclose(fast.params.covariances, sk.covariances_, atol=1e-5)
    assert int(fast.n_estep) < sk.n_iter_


def test_overlapping_gmm_needs_five_times_fewer_e_steps_for_the_same_objective(x64):
    model = emjax.GaussianMixture(2, covariance_type="diag", pseudo_count=0)
    plain_e_steps = fast_e_steps = 0
    for seed in range(3):
        x = overlapping_gaussians(seed)
        start = first_start(model, x)
        plain = emjax.em(model, start, x, max_iter=MAX_ITER, tol=1e-10)
        fast = emjax.em(model, start, x, max_iter=MAX_ITER, tol=1e-10, accelerator="squarem")
        assert int(plain.status) == int(fast.status) == Status.CONVERGED
        assert float(fast.objective) >= float(plain.objective)
        plain_e_steps += int(plain.n_estep)
        fast_e_steps += int(fast.n_estep)
    assert 5 * fast_e_steps <= plain_e_steps


@pytest.mark.slow
def test_objective_never_falls_and_failed_restarts_are_never_picked_in_float32():
    x = overlapping_gaussians(0).astype(np.float32)
    model = emjax.GaussianMixture(2)
    rows = np.random.default_rng(0).choice(len(x), size=(3, 2), replace=False)
    starts = emjax.GMMParams(np.full((3, 2), 0.5, np.float32), x[rows],
                             np.tile(np.eye(2, dtype=np.float32), (3, 2, 1, 1)))
    with pytest.warns(emjax.ConvergenceWarning):
        res = emjax.fit(model, x, KEY, n_init=3, init_params=starts, max_iter=60, tol=0.0,
                        accelerator="squarem")
    statuses = np.asarray(res.restarts.status)
    assert np.all(statuses == Status.MAX_ITER)
    history = np.asarray(res.restarts.history)
    assert history.dtype == np.float32 and res.params.means.dtype == np.float32
    # accepted points are at least one EM step better: no fall beyond float32 rounding
    assert np.all(np.diff(history, axis=1) >= -256 * np.finfo(np.float32).eps * (1 + np.abs(history[:, :-1])))
    n_estep = np.asarray(res.restarts.n_estep)
    assert np.all(n_estep >= 3 * 60 + 1) and np.all(n_estep <= 4 * 60 + 1)
    assert np.any(n_estep > 3 * 60 + 1)  # some cycles fell back to the plain EM step

    faulty = starts._replace(covariances=starts.covariances.copy())
    faulty.covariances[1] = np.nan
    with pytest.raises(ValueError, match="restart 1: params.covariances"):  # refused on the host
        emjax.fit(model, x, KEY, n_init=3, init_params=faulty, max_iter=60, tol=1e-6,
                  accelerator="squarem")
    res = jax.jit(lambda p: emjax.fit(model, x, KEY, n_init=3, init_params=p, max_iter=60,
                                      tol=1e-6, accelerator="squarem", throw=False))(faulty)
    assert [int(s) for s in res.restarts.status] == [Status.CONVERGED, Status.NONFINITE, Status.CONVERGED]
    assert int(res.restarts.n_iter[1]) == 0 and int(res.restarts.n_estep[1]) == 1
    assert int(res.best_index) != 1


@dataclasses.dataclass(frozen=True)
class BreaksPastRate(PoissonMixture):
    """EM maps from a point whose first rate exceeds 1.2 give NaN rates (``halve=False``) or
    halved rates, a lower objective (``halve=True``): bugs injected mid-fit."""

    halve: bool = False

    def m_step(self, stats, p):
        new = super().m_step(stats, p)
        broken = new.rates / 2 if self.halve else jnp.full_like(new.rates, jnp.nan)
        return new._replace(rates=jnp.where(p.rates[0] > 1.2, broken, new.rates))


@pytest.mark.parametrize("halve, status", [(False, Status.NONFINITE), (True, Status.DECREASED)])
def test_failure_mid_fit_is_a_status_and_keeps_the_best_params(x64, halve, status):
    model = BreaksPastRate(halve=halve)
    res = emjax.em(model, hasselblad_start(), DEATHS, DAYS, max_iter=200, tol=0.0,
                   accelerator="squarem", throw=False)
    assert int(res.status) == status
    n = int(res.n_iter)
    history = np.asarray(res.history)
    assert np.all(np.isfinite(history[: n - 1])) and np.all(np.diff(history[: n - 1]) >= 0)
    assert float(res.objective) == history[n - 2] and not history[n - 1] >= history[n - 2]
    assert np.all(np.isfinite(res.params.rates))
    with pytest.raises(emjax.FitError, match=status.name):
        emjax.em(model, hasselblad_start(), DEATHS, DAYS, max_iter=200, tol=0.0, accelerator="squarem")


@pytest.mark.parametrize("bad", ["SQUAREM", "anderson", "", True, 3])
def test_unknown_accelerator_is_refused_naming_the_allowed_values(data, bad):
    model = emjax.GaussianMixture(2)
    start = emjax.GMMParams(np.full(2, 0.5), data[:2], np.stack([np.eye(2)] * 2))
    with pytest.raises(ValueError, match=r"accelerator must be None \(plain EM\) or one of \('squarem',\)"):
        emjax.fit(model, data, KEY, accelerator=bad)
    with pytest.raises(ValueError, match=repr(bad).replace("(", r"\(")):
        emjax.em(model, start, data, accelerator=bad)


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_gmm_unconstrained_coordinates_round_trip_and_always_give_valid_params(x64, cov):
    model = emjax.GaussianMixture(3, covariance_type=cov)
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 4, 4))
    full = a @ np.swapaxes(a, 1, 2) + 0.1 * np.eye(4)
    covariances = {"full": full, "tied": full[0], "diag": rng.uniform(0.1, 2, (3, 4)),
                   "spherical": rng.uniform(0.1, 2, 3)}[cov]
    params = emjax.GMMParams(np.array([0.2, 0.3, 0.5]), rng.normal(size=(3, 4)), covariances)
    back = model.from_unconstrained(model.to_unconstrained(params))
    for got, want in zip(back, params):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # any finite point of the unconstrained space maps to weights on the simplex and PD covariances
    u = jax.tree_util.tree_map(lambda x: 3 * rng.normal(size=np.shape(x)), model.to_unconstrained(params))
    if cov in ("full", "tied"):
        u = u._replace(covariances=np.tril(u.covariances))
    valid = model.from_unconstrained(u)
    assert float(np.sum(valid.weights)) == pytest.approx(1.0) and np.all(np.asarray(valid.weights) > 0)
    assert not bool(model.is_degenerate(valid))
    if cov in ("full", "tied"):
        assert np.all(np.linalg.eigvalsh(np.asarray(valid.covariances)) > 0)


def latent_class_network(rng):
    """A latent binary class with three observed 3-state children, rows drawn by NumPy."""
    net = emjax.BayesianNetwork({1: 0, 2: 0, 3: 0}, cardinalities=(2, 3, 3, 3), latent=(0,))
    z = rng.integers(2, size=300)
    tables = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    children = [(rng.uniform(size=(300, 1)) > np.cumsum(tables[z], axis=1)).sum(axis=1)
                for _ in range(3)]
    return net, np.c_[np.full(300, -1), np.stack(children, axis=1)]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["PoissonMixture", "BernoulliMixture", "GaussianHMM", "PLSA",
                                    "BayesianNetwork"])
def test_squarem_reaches_plain_em_optimum_on_other_model_families(x64, family):
    """SQUAREM needs nothing from a model beyond the contract (identity unconstrained coordinates
    by default): each family converges to the plain-EM optimum from the same start."""
    rng = np.random.default_rng(0)
    model, data = {
        "PoissonMixture": lambda: (emjax.PoissonMixture(2),
                                   np.r_[rng.poisson(2.0, (150, 2)), rng.poisson(7.0, (150, 2))]),
        "BernoulliMixture": lambda: (emjax.BernoulliMixture(2), (rng.uniform(size=(200, 6)) < np.r_[
            np.full(100, 0.2), np.full(100, 0.8)][:, None]).astype(float)),
        "GaussianHMM": lambda: (emjax.GaussianHMM(2, covariance_type="diag"), rng.normal(
            size=(3, 40, 1)) + 4.0 * (np.arange(40) >= 20)[None, :, None]),
        "PLSA": lambda: (emjax.PLSA(2), rng.poisson(1.0, (30, 12))),
        "BayesianNetwork": lambda: latent_class_network(rng),
    }[family]()
    plain = emjax.fit(model, data, jax.random.key(1), max_iter=5000, tol=1e-10)
    fast = emjax.fit(model, data, jax.random.key(1), max_iter=5000, tol=1e-10, accelerator="squarem")
    assert int(plain.status) == int(fast.status) == emjax.Status.CONVERGED
    np.testing.assert_allclose(float(fast.objective), float(plain.objective), rtol=0, atol=1e-7)
    history = np.asarray(fast.history)
    assert np.all(np.diff(history[np.isfinite(history)]) > -1e-12)
