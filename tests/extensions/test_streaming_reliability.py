"""stream_fit reliability (findings F2, F9, F15, F20 of the "Trust" issue).

References: the in-memory :func:`emjax.fit` on the same rows from the same start (every discrete
model), the .npy file read by NumPy, and the exact error each changed or broken source must give.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import emjax

ROOT = Path(__file__).resolve().parents[2]
N = 300


def discrete_cases():
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.7, size=(40, 12)).astype(float)
    docs, words = np.nonzero(counts)
    codes = rng.integers(3, size=(N, 2))
    codes[rng.random(codes.shape) < 0.1] = -1
    bn_rows = np.stack([np.full(N, -1), rng.integers(3, size=N), rng.integers(2, size=N)], axis=1)
    bn_rows[rng.random(bn_rows.shape) < 0.1] = -1
    return {
        "bernoulli": (emjax.BernoulliMixture(2), (rng.random((N, 4)) < 0.3).astype(float)),
        "categorical": (emjax.CategoricalMixture(2, (3, 3)), codes),
        "poisson": (emjax.PoissonMixture(2), rng.poisson(3.0, size=(N, 3)).astype(float)),
        "multinomial": (emjax.MultinomialMixture(2), rng.poisson(2.0, size=(N, 5)).astype(float)),
        "plsa": (emjax.PLSA(2), emjax.Corpus(docs, words, counts[docs, words], 40, 12)),
        "bayesian_network": (emjax.BayesianNetwork({1: 0, 2: (0, 1)}, (2, 3, 2)), bn_rows),
    }


FAST = ("bernoulli", "plsa")


def take(data, start, stop):
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[start:stop], data)


def leaves_close(got, want, rtol):
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=1e-10)


@pytest.mark.parametrize("name", [pytest.param(name, marks=[] if name in FAST else pytest.mark.slow)
                                  for name in discrete_cases()])
def test_every_discrete_model_streams_like_the_in_memory_fit(x64, name):
    """F2: crashed (reader.first was None without transform passes). One chunk with a key: the
    same starts as fit; ragged chunks with init_params: the same iterates."""
    model, data = discrete_cases()[name]
    key = jax.random.key(3)
    ref = emjax.fit(model, data, key, n_init=2, max_iter=10, tol=1e-9, throw=False)
    res = emjax.stream_fit(model, [data], key, n_init=2, max_iter=10, tol=1e-9, throw=False)
    np.testing.assert_array_equal(res.restarts.n_iter, ref.restarts.n_iter)
    leaves_close(res.restarts.params, ref.restarts.params, 1e-8)
    np.testing.assert_allclose(res.restarts.objective, ref.restarts.objective, rtol=1e-10)

    rows = jax.tree_util.tree_leaves(data)[0].shape[0]
    cuts = [0, rows // 2, rows // 2 + 7, rows]
    chunks = [take(data, a, b) for a, b in zip(cuts[:-1], cuts[1:])]
    start = jax.tree_util.tree_map(lambda a: a[::-1], ref.restarts.params)  # any valid start
    ref = emjax.fit(model, data, None, n_init=2, init_params=start, max_iter=5, tol=0.0, throw=False)
    res = emjax.stream_fit(model, chunks, None, n_init=2, init_params=start, max_iter=5, tol=0.0,
                           throw=False)
    assert list(res.restarts.n_iter) == [5, 5]
    leaves_close(res.restarts.params, ref.restarts.params, 1e-8)
    np.testing.assert_allclose(res.restarts.log_likelihood, ref.restarts.log_likelihood, rtol=1e-10)


@pytest.mark.slow
def test_plsa_corpus_source_is_cut_into_triplet_chunks_and_dense_chunks_are_refused():
    model, corpus = discrete_cases()["plsa"]
    res = emjax.stream_fit(model, corpus, jax.random.key(0), max_iter=3, rows_per_chunk=50, throw=False)
    assert np.isfinite(float(res.objective)) and int(res.n_iter) == 3  # starts from chunk 0 only
    with pytest.raises(ValueError, match=r"chunk 0 .*PLSA streams triplets"):
        emjax.stream_fit(model, np.asarray(corpus.to_dense()), jax.random.key(0), max_iter=2)


F9_SCRIPT = """
import numpy as np, jax, emjax
X = np.random.default_rng(0).normal(size=(6000, 2)).astype(np.float32)
def fit(change):
    np.save("X.npy", X); n = {"p": 0}
    def on_pass(rep):
        n["p"] += 1
        if n["p"] == 4:
            change()
    emjax.stream_fit(emjax.GaussianMixture(2), "X.npy", jax.random.key(0), rows_per_chunk=1000,
                     on_pass=on_pass)
try:
    fit(lambda: open("X.npy", "r+b").truncate(4096))
except ValueError as err:
    print(err)
