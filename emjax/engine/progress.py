"""Host-side progress: phases with elapsed time (:class:`Ticker`, the command line and the demo)
and the iterations of a running fit (:class:`FitProgress`, ``verbose=``).

A fit is one XLA call: :class:`Ticker` prints the elapsed seconds from a background thread while a
call runs (JAX releases the GIL while it compiles and executes) and adds nothing to the program.
With ``verbose=``, the EM loop also hands its iteration, objective and statuses to the host after
every iteration (:func:`monitor`, a host callback compiled into that program only), which
:class:`FitProgress` shows as a bar or as lines. The callback reads values the loop computes
anyway and returns zero, so results are the same with and without it.
"""
from __future__ import annotations

import sys
import threading
import time


class Ticker:
    """Context manager that reports ``label... 12s`` while its block runs.

    On a terminal the line is rewritten every ``every`` seconds; otherwise (logs, pipes) a line is
    printed every ``10 * every`` seconds. On exit the line ends with the total time, which is
    also available as ``elapsed``.
    """

    def __init__(self, label: str, stream=None, every: float = 1.0):
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every if self.interactive else 10 * every
        self.elapsed = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> "Ticker":
        self._start = time.perf_counter()
        self._write(f"{self.label}...", end="" if self.interactive else "\n")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.elapsed = time.perf_counter() - self._start
        outcome = "failed" if exc[0] is not None else "done"
        prefix = "\r" if self.interactive else ""
        self._write(f"{prefix}{self.label}... {outcome} in {self.elapsed:.1f}s")

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            seconds = time.perf_counter() - self._start
            if self.interactive:
                self._write(f"\r{self.label}... {seconds:.0f}s", end="")
            else:
                self._write(f"{self.label}... {seconds:.0f}s elapsed")

    def _write(self, text: str, end: str = "\n") -> None:
        print(text, end=end, file=self.stream, flush=True)


#: Plain-text progress lines are printed at most this often (seconds), plus the last one.
LINE_EVERY = 2.0

# The fit whose program is running now. A compiled program calls the same module function
# (:func:`_receive`) in every process-wide call, from XLA's threads, so the reporter that
# receives its values is held here for the duration of one verbose call (one at a time).
_active: list = []
_lock = threading.Lock()


def monitor(i, objective, status):
    """Traced side of ``verbose=``: hands the loop's iteration, objective and status (batched
    over restarts under ``vmap``: one host call per iteration for the whole batch) to the
    reporter of the running fit, and returns ``i`` unchanged but depending on the call, so the
    compiled program keeps it. Used only when ``verbose`` is on: with it off the program
    contains no callback (:func:`emjax.engine.driver.run_em`'s ``monitor=None``)."""
    import jax
    import jax.numpy as jnp

    done = jax.pure_callback(_receive, jax.ShapeDtypeStruct((), jnp.int32), i, objective, status,
                             vmap_method="expand_dims")
    return i + jnp.reshape(done, jnp.shape(i))


def _receive(i, objective, status):
    import numpy as np

    with _lock:
        reporter = _active[-1] if _active else None
    if reporter is not None:
        reporter.update(np.asarray(i), np.asarray(objective), np.asarray(status))
    return np.zeros(np.broadcast_shapes(*(np.shape(x) for x in (i, objective, status))), np.int32)


class FitProgress:
    """Host-side report of one verbose fit: compile time apart, then iterations and the best
    objective while the loop runs (a tqdm bar when tqdm is installed and ``stream`` is a
    terminal or a notebook, otherwise a plain line every :data:`LINE_EVERY` seconds), then a
    closing line. ``max_iter`` and ``blocks`` (restart blocks run one after another) size the bar.
    """

    def __init__(self, what: str, max_iter: int, blocks: int = 1, stream=None):
        self.what, self.max_iter, self.blocks = what, max_iter, max(1, blocks)
        self.stream = sys.stderr if stream is None else stream
        self.bar, self.block, self.last_i, self.best = None, 0, -1, float("-inf")
        self.iteration, self.running, self.printed = 0, 0, 0.0
        self.compile_seconds = None

    def compiling(self) -> Ticker:
        """Context manager around the compilation (prints its duration)."""
        return Ticker(f"{self.what}: compiling", self.stream)

    def __enter__(self) -> "FitProgress":
        self.start = time.perf_counter()
        self.bar = _tqdm_bar(self.max_iter * self.blocks, self.what, self.stream)
        with _lock:
            _active.append(self)
        return self

    def update(self, i, objective, status) -> None:
        """Values from the loop (scalars, or arrays over a batch of restarts)."""
        import numpy as np

        i, objective, status = (x.ravel() for x in (i, objective, status))
        top = int(i.max())
        if top < self.last_i:  # the next block of restarts started
            self.block = min(self.block + 1, self.blocks - 1)
        self.last_i = top
        good = (status <= 2) & np.isfinite(objective) & (i >= 0)
        if good.any():
            self.best = max(self.best, float(objective[good].max()))
        self.iteration, self.running = max(top, 0), int((status == 0).sum())
        position = self.block * self.max_iter + self.iteration
        if self.bar is not None:
            self.bar.update(max(0, position - self.bar.n))
            self.bar.set_postfix_str(self._fields(), refresh=False)
        elif time.perf_counter() - self.printed >= LINE_EVERY:
            self._line()

    def _fields(self) -> str:
        block = f"  block {self.block + 1}/{self.blocks}" if self.blocks > 1 else ""
        return f"best objective {self.best: .6f}  running {self.running}{block}"

    def _line(self) -> None:
        self.printed = time.perf_counter()
        print(f"{self.what}: iteration {self.iteration:5d}  {self._fields()}  "
              f"elapsed {self.printed - self.start:6.1f} s", file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        with _lock:
            _active.remove(self)
        if self.bar is not None:
            self.bar.close()
        self.seconds = time.perf_counter() - self.start

    def finished(self, text: str) -> None:
        """The closing line (e.g. the result's summary in one line)."""
        print(f"{self.what}: {text}", file=self.stream, flush=True)


def _tqdm_bar(total: int, what: str, stream):
    """A tqdm bar (the notebook one under Jupyter), or None without tqdm or off a terminal."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    in_notebook = "ipykernel" in sys.modules
    if not in_notebook and not getattr(stream, "isatty", lambda: False)():
        return None
    return tqdm(total=total, desc=what, unit="it", file=stream, leave=True)
