"""The HMM part of the differential harness: one registry of HMM configurations, their data, and
float64 references written without emjax (NumPy/SciPy forward-backward and Baum-Welch, hmmlearn).

A case is an emission family (with a covariance type for Gaussians); for ``(n_sequences,
lengths, d, k, seed)`` it draws a true HMM, sequences of uneven lengths from it (padded steps
hold garbage that must change nothing) and a start near the truth. References:

- :func:`forward_backward`: log-space forward-backward of one sequence,
  :math:`\\alpha_\\tau(j) = \\log\\sum_i e^{\\alpha_{\\tau-1}(i) + \\log A_{ij}} + \\log b_\\tau(j)`,
  :math:`\\beta_\\tau(i) = \\log\\sum_j e^{\\log A_{ij} + \\log b_{\\tau+1}(j) + \\beta_{\\tau+1}(j)}`;
  brute-force enumeration of every path is :func:`reference.hmm.enumerate_paths` (tests/reference/hmm.py).
- :func:`baum_welch_step`: the maximum-likelihood M-step (``pseudo_count=0``,
  ``reg_covar=0``) from the weighted posteriors.
- :func:`hmmlearn_step`: hmmlearn's one ``fit`` iteration with its priors off (Gaussian x 4
  covariance types, one-feature categorical, Poisson; hmmlearn has no Bernoulli HMM).

Run as ``python -c "from differential import hmm_cases; hmm_cases.sharded_report()"`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (see test_hmm_differential.py): one JSON line.
"""
from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
from scipy import stats
from scipy.special import gammaln, logsumexp, xlogy

import emjax
from helpers import full_covariances

FAMILIES = ("gaussian", "categorical", "poisson", "bernoulli", "multinomial")
COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


