r"""Data sharded over devices and hosts: rows split over a mesh axis, statistics all-reduced.

An E-step returns sums over rows, so with the rows split over the devices of a mesh axis
(``NamedSharding(mesh, P("data"))``) each device sums its own rows, in chunks, and one all-reduce
adds the small per-device statistics:

.. math::
    S(\theta) = \sum_{d=1}^{D} \sum_{n \in \text{rows}(d)} w_n \, s(x_n; \theta).

The data never move. Restarts may be split over the mesh's other axes (each group of devices
holding a full copy of the rows along those axes runs its share of the restarts). Several hosts
work the same way once ``jax.distributed.initialize`` has made their devices one mesh.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from ..core.chunking import chunked_sum, n_rows
from ..core.tree import float_dtype, is_traced
from ..core.validation import as_float_array, check_finite, check_weights


class RowSharding(NamedTuple):
    """Static description of data whose rows are split over ``axis`` of ``mesh`` (hashable)."""

    mesh: Mesh
    axis: str | tuple

    @property
    def axis_names(self) -> tuple:
        return self.axis if isinstance(self.axis, tuple) else (self.axis,)

    @property
    def n_shards(self) -> int:
        return math.prod(self.mesh.shape[a] for a in self.axis_names)

    @property
    def restart_axes(self) -> tuple:
        """The mesh's other axes of size > 1: restarts are split over them."""
        return tuple(a for a in self.mesh.axis_names
                     if a not in self.axis_names and self.mesh.shape[a] > 1)

    @property
    def n_restart_groups(self) -> int:
        return math.prod(self.mesh.shape[a] for a in self.restart_axes)


def row_sharding_of(data) -> RowSharding | None:
    """The :class:`RowSharding` of concrete ``data`` placed with a ``NamedSharding`` that splits
    its rows over more than one device; None for data on one device, replicated rows or tracers."""
    leaf = jax.tree_util.tree_leaves(data)[0]
    if is_traced(leaf) or not isinstance(leaf, jax.Array):
        return None
    sharding = leaf.sharding
    if not isinstance(sharding, NamedSharding) or len(sharding.device_set) == 1:
        return None
    axis = sharding.spec[0] if len(sharding.spec) else None
    if axis is None:
        return None
    rows = RowSharding(sharding.mesh, axis)
    _check_auto(rows.mesh)
    return rows if rows.n_shards > 1 else None


def local_rows(n: int, rows: RowSharding | None) -> int:
    """Rows each device holds."""
    return n if rows is None else n // rows.n_shards


def row_sum(fn, params, data, weights, chunk_size: int, rows: RowSharding | None):
    """``sum_n fn(params, data[n], weights[n])`` over all rows, in chunks of ``chunk_size``.

    Without ``rows`` this is :func:`emjax.core.chunking.chunked_sum`. With ``rows`` every device runs
    it on its own rows inside ``jax.shard_map`` and ``lax.psum`` adds the results: the compiled
    program all-reduces the statistics and never gathers the data.
    """
    if rows is None:
        return chunked_sum(functools.partial(fn, params), data, weights, chunk_size)
    spec = P(rows.axis)

    def per_device(p, x, w):
        total = chunked_sum(functools.partial(fn, p), x, w, min(chunk_size, n_rows(x)))
        return jax.lax.psum(total, rows.axis)

    return jax.shard_map(per_device, mesh=rows.mesh, in_specs=(P(), spec, spec),
                         out_specs=P(), check_vma=False)(params, data, weights)


