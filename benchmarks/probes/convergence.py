"""E-steps and wall time to a fixed objective: plain EM against SQUAREM-accelerated EM.

Usage::

    python benchmarks/probes/convergence.py                      # every problem, float64
    python benchmarks/probes/convergence.py --problems gmm-overlap-diag --gap 1e-8 --out /tmp/conv.jsonl

For each problem, both methods start from the same parameters. A long SQUAREM run finds the best
objective ``f*``; the target is ``f* - gap`` (mean per-sample objective). Each method's history
gives the first iteration that reaches the target; the method then runs again for exactly that
many iterations (``tol=0``), timed apart from compilation (:func:`emjax.timed_fit`), and reports its
E-step evaluations (``n_estep``), iterations, run and compile seconds. A method that does not reach
the target within ``--max-iter`` iterations is reported as such.

Adding a model family (HMM, PLSA, ...): write a function ``(size, seed) -> Problem`` and add it to
:data:`PROBLEMS`; nothing else changes.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

import emjax

METHODS = {"plain EM": None, "SQUAREM": "squarem"}


class Problem(NamedTuple):
    """One benchmark problem: a model, its data and one starting point (a single restart)."""

    model: Any
    data: Any
    start: Any
    weights: Any = None


def _single_start(model, data, seed):
    starts = emjax.init_restarts(model, data, jax.random.key(seed), n_init=1)
    return jax.tree_util.tree_map(lambda a: a[0], starts)


def gmm_overlap(covariance_type: str, n_components: int, n_features: int) -> Callable[[int, int], Problem]:
    """Gaussian clusters whose means are about one standard deviation apart: EM's slow case."""

    def make(size: int, seed: int) -> Problem:
        rng = np.random.default_rng(seed)
        means = rng.normal(scale=0.6, size=(n_components, n_features))
        labels = rng.integers(n_components, size=size)
        x = means[labels] + rng.normal(size=(size, n_features))
        model = emjax.GaussianMixture(n_components, covariance_type=covariance_type)
        return Problem(model, x, _single_start(model, x, seed))

    return make


def hmm_overlap(size: int, seed: int) -> Problem:
    """``size`` sequences of 100 steps from a sticky 3-state Gaussian HMM whose state means are
    one standard deviation apart."""
    rng = np.random.default_rng(seed)
    k, t, d = 3, 100, 2
    means = rng.normal(scale=0.8, size=(k, d))
    transitions = np.full((k, k), 0.1 / (k - 1)) + np.eye(k) * (0.9 - 0.1 / (k - 1))
    states = np.zeros((size, t), int)
    states[:, 0] = rng.integers(k, size=size)
    for step in range(1, t):
        u = rng.uniform(size=(size, 1))
        states[:, step] = (u > np.cumsum(transitions[states[:, step - 1]], axis=1)).sum(axis=1)
    x = means[states] + rng.normal(size=(size, t, d))
    model = emjax.GaussianHMM(k, covariance_type="diag")
    return Problem(model, x, _single_start(model, x, seed))


def plsa_overlap(size: int, seed: int) -> Problem:
    """``size`` documents of 80 words from 5 topics over 200 words that share most of their mass."""
    rng = np.random.default_rng(seed)
    topics = rng.dirichlet(np.full(200, 0.5), size=5)
    mix = rng.dirichlet(np.full(5, 0.5), size=size)
    counts = np.stack([rng.multinomial(80, m @ topics) for m in mix])
    model = emjax.PLSA(5)
    return Problem(model, counts, _single_start(model, counts, seed))


#: name -> ``(size, seed) -> Problem``; ``size`` is the number of rows (or sequences, documents).
PROBLEMS: dict[str, Callable[[int, int], Problem]] = {
    "gmm-overlap-diag": gmm_overlap("diag", 2, 2),
    "gmm-overlap-full": gmm_overlap("full", 3, 3),
    "gmm-overlap-spherical": gmm_overlap("spherical", 4, 5),
    "hmm-overlap": hmm_overlap,
    "plsa-overlap": plsa_overlap,
}


def _history(problem: Problem, accelerator, max_iter: int):
    result = emjax.fit(problem.model, problem.data, jax.random.key(0), weights=problem.weights,
                       init_params=_batched(problem.start), max_iter=max_iter, tol=0.0,
                       accelerator=accelerator, throw=False)
    history = np.asarray(result.history, dtype=float)
    return history[np.isfinite(history)]


def _batched(params):
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[None], params)


def measure(name: str, problem: Problem, *, gap: float, max_iter: int) -> list[dict]:
    """One record per method: iterations, E-steps and seconds to reach ``f* - gap``."""
    best = max(_history(problem, accelerator, max_iter).max() for accelerator in METHODS.values())
    target = best - gap
    records = []
    for method, accelerator in METHODS.items():
        history = _history(problem, accelerator, max_iter)
        reached = np.flatnonzero(history >= target)
        record = {"problem": name, "method": method, "target": target, "gap": gap}
        if reached.size == 0:
            records.append({**record, "reached": False, "n_iter": len(history),
                            "best_objective": float(history.max())})
            continue
        n_iter = int(reached[0]) + 1
        result, compile_s, run_s = emjax.timed_fit(
            problem.model, problem.data, jax.random.key(0), weights=problem.weights,
            init_params=_batched(problem.start), max_iter=n_iter, tol=0.0, accelerator=accelerator,
            throw=False)
        records.append({**record, "reached": True, "n_iter": n_iter, "n_estep": int(result.n_estep),
                        "run_s": run_s, "compile_s": compile_s, "objective": float(result.objective)})
    return records


def table(records: list[dict]) -> str:
    lines = ["| problem | method | iterations | E-steps | run s | compile s | E-step ratio |",
             "|---|---|---|---|---|---|---|"]
    plain = {r["problem"]: r for r in records if r["method"] == "plain EM"}
    for r in records:
        if not r["reached"]:
            lines.append(f"| {r['problem']} | {r['method']} | > {r['n_iter']} (target not reached) "
                         "| | | | |")
            continue
        base = plain.get(r["problem"], {})
        ratio = f"{base['n_estep'] / r['n_estep']:.1f}x" if base.get("reached") else ""
        lines.append(f"| {r['problem']} | {r['method']} | {r['n_iter']} | {r['n_estep']} | "
                     f"{r['run_s']:.3f} | {r['compile_s']:.2f} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated subset of "
                   + ",".join(PROBLEMS))
    p.add_argument("--size", type=int, default=5000, help="rows per problem")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gap", type=float, default=1e-6, help="target = best objective - gap (per sample)")
    p.add_argument("--max-iter", type=int, default=20000)
    p.add_argument("--float32", action="store_true", help="run in float32 (default: float64)")
    p.add_argument("--out", help="also append the records as JSON lines to this file")
    args = p.parse_args(argv)
    names = [s.strip() for s in args.problems.split(",") if s.strip()]
    for name in names:
        if name not in PROBLEMS:
            p.error(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)}")
    records = []
    with jax.enable_x64(not args.float32):
        for name in names:
            problem = PROBLEMS[name](args.size, args.seed)
            records += measure(name, problem, gap=args.gap, max_iter=args.max_iter)
    print(f"float{'32' if args.float32 else '64'}, target = best objective - {args.gap:g} per sample, "
          f"{args.size} rows, device {jax.devices()[0].platform}")
    print(table(records))
    if args.out:
        with open(args.out, "a") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")
    return records


if __name__ == "__main__":
    main(sys.argv[1:])