@dataclasses.dataclass(frozen=True)
class HMMCase:
    """One HMM configuration of the registry."""

    name: str
    emission: str
    covariance_type: str = "full"

    def n_categories(self, d: int) -> tuple:
        return tuple(2 + j % 3 for j in range(d))  # 2, 3, 4, 2, ... symbols per feature

    def model(self, k: int, d: int, **options) -> emjax.HMM:
        extra = dict(covariance_type=self.covariance_type) if self.emission == "gaussian" else {}
        if self.emission == "categorical":
            extra = dict(n_categories=self.n_categories(d))
        if self.emission == "multinomial":  # no string form: an emission instance with the same prior
            options.pop("reg_covar", None)
            pseudo_count = options.get("pseudo_count", emjax.components.PSEUDO_COUNT)
            return emjax.HMM(k, emission=emjax.MultinomialEmission(pseudo_count), **options)
        return emjax.HMM(k, emission=self.emission, **extra, **options)

    def hmmlearn_supported(self, d: int) -> bool:
        return self.emission in ("gaussian", "poisson") or (self.emission == "categorical" and d == 1)

    # ------------------------------------------------------------------ parameters and data
    def truth(self, k: int, d: int, seed: int) -> emjax.HMMParams:
        """A sticky chain and well separated emissions (NumPy float64)."""
        rng = np.random.default_rng(seed)
        initial = rng.dirichlet(np.full(k, 3.0))
        transitions = 0.6 * np.eye(k) + 0.4 * rng.dirichlet(np.full(k, 2.0), size=k)
        return emjax.HMMParams(initial, transitions, self._emission_truth(rng, k, d))

    def _emission_truth(self, rng, k, d):
        if self.emission == "gaussian":
            means = rng.normal(scale=3.0, size=(k, d))
            a = rng.normal(size=(k, d, d)) / np.sqrt(d)
            full = a @ np.swapaxes(a, 1, 2) + 0.5 * np.eye(d)
            cov = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 1.5, size=(k, d)),
                   "spherical": rng.uniform(0.5, 1.5, size=k)}[self.covariance_type]
            return emjax.GaussianEmissionParams(means, cov)
        if self.emission == "categorical":
            categories = self.n_categories(d)
            probs = np.zeros((k, d, max(categories)))
            for j, c in enumerate(categories):
                probs[:, j, :c] = rng.dirichlet(np.full(c, 0.7), size=k)
            return emjax.CategoricalEmissionParams(probs)
        if self.emission == "poisson":
            return emjax.PoissonEmissionParams(rng.uniform(0.5, 8.0, size=(k, d)))
        if self.emission == "multinomial":
            return emjax.MultinomialEmissionParams(rng.dirichlet(np.full(d, 1.0), size=k))
        return emjax.BernoulliEmissionParams(rng.uniform(0.1, 0.9, size=(k, d)))

    def emit(self, rng, emission, states, missing=True):
        """One draw per state in ``states`` ``(n,)``: ``(n, d)`` (categorical: 5% of the codes
        -1, missing, unless ``missing`` is False)."""
        if self.emission == "gaussian":
            means, cov = emission
            k, d = means.shape
            full = full_covariances(cov, self.covariance_type, k, d)
            chol = np.linalg.cholesky(full)[states]
            return means[states] + np.einsum("nde,ne->nd", chol, rng.normal(size=(len(states), d)))
        if self.emission == "categorical":
            probs = emission.probs[states]  # (n, f, c)
            u = rng.uniform(size=probs.shape[:2] + (1,))
            codes = np.minimum((u > np.cumsum(probs, axis=-1)).sum(-1), probs.shape[-1] - 1)
            codes[(rng.uniform(size=codes.shape) < 0.05) & missing] = -1  # missing values
            return codes.astype(np.int32)
        if self.emission == "poisson":
            return rng.poisson(emission.rates[states]).astype(float)
        if self.emission == "multinomial":  # 0 to 19 trials per step
            return np.stack([rng.multinomial(n, emission.probs[z])
                             for n, z in zip(rng.integers(0, 20, len(states)), states)]).astype(float)
        return (rng.uniform(size=emission.probs[states].shape) < emission.probs[states]).astype(float)

    def sample(self, n_sequences: int, lengths, d: int, k: int, seed: int, missing: bool = True):
        """``(x, x_full, lengths)``: ``x_full`` ``(s, t, d)`` drawn from :meth:`truth` for every
        step, ``x`` the same with garbage at the steps ``tau >= lengths[s]`` (padding)."""
        truth = self.truth(k, d, seed)
        rng = np.random.default_rng(seed + 1000)
        lengths = np.asarray(lengths, np.int32)
        t = int(lengths.max())
        states = np.zeros((n_sequences, t), int)
        for step in range(t):
            p = truth.initial[None] if step == 0 else truth.transitions[states[:, step - 1]]
            states[:, step] = np.minimum((rng.uniform(size=(n_sequences, 1)) > np.cumsum(p, axis=-1)).sum(-1), k - 1)
        x_full = self.emit(rng, truth.emission, states.reshape(-1), missing).reshape(n_sequences, t, d)
        x = x_full.copy()
        pad = np.arange(t)[None, :] >= lengths[:, None]
        x[pad] = {"gaussian": 1e6, "categorical": 97, "poisson": 5e5, "bernoulli": 7, "multinomial": 5e5}[self.emission]
        return x, x_full, lengths

    def start(self, k: int, d: int, seed: int, variant: int = 0) -> emjax.HMMParams:
        """The truth perturbed (``variant`` picks another perturbation), float64 NumPy."""
        truth = self.truth(k, d, seed)
        rng = np.random.default_rng(seed + 7919 * (variant + 1))
        mix = lambda p: 0.7 * p + 0.3 * rng.dirichlet(np.full(p.shape[-1], 5.0), size=p.shape[:-1])
        e = truth.emission
        if self.emission == "gaussian":
            emission = emjax.GaussianEmissionParams(e.means + rng.normal(scale=0.3, size=e.means.shape),
                                                    e.covariances * rng.uniform(1.0, 1.4))
        elif self.emission == "categorical":
            probs = np.zeros_like(e.probs)
            for j, c in enumerate(self.n_categories(d)):
                probs[:, j, :c] = mix(e.probs[:, j, :c])
            emission = emjax.CategoricalEmissionParams(probs)
        elif self.emission == "poisson":
            emission = emjax.PoissonEmissionParams(e.rates * rng.uniform(0.8, 1.25, size=e.rates.shape))
        elif self.emission == "multinomial":
            emission = emjax.MultinomialEmissionParams(mix(e.probs))
        else:
            emission = emjax.BernoulliEmissionParams(np.clip(e.probs + rng.normal(scale=0.05, size=e.probs.shape),
                                                             0.05, 0.95))
        return emjax.HMMParams(mix(truth.initial), mix(truth.transitions), emission)


