r"""The plan: every choice of how a fit computes, made once, from the shapes, dtype, backend and
whether the call is traced.

A :class:`Plan` is a frozen, hashable value: :func:`emjax.em` and :func:`emjax.fit` pass it to
their compiled programs as a static argument, so it is part of the compile key, and its ``repr``
shows what a fit will do. Models receive their part of it, a :class:`Formulation`, through
:meth:`emjax.Model.with_formulation` (a static field of the model): no switch is read while
tracing. This is the only module that asks JAX for its backend.

The choices, and why:

* ``chunk_size``: rows per E-step chunk, so that one chunk's temporaries times the restarts
  ``vmap``-ed over it fit a budget (about the caches on a CPU, :data:`CPU_CHUNK_BUDGET`; large on
  accelerators, where a chunk should fill the device).
* ``restart_block``: on a CPU, restarts run in blocks when one restart's E-step fits
  :data:`RESTART_BLOCK_BUDGET` (:func:`restart_block_size`); ``init_batch``: restarts whose
  starting points are drawn at once.
* ``formulation.one_pass``: on a CPU, in a program of its own, full/tied Gaussian statistics of
  up to 4 features are taken as one variadic reduction (:mod:`emjax.core.row_sums`), compiled with
  :data:`emjax.core.row_sums.REASSOCIATING_COMPILER_OPTIONS`.
* ``formulation.unbatched``: one restart with no ``vmap`` above it (``n_init=1``, not traced): a
  model may branch per restart with ``lax.cond`` (``GaussianMixture``'s guarded expanded E-step).
* ``formulation.per_component``: diag/spherical Gaussian forms one component at a time (CPU) or
  all at once (accelerators).
* ``lean_compile``: concrete data of at least 64 MiB on CPU devices compile with XLA's older loop
  emitters (:mod:`emjax.core.xla_options`).

Inside a caller's ``jit``/``vmap``/``grad`` the program is traced into the caller's, compiled with
the caller's options: the plan then takes the batched, separate-reduction forms.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from .row_sums import REASSOCIATING_COMPILER_OPTIONS
from .tree import is_traced

#: Elements of temporary memory one chunk may use, summed over everything vmapped above it: on a
#: CPU about the size of the caches; on a GPU or TPU large enough that each chunk fills the device
#: (thousands of tiny chunks would each pay a kernel launch).
CPU_CHUNK_BUDGET = 1 << 21
ACCELERATOR_CHUNK_BUDGET = 1 << 27
MIN_CHUNK = 128

#: On a CPU, restarts run in blocks when one restart's E-step over all rows (rows x work per row)
#: fits this many elements: each block holds as many restarts as fit, and reads the rows whole.
#: (W1: 5,000 rows, D=2, K=8, 256 restarts run as 5 blocks of 52, about 1.6x less time per
#: iteration than 256 at once in 125-row chunks; smaller chunks or larger blocks were slower.)
RESTART_BLOCK_BUDGET = 1 << 24

#: XLA debug options of the lean compilation (CPU only).
LEAN_CPU_COMPILE = {"xla_cpu_use_fusion_emitters": False}

#: Data of at least this many bytes, on CPU, are fitted by a program compiled with
#: :data:`LEAN_CPU_COMPILE`.
LEAN_COMPILE_MIN_BYTES = 1 << 26


def on_cpu() -> bool:
    """Whether JAX's default backend is the CPU (the one place emjax asks)."""
    return jax.default_backend() == "cpu"


def default_chunk_budget() -> int:
    """The chunk budget for JAX's default backend."""
    return CPU_CHUNK_BUDGET if on_cpu() else ACCELERATOR_CHUNK_BUDGET


