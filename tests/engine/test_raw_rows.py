"""Fits that standardise chunk by chunk (emjax.engine.raw_rows) and the O(n) k-means++ helpers.

References: NumPy weighted moments, the fit of NumPy-standardised data mapped back by hand,
exact draw probabilities computed in NumPy, brute-force nearest distances, and XLA's own buffer
assignment for the claim that no copy of the data is made.
"""
import dataclasses
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import blobs

import emjax
from emjax.core.plan import CPU_CHUNK_BUDGET, choose_chunk_size
from emjax.components import seeding
from emjax.engine.raw_rows import OnRawRows, chunked_transform, fit_coordinates

fit_module = importlib.import_module("emjax.engine.restarts")


def _raw_data(n=203, seed=0):
    """Blobs far from the origin with very different feature scales."""
    x, _ = blobs(n=n, d=3, k=3, seed=seed, dtype=np.float64)
    return x * np.array([1e-3, 1.0, 50.0]) + np.array([1e4, -7.0, 3e3])


def test_chunked_transform_matches_numpy_weighted_moments(x64):
    x = _raw_data()
    w = np.random.default_rng(1).uniform(0, 2, size=x.shape[0])
    model = emjax.GaussianMixture(2, covariance_type="diag")
    transform, log_jacobian = chunked_transform(model.standardizer(), jnp.asarray(x), jnp.asarray(w),
                                                chunk_size=16)
    mean = w @ x / w.sum()
    std = np.sqrt(w @ (x - mean) ** 2 / w.sum())
    np.testing.assert_allclose(transform.shift, mean, rtol=1e-12)
    np.testing.assert_allclose(transform.scale, std, rtol=1e-10)
    np.testing.assert_allclose(log_jacobian, -np.log(std).sum(), rtol=1e-10)  # as the scale


def test_fit_on_raw_rows_equals_the_fit_of_numpy_standardised_rows_mapped_back(x64):
    """Chunk-wise standardisation (17-row chunks and a shorter last one) gives what a fit of rows
    standardised beforehand in NumPy gives, once its parameters are mapped back by hand."""
    x = _raw_data()
    mean, std = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / std
    covariance_type = "full"
    model = emjax.GaussianMixture(3, covariance_type=covariance_type)
    key = jax.random.key(3)
    raw = emjax.fit(model, x, key, n_init=2, max_iter=30, chunk_size=17, throw=False)
    ref = emjax.fit(model, z, key, n_init=2, max_iter=30, chunk_size=17, throw=False)
    assert raw.status == ref.status
    np.testing.assert_allclose(raw.params.weights, ref.params.weights, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(raw.params.means, mean + std * np.asarray(ref.params.means), rtol=1e-7)
    scale = np.outer(std, std) if covariance_type == "full" else std ** 2
    np.testing.assert_allclose(raw.params.covariances, scale * np.asarray(ref.params.covariances),
                               rtol=1e-6)
    np.testing.assert_allclose(raw.objective, ref.objective - np.log(std).sum(), rtol=1e-9)


def test_models_that_standardise_whole_still_take_the_copying_path():
    x = jnp.asarray(_raw_data(n=40).astype(np.float32))
    w = jnp.ones((40,), jnp.float32)
    chunked = fit_coordinates(emjax.GaussianMixture(2), x, w, chunk_size=16)
    assert isinstance(chunked[0], OnRawRows) and chunked[1] is x
    missing = emjax.GaussianMixture(2, missing="marginalize")  # NaN-aware moment passes: chunked too
    assert isinstance(fit_coordinates(missing, x, w, chunk_size=16)[0], OnRawRows)
    whole = emjax.BayesianGaussianMixture(2)  # a whole-data Standardizer: gets the data to copy
    assert fit_coordinates(whole, x, w, chunk_size=16)[0] is whole


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a claim about the CPU program: on an "
                    "H200, XLA's GPU buffer assignment for the same fit holds 1.25x the data")
