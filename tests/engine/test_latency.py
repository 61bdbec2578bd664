"""No waiting for compilers, seeds, readable results and progress (issue 16).

max_iter and tol are values of one compiled program (its cache does not grow, and a shorter run is
the start of a longer one: EM is deterministic); verbose= changes nothing in the result and adds
nothing to the program when off; integer seeds are jax.random.key(seed); results print short;
the persistent compilation cache is on in a per-user directory unless an environment variable
turns it off (fresh processes)."""
import importlib.util
import io
import os
import stat
import subprocess
import sys
from contextlib import redirect_stderr

import jax
import numpy as np
import pytest

import emjax
from emjax.engine.driver import _em_jit
from emjax.engine.restarts import _fit_jit
from emjax.core.model import split_hyperparameters

from helpers import blobs, counting_compiles

X = blobs(n=120, k=2)[0]
GMM = emjax.GaussianMixture(2, "diag")


@pytest.mark.slow
def test_max_iter_and_tol_are_traced_a_short_run_is_the_start_of_a_long_one():
    long = emjax.fit(GMM, X, 3, n_init=2, max_iter=40, tol=0.0, throw=False)
    before = _fit_jit._cache_size()
    with counting_compiles() as compiled:
        short = emjax.fit(GMM, X, 3, n_init=2, max_iter=4, tol=0.0, throw=False)
        loose = emjax.fit(GMM, X, 3, n_init=2, max_iter=100, tol=1e-2, throw=False)
    assert _fit_jit._cache_size() == before and compiled == []  # nothing compiled again
    assert short.restarts.history.shape == (2, 4) and long.restarts.history.shape == (2, 40)
    np.testing.assert_array_equal(short.restarts.history, long.restarts.history[:, :4])
    assert np.all(np.asarray(short.restarts.n_iter) == 4)
    assert [s.name for s in map(emjax.Status, np.asarray(short.restarts.status))] == ["MAX_ITER"] * 2
    # the looser tol stops as soon as one change is below it (checked on the long run's history)
    for r in range(2):
        steps = np.abs(np.diff(np.r_[np.nan, long.restarts.history[r]]))
        first = int(np.argmax(steps < 1e-2))
        assert int(loose.restarts.n_iter[r]) == first + 1


@pytest.mark.slow
def test_em_max_iter_is_traced():
    start = emjax.fit(GMM, X, 0, max_iter=2, throw=False).params
    a = emjax.em(GMM, start, X, max_iter=5, tol=0.0, throw=False)
    before = _em_jit._cache_size()
    with counting_compiles() as compiled:  # not even a slice of the history
        b = emjax.em(GMM, start, X, max_iter=9, tol=0.0, throw=False)
    assert _em_jit._cache_size() == before and compiled == []
    np.testing.assert_array_equal(a.history, b.history[:5])


def test_verbose_reports_and_changes_nothing_and_the_plain_program_has_no_callback():
    start = emjax.fit(GMM, X, 0, max_iter=2, throw=False).params
    quiet = emjax.em(GMM, start, X, max_iter=12, tol=0.0, throw=False)
    out = io.StringIO()
    with redirect_stderr(out):
        loud = emjax.em(GMM, start, X, max_iter=12, tol=0.0, throw=False, verbose=True)
    np.testing.assert_array_equal(quiet.history, loud.history)
    for a, b in zip(quiet.params, loud.params):
        np.testing.assert_array_equal(a, b)
    text = out.getvalue()
    assert "compiling... done" in text and "iteration" in text and "best objective" in text
    tty = _Terminal()  # on a terminal, with tqdm installed: a bar
    with redirect_stderr(tty):
        emjax.em(GMM, start, X, max_iter=12, tol=0.0, throw=False, verbose=True)
    if importlib.util.find_spec("tqdm"):
        assert "12/12" in tty.getvalue() and "best objective" in tty.getvalue()
    static, hyper = split_hyperparameters(GMM)
    args = (static, hyper, start, jax.numpy.asarray(X), None, 0.0, 12)
    options = dict(history_length=128, plan=emjax.make_plan(GMM, X), rows=None, accelerator=None)
    plain = _em_jit.lower(*args, **options).as_text()
    shown = _em_jit.lower(*args, **options, monitor=emjax.engine.progress.monitor).as_text()
    assert "callback" not in plain.lower() and "callback" in shown.lower()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.slow
def test_integer_seeds_are_keys_everywhere():
    by_int = emjax.fit(GMM, X, 7, n_init=2, max_iter=5, throw=False)
    by_key = emjax.fit(GMM, X, jax.random.key(7), n_init=2, max_iter=5, throw=False)
    np.testing.assert_array_equal(by_int.restarts.objective, by_key.restarts.objective)
    online = [emjax.OnlineEM(GMM, key).partial_fit(X).params for key in (4, jax.random.key(4))]
    np.testing.assert_array_equal(online[0].means, online[1].means)
    draws = [GMM.sample(key, by_key.params, 5) for key in (1, jax.random.key(1))]
    np.testing.assert_array_equal(draws[0][0], draws[1][0])


