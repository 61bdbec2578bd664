"""Per-program XLA options: a leaner compilation for fits on large data held in CPU memory.

Compiling a fit with XLA's CPU fusion emitters holds a few hundred MB while it runs, and the
process keeps most of that heap afterwards: a fixed cost that, next to data of a few hundred MB,
is most of a fit's peak memory. XLA's older loop emitters (``xla_cpu_use_fusion_emitters=False``)
compile the same program with a sixth of that memory or less, and faster, while running it a
few percent slower (measured on GMM fits of 100k-200k rows). So :func:`jit_by_data_size` compiles
with them only when the data are large enough for compilation memory to matter, passing the option
to that program alone (``jax.jit(..., compiler_options=...)``), never process-wide. While such a
call compiles, the heap that compilation freed is handed back to the kernel (glibc's
``malloc_trim``) before the program runs, so that the fit's own buffers do not come on top of it.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import inspect
import math

import jax
import numpy as np

from .tree import is_traced

#: XLA debug options of the lean compilation (CPU only).
LEAN_CPU_COMPILE = {"xla_cpu_use_fusion_emitters": False}

#: Data of at least this many bytes, on CPU, are fitted by a program compiled with
#: :data:`LEAN_CPU_COMPILE`.
LEAN_COMPILE_MIN_BYTES = 1 << 26


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


def lean_compile(data) -> bool:
    """True for data on CPU devices of at least :data:`LEAN_COMPILE_MIN_BYTES` (arrays or
    ``jax.ShapeDtypeStruct`` s; False under a trace, where an outer program is compiled)."""
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves or is_traced(leaves):
        return False
    devices = lambda x: (x.sharding.device_set if getattr(x, "sharding", None) is not None
                         else jax.devices())
    on_cpu = all(d.platform == "cpu" for x in leaves for d in devices(x))
    size = sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves)
    return on_cpu and size >= LEAN_COMPILE_MIN_BYTES


class jit_by_data_size:  # a decorator, named like jax.jit
    """``jax.jit(fun, compiler_options, **jit_kwargs)``, compiled with :data:`LEAN_CPU_COMPILE`
    added to ``compiler_options`` (and the heap trimmed after compiling) when the argument named
    ``data`` is large (:func:`lean_compile`).

    Two jitted functions, each with its own cache: calling with equal static arguments and equal
    shapes never recompiles. ``lower`` and ``_cache_size`` behave as ``jax.jit``'s.
    """

    def __init__(self, fun, compiler_options=None, **jit_kwargs):
        self._default = jax.jit(fun, compiler_options=compiler_options, **jit_kwargs)
        self._lean = jax.jit(fun, compiler_options={**(compiler_options or {}), **LEAN_CPU_COMPILE},
                             **jit_kwargs)
        self._signature = inspect.signature(fun)
        functools.update_wrapper(self, fun)

    def _pick(self, args, kwargs):
        data = self._signature.bind_partial(*args, **kwargs).arguments.get("data")
        return self._lean if lean_compile(data) else self._default

    def __call__(self, *args, **kwargs):
        fun = self._pick(args, kwargs)
        if fun is self._default:
            return fun(*args, **kwargs)
        with heap_trimmed_after_compiling():
            return fun(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._pick(args, kwargs).lower(*args, **kwargs)

    def _cache_size(self) -> int:
        return self._default._cache_size() + self._lean._cache_size()
