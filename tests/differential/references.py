r"""Independent float64 references for one EM step and for the objective, written in NumPy here
(or taken from scikit-learn's private EM steps). Nothing in this module imports emjax.

Every reference works on UNWEIGHTED rows: the harness checks a weighted engine run against the
reference on the rows repeated by their (integer) weights, so row weights are verified by the
definition "weight w = the row w times; weight 0 = the row removed".

Each reference returns ``(new_params, objective)`` where ``objective`` is the engine's monitored
objective of the STARTING params, :math:`\big(\sum_n \log p(x_n \mid \theta) + \log p(\theta)\big)
/ n` in the user's units (the log prior of a Gaussian mixture lives in the standardised
coordinates, see :func:`gmm_log_prior`).
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.special import gammaln, logsumexp, xlogy
from sklearn.mixture import BayesianGaussianMixture as SkBGMM
from sklearn.mixture import GaussianMixture as SkGMM
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

PSEUDO_COUNT = 1e-3  # the documented default prior strength of every emjax mixture


# ---------------------------------------------------------------- Gaussian helpers
def full_cov(cov, cov_type, k, d):
    """(k, d, d) covariances from any of the four covariance shapes."""
    cov = np.asarray(cov, np.float64)
    if cov_type == "full":
        return cov
    if cov_type == "tied":
        return np.broadcast_to(cov, (k, d, d)).copy()
    if cov_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(d)


def from_full(scatter, cov_type):
    """The covariance shape of ``cov_type`` from per-component (k, d, d) matrices (tied: summed)."""
    if cov_type == "full":
        return scatter
    if cov_type == "tied":
        return scatter.sum(0)
    diag = np.diagonal(scatter, axis1=1, axis2=2)
    return diag if cov_type == "diag" else diag.mean(1)


def gaussian_log_density(x, mean, cov):
    """log N(x_n | mean, cov) for rows x (n, d), by a solve."""
    d = x.shape[1]
    if d == 0:
        return np.zeros(len(x))
    diff = x - mean
    maha = np.einsum("nd,nd->n", diff, np.linalg.solve(cov, diff.T).T)
    return -0.5 * (d * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + maha)


def standardising_map(x, cov_type, pseudo_count):
    """``(shift, scale)`` of the documented standardisation: per feature, the mean and standard
    deviation over the rows where it is observed (one common scale, the root of the mean variance,
    for spherical); scale 1 for maximum likelihood (``pseudo_count=0``)."""
    obs = ~np.isnan(x)
    count = obs.sum(0)
    shift = np.where(obs, x, 0).sum(0) / count
    var = np.where(obs, (x - shift) ** 2, 0).sum(0) / count
    if pseudo_count == 0:
        return shift, np.ones_like(shift)
    if cov_type == "spherical":
        var = np.full_like(var, var.mean())
    return shift, np.where(var > 0, np.sqrt(np.where(var > 0, var, 1)), 1)


def map_covariances(means, cov, shift, scale, cov_type):
    """(means, cov) of ``(x - shift) / scale`` from those of ``x``."""
    if cov_type in ("full", "tied"):
        cov = cov / np.outer(scale, scale)
    elif cov_type == "diag":
        cov = cov / scale ** 2
    else:
        cov = cov / scale[0] ** 2
    return (means - shift) / scale, cov


def gmm_log_prior(params, x, cov_type, reg_covar, pseudo_count=PSEUDO_COUNT):
    r"""The documented prior in standardised coordinates: :math:`c \sum_k \log\pi_k + \sum_k
    (\tfrac c2 \log|\Lambda_k| - \tfrac\psi2 \operatorname{tr}\Lambda_k)` (tied: one Wishart of
    strength :math:`Kc`), ``c = pseudo_count``; 0 for maximum likelihood (``pseudo_count=0``)."""
    if pseudo_count == 0:
        return 0.0
    w, m, cov = params
    k, d = np.shape(m)
    shift, scale = standardising_map(x, cov_type, pseudo_count)
    _, cov_s = map_covariances(np.asarray(m), np.asarray(cov), shift, scale, cov_type)
    c, psi = pseudo_count, reg_covar
    if cov_type == "tied":
        prec = np.linalg.inv(cov_s)
        wishart = 0.5 * k * c * np.linalg.slogdet(prec)[1] - 0.5 * psi * np.trace(prec)
    else:
        prec = np.linalg.inv(full_cov(cov_s, cov_type, k, d))
        wishart = sum(0.5 * c * np.linalg.slogdet(p)[1] - 0.5 * psi * np.trace(p) for p in prec)
    return c * np.sum(np.log(w)) + wishart


def gmm_component_log_density(x, means, cov, cov_type):
    """(n, k) log N(x_n | m_k, S_k) over each row's observed (non-NaN) coordinates."""
    k, d = means.shape
    covs = full_cov(cov, cov_type, k, d)
    out = np.zeros((len(x), k))
    obs = ~np.isnan(x)
    for pattern in np.unique(obs, axis=0):
        rows = np.all(obs == pattern, axis=1)
        o = np.flatnonzero(pattern)
        for j in range(k):
            out[rows, j] = gaussian_log_density(x[rows][:, o], means[j, o], covs[j][np.ix_(o, o)])
    return out