@pytest.mark.slow
def test_results_print_short_with_status_names_at_many_restarts():
    result = emjax.fit(GMM, X, 0, n_init=64, max_iter=30)
    text = repr(result)
    assert len(text) < 600 and text.count("\n") <= 3, text
    assert "status=" in text and ("CONVERGED" in text or "MAX_ITER" in text)
    assert result.status_name == emjax.Status(int(result.status)).name
    summary = result.summary()
    counts = dict(zip(*np.unique(np.asarray(result.restarts.status), return_counts=True)))
    for code, count in counts.items():
        assert f"{count} {emjax.Status(int(code)).name}" in summary
    assert "wall time" in summary and "iterations" in summary
    assert str(emjax.Status.DEGENERATE) == "DEGENERATE" and f"{emjax.Status(1)}" == "CONVERGED"
    assert len(repr(result.restarts)) < 600


def _fresh_import(env: dict) -> str:
    code = "import emjax, jax; print(jax.config.jax_compilation_cache_dir)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(emjax.__file__)))
    return out.stdout.strip()


@pytest.mark.slow  # fresh Python processes
def test_compilation_cache_is_on_in_a_private_user_directory_and_can_be_turned_off(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", "EMJAX_NO_COMPILATION_CACHE")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    expected = tmp_path / "emjax" / "jax"
    assert _fresh_import(env) == str(expected)
    assert expected.is_dir() and stat.S_IMODE(expected.stat().st_mode) & 0o077 == 0
    off = tmp_path / "off"
    assert _fresh_import({**env, "XDG_CACHE_HOME": str(off), "EMJAX_NO_COMPILATION_CACHE": "1"}) == "None"
    assert not off.exists()
    mine = str(tmp_path / "mine")
    assert _fresh_import({**env, "JAX_COMPILATION_CACHE_DIR": mine}) == mine  # the user's wins


@pytest.mark.slow
@pytest.mark.usefixtures("no_compiled_programs")
@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_padded_rows_give_the_unpadded_fit_and_nearby_sizes_share_a_program(x64, monkeypatch, init):
    """Rows padded to the bucket (weight 0) change nothing: the same starts (the init never
    draws a padded row), iterates, statuses and objective as the data alone, at float64."""
    from emjax.engine import row_buckets

    x = blobs(n=150, d=3, k=3, seed=4, dtype=np.float64)[0]
    model = emjax.GaussianMixture(3, "full", init_params=init)
    assert row_buckets.bucket_rows(150) == 160 and row_buckets.bucket_rows(143) == 160
    padded = emjax.fit(model, x, 5, n_init=3, max_iter=50, throw=False)
    before = _fit_jit._cache_size()
    emjax.fit(model, x[:143], 5, n_init=3, max_iter=50, throw=False)  # another fold's size
    assert _fit_jit._cache_size() == before
    monkeypatch.setattr(row_buckets, "MAX_PADDED_ROWS", 0)  # no padding
    plain = emjax.fit(model, x, 5, n_init=3, max_iter=50, throw=False)
    assert _fit_jit._cache_size() == before + 1  # a program of its own: padding was in use
    np.testing.assert_array_equal(padded.restarts.status, plain.restarts.status)
    np.testing.assert_array_equal(padded.restarts.n_iter, plain.restarts.n_iter)
    np.testing.assert_allclose(padded.restarts.objective, plain.restarts.objective, rtol=1e-12)
    for a, b in zip(padded.restarts.params, plain.restarts.params):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    plain_start = emjax.init_restarts(model, x, 5, n_init=3)
    monkeypatch.setattr(row_buckets, "MAX_PADDED_ROWS", 8192)
    padded_start = emjax.init_restarts(model, x, 5, n_init=3)
    for a, b in zip(padded_start, plain_start):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_large_data_and_data_given_by_row_draws_are_not_padded():
    fit_module = sys.modules["emjax.engine.restarts"]
    from emjax.engine.row_buckets import MAX_PADDED_ROWS, padded_rows

    big = np.zeros((MAX_PADDED_ROWS + 1, 2), np.float32)
    assert padded_rows(GMM, big, None)[1] is None
    drawn = emjax.GaussianMixture(2, init_params="random_from_data")
    assert padded_rows(drawn, X[:100], None)[0].shape == (100, 2)
    args, _ = fit_module._prepare(GMM, X[:100], jax.random.key(0), 1, None, 5, 0.0, None, None)
    assert args[0].shape == (112, 2) and float(np.sum(args[1])) == 100.0


@pytest.mark.slow
def test_nearby_restart_counts_share_a_program_and_the_extra_restarts_are_never_chosen():
    """n_init=9 runs in the bucket of 10: restart r's key is fold_in(key, r) either way, so its
    restarts are the first 9 of n_init=10's, and the winner is the best of those 9."""
    ten = emjax.fit(GMM, X, 1, n_init=10, max_iter=30, throw=False)
    before = _fit_jit._cache_size()
    nine = emjax.fit(GMM, X, 1, n_init=9, max_iter=30, throw=False)
    assert _fit_jit._cache_size() == before
    assert nine.restarts.objective.shape == (9,) and nine.restarts.history.shape == (9, 30)
    np.testing.assert_array_equal(nine.restarts.objective, ten.restarts.objective[:9])
    np.testing.assert_array_equal(nine.restarts.n_iter, ten.restarts.n_iter[:9])
    objectives = np.asarray(nine.restarts.objective)
    assert int(nine.best_index) == int(np.argmax(objectives))