CASES = {c.name: c for c in (
    [HMMCase(f"gaussian-{t}", "gaussian", t) for t in COVARIANCE_TYPES]
    + [HMMCase(f, f) for f in FAMILIES[1:]])}


# ---------------------------------------------------------------------- NumPy references
def log_emissions(case: HMMCase, emission, x):
    """``(n, k)`` emission log-densities of rows ``x`` ``(n, d)`` (SciPy, float64)."""
    if case.emission == "gaussian":
        means, cov = (np.asarray(a, np.float64) for a in emission)
        k, d = means.shape
        full = full_covariances(cov, case.covariance_type, k, d)
        return np.stack([stats.multivariate_normal(m, c).logpdf(x).reshape(len(x)) for m, c in zip(means, full)], 1)
    if case.emission == "categorical":
        probs = np.asarray(emission.probs, np.float64)  # (k, f, c)
        observed = x >= 0
        with np.errstate(divide="ignore"):
            logp = np.log(probs[:, np.arange(x.shape[1])[None, :], np.where(observed, x, 0)])  # (k, n, f)
        return np.where(observed[None], logp, 0).sum(-1).T
    if case.emission == "poisson":
        rates = np.asarray(emission.rates, np.float64)
        return stats.poisson.logpmf(x[:, None, :], rates[None]).sum(-1)
    if case.emission == "multinomial":
        probs = np.asarray(emission.probs, np.float64)  # as given (SciPy's logpmf renormalises rows)
        row = gammaln(x.sum(1) + 1) - gammaln(x + 1).sum(1)
        return row[:, None] + np.stack([xlogy(x, p).sum(1) for p in probs], 1)
    probs = np.asarray(emission.probs, np.float64)
    return stats.bernoulli.logpmf(x[:, None, :], probs[None]).sum(-1)


def forward_backward(initial, transitions, log_emit, length: int):
    """Log-likelihood, marginals ``(t, k)`` (0 past ``length``) and summed pairwise marginals
    ``(k, k)`` of one sequence, in log space (float64)."""
    t, k = log_emit.shape
    with np.errstate(divide="ignore"):
        log_pi, log_a = np.log(initial), np.log(transitions)
    e = log_emit[:length]
    alpha, beta = np.zeros((length, k)), np.zeros((length, k))
    alpha[0] = log_pi + e[0]
    for tau in range(1, length):
        alpha[tau] = logsumexp(alpha[tau - 1][:, None] + log_a, axis=0) + e[tau]
    for tau in range(length - 2, -1, -1):
        beta[tau] = logsumexp(log_a + (e[tau + 1] + beta[tau + 1])[None], axis=1)
    ll = logsumexp(alpha[-1])
    gamma = np.zeros((t, k))
    gamma[:length] = np.exp(alpha + beta - ll)
    xi = np.zeros((k, k))
    for tau in range(length - 1):
        xi += np.exp(alpha[tau][:, None] + log_a + (e[tau + 1] + beta[tau + 1])[None] - ll)
    return ll, gamma, xi


def e_step(case: HMMCase, params, x, lengths, weights=None):
    """Per-sequence ``(log-likelihoods (s,), marginals (s, t, k), weighted initial counts (k,),
    weighted transition counts (k, k))``."""
    x = np.asarray(x)
    s, t, _ = x.shape
    weights = np.ones(s) if weights is None else np.asarray(weights, np.float64)
    initial, transitions = (np.asarray(a, np.float64) for a in params[:2])
    k = initial.shape[0]
    lls, gammas, start, trans = np.zeros(s), np.zeros((s, t, k)), np.zeros(k), np.zeros((k, k))
    for i in range(s):
        log_emit = np.zeros((t, k))
        log_emit[:lengths[i]] = log_emissions(case, params[2], x[i, :lengths[i]])
        lls[i], gammas[i], xi = forward_backward(initial, transitions, log_emit, int(lengths[i]))
        start += weights[i] * gammas[i, 0]
        trans += weights[i] * xi
    return lls, gammas, start, trans


def mean_log_likelihood(case, params, x, lengths, weights=None):
    """:math:`\\sum_s w_s \\log p(x_s) / \\sum_s w_s` (the fit's reported log_likelihood)."""
    w = np.ones(len(lengths)) if weights is None else np.asarray(weights, np.float64)
    return float(np.sum(w * e_step(case, params, x, lengths)[0]) / w.sum())


