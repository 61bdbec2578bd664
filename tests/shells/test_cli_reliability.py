"""``emjax fit`` reliability (findings F12, F13 and the CLI part of F22 of the "Trust" issue).

References: NumPy's own parsing of the same table, scipy's Gaussian densities of the observed
coordinates (the marginal likelihood with missing values), and the input file's bytes.
"""
import json
import os

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emjax.shells.cli import InputError, main, read_table, summary

ROWS = np.random.default_rng(0).normal(size=(40, 2)) + np.repeat([[0.0, 0.0], [6.0, 6.0]], 20, axis=0)


def last_error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_huge_values_give_a_one_line_failure_not_a_traceback(tmp_path, capsys):
    """F12: a TypeError traceback in summary() (None.__format__), exit 1, no JSON."""
    csv, out = tmp_path / "huge.csv", tmp_path / "out.json"
    np.savetxt(csv, np.random.default_rng(0).normal(size=(50, 2)) * 1e30, delimiter=",")
    code = main(["fit", str(csv), "--n-components", "2", "--n-init", "2", "--max-iter", "5",
                 "--out", str(out)])
    assert code in (1, 2)
    assert last_error_line(capsys).startswith("emjax: ")
    assert not out.exists()  # no report of a failed fit


def test_summary_shows_values_that_are_not_finite_as_n_a():
    report = {"params": {"weights": [1.0], "means": [[0.0]]}, "best_index": 0, "status": "CONVERGED",
              "n_iter": 3, "objective": None, "log_likelihood": None, "bic": None, "aic": None,
              "restarts": {"objectives": [None], "summary": "1 CONVERGED"},
              "compile_seconds": 0.1, "run_seconds": 0.0}
    text = summary(report)
    assert "objective n/a, log-likelihood n/a" in text and "BIC n/a, AIC n/a" in text


@pytest.mark.parametrize("alias", ["same", "relative", "symlink", "hardlink"])
def test_out_naming_the_input_file_is_refused(tmp_path, capsys, monkeypatch, alias):
    """F13: the input CSV was overwritten with the JSON report (exit 0)."""
    csv = tmp_path / "ok.csv"
    np.savetxt(csv, ROWS, delimiter=",")
    before = csv.read_bytes()
    monkeypatch.chdir(tmp_path)
    out = {"same": str(csv), "relative": "./sub/../ok.csv", "symlink": str(tmp_path / "link.csv"),
           "hardlink": str(tmp_path / "hard.csv")}[alias]
    (tmp_path / "sub").mkdir()
    if alias == "symlink":
        os.symlink(csv, out)
    if alias == "hardlink":
        os.link(csv, out)
    assert main(["fit", str(csv), "--n-components", "2", "--out", out]) == 2
    assert last_error_line(capsys) == (f"emjax: error: --out {out} is the input data file {csv}; "
                                       "refusing to overwrite it (choose another --out)")
    assert csv.read_bytes() == before


def test_nan_points_at_the_missing_option(tmp_path, capsys):
    """F22: the message told CLI users to pass GaussianMixture(..., missing='marginalize')."""
    csv = tmp_path / "nan.csv"
    csv.write_text("x,y\n1,2\n3,4\n\n# comment\n5,nan\nnan,nan\n")
    assert main(["fit", str(csv), "--n-components", "2"]) == 2
    assert last_error_line(capsys) == (f"emjax: error: {csv}: 3 NaN value(s) (missing), the first on "
                                       "line 6 column 2; pass --missing marginalize to fit with them")


@pytest.mark.parametrize("text, delimiter", [
    ("{rows}", ","), ("{rows_semicolon}", None), ("{rows_trailing}", None), ("{rows_tab}", None),
    ("{rows_semicolon}", ";"), ("{rows_tab}", "\\t"),
])
def test_delimiters_and_trailing_delimiters_never_make_a_data_row_a_header(tmp_path, text, delimiter):
    """F22: a ';' file or a trailing comma silently turned the first data row into a header."""
    x = ROWS[:5]
    lines = {"rows": [",".join(map(str, r.tolist())) for r in x],
             "rows_semicolon": [";".join(map(str, r.tolist())) for r in x],
             "rows_trailing": [",".join(map(str, r.tolist())) + "," for r in x],
             "rows_tab": ["\t".join(map(str, r.tolist())) for r in x]}
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines[text.strip("{}")]) + "\n")
    X, names, line_numbers = read_table(path, delimiter)
    assert names is None and line_numbers == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(X, x)


@pytest.mark.parametrize("text, names, message", [
    ("a;b\n1;2\n3;4\n", ["a", "b"], None),
    ("a,b,\n1,2,\n3,4,\n", ["a", "b"], None),
    ("1;2\n3;4;5\n", None, "line 2 has 3 fields separated by ';'; expected 2 (see --delimiter)"),
    ("a,b\nc,d\n1,2\n", None, "line 1: 'a' is not a number"),
    ("a,b\n", None, "no data rows after the header on line 1"),
    ("1,2\n3,4\n5\n", None, "line 3 has 1 fields separated by ','; expected 2"),
])
def test_header_only_when_the_next_row_is_numeric(tmp_path, text, names, message):
    path = tmp_path / "h.csv"
    path.write_text(text)
    if message is None:
        X, got, _ = read_table(path)
        assert got == names and X.tolist() == [[1, 2], [3, 4]]
    else:
        with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_table(path)


def observed_log_likelihood(params, X):
    """Mean over rows of log sum_k w_k N(x_obs; mu_k[obs], Sigma_k[obs, obs]) (scipy)."""
    w, mu, cov = (np.array(params[n]) for n in ("weights", "means", "covariances"))
    total = []
    for row in X:
        o = ~np.isnan(row)
        total.append(logsumexp([np.log(w[k]) + multivariate_normal(mu[k][o], cov[k][np.ix_(o, o)])
                                .logpdf(row[o]) for k in range(len(w))]))
    return np.mean(total)


@pytest.mark.slow
def test_missing_marginalize_fits_a_semicolon_file_with_holes(tmp_path, capsys):
    x = ROWS.copy()
    x[[3, 25], 0] = np.nan
    x[10, 1] = np.nan
    csv, out = tmp_path / "holes.csv", tmp_path / "r.json"
    csv.write_text("a;b;\n" + "".join(f"{a};{b};\n" for a, b in x.tolist()))
    assert main(["fit", str(csv), "--n-components", "2", "--n-init", "2", "--missing", "marginalize",
                 "--tol", "1e-6", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["features"] == ["a", "b"] and (report["n_samples"], report["n_features"]) == (40, 2)
    assert report["model"]["missing"] == "marginalize" and report["status"] == "CONVERGED"
    assert report["log_likelihood"] == pytest.approx(observed_log_likelihood(report["params"], x), abs=1e-4)
