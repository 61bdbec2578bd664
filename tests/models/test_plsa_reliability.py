"""PLSA reliability (findings F14 and the PLSA part of F8 of the "Trust" issue).

References: the dense NumPy PLSA of tests/reference/plsa.py (log-likelihood, tempered objective, one
MAP-EM step) and the fit on the concrete matrix for the fits traced under vmap/jit.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp
from reference.plsa import reference_step

import emjax


def numpy_objectives(counts, theta, phi, beta, a):
    """(mean c log P(w|d), mean tempered objective + log prior) over the non-zero entries."""
    seen = counts > 0
    joint = np.log(theta)[:, :, None] + np.log(phi)[None]  # (D, K, V)
    ll = (counts * logsumexp(joint, axis=1))[seen].sum()
    tempered = (counts * logsumexp(beta * joint, axis=1) / beta)[seen].sum()
    prior = a * (np.log(theta).sum() + np.log(phi).sum())
    return ll / seen.sum(), (tempered + prior) / seen.sum()


@pytest.mark.parametrize("beta", [0.1, pytest.param(0.5, marks=pytest.mark.slow),
                                  pytest.param(1.0, marks=pytest.mark.slow)])
def test_tempered_fit_reports_the_true_log_likelihood(x64, beta):
    """F14: PLSA(3, beta=0.1) reported the tempered objective (+8.03) as log_likelihood."""
    counts = np.random.default_rng(0).poisson(0.5, size=(50, 30)).astype(float)
    model = emjax.PLSA(3, beta=beta)
    res = emjax.fit(model, counts, jax.random.key(0), max_iter=30, throw=False)
    theta, phi = np.asarray(res.params.doc_topic), np.asarray(res.params.topic_word)
    ll, objective = numpy_objectives(counts, theta, phi, beta, model.pseudo_count)
    assert float(res.log_likelihood) == pytest.approx(ll, rel=1e-10) and ll < 0
    assert float(res.objective) == pytest.approx(objective, rel=1e-10)
    history = np.asarray(res.history)[: int(res.n_iter)]
    assert np.all(np.diff(history) >= -1e-12)  # EM monitors the tempered objective


def test_one_tempered_step_with_weights_reports_the_true_log_likelihood(x64):
    rng = np.random.default_rng(4)
    counts = rng.poisson(1.0, size=(8, 10)).astype(float)
    w = rng.uniform(0.5, 2.0, size=counts.shape)
    docs, words = np.nonzero(counts)
    corpus = emjax.Corpus(docs, words, counts[docs, words], *counts.shape)
    theta, phi = rng.dirichlet(np.ones(3), 8), rng.dirichlet(np.ones(10), 3)
    model = emjax.PLSA(3, beta=0.6, pseudo_count=0.1)
    res = emjax.em(model, emjax.PLSAParams(theta, phi), corpus, weights=w[docs, words], max_iter=1,
                   tol=0.0, throw=False)
    new_theta, new_phi, objective = reference_step(counts, w, theta, phi, 0.1, 0.6)
    seen = counts > 0
    joint = np.log(new_theta)[:, :, None] + np.log(new_phi)[None]
    ll = (w * counts * logsumexp(joint, axis=1))[seen].sum() / w[seen].sum()
    assert float(res.objective) == pytest.approx(objective, rel=1e-10)
    assert float(res.log_likelihood) == pytest.approx(ll, rel=1e-10)


def corpora():
    rng = np.random.default_rng(1)
    dense = rng.poisson(0.8, size=(2, 10, 8)).astype(np.float32)
    dense[1, 3] = 0  # an empty document
    return dense


@pytest.mark.slow
def test_vmap_over_dense_matrices_equals_the_concrete_fits():
    """F8: 'Tracer has no attribute n_docs' (plsa.py) under vmap; dense data becomes every entry
    as a triplet of weight 1 (non-zero) or 0, so the objective is still per non-zero."""
    dense, key = corpora(), jax.random.key(0)
    fit = lambda d: emjax.fit(emjax.PLSA(2), d, key, max_iter=40)
    batched = jax.vmap(fit)(jnp.asarray(dense))
    for i in range(2):
        ref = fit(dense[i])
        assert int(batched.n_iter[i]) == int(ref.n_iter)
        np.testing.assert_allclose(batched.params.doc_topic[i], ref.params.doc_topic, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(batched.params.topic_word[i], ref.params.topic_word, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(batched.objective[i], ref.objective, rtol=1e-5)
        np.testing.assert_allclose(batched.log_likelihood[i], ref.log_likelihood, rtol=1e-5)


@pytest.mark.slow
def test_jit_with_per_entry_weights_equals_the_concrete_fit():
    dense = corpora()[0]
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=dense.shape).astype(np.float32)
    docs, words = np.nonzero(dense)
    key = jax.random.key(1)
    got = jax.jit(lambda d, w: emjax.fit(emjax.PLSA(2), d, key, weights=w, max_iter=20))(dense, w)
    ref = emjax.fit(emjax.PLSA(2), dense, key, weights=w[docs, words], max_iter=20)
    np.testing.assert_allclose(got.params.topic_word, ref.params.topic_word, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(got.objective, ref.objective, rtol=1e-5)
    with pytest.raises(ValueError, match=r"per entry: they must have shape \(10, 8\); got \(\d+,\)"):
        jax.jit(lambda d: emjax.fit(emjax.PLSA(2), d, key, weights=w[docs, words]))(dense)


def test_online_em_takes_dense_mini_batches(x64):
    """F8: OnlineEM(PLSA(2)).partial_fit failed with "'Corpus' object has no attribute 'dtype'".
    The first update (gamma = 1, data_size = the batch) is one MAP-EM step of the batch."""
    dense = corpora()[0].astype(np.float64)
    rng = np.random.default_rng(3)
    theta, phi = rng.dirichlet(np.ones(2), 10), rng.dirichlet(np.ones(8), 2)
    online = emjax.OnlineEM(emjax.PLSA(2), None, init_params=emjax.PLSAParams(theta, phi))
    online.partial_fit(dense)
    new_theta, new_phi, _ = reference_step(dense, np.ones_like(dense), theta, phi, 1e-3, 1.0)
    np.testing.assert_allclose(online.params.doc_topic, new_theta, rtol=1e-10)
    np.testing.assert_allclose(online.params.topic_word, new_phi, rtol=1e-10)
    online.partial_fit(corpora()[1].astype(np.float64))
    assert online.n_steps == 2 and online.status == emjax.Status.RUNNING
    with pytest.raises(ValueError, match=r"mini-batch has the structure .*Corpus\[\(4, 8\)\].*the first had the structure .*Corpus\[\(10, 8\)\]"):
        online.partial_fit(np.ones((4, 8)))


def test_tempered_log_likelihood_ignores_a_removed_row_whose_word_has_no_mass(x64):
    """A triplet of weight 0 whose word occurs nowhere else gets P(w|z) = 0 without a prior:
    its log-density is -inf, and the reported log-likelihood must not become 0 * -inf = NaN."""
    counts = np.random.default_rng(1).poisson(1.0, size=(6, 5)).astype(float) + 1
    counts[:, 0] = 0
    counts[2, 0] = 3
    docs, words = np.nonzero(counts)
    corpus = emjax.Corpus(docs, words, counts[docs, words], *counts.shape)
    weights = np.where((docs == 2) & (words == 0), 0.0, 1.0)
    res = emjax.fit(emjax.PLSA(2, beta=0.5, pseudo_count=0.0), corpus, jax.random.key(0),
                    weights=weights, max_iter=5, throw=False)
    assert np.isfinite(float(res.log_likelihood))