def baum_welch_step(case: HMMCase, params, x, lengths, weights=None, reg_covar=0.0):
    """One maximum-likelihood Baum-Welch step (no prior; ``reg_covar`` added to the diagonal of
    Gaussian covariances, as ``pseudo_count=0`` does)."""
    x = np.asarray(x)
    s, t, d = x.shape
    w = np.ones(s) if weights is None else np.asarray(weights, np.float64)
    _, gammas, start, trans = e_step(case, params, x, lengths, w)
    real = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    resp = (gammas * w[:, None, None])[real]  # (n, k) over real steps
    rows = x[real].astype(np.float64)
    counts = resp.sum(0)
    if case.emission == "gaussian":
        means = resp.T @ rows / counts[:, None]
        scatter = np.stack([(resp[:, j, None] * (rows - means[j])).T @ (rows - means[j]) for j in range(len(counts))])
        cov = {"full": scatter / counts[:, None, None], "tied": scatter.sum(0) / counts.sum(),
               "diag": np.einsum("kdd->kd", scatter) / counts[:, None],
               "spherical": np.einsum("kdd->k", scatter) / (d * counts)}[case.covariance_type]
        cov = cov + reg_covar * (np.eye(d) if case.covariance_type in ("full", "tied") else 1.0)
        emission = emjax.GaussianEmissionParams(means, cov)
    elif case.emission == "categorical":
        c_max = max(case.n_categories(d))
        one_hot = (rows.astype(int)[:, :, None] == np.arange(c_max)).astype(float)  # -1: all zero
        table = np.einsum("nk,nfc->kfc", resp, one_hot)
        mass = table.sum(-1, keepdims=True)  # 0 where a feature is missing at every step
        with np.errstate(invalid="ignore"):
            emission = emjax.CategoricalEmissionParams(np.where(mass > 0, table / mass, params.emission.probs))
    elif case.emission == "multinomial":
        sums = resp.T @ rows
        mass = sums.sum(1, keepdims=True)  # 0: no counts seen, the probabilities are kept
        with np.errstate(invalid="ignore"):
            emission = emjax.MultinomialEmissionParams(np.where(mass > 0, sums / mass, params.emission.probs))
    else:
        value = resp.T @ rows / counts[:, None]
        emission = (emjax.PoissonEmissionParams if case.emission == "poisson" else emjax.BernoulliEmissionParams)(value)
    keep = lambda new, old, mass: np.where(mass > 0, new, np.asarray(old, np.float64))  # no weight: kept
    initial, transitions = (np.asarray(a, np.float64) for a in params[:2])
    with np.errstate(invalid="ignore", divide="ignore"):
        initial = keep(start / start.sum(), initial, start.sum())
        transitions = keep(trans / trans.sum(1, keepdims=True), transitions, trans.sum(1, keepdims=True))
    return emjax.HMMParams(initial, transitions, emission)


