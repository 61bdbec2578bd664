"""Compiled fit programs kept on disk whole: a new process skips tracing, lowering and compiling.

JAX's persistent compilation cache (:mod:`emjax.engine.compile_cache`) skips only XLA's compilation: a new
process still traces the fit in Python and lowers it to MLIR, most of a warm first fit's time.
An :class:`ExecutableCache` wraps one jitted program (``emjax.fit``'s): on a call with concrete
arguments it looks for the program's executable, serialized by
``jax.experimental.serialize_executable``, in ``$XDG_CACHE_HOME/emjax/executables``
(``~/.cache/emjax/executables``), loads it and runs it; otherwise it lowers and compiles the
program, runs it and writes it there (atomically: a temporary file renamed into place).

An entry is found by a SHA-256 of everything that determines the program, and used only if the
stored ingredients compare equal to the call's:

* the static arguments (the model's static fields or pytree structure, the :class:`emjax.Plan`,
  ``n_init``, the history length, ...), pickled: only classes and functions of emjax, NumPy, JAX
  and Python's standard containers are allowed, so a model or component defined outside emjax
  (whose code this key cannot see) is never cached;
* the argument pytree's structure and every leaf's shape, dtype and weak type (leaves on one
  device, JAX's default);
* every JAX configuration value (``jax_enable_x64``, matmul precision, ``jax_disable_most_optimizations``,
  ...) and tracing context, ``XLA_FLAGS``, the jax and jaxlib versions, the backend, its
  version and its devices;
* a hash of emjax's own source files, so that editing emjax invalidates every entry.

Calls inside a caller's ``jit``/``vmap``/``grad`` or ``jax.disable_jit()``, under a mesh or other
tracing context, with sharded data, with a host callback (``verbose=``) or with a plan that
compiles leanly (data of 64 MiB or more) are never cached. Any failure to read, check,
load or run an entry falls back to the normal path, silently. The directory is created readable by
its owner only and is not used if others may write to it: loading an executable runs its code.

``EMJAX_NO_COMPILATION_CACHE=1`` (which also leaves JAX's cache off) or
``EMJAX_NO_EXECUTABLE_CACHE=1`` turns this cache off; the directory is bounded by
:data:`MAX_CACHE_BYTES` (least recently used entries go first).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import os
import pickle
import tempfile
from pathlib import Path

import jax
import jaxlib
from jax._src import config as jax_config
from jax._src import core as jax_core
from jax.experimental import serialize_executable

from .compile_cache import DISABLE_VARIABLE as NO_CACHES_VARIABLE
from .compile_cache import default_cache_dir, restart_cache
from ..core.tree import is_traced

#: Environment variable that turns this cache alone off (any value but "", "0").
DISABLE_VARIABLE = "EMJAX_NO_EXECUTABLE_CACHE"
#: Size bound of the directory (least recently used entries are removed beyond it).
MAX_CACHE_BYTES = 1 << 30
#: Programs kept loaded in a process, per :class:`ExecutableCache`.
MAX_IN_MEMORY = 64
#: Version of the entry layout (part of every key).
FORMAT = 1
#: Modules whose classes and functions may appear in a cached program's static arguments.
TRUSTED_MODULES = ("emjax", "numpy", "jax", "jaxlib", "builtins", "copyreg", "collections",
                   "functools", "enum", "_codecs")
#: JAX settings that say where caches live, not what a program does.
_UNRELATED_SETTINGS = ("compilation_cache", "persistent_cache", "log_compiles", "explain_cache")


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/emjax/executables`` (``~/.cache/emjax/executables``), or None when either
    environment variable turns the cache off."""
    if any(os.environ.get(name, "") not in ("", "0") for name in (NO_CACHES_VARIABLE, DISABLE_VARIABLE)):
        return None
    return default_cache_dir().parent / "executables"


@dataclasses.dataclass
class CacheStats:
    """What an :class:`ExecutableCache` did in this process (counts of calls)."""

    loaded: int = 0     # read from disk and run
    reused: int = 0     # run from memory
    compiled: int = 0   # traced, lowered and compiled (then written)
    bypassed: int = 0   # not cacheable: the plain jitted call


