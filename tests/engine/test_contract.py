"""The engine's contract, checked for every model family at once (one registry, ``MODELS``).

For each model, from one start, a few EM iterations of :func:`emjax.em` at float64:

* EM never lowers the objective (the driver's rounding allowance, as the harness checks it);
* dtype in = dtype out: float32 data give float32 parameters and objective, float64 data give
  float64 ones, even with 64-bit floats enabled (integer data: the default float);
* rows of weight 0 are rows removed: the fit of the rows plus junk rows of weight 0 equals the
  fit of the rows alone;
* chunked = unchunked: the same fit with its rows in chunks of 7, and a second chunked call with
  other values of the same shapes compiles nothing (JAX's compile events);
* inside a caller's ``jax.jit`` = called from the host.

The references are the invariants themselves (each compares two runs that must agree, or a run
with the definition); the configurations come from the differential harness's registry
(tests/differential/registry.py, hmm_cases.py), whose one-step references check the arithmetic.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import numpy as np
import pytest

import emjax
from differential import hmm_cases, registry
from differential.paths import as_dtype, check_history, data_as
from helpers import assert_trees_close, counting_compiles

SHAPE = registry.Shape(n=40, d=3, k=2, seed=0)
N_JUNK = 9
N_ITER = 6
CHUNK = 7
HMM_LENGTHS = np.array([7, 5, 6, 7, 3, 6], np.int32)

# x64 on (float64 references; float32 must stay float32 even so)
pytestmark = pytest.mark.usefixtures("x64")


@dataclasses.dataclass(frozen=True)
class Contract:
    """A model, its data (float64 or integer, NumPy) and start; ``junk(seed, m)``: ``m`` valid
    rows unlike the data; ``other(seed)``: other data of the same shapes; ``join``: rows
    concatenated."""

    name: str
    model: Any
    data: Any
    start: Any
    junk: Callable
    other: Callable
    join: Callable = lambda a, b: np.concatenate([a, b])

    def __repr__(self):
        return self.name


def _registry_contract(name):
    case = registry.BY_NAME[name]
    model = case.make_model(SHAPE)
    data = case.make_data(SHAPE)
    start = case.make_start(model, data, np.random.default_rng(0))
    make = lambda n, seed: case.make_data(SHAPE._replace(n=n, seed=seed))
    return Contract(name, model, data, start, junk=lambda m: make(m, 11), other=lambda: make(SHAPE.n, 12))


def _corpus_contract(name):
    """PLSA on a Corpus: its rows are (document, word, count) triplets."""
    base = _registry_contract(name)
    corpus = base.data

    def junk(m):
        rng = np.random.default_rng(11)
        return emjax.Corpus(rng.integers(corpus.n_docs, size=m).astype(np.int32),
                            rng.integers(corpus.n_words, size=m).astype(np.int32),
                            rng.integers(1, 9, size=m).astype(float), corpus.n_docs, corpus.n_words)

    def join(a, b):
        return emjax.Corpus(*(np.concatenate([getattr(a, f), getattr(b, f)])
                              for f in ("doc_index", "word_index", "count")), a.n_docs, a.n_words)

    other = lambda: emjax.Corpus(corpus.doc_index, corpus.word_index, np.roll(corpus.count, 5),
                                 corpus.n_docs, corpus.n_words)
    return dataclasses.replace(base, junk=junk, other=other, join=join)


def _hmm_contract(name):
    """An HMM on ``(x, lengths)``: its rows are sequences."""
    case = hmm_cases.CASES[name]
    k, d = SHAPE.k, SHAPE.d
    sample = lambda n, seed: case.sample(n, np.resize(HMM_LENGTHS, n), d, k, seed, missing=False)
    x, _, lengths = sample(len(HMM_LENGTHS), 5)
    join = lambda a, b: (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
    return Contract(name, case.model(k, d), (x, lengths), case.start(k, d, 5),
                    junk=lambda m: sample(m, 11)[::2], other=lambda: sample(len(HMM_LENGTHS), 12)[::2],
                    join=join)


MODELS = [
    *[_registry_contract(n) for n in ("gmm-full-prior-error", "gmm-diag-sklearn-marginalize",
                                      "bgmm-full-dirichlet_process", "bernoulli-mixture",
                                      "categorical-mixture", "multinomial-mixture", "poisson-mixture",
                                      "bayesian-network", "enumerated-mixture",
                                      "user-exponential-mixture")],
    _corpus_contract("plsa-sparse"),
    *[_hmm_contract(n) for n in ("gaussian-tied", "categorical")],
]


# ------------------------------------------------------------------------ helpers
def n_rows(data):
    if isinstance(data, emjax.Corpus):
        return len(data.count)
    return len(data[1]) if isinstance(data, tuple) else len(data)


def is_float(data) -> bool:
    return any(np.issubdtype(np.asarray(a).dtype, np.floating) for a in jax.tree_util.tree_leaves(data))


def run(c: Contract, data, weights=None, start=None, max_iter=N_ITER, **options):
    return emjax.em(c.model, c.start if start is None else start, data, weights, max_iter=max_iter,
                    tol=0.0, throw=False, **options)


def with_junk(c: Contract):
    """The data followed by N_JUNK junk rows, and weights 1 for the data, 0 for the junk."""
    n = n_rows(c.data)
    return c.join(c.data, c.junk(N_JUNK)), np.r_[np.ones(n), np.zeros(N_JUNK)]


def assert_healthy(result, what):
    assert int(result.status) in (emjax.Status.MAX_ITER, emjax.Status.CONVERGED), (
        f"{what}: status {emjax.Status(int(result.status)).name}")


# ------------------------------------------------------------------------ the contract
@pytest.mark.parametrize("c", MODELS, ids=repr)
def test_em_never_lowers_the_objective(c):
    result = run(c, c.data)
    assert_healthy(result, c.name)
    assert int(result.n_iter) == N_ITER
    check_history(result.history, result.n_iter, c.name)


@pytest.mark.parametrize("c", MODELS, ids=repr)
def test_dtype_in_is_dtype_out(c):
    """float64 in (x64 on) -> float64 out; float32 in -> float32 out (x64 still on); integer data
    -> the default float (float64 here)."""
    dtypes = (np.float64, np.float32) if is_float(c.data) else (None,)
    for dtype in dtypes:
        data = c.data if dtype is None else data_as(c.data, dtype)
        start = as_dtype(c.start, dtype or np.float64)
        result = run(c, data, start=start)
        assert_healthy(result, f"{c.name} {dtype}")
        want = np.dtype(dtype or jax.numpy.result_type(float))
        floats = [a for a in jax.tree_util.tree_leaves(result.params)
                  if np.issubdtype(np.asarray(a).dtype, np.floating)]
        got = {np.asarray(a).dtype for a in floats} | {np.asarray(result.objective).dtype}
        assert got == {want}, f"{c.name}: {want} in, {got} out"


def assert_same_fit(got, want, name):
    """``got`` is healthy and has ``want``'s parameters and history (float64 rounding)."""
    assert_healthy(got, name)
    assert_trees_close(got.params, want.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got.history, want.history, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("c", MODELS, ids=repr)
def test_rows_of_weight_zero_are_rows_removed(c):
    data, weights = with_junk(c)
    assert_same_fit(run(c, data, weights), run(c, c.data), c.name)


@pytest.mark.parametrize("c", MODELS, ids=repr)
def test_chunked_equals_unchunked_and_a_second_call_compiles_nothing(c):
    """Rows in chunks of CHUNK give the unchunked fit. A second chunked call, with other data and
    weights of the same shapes, compiles nothing, where the first compiles (no other test runs
    these shapes in chunks: the check that the count sees compilations). The chunked program is
    the one that gets both checks: a program of its own costs a compilation per model."""
    data, weights = with_junk(c)
    with counting_compiles() as first:
        chunked = run(c, data, weights, chunk_size=CHUNK)
    assert_same_fit(chunked, run(c, data, weights), c.name)
    other = c.join(c.other(), c.junk(N_JUNK))
    with counting_compiles() as second:
        result = run(c, other, np.roll(weights, 3), chunk_size=CHUNK)
    assert_healthy(result, c.name)
    assert first and not second, f"{c.name}: {len(second)} compilations on the second call"


@pytest.mark.parametrize("c", MODELS, ids=repr)
def test_em_inside_jit_equals_em_from_the_host(c):
    data, weights = with_junk(c)
    traced = jax.jit(lambda start, data, weights: run(c, data, weights, start=start))(c.start, data, weights)
    assert_same_fit(traced, run(c, data, weights), c.name)
