"""Runs in a subprocess with 8 emulated CPU devices (see test_sharding.py); prints one JSON line.

Fits the same mixture from the same starts on one device and sharded over an 8-device data axis
and a 4 x 2 (data x restarts) mesh, and the same Gaussian HMM (sequences of different lengths as
rows) on one device and over 8 devices; records the largest differences and the collectives in
the compiled programs.

The sharded fits run their 4 restarts in 2 blocks (``emjax.engine.restarts.run_in_blocks``): the block budget
below holds two restarts' local rows on both meshes (126 and 251 rows per device) but not one
restart's 1003 rows, so the one-device references run all restarts at once.
"""
import json
import re

import jax
import numpy as np
from jax.sharding import AxisType

import emjax
from emjax.core.plan import choose_plan
from emjax.engine.sharding import local_rows
from emjax.core.chunking import n_rows
from emjax.engine.restarts import _fit_jit, _prepare, _trimmed
from emjax.models.hmm.model import HMMParams
from emjax import GaussianEmissionParams

N, MAX_ITER, KEY = 1003, 25, jax.random.key(0)  # 1003 rows: padded to a multiple of 8 and 4
#: A restart block budget that holds two restarts of 126 rows of the GMM (blocks on 8 devices).
BLOCK_BUDGET = 2 * 126 * emjax.GaussianMixture(3).work_per_row(np.zeros((1, 3)))


CENTRES = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 1.0], [0.0, 6.0, -1.0]]) + 100.0


def data(dtype):
    rng = np.random.default_rng(0)
    return (CENTRES[rng.integers(3, size=N)] + rng.normal(size=(N, 3))).astype(dtype)


def compiled_fit(model, x, w, start, chunk_size=32):
    """``emjax.fit``'s program compiled for sharded ``x``: its result, its all-reduce count, the
    largest dimension of every all-gather's output and its restarts per block."""
    n_init = jax.tree_util.tree_leaves(start)[0].shape[0]
    args, static = prepared(model, x, w, start, chunk_size)
    compiled = _fit_jit.lower(*args, **static).compile()
    hlo = compiled.as_text()
    shapes = re.findall(r"= (\([^=]*?\)|\S+) all-gather(?:-start)?\(", hlo)  # plain or tuple results
    gathered = [max((int(n) for dims in re.findall(r"\[([\d,]*)\]", shape) for n in dims.split(",") if n),
                    default=1) for shape in shapes]
    result = _trimmed(compiled(*args), MAX_ITER, n_init)  # fit's history buffer is bucketed
    return (result, len(re.findall(r" all-reduce(?:-start)?\(", hlo)), gathered,
            static["plan"].restart_block)


def prepared(model, x, w, start, chunk_size):
    """``fit``'s ``(args, static)`` with its plan made for :data:`BLOCK_BUDGET`."""
    n_init = jax.tree_util.tree_leaves(start)[0].shape[0]
    args, static = _prepare(model, x, KEY, n_init, w, MAX_ITER, 1e-4, chunk_size, start)
    rows = static["rows"]
    plan = choose_plan(model, args[0], n_init=static["n_init"], n_rows=local_rows(n_rows(args[0]), rows),
                       traced=False, groups=rows.n_restart_groups if rows is not None else 1,
                       chunk_size=chunk_size, block_budget=BLOCK_BUDGET)
    return args, dict(static, plan=plan)


def budget_plan(model, x, start, chunk_size):
    """The plan of an unsharded fit under :data:`BLOCK_BUDGET`."""
    return prepared(model, x, None, start, chunk_size)[1]["plan"]


def starts(x):
    """Four restarts near the true centres (few iterations: float32 rounding differences between
    sum orders stay near eps instead of accumulating over a slow climb), built without compiling."""
    shifts = np.random.default_rng(1).normal(scale=0.5, size=(4, 3, 3))
    eye = np.eye(3, dtype=x.dtype)
    return emjax.GMMParams(np.full((4, 3), 1 / 3, x.dtype), (CENTRES + shifts).astype(x.dtype),
                           np.tile(eye, (4, 3, 1, 1)))


def relative_error(got, want):
    """Largest |got - want| per leaf relative to the leaf's largest |want| (finite entries)."""
    worst = 0.0
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        a, b = np.asarray(a, float), np.asarray(b, float)
        ok = np.isfinite(b)
        scale = max(float(np.max(np.abs(b[ok]))), 1e-300)
        worst = max(worst, float(np.max(np.abs(a[ok] - b[ok]), initial=0)) / scale)
    return worst