class ExecutableCache:
    """``jitted(*args, **static)`` served from disk when possible (module docstring).

    Examples:
        >>> import jax, emjax
        >>> from emjax.engine.restarts import _fit_cache
        >>> X = emjax.datasets.load_old_faithful()
        >>> res = emjax.fit(emjax.GaussianMixture(2), X, jax.random.key(0))
        >>> sum(vars(_fit_cache.stats).values()) >= 1     # every host-side fit passes through it
        True
    """

    def __init__(self, name: str, jitted, cacheable=lambda static: True):
        """``cacheable(static)`` says whether a call with these static arguments may be cached
        (e.g. not one whose static arguments hold a host callback); the checks every program
        needs (concrete arguments, no caller's trace, trusted code) are this cache's own."""
        self.name, self._jitted, self._cacheable = name, jitted, cacheable
        self._loaded, self.stats = {}, CacheStats()

    def entry(self, args, static):
        """The key of ``jitted(*args, **static)``, or None when the call is not cacheable."""
        return _Entry.of(self.name, args, static) if self._cacheable(static) else None

    def __call__(self, args, static) -> tuple:
        """``(outputs, compiled)``: the program's outputs and whether this call compiled it."""
        directory = _usable_directory()
        entry = None if directory is None else self.entry(args, static)
        if entry is None:
            self.stats.bypassed += 1
            before = self._jitted._cache_size()
            return self._jitted(*args, **static), self._jitted._cache_size() > before
        program = self._loaded.get(entry.digest)
        if program is not None:
            self.stats.reused += 1
            return program(*args), False
        program = entry.load(directory)
        if program is not None:
            try:  # run to the end here: a program that cannot run fails when it runs
                outputs = jax.block_until_ready(program(*args))
            except Exception:  # noqa: BLE001 - unusable in this process: compile afresh
                entry.remove(directory)
            else:
                self._remember(entry.digest, program)
                self.stats.loaded += 1
                return outputs, False
        lowered = self._jitted.lower(*args, **static)
        with _persistent_cache_unused():
            program = lowered.compile()
        self.stats.compiled += 1
        self._remember(entry.digest, program)
        entry.store(directory, program)
        return program(*args), True

    def _remember(self, digest: str, program) -> None:
        self._loaded.pop(digest, None)
        self._loaded[digest] = program
        while len(self._loaded) > MAX_IN_MEMORY:
            self._loaded.pop(next(iter(self._loaded)))


@dataclasses.dataclass
class _Entry:
    """One program's key: its ingredients (module docstring) and their digest."""

    statics: bytes
    in_tree: object
    leaves: tuple
    environment: tuple
    digest: str

    @classmethod
    def of(cls, name, args, static):
        """The key of ``jitted(*args, **static)``, or None when the call is not cacheable."""
        if (is_traced(args) or not jax_core.trace_state_clean()  # inside a caller's jit/vmap/grad
                or jax_config.disable_jit.value):
            return None
        try:
            statics = pickle.dumps(static, protocol=4)
            if not _trusted(statics):
                return None
            leaves, in_tree = jax.tree_util.tree_flatten(args)
            device = jax.devices()[0]
            described = tuple(_describe(leaf, device) for leaf in leaves)
            environment = (FORMAT, name, _source_digest(), *_platform(), *_settings())
        except Exception:  # noqa: BLE001 - anything unpicklable or unusual: not cached
            return None
        if None in described:
            return None
        text = repr((environment, str(in_tree), described)).encode() + statics
        return cls(statics, in_tree, described, environment, hashlib.sha256(text).hexdigest())

    def load(self, directory: Path):
        """The stored program, after checking that every ingredient is equal; else None."""
        path = directory / f"{self.digest}.exe"
        try:
            stored = _restricted_loads(path.read_bytes())
            if (stored["statics"], stored["in_tree"], stored["leaves"], stored["environment"]) != (
                    self.statics, self.in_tree, self.leaves, self.environment):
                return None
            program = serialize_executable.deserialize_and_load(
                stored["payload"], stored["in_tree_call"], stored["out_tree"])
            os.utime(path)  # recently used
            return program
        except Exception:  # noqa: BLE001 - missing, partial, corrupt or foreign: not used
            return None

    def remove(self, directory: Path) -> None:
        """Deletes the entry (one that failed to run)."""
        (directory / f"{self.digest}.exe").unlink(missing_ok=True)

    def store(self, directory: Path, program) -> None:
        """Writes ``program`` under the digest, atomically; any failure leaves no entry."""
        try:
            payload, in_tree_call, out_tree = serialize_executable.serialize(program)
            blob = pickle.dumps({"statics": self.statics, "in_tree": self.in_tree, "leaves": self.leaves,
                                 "environment": self.environment, "payload": payload,
                                 "in_tree_call": in_tree_call, "out_tree": out_tree}, protocol=4)
            _restricted_loads(blob)  # what cannot be read back is not written
        except Exception:  # noqa: BLE001 - e.g. an executable JAX cannot serialize
            return
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(blob)
            os.replace(temporary, directory / f"{self.digest}.exe")
            _evict(directory)
        except OSError:  # e.g. a full disk: no entry
            Path(temporary).unlink(missing_ok=True)


