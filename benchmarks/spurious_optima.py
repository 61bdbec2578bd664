"""Evidence for the default guard against spurious optima (README "Numerics: spurious optima").

For each regularisation x data set x n_init: ARI of the winner against the labels, its smallest
component (effective rows), the smallest covariance eigenvalue (standardised units), the restart
statuses, and the gap between the winner and the best other restart. One JSON line per fit:

    python benchmarks/spurious_optima.py prior iris 10,100,1000 [--cov full] [--select]
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np
from sklearn import datasets
from sklearn.metrics import adjusted_rand_score

import emjax


def load(name):
    """``(x, labels, K)``: iris raw (recorded to 0.1 cm), wine / breast_cancer / digits standardised,
    ``rounded``: a 3-component 3-D mixture rounded to 0.1."""
    if name == "rounded":
        rng = np.random.default_rng(0)
        y = rng.integers(0, 3, 300)
        centres = np.array([[0, 0, 0], [2, 1, 0], [0, 2, 1.5]])
        return np.round(centres[y] + rng.normal(size=(300, 3)) * [0.5, 0.4, 0.6], 1), y, 3
    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine, "digits": datasets.load_digits,
              "breast_cancer": datasets.load_breast_cancer}[name]
    x, y = loader(return_X_y=True)
    if name in ("wine", "breast_cancer"):
        x = (x - x.mean(0)) / x.std(0)
    return x, y, len(np.unique(y))


def smallest_eigenvalue(cov, x, cov_type):
    """Smallest covariance eigenvalue in units of each feature's variance."""
    sd = x.std(0)
    sd = np.where(sd > 0, sd, 1)
    if cov_type == "full":
        return float(np.linalg.eigvalsh(cov / np.outer(sd, sd)).min())
    if cov_type == "diag":
        return float((cov / sd ** 2).min())
    return float(np.min(cov))


def one_fit(regularization, name, n_init, cov_type):
    x, y, k = load(name)
    model = emjax.GaussianMixture(k, cov_type, regularization=regularization)
    start = time.perf_counter()
    res = emjax.fit(model, x, jax.random.key(0), n_init=n_init, throw=False)
    seconds = time.perf_counter() - start
    p = res.params
    status = np.asarray(res.restarts.status)
    obj = np.sort(np.asarray(res.restarts.objective)[np.isin(status, [1, 2])])[::-1]
    return dict(regularization=regularization, data=name, cov=cov_type, n_init=n_init,
                ari=round(adjusted_rand_score(y, np.asarray(model.predict(p, x))), 3),
                min_rows=round(float(np.min(p.weights)) * len(x), 1),
                min_eig=float(f"{smallest_eigenvalue(np.asarray(p.covariances), x, cov_type):.3g}"),
                objective=round(float(res.objective), 4),
                runner_up=round(float(obj[1]), 4) if obj.size > 1 else None,
                median=round(float(np.median(obj)), 4) if obj.size else None,
                status=emjax.status.describe(status), seconds=round(seconds, 1))


def one_select(regularization, name, n_init):
    x, _, _ = load(name)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    res = emjax.select({"n_components": 5, "covariance_type": ["full", "diag"],
                        "regularization": regularization}, x, jax.random.key(0), n_init=n_init)
    return dict(regularization=regularization, data=name, select_n_init=n_init,
                chosen_k=res.model.n_components, chosen_cov=res.model.covariance_type)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("regularization")
    parser.add_argument("data")
    parser.add_argument("n_init")
    parser.add_argument("--cov", default="full")
    parser.add_argument("--select", action="store_true")
    args = parser.parse_args()
    for n in map(int, args.n_init.split(",")):
        row = one_select(args.regularization, args.data, n) if args.select else one_fit(
            args.regularization, args.data, n, args.cov)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
