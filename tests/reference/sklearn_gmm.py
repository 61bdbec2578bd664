"""Data and starting parameters for parity runs against scikit-learn's GaussianMixture, in its
shapes (covariances per covariance type), and its precisions."""
import numpy as np


def make_data(seed=0, n=150, d=3, k=3):
    """Overlapping anisotropic clusters with an offset, so EM is still moving after 20 steps."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(k, d))
    labels = rng.integers(0, k, size=n)
    mixing = rng.normal(size=(k, d, d)) * 0.6 + np.eye(d)
    x = centres[labels] + np.einsum("kde,ne->nd", mixing[labels], rng.normal(size=(n, d)))
    return x + np.array([5.0, -3.0, 10.0])[:d]


def make_init(x, cov_type, k=3, seed=1):
    """Deliberately poor but valid starting parameters in scikit-learn's shapes."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    w0 = rng.dirichlet(np.full(k, 5.0))
    m0 = x[rng.choice(n, k, replace=False)] + rng.normal(scale=0.3, size=(k, d))
    a = rng.normal(size=(k, d, d)) * 0.3
    full = np.einsum("kde,kfe->kdf", a, a) + np.eye(d) * rng.uniform(0.5, 2.0, size=(k, 1, 1))
    cov0 = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 2.0, size=(k, d)),
            "spherical": rng.uniform(0.5, 2.0, size=k)}[cov_type]
    return w0, m0, cov0


def precisions_of(cov, cov_type):
    return np.linalg.inv(cov) if cov_type in ("full", "tied") else 1.0 / cov
