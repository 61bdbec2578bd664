"""A document-word count matrix stored as its non-zero (doc, word, count) triplets.

:class:`Corpus` is a pytree whose leaves are the three ``(nnz,)`` arrays and whose static part is
``(n_docs, n_words)``: the EM engine treats each triplet as one row (it chunks, weights and pads
triplets), while models read the matrix's shape from the static part.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ...core.discrete_validation import as_count_array
from ...core.tree import is_traced
from ...core.validation import check_ndim


@jax.tree_util.register_pytree_node_class
class Corpus:
    """Sparse ``(n_docs, n_words)`` counts: ``count[i]`` occurrences of word ``word_index[i]`` in
    document ``doc_index[i]``. Repeated pairs add up; documents and words without a triplet are
    valid and contribute nothing.

    Args:
        doc_index: int ``(nnz,)`` in ``0..n_docs-1``.
        word_index: int ``(nnz,)`` in ``0..n_words-1``.
        count: ``(nnz,)`` non-negative integer counts (stored as floats).
        n_docs, n_words: the matrix's shape (static).

    Examples:
        >>> import jax, numpy as np, emjax
        >>> counts = np.random.default_rng(0).poisson(0.5, size=(30, 20))
        >>> docs, words = np.nonzero(counts)                   # (doc, word, count) triplets
        >>> corpus = emjax.Corpus(docs, words, counts[docs, words], n_docs=30, n_words=20)
        >>> res = emjax.fit(emjax.PLSA(3), corpus, jax.random.key(0), n_init=2)
        >>> res.params.doc_topic.shape
        (30, 3)
    """

    def __init__(self, doc_index, word_index, count, n_docs: int, n_words: int):
        self.doc_index, self.word_index, self.count = doc_index, word_index, count
        self.n_docs, self.n_words = n_docs, n_words

    def tree_flatten(self):
        return (self.doc_index, self.word_index, self.count), (self.n_docs, self.n_words)

    @classmethod
    def tree_unflatten(cls, shape, leaves):
        return cls(*leaves, *shape)

    @property
    def shape(self) -> tuple:
        return (self.n_docs, self.n_words)

    def __repr__(self) -> str:
        return f"Corpus(n_docs={self.n_docs}, n_words={self.n_words}, nnz={np.shape(self.count)[0]})"

    def to_dense(self):
        """The ``(n_docs, n_words)`` count matrix (repeated pairs summed)."""
        dense = jnp.zeros(self.shape, jnp.asarray(self.count).dtype)
        return dense.at[self.doc_index, self.word_index].add(self.count)


def as_corpus(data, name: str = "counts", require_counts: bool = True) -> Corpus:
    """A checked :class:`Corpus` from a dense ``(n_docs, n_words)`` count matrix (its non-zeros,
    row-major), a ``scipy.sparse`` one (its stored non-zeros, row-major) or a :class:`Corpus`
    (host-side: out-of-range indices and negative or fractional
    counts raise, naming the first; so does a corpus without any positive count when
    ``require_counts``). A traced dense matrix (inside jit/vmap) has no static non-zeros: it
    becomes :func:`dense_corpus`, every entry a triplet."""
    if isinstance(data, Corpus):
        return _checked_triplets(data, name, require_counts)
    if is_scipy_sparse(data):
        return _sparse_corpus(data, name, require_counts)
    dense = as_count_array(data, name)
    if is_traced(dense):
        return dense_corpus(dense)
    docs, words = np.nonzero(np.asarray(dense))
    return _make(docs, words, np.asarray(dense)[docs, words], *dense.shape, dense.dtype, name,
                 require_counts)


def is_scipy_sparse(data) -> bool:
    """True for a ``scipy.sparse`` matrix or array (what CountVectorizer returns), without
    importing scipy."""
    return type(data).__module__.startswith("scipy.sparse") and hasattr(data, "tocoo")


def _sparse_corpus(matrix, name: str, require_counts: bool) -> Corpus:
    """The stored non-zeros of a 2-D ``scipy.sparse`` count matrix (duplicates summed), in
    row-major order as for a dense matrix; checked as dense counts are."""
    if len(matrix.shape) != 2:
        raise ValueError(f"{name} must be a 2-D (n_docs, n_words) matrix; got shape {matrix.shape}.")
    coo = matrix.tocoo(copy=True)
    coo.sum_duplicates()  # also sorts row-major
    keep = coo.data != 0
    count = as_count_array(np.asarray(coo.data[keep]), f"{name} (its stored values)", ndim=1)
    return _make(coo.row[keep], coo.col[keep], count, *matrix.shape, count.dtype, name,
                 require_counts)


def dense_corpus(dense) -> Corpus:
    """Every entry of a dense ``(n_docs, n_words)`` float count matrix as a triplet, row-major
    (traceable: no host-side search for non-zeros; a zero count contributes nothing)."""
    n_docs, n_words = dense.shape
    docs = jnp.repeat(jnp.arange(n_docs, dtype=jnp.int32), n_words)
    words = jnp.tile(jnp.arange(n_words, dtype=jnp.int32), n_docs)
    return Corpus(docs, words, dense.reshape(-1), n_docs, n_words)


def _checked_triplets(corpus: Corpus, name: str, require_counts: bool) -> Corpus:
    if is_traced(corpus):
        return corpus
    for size_name in ("n_docs", "n_words"):
        size = getattr(corpus, size_name)
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise ValueError(f"{name}.{size_name} must be a positive integer; got {size!r}.")
    count = as_count_array(corpus.count, f"{name}.count", ndim=1)
    return _make(corpus.doc_index, corpus.word_index, count, corpus.n_docs, corpus.n_words,
                 count.dtype, name, require_counts)


def _make(docs, words, count, n_docs, n_words, dtype, name, require_counts) -> Corpus:
    index = {}
    for field, values, size in (("doc_index", docs, n_docs), ("word_index", words, n_words)):
        arr = np.asarray(values)
        check_ndim(arr, f"{name}.{field}", 1)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name}.{field} must hold integers; got dtype {arr.dtype}.")
        bad = (arr < 0) | (arr >= size)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{name}.{field} must lie in 0..{size - 1}; {int(bad.sum())} do not, "
                             f"the first at position {i} ({int(arr[i])}).")
        index[field] = jnp.asarray(arr.astype(np.int32))
    count = np.asarray(count)
    if not len(count) == len(index["doc_index"]) == len(index["word_index"]):
        raise ValueError(f"{name}: doc_index, word_index and count must have the same length; got "
                         f"{len(index['doc_index'])}, {len(index['word_index'])} and {len(count)}.")
    if require_counts and not (count > 0).any():
        raise ValueError(f"{name} has no positive count: there is nothing to fit.")
    return Corpus(index["doc_index"], index["word_index"], jnp.asarray(count, dtype), int(n_docs), int(n_words))
