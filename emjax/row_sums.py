r"""Several sums along the rows of ``(k, n)`` arrays, and when to take them in one pass.

An E-step's statistics are sums over rows, :math:`t_j = \sum_n a_j[:, n]`, of arrays built
elementwise from the same inputs. Taken as one variadic ``lax.reduce``, XLA computes the
:math:`a_j` inside the reduction loop and never writes them to memory; taken apart, each
:math:`a_j` is materialised and summed by a library reduction. The one-pass loop only
vectorises when XLA may reassociate float additions, a compiler option that applies to a whole
program: :func:`emjax.fit` compiles with :data:`REASSOCIATING_COMPILER_OPTIONS` and traces with
:func:`one_pass_row_sums` enabled; everywhere else (inside a caller's ``jit``, whose options
are the caller's) the sums are taken apart. Both give the same sums up to float rounding.
"""
from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp

#: XLA CPU options that let LLVM reassociate and contract float arithmetic (vectorised
#: reductions, fused multiply-adds) while NaN, inf, division and math functions keep their
#: IEEE semantics. Other backends ignore them.
REASSOCIATING_COMPILER_OPTIONS = {
    "xla_cpu_enable_fast_math": True,
    "xla_cpu_fast_math_honor_nans": True,
    "xla_cpu_fast_math_honor_infs": True,
    "xla_cpu_fast_math_honor_division": True,
    "xla_cpu_fast_math_honor_functions": True,
}

_one_pass = False


@contextlib.contextmanager
def one_pass_row_sums(enabled: bool = True):
    """Within this block, :func:`row_sums` traces one variadic reduction (trace-time switch).

    Enable it only while tracing a program compiled with
    :data:`REASSOCIATING_COMPILER_OPTIONS`; it changes speed, never results beyond rounding.
    """
    global _one_pass
    previous, _one_pass = _one_pass, enabled
    try:
        yield
    finally:
        _one_pass = previous


def one_pass_enabled() -> bool:
    """True while tracing inside :func:`one_pass_row_sums`: formulations that rely on fused
    row reductions may be chosen."""
    return _one_pass


def row_sums(arrays):
    """``[a.sum(axis=1) for a in arrays]`` for arrays of one shape ``(k, n)``, as one variadic
    reduction (fast only in a program compiled with :data:`REASSOCIATING_COMPILER_OPTIONS`)."""
    zeros = tuple(jnp.zeros((), a.dtype) for a in arrays)
    add = lambda totals, values: tuple(t + v for t, v in zip(totals, values))
    return list(jax.lax.reduce(tuple(arrays), zeros, add, (1,)))
