r"""Several sums along the rows of ``(k, n)`` arrays, and when to take them in one pass.

An E-step's statistics are sums over rows, :math:`t_j = \sum_n a_j[:, n]`, of arrays built
elementwise from the same inputs. Taken as one variadic ``lax.reduce`` (:func:`row_sums`), XLA
computes the :math:`a_j` inside the reduction loop and never writes them to memory; taken apart,
each :math:`a_j` is materialised and summed by a library reduction or product. The one-pass loop
only vectorises when XLA may reassociate float additions, a compiler option that applies to a
whole program: :func:`emjax.fit` compiles with :data:`REASSOCIATING_COMPILER_OPTIONS` and traces
inside :func:`one_pass_row_sums`, where :func:`one_pass_enabled` tells components to use
:func:`row_sums`; everywhere else (e.g. inside a caller's ``jit``, whose options are the
caller's) they keep their separate reductions. Both give the same sums up to float rounding.
The switch is read while tracing: a function whose trace JAX cached outside it keeps the
formulation of that trace. :func:`unbatched_restarts` is a second switch of the same kind: it
tells models that no ``vmap`` batches the restart being traced, so a ``lax.cond`` on
per-restart values skips a branch instead of computing both.
"""
from __future__ import annotations

import contextlib
import contextvars

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

_one_pass = contextvars.ContextVar("emjax_one_pass_row_sums", default=False)
_unbatched = contextvars.ContextVar("emjax_unbatched_restarts", default=False)


@contextlib.contextmanager
def _switched(switch: contextvars.ContextVar, enabled: bool):
    token = switch.set(enabled)
    try:
        yield
    finally:
        switch.reset(token)


def one_pass_row_sums(enabled: bool = True):
    """Within this block :func:`one_pass_enabled` is ``enabled`` (a trace-time switch, local to
    the thread). Enable it only while tracing a program compiled with
    :data:`REASSOCIATING_COMPILER_OPTIONS`; it changes speed, never results beyond rounding.
    """
    return _switched(_one_pass, enabled)


def one_pass_enabled() -> bool:
    """True while tracing inside :func:`one_pass_row_sums`: components may then take their
    statistics with :func:`row_sums`."""
    return _one_pass.get()


def unbatched_restarts(enabled: bool = True):
    """Within this block :func:`unbatched_enabled` is ``enabled`` (a trace-time switch, local to
    the thread). Enable it only while tracing one restart with no batch axis above it (not
    inside a caller's ``vmap``): it changes speed, never results beyond rounding."""
    return _switched(_unbatched, enabled)


def unbatched_enabled() -> bool:
    """True while tracing inside :func:`unbatched_restarts`: a model may choose a formulation
    with a ``lax.cond`` on per-restart values (e.g. a rounding guard)."""
    return _unbatched.get()


def row_sums(arrays, axis: int = 1):
    """``[a.sum(axis) for a in arrays]`` for arrays of one shape (``(k, n)`` rows by default), as
    one variadic reduction (vectorised on CPU only in a program compiled with
    :data:`REASSOCIATING_COMPILER_OPTIONS`, or where the reduced axis is not the minor one)."""
    zeros = tuple(jnp.zeros((), a.dtype) for a in arrays)
    add = lambda totals, values: tuple(t + v for t, v in zip(totals, values))
    return list(jax.lax.reduce(tuple(arrays), zeros, add, (axis,)))
