"""k-means++ seeding from a weighted subsample of large data (emjax.components.seeding).

References: exact draw probabilities computed in NumPy (binomial bounds), the true cluster
centres of well-separated blobs (brute-force nearest centre), and the rows themselves.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emjax.components import seeding


@pytest.fixture
def small_limits(monkeypatch):
    """Subsample 300 rows whenever there are more (the defaults need far larger data)."""
    monkeypatch.setattr(seeding, "SEED_ROWS", 300)
    monkeypatch.setattr(seeding, "SEED_ROWS_PER_COMPONENT", 10)
    monkeypatch.setattr(seeding, "SEED_VALUES", 0)


def test_small_data_seed_from_every_row_mapped_once():
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32) * 7 + 2
    w = np.random.default_rng(1).uniform(0, 1, 50).astype(np.float32)
    to_fit = lambda rows: (rows - 2.0) / 7.0
    rows, weights = seeding.seeding_rows(jax.random.key(0), jnp.asarray(x), jnp.asarray(w), 4, to_fit)
    np.testing.assert_allclose(rows, (x.astype(np.float64) - 2) / 7, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(weights, w)


def test_subsample_draws_rows_by_weight_and_never_a_row_of_weight_zero(small_limits):
    n = 2_000
    rng = np.random.default_rng(3)
    w = rng.uniform(0.5, 1.5, n).astype(np.float32)
    w[:500] *= 4  # a heavy quarter
    w[1500:1600] = 0
    x = np.stack([np.arange(n), np.zeros(n)], axis=1).astype(np.float32)  # row index as feature
    draw = jax.jit(lambda key: seeding.seeding_rows(key, jnp.asarray(x), jnp.asarray(w), 3,
                                                    lambda r: r + 1))
    draws = []
    for seed in range(20):  # 20 x 300 draws, batched by DRAW_BATCH with a remainder
        rows, weights = draw(jax.random.key(seed))
        assert rows.shape == (300, 2) and np.all(np.asarray(weights) == 1)
        draws.append(np.asarray(rows[:, 0]) - 1)
    idx = np.concatenate(draws).astype(int)
    p = w.astype(np.float64) / w.sum()
    assert not np.any((idx >= 1500) & (idx < 1600))
    for lo, hi in ((0, 500), (500, 1500), (1600, n)):  # mass of each part: binomial, 5 sigma
        q, total = p[lo:hi].sum(), idx.size
        hits = np.sum((idx >= lo) & (idx < hi))
        assert abs(hits - total * q) <= 5 * np.sqrt(total * q * (1 - q)), (lo, hi, hits, total * q)


def test_kmeans_plusplus_on_a_subsample_puts_one_seed_in_each_weighted_cluster(small_limits):
    """Seven separated blobs, one of them of weight 0: six seeds, one in each of the other six."""
    rng = np.random.default_rng(4)
    k_true, n, d = 7, 6_000, 3
    centres = rng.normal(size=(k_true, d)) * 30
    labels = rng.integers(k_true, size=n)
    x = (centres[labels] + rng.normal(size=(n, d))).astype(np.float32)
    w = np.where(labels == 6, 0, rng.uniform(0.5, 1.5, n)).astype(np.float32)
    seed_fn = jax.jit(lambda key: seeding.kmeans_plusplus(key, jnp.asarray(x), jnp.asarray(w), 6))
    for seed in range(3):
        seeds = np.asarray(seed_fn(jax.random.key(seed)))
        nearest = ((seeds[:, None] - centres[None]) ** 2).sum(-1).argmin(axis=1)
        assert sorted(nearest.tolist()) == [0, 1, 2, 3, 4, 5], nearest
        assert np.all(((seeds[:, None] - x[None]) ** 2).sum(-1).min(axis=1) == 0)  # rows of x
