"""Which float precision the estimators compute in: the input's, as scikit-learn does.

float64 input (NumPy's default) is fitted in float64: 64-bit floats are switched on for the
duration of the call only (``jax.enable_x64``, restored afterwards), so the rest of a program
keeps JAX's float32 default. float32 input is fitted in float32 (faster, especially on GPUs).
"""
from __future__ import annotations

import contextlib

import jax
import numpy as np


@contextlib.contextmanager
def computing_in(dtype):
    """Within the block JAX computes in ``dtype`` (float32 or float64)."""
    if np.dtype(dtype) == np.float64:
        with jax.enable_x64(True):
            yield
    else:
        yield
