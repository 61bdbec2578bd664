"""Runs in ONE subprocess with 8 emulated CPU devices (see test_sharded.py): for every case named
on the command line, one EM step of ``em`` and of ``fit(n_init=2)`` with the rows sharded over an
8-device data axis (``fit`` also over a 4 x 2 data x restarts mesh), checked against the float64
reference like every other cell; prints one JSON line ``{case: error message or null}``."""
import json
import sys
import traceback

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from jax.sharding import AxisType  # noqa: E402

import emjax  # noqa: E402
from differential import paths as P  # noqa: E402
from differential.grid import SMALL, chunk_size, integer_weights  # noqa: E402
from differential.registry import BY_NAME  # noqa: E402


def run(case, meshes):
    model = case.make_model(SMALL)
    data = case.make_data(SMALL)
    inits = [case.make_start(model, data, np.random.default_rng(SMALL.seed + 10 * r)) for r in range(2)]
    w = integer_weights(case.n_rows(data), SMALL.seed)
    for name, mesh in meshes.items():
        xs, ws = emjax.shard(data, mesh, weights=w, model=model)  # the model's checks (NaN allowed
        # where it marginalises, PLSA's dense counts to triplets)
        what = f"{case.name} sharded {name}"
        if len(mesh.axis_names) == 1:
            rows = int(jax.tree_util.tree_leaves(xs)[0].shape[0]) // 8
            got = P.em_step(model, inits[0], xs, ws, chunk_size("prime", rows))
            P.check_step(case, model, SMALL, inits[0], data, w, got, 1e-9, f"{what} em")
        for r, one in enumerate(P.fit_steps(model, P.stacked(*inits), xs, ws)):
            P.check_step(case, model, SMALL, inits[r], data, w, one, 1e-9, f"{what} fit restart {r}")


def main(names):
    assert len(jax.devices()) == 8, jax.devices()
    meshes = {"data8": jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,)),
              "data4_restarts2": jax.make_mesh((4, 2), ("data", "restarts"),
                                               axis_types=(AxisType.Auto,) * 2)}
    out = {}
    for name in names:
        try:
            run(BY_NAME[name], meshes)
            out[name] = None
        except Exception as err:  # reported per case; the test shows the message
            out[name] = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)[-1500:]}"
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