@contextlib.contextmanager
def _persistent_cache_unused():
    """JAX's persistent compilation cache is neither read nor written within the block (process
    wide): an executable it loaded runs, but serialized again it lacks functions that a new
    process then does not find (``NOT_FOUND: Function ... not found``, jaxlib 0.10 on CPU)."""
    restart_cache()  # JAX decides once whether the cache is used; ask again
    try:
        with jax_config.enable_compilation_cache(False):
            yield
    finally:
        restart_cache()


def _describe(leaf, device):
    """``(dtype, shape, weak_type)`` of a concrete leaf on ``device`` (or on the host), else None."""
    if isinstance(leaf, jax.Array):
        if leaf.sharding.device_set != {device}:
            return None
        aval = leaf.aval
    else:
        aval = jax.typeof(leaf)
    return (str(aval.dtype), tuple(aval.shape), bool(aval.weak_type))


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] not in TRUSTED_MODULES:
            raise pickle.UnpicklingError(f"{module}.{name} is not emjax's")
        return super().find_class(module, name)


def _restricted_loads(data: bytes):
    return _RestrictedUnpickler(io.BytesIO(data)).load()


@functools.lru_cache(maxsize=256)
def _trusted(statics: bytes) -> bool:
    """Whether pickled static arguments name only code of :data:`TRUSTED_MODULES`."""
    try:
        _restricted_loads(statics)
    except Exception:  # noqa: BLE001 - pickle.UnpicklingError, or a class that will not rebuild
        return False
    return True


@functools.cache
def _source_digest() -> str:
    """SHA-256 of every ``.py`` file of the emjax package (paths and contents)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _platform() -> tuple:
    """Versions, backend and devices."""
    devices = jax.devices()
    return (jax.__version__, jaxlib.version.__version__, devices[0].client.platform,
            devices[0].client.platform_version,
            tuple((d.platform, d.device_kind, d.id) for d in devices))


def _settings() -> tuple:
    """Every JAX setting and tracing context that could change a program, and ``XLA_FLAGS``, as
    text; raises (not cacheable) for a value that has no stable text (a mesh or other context
    object)."""
    return _settings_text((tuple(zip(jax_config.trace_context_names(), jax_config.trace_context())),
                           tuple(jax.config.values.items()), os.environ.get("XLA_FLAGS", "")))


@functools.lru_cache(maxsize=16)
def _settings_text(settings) -> tuple:
    context, config_values, xla_flags = settings
    if dict(config_values).get("jax_disable_most_optimizations"):
        # XLA's CPU programs compiled so call functions that a new process lacks (NOT_FOUND)
        raise ValueError("programs compiled without optimisations cannot be reloaded")
    values = [(name, value) for name, value in context
              if name != "axis_env_state"]  # empty outside a trace (checked apart)
    values += sorted((name, value) for name, value in config_values
                     if not any(part in name for part in _UNRELATED_SETTINGS))
    values.append(("XLA_FLAGS", xla_flags))
    described = tuple((name, repr(value)) for name, value in values)
    if any(" at 0x" in text for _, text in described):
        raise ValueError("a setting without a stable text")
    return described


def _usable_directory() -> Path | None:
    """:func:`cache_dir`, created readable by its owner only, if it is the user's and nobody else
    may write to it; else None (the cache is off)."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except OSError:  # e.g. a read-only home directory
        return None
    return directory if info.st_uid == os.getuid() and not info.st_mode & 0o022 else None


def _evict(directory: Path) -> None:
    """Removes the least recently used entries while the directory exceeds MAX_CACHE_BYTES."""
    entries = [(info.st_mtime, info.st_size, p)
               for p in directory.glob("*.exe") for info in [p.stat()]]
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= MAX_CACHE_BYTES:
            break
        path.unlink(missing_ok=True)
        total -= size
