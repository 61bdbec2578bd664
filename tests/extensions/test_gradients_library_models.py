"""Derivatives through fits of the library's own discrete models (PoissonMixture,
BernoulliMixture, PLSA), checked against central finite differences at float64.

tests/extensions/test_gradients.py covers the GMM, a Gaussian HMM and a user-written model; these are the
library's discrete families, whose M-steps carry their Dirichlet/Gamma priors. The perturbed
inputs of every central difference are batched into the one compiled program that computes the
derivatives."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from emjax.models.plsa.corpus import as_corpus

KEY = jax.random.key(3)
STEP = 1e-5  # central differences: truncation ~STEP^2, rounding ~1e-16 / STEP


def directional_checks(loss, base, directions):
    """``(d loss(base) . v, central difference along v)`` for each direction ``v``, both from one
    ``jit(vmap(...))`` call over ``base`` and its perturbed copies."""
    batch = [base] + [base + s * STEP * v for v in directions for s in (1.0, -1.0)]
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(loss)))(jnp.stack(batch))
    assert np.all(np.isfinite(grads[0]))
    return [(float(jnp.sum(grads[0] * v)), float((values[1 + 2 * i] - values[2 + 2 * i]) / (2 * STEP)))
            for i, v in enumerate(directions)]


def assert_directional(loss, base, seed):
    rng = np.random.default_rng(seed)
    directions = [rng.normal(size=base.shape) for _ in range(2)]
    for analytic, numeric in directional_checks(loss, jnp.asarray(base), directions):
        assert abs(numeric) > 1e-3, "the check needs a loss that moves along the direction"
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5)


def count_rows(seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.poisson([2.0, 7.0], (30, 2)), rng.poisson([9.0, 1.0], (30, 2))]).astype(float)


def sorted_summary(res, key_column):
    """A smooth, label-invariant scalar of the best restart: components sorted by one column."""
    table = jax.tree_util.tree_leaves(res.params)
    order = jnp.argsort(key_column(res.params))
    return res.objective + sum(jnp.sum(jnp.sin(leaf[order] * (1.0 + i))) for i, leaf in enumerate(table))


def binary_rows(seed=2):
    rng = np.random.default_rng(seed)
    probs = np.array([[0.9, 0.8, 0.1, 0.2], [0.1, 0.3, 0.8, 0.9]])
    return (rng.uniform(size=(60, 4)) < probs[np.arange(60) % 2]).astype(float)


@pytest.mark.parametrize("model, rows, first_column", [
    pytest.param(emjax.PoissonMixture(2), count_rows, lambda p: p.rates[:, 0], marks=pytest.mark.slow),
    (emjax.BernoulliMixture(2), binary_rows, lambda p: p.probs[:, 0]),
], ids=["poisson", "bernoulli"])
def test_mixture_gradient_wrt_sample_weights(x64, model, rows, first_column):
    x = rows()

    def loss(w):
        res = emjax.fit(model, x, KEY, weights=w, n_init=2, tol=0.0, max_iter=300, throw=False)
        return sorted_summary(res, first_column)

    assert_directional(loss, np.linspace(0.5, 1.5, x.shape[0]), seed=1)


@pytest.mark.slow
def test_plsa_gradient_wrt_counts(x64):
    """PLSA on a sparse corpus: derivatives w.r.t. the (real-valued) count of every triplet."""
    rng = np.random.default_rng(4)
    dense = rng.poisson(np.where(np.arange(8)[:, None] < 4, [4, 4, 4, 0.5, 0.5, 0.5],
                                 [0.5, 0.5, 0.5, 4, 4, 4]))
    corpus = as_corpus(dense.astype(float))
    model = emjax.PLSA(2)

    def loss(count):
        data = emjax.Corpus(corpus.doc_index, corpus.word_index, count, corpus.n_docs, corpus.n_words)
        res = emjax.fit(model, data, KEY, n_init=2, tol=0.0, max_iter=400, throw=False)
        return sorted_summary(res, lambda p: p.topic_word[:, 0])

    assert_directional(loss, np.asarray(corpus.count, float), seed=5)
