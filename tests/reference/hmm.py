"""Slow, obvious NumPy references for the HMM tests: enumeration of every state path."""
import itertools

import numpy as np
from scipy.stats import multivariate_normal


def tiny_hmm(seed, k=3, t=6):
    """Random initial/transitions with hard zeros, and random emission log-densities."""
    rng = np.random.default_rng(seed)
    initial = rng.dirichlet(np.ones(k))
    initial[-1] = 0.0  # the last state can never start
    initial /= initial.sum()
    trans = rng.dirichlet(np.ones(k), size=k)
    trans[0, -1] = trans[-1, 0] = 0.0  # hard zeros both ways
    trans /= trans.sum(axis=1, keepdims=True)
    log_emit = rng.normal(scale=2.0, size=(t, k))
    return initial, trans, log_emit


def enumerate_paths(initial, trans, log_emit, length):
    """Every path of ``length`` steps: log-likelihood, marginals (t, k), pairwise (t-1, k, k),
    the best path."""
    t, k = log_emit.shape
    paths = np.array(list(itertools.product(range(k), repeat=length)))
    with np.errstate(divide="ignore"):
        log_joint = np.log(initial[paths[:, 0]]) + log_emit[0, paths[:, 0]]
        for s in range(1, length):
            log_joint += np.log(trans[paths[:, s - 1], paths[:, s]]) + log_emit[s, paths[:, s]]
    top = log_joint.max()
    ll = top + np.log(np.exp(log_joint - top).sum())
    prob = np.exp(log_joint - ll)
    marginals, pairwise = np.zeros((t, k)), np.zeros((t - 1, k, k))
    for path, p in zip(paths, prob):
        marginals[np.arange(length), path] += p
        pairwise[np.arange(length - 1), path[:-1], path[1:]] += p
    best = np.full(t, -1)
    best[:length] = paths[np.argmax(log_joint)]
    return ll, marginals, pairwise, best


def gaussian_log_emissions(x, means, covariances):
    """``(t, k)`` log N(x_t | means_j, covariances_j) by SciPy (full covariances)."""
    return np.stack([multivariate_normal(m, c).logpdf(x).reshape(len(x)) for m, c in zip(means, covariances)],
                    axis=1)


def baum_welch_step(x, lengths, weights, initial, trans, means, covs):
    """One maximum-likelihood Baum-Welch step for full-covariance Gaussian emissions by
    enumeration: ``(total weighted log-likelihood, posteriors per sequence, new params)``."""
    k, d = means.shape
    n_start, n_trans = np.zeros(k), np.zeros((k, k))
    gamma_all, total, posteriors = [], 0.0, []
    for xs, length, w in zip(x, lengths, weights):
        log_emit = gaussian_log_emissions(xs, means, covs)
        ll, gamma, xi, best = enumerate_paths(initial, trans, log_emit, length)
        posteriors.append((ll, gamma, best))
        total += w * ll
        n_start += w * gamma[0]
        n_trans += w * xi.sum(axis=0)
        gamma_all.append(w * gamma[:length])
    steps = np.concatenate([xs[:length] for xs, length in zip(x, lengths)])
    gamma = np.concatenate(gamma_all)
    counts = gamma.sum(axis=0)
    new_means = gamma.T @ steps / counts[:, None]
    scatter = np.stack([(gamma[:, j, None] * (steps - new_means[j])).T @ (steps - new_means[j])
                        for j in range(k)])
    new = dict(initial=n_start / n_start.sum(), transitions=n_trans / n_trans.sum(axis=1, keepdims=True),
               means=new_means, scatter=scatter, counts=counts, start_counts=n_start,
               transition_counts=n_trans, steps=steps, step_weights=np.concatenate(
                   [np.full(length, w) for length, w in zip(lengths, weights)]))
    return total, posteriors, new