def gmm_log_prob(params, x, cov_type):
    w, m, cov = (np.asarray(p, np.float64) for p in params)
    return logsumexp(gmm_component_log_density(x, m, cov, cov_type) + np.log(w), axis=1)


def gmm_step(params, x, cov_type, reg_covar, pseudo_count=PSEUDO_COUNT):
    r"""One EM step of a Gaussian mixture, written from the GaussianMixture docstring, with NaN
    entries marginalised out (exact EM for data missing at random).

    E-step on every row's observed coordinates; expected complete statistics with the conditional
    means :math:`\hat x = m_{k,m} + \Sigma_{mo}\Sigma_{oo}^{-1}(x_o - m_{k,o})` and conditional
    covariances of the missing ones. M-step: for ``c = pseudo_count > 0``, in standardised coordinates,
    :math:`\pi_k = (N_k + c)/(N + Kc)`, :math:`m_k = s_k/N_k`, :math:`\Sigma_k = (S_k + \psi I)/
    (N_k + c)` (tied :math:`(\sum_k S_k + \psi I)/(N + Kc)`, diag the diagonal, spherical the mean
    of the diagonal); for ``pseudo_count=0``, scikit-learn's update in the data's units (``reg_covar`` added
    to the diagonal, counts + 10 eps).
    """
    w, m, cov = (np.asarray(p, np.float64) for p in params)
    x = np.asarray(x, np.float64)
    k, d = m.shape
    shift, scale = standardising_map(x, cov_type, pseudo_count)
    xs = (x - shift) / scale
    ms, covs = map_covariances(m, cov, shift, scale, cov_type)
    lp = gmm_component_log_density(xs, ms, covs, cov_type) + np.log(w)
    row = logsumexp(lp, axis=1)
    objective = (np.sum(gmm_log_prob(params, x, cov_type))
                 + gmm_log_prior(params, x, cov_type, reg_covar, pseudo_count)) / len(x)
    seen = ~np.all(np.isnan(x), axis=1)
    resp = np.where(seen[:, None], np.exp(lp - row[:, None]), 0)
    full = full_cov(covs, cov_type, k, d)
    filled = np.repeat(xs[None], k, 0)  # (k, n, d) conditional means
    extra = np.zeros((k, len(x), d, d))  # conditional covariances of the missing coordinates
    for i in np.flatnonzero(np.isnan(xs).any(1) & seen):
        o, mi = np.flatnonzero(~np.isnan(xs[i])), np.flatnonzero(np.isnan(xs[i]))
        for j in range(k):
            gain = full[j][np.ix_(mi, o)] @ np.linalg.inv(full[j][np.ix_(o, o)])
            filled[j, i, mi] = ms[j, mi] + gain @ (xs[i, o] - ms[j, o])
            extra[j, i][np.ix_(mi, mi)] = full[j][np.ix_(mi, mi)] - gain @ full[j][np.ix_(o, mi)]
    filled = np.where(seen[None, :, None], filled, 0)
    counts = resp.sum(0)
    if pseudo_count == 0:
        counts = counts + 10 * np.finfo(np.float64).eps
    sums = np.einsum("nk,knd->kd", resp, filled)
    new_means = np.where(counts[:, None] > 0, sums / np.where(counts > 0, counts, 1)[:, None], ms)
    diff = filled - new_means[:, None]
    scatter = (np.einsum("nk,knd,kne->kde", resp, diff, diff)
               + np.einsum("nk,knde->kde", resp, extra))
    scatter = from_full(scatter, cov_type)
    if pseudo_count == 0:
        divisor = counts.sum() if cov_type == "tied" else counts
        new_cov = _divide(scatter, divisor, cov_type) + _eye_like(reg_covar, cov_type, d)
        new_w = counts / counts.sum()
    else:
        c = pseudo_count
        divisor = counts.sum() + k * c if cov_type == "tied" else counts + c
        new_cov = _divide(scatter + _eye_like(reg_covar, cov_type, d), divisor, cov_type)
        new_w = (counts + c) / (counts.sum() + k * c)
    means, new_cov = map_covariances(new_means, new_cov, -shift / scale, 1 / scale, cov_type)
    return (new_w, means, new_cov), objective


