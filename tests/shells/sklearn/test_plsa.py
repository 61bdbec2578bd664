"""emjax.sklearn.plsa.PLSA against a NumPy PLSA EM written here (same start, float64), its
fold-in, held-out score and perplexity against NumPy, and scipy.sparse input (CountVectorizer's
int64 CSR) against dense input, in the estimator and in the functional emjax.fit."""
import jax
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import make_pipeline

import emjax
from emjax.sklearn.plsa import PLSA

K, A, N_ITER = 3, 1e-2, 15


def counts(seed=0, n_docs=30, n_words=25):
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(K, 0.3), size=n_docs)
    phi = rng.dirichlet(np.full(n_words, 0.2), size=K)
    return np.stack([rng.multinomial(rng.integers(5, 40), t @ phi) for t in theta])


def numpy_posterior_counts(c, theta, phi):
    """(n_dz, n_zw): sum_w c_dw q_dwz and sum_d c_dw q_dwz, q the topic posterior."""
    joint = theta[:, :, None] * phi[None]                       # (d, z, w)
    q = joint / joint.sum(axis=1, keepdims=True)
    weighted = c[:, None, :] * q
    return weighted.sum(axis=2), weighted.sum(axis=0)


def numpy_plsa_em(c, theta, phi, n_iter, a):
    for _ in range(n_iter):
        n_dz, n_zw = numpy_posterior_counts(c, theta, phi)
        theta = (n_dz + a) / (n_dz + a).sum(axis=1, keepdims=True)
        phi = (n_zw + a) / (n_zw + a).sum(axis=1, keepdims=True)
    return theta, phi


def numpy_fold_in(c, phi, n_iter, a):
    theta = np.full((c.shape[0], phi.shape[0]), 1 / phi.shape[0])
    for _ in range(n_iter):
        n_dz, _ = numpy_posterior_counts(c, theta, phi)
        theta = (n_dz + a) / (n_dz + a).sum(axis=1, keepdims=True)
    return theta


def test_fit_matches_numpy_em_and_sparse_matches_dense(x64):
    c = counts()
    estimator = PLSA(K, pseudo_count=A, max_iter=N_ITER, tol=0.0, random_state=0)
    theta_fit = estimator.fit_transform(sp.csr_matrix(c))
    start = emjax.init_restarts(emjax.PLSA(K, pseudo_count=A), c, jax.random.key(0), n_init=1)
    theta, phi = numpy_plsa_em(c.astype(float), np.asarray(start.doc_topic[0]),
                               np.asarray(start.topic_word[0]), N_ITER, A)
    np.testing.assert_allclose(estimator.components_, phi, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(theta_fit, theta, rtol=1e-8, atol=1e-12)
    assert estimator.components_.shape == (K, c.shape[1]) and estimator.n_iter_ == N_ITER
    dense = clone(estimator).fit(c)
    np.testing.assert_allclose(dense.components_, estimator.components_, rtol=1e-12)


def test_transform_score_perplexity_match_numpy_fold_in(x64):
    c, held_out = counts(1), counts(2, n_docs=8)
    estimator = PLSA(K, pseudo_count=A, max_iter=30, random_state=1, fold_in_iter=40).fit(c)
    theta = numpy_fold_in(held_out.astype(float), estimator.components_, 40, A)
    np.testing.assert_allclose(estimator.transform(sp.csr_matrix(held_out)), theta, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(estimator.transform(held_out), theta, rtol=1e-8, atol=1e-12)
    log_lik = np.sum(held_out * np.log(theta @ estimator.components_))
    assert estimator.score(held_out) == pytest.approx(log_lik, rel=1e-10)
    assert estimator.perplexity(held_out) == pytest.approx(np.exp(-log_lik / held_out.sum()), rel=1e-10)


def test_countvectorizer_pipeline_and_functional_fit_take_sparse():
    docs = ["the cat sat on the mat", "dogs and cats play", "the dog sat down", "mat mat cat",
            "stocks fell on monday", "markets and stocks rose", "the market fell"] * 3
    matrix = CountVectorizer().fit_transform(docs)
    assert sp.issparse(matrix) and matrix.dtype == np.int64
    topics = make_pipeline(CountVectorizer(), PLSA(2, random_state=0)).fit_transform(docs)
    assert topics.shape == (len(docs), 2) and np.allclose(topics.sum(axis=1), 1, atol=1e-5)
    from_sparse = emjax.fit(emjax.PLSA(2), matrix, jax.random.key(0))
    from_dense = emjax.fit(emjax.PLSA(2), matrix.toarray(), jax.random.key(0))
    np.testing.assert_array_equal(from_sparse.params.topic_word, from_dense.params.topic_word)
    with pytest.raises(ValueError, match="non-negative integer counts"):
        emjax.fit(emjax.PLSA(2), sp.csr_matrix(np.array([[1.0, -2.0], [0.0, 1.0]])), jax.random.key(0))
    fitted = PLSA(2, random_state=0).fit(matrix)
    with pytest.raises(ValueError, match="fitted with"):
        fitted.transform(matrix[:, :5])