def shard(data, mesh: Mesh, weights=None, *, axis: str = "data", model=None):
    """Places rows of ``data`` (and their weights) split over ``axis`` of ``mesh``.

    ``data`` is one array of rows or a pytree of arrays sharing the leading (row) axis, such as
    HMM sequences ``(x (s, t, d), lengths (s,))``, whose rows are sequences. Every leaf is padded
    along axis 0 with copies of its first row (valid for any model), all of weight 0 (so they
    contribute nothing to any sum), to a multiple of the axis size; always pass the returned
    weights on::

        X, w = emjax.shard(X, mesh)
        emjax.fit(model, X, key, weights=w, n_init=64)

        seqs, w = emjax.shard((x, lengths), mesh, model=hmm)  # the model's validated form
        emjax.fit(hmm, seqs, key, weights=w)

    With several processes (``jax.distributed``) each process passes its own rows (any number);
    the result is one global array (pytree) holding every process's rows, each padded to the
    largest count, in process order.

    Args:
        data: ``(n, ...)`` rows held by this process (NumPy or array-like), or a pytree of them.
        mesh: a ``jax.sharding.Mesh`` with ``AxisType.Auto`` axes (``jax.make_mesh(...,
            axis_types=(AxisType.Auto,) * ndim)``).
        weights: optional non-negative ``(n,)`` row weights (default ones).
        axis: the mesh axis the rows are split over; the mesh's other axes split restarts.
        model: optional model whose ``validate`` / ``validate_weights`` check and convert the
            rows (needed for data the model takes in a raw form, e.g. an HMM's ``(x, lengths)``).

    Returns:
        ``(data, weights)`` as global ``jax.Array`` s (data: the validated pytree) sharded
        ``P(axis)``.

    Examples:
        >>> import jax, emjax
        >>> X = emjax.datasets.load_old_faithful()          # (272, 2): eruption, waiting time
        >>> from jax.sharding import AxisType
        >>> mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
        >>> Xs, w = emjax.shard(X, mesh)                       # pads with weight-0 rows
        >>> float(w.sum())
        272.0
        >>> res = emjax.fit(emjax.GaussianMixture(2), Xs, jax.random.key(0), weights=w, n_init=4)
        >>> sorted(round(float(v), 2) for v in res.params.weights)
        [0.36, 0.64]
    """
    if axis not in mesh.axis_names:
        raise ValueError(f"axis={axis!r} is not an axis of the mesh; its axes are {mesh.axis_names}.")
    _check_auto(mesh)
    leaves, treedef = _host_rows(data, model)
    n = leaves[0].shape[0]
    w = np.asarray(check_weights(weights, n, float_dtype(leaves)))
    if model is not None:
        model.validate_weights(w)
    per_process = max(1, mesh.shape[axis] // jax.process_count())
    rows = n
    if jax.process_count() > 1:  # every process contributes the same number of rows
        rows = int(np.max(multihost_utils.process_allgather(np.array([rows]))))
    pad = rows + (-rows % per_process) - n
    sharding = NamedSharding(mesh, P(axis))
    place = lambda a, filler: jax.make_array_from_process_local_data(
        sharding, np.concatenate([a, np.repeat(filler, pad, axis=0)]))
    return (jax.tree_util.tree_unflatten(treedef, [place(a, a[:1]) for a in leaves]),
            place(w, np.zeros((1,), w.dtype)))


def _host_rows(data, model):
    """Checked host copies of the leaves of ``data`` (validated by ``model`` when given) and
    the pytree structure; the leaves must share a leading axis of at least one row."""
    if model is not None:
        data = model.validate(data)
    elif not _is_container(data):
        data = as_float_array(data, "data")
    paths, treedef = jax.tree_util.tree_flatten_with_path(data)
    if not paths:
        raise ValueError("data holds no arrays.")
    named = [("data" + jax.tree_util.keystr(path), np.asarray(leaf)) for path, leaf in paths]
    for name, leaf in named:
        if leaf.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric; got an array of dtype {leaf.dtype}.")
        if model is None and leaf.dtype.kind == "f":
            check_finite(leaf, name)
        if leaf.ndim == 0 or leaf.shape[0] == 0:
            raise ValueError(f"{name} must have at least one row; got shape {leaf.shape}.")
    first_name, first = named[0]
    for name, leaf in named[1:]:
        if leaf.shape[0] != first.shape[0]:
            raise ValueError(f"the arrays of data must share the leading (row) axis; {first_name} "
                             f"has {first.shape[0]} rows but {name} has {leaf.shape[0]}.")
    return [leaf for _, leaf in named], treedef


def _is_container(data) -> bool:
    """A pytree of arrays (tuple, NamedTuple, dict, ...); a (nested) list is one array of rows."""
    return not isinstance(data, list) and not jax.tree_util.treedef_is_leaf(
        jax.tree_util.tree_structure(data))


def _check_auto(mesh: Mesh) -> None:
    explicit = [a for a, t in zip(mesh.axis_names, mesh.axis_types) if t != AxisType.Auto]
    if explicit:
        raise ValueError(f"mesh axes {explicit} are not AxisType.Auto; emjax lets the compiler place "
                         "its intermediates: build the mesh with jax.make_mesh(shape, names, "
                         "axis_types=(jax.sharding.AxisType.Auto,) * len(names)).")
