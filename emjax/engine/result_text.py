"""Short text for fit results at the prompt: a ``repr`` of a few lines at any number of restarts,
statuses by name, and :meth:`emjax.FitResult.summary`'s table. Host-side only; traced or batched
fields are shown by dtype and shape."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ..core.status import Status, describe


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall time of a host-side fit: ``seconds`` for the whole call, ``compiled`` whether the call
    compiled its program (or loaded it from JAX's persistent cache) rather than reusing one in
    memory, and ``compile_seconds`` when known (``verbose=`` fits and :func:`emjax.timed_fit`).
    A pytree with no leaves, so a :class:`emjax.FitResult` holding one maps as before."""

    seconds: float
    compiled: bool
    compile_seconds: float | None = None


jax.tree_util.register_static(Timing)


def array_text(x) -> str:
    """``f32[3,4]``-style dtype and shape of an array (or tracer)."""
    dtype = np.dtype(getattr(x, "dtype", np.asarray(x).dtype))
    short = {"f": "f", "i": "i", "u": "u", "b": "bool"}.get(dtype.kind, dtype.name)
    bits = "" if dtype.kind == "b" else str(dtype.itemsize * 8)
    return f"{short}{bits}[{','.join(map(str, np.shape(x)))}]"


def concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def scalar_text(x, fmt: str = ".6g") -> str:
    """A concrete scalar's value; anything else (a batch, a tracer) by dtype and shape."""
    if concrete(x) and np.ndim(x) == 0:
        return format(np.asarray(x).item(), fmt)
    return array_text(x)


def status_text(status) -> str:
    """A status code's name; a batch of them as counts (``'9 CONVERGED, 1 MAX_ITER'``)."""
    if not concrete(status):
        return array_text(status)
    if np.ndim(status) == 0:
        return Status(int(status)).name
    return describe(status)


def status_names(status):
    """Names of status codes: a str for one, an array of str for a batch."""
    codes = np.asarray(status)
    names = np.vectorize(lambda c: Status(int(c)).name, otypes=[object])(codes)
    return names.item() if codes.ndim == 0 else names.astype(str)


def params_text(params) -> str:
    """``GMMParams(weights=f64[3], means=f64[3,4], ...)``: every leaf by dtype and shape."""
    if hasattr(params, "_fields"):
        inner = ", ".join(f"{name}={params_text(getattr(params, name))}" for name in params._fields)
        return f"{type(params).__name__}({inner})"
    if params is None:
        return "None"
    leaves = jax.tree_util.tree_leaves(params)
    if len(leaves) == 1 and leaves[0] is params:
        return array_text(params)
    return f"{type(params).__name__}({', '.join(array_text(x) for x in leaves)})"


def em_result_repr(result) -> str:
    """Two or three lines for an :class:`emjax.EMResult` (one restart or a batch)."""
    return (f"EMResult(status={status_text(result.status)}, objective={scalar_text(result.objective)}, "
            f"log_likelihood={scalar_text(result.log_likelihood)}, n_iter={scalar_text(result.n_iter, 'd')},\n"
            f"         n_estep={scalar_text(result.n_estep, 'd')}, history={array_text(result.history)},\n"
            f"         params={params_text(result.params)})")


def fit_result_repr(result) -> str:
    """A few lines for an :class:`emjax.FitResult`, whatever its number of restarts."""
    n_init = np.shape(result.restarts.status)[-1] if np.ndim(result.restarts.status) else 1
    timing = result.timing
    time = "" if timing is None else f", seconds={timing.seconds:.3g}"
    return (f"FitResult(status={status_text(result.status)}, objective={scalar_text(result.objective)}, "
            f"log_likelihood={scalar_text(result.log_likelihood)}, n_iter={scalar_text(result.n_iter, 'd')},\n"
            f"          best_index={scalar_text(result.best_index, 'd')}, restarts={n_init} "
            f"({status_text(result.restarts.status)}){time},\n"
            f"          params={params_text(result.params)})")


def fit_summary(result) -> str:
    """The table of :meth:`emjax.FitResult.summary`."""
    r = result.restarts
    if not all(concrete(x) for x in (result.objective, r.status, r.objective, r.n_iter)):
        raise ValueError("summary() needs a concrete result (outside jit/vmap).")
    if np.ndim(result.objective) != 0:
        raise ValueError(f"summary() is for one fit; this result holds a batch of shape "
                         f"{np.shape(result.objective)}: index it first.")
    statuses, objectives, iters = (np.asarray(x) for x in (r.status, r.objective, r.n_iter))
    healthy = np.isin(statuses, [Status.CONVERGED, Status.MAX_ITER]) & np.isfinite(objectives)
    rows = [("restarts", f"{statuses.size}"),
            ("best restart", f"{int(result.best_index)} ({Status(int(result.status)).name})"),
            ("best objective", f"{float(result.objective):.6g}"),
            ("log-likelihood", f"{float(result.log_likelihood):.6g} (mean per sample)")]
    if healthy.sum() > 1:
        spread = objectives[healthy]
        rows.append(("healthy objectives", f"median {np.median(spread):.6g}, worst {spread.min():.6g}"))
    rows += [("statuses", describe(statuses)),
             ("iterations", f"best {int(result.n_iter)}; over restarts min {iters.min()}, "
                            f"median {np.median(iters):g}, max {iters.max()}")]
    timing = result.timing
    if timing is not None:
        detail = (f"compiling {timing.compile_seconds:.3g} s" if timing.compile_seconds is not None
                  else "compiled this call" if timing.compiled else "reused a compiled program")
        rows.append(("wall time", f"{timing.seconds:.3g} s ({detail})"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
