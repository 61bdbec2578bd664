"""scikit-learn's ``random_state`` as a JAX PRNG key (host-side)."""
from __future__ import annotations

import numbers

import jax
import numpy as np

from ..validation import check_key


def key_from_random_state(random_state, name: str = "random_state"):
    """A JAX key from ``random_state``: None (fresh entropy, as scikit-learn's global RNG), an
    int seed (``jax.random.key(seed)``), a ``numpy.random.RandomState`` or ``Generator`` (one
    31-bit draw from it becomes the seed; the generator advances, as in scikit-learn) or a JAX
    key. Anything else raises ``TypeError`` naming ``name``."""
    if random_state is None:
        return jax.random.key(int(np.random.SeedSequence().generate_state(1)[0] >> 1))
    if isinstance(random_state, np.random.RandomState):
        return jax.random.key(int(random_state.randint(2 ** 31 - 1)))
    if isinstance(random_state, np.random.Generator):
        return jax.random.key(int(random_state.integers(2 ** 31 - 1)))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) \
            and random_state < 0:
        raise ValueError(f"{name} must be a non-negative integer seed; got {random_state}.")
    try:
        return check_key(random_state, name)
    except TypeError:
        raise TypeError(f"{name} must be None, an int seed, a numpy RandomState or Generator, or a "
                        f"JAX PRNG key; got {type(random_state).__name__}.") from None
