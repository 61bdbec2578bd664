"""The registry: every model configuration the harness drives, with a data generator for a shape
``(n, d, k, seed)``, NumPy starting parameters and an independent float64 reference
(:mod:`.references`) for one EM step and the objective.

The hidden Markov models have their own registry (``hmm_*.py`` in this folder).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import emjax

from . import references as ref

COV_TYPES = ("full", "tied", "diag", "spherical")


class Shape(NamedTuple):
    n: int
    d: int
    k: int
    seed: int


@dataclasses.dataclass(frozen=True)
class Case:
    """One model configuration.

    Attributes:
        name: unique id (used in test ids).
        family: "gmm", "bgmm", "discrete", "plsa", "bn", "enumerated", "user".
        make_model: shape -> model.
        make_data: shape -> data in float64 (an array, or the form the model takes).
        make_start: (model, data, rng) -> starting params (NumPy float64, the data's units).
        reference: (model, params, unweighted data) -> (params after one EM step, objective of
            params).
        repeat: (data, integer counts per row) -> the rows repeated (weight w = the row w times).
        n_rows: data -> the engine's rows (PLSA: non-zero triplets).
        paths: the execution paths that apply (see :mod:`.paths`).
        exact_objective: whether the reference recomputes the objective (BGMM: the ELBO, no).
    """

    name: str
    family: str
    make_model: Callable
    make_data: Callable
    make_start: Callable
    reference: Callable
    repeat: Callable = lambda data, counts: np.repeat(data, counts, axis=0)
    n_rows: Callable = lambda data: len(data)
    paths: frozenset = frozenset()
    exact_objective: bool = True

    def __repr__(self):
        return self.name


ALL_PATHS = frozenset({"em", "chunks", "weights", "fit1", "fit_many", "blocks", "one_at_a_time",
                       "stream", "online", "squarem", "float32", "sharded"})


# ------------------------------------------------------------------------ data generators
def blobs(shape: Shape, spread=4.0):
    rng = np.random.default_rng(shape.seed)
    centres = rng.normal(scale=spread, size=(shape.k, shape.d))
    scales = rng.uniform(0.5, 1.5, size=(shape.k, shape.d))
    labels = rng.integers(shape.k, size=shape.n)
    return centres[labels] + scales[labels] * rng.normal(size=(shape.n, shape.d)) + 10.0


def with_missing(x, seed, share=0.1):
    """``x`` with about ``share`` of its entries NaN; every row and column keeps an observed one."""
    rng = np.random.default_rng(seed + 1000)
    x = x.copy()
    hole = rng.random(x.shape) < share
    hole[np.arange(len(x)), rng.integers(x.shape[1], size=len(x))] = False
    hole[rng.integers(len(x), size=x.shape[1]), np.arange(x.shape[1])] = False
    x[hole] = np.nan
    return x


def gmm_start(model, x, rng):
    """K random rows as means, the data's covariance (nan-aware) per component, equal weights."""
    k, d = model.n_components, x.shape[1]
    filled = np.where(np.isnan(x), np.nanmean(x, 0), x)
    means = filled[rng.choice(len(x), k, replace=len(x) < k)] + 0.1 * rng.normal(size=(k, d))
    cov = (np.atleast_2d(np.cov(filled.T)) if len(x) > 1 else np.zeros((d, d))) + 1e-3 * np.eye(d)
    cov = {"full": np.broadcast_to(cov, (k, d, d)).copy(), "tied": cov,
           "diag": np.broadcast_to(np.diag(cov), (k, d)).copy(),
           "spherical": np.full((k,), np.diag(cov).mean())}[model.covariance_type]
    return emjax.GMMParams(np.full(k, 1 / k), means, cov)


def bgmm_start(model, x, rng):
    """One variational M-step from random responsibilities, by emjax's own documented entry point
    (the start is arbitrary; only the step from it is checked)."""
    resp = rng.dirichlet(np.ones(model.n_components), len(x))
    params = model.init_from_responsibilities(x, resp)
    return type(params)(*(np.asarray(p, np.float64) for p in params))


def binary_data(shape: Shape):
    rng = np.random.default_rng(shape.seed)
    protos = rng.uniform(0.05, 0.95, size=(shape.k, shape.d))
    return (rng.random((shape.n, shape.d)) < protos[rng.integers(shape.k, size=shape.n)]).astype(float)


def count_data(shape: Shape, poisson: bool):
    rng = np.random.default_rng(shape.seed)
    labels = rng.integers(shape.k, size=shape.n)
    if poisson:
        return rng.poisson(rng.uniform(0.5, 10, size=(shape.k, shape.d))[labels]).astype(float)
    probs = rng.dirichlet(np.ones(shape.d), shape.k)
    totals = rng.integers(0, 30, size=shape.n)
    return np.stack([rng.multinomial(t, probs[z]) for t, z in zip(totals, labels)]).astype(float)


def categories(d):
    return tuple(2 + j % 3 for j in range(d))


def category_data(shape: Shape):
    rng = np.random.default_rng(shape.seed)
    cats = categories(shape.d)
    labels = rng.integers(shape.k, size=shape.n)
    tables = [rng.dirichlet(np.ones(c), shape.k) for c in cats]
    x = np.stack([(rng.random((shape.n, 1)) > np.cumsum(t[labels], axis=1)).sum(1) for t in tables], 1)
    x = np.minimum(x, np.asarray(cats) - 1)  # a uniform draw above the rounded total
    x[rng.random(x.shape) < 0.05] = -1
    return x.astype(np.int32)


def mixture_start(model, x, rng, kind):
    k = model.n_components
    w = rng.dirichlet(5 * np.ones(k))
    if kind == "bernoulli":
        return emjax.BernoulliMixtureParams(w, rng.uniform(0.2, 0.8, (k, x.shape[1])))
    if kind == "poisson":
        return emjax.PoissonMixtureParams(w, x.mean(0) * rng.uniform(0.5, 1.5, (k, x.shape[1])) + 0.1)
    if kind == "multinomial":
        return emjax.MultinomialMixtureParams(w, rng.dirichlet(np.ones(x.shape[1]), k))
    cats = model.n_categories
    probs = np.zeros((k, len(cats), max(cats)))
    for j, c in enumerate(cats):
        probs[:, j, :c] = rng.dirichlet(np.ones(c), k)
    return emjax.CategoricalMixtureParams(w, probs)


# ------------------------------------------------------------------------ PLSA
class Triplets(NamedTuple):
    doc: np.ndarray
    word: np.ndarray
    count: np.ndarray
    n_docs: int
    n_words: int


def plsa_counts(shape: Shape):
    """``(n, d)`` document-word counts from ``k`` topics, about half the entries zero."""
    rng = np.random.default_rng(shape.seed)
    theta = rng.dirichlet(np.ones(shape.k), shape.n)
    phi = rng.dirichlet(0.5 * np.ones(shape.d), shape.k)
    counts = np.stack([rng.multinomial(rng.integers(1, 2 * shape.d + 2), t @ phi) for t in theta])
    return counts.astype(float)


def plsa_sparse(shape: Shape):
    """The same counts as triplets in a shuffled order, some pairs split into two triplets."""
    dense = plsa_counts(shape)
    rng = np.random.default_rng(shape.seed + 7)
    doc, word = np.nonzero(dense)
    count = dense[doc, word]
    split = (count >= 2) & (rng.random(len(count)) < 0.3)
    part = np.floor(count[split] / 2)
    doc, word = np.r_[doc, doc[split]], np.r_[word, word[split]]
    count = np.r_[np.where(split, count - np.floor(count / 2), count), part]
    order = rng.permutation(len(count))
    return emjax.Corpus(doc[order].astype(np.int32), word[order].astype(np.int32), count[order],
                        *dense.shape)


def as_triplets(data):
    if isinstance(data, emjax.Corpus):
        return Triplets(np.asarray(data.doc_index), np.asarray(data.word_index),
                        np.asarray(data.count, np.float64), data.n_docs, data.n_words)
    doc, word = np.nonzero(data)
    return Triplets(doc, word, data[doc, word], *data.shape)


def repeat_triplets(data, counts):
    t = as_triplets(data)
    return Triplets(*(np.repeat(a, counts) for a in t[:3]), t.n_docs, t.n_words)


def plsa_start(model, data, rng):
    t = as_triplets(data)
    return emjax.PLSAParams(rng.dirichlet(np.ones(model.n_topics), t.n_docs),
                            rng.dirichlet(np.ones(t.n_words), model.n_topics))


def plsa_reference(model, params, data):
    t = data if isinstance(data, Triplets) else as_triplets(data)
    return ref.plsa_step(params, (t.doc, t.word, t.count), t.n_docs, t.n_words)


# ------------------------------------------------------------------------ Bayesian network
#: latent H (0) -> X1 (2 values), X2 (3), X3 (2, also child of X1); X4 (2) child of X2.
BN_PARENTS = ((), (0,), (0,), (0, 1), (2,))


def bn_cards(k):
    return (k, 2, 3, 2, 2)


def bn_model(shape: Shape):
    return emjax.BayesianNetwork(dict(enumerate(BN_PARENTS)), bn_cards(shape.k), latent=(0,))


def bn_tables(rng, cards):
    return tuple(rng.dirichlet(np.ones(cards[v]), tuple(cards[u] for u in ps) or None)
                 .reshape(tuple(cards[u] for u in ps) + (cards[v],)) for v, ps in enumerate(BN_PARENTS))


def bn_data(shape: Shape):
    rng = np.random.default_rng(shape.seed)
    cards = bn_cards(shape.k)
    tables = bn_tables(rng, cards)
    x = np.zeros((shape.n, len(cards)), np.int32)
    for v, ps in enumerate(BN_PARENTS):
        p = tables[v][tuple(x[:, u] for u in ps)] if ps else np.broadcast_to(tables[v], (shape.n, cards[v]))
        x[:, v] = np.minimum((rng.random((shape.n, 1)) > np.cumsum(p, axis=1)).sum(1), cards[v] - 1)
    x[rng.random(x.shape) < 0.1] = -1
    x[:, 0] = -1
    return x


# ------------------------------------------------------------------------ user models
@functools.cache
def enumerated_model(k: int, learning_rate: float):
    """EnumeratedMixture of unit-variance Gaussians with softmax weights; one SGD step per
    M-step (reference: :func:`.references.enumerated_gaussian_step`). Cached: the model compares
    its functions by identity."""
    def log_joint(params, row, z):
        logits, means = params
        d = row.shape[0]
        return (jax.nn.log_softmax(logits)[z] - 0.5 * jnp.sum((row - means[z]) ** 2)
                - 0.5 * d * math.log(2 * math.pi))  # a Python float: keeps float32 rows float32

    def init_fn(key, data, weights):
        rows = jax.random.choice(key, data.shape[0], (k,), replace=False)
        return (jnp.zeros((k,), data.dtype), data[rows])

    model = emjax.EnumeratedMixture(log_joint, init_fn, k, optimizer=optax.sgd(learning_rate), n_steps=1)
    ENUMERATED_RATES[model] = learning_rate
    return model


#: The SGD step size of each :func:`enumerated_model` (the reference needs it).
ENUMERATED_RATES = {}


def enumerated_rate(shape: Shape):
    return 0.25 / shape.n


class ExpParams(NamedTuple):
    weights: Any
    rates: Any


@dataclasses.dataclass(frozen=True)
class ExponentialMixture(emjax.Model):
    """A user model written here against the documented contract: a mixture of products of
    exponentials (rows of positive reals), maximum-likelihood M-step."""

    n_components: int

    def _table(self, params, x):
        return jnp.sum(jnp.log(params.rates), 1)[:, None] - params.rates @ x.T + jnp.log(params.weights)[:, None]

    def log_prob(self, params, x):
        return jax.scipy.special.logsumexp(self._table(params, x), axis=0)

    def posterior(self, params, x):
        return jax.nn.softmax(self._table(params, x), axis=0).T

    def e_step(self, params, x, weights):
        table = self._table(params, x)
        row = jax.scipy.special.logsumexp(table, axis=0)
        resp = jnp.exp(table - row) * weights
        return (jnp.sum(resp, 1), resp @ x), jnp.sum(weights * row)

    def m_step(self, stats, params):
        counts, sums = stats
        return ExpParams(counts / jnp.sum(counts), counts[:, None] / sums)

    def init(self, key, x, weights):
        rows = jax.random.choice(key, x.shape[0], (self.n_components,), replace=False)
        return ExpParams(jnp.full((self.n_components,), 1 / self.n_components, x.dtype), 1 / x[rows])

    def is_degenerate(self, params):
        return ~jnp.all(params.weights > 0)


def exponential_data(shape: Shape):
    rng = np.random.default_rng(shape.seed)
    rates = rng.uniform(0.2, 5, size=(shape.k, shape.d))
    return rng.exponential(1 / rates[rng.integers(shape.k, size=shape.n)]) + 1e-3


# ------------------------------------------------------------------------ the registry
def _gmm_case(cov_type, regime, missing):
    """``regime`` "prior" (the default pseudo_count) or "sklearn" (pseudo_count=0)."""
    name = f"gmm-{cov_type}-{regime}-{missing}"
    pseudo_count = ref.PSEUDO_COUNT if regime == "prior" else 0.0

    def make_data(shape):
        x = blobs(shape)
        return with_missing(x, shape.seed) if missing == "marginalize" else x

    def reference(model, params, x):
        if pseudo_count == 0 and missing == "error":
            return ref.sklearn_gmm_step(params, x, cov_type, 1e-6)
        return ref.gmm_step(params, x, cov_type, 1e-6, pseudo_count)

    # the references are the MAP and scikit-learn EM steps; the collapse guard (which zeroes the
    # weight of a component with fewer than d + 1 rows, common in drawn shapes with d up to 64) is
    # checked against its own reference in tests/components/test_collapse_guard.py
    return Case(name, "gmm", lambda s: emjax.GaussianMixture(s.k, cov_type, pseudo_count=pseudo_count,
                                                             missing=missing, collapse_guard=False),
                make_data, gmm_start, reference, paths=ALL_PATHS)


def _bgmm_case(cov_type, prior_type):
    return Case(f"bgmm-{cov_type}-{prior_type}", "bgmm",
                lambda s: emjax.BayesianGaussianMixture(s.k, cov_type, weight_concentration_prior_type=prior_type),
                blobs, bgmm_start, lambda m, p, x: ref.sklearn_bgmm_step(p, x, cov_type, prior_type),
                paths=ALL_PATHS - {"stream", "online"}, exact_objective=False)


def _discrete_case(kind):
    model = {"bernoulli": lambda s: emjax.BernoulliMixture(s.k),
             "poisson": lambda s: emjax.PoissonMixture(s.k),
             "multinomial": lambda s: emjax.MultinomialMixture(s.k),
             "categorical": lambda s: emjax.CategoricalMixture(s.k, categories(s.d))}[kind]
    data = {"bernoulli": binary_data, "poisson": functools.partial(count_data, poisson=True),
            "multinomial": functools.partial(count_data, poisson=False),
            "categorical": category_data}[kind]
    step = {"bernoulli": ref.bernoulli_step, "poisson": ref.poisson_step,
            "multinomial": ref.multinomial_step}.get(kind)
    reference = ((lambda m, p, x: step(p, x)) if step else
                 (lambda m, p, x: ref.categorical_step(p, x, m.n_categories)))
    return Case(f"{kind}-mixture", "discrete", model, data,
                functools.partial(mixture_start, kind=kind), reference, paths=ALL_PATHS)


def _emission_mixture_case():
    """The generic :class:`emjax.Mixture` over a Poisson emission (its own start; the reference is
    the Poisson mixture's step, since both priors have strength PSEUDO_COUNT)."""
    def start(model, x, rng):
        w, rates = mixture_start(model, x, rng, "poisson")
        return emjax.MixtureParams(w, emjax.PoissonEmissionParams(rates))

    def reference(model, params, x):
        (w, rates), objective = ref.poisson_step((params.weights, params.emission.rates), x)
        return emjax.MixtureParams(w, emjax.PoissonEmissionParams(rates)), objective

    return Case("mixture-poisson-emission", "discrete", lambda s: emjax.Mixture(s.k, emjax.PoissonEmission()),
                functools.partial(count_data, poisson=True), start, reference, paths=ALL_PATHS)


def _gaussian_emission_case():
    """The generic :class:`emjax.Mixture` over a full-covariance :class:`emjax.GaussianEmission`
    (whole-data standardisation, the emission's own Wishart prior of strength PSEUDO_COUNT): the
    same model as ``GaussianMixture(k, "full")``, written the other way, so its reference is the
    GMM's MAP step. Its standardiser reads all rows at once, so it has no streamed or online path."""
    def start(model, x, rng):
        w, means, cov = gmm_start(emjax.GaussianMixture(model.n_components, "full"), x, rng)
        return emjax.MixtureParams(w, emjax.GaussianEmissionParams(means, cov))

    def reference(model, params, x):
        (w, means, cov), objective = ref.gmm_step((params.weights, *params.emission), x, "full", 1e-6,
                                                  ref.PSEUDO_COUNT)
        return emjax.MixtureParams(w, emjax.GaussianEmissionParams(means, cov)), objective

    return Case("mixture-gaussian-emission", "emission", make_start=start, reference=reference,
                make_model=lambda s: emjax.Mixture(s.k, emjax.GaussianEmission("full", collapse_guard=False)),
                make_data=blobs, paths=ALL_PATHS - {"stream", "online"})


CASES = (
    *[_gmm_case(c, r, m) for c in COV_TYPES for r in ("prior", "sklearn") for m in ("error", "marginalize")],
    *[_bgmm_case(c, p) for c, p in zip(COV_TYPES, ("dirichlet_process", "dirichlet_distribution") * 2)],
    *[_discrete_case(kind) for kind in ("bernoulli", "categorical", "multinomial", "poisson")],
    _emission_mixture_case(),
    _gaussian_emission_case(),
    Case("plsa-dense", "plsa", lambda s: emjax.PLSA(s.k), plsa_counts, plsa_start, plsa_reference,
         repeat=repeat_triplets, n_rows=lambda data: len(as_triplets(data).count),
         paths=ALL_PATHS),
    Case("plsa-sparse", "plsa", lambda s: emjax.PLSA(s.k), plsa_sparse, plsa_start, plsa_reference,
         repeat=repeat_triplets, n_rows=lambda data: len(as_triplets(data).count),
         paths=ALL_PATHS),
    Case("bayesian-network", "bn", bn_model, bn_data,
         lambda m, x, rng: emjax.BNParams(bn_tables(rng, m.cardinalities)),
         lambda m, p, x: ref.bn_step(p[0], x, BN_PARENTS, m.cardinalities, m.pseudo_count),
         paths=ALL_PATHS),
    Case("enumerated-mixture", "enumerated", lambda s: enumerated_model(s.k, enumerated_rate(s)),
         blobs, lambda m, x, rng: (np.zeros(m.n_states), x[rng.choice(len(x), m.n_states, replace=False)]),
         lambda m, p, x: ref.enumerated_gaussian_step(p, x, ENUMERATED_RATES[m]),
         paths=ALL_PATHS - {"online", "stream"}),
    Case("user-exponential-mixture", "user", lambda s: ExponentialMixture(s.k), exponential_data,
         lambda m, x, rng: ExpParams(np.full(m.n_components, 1 / m.n_components),
                                     1 / x[rng.choice(len(x), m.n_components, replace=False)]),
         lambda m, p, x: ref.exponential_step(p, x), paths=ALL_PATHS),
)
BY_NAME = {case.name: case for case in CASES}
