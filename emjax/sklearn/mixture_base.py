"""What scikit-learn's two mixture estimators share: the fit over :func:`emjax.fit`, the methods
used after it, sampling and the messages. Subclasses say which engine model they drive and how
its parameters map to scikit-learn's fitted attributes."""
from __future__ import annotations

import abc
import numbers
import time
import warnings

import jax
import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ..engine.accelerate import check_accelerator
from ..engine.driver import ConvergenceWarning as EmjaxConvergenceWarning
from ..engine.driver import FitError
from ..engine.restarts import fit as engine_fit
from ..engine.restarts import init_restarts
from ..core.status import Status, describe
from ..core.validation import check_positive_int
from ..core.xla_options import jit
from .float_precision import computing_in
from .random_state import key_from_random_state
from .row_buckets import padded

#: Folded into the ``random_state`` key for :meth:`MixtureEstimator.sample` (fits use the key as is).
SAMPLE_STREAM = 0x5A3


class ConvergenceWarning(EmjaxConvergenceWarning, SklearnConvergenceWarning):
    """The best restart stopped at ``max_iter``: caught by filters for scikit-learn's
    ``ConvergenceWarning`` and for emjax's alike."""


class MixtureEstimator(DensityMixin, BaseEstimator, metaclass=abc.ABCMeta):
    """Base of :class:`~emjax.sklearn.GaussianMixture` and
    :class:`~emjax.sklearn.BayesianGaussianMixture`; not for direct use."""

    # ----------------------------------------------------------------- to be provided
    @abc.abstractmethod
    def _engine_model(self, n_features: int):
        """The engine model (:mod:`emjax.models`) of the estimator's settings."""

    @abc.abstractmethod
    def _engine_params(self):
        """Engine parameters of the fitted attributes."""

    @abc.abstractmethod
    def _set_fitted_params(self, model, params) -> None:
        """Fitted attributes from the engine's parameters (NumPy arrays)."""

    def _starting_params(self, model, x, weights, key, n_init):
        """Starting parameters with a leading restart axis, or None for the model's own."""
        return None

    def _check_data(self, x: np.ndarray, weights: np.ndarray) -> None:
        """Host-side checks of the data beyond the engine's (none by default)."""

    def _bound_scale(self, total_weight: float) -> float:
        """``lower_bound_`` = this times the engine's objective (a mean per unit weight)."""
        return 1.0

    @abc.abstractmethod
    def _outputs(self, model, params, x):
        """``(score_samples, predict_proba, predict)`` of padded rows (a jitted function)."""

    def _outputs_on_host(self, x):
        """``(score_samples, predict_proba, predict)`` of validated rows computed in NumPy, or None
        where only the engine computes them (the default)."""
        return None

    # ----------------------------------------------------------------- fit
    def _check_settings(self) -> None:
        """Settings the engine model does not check itself; each error names its argument."""
        check_positive_int(self.n_init, "n_init")
        check_positive_int(self.verbose_interval, "verbose_interval")
        max_iter = self.max_iter
        if not isinstance(max_iter, numbers.Integral) or isinstance(max_iter, bool) or max_iter < 0:
            raise ValueError(f"max_iter must be an integer >= 0; got {max_iter!r}.")
        tol = self.tol
        if not isinstance(tol, numbers.Real) or isinstance(tol, bool) or not np.isfinite(tol) or tol < 0:
            raise ValueError(f"tol must be a finite number >= 0; got {tol!r}.")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be True or False; got {self.warm_start!r}.")
        check_accelerator(self.accelerator)

    def _allows_nan(self) -> bool:
        return False

    def _validated(self, X, reset: bool):
        return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                             ensure_min_samples=2 if reset else 1,
                             ensure_all_finite="allow-nan" if self._allows_nan() else True)

    def fit(self, X, y=None, sample_weight=None):
        """Fits by EM from ``n_init`` starts at once and keeps the best healthy one.

        Args:
            X: ``(n_samples, n_features)``; float32 data are fitted in float32, anything else in
                float64.
            y: ignored.
            sample_weight: optional non-negative weight per row (an integer weight acts as that
                many copies of the row).

        Returns:
            self.
        """
        self._check_settings()
        X = self._validated(X, reset=True)
        weights = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        model = self._engine_model(X.shape[1])
        key = key_from_random_state(self.random_state)
        warm = bool(self.warm_start) and hasattr(self, "converged_")
        n_init = 1 if warm else self.n_init
        started = time.perf_counter()
        with computing_in(X.dtype):
            model.validate(X)  # before padding (the padding rows are observed values)
            self._check_data(X, weights)
            x, w = padded(X, weights)
            if warm:
                start = jax.tree_util.tree_map(lambda a: np.asarray(a, X.dtype)[None], self._engine_params())
            else:
                start = self._starting_params(model, x, w, key, n_init)
            if self.max_iter == 0:
                self._set_unfitted_start(model, x, w, key, n_init, start)
                return self
            total = float(weights.sum())
            tol = self.tol / self._bound_scale(total)
            result = engine_fit(model, x, key, n_init=n_init if start is None else len(start[0]),
                                weights=w, max_iter=self.max_iter, tol=tol, init_params=start,
                                accelerator=self.accelerator, throw=False,
                                verbose=bool(self.verbose))
            result = jax.device_get(result)
        self._take_result(model, result, total, tol, time.perf_counter() - started)
        return self

    def _set_unfitted_start(self, model, x, w, key, n_init, start) -> None:
        """``max_iter=0``: the first starting point, as scikit-learn keeps its initialisation."""
        if start is None:
            start = init_restarts(model, x, key, n_init=n_init, weights=w)
        self._set_fitted_params(model, jax.device_get(jax.tree_util.tree_map(lambda a: a[0], start)))
        self.converged_, self.n_iter_, self.lower_bound_ = False, 0, -np.inf
        self.lower_bounds_, self.restart_statuses_, self.restart_lower_bounds_ = [], [], np.zeros(0)

    def _take_result(self, model, result, total_weight: float, engine_tol: float, seconds: float) -> None:
        """Fitted attributes from the restarts of ``result``. The winner is chosen as scikit-learn
        chooses it: the highest final objective among restarts that converged or reached
        ``max_iter``, or whose objective fell by less than ``tol`` (scikit-learn's rule counts
        any change below ``tol`` as convergence; emjax reports DECREASED beyond rounding, which
        an ill-conditioned covariance or ``reg_covar``, not a prior, can cause). Such a restart
        keeps the parameters before its last step and its DECREASED in ``restart_statuses_``."""
        restarts = result.restarts
        statuses, objectives = np.asarray(restarts.status), np.asarray(restarts.objective)
        n_iter = np.asarray(restarts.n_iter)
        last = np.asarray(restarts.history)[np.arange(len(statuses)), np.maximum(n_iter - 1, 0)]
        within_tol = (statuses == Status.DECREASED) & (objectives - last < engine_tol) & np.isfinite(objectives)
        usable = np.isin(statuses, [Status.CONVERGED, Status.MAX_ITER]) | within_tol
        scale = self._bound_scale(total_weight)
        if self.verbose:
            self._print_progress(restarts, scale, seconds)
        if not usable.any():
            reasons = "; ".join(f"{Status(int(s)).name}: {Status(int(s)).message}" for s in np.unique(statuses))
            raise FitError(f"all {statuses.size} restarts failed ({describe(statuses)}). {reasons}. "
                           "Try more restarts (n_init), fewer components, a larger reg_covar, or "
                           "scaling the data.")
        best = int(np.argmax(np.where(usable, objectives, -np.inf)))
        self._set_fitted_params(model, jax.tree_util.tree_map(lambda a: np.asarray(a)[best], restarts.params))
        self.converged_ = bool(statuses[best] == Status.CONVERGED or within_tol[best])
        self.n_iter_ = int(n_iter[best])
        self.lower_bound_ = float(objectives[best]) * scale
        self.lower_bounds_ = [float(v) * scale for v in np.asarray(restarts.history[best])[:self.n_iter_]]
        self.restart_statuses_ = [Status(int(s)) for s in statuses]
        self.restart_lower_bounds_ = np.where(usable, objectives * scale, np.nan)
        if not self.converged_:
            warnings.warn("Best performing initialization did not converge "
                          f"({describe(statuses)}). Try different init parameters, or increase "
                          "max_iter, tol, or check for degenerate data.", ConvergenceWarning, stacklevel=3)

    def _print_progress(self, restarts, scale: float, seconds: float) -> None:
        """scikit-learn's verbose lines per initialization, printed after the fit (the restarts
        run as one program; while it runs, :func:`emjax.fit`'s ``verbose`` shows the compile
        time, then the iteration and best objective, on stderr)."""
        print(f"Fitted {len(restarts.status)} initialization(s) in {seconds:.2f}s.")
        for r, status in enumerate(np.asarray(restarts.status)):
            n_iter = int(restarts.n_iter[r])
            print(f"Initialization {r}: {Status(int(status)).name} after {n_iter} iteration(s), "
                  f"lower bound {float(restarts.objective[r]) * scale:.5f}")
            if self.verbose >= 2:
                history = np.asarray(restarts.history[r])[:n_iter] * scale
                for i in range(self.verbose_interval - 1, n_iter, self.verbose_interval):
                    change = history[i] - history[i - 1] if i else float("nan")
                    print(f"  Iteration {i + 1}\t lower bound {history[i]:.5f}\t change {change:.3g}")

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fits, then returns the most probable component of each row of ``X``."""
        return self.fit(X, sample_weight=sample_weight).predict(X)

    # ----------------------------------------------------------------- after the fit
    def _evaluate(self, X):
        check_is_fitted(self)
        X = self._validated(X, reset=False)
        dtype = np.result_type(X.dtype, self.means_.dtype)
        on_host = self._outputs_on_host(np.asarray(X, dtype))
        if on_host is not None:
            return on_host
        with computing_in(dtype):
            x, _ = padded(np.asarray(X, dtype))
            params = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), self._engine_params())
            outputs = jax.device_get(self._outputs(self._engine_model(X.shape[1]), params, x))
        return tuple(np.asarray(o)[:X.shape[0]] for o in outputs)

    def score_samples(self, X):
        """Log-likelihood of each row, shape ``(n_samples,)``."""
        return self._evaluate(X)[0]

    def score(self, X, y=None):
        """Mean log-likelihood of the rows of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """Responsibilities, shape ``(n_samples, n_components)``."""
        return self._evaluate(X)[1]

    def predict(self, X):
        """Most probable component of each row, shape ``(n_samples,)``."""
        return self._evaluate(X)[2].astype(np.int64)

    def _sample_from(self, gmm, params, n_samples: int):
        check_positive_int(n_samples, "n_samples")
        key = jax.random.fold_in(key_from_random_state(self.random_state), SAMPLE_STREAM)
        dtype = self.means_.dtype
        with computing_in(dtype):
            x, labels = jax.device_get(_sample_jit(gmm, key, params, n_samples))
        order = np.argsort(labels, kind="stable")  # grouped by component, as scikit-learn returns them
        return np.asarray(x)[order].astype(dtype, copy=False), np.asarray(labels)[order].astype(np.int64)


@jit(static_argnums=(0, 3))
def _sample_jit(gmm, key, params, n: int):
    return gmm.sample(key, params, n)
