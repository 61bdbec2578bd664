"""Host-side progress for the command line and the demo: phases with elapsed time.

A fit is one XLA call, so progress is a clock, not a fraction: :class:`Ticker` prints the elapsed
seconds from a background thread while the call runs (JAX releases the GIL while it compiles and
executes), and nothing enters the jitted program.
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
