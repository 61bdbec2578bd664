"""JAX's persistent compilation cache, on by default: a new process reuses compiled fits.

A first fit spends seconds compiling its XLA program; JAX can keep compiled programs on disk and
load them in a later process instead. When emjax is imported and the user has configured no
cache (neither ``JAX_COMPILATION_CACHE_DIR`` nor ``jax.config.update("jax_compilation_cache_dir",
...)`` nor ``jax_enable_compilation_cache=False``), it turns the cache on in a per-user directory,
``$XDG_CACHE_HOME/emjax/jax`` (``~/.cache/emjax/jax`` by default), created readable by the user
only: JAX treats a cache as trusted code, so it must not be writable by others.

Set ``EMJAX_NO_COMPILATION_CACHE=1`` before importing emjax to leave JAX's settings untouched.
Caveats: programs with host callbacks (``verbose=`` fits) are never cached by JAX; a CPU program
is compiled for the CPU it was built on, so do not share the directory between machines of
different CPU types (e.g. a home directory mounted on a cluster of mixed nodes); when the ``filelock``
package is installed, the directory is bounded by :data:`MAX_CACHE_BYTES`, least recently used
entries going first (JAX needs it for the bound); without it the directory is not bounded.
"""
from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import jax

#: Environment variable that turns emjax's default cache off (any value but "", "0").
DISABLE_VARIABLE = "EMJAX_NO_COMPILATION_CACHE"
#: Programs that compile faster than this are not written (emjax's small helper programs, such
#: as the input checks, are then recompiled: each takes milliseconds).
MIN_COMPILE_SECONDS = 0.1
#: Size bound of the cache directory (least recently used entries are evicted beyond it).
MAX_CACHE_BYTES = 2 << 30


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/emjax/jax``, or ``~/.cache/emjax/jax`` without that variable."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "emjax" / "jax"


def cache_dir() -> str | None:
    """The persistent cache directory JAX uses now (emjax's or the user's), or None when off."""
    if not jax.config.jax_enable_compilation_cache:
        return None
    return jax.config.jax_compilation_cache_dir


def enable_default_cache() -> str | None:
    """Turns the cache on in :func:`default_cache_dir` unless the user configured or disabled
    one (see the module docstring); returns the directory in use, or None. Called once, when
    emjax is imported."""
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return cache_dir()
    if jax.config.jax_compilation_cache_dir is not None or not jax.config.jax_enable_compilation_cache:
        return cache_dir()
    path = default_cache_dir()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:  # e.g. a read-only home directory: run without the cache
        return None
    if not os.access(path, os.W_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    if jax.config.jax_compilation_cache_max_size == -1 and importlib.util.find_spec("filelock"):
        jax.config.update("jax_compilation_cache_max_size", MAX_CACHE_BYTES)  # JAX needs filelock
        _date_undated_entries(path)
    restart_cache()
    return str(path)


def _date_undated_entries(path) -> None:
    """Gives every entry of the directory an access time. A process without ``filelock`` (no size
    bound) writes entries without JAX's ``<key>-atime`` file, and one with it then warns at each
    write that it cannot evict them; dated now, they are evicted like any other."""
    now = time.time_ns().to_bytes(8, "little")   # JAX's format (jax/_src/lru_cache.py)
    try:
        for entry in path.glob("*-cache"):
            atime = entry.with_name(entry.name[:-len("cache")] + "atime")
            if not atime.exists():
                atime.write_bytes(now)
    except OSError:  # another process evicting at the same time: its next write dates the rest
        pass


def restart_cache() -> None:
    """Makes JAX decide again, at its next compilation, whether to use the persistent cache (it
    decides once per process: before emjax was imported, or before a setting changed)."""
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()
