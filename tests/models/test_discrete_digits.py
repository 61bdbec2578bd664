"""BernoulliMixture on scikit-learn's 8x8 digits, binarised: clusters agree with the labels.

The reference is the data's own labels: the adjusted Rand index of the clustering against them
(0 for chance, 1 for a perfect match) and its purity against the purity of the same cluster
sizes assigned at random.
"""
import jax
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score

import emjax


def purity(labels, clusters):
    return sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters)) / len(labels)


def test_binarised_digits_cluster_by_digit():
    x, y = load_digits(return_X_y=True)
    binary = (x >= 8).astype(np.float32)
    model = emjax.BernoulliMixture(10)
    res = emjax.fit(model, binary, jax.random.key(0), n_init=4, max_iter=100)
    clusters = np.asarray(model.predict(res.params, binary))
    shuffled = np.random.default_rng(0).permutation(clusters)
    assert adjusted_rand_score(y, clusters) > 0.4
    assert adjusted_rand_score(y, shuffled) < 0.02
    assert purity(y, clusters) > 0.6 > 2 * purity(y, shuffled)
    probs = np.asarray(res.params.probs)
    assert probs.shape == (10, 64) and ((probs > 0) & (probs < 1)).all()