def _divide(scatter, divisor, cov_type):
    divisor = np.asarray(divisor)
    if cov_type == "full":
        return scatter / divisor[:, None, None]
    if cov_type == "diag":
        return scatter / divisor[:, None]
    return scatter / divisor


def _eye_like(value, cov_type, d):
    return value * np.eye(d) if cov_type in ("full", "tied") else value


def sklearn_gmm_step(params, x, cov_type, reg_covar):
    """scikit-learn's own E-step and M-step (``_e_step``, ``_m_step``) from ``params``, and the
    mean log-likelihood of ``params`` from its ``_estimate_weighted_log_prob``."""
    w, m, cov = (np.asarray(p, np.float64) for p in params)
    sk = SkGMM(len(w), covariance_type=cov_type, reg_covar=reg_covar)
    sk.weights_, sk.means_, sk.covariances_ = w, m, cov
    sk.precisions_cholesky_ = _compute_precision_cholesky(cov, cov_type)
    objective = float(np.mean(logsumexp(sk._estimate_weighted_log_prob(x), axis=1)))
    _, log_resp = sk._e_step(x)
    sk._m_step(x, log_resp)
    return (sk.weights_, sk.means_, sk.covariances_), objective


def sklearn_bgmm_step(params, x, cov_type, prior_type):
    """scikit-learn's variational E- and M-step (``reg_covar=0``) from emjax's VBGMMParams fields
    (the priors are the params' ``mean_prior`` / ``covariance_prior``, scikit-learn's defaults for
    the rest: ``nu_0 = d``, ``beta_0 = 1``, ``gamma_0 = 1/K``)."""
    conc, beta, m, dof, cov, m0, c0 = (np.asarray(p, np.float64) for p in params)
    k, d = m.shape
    sk = SkBGMM(n_components=k, covariance_type=cov_type, weight_concentration_prior_type=prior_type,
                reg_covar=0.0)
    sk._check_parameters(x)
    sk.mean_prior_, sk.covariance_prior_ = m0, c0
    sk.weight_concentration_ = (conc[0], conc[1]) if prior_type == "dirichlet_process" else conc
    sk.mean_precision_, sk.means_, sk.degrees_of_freedom_, sk.covariances_ = beta, m, dof, cov
    sk.precisions_cholesky_ = _compute_precision_cholesky(cov, cov_type)
    _, log_resp = sk._e_step(x)
    sk._m_step(x, log_resp)
    conc = np.stack(sk.weight_concentration_) if prior_type == "dirichlet_process" else sk.weight_concentration_
    return (conc, sk.mean_precision_, sk.means_, sk.degrees_of_freedom_, sk.covariances_, m0, c0), None


