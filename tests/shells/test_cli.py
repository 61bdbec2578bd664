"""The command line and the demo, run in-process on small data; results checked independently."""
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from emjax.shells.cli import main
from emjax.shells.datasets import make_mixture
from emjax.shells.demo import run_demo

K = 3


@pytest.fixture(scope="module")
def data():
    return make_mixture(1, 600, n_components=K)[0]


def scipy_log_likelihood(params, covariance_type, X):
    """Mean log-likelihood of ``X`` under JSON ``params``, with scipy's Gaussian densities."""
    weights, means = np.array(params["weights"]), np.array(params["means"])
    cov = np.array(params["covariances"])
    if covariance_type == "diag":
        cov = np.stack([np.diag(c) for c in cov])
    log_dens = np.stack([multivariate_normal(means[k], cov[k]).logpdf(X) for k in range(len(weights))],
                        axis=1)
    return logsumexp(log_dens + np.log(weights), axis=1).mean()


def check_report(report, X, covariance_type, n_init):
    n, d = X.shape
    assert report["n_samples"] == n and report["n_features"] == d
    assert report["model"] == {"n_components": K, "covariance_type": covariance_type,
                               "init_params": "kmeans++", "missing": "error"}
    params = report["params"]
    assert np.isclose(sum(params["weights"]), 1, atol=1e-5)
    ll = scipy_log_likelihood(params, covariance_type, X)
    assert report["log_likelihood"] == pytest.approx(ll, abs=1e-4)
    p = (K - 1) + K * d + (K * d * (d + 1) // 2 if covariance_type == "full" else K * d)
    assert report["bic"] == pytest.approx(-2 * n * ll + p * np.log(n), rel=1e-4)
    assert report["aic"] == pytest.approx(-2 * n * ll + 2 * p, rel=1e-4)
    restarts = report["restarts"]
    assert len(restarts["objectives"]) == len(restarts["n_iter"]) == n_init
    assert sum(restarts["status_counts"].values()) == n_init
    assert report["objective"] == pytest.approx(max(restarts["objectives"]))
    assert report["objective"] == restarts["objectives"][report["best_index"]]
    assert report["status"] in ("CONVERGED", "MAX_ITER")
    assert report["compile_seconds"] > 0 and report["run_seconds"] > 0
    # The global optimum on well-separated clusters: scikit-learn finds the same likelihood.
    sk = SkGaussianMixture(K, covariance_type=covariance_type, n_init=4, tol=1e-6, random_state=0)
    assert ll == pytest.approx(sk.fit(X).score(X), abs=2e-3)


def test_fit_csv_with_header_and_comments(tmp_path, data, capsys):
    csv = tmp_path / "data.csv"
    rows = "\n".join(",".join(repr(float(v)) for v in row) for row in data)
    csv.write_text(f"# a comment line\nx0,x1\n{rows}\n")
    out = tmp_path / "result.json"
    assert main(["fit", str(csv), "--n-components", str(K), "--covariance", "full",
                 "--n-init", "4", "--max-iter", "200", "--tol", "1e-5", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["features"] == ["x0", "x1"]
    check_report(report, data, "full", n_init=4)
    printed = capsys.readouterr()
    assert "best restart" in printed.out and "BIC" in printed.out
    assert "compiling, then running... done" in printed.err


def test_fit_npy_and_headerless_csv_agree(tmp_path, data):
    npy, csv = tmp_path / "data.npy", tmp_path / "data.csv"
    np.save(npy, data)
    np.savetxt(csv, data, delimiter=",", fmt="%.17g")
    reports = []
    for path in (npy, csv):
        out = tmp_path / (path.suffix[1:] + ".json")
        assert main(["fit", str(path), "--n-components", str(K), "--covariance", "diag",
                     "--n-init", "4", "--tol", "1e-5", "--seed", "3", "--out", str(out)]) == 0
        reports.append(json.loads(out.read_text()))
    assert reports[0]["features"] is None
    check_report(reports[0], data, "diag", n_init=4)
    assert reports[0]["params"] == reports[1]["params"]


@pytest.mark.parametrize("args, message", [
    (["fit", "{dir}/missing.csv", "--n-components", "2"], "no such file"),
    (["fit", "{dir}/text.csv", "--n-components", "2"], "line 3: 'x' is not a number"),
    (["fit", "{dir}/ok.csv", "--n-components", "2", "--covariance", "fulll"], "invalid choice"),
    (["fit", "{dir}/ok.csv", "--n-components", "0"], "must be a positive integer"),
    (["fit", "{dir}/ok.csv", "--n-components", "9"], "must be >= n_components=9"),
    (["fit", "{dir}/nan.csv", "--n-components", "2"], "1 NaN value"),
    (["demo", "--n-init", "-1"], "must be a positive integer"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, message):
    (tmp_path / "text.csv").write_text("a,b\n1,2\n3,x\n")
    (tmp_path / "ok.csv").write_text("1,2\n3,4\n5,7\n")
    (tmp_path / "nan.csv").write_text("1,2\n3,4\n5,nan\n")
    assert main([a.format(dir=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("emjax: error:") and message in last


@pytest.mark.slow
def test_python_dash_m_exit_code(tmp_path):
    run = subprocess.run([sys.executable, "-m", "emjax", "fit", str(tmp_path / "none.npy"),
                          "--n-components", "2"], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == f"emjax: error: {tmp_path / 'none.npy'}: no such file"


@pytest.mark.slow
def test_demo_smoke(tmp_path, capsys):
    out = tmp_path / "demo.png"
    rows = run_demo(str(out), n_init=4, n=500, n_components=3, max_iter=10)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [row["n"] for row in rows] == [272, 500]
    for row in rows:
        assert row["conv"] + row["max_it"] + row["failed"] == 4
        assert np.isfinite(row["best obj"]) and row["restarts/s"] > 0
    printed = capsys.readouterr().out
    assert "Old Faithful" in printed and "restarts/s" in printed and f"wrote {out}" in printed
