r"""Probabilistic latent semantic analysis (PLSA), asymmetric form, with optional tempering.

.. math::
    P(w \mid d) = \sum_{z=1}^K \theta_{dz} \, \phi_{zw}, \qquad
    \theta_{dz} = P(z \mid d), \quad \phi_{zw} = P(w \mid z).

**Rows are non-zeros.** The data is a :class:`~emjax.models.plsa.corpus.Corpus` of ``(doc, word, count)``
triplets (a dense matrix is converted to its non-zeros), and each triplet is one row for the EM
engine, so time and memory grow with the number of non-zeros ``nnz``, never with docs x vocab,
and the engine chunks, weights and pads triplets like any rows. A row weight multiplies that
triplet's count. The E-step computes, per triplet, the (tempered) topic posterior

.. math::
    q_{dwz} = \frac{(\theta_{dz}\phi_{zw})^\beta}{\sum_{z'} (\theta_{dz'}\phi_{z'w})^\beta},

and the statistics are segment sums of :math:`c_{dw} q_{dwz}` over documents and over words:
:math:`n_{dz} = \sum_w c_{dw} q_{dwz}` ``(n_docs, K)`` and :math:`n_{zw} = \sum_d c_{dw} q_{dwz}`
``(K, n_words)``. The M-step is :math:`\theta_{dz} \propto n_{dz} + a`,
:math:`\phi_{zw} \propto n_{zw} + a` (MAP under Dirichlet(1 + a) priors; ``a = pseudo_count``).
An empty document gets :math:`\theta_d` uniform and a word that never occurs gets only
pseudo-counts; neither contributes to the objective.

The monitored objective is :math:`\sum_{dw} c_{dw} \tfrac{1}{\beta}
\log \sum_z (\theta_{dz}\phi_{zw})^\beta` + log prior, which tempered EM never lowers; for
``beta = 1`` (the default) it is the log-likelihood :math:`\sum_{dw} c_{dw} \log P(w \mid d)`.
``beta < 1`` is Hofmann's tempered EM (smoother posteriors, less overfitting); the reported
``log_likelihood`` stays :math:`\sum_{dw} c_{dw} \log P(w \mid d)` (per non-zero, as for
``beta = 1``), while ``objective`` and ``history`` are the tempered objective.

Under ``jit``/``vmap`` a dense matrix has no static non-zeros: every entry becomes a triplet
(:func:`~emjax.models.plsa.corpus.dense_corpus`) whose row weight is 1 for a non-zero and 0 otherwise, so the
fit equals the one on the concrete matrix. Streamed fits read :class:`~emjax.Corpus` chunks.
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ...core.chunking import choose_chunk_size, chunked_sum, n_rows
from ...components import discrete as dc
from .corpus import Corpus, as_corpus
from ...core.discrete_validation import check_fold_in
from ...core.model import Model
from ...components import PSEUDO_COUNT
from ...core.xla_options import jit


class PLSAParams(NamedTuple):
    """doc_topic ``(n_docs, K)``: P(z | d); topic_word ``(K, n_words)``: P(w | z).

    Examples:
        >>> import jax.numpy as jnp, emjax
        >>> params = emjax.PLSAParams(doc_topic=jnp.array([[1.0, 0.0]]),
        ...                           topic_word=jnp.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))
        >>> (params.doc_topic @ params.topic_word).tolist()     # P(w|d) of the one document
        [[0.5, 0.5, 0.0]]
    """

    doc_topic: jnp.ndarray
    topic_word: jnp.ndarray


@dataclasses.dataclass(frozen=True)
class PLSA(Model):
    """PLSA with ``n_topics`` topics on a document-word count matrix.

    Data: a dense ``(n_docs, n_words)`` count matrix or a :class:`~emjax.Corpus` of triplets.
    Optional ``weights`` are per triplet (for dense input: per non-zero in row-major order).

    Args:
        n_topics: number of topics ``K``.
        beta: tempering exponent in ``(0, 1]`` (1: plain EM).
        pseudo_count: ``a`` of the Dirichlet(1 + a) priors on every P(z | d) and P(w | z).

    Examples:
        >>> import jax, numpy as np, emjax
        >>> counts = np.random.default_rng(0).poisson(0.5, size=(30, 20))   # (documents, vocabulary)
        >>> plsa = emjax.PLSA(n_topics=3)
        >>> res = emjax.fit(plsa, counts, jax.random.key(0), n_init=2)
        >>> res.params.doc_topic.shape, res.params.topic_word.shape       # P(z|d), P(w|z)
        ((30, 3), (3, 20))
        >>> plsa.transform(res.params, counts[:4]).shape       # fold-in of new documents
        (4, 3)
    """

    n_topics: int
    beta: float = 1.0
    pseudo_count: float = PSEUDO_COUNT

    def __post_init__(self):
        k = self.n_topics
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_topics must be a positive integer; got {k!r}.")
        if not isinstance(self.beta, numbers.Real) or not 0 < self.beta <= 1:
            raise ValueError(f"beta must be a number in (0, 1]; got {self.beta!r}.")
        a = self.pseudo_count
        if not isinstance(a, numbers.Real) or not np.isfinite(a) or a < 0:
            raise ValueError(f"pseudo_count must be a finite number >= 0; got {a!r}.")

    # ----------------------------------------------------------------- inference per triplet
    def _log_joint(self, params: PLSAParams, corpus: Corpus):
        r""":math:`\log \theta_{dz} + \log \phi_{zw}` per triplet, ``(nnz, K)``."""
        log_doc_topic = jnp.log(params.doc_topic)[corpus.doc_index]
        return log_doc_topic + jnp.log(params.topic_word).T[corpus.word_index]

    def _tempered(self, params, corpus, weights):
        """``(resp, terms)``: weighted tempered posteriors ``(nnz, K)`` and each triplet's term of
        the monitored objective ``(nnz,)``."""
        tempered = self.beta * self._log_joint(params, corpus)
        row = logsumexp(tempered, axis=1)
        mass = weights * corpus.count
        keep = mass > 0
        resp = jnp.where(keep[:, None], jnp.exp(tempered - row[:, None]) * mass[:, None], 0)
        return resp, jnp.where(keep, mass * row / self.beta, 0)

    def log_prob(self, params: PLSAParams, corpus: Corpus):
        r""":math:`c_{dw} \log P(w \mid d)` per triplet, ``(nnz,)`` (0 for a zero count)."""
        row = logsumexp(self._log_joint(params, corpus), axis=1)
        return jnp.where(corpus.count > 0, corpus.count * row, 0)

    def posterior(self, params: PLSAParams, corpus: Corpus):
        """Topic posteriors :math:`P(z \\mid d, w)` per triplet, ``(nnz, K)``."""
        return jax.nn.softmax(self._log_joint(params, corpus), axis=1)

    def n_free_parameters(self, params: PLSAParams) -> int:
        (d, k), v = params.doc_topic.shape, params.topic_word.shape[1]
        return d * (k - 1) + k * (v - 1)

    # ----------------------------------------------------------------- EM contract
    def e_step(self, params: PLSAParams, corpus: Corpus, weights):
        """Statistics ``(n_dz, n_zw)``; ``loglik`` is the summed log-likelihood, or, for
        ``beta < 1``, the pair (log-likelihood, tempered objective) (:meth:`loglik_terms`)."""
        resp, terms = self._tempered(params, corpus, weights)
        doc_topic = jax.ops.segment_sum(resp, corpus.doc_index, num_segments=corpus.n_docs)
        word_topic = jax.ops.segment_sum(resp, corpus.word_index, num_segments=corpus.n_words)
        loglik = jnp.sum(terms)
        if self.beta != 1:
            true = jnp.where(weights > 0, weights * self.log_prob(params, corpus), 0)  # 0 * -inf
            loglik = jnp.stack([jnp.sum(true), loglik])
        return (doc_topic, word_topic.T), loglik

    def loglik_terms(self, loglik):
        r"""The log-likelihood :math:`\sum c \log P(w \mid d)` is reported; EM monitors the
        tempered objective (the same sum for ``beta = 1``)."""
        return (loglik, loglik) if self.beta == 1 else (loglik[0], loglik[1])

    def m_step(self, stats, params: PLSAParams) -> PLSAParams:
        doc_topic, topic_word = stats
        return PLSAParams(dc.dirichlet_map(doc_topic, self.pseudo_count),
                          dc.dirichlet_map(topic_word, self.pseudo_count))

    def log_prior(self, params: PLSAParams):
        return (dc.dirichlet_log_prior(params.doc_topic, self.pseudo_count)
                + dc.dirichlet_log_prior(params.topic_word, self.pseudo_count))

    def init(self, key, corpus: Corpus, weights) -> PLSAParams:
        """P(z | d) ~ Dirichlet(1); P(w | z) proportional to (word frequency + a) times U(0, 1)
        noise per topic."""
        doc_key, word_key = jax.random.split(key)
        k, dtype = self.n_topics, weights.dtype
        doc_topic = jax.random.dirichlet(doc_key, jnp.ones((k,), dtype), (corpus.n_docs,))
        freq = jax.ops.segment_sum(weights * corpus.count, corpus.word_index, num_segments=corpus.n_words)
        noise = jax.random.uniform(word_key, (k, corpus.n_words), dtype)
        return PLSAParams(doc_topic.astype(dtype), dc.dirichlet_map((freq + self.pseudo_count) * noise, 0.0))

    # ----------------------------------------------------------------- fold-in
    def transform(self, params: PLSAParams, data, *, n_iter: int = 100):
        r"""P(z | d) ``(n_new_docs, K)`` of new documents by fold-in: ``n_iter`` EM steps on
        :math:`\theta` with :math:`\phi` = ``params.topic_word`` fixed (same tempering and prior).

        Args:
            params: fitted parameters (only ``topic_word`` is read).
            data: dense ``(n_new_docs, n_words)`` counts or a :class:`~emjax.Corpus` with the
                fitted vocabulary size.
            n_iter: fold-in iterations (static).
        """
        corpus = as_corpus(data, require_counts=False)
        check_fold_in(params, corpus, self.n_topics, n_iter)
        n_words = params.topic_word.shape[1]
        if corpus.n_words != n_words:
            raise ValueError(f"data has {corpus.n_words} words (columns) but the model was fitted "
                             f"with {n_words}.")
        return _fold_in(self, params.topic_word, corpus, n_iter=n_iter)

    # ----------------------------------------------------------------- host-side checks
    def validate(self, data) -> Corpus:
        return as_corpus(data)

    def validate_chunk(self, data) -> Corpus:
        """A streamed chunk is a :class:`~emjax.Corpus` of triplets with the whole corpus's
        ``(n_docs, n_words)``; a dense chunk of documents would lose their global indices."""
        if not isinstance(data, Corpus):
            raise ValueError("PLSA streams triplets: pass an emjax.Corpus (or chunks of triplets, "
                             "each a Corpus with the whole corpus's n_docs and n_words), e.g. "
                             "emjax.Corpus(*np.nonzero(counts), counts[np.nonzero(counts)], "
                             "*counts.shape); a dense chunk of documents has no global document "
                             f"indices (got {type(data).__name__}).")
        return as_corpus(data, require_counts=False)

    def traced_inputs(self, data, weights):
        """A dense matrix given under jit/vmap becomes :func:`~emjax.models.plsa.corpus.dense_corpus` (every
        entry a triplet). Row weights count only the non-zeros, as for concrete data: without
        ``weights``, 1 per non-zero; ``weights`` are then per entry, ``(n_docs, n_words)``."""
        if isinstance(data, Corpus):
            return data, weights
        corpus = as_corpus(data)
        present = (corpus.count > 0).astype(corpus.count.dtype)
        if weights is None:
            return corpus, present
        if jnp.shape(weights) != corpus.shape:
            raise ValueError(f"weights of a traced dense count matrix are per entry: they must have "
                             f"shape {corpus.shape}; got {jnp.shape(weights)}.")
        return corpus, jnp.reshape(weights, (-1,)).astype(present.dtype) * present

    def validate_params(self, params, data: Corpus):
        if not isinstance(params, tuple) or len(params) != 2:
            raise TypeError(f"params must be PLSAParams(doc_topic, topic_word); got {type(params).__name__}.")
        expected = {"doc_topic": (data.n_docs, self.n_topics), "topic_word": (self.n_topics, data.n_words)}
        for name, value in zip(expected, params):
            if tuple(np.shape(value)) != expected[name]:
                raise ValueError(f"params.{name} must have shape {expected[name]} for n_topics="
                                 f"{self.n_topics} and a corpus of shape {data.shape}; got "
                                 f"{tuple(np.shape(value))}.")

    def work_per_row(self, data) -> int:
        return 6 * self.n_topics


@functools.partial(jit, static_argnames=("model", "n_iter"))
def _fold_in(model: PLSA, topic_word, corpus: Corpus, *, n_iter: int):
    weights = jnp.ones_like(corpus.count)
    n = n_rows(corpus)
    chunk = choose_chunk_size(n, model.work_per_row(corpus))

    def doc_counts(theta):
        def chunk_stats(rows, w):
            resp, _ = model._tempered(PLSAParams(theta, topic_word), rows, w)
            return jax.ops.segment_sum(resp, rows.doc_index, num_segments=rows.n_docs)
        return chunked_sum(chunk_stats, corpus, weights, chunk)

    theta0 = jnp.full((corpus.n_docs, model.n_topics), 1 / model.n_topics, topic_word.dtype)
    return jax.lax.fori_loop(0, n_iter, lambda _, t: dc.dirichlet_map(doc_counts(t), model.pseudo_count), theta0)