fit(lambda: np.save("X.npy", X[:10, :1]))
"""


@pytest.mark.slow
def test_file_replaced_or_truncated_during_the_fit_raises_not_sigbus(tmp_path):
    """F9: the process died with SIGBUS (memory map); now a Python exception naming file and pass."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               JAX_PLATFORMS="cpu")
    run = subprocess.run([sys.executable, "-c", F9_SCRIPT], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])  # an exception, not a signal
    assert re.fullmatch(r"source 'X.npy' is truncated: .*shape \(6000, 2\) float32 .* the file has "
                        r"4096 bytes. \(pass 4\)\n", run.stdout), run.stdout
    last = run.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"emjax.extensions.stream_sources.SourceError: source 'X.npy' changed during stream_fit: "
                        r"it is now shape \(10, 1\) float32.* \(pass 4\)", last), last


@pytest.mark.slow
def test_file_rewritten_in_place_with_the_same_size_is_detected(tmp_path):
    x = np.random.default_rng(1).normal(size=(400, 2))
    path = tmp_path / "x.npy"
    np.save(path, x)
    def on_pass(report):
        if report.index == 2:
            np.save(path, x[::-1])  # same header and size, other contents
    with pytest.raises(emjax.extensions.stream_sources.SourceError, match=r"x.npy' changed during stream_fit.*\(pass 3\)"):
        emjax.stream_fit(emjax.GaussianMixture(2), str(path), jax.random.key(0), rows_per_chunk=100,
                         on_pass=on_pass)


@pytest.mark.slow
def test_fortran_ordered_and_big_endian_files_read_as_numpy_does(tmp_path):
    x = np.random.default_rng(2).normal(size=(500, 3))
    paths = {"c": x, "fortran": np.asfortranarray(x), "big_endian": x.astype(">f8")}
    results = []
    for name, array in paths.items():
        np.save(tmp_path / f"{name}.npy", array)
        results.append(emjax.stream_fit(emjax.GaussianMixture(2), str(tmp_path / f"{name}.npy"),
                                        jax.random.key(0), rows_per_chunk=128, max_iter=3, throw=False))
    ref = emjax.stream_fit(emjax.GaussianMixture(2), np.ascontiguousarray(x), jax.random.key(0),
                           rows_per_chunk=128, max_iter=3, throw=False)
    for res in results:
        leaves_close(res.params, ref.params, 1e-6)


X = np.random.default_rng(0).normal(size=(600, 2)).astype(np.float32)


def source_changing_at(third_call, make):
    calls = {"n": 0}
    def source():
        calls["n"] += 1
        return iter([X[:300], X[300:]] if calls["n"] < third_call else make())
    return source


@pytest.mark.parametrize("make, match", [
    (lambda: [X[:300]], r"changed between passes: pass 3 read 300 rows .* pass 0 read 600 rows"),
    (lambda: [X[:300], (X[300:], np.full(300, 2.0))], r"pass 3 read 600 rows of total weight 900"),
    (lambda: [X[:300], np.where(np.arange(300)[:, None] == 5, np.nan, X[300:])],
     r"chunk 1 of the data source \(pass 3\): data contains 2 NaN value\(s\); the first at index \(5, 0\)"),
])
def test_a_source_that_changes_between_passes_raises(make, match):
    """F15: a source yielding fewer rows from pass 3 on returned CONVERGED on half the rows; NaN
    in a later pass gave a NONFINITE FitError that did not point at the data."""
    with pytest.raises(ValueError, match=match):
        emjax.stream_fit(emjax.GaussianMixture(2), source_changing_at(4, make), jax.random.key(0),
                         max_iter=20)


def bad_files(tmp_path):
    np.save(tmp_path / "ok.npy", X)
    whole = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "truncated.npy").write_bytes(whole[:1000])
    (tmp_path / "header_only.npy").write_bytes(whole[:128])
    (tmp_path / "garbage.npy").write_bytes(b"\x00\x01 not an array at all " * 20)
    np.save(tmp_path / "objects.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    return tmp_path


@pytest.mark.parametrize("name, match", [
    ("truncated", r"source '.*truncated.npy' is truncated: its header describes shape \(600, 2\) "
                  r"float32 \(4928 bytes in all\) but the file has 1000 bytes. \(pass 0\)"),
    ("header_only", r"source '.*header_only.npy' is truncated: .*has 128 bytes"),
    ("garbage", r"source '.*garbage.npy' is not a readable .npy file \(the magic string"),
    ("objects", r"source '.*objects.npy' holds dtype object"),
])
def test_broken_files_name_the_source(tmp_path, name, match):
    """F20: numpy's 'mmap length is greater than file size' and 'pickled (object) data'."""
    path = bad_files(tmp_path) / f"{name}.npy"
    with pytest.raises(ValueError, match=match):
        emjax.stream_fit(emjax.GaussianMixture(2), str(path), jax.random.key(0))


@pytest.mark.parametrize("rows_per_chunk", [-5, 0, 2.5, True])
def test_bad_rows_per_chunk_is_named(rows_per_chunk):
    """F20: -5 gave 'the data source yielded no rows'; 0 was silently the default."""
    with pytest.raises(ValueError, match=rf"rows_per_chunk must be a positive integer or None; "
                                         rf"got {rows_per_chunk!r}"):
        emjax.stream_fit(emjax.GaussianMixture(2), X, jax.random.key(0), rows_per_chunk=rows_per_chunk)
