"""Shapes, chunk sizes and weights of the grid, and the fast slice's choice of cells."""
from __future__ import annotations

import numpy as np
import pytest

from .registry import BY_NAME, CASES, Shape

#: A small shape whose rows span several chunks of a prime size.
SMALL = Shape(n=57, d=3, k=3, seed=1)
#: Full/tied Gaussians take the expanded E-step only above SMALL_D = 4 features.
WIDE = Shape(n=61, d=6, k=3, seed=2)
#: Shapes of the full grid besides the hypothesis draws: a prime n, n < chunk, d = 1, k = 1.
#: (569, 30, 2, seed 0) is where the tied bug of issue 15 shows on synthetic blobs.
GRID_SHAPES = (SMALL, WIDE, Shape(n=211, d=5, k=4, seed=3), Shape(n=12, d=1, k=2, seed=4),
               Shape(n=40, d=2, k=1, seed=5), Shape(n=569, d=30, k=2, seed=0))

CHUNK_KINDS = ("1", "prime", "n-1", "n", "more")
#: (shape, chunk kind) cells of the chunk grid of the Gaussian families (gmm, bgmm), whose chunked
#: arithmetic is the most intricate: every kind, over shapes of every size. Each cell compiles a
#: program of its own (the chunk size is static), so cells another test already runs are left
#: out: SMALL in prime chunks is test_em_step_with_weights_in_prime_chunks (weighted), and one
#: chunk of n rows at d <= 4 is the (n=12, d=1) cell ("more" is clamped to n rows).
GAUSSIAN_CHUNK_GRID = ((SMALL, "1"), (GRID_SHAPES[2], "n-1"), (GRID_SHAPES[3], "more"),
                       (GRID_SHAPES[4], "prime"), (GRID_SHAPES[5], "n"), (GRID_SHAPES[5], "prime"))
#: The chunk grid of the other families: rows one at a time, n - 1 and more than n, and a prime
#: that leaves a shorter last chunk at the widest shape; their prime chunks at SMALL
#: (weighted) and one chunk of n rows (WIDE, weighted) run in test_em_step_with_weights_*.
OTHER_CHUNK_GRID = ((SMALL, "1"), (GRID_SHAPES[2], "n-1"), (GRID_SHAPES[3], "more"),
                    (GRID_SHAPES[5], "prime"))


def chunk_grid(family: str):
    """The (shape, chunk kind) cells of ``family``'s chunk grid."""
    return GAUSSIAN_CHUNK_GRID if family in ("gmm", "bgmm") else OTHER_CHUNK_GRID

#: One configuration per model family for the fast slice (every covariance type once).
FAST = ("gmm-full-prior-error", "gmm-tied-sklearn-error", "gmm-diag-prior-marginalize",
        "gmm-spherical-sklearn-error", "bgmm-full-dirichlet_process", "bernoulli-mixture",
        "categorical-mixture", "multinomial-mixture", "poisson-mixture", "mixture-poisson-emission", "plsa-dense", "plsa-sparse",
        "bayesian-network", "enumerated-mixture", "user-exponential-mixture")
#: The fast slice's configurations per path (the full grid runs every configuration).
FAST_BY_PATH = {"fit1": ("gmm-full-prior-error",),
                "blocks": ("gmm-full-prior-error",), "stream": ("gmm-full-prior-error", "poisson-mixture"),
                "online": ("gmm-full-prior-error",),
                # integer codes: params cast; a Gaussian's five float32 steps follow float64
                "float32": ("poisson-mixture", "categorical-mixture", "gmm-full-prior-error"),
                "fit_many": ("gmm-full-prior-error",),
                # pseudo_count=0 maximises no fixed objective (emjax/engine/accelerate.py)
                "squarem": ("gmm-full-prior-error", "gmm-diag-sklearn-marginalize"),
                "sharded": ("gmm-full-prior-error", "plsa-sparse")}

verify = pytest.mark.verify


def largest_prime_below(m: int) -> int:
    for p in range(max(2, m - 1), 1, -1):
        if all(p % q for q in range(2, int(p ** 0.5) + 1)):
            return p
    return 1


def chunk_size(kind: str, rows: int) -> int:
    """Rows per chunk: 1, a prime that leaves a shorter last chunk, n - 1, n, more than n."""
    return {"1": 1, "prime": largest_prime_below(max(3, rows // 3)), "n-1": max(1, rows - 1),
            "n": rows, "more": rows + 5}[kind]


def integer_weights(rows: int, seed: int):
    """Weights in {0, 1, 2, 3} (a 0 removes a row, w repeats it w times); at least half >= 1."""
    rng = np.random.default_rng(seed + 99)
    w = rng.integers(0, 4, size=rows)
    w[rng.random(rows) < 0.5] = 1
    return w.astype(np.float64)


#: Disagreements the harness found that are not fixed yet: ``(family or case name, path)`` ->
#: reason. Their cells are strict xfails, so a fix turns them into failures to flip. Fixed so
#: far: SQUAREM ending DECREASED under pseudo_count=0 (emjax/engine/accelerate.py), a
#: Dirichlet-process BGMM where SQUAREM finds a better fixed point than plain EM (the SQUAREM
#: cell's check), float32 params with integer data (emjax.em casts them) and in generalized EM
#: (emjax/components/gem.py), SQUAREM on generalized-EM models (the engine's M-step).
KNOWN: dict = {}


def path_cells(path, registry_path=None):
    """Every configuration on which ``path`` runs: the fast slice's unmarked, the rest ``verify``."""
    fast = FAST_BY_PATH[path]
    registry_path = registry_path or path
    return cases(fast, path=registry_path, fast=True) + cases(
        [c for c in BY_NAME if c not in fast], path=registry_path)


def known(case, path):
    return KNOWN.get((case.name, path)) or KNOWN.get((case.family, path))


def cases(names=None, path=None, fast=False):
    """``pytest.param`` per case (the fast ones unmarked, the others ``verify``); a cell of a
    known disagreement (:data:`KNOWN`) is a strict xfail."""
    chosen = [BY_NAME[n] for n in names] if names else list(CASES)
    params = []
    for case in chosen:
        if path is not None and path not in case.paths:
            continue
        marks = [] if fast else [verify]
        reason = known(case, path)
        if reason:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params
