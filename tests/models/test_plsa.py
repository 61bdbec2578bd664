"""PLSA against a dense NumPy reference, on a generated corpus with known topics.

The reference works on the full ``(docs, words)`` matrix: posteriors
q_dwz = (theta_dz phi_zw)^beta / sum_z' (...), statistics n_dz = sum_w c_dw q_dwz and
n_zw = sum_d c_dw q_dwz, MAP updates under Dirichlet(1 + a) priors, objective
sum_dw w_dw c_dw (1/beta) log sum_z (theta_dz phi_zw)^beta + a sum log theta + a sum log phi,
divided by the total weight of the non-zero entries.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from reference.plsa import reference_step

K, V, D = 3, 30, 120


def generate_corpus(seed=0, n_docs=D, length=60):
    """Topics with mostly disjoint vocabularies; documents mix them with Dirichlet(0.3) weights."""
    rng = np.random.default_rng(seed)
    topics = np.full((K, V), 0.002)
    for z in range(K):
        topics[z, z * 9:(z + 1) * 9] = rng.uniform(0.5, 1.5, 9)
    topics /= topics.sum(1, keepdims=True)
    theta = rng.dirichlet(np.full(K, 0.3), n_docs)
    counts = np.stack([rng.multinomial(length, t @ topics) for t in theta]).astype(np.float32)
    return counts, topics, theta


def test_one_tempered_em_step_matches_numpy_reference(x64):
    counts = generate_corpus(1, n_docs=12, length=15)[0].astype(np.float64)
    rng = np.random.default_rng(2)
    w = rng.uniform(0.5, 2.0, size=counts.shape)
    docs, words = np.nonzero(counts)
    w[docs[0], words[0]] = 0.0  # a triplet of weight 0 is removed exactly
    corpus = emjax.Corpus(docs, words, counts[docs, words], *counts.shape)
    theta, phi = rng.dirichlet(np.ones(K), 12), rng.dirichlet(np.ones(V), K)
    model = emjax.PLSA(K, beta=0.7, pseudo_count=0.1)
    res = emjax.em(model, emjax.PLSAParams(theta, phi), corpus, weights=w[docs, words],
                   max_iter=1, tol=0.0, throw=False)
    ref_theta, ref_phi, ref_obj = reference_step(counts, w, theta, phi, 0.1, 0.7)
    np.testing.assert_allclose(np.asarray(res.params.doc_topic), ref_theta, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(res.params.topic_word), ref_phi, rtol=1e-10)
    np.testing.assert_allclose(float(res.objective), ref_obj, rtol=1e-10)


@pytest.fixture(scope="module")
def fitted():
    counts, topics, theta = generate_corpus()
    counts[5] = 0  # an empty document
    # tol=0: every restart runs max_iter steps, so the sparse fit below can be compared step for step
    res = emjax.fit(emjax.PLSA(K), counts, jax.random.key(0), n_init=4, max_iter=100, tol=0.0, throw=False)
    return counts, topics, res


def test_recovers_topics_and_likelihood_monotonically(fitted):
    counts, topics, res = fitted
    phi, theta = np.asarray(res.params.topic_word, float), np.asarray(res.params.doc_topic, float)
    error = min(np.abs(phi[list(p)] - topics).sum(1).max() for p in itertools.permutations(range(K)))
    assert error < 0.15  # L1 distance per topic, best matching
    np.testing.assert_allclose(theta[5], 1 / K, rtol=1e-5)  # the empty document
    # the objective is the per-non-zero log-likelihood + log prior / nnz (beta = 1)
    nz = counts > 0
    ll = (counts[nz] * np.log(theta @ phi)[nz]).sum()
    prior = emjax.components.PSEUDO_COUNT * (np.log(theta).sum() + np.log(phi).sum())
    np.testing.assert_allclose(float(res.objective), (ll + prior) / nz.sum(), rtol=1e-5)
    hist = np.asarray(res.restarts.history)
    steps = np.diff(hist, axis=1)
    finite = np.isfinite(steps)
    assert (steps[finite] >= -1e-5 * np.abs(hist[:, 1:][finite])).all(), "objective fell"
    assert set(np.asarray(res.restarts.status).tolist()) == {emjax.Status.MAX_ITER}


def test_sparse_triplets_in_any_order_and_chunks_equal_dense(fitted):
    counts, _, dense = fitted
    docs, words = np.nonzero(counts)
    values = counts[docs, words]
    # split the first entry into two triplets and add an explicit zero: the same matrix
    docs, words = np.r_[docs, docs[0], 7], np.r_[words, words[0], 3]
    values = np.r_[values, 0, 0].astype(np.float32)
    values[0], values[-2] = values[0] - 1, 1
    order = np.random.default_rng(3).permutation(len(values))
    corpus = emjax.Corpus(docs[order], words[order], values[order], *counts.shape)
    np.testing.assert_array_equal(np.asarray(corpus.to_dense()), counts)
    # in chunks of 97 triplets (a scan over full chunks plus a shorter tail)
    sparse = emjax.fit(emjax.PLSA(K), corpus, jax.random.key(0), n_init=4, max_iter=100, tol=0.0,
                       chunk_size=97, throw=False)
    # restart by restart (float32 summation order differs, so the winner may too)
    for name in ("topic_word", "doc_topic"):
        np.testing.assert_allclose(np.asarray(getattr(sparse.restarts.params, name)),
                                   np.asarray(getattr(dense.restarts.params, name)), atol=1e-4)
    # per-non-zero normalisation: two more triplets with the same total log-likelihood
    nnz_dense, nnz_sparse = np.count_nonzero(counts), len(values)
    np.testing.assert_allclose(np.asarray(sparse.restarts.log_likelihood) * nnz_sparse,
                               np.asarray(dense.restarts.log_likelihood) * nnz_dense, rtol=1e-5)


def test_transform_is_numpy_fold_in(fitted):
    counts, _, res = fitted
    phi = np.asarray(res.params.topic_word, float)
    new, _, _ = generate_corpus(seed=9, n_docs=6, length=40)
    new[2] = 0
    n_iter, a = 30, emjax.components.PSEUDO_COUNT
    theta = np.full((6, K), 1 / K)
    for _ in range(n_iter):
        joint = theta[:, :, None] * phi[None]
        q = joint / joint.sum(1, keepdims=True)
        n_dz = (q * new[:, None, :]).sum(2) + a
        theta = n_dz / n_dz.sum(1, keepdims=True)
    got = np.asarray(emjax.PLSA(K).transform(res.params, new, n_iter=n_iter))
    np.testing.assert_allclose(got, theta, atol=1e-5)
    np.testing.assert_allclose(got[2], 1 / K, rtol=1e-6)  # an empty new document


def test_empty_documents_and_unseen_words_contribute_nothing_tempered(x64):
    counts = generate_corpus(4, n_docs=10, length=20)[0].astype(np.float64)
    rng = np.random.default_rng(5)
    theta, phi = rng.dirichlet(np.ones(K), 10), rng.dirichlet(np.ones(V), K)
    grown = np.zeros((11, V + 1))
    grown[:10, :V] = counts  # document 10 is empty, word V never occurs
    start = emjax.PLSAParams(np.r_[theta, rng.dirichlet(np.ones(K), 1)], np.c_[phi, np.zeros(K)])
    more = emjax.em(emjax.PLSA(K, beta=0.8, pseudo_count=0.0), start, grown, max_iter=5, tol=0.0,
                    throw=False)
    history = []
    for _ in range(5):  # the reference never sees the empty document or the unused word
        theta, phi, objective = reference_step(counts, np.ones_like(counts), theta, phi, 0.0, 0.8)
        history.append(objective)
    np.testing.assert_allclose(np.asarray(more.history), history, rtol=1e-10)
    assert np.all(np.diff(history) > 0)  # tempered EM raises the tempered objective
    np.testing.assert_allclose(np.asarray(more.params.doc_topic)[:10], theta, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(more.params.topic_word)[:, :V], phi, rtol=1e-10)
    np.testing.assert_allclose(float(more.objective), objective, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(more.params.doc_topic)[10], 1 / K)
    assert np.all(np.asarray(more.params.topic_word)[:, V] == 0)


@pytest.mark.parametrize("data, match", [
    (np.array([[1.0, -2.0], [0.0, 1.0]]), r"counts must hold non-negative integer counts.*index \(0, 1\) \(-2.0\)"),
    (np.array([[1.0, 0.5], [0.0, 1.0]]), r"non-negative integer counts.*index \(0, 1\) \(0.5\)"),
    (np.zeros((3, 4)), "no positive count"),
    (emjax.Corpus([0, 3], [1, 1], [1.0, 2.0], 3, 2), r"counts.doc_index must lie in 0..2; 1 do not, the first at position 1 \(3\)"),
    (emjax.Corpus([0, 1], [1, -1], [1.0, 2.0], 3, 2), r"counts.word_index must lie in 0..1; .* position 1 \(-1\)"),
    (emjax.Corpus([0, 1], [1, 0], [1.0, -2.0], 3, 2), r"counts.count must hold non-negative integer counts.*index 1 \(-2.0\)"),
    (emjax.Corpus([0, 1], [1, 0], [1.0, 2.5], 3, 2), r"counts.count .*index 1 \(2.5\)"),
    (emjax.Corpus([0, 1], [1, 0, 1], [1.0, 2.0], 3, 2), "same length; got 2, 3 and 2"),
    (emjax.Corpus([0.0, 1.0], [1, 0], [1.0, 2.0], 3, 2), "counts.doc_index must hold integers"),
    (emjax.Corpus([0, 1], [1, 0], [1.0, 2.0], 0, 2), "counts.n_docs must be a positive integer; got 0"),
])
def test_bad_input_names_the_offending_value(data, match):
    with pytest.raises((ValueError, TypeError), match=match):
        emjax.fit(emjax.PLSA(2), data, jax.random.key(0))


def test_bad_configuration_and_transform_vocabulary():
    with pytest.raises(ValueError, match=r"beta must be a number in \(0, 1\]; got 1.5"):
        emjax.PLSA(2, beta=1.5)
    with pytest.raises(ValueError, match="n_topics must be a positive integer; got 0"):
        emjax.PLSA(0)
    params = emjax.PLSAParams(jnp.full((2, 2), 0.5), jnp.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="data has 4 words .* fitted with 3"):
        emjax.PLSA(2).transform(params, np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"params.topic_word must have shape \(2, 4\)"):
        emjax.em(emjax.PLSA(2), params, np.ones((2, 4)))
