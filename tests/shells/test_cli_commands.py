"""``emjax fit --columns/--labels-out``, ``emjax select``, ``emjax hmm``, ``--version`` and the demo's
matplotlib check, run in-process. References: scipy's Gaussian densities (responsibilities),
scikit-learn's BIC at the written parameters, hmmlearn's score and Viterbi decode at the written
parameters, and :func:`emjax.fit` on the same data and seed."""
import csv
import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from hmmlearn.hmm import GaussianHMM as HmmlearnGaussianHMM
from scipy.special import softmax
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import emjax
from emjax.shells.cli import main

RNG = np.random.default_rng(0)
BLOBS = np.concatenate([RNG.normal(size=(60, 2)), RNG.normal(size=(60, 2)) + [7.0, -5.0]])


def read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def last_error(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.fixture
def labelled_csv(tmp_path):
    """BLOBS with a text column first and a constant column last: header a,b around them."""
    path = tmp_path / "labelled.csv"
    path.write_text("name,a,b,c\n" + "".join(f"r{i},{x!r},{y!r},1\n" for i, (x, y) in
                                            enumerate(BLOBS.tolist())))
    return path


@pytest.mark.slow
def test_fit_columns_and_labels_out_against_fit_and_scipy(tmp_path, labelled_csv):
    reports = []
    for columns in ("a,b", "2-3"):
        out, labels = tmp_path / f"{columns}.json", tmp_path / f"{columns}.labels.csv"
        assert main(["fit", str(labelled_csv), "--columns", columns, "--n-components", "2",
                     "--covariance", "diag", "--n-init", "2", "--seed", "5", "--tol", "1e-6",
                     "--out", str(out), "--labels-out", str(labels)]) == 0
        reports.append(json.loads(out.read_text()))
    report = reports[0]
    assert report["features"] == ["a", "b"] and report["columns"] == [2, 3]
    assert reports[1]["params"] == report["params"]
    # the same fit through the Python API, same data and seed
    direct = emjax.fit(emjax.GaussianMixture(2, "diag"), BLOBS, jax.random.key(5), n_init=2,
                       max_iter=200, tol=1e-6)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_allclose(report["params"][name], np.asarray(getattr(direct.params, name)),
                                   rtol=1e-5, atol=1e-6)
    # labels-out: one row per data row, at its file line; responsibilities from scipy's densities
    header, rows = read_csv(labels)
    assert header == ["line", "component", "p_0", "p_1"]
    assert [int(r[0]) for r in rows] == list(range(2, 2 + len(BLOBS)))
    resp = np.array([[float(v) for v in r[2:]] for r in rows])
    w, mu, var = (np.array(report["params"][n]) for n in ("weights", "means", "covariances"))
    log_dens = np.stack([multivariate_normal(mu[k], np.diag(var[k])).logpdf(BLOBS) for k in range(2)], 1)
    np.testing.assert_allclose(resp.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(resp, softmax(log_dens + np.log(w), axis=1), atol=1e-5)
    assert [int(r[1]) for r in rows] == np.argmax(log_dens + np.log(w), axis=1).tolist()


@pytest.mark.parametrize("columns, message", [
    ("a,zz", "--columns a,zz: {file} has no column named 'zz'; its header names are name, a, b, c"),
    ("2,9", "--columns 2,9: column 9 is out of range; {file} has 4 column(s), numbered from 1"),
    ("2,1-2", "--columns 2,1-2: column 2 is chosen more than once"),
    ("3-2", "--columns 3-2: range '3-2' is empty (write low-high)"),
    (None, "{file}: line 2: 'r0' is not a number (column 1, 'name'; choose columns with --columns)"),
])
def test_column_errors_name_the_option_and_the_column(labelled_csv, capsys, columns, message):
    args = ["fit", str(labelled_csv), "--n-components", "2"]
    assert main(args + (["--columns", columns] if columns else [])) == 2
    assert last_error(capsys) == "emjax: error: " + message.format(file=labelled_csv)


def test_missing_and_infinite_values_are_located_by_file_line_and_column(tmp_path, capsys):
    csv_file, npy = tmp_path / "gaps.csv", tmp_path / "gaps.npy"
    csv_file.write_text("# comment\nx,y,z\n1,2,3\n\n4,,6\n7,8,inf\n")
    assert main(["fit", str(csv_file), "--n-components", "1"]) == 2
    assert last_error(capsys).endswith("1 infinite value(s), the first on line 6 column 3; remove "
                                       "or rescale them")
    assert main(["fit", str(csv_file), "--n-components", "1", "--columns", "z,x,y",
                 "--missing", "marginalize"]) == 2
    assert "line 6 column 3" in last_error(capsys)  # the file's column, not the chosen one
    assert main(["fit", str(csv_file), "--n-components", "1", "--columns", "1,2"]) == 2
    assert last_error(capsys).endswith("1 NaN value(s) (missing), the first on line 5 column 2; "
                                       "pass --missing marginalize to fit with them")
    assert main(["fit", str(csv_file), "--n-components", "1", "--missing", "marginalize"]) == 2
    csv_file.write_text("x,y\n1,\n2,\n")
    assert main(["fit", str(csv_file), "--n-components", "1", "--missing", "marginalize"]) == 2
    assert last_error(capsys) == (f"emjax: error: {csv_file}: column 2 ('y') has no value on any "
                                  "row; leave it out with --columns")
    np.save(npy, np.array([[1.0, 2.0], [3.0, np.nan]]))
    assert main(["fit", str(npy), "--n-components", "1"]) == 2
    assert "the first on row 2 column 2;" in last_error(capsys)


def test_outputs_never_overwrite_the_data_or_each_other(labelled_csv, tmp_path, capsys):
    base = ["fit", str(labelled_csv), "--n-components", "2", "--columns", "a,b"]
    before = labelled_csv.read_bytes()
    assert main(base + ["--labels-out", str(labelled_csv)]) == 2
    assert last_error(capsys) == (f"emjax: error: --labels-out {labelled_csv} is the input data file "
                                  f"{labelled_csv}; refusing to overwrite it (choose another --labels-out)")
    same = str(tmp_path / "x.out")
    assert main(base + ["--out", same, "--labels-out", same]) == 2
    assert last_error(capsys) == ("emjax: error: --out and --labels-out name the same file "
                                  f"{same}; choose two files")
    assert main(["hmm", str(labelled_csv), "--n-states", "2", "--states-out", str(labelled_csv)]) == 2
    assert "is the input data file" in last_error(capsys)
    assert labelled_csv.read_bytes() == before


def test_version_and_demo_without_matplotlib(monkeypatch, capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"emjax {emjax.__version__} (jax {jax.__version__})"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    monkeypatch.setattr("emjax.shells.demo.run_demo", lambda *a: pytest.fail("fitted without matplotlib"))
    assert main(["demo", "--n-init", "2"]) == 2
    assert last_error(capsys) == ("emjax: error: emjax demo draws a figure with matplotlib, which is "
                                  "not installed; install it with: pip install 'emjax[plot]'")


def test_hmm_counts_and_codes_are_checked_at_their_line(tmp_path, capsys):
    path = tmp_path / "counts.csv"
    path.write_text("id,n\na,1\na,2\nb,-3\n")
    assert main(["hmm", str(path), "--sequence-column", "id", "--n-states", "2",
                 "--emission", "poisson"]) == 2
    assert last_error(capsys) == (f"emjax: error: {path}: poisson emissions need counts, integers >= 0; "
                                  "line 4 column 2 holds -3")


def sequences_csv(path):
    """Two-state sequences of uneven lengths, the rows of sequences 'u' and 'v' interleaved."""
    rng = np.random.default_rng(1)
    rows, truth = [], {}
    for sid, n in (("u", 40), ("v", 25), ("w", 33)):
        z = np.cumsum(rng.random(n) < 0.15) % 2
        truth[sid] = rng.normal(size=(n, 2)) + 4.0 * z[:, None]
    order = [("u", t) for t in range(20)] + [("v", t) for t in range(25)] + \
            [("u", t) for t in range(20, 40)] + [("w", t) for t in range(33)]
    rows = [f"{sid},{float(truth[sid][t][0])!r},{float(truth[sid][t][1])!r}" for sid, t in order]
    path.write_text("seq,x,y\n" + "\n".join(rows) + "\n")
    return truth, order


@pytest.mark.slow
def test_hmm_against_hmmlearn_score_and_viterbi(tmp_path):
    data = tmp_path / "seq.csv"
    truth, order = sequences_csv(data)
    out, states_out = tmp_path / "hmm.json", tmp_path / "states.csv"
    assert main(["hmm", str(data), "--sequence-column", "seq", "--n-states", "2", "--covariance",
                 "diag", "--n-init", "2", "--tol", "1e-6", "--out", str(out),
                 "--states-out", str(states_out)]) == 0
    report = json.loads(out.read_text())
    assert report["sequence_ids"] == ["u", "v", "w"] and report["lengths"] == [40, 25, 33]
    assert report["features"] == ["x", "y"] and report["n_steps"] == 98
    p = report["params"]
    reference = HmmlearnGaussianHMM(2, "diag", init_params="", params="")
    reference.startprob_, reference.transmat_ = np.array(p["initial"]), np.array(p["transitions"])
    reference.means_, reference.covars_ = np.array(p["means"]), np.array(p["covariances"])
    X = np.concatenate([truth[s] for s in ("u", "v", "w")])
    assert report["log_likelihood"] == pytest.approx(reference.score(X, [40, 25, 33]), rel=1e-4)
    header, rows = read_csv(states_out)
    assert header == ["line", "sequence", "step", "state"]
    assert [(r[1], int(r[2])) for r in rows] == [(s, t + 1) for s, t in order]
    assert [int(r[0]) for r in rows] == list(range(2, 2 + len(order)))
    for sid in ("u", "v", "w"):
        _, expected = reference.decode(truth[sid], algorithm="viterbi")
        got = [int(r[3]) for r in sorted((r for r in rows if r[1] == sid), key=lambda r: int(r[2]))]
        assert got == expected.tolist()


@pytest.mark.slow
def test_select_table_and_choice_against_scikit_learn_bic(tmp_path):
    data, out, labels = tmp_path / "blobs.csv", tmp_path / "select.json", tmp_path / "labels.csv"
    np.savetxt(data, BLOBS, delimiter=";", header="a;b", comments="")
    assert main(["select", str(data), "--components", "1-3", "--covariance", "diag",
                 "--n-init", "2", "--tol", "1e-6", "--out", str(out), "--labels-out", str(labels)]) == 0
    report = json.loads(out.read_text())
    assert [row["n_components"] for row in report["table"]] == [1, 2, 3]
    assert report["model"]["n_components"] == 2 and report["chosen_index"] == 1
    chosen = report["table"][1]
    assert chosen["bic"] == min(row["bic"] for row in report["table"])
    sk = SkGaussianMixture(2, covariance_type="diag")
    sk.weights_, sk.means_ = np.array(report["params"]["weights"]), np.array(report["params"]["means"])
    sk.covariances_ = np.array(report["params"]["covariances"])
    sk.precisions_cholesky_ = 1 / np.sqrt(sk.covariances_)
    assert chosen["bic"] == pytest.approx(sk.bic(BLOBS), rel=1e-5)
    header, rows = read_csv(labels)
    assert header == ["line", "component", "p_0", "p_1"] and len(rows) == len(BLOBS)
    assert [int(r[1]) for r in rows] == sk.predict(BLOBS).tolist()


@pytest.mark.slow
def test_python_dash_m_version_smoke():
    run = subprocess.run([sys.executable, "-m", "emjax", "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith(f"emjax {emjax.__version__} (jax ")
