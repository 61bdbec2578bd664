r"""PLSA as a scikit-learn transformer over :class:`emjax.PLSA` (host-side, NumPy out).

Input is a document-word count matrix, dense or ``scipy.sparse`` (what ``CountVectorizer``
returns); it is fitted as its non-zero triplets (:mod:`emjax.models.plsa.model`), so cost grows with the
number of non-zeros. ``components_`` holds :math:`\phi_{zw} = P(w \mid z)`.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from ..models.plsa.corpus import as_corpus
from ..engine.driver import FitError
from ..engine.restarts import fit as fit_restarts
from ..components import PSEUDO_COUNT
from ..models.plsa.model import PLSA as PLSAModel
from ..models.plsa.model import PLSAParams
from ..core.status import Status, describe
from .random_state import key_from_random_state


class PLSA(TransformerMixin, BaseEstimator):
    r"""Probabilistic latent semantic analysis,
    :math:`P(w \mid d) = \sum_z \theta_{dz} \phi_{zw}`, fitted by EM.

    Args:
        n_components: number of topics ``K``.
        beta: tempering exponent in ``(0, 1]`` (1: plain EM).
        pseudo_count: ``a`` of the Dirichlet(1 + a) priors on every :math:`\theta_d` and
            :math:`\phi_z` (MAP-EM; 0 is maximum likelihood).
        max_iter, tol: EM stops after ``max_iter`` iterations or when the objective per non-zero
            entry changes by less than ``tol``.
        n_init: restarts; the best is kept.
        fold_in_iter: EM iterations of the fold-in (:meth:`transform`).
        random_state: None, an int, a ``numpy`` RandomState/Generator or a JAX key.

    Attributes:
        components_: :math:`\phi` ``(n_components, n_features)``, rows sum to 1.
        doc_topic_: the training documents' :math:`\theta` ``(n_docs, n_components)``.
        n_iter_, converged_, restart_statuses_, n_features_in_: as their names say.
    """

    def __init__(self, n_components=10, *, beta=1.0, pseudo_count=PSEUDO_COUNT, max_iter=100,
                 tol=1e-3, n_init=1, fold_in_iter=100, random_state=None):
        self.n_components, self.beta, self.pseudo_count = n_components, beta, pseudo_count
        self.max_iter, self.tol, self.n_init = max_iter, tol, n_init
        self.fold_in_iter, self.random_state = fold_in_iter, random_state

    def _model(self):
        return PLSAModel(self.n_components, beta=self.beta, pseudo_count=self.pseudo_count)

    def fit(self, X, y=None):
        """Fits :math:`\\theta` and :math:`\\phi` to the counts ``X`` ``(n_docs, n_words)``."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fits and returns the training documents' :math:`\\theta` (``doc_topic_``): the fixed
        point that :meth:`transform` of ``X`` converges to (the fold-in objective is concave in
        :math:`\\theta`)."""
        return self._fit(X)

    def _fit(self, X):
        corpus = as_corpus(X, "X")
        result = fit_restarts(self._model(), corpus, key_from_random_state(self.random_state),
                              n_init=self.n_init, max_iter=self.max_iter, tol=self.tol, throw=False)
        status = Status(int(result.status))
        if not status.healthy:
            raise FitError(f"every restart failed ({describe(np.asarray(result.restarts.status))}): "
                           f"{status.message}.")
        self.components_ = np.asarray(result.params.topic_word)
        self.doc_topic_ = np.asarray(result.params.doc_topic)
        self.n_iter_, self.converged_ = int(result.n_iter), status == Status.CONVERGED
        self.restart_statuses_ = [Status(int(s)).name for s in np.asarray(result.restarts.status)]
        self.n_features_in_ = corpus.n_words
        return self.doc_topic_

    def _corpus(self, X):
        if not hasattr(self, "components_"):
            raise NotFittedError("This PLSA instance is not fitted yet: call fit first.")
        corpus = as_corpus(X, "X", require_counts=False)
        if corpus.n_words != self.n_features_in_:
            raise ValueError(f"X has {corpus.n_words} words (columns) but PLSA was fitted with "
                             f"{self.n_features_in_}.")
        return corpus

    def transform(self, X):
        r""":math:`\theta_{\text{new}} = P(z \mid d)` ``(n_docs, n_components)`` of the documents
        ``X`` by fold-in: ``fold_in_iter`` EM steps on :math:`\theta` from uniform, with
        :math:`\phi` = ``components_`` fixed (same tempering and prior as the fit)."""
        corpus = self._corpus(X)
        params = PLSAParams(None, np.asarray(self.components_))
        return np.asarray(self._model().transform(params, corpus, n_iter=self.fold_in_iter))

    def score(self, X, y=None):
        r"""Held-out log-likelihood of ``X``: :math:`\sum_{dw} c_{dw} \log \sum_z
        \theta^{\text{new}}_{dz} \phi_{zw}`, with :math:`\theta^{\text{new}}` from
        :meth:`transform` (fold-in on the same counts, as scikit-learn's LDA does); a total
        over ``X``'s tokens, higher is better."""
        corpus = self._corpus(X)
        theta = self._model().transform(PLSAParams(None, np.asarray(self.components_)), corpus,
                                        n_iter=self.fold_in_iter)
        log_prob = self._model().log_prob(PLSAParams(theta, np.asarray(self.components_)), corpus)
        return float(np.sum(np.asarray(log_prob, np.float64)))

    def perplexity(self, X):
        r""":math:`\exp(-\,\text{score}(X) / \sum_{dw} c_{dw})`: the exponential of the negative
        held-out log-likelihood per token (lower is better)."""
        total = float(np.sum(np.asarray(self._corpus(X).count, np.float64)))
        if total <= 0:
            raise ValueError("X has no positive count: perplexity is undefined.")
        return float(np.exp(-self.score(X) / total))