def hmmlearn_step(case: HMMCase, params, x, lengths):
    """hmmlearn's one Baum-Welch iteration with priors off: ``(new params, total log-likelihood
    at the new params)`` (unit weights: hmmlearn takes none)."""
    from hmmlearn import hmm as hl

    x, lengths = np.asarray(x), np.asarray(lengths)
    k = len(params.initial)
    rows = np.concatenate([xs[:n] for xs, n in zip(x, lengths)])
    common = dict(n_iter=1, init_params="", implementation="log")
    if case.emission == "gaussian":
        ref = hl.GaussianHMM(k, covariance_type=case.covariance_type, params="stmc", startprob_prior=1.0,
                             transmat_prior=1.0, means_prior=0.0, means_weight=0.0, covars_prior=0.0,
                             covars_weight=1.0, **common)
        ref.means_, ref.covars_ = params.emission
    elif case.emission == "categorical":
        c = case.n_categories(1)[0]
        ref = hl.CategoricalHMM(k, n_features=c, params="ste", **common)
        ref.emissionprob_ = np.asarray(params.emission.probs)[:, 0, :c]
        rows = rows.astype(int)
    else:
        ref = hl.PoissonHMM(k, params="stl", **common)
        ref.lambdas_ = np.asarray(params.emission.rates)
    ref.startprob_, ref.transmat_ = np.asarray(params.initial), np.asarray(params.transitions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(rows, lengths)
        score = ref.score(rows, lengths)
    if case.emission == "gaussian":
        cov = np.asarray(ref._covars_)
        cov = cov[:, 0] if case.covariance_type == "spherical" and cov.ndim == 2 else cov
        emission = emjax.GaussianEmissionParams(ref.means_, cov)
    elif case.emission == "categorical":
        emission = emjax.CategoricalEmissionParams(ref.emissionprob_[:, None, :])
    else:
        emission = emjax.PoissonEmissionParams(ref.lambdas_)
    return emjax.HMMParams(ref.startprob_, ref.transmat_, emission), score


def relative_error(got, want) -> float:
    """Largest ``|got - want|`` over a pytree's leaves, relative to each leaf's largest ``|want|``."""
    import jax

    worst = 0.0
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert a.shape == b.shape, (a.shape, b.shape)
        ok = np.isfinite(b)
        scale = max(float(np.max(np.abs(b[ok]), initial=0.0)), 1e-300)
        bad = np.any(np.isfinite(a) != ok)
        worst = max(worst, np.inf if bad else float(np.max(np.abs(a[ok] - b[ok]), initial=0.0)) / scale)
    return worst


# ---------------------------------------------------------------------- 8 emulated devices
SHARD_SHAPE = dict(n_sequences=7, lengths=(23, 1, 17, 9, 23, 4, 12), d=2, k=3, seed=11)
SHARD_ITER = 6


def sharded_report(names=None) -> None:
    """Prints one JSON line: for each case, the relative error of ``em`` and ``fit`` (2 starts)
    on sequences sharded over an 8-device data axis against the one-device ``em`` (float64);
    and, per documented data form (``(x, lengths)``, ``[x, lengths]``, :class:`emjax.Sequences`,
    ``(s, t, d)``, one ``(t, d)`` sequence), ``em`` on that form sharded against ``em`` on the
    same form on one device (error, sharded status, one-device status)."""
    import jax
    from jax.sharding import AxisType

    jax.config.update("jax_enable_x64", True)
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    report = {"devices": jax.device_count()}
    for name in names or CASES:
        case, shape = CASES[name], SHARD_SHAPE
        model = case.model(shape["k"], shape["d"])
        x, _, lengths = case.sample(shape["n_sequences"], shape["lengths"], shape["d"], shape["k"], shape["seed"])
        starts = [case.start(shape["k"], shape["d"], shape["seed"], v) for v in (0, 1)]
        one = [emjax.em(model, p, (x, lengths), max_iter=SHARD_ITER, tol=0.0, throw=False) for p in starts]
        seqs, w = emjax.shard((x, lengths), mesh, model=model)
        em = emjax.em(model, starts[0], seqs, w, max_iter=SHARD_ITER, tol=0.0, throw=False)
        stacked = jax.tree_util.tree_map(lambda *a: np.stack(a), *starts)
        fit = emjax.fit(model, seqs, jax.random.key(0), weights=w, n_init=2, init_params=stacked,
                        max_iter=SHARD_ITER, tol=0.0, throw=False)
        restarts = [jax.tree_util.tree_map(lambda a, r=r: a[r], fit.restarts) for r in (0, 1)]
        x_full = case.sample(shape["n_sequences"], shape["lengths"], shape["d"], shape["k"], shape["seed"])[1]
        forms = {"list": [x, lengths], "sequences": emjax.Sequences(x, lengths),
                 "array": x_full, "single": x_full[0]}
        form_errors = {}
        for form, data in forms.items():
            alone = emjax.em(model, starts[0], data, max_iter=SHARD_ITER, tol=0.0, throw=False)
            rows, weights = emjax.shard(data, mesh, model=model)
            spread = emjax.em(model, starts[0], rows, weights, max_iter=SHARD_ITER, tol=0.0, throw=False)
            form_errors[form] = [relative_error(spread, alone), int(spread.status), int(alone.status)]
        report[name] = dict(
            forms=form_errors,
            padded=int(seqs.x.shape[0]),
            em_error=relative_error(em, one[0]),
            fit_error=max(relative_error(got, want) for got, want in zip(restarts, one)),
            statuses=[int(s) for s in fit.restarts.status] + [int(em.status)])
    print(json.dumps(report))
