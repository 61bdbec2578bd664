"""scikit-learn's ``random_state`` as a JAX PRNG key."""
from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state

from ..core.validation import check_key

#: Seeds drawn from a RandomState (or NumPy's global one for None) lie in [0, SEED_BOUND).
SEED_BOUND = 2**31 - 1


def key_from_random_state(random_state):
    """A JAX key from ``random_state``, as scikit-learn reads it.

    * an int: ``jax.random.key(random_state)``: every call gives the same key;
    * None: a seed drawn from NumPy's global random state (``np.random.seed`` makes it repeatable);
    * a ``np.random.RandomState`` or ``np.random.Generator``: a seed drawn from it (the generator
      advances, so successive fits differ, as in scikit-learn);
    * a JAX key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``): used as it is.
    """
    if random_state is None:
        random_state = check_random_state(None)  # NumPy's global RandomState
    if isinstance(random_state, np.random.RandomState):
        return check_key(int(random_state.randint(SEED_BOUND)), "random_state")
    if isinstance(random_state, np.random.Generator):
        return check_key(int(random_state.integers(SEED_BOUND)), "random_state")
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer; got {random_state}.")
        return check_key(int(random_state), "random_state")
    try:
        return check_key(random_state, "random_state")
    except TypeError:
        raise TypeError("random_state must be None, an int, a numpy RandomState or Generator, or a "
                        f"JAX key (jax.random.key(0)); got {type(random_state).__name__}.") from None