# ---------------------------------------------------------------- discrete mixtures
def _mixture_step(log_weights, log_density, prior):
    """``(resp (n, k), objective)`` of a mixture from its (n, k) component log densities."""
    lp = log_density + log_weights
    row = logsumexp(lp, axis=1)
    return np.exp(lp - row[:, None]), (row.sum() + prior) / len(lp)


def _dirichlet(counts, a):
    mass = counts + a
    return mass / mass.sum(-1, keepdims=True)


def bernoulli_step(params, x, a=PSEUDO_COUNT):
    w, p = (np.asarray(q, np.float64) for q in params)
    log_density = xlogy(x, p[:, None]).sum(-1).T + xlogy(1 - x, 1 - p[:, None]).sum(-1).T
    prior = a * np.log(w).sum() + a * (np.log(p) + np.log1p(-p)).sum()
    resp, objective = _mixture_step(np.log(w), log_density, prior)
    counts = resp.sum(0)
    return (_dirichlet(counts, a), (resp.T @ x + a) / (counts + 2 * a)[:, None]), objective


def poisson_step(params, x, a=PSEUDO_COUNT):
    w, lam = (np.asarray(q, np.float64) for q in params)
    log_density = x @ np.log(lam).T - lam.sum(1) - gammaln(x + 1).sum(1, keepdims=True)
    prior = a * np.log(w).sum() + (a * np.log(lam) - a * lam).sum()
    resp, objective = _mixture_step(np.log(w), log_density, prior)
    counts = resp.sum(0)
    return (_dirichlet(counts, a), (resp.T @ x + a) / (counts + a)[:, None]), objective


def multinomial_step(params, x, a=PSEUDO_COUNT):
    w, p = (np.asarray(q, np.float64) for q in params)
    row = gammaln(x.sum(1) + 1) - gammaln(x + 1).sum(1)
    log_density = x @ np.log(p).T + row[:, None]
    prior = a * np.log(w).sum() + a * np.log(p).sum()
    resp, objective = _mixture_step(np.log(w), log_density, prior)
    return (_dirichlet(resp.sum(0), a), _dirichlet(resp.T @ x, a)), objective


def categorical_step(params, x, n_categories, a=PSEUDO_COUNT):
    """Latent class analysis; ``x`` int (n, f), -1 missing; probs (k, f, c_max), 0 past c_j."""
    w, p = (np.asarray(q, np.float64) for q in params)
    k, f, c_max = p.shape
    onehot = np.zeros((len(x), f, c_max))
    rows, feats = np.nonzero(x >= 0)
    onehot[rows, feats, x[rows, feats]] = 1
    valid = np.arange(c_max)[None] < np.asarray(n_categories)[:, None]
    log_p = np.where(valid, np.log(np.where(valid, p, 1)), 0)
    log_density = np.einsum("nfc,kfc->nk", onehot, log_p)
    prior = a * np.log(w).sum() + a * log_p.sum()
    resp, objective = _mixture_step(np.log(w), log_density, prior)
    counts = np.einsum("nk,nfc->kfc", resp, onehot)
    mass = np.where(valid, counts + a, 0)
    return (_dirichlet(resp.sum(0), a), mass / mass.sum(-1, keepdims=True)), objective


# ---------------------------------------------------------------- PLSA
def plsa_step(params, triplets, n_docs, n_words, a=PSEUDO_COUNT):
    r"""Plain PLSA (beta = 1) over (doc, word, count) triplets (repeats add up):
    :math:`q_{dwz} \propto \theta_{dz}\phi_{zw}`, :math:`\theta \propto n_{dz} + a`,
    :math:`\phi \propto n_{zw} + a`; objective per triplet."""
    theta, phi = (np.asarray(q, np.float64) for q in params)
    doc, word, count = triplets
    joint = theta[doc] * phi[:, word].T  # (nnz, K)
    total = joint.sum(1)
    q = joint / total[:, None] * count[:, None]
    n_dz = np.zeros_like(theta)
    np.add.at(n_dz, doc, q)
    n_wz = np.zeros((n_words, theta.shape[1]))
    np.add.at(n_wz, word, q)
    prior = a * np.log(theta).sum() + a * np.log(phi).sum()
    objective = (np.sum(xlogy(count, total)) + prior) / len(count)
    return (_dirichlet(n_dz, a), _dirichlet(n_wz.T, a)), objective


