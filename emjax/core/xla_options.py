"""Per-program XLA options: a leaner compilation for fits on large data held in CPU memory.

Compiling a fit with XLA's CPU fusion emitters holds a few hundred MB while it runs, and the
process keeps most of that heap afterwards: a fixed cost that, next to data of a few hundred MB,
is most of a fit's peak memory. XLA's older loop emitters (``xla_cpu_use_fusion_emitters=False``)
compile the same program with a sixth of that memory or less, and faster, while running it a
few percent slower (measured on GMM fits of 100k-200k rows). So a :class:`emjax.core.plan.Plan` asks for
them (``lean_compile``) only when the data are large enough for compilation memory to matter, and
:class:`jit_per_plan` passes the option to that program alone (``jax.jit(...,
compiler_options=...)``), never process-wide. While such a
call compiles, the heap that compilation freed is handed back to the kernel (glibc's
``malloc_trim``) before the program runs, so that the fit's own buffers do not come on top of it.

Every program emjax compiles also gets :func:`correct_cpu_options`: XLA's CPU compiler in jaxlib
0.10 fuses some matrix products with the reductions that consume them into YNNPACK kernels that
return wrong sums (a tied-covariance Mahalanobis distance, ``sum((U^T x^T)[None] - (m U)[..., None]) ** 2,
axis=1)`` after a Cholesky solve, was off by 25% on 569 x 30 rows; ``tests/core/test_xla_ynn_fusion.py``
holds the reproducer). Those fusions are switched off for emjax's programs alone.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools

import jax
import numpy as np

from .tree import is_traced

#: XLA debug option that switches off XLA CPU's YNNPACK library fusions (module docstring).
NO_YNN_FUSION = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.cache
def correct_cpu_options() -> dict:
    """:data:`NO_YNN_FUSION` where this jaxlib knows the option (checked once by compiling a
    scalar program with it), else ``{}`` (older jaxlibs have no YNNPACK fusions)."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=NO_YNN_FUSION).lower(np.float32(0)).compile()
    except Exception:  # noqa: BLE001 - any refusal means the option does not exist here
        return {}
    return dict(NO_YNN_FUSION)


#: The event JAX records after each XLA compilation (``jax.monitoring``).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library is not glibc."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def heap_trimmed_after_compiling():
    """Within the block, each XLA compilation is followed by ``malloc_trim(0)``: the free heap
    the compiler leaves behind goes back to the kernel instead of staying resident."""
    trim = _malloc_trim()
    if trim is None:
        yield
        return

    def after_compile(event: str, duration: float, **kwargs) -> None:
        if event == BACKEND_COMPILE_EVENT:
            trim(0)

    jax.monitoring.register_event_duration_secs_listener(after_compile)
    try:
        yield
    finally:
        jax.monitoring.unregister_event_duration_listener(after_compile)


def jit(fun=None, *, compiler_options=None, **jit_kwargs):
    """``jax.jit`` with :func:`correct_cpu_options` added to ``compiler_options``; usable as a
    decorator with or without arguments, like ``jax.jit``. Every program emjax compiles goes
    through it (or :class:`jit_per_plan`)."""
    if fun is None:
        return functools.partial(jit, compiler_options=compiler_options, **jit_kwargs)
    return _Jitted(fun, compiler_options, jit_kwargs)


class _Jitted:
    """A ``jax.jit`` function built on first call, when JAX's backend may be asked for
    :func:`correct_cpu_options` (building it at import would start the backend). Inside a
    caller's trace, where JAX refuses compiler options on a nested ``jit``, the same function is
    jitted without them (the caller's program is compiled with the caller's options)."""

    def __init__(self, fun, compiler_options, jit_kwargs):
        self._fun, self._options, self._kwargs = fun, compiler_options or {}, jit_kwargs
        functools.update_wrapper(self, fun)

    @functools.cached_property
    def _jitted(self):
        options = {**correct_cpu_options(), **self._options}
        return jax.jit(self._fun, compiler_options=options, **self._kwargs)

    @functools.cached_property
    def _nested(self):
        return jax.jit(self._fun, **self._kwargs)

    def __call__(self, *args, **kwargs):
        if is_traced(args, kwargs):
            return self._nested(*args, **kwargs)
        try:
            return self._jitted(*args, **kwargs)
        except ValueError as error:  # concrete arguments, but inside a caller's trace
            if "compiler_options" not in str(error):
                raise
            return self._nested(*args, **kwargs)

    def __getattr__(self, name):  # lower, trace, eval_shape, _cache_size, ...
        return getattr(self._jitted, name)


class jit_per_plan:  # a decorator, named like jax.jit
    """:func:`jit` ``(fun, **jit_kwargs)`` compiled with the options of its static argument
    ``plan`` (:attr:`emjax.core.plan.Plan.compiler_options`; the heap trimmed after compiling where the
    plan compiles leanly). One jitted function per distinct set of options, each with its own
    cache: calling with an equal plan, equal static arguments and equal shapes never recompiles.
    ``lower`` and ``_cache_size`` behave as ``jax.jit``'s.
    """

    def __init__(self, fun, **jit_kwargs):
        self._fun, self._kwargs, self._jits = fun, jit_kwargs, {}
        functools.update_wrapper(self, fun)

    def _for(self, plan):
        options = tuple(sorted(plan.compiler_options.items()))
        if options not in self._jits:
            self._jits[options] = jit(self._fun, compiler_options=dict(options), **self._kwargs)
        return self._jits[options]

    def __call__(self, *args, plan, **kwargs):
        fun = self._for(plan)
        if not plan.lean_compile:
            return fun(*args, plan=plan, **kwargs)
        with heap_trimmed_after_compiling():
            return fun(*args, plan=plan, **kwargs)

    def lower(self, *args, plan, **kwargs):
        return self._for(plan).lower(*args, plan=plan, **kwargs)

    def _cache_size(self) -> int:
        return sum(fun._cache_size() for fun in self._jits.values())
