"""``--verbose`` on ``emjax fit``, ``select`` and ``hmm``: the fit's live progress (compile time,
then iterations and the best objective, from the EM loop's host callback) on stderr, and the same
result as without it (reference: the same command without ``--verbose``)."""
import json

import numpy as np
import pytest

from emjax.shells.cli import main
from shells.test_cli_commands import BLOBS, sequences_csv


def run(argv, capsys):
    assert main(argv) == 0
    return capsys.readouterr().err


def assert_live_progress(err):
    # "best objective" comes only from emjax.engine.progress.FitProgress, fed by the compiled loop's
    # callback while the fit runs (as plain "iteration" lines, or a tqdm bar when an earlier test
    # left ipykernel imported); the plain Ticker prints neither
    assert "compiling... done" in err and "best objective" in err, err


@pytest.mark.slow
def test_fit_verbose_shows_progress_and_changes_nothing(tmp_path, capsys):
    data = tmp_path / "blobs.csv"
    np.savetxt(data, BLOBS, delimiter=",", header="a,b", comments="")
    reports = {}
    for verbose in (False, True):
        out = tmp_path / f"{verbose}.json"
        err = run(["fit", str(data), "--n-components", "2", "--covariance", "diag", "--n-init", "2",
                   "--seed", "3", "--out", str(out)] + ["--verbose"] * verbose, capsys)
        reports[verbose] = json.loads(out.read_text())
        if verbose:
            assert_live_progress(err)
        else:
            assert "best objective" not in err
    assert reports[True]["params"] == reports[False]["params"]
    assert reports[True]["compile_seconds"] > 0 and reports[True]["run_seconds"] > 0


@pytest.mark.slow
def test_select_and_hmm_verbose_show_progress(tmp_path, capsys):
    data = tmp_path / "blobs.csv"
    np.savetxt(data, BLOBS, delimiter=",", header="a,b", comments="")
    assert_live_progress(run(["select", str(data), "--components", "1-2", "--covariance", "diag",
                              "--n-init", "2", "--verbose"], capsys))
    sequences = tmp_path / "seq.csv"
    sequences_csv(sequences)
    assert_live_progress(run(["hmm", str(sequences), "--sequence-column", "seq", "--n-states", "2",
                              "--covariance", "diag", "--n-init", "2", "--verbose"], capsys))
