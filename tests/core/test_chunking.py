"""``core.chunking.chunked_sum`` against sums in NumPy: every row counted once, whatever the chunk
size, and ``fn`` compiled for one chunk shape."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emjax.core.chunking import chunked_sum


def _weighted_sums(rows, weights):
    """A contract-following summand: rows of weight 0 add nothing, even where a value is -inf."""
    x, label = rows
    keep = weights > 0
    return {"count": jnp.sum(weights), "sum": jnp.where(keep, weights, 0) @ x,
            "square": jnp.sum(jnp.where(keep[:, None], weights[:, None] * x * x, 0), axis=0),
            "labels": jnp.sum(jnp.where(keep, weights * label, 0))}


@pytest.mark.parametrize("n", [1, 7, 10, 23, 100])
@pytest.mark.parametrize("chunk_size", [1, 3, 4, 7, 10, 99, 150])
def test_every_row_counted_once(n, chunk_size):
    rng = np.random.default_rng(n * 1000 + chunk_size)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    label = rng.integers(0, 5, n).astype(np.float32)
    w = rng.uniform(0.5, 2.0, n).astype(np.float32)
    w[rng.random(n) < 0.2] = 0.0
    got = jax.jit(lambda x, lab, w: chunked_sum(_weighted_sums, (x, lab), w, chunk_size))(x, label, w)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    np.testing.assert_allclose(got["count"], w64.sum(), rtol=1e-5)
    np.testing.assert_allclose(got["sum"], w64 @ x64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["square"], w64 @ (x64 * x64), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["labels"], w64 @ label, rtol=1e-5)


def test_one_chunk_shape_and_no_nan_from_an_infinite_row_in_the_overlap():
    shapes = []

    def summand(rows, weights):
        shapes.append(rows.shape)
        return jnp.sum(jnp.where(weights > 0, weights * rows, 0))

    values = np.arange(10, dtype=np.float32)
    values[7] = -np.inf  # chunks of rows 0-3, 4-7 and 6-9, whose rows 6 and 7 have weight 0
    total = chunked_sum(summand, jnp.asarray(values), jnp.ones(10), 4)
    assert set(shapes) == {(4,)}  # no second shape for a shorter last chunk
    assert float(total) == -np.inf  # not NaN: the overlapping rows have weight 0
    finite = np.arange(9, dtype=np.float32)  # chunks of rows 0-3, 4-7 and 5-8
    assert float(chunked_sum(summand, jnp.asarray(finite), jnp.ones(9), 4)) == 36.0