def _check_bool(value, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")


@dataclasses.dataclass(frozen=True)
class Formulation:
    """How a model's E-step computes (a model's static field; see the module docstring).

    Args:
        one_pass: statistics as one variadic reduction (only fast in a program compiled with
            :data:`emjax.core.row_sums.REASSOCIATING_COMPILER_OPTIONS`).
        unbatched: no ``vmap`` batches the restart, so a ``lax.cond`` per restart skips a branch.
        per_component: diag/spherical forms one component at a time; None: the backend's choice
            (True on a CPU).

    Examples:
        >>> import emjax
        >>> emjax.Formulation(unbatched=True)
        Formulation(one_pass=False, unbatched=True, per_component=None)
    """

    one_pass: bool = False
    unbatched: bool = False
    per_component: bool | None = None

    def __post_init__(self):
        for name in ("one_pass", "unbatched"):
            _check_bool(getattr(self, name), f"Formulation.{name}")
        if self.per_component is not None:
            _check_bool(self.per_component, "Formulation.per_component")

    def components_one_at_a_time(self) -> bool:
        """``per_component``, or the backend's choice where it is None."""
        return on_cpu() if self.per_component is None else self.per_component


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every choice of how :func:`emjax.fit` or :func:`emjax.em` computes (module docstring).

    Build one with :func:`emjax.make_plan` and change it with ``dataclasses.replace``; pass it as
    ``plan=`` to force a path. Equal plans share one compiled program.

    Args:
        chunk_size: rows per E-step chunk.
        restart_block: restarts ``vmap``-ed at once (1: one at a time; ``n_init``: all at once).
        init_batch: restarts whose starting points are drawn at once.
        formulation: the models' E-step choices (:class:`Formulation`).
        lean_compile: compile with :data:`LEAN_CPU_COMPILE` (and trim the heap after compiling).

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()
        >>> plan = emjax.make_plan(emjax.GaussianMixture(2), X, n_init=1)
        >>> plan.restart_block, plan.formulation.unbatched
        (1, True)
        >>> res = emjax.fit(emjax.GaussianMixture(2), X, jax.random.key(0), plan=plan)
        >>> emjax.Status(int(res.status)).name
        'CONVERGED'
    """

    chunk_size: int
    restart_block: int = 1
    init_batch: int = 1
    formulation: Formulation = Formulation()
    lean_compile: bool = False

    def __post_init__(self):
        for name in ("chunk_size", "restart_block", "init_batch"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Plan.{name} must be a positive integer; got {value!r}.")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.formulation, Formulation):
            raise TypeError(f"Plan.formulation must be an emjax.Formulation; got "
                            f"{type(self.formulation).__name__}.")
        _check_bool(self.lean_compile, "Plan.lean_compile")

    @property
    def compiler_options(self) -> dict:
        """XLA options of the plan's own program (a caller's trace ignores them)."""
        options = dict(REASSOCIATING_COMPILER_OPTIONS) if self.formulation.one_pass else {}
        return {**options, **(LEAN_CPU_COMPILE if self.lean_compile else {})}


def checked_plan(plan, *, chunk_size, n_rows: int, groups: int = 1, where: str) -> Plan:
    """A user's ``plan=`` for a call on ``n_rows`` rows (this process's) with ``groups`` device
    groups splitting the restarts: its chunk size capped at ``n_rows``; a clear error, naming
    ``where``, for anything but a :class:`Plan`, for a ``chunk_size`` given beside it, or for
    restart blocks that do not split evenly over the groups."""
    if not isinstance(plan, Plan):
        raise TypeError(f"{where}: plan must be an emjax.Plan (emjax.make_plan builds one); got "
                        f"{type(plan).__name__}.")
    if chunk_size is not None:
        raise ValueError(f"{where}: pass chunk_size or plan, not both (the plan holds "
                         f"chunk_size={plan.chunk_size}; change it with dataclasses.replace).")
    if plan.restart_block % groups:
        raise ValueError(f"{where}: plan.restart_block={plan.restart_block} must be a multiple of "
                         f"{groups}, the number of device groups that split the restarts.")
    return dataclasses.replace(plan, chunk_size=min(plan.chunk_size, n_rows))


def choose_plan(model, data, *, n_init: int, n_rows: int, traced: bool, groups: int = 1,
                chunk_size: int | None = None, block_budget: int | None = None,
                chunk_budget: int | None = None) -> Plan:
    """The plan for ``n_init`` restarts of ``model`` on ``data`` (prepared, ``n_rows`` rows on
    this process), ``groups`` device groups splitting the restarts; ``traced``: inside a
    caller's ``jit``/``vmap``/``grad``. ``chunk_size`` (the user's) overrides the chunk rule;
    ``block_budget`` and ``chunk_budget`` replace :data:`RESTART_BLOCK_BUDGET` and
    :func:`default_chunk_budget` (probes and tests)."""
    block_budget = RESTART_BLOCK_BUDGET if block_budget is None else block_budget
    chunk_budget = default_chunk_budget() if chunk_budget is None else chunk_budget
    cpu = on_cpu()
    formulation = Formulation(one_pass=cpu and not traced, unbatched=n_init == 1 and not traced,
                              per_component=cpu)
    n, work = n_rows, model.with_formulation(formulation).work_per_row(data)
    block = restart_block_size(n_init, n, work, groups, block_budget, chunk_budget)
    if block is None:  # all restarts at once, rows in chunks
        block = n_init
        chunk = min(chunk_size or choose_chunk_size(n, work, batch=n_init, budget=chunk_budget), n)
    else:  # a block reads its rows whole if they fit the block budget (always, unless one a time)
        per_block = block // groups
        whole = n * work * per_block <= block_budget
        chunk = min(chunk_size or (n if whole else choose_chunk_size(n, work, batch=per_block,
                                                                     budget=chunk_budget)), n)
    init_batch = min(n_init, max(1, chunk_budget // max(1, n * work)))
    return Plan(chunk_size=chunk, restart_block=block, init_batch=init_batch, formulation=formulation,
                lean_compile=not traced and lean_compile(data))


def choose_chunk_size(n: int, work_per_row: int, batch: int = 1, budget: int | None = None) -> int:
    """Rows per chunk so that ``chunk * work_per_row * batch <= budget`` (at least MIN_CHUNK);
    ``budget`` defaults to :func:`default_chunk_budget`.

    Returns ``n`` when all rows fit in one chunk. Chunks are balanced: the last one is at most
    one row per chunk shorter than the others.
    """
    budget = default_chunk_budget() if budget is None else budget
    per_chunk = max(MIN_CHUNK, budget // max(1, work_per_row * batch))
    if per_chunk >= n:
        return n
    n_chunks = math.ceil(n / per_chunk)
    return math.ceil(n / n_chunks)


def restart_block_size(n_init: int, n: int, work_per_row: int, groups: int = 1,
                       block_budget: int | None = None, chunk_budget: int | None = None) -> int | None:
    """Restarts per block, or None to run all restarts at once with the rows in chunks (on
    accelerators, for one restart per device group, or when one restart's rows exceed
    ``block_budget`` (:data:`RESTART_BLOCK_BUDGET`) but a chunk of ``MIN_CHUNK`` rows of every
    restart fits ``chunk_budget`` (:func:`default_chunk_budget`)). Where even that chunk would
    overflow the budget (an HMM's rows are whole sequences), restarts run one at a time, their
    rows in chunks: batching them only multiplies a working set already out of cache (W4R-like
    HMM, 64 x 1,000 steps, K=8, 16 restarts: 2.2x less wall time and 3x less CPU time than all at
    once; a 200k x 16, K=16 GMM with 4 restarts, whose chunks fit, was 7% slower one at a time,
    so it stays batched).

    ``groups`` device groups split the restarts (``n_init`` is a multiple of it); a block holds
    the same number of restarts per group. Blocks are balanced: ``ceil(n_init / block)`` blocks,
    the last padded by fewer restarts than there are blocks.
    """
    block_budget = RESTART_BLOCK_BUDGET if block_budget is None else block_budget
    chunk_budget = default_chunk_budget() if chunk_budget is None else chunk_budget
    per_group = n_init // groups
    if not on_cpu() or per_group < 2:
        return None
    fits = block_budget // max(1, n * work_per_row)
    if fits >= 1:
        return balanced_block(per_group, fits) * groups
    if chunk_budget // max(1, work_per_row * per_group) >= MIN_CHUNK:
        return None
    return groups


def balanced_block(n_init: int, most: int) -> int:
    """The smallest block size that needs as few blocks of at most ``most`` restarts as possible."""
    n_blocks = -(-n_init // min(max(1, most), n_init))
    return -(-n_init // n_blocks)


def lean_compile(data) -> bool:
    """True for data on CPU devices of at least :data:`LEAN_COMPILE_MIN_BYTES` (arrays or
    ``jax.ShapeDtypeStruct`` s; False under a trace, where an outer program is compiled)."""
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves or is_traced(leaves):
        return False
    devices = lambda x: (x.sharding.device_set if getattr(x, "sharding", None) is not None
                         else jax.devices())
    cpu = all(d.platform == "cpu" for x in leaves for d in devices(x))
    size = sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves)
    return cpu and size >= LEAN_COMPILE_MIN_BYTES
