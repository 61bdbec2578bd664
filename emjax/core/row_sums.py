r"""Several sums along the rows of ``(k, n)`` arrays, taken in one pass.

An E-step's statistics are sums over rows, :math:`t_j = \sum_n a_j[:, n]`, of arrays built
elementwise from the same inputs. Taken as one variadic ``lax.reduce`` (:func:`row_sums`), XLA
computes the :math:`a_j` inside the reduction loop and never writes them to memory; taken apart,
each :math:`a_j` is materialised and summed by a library reduction or product. The one-pass loop
only vectorises when XLA may reassociate float additions, a compiler option that applies to a
whole program: a :class:`emjax.core.plan.Plan` whose formulation has ``one_pass`` compiles with
:data:`REASSOCIATING_COMPILER_OPTIONS` and hands components ``one_pass=True`` explicitly;
everywhere else (e.g. inside a caller's ``jit``, whose options are the caller's) they keep their
separate reductions. Both give the same sums up to float rounding.
"""
from __future__ import annotations

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


def row_sums(arrays, axis: int = 1):
    """``[a.sum(axis) for a in arrays]`` for arrays of one shape (``(k, n)`` rows by default), as
    one variadic reduction (vectorised on CPU only in a program compiled with
    :data:`REASSOCIATING_COMPILER_OPTIONS`, or where the reduced axis is not the minor one)."""
    zeros = tuple(jnp.zeros((), a.dtype) for a in arrays)
    add = lambda totals, values: tuple(t + v for t, v in zip(totals, values))
    return list(jax.lax.reduce(tuple(arrays), zeros, add, (axis,)))
