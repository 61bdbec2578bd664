"""Shapes and seeds drawn by hypothesis (a fixed, derandomized profile: the same draws on every
run) to cross chunk boundaries: n from 1 to tens of thousands including primes and powers of two
plus or minus one, d up to 64, k up to 16, chunk sizes 1 / a prime / n - 1 / n / more than n,
with and without weights. Each draw is one ``em`` step checked against the float64 reference.
Shapes are clamped per family so the covariances stay well conditioned (n >= 2kd) and the
references stay cheap; the heavy draws run in the full grid only.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from . import paths as P
from .grid import CHUNK_KINDS, cases, chunk_size, integer_weights
from .registry import Shape
from .test_one_step import setup

pytestmark = pytest.mark.usefixtures("x64")

settings.register_profile(
    "differential", derandomize=True, database=None, deadline=None, print_blob=True,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure names its draw at once
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large])
BOUNDARIES = (1, 2, 3, 127, 128, 129, 255, 257, 509, 569, 1021, 1024, 2053, 4093, 8191, 16381, 30011)


def clamp(family: str, shape: Shape, heavy: bool) -> Shape:
    """A drawn shape made valid and affordable for ``family``."""
    n, d, k, seed = shape
    limit = 4_000_000 if heavy else 60_000
    k = max(1, min(k, n))
    if family == "bgmm":  # the default prior is the data's covariance: one row has none
        n = max(n, 2 * k + 1)
    if family in ("gmm", "bgmm", "enumerated", "user"):
        d = max(1, min(d, n // (2 * k)))
    if family == "plsa":  # rows are non-zeros: about n * d / 2
        d, k = max(2, min(d, 40)), min(k, 8)
    if family == "bn":
        k = min(k, 6)
    if family == "gmm-missing":
        limit = 200_000 if heavy else 20_000  # the reference loops over rows with NaN
    while n > max(k, 2) and n * d * k > limit:
        n //= 2
    return Shape(max(n, k), d, k, seed)


shapes = st.builds(Shape, n=st.one_of(st.integers(1, 400), st.sampled_from(BOUNDARIES)),
                   d=st.one_of(st.integers(1, 8), st.integers(9, 64)), k=st.integers(1, 16),
                   seed=st.integers(0, 2 ** 16))


def run_drawn(case, shape, kind, weighted, heavy):
    family = "gmm-missing" if case.name.endswith("marginalize") else case.family
    shape = clamp(family, shape, heavy)
    model, data, start = setup(case, shape)
    rows = case.n_rows(data)
    if kind == "1" and rows > 600:
        kind = "prime"  # a scan of thousands of one-row chunks: slow, and "prime" crosses as well
    w = integer_weights(rows, shape.seed) if weighted else None
    if w is not None and not w.any():
        w[0] = 1
    got = P.em_step(model, start, data, w, chunk_size(kind, rows))
    P.check_step(case, model, shape, start, data, w, got, 1e-7,
                 f"{case.name} {shape} chunk {kind} weighted={weighted}")


@pytest.mark.parametrize("case", cases(["gmm-tied-prior-error"], fast=True))
@settings(settings.get_profile("differential"), max_examples=3)
@given(shape=shapes, kind=st.sampled_from(CHUNK_KINDS), weighted=st.booleans())
def test_drawn_shapes_fast(case, shape, kind, weighted):
    run_drawn(case, shape, kind, weighted, heavy=False)


@pytest.mark.parametrize("case", cases())
@settings(settings.get_profile("differential"), max_examples=3)
@given(shape=shapes, kind=st.sampled_from(CHUNK_KINDS), weighted=st.booleans())
def test_drawn_shapes(case, shape, kind, weighted):
    run_drawn(case, shape, kind, weighted, heavy=True)