# ---------------------------------------------------------------- Bayesian network
def bn_step(tables, x, parents, cards, a):
    """Brute force: the joint of every complete assignment, each row's posterior over those
    consistent with its observed values, expected family counts, MAP (N + a) / sum."""
    tables = [np.asarray(t, np.float64) for t in tables]
    states = np.array(list(itertools.product(*map(range, cards))))  # (S, V)
    log_joint = sum(np.log(tables[v][tuple(states[:, u] for u in ps) + (states[:, v],)])
                    for v, ps in enumerate(parents))
    agree = np.all((x[:, None, :] < 0) | (x[:, None, :] == states[None]), axis=2)  # (n, S)
    lp = np.where(agree, log_joint[None], -np.inf)
    row = logsumexp(lp, axis=1)
    post = np.exp(lp - row[:, None]).sum(0)  # (S,) summed over rows
    new = []
    for v, ps in enumerate(parents):
        counts = np.zeros(tables[v].shape)
        np.add.at(counts, tuple(states[:, u] for u in ps) + (states[:, v],), post)
        new.append(_dirichlet(counts, a))
    prior = a * sum(np.log(t).sum() for t in tables)
    return tuple(new), (row.sum() + prior) / len(x)


# ---------------------------------------------------------------- enumerated / user models
def enumerated_gaussian_step(params, x, learning_rate):
    r"""The harness's EnumeratedMixture (unit-variance Gaussians, softmax weights) with one plain
    gradient step of size ``learning_rate`` uphill on :math:`Q(\theta; \theta_t)`:
    :math:`\partial Q/\partial \ell_z = \sum_n r_{nz} - n\,\mathrm{softmax}(\ell)_z`,
    :math:`\partial Q/\partial \mu_z = \sum_n r_{nz}(x_n - \mu_z)`."""
    logits, means = (np.asarray(q, np.float64) for q in params)
    d = x.shape[1]
    log_w = logits - logsumexp(logits)
    log_density = -0.5 * ((x[:, None] - means[None]) ** 2).sum(-1) - 0.5 * d * np.log(2 * np.pi)
    resp, objective = _mixture_step(log_w, log_density, 0.0)

    def q_value(lg, mu):
        dens = -0.5 * ((x[:, None] - mu[None]) ** 2).sum(-1) - 0.5 * d * np.log(2 * np.pi)
        return np.sum(resp * (dens + lg - logsumexp(lg)))

    grad_logits = resp.sum(0) - len(x) * np.exp(log_w)
    grad_means = resp.T @ x - resp.sum(0)[:, None] * means
    new = (logits + learning_rate * grad_logits, means + learning_rate * grad_means)
    assert q_value(*new) >= q_value(logits, means), "learning rate too large for a sound reference"
    return new, objective


def exponential_step(params, x):
    r"""The harness's user model: a mixture of products of exponentials,
    :math:`\log p(x \mid k) = \sum_d \log\lambda_{kd} - \lambda_{kd} x_d`; ML M-step
    :math:`\pi_k = N_k/N`, :math:`\lambda_{kd} = N_k / \sum_n r_{nk} x_{nd}`."""
    w, lam = (np.asarray(q, np.float64) for q in params)
    log_density = np.log(lam).sum(1) - x @ lam.T
    resp, objective = _mixture_step(np.log(w), log_density, 0.0)
    counts = resp.sum(0)
    return (counts / counts.sum(), counts[:, None] / (resp.T @ x)), objective