def test_fit_program_holds_no_copy_of_the_data():
    """XLA's buffer assignment for a k-means++ fit of 2M x 8 float32 rows (compiled only, never
    run): temporaries stay far below the data's size (a standardised copy alone is 1x)."""
    n, d = 2_000_000, 8
    model = emjax.GaussianMixture(4, covariance_type="diag")
    small = np.random.default_rng(0).normal(size=(64, d)).astype(np.float32)
    args, static = fit_module._prepare(model, small, jax.random.key(0), 1, None, 2, 0.0, None, None)
    _, _, key, tol, max_iter, init_params, hyper = args
    # The CPU chunk budget on every backend: an accelerator's chunks are larger by design.
    static["plan"] = dataclasses.replace(
        static["plan"], chunk_size=choose_chunk_size(n, model.work_per_row(small), budget=CPU_CHUNK_BUDGET))
    rows = jax.ShapeDtypeStruct((n, d), jnp.float32)
    weights = jax.ShapeDtypeStruct((n,), jnp.float32)
    compiled = fit_module._fit_jit.lower(rows, weights, key, tol, max_iter, init_params, hyper,
                                        **static).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    assert temp < 0.5 * n * d * 4, f"temporaries {temp / (n * d * 4):.2f}x the data"


def _draw_probabilities(weights, score):
    mass = weights * score if (weights * score).sum() > 0 else weights
    return mass / mass.sum()


@pytest.mark.parametrize("all_zero_score", [False, True])
def test_two_level_draws_follow_the_mass_and_skip_rows_without_mass(monkeypatch, all_zero_score):
    monkeypatch.setattr(seeding, "SAMPLE_BLOCK", 4)  # 23 rows: 6 blocks, the last one moved back
    rng = np.random.default_rng(2)
    weights = rng.uniform(0.2, 1.0, 23).astype(np.float32)
    weights[[0, 5, 22]] = 0
    score = np.zeros(23, np.float32) if all_zero_score else rng.uniform(0, 3, 23).astype(np.float32)
    score[[3, 20]] = 0
    draws = 60_000
    idx = np.asarray(jax.jit(lambda k, w, s: seeding._sample_rows(k, w, s, (draws,)))(
        jax.random.key(0), jnp.asarray(weights), jnp.asarray(score)))
    p = _draw_probabilities(weights.astype(np.float64), score.astype(np.float64))
    counts = np.bincount(idx, minlength=23)
    assert counts[p == 0].sum() == 0
    sigma = np.sqrt(draws * p * (1 - p))
    assert np.all(np.abs(counts - draws * p) <= 5 * sigma + 1), (counts, draws * p)


def test_closest_distances_with_an_overlapping_last_chunk():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 3)).astype(np.float32) * 10 + 5
    shift, scale = x.mean(axis=0), x.std(axis=0)
    centres = rng.normal(size=(2, 3)).astype(np.float32)
    z = (x - shift) / scale
    closest = jnp.full((30,), jnp.inf)
    for c in centres:
        closest = seeding._closer(jnp.asarray(z), closest, jnp.asarray(c), chunk=7)
    brute = ((z[:, None, :] - centres[None]) ** 2).sum(-1).min(axis=1)
    np.testing.assert_allclose(closest, brute, rtol=1e-5)


def test_chunked_lloyd_steps_on_raw_rows_match_numpy_lloyd(x64):
    x = _raw_data(n=50)
    w = np.random.default_rng(5).uniform(0.5, 1.5, 50)
    shift, scale = x.mean(axis=0), x.std(axis=0)
    z = (x - shift) / scale
    centres = z[[0, 20, 40]]
    expected = centres.copy()
    for _ in range(4):
        labels = ((z[:, None] - expected[None]) ** 2).sum(-1).argmin(axis=1)
        for j in range(3):
            if (labels == j).any():
                expected[j] = w[labels == j] @ z[labels == j] / w[labels == j].sum()
    to_fit = lambda rows: (rows - shift) / scale
    got = seeding.lloyd(jnp.asarray(x), jnp.asarray(w), jnp.asarray(centres), 4, to_fit)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
