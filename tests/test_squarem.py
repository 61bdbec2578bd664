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


def test_hasselblad_plain_em_takes_over_a_thousand_e_steps_and_squarem_under_150(x64, hasselblad_optimum):
    tol = float(1e-8 / DAYS.sum())  # 1e-8 on the summed log-likelihood (emjax's objective is per sample)
    plain = emjax.em(PoissonMixture(), hasselblad_start(), DEATHS, DAYS, max_iter=5000, tol=tol)
    fast = emjax.em(PoissonMixture(), hasselblad_start(), DEATHS, DAYS, max_iter=5000, tol=tol,
                    accelerator="squarem")
    assert int(plain.status) == int(fast.status) == Status.CONVERGED
    assert int(plain.n_estep) == int(plain.n_iter) + 1 > 1000
    assert int(fast.n_estep) < 150
    weights, rates, objective = hasselblad_optimum
    assert float(fast.objective) >= float(plain.objective)
    assert float(fast.objective) == pytest.approx(objective, abs=1e-9)
    np.testing.assert_allclose(fast.params.weights, weights, atol=1e-3)
    np.testing.assert_allclose(fast.params.rates, rates, atol=2e-3)


@pytest.mark.parametrize("model", [PoissonMixture(), RawCoordinatesPoissonMixture()],
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


def overlapping_gaussians(n, seed=0):
    """Two unit-variance Gaussians whose means are 1.1 standard deviations apart."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(2, size=n)
    return rng.normal(size=(n, 2)) + labels[:, None] * np.array([1.0, 0.5])


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_gmm_reaches_scikit_learns_optimum_from_the_same_start(x64, cov):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=(150, 2)), rng.normal(size=(150, 2)) * 0.7 + [2.5, 1.0]])
    model = emjax.GaussianMixture(2, covariance_type=cov, regularization="sklearn")
    start = jax.tree_util.tree_map(lambda a: a[0], emjax.init_restarts(model, x, KEY, n_init=1))
    fast = emjax.em(model, start, x, max_iter=500, tol=1e-13, accelerator="squarem")
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
    x = overlapping_gaussians(2000)
    model = emjax.GaussianMixture(2, covariance_type="diag")
    start = jax.tree_util.tree_map(lambda a: a[0], emjax.init_restarts(model, x, KEY, n_init=1))
    plain = emjax.em(model, start, x, max_iter=3000, tol=1e-10)
    fast = emjax.em(model, start, x, max_iter=3000, tol=1e-10, accelerator="squarem")
    assert int(plain.status) == int(fast.status) == Status.CONVERGED
    assert float(fast.objective) >= float(plain.objective)
    assert 5 * int(fast.n_estep) <= int(plain.n_estep)


def test_objective_never_falls_and_fallbacks_happen_in_float32():
    x = overlapping_gaussians(2000).astype(np.float32)
    res = emjax.fit(emjax.GaussianMixture(2), x, KEY, n_init=3, max_iter=60, tol=0.0,
                    accelerator="squarem", throw=False)
    statuses = np.asarray(res.restarts.status)
    assert np.all(statuses == Status.MAX_ITER)
    history = np.asarray(res.restarts.history)
    assert history.dtype == np.float32 and res.params.means.dtype == np.float32
    # accepted points are at least one EM step better: no fall beyond float32 rounding
    assert np.all(np.diff(history, axis=1) >= -256 * np.finfo(np.float32).eps * (1 + np.abs(history[:, :-1])))
    n_estep = np.asarray(res.restarts.n_estep)
    assert np.all(n_estep >= 3 * 60 + 1) and np.all(n_estep <= 4 * 60 + 1)
    assert np.any(n_estep > 3 * 60 + 1)  # some cycles fell back to the plain EM step


_E_STEPS = []


@dataclasses.dataclass(frozen=True)
class CountingPoissonMixture(PoissonMixture):
    """Counts E-step evaluations on the host as they run."""

    def e_step(self, p, x, weights):
        jax.debug.callback(lambda: _E_STEPS.append(1))
        return super().e_step(p, x, weights)


@pytest.mark.parametrize("accelerator", [None, "squarem"])
def test_n_estep_counts_the_e_steps_that_ran(x64, accelerator):
    _E_STEPS.clear()
    res = emjax.em(CountingPoissonMixture(), hasselblad_start(), DEATHS, DAYS, max_iter=40,
                   tol=0.0, accelerator=accelerator, throw=False)
    jax.effects_barrier()
    assert int(res.n_estep) == len(_E_STEPS)
    if accelerator is None:
        assert int(res.n_estep) == 41
    else:
        assert 3 * 40 + 1 <= int(res.n_estep) <= 4 * 40 + 1


@dataclasses.dataclass(frozen=True)
class BreaksPastRate(PoissonMixture):
    """EM maps from a point whose first rate exceeds 1.2 give NaN (a bug injected mid-fit)."""

    def m_step(self, stats, p):
        new = super().m_step(stats, p)
        return new._replace(rates=jnp.where(p.rates[0] > 1.2, jnp.nan, new.rates))


def test_failure_mid_fit_is_a_status_and_keeps_the_best_params(x64):
    res = emjax.em(BreaksPastRate(), hasselblad_start(), DEATHS, DAYS, max_iter=200, tol=0.0,
                   accelerator="squarem", throw=False)
    assert int(res.status) == Status.NONFINITE
    n = int(res.n_iter)
    history = np.asarray(res.history)
    assert np.all(np.isfinite(history[: n - 1])) and np.isnan(history[n - 1])
    assert float(res.objective) == history[n - 2]
    assert np.all(np.isfinite(res.params.rates)) and float(res.params.rates[0]) > 1.2
    with pytest.raises(emjax.FitError, match="NONFINITE"):
        emjax.em(BreaksPastRate(), hasselblad_start(), DEATHS, DAYS, max_iter=200, tol=0.0,
                 accelerator="squarem")


def test_a_faulty_restart_is_reported_and_never_picked():
    x = overlapping_gaussians(300).astype(np.float32)
    model = emjax.GaussianMixture(2)
    starts = emjax.init_restarts(model, x, KEY, n_init=3)
    faulty = starts._replace(covariances=starts.covariances.at[1].set(jnp.nan))
    res = emjax.fit(model, x, KEY, n_init=3, init_params=faulty, accelerator="squarem")
    assert [int(s) for s in res.restarts.status] == [Status.CONVERGED, Status.NONFINITE, Status.CONVERGED]
    assert int(res.restarts.n_iter[1]) == 0 and int(res.restarts.n_estep[1]) == 1
    assert int(res.best_index) != 1


@pytest.mark.parametrize("bad", ["SQUAREM", "anderson", "", True, 3])
def test_unknown_accelerator_is_refused_naming_the_allowed_values(data, bad):
    model = emjax.GaussianMixture(2)
    start = jax.tree_util.tree_map(lambda a: a[0], emjax.init_restarts(model, data, KEY, n_init=1))
    with pytest.raises(ValueError, match=r"accelerator must be None \(plain EM\) or one of \('squarem',\)"):
        emjax.fit(model, data, KEY, accelerator=bad)
    with pytest.raises(ValueError, match=repr(bad).replace("(", r"\(")):
        emjax.em(model, start, data, accelerator=bad)