def compare(dtype, meshes, with_em):
    """Sharded against one-device results for ``fit`` (4 restarts) and, optionally, ``em``."""
    x = data(dtype)
    model = emjax.GaussianMixture(3)
    start = starts(x)
    ref = emjax.fit(model, x, KEY, n_init=4, init_params=start, max_iter=MAX_ITER, tol=1e-4,
                    plan=budget_plan(model, x, start, 64), throw=False)
    one = jax.tree_util.tree_map(lambda a: a[0], start)
    if with_em:
        ref_em = emjax.em(model, one, x, max_iter=MAX_ITER, tol=1e-4, chunk_size=64, throw=False)
    out = {}
    for name, mesh in meshes.items():
        xs, w = emjax.shard(x, mesh)
        res, reduces, gathered, block = compiled_fit(model, xs, w, start)
        em_error = None
        if with_em and len(mesh.axis_names) == 1:
            res_em = emjax.em(model, one, xs, w, max_iter=MAX_ITER, tol=1e-4, chunk_size=32, throw=False)
            em_error = relative_error(res_em, ref_em)
        out[name] = dict(
            dtype=str(res.params.means.dtype), padded_rows=int(xs.shape[0]),
            fit_error=relative_error(res.restarts, ref.restarts), em_error=em_error,
            same_n_iter=bool(np.array_equal(res.restarts.n_iter, ref.restarts.n_iter)),
            same_status=bool(np.array_equal(res.restarts.status, ref.restarts.status)),
            statuses=[int(s) for s in res.restarts.status],
            restart_block=block,
            all_reduces=reduces, all_gather_sizes=gathered,
            rows_per_device=int(xs.shape[0]) // mesh.shape["data"])
    return out


HMM_LENGTHS = np.array([30, 17, 25, 9, 30])  # 5 sequences: padded to 8 on an 8-device axis


def hmm_data(dtype):
    """Sequences of a 2-state Gaussian HMM (far from the origin) and 2 perturbed starts."""
    truth = HMMParams(np.array([0.6, 0.4]), np.array([[0.9, 0.1], [0.2, 0.8]]),
                      GaussianEmissionParams(np.array([[0.0, 0.0], [3.0, 1.0]]) + 50.0,
                                             np.tile(np.eye(2), (2, 1, 1))))
    rng = np.random.default_rng(2)
    states = np.zeros((5, 30), int)
    for step in range(30):
        p = truth.initial if step == 0 else truth.transitions[states[:, step - 1]]
        states[:, step] = (rng.random(5)[:, None] > np.cumsum(p, axis=-1)).sum(-1)
    x = (truth.emission.means[states] + rng.normal(size=(5, 30, 2))).astype(dtype)
    shift = rng.normal(scale=0.7, size=(2, 2, 2))
    start = HMMParams(np.full((2, 2), 0.5, dtype), np.tile(np.array([[0.7, 0.3], [0.4, 0.6]], dtype), (2, 1, 1)),
                      GaussianEmissionParams((truth.emission.means + shift).astype(dtype),
                                             np.tile(np.eye(2, dtype=dtype), (2, 2, 1, 1))))
    return x, start


def compare_hmm(dtype, mesh):
    """A Gaussian HMM's sharded fit (2 restarts) against the one-device fit."""
    x, start = hmm_data(dtype)
    model = emjax.GaussianHMM(2)
    ref = emjax.fit(model, (x, HMM_LENGTHS), KEY, n_init=2, init_params=start, max_iter=MAX_ITER,
                    tol=1e-4, plan=budget_plan(model, (x, HMM_LENGTHS), start, 2), throw=False)
    seqs, w = emjax.shard((x, HMM_LENGTHS), mesh, model=model)
    res, reduces, gathered, _ = compiled_fit(model, seqs, w, start, chunk_size=None)
    return dict(dtype=str(res.params.emission.means.dtype), padded_rows=int(seqs.x.shape[0]),
                padded_lengths=[int(n) for n in seqs.lengths], padded_weights=[float(v) for v in w],
                fit_error=relative_error(res.restarts, ref.restarts),
                same_n_iter=bool(np.array_equal(res.restarts.n_iter, ref.restarts.n_iter)),
                n_iter=[int(n) for n in ref.restarts.n_iter],
                statuses=[int(s) for s in res.restarts.status],
                all_reduces=reduces, all_gather_sizes=gathered)


def errors(mesh42, mesh_explicit):
    x = data(np.float32)
    xs, w = emjax.shard(x, mesh42)
    found = {}
    for name, call in {
        "n_init_not_multiple": lambda: emjax.fit(emjax.GaussianMixture(3), xs, KEY, weights=w, n_init=3),
        "no_weights": lambda: emjax.fit(emjax.GaussianMixture(3), xs, KEY, n_init=2),
        "explicit_mesh": lambda: emjax.shard(x, mesh_explicit),
        "unknown_axis": lambda: emjax.shard(x, mesh42, axis="rows"),
    }.items():
        try:
            call()
            found[name] = None
        except ValueError as err:
            found[name] = str(err)
    return found


def main():
    def auto(shape, names):
        return jax.make_mesh(shape, names, axis_types=(AxisType.Auto,) * len(shape))

    meshes = {"data8": auto((8,), ("data",)), "data4_restarts2": auto((4, 2), ("data", "restarts"))}
    report = {"devices": jax.device_count(), "float32": compare(np.float32, meshes, with_em=True)}
    report["hmm_float32"] = compare_hmm(np.float32, meshes["data8"])
    with jax.enable_x64(True):
        report["float64"] = compare(np.float64, {"data8": meshes["data8"]}, with_em=False)
        report["hmm_float64"] = compare_hmm(np.float64, meshes["data8"])
    explicit = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    report["errors"] = errors(meshes["data4_restarts2"], explicit)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
