"""The warning when the best restart's objective stands alone (emjax/engine/isolated_optimum.py).

References: hand-made objective lists for the rule; for the warning, a constructed fit whose
winner is known (restart 0 starts at the truth, five others at one poor point)."""
import jax.numpy as jnp
import numpy as np
import pytest

import emjax
from emjax.engine.isolated_optimum import isolated_margin


def test_isolated_margin_rule():
    ok = emjax.Status.CONVERGED
    assert isolated_margin([-1.0, -1.2, -1.21, -1.2, -1.19], [ok] * 5, 1e-3) is not None
    assert isolated_margin([-1.0, -1.0004, -1.2, -1.2, -1.19], [ok] * 5, 1e-3) is None  # agreed
    assert isolated_margin([-1.0, -1.2, -1.21], [ok] * 3, 1e-3) is None  # too few others
    assert isolated_margin([-1.0, -1.1, -1.5, -1.9, -2.3], [ok] * 5, 1e-3) is None  # within spread
    bad = emjax.Status.DEGENERATE  # unhealthy restarts do not count as others
    assert isolated_margin([-1.0, -1.2, -1.21, -1.2, -1.19], [ok, ok, bad, bad, bad], 1e-3) is None


def test_fit_warns_when_one_restart_stands_alone(x64):
    """Restart 0 starts at the well-separated truth; the other five start from one poor point
    (both components on one blob) and take the same single step."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(100, 2)) - 6, rng.normal(size=(100, 2)) + 6])
    good = ([0.5, 0.5], [[-6.0, -6.0], [6.0, 6.0]], [np.eye(2)] * 2)
    poor = ([0.5, 0.5], [[6.0, 5.9], [6.0, 6.1]], [np.eye(2), np.eye(2)])
    starts = [good] + [poor] * 5
    init = emjax.GMMParams(*(jnp.asarray(np.stack([s[i] for s in starts]), jnp.float64) for i in range(3)))
    model = emjax.GaussianMixture(2, pseudo_count=0)
    result = emjax.fit(model, x, None, n_init=6, init_params=init, max_iter=1, throw=False)
    objectives = np.asarray(result.restarts.objective)
    assert int(result.best_index) == 0 and objectives[0] > objectives[1:].max() + 0.1
    with pytest.warns(emjax.IsolatedOptimumWarning, match="spurious optimum"):
        emjax.fit(model, x, None, n_init=6, init_params=init, max_iter=1)
