"""Ordered work ahead on a small thread pool: ``matrix.iter_cell_batches`` on two cores.

Why: the estimator's passes are polars operations, which release the GIL while they run, so two Python
threads each running one do run on two cores; the serial loop used one (docs/decisions.md "Estimator on
both cores").  ``Ordered`` runs the jobs of a window in worker threads and hands their results back
strictly in submission order, a bounded number ahead; "side" jobs (a run's ``_prepare``) run in the same
pool without entering the window.  Closing (``with``: the consumer stopped, an exception, a
KeyboardInterrupt in the waiting main thread) cancels every job not started and does not wait for the
running ones (each one polars call on one batch or chunk; the pool's threads end when it returns).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator


def workers() -> int:
    """Cores this process may use: its CPU affinity (``os.sched_getaffinity``; ``os.cpu_count`` where that does
    not exist), capped by ``POLARS_MAX_THREADS`` when set (the user's bound on polars' own threads)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    cap = os.environ.get("POLARS_MAX_THREADS", "").strip()
    if cap.isdigit() and int(cap) > 0:
        n = min(n, int(cap))
    return max(1, n)


class Ordered:
    """A window of at most ``depth`` jobs whose results are not yet delivered, computed by ``workers`` threads
    and delivered in submission order (``room``, ``until_done``, ``drain`` yield them).  Each window job carries
    a tag (the run it belongs to: ``only``, ``drain(below=...)``)."""

    def __init__(self, workers: int = 2, depth: int = 2):
        self.depth = max(1, depth)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reportgen-ahead")
        self._window: deque[tuple[int, Future]] = deque()
        self._sides: set[Future] = set()

    def __enter__(self) -> "Ordered":
        return self

    def __exit__(self, *exc) -> None:
        for _, f in self._window:
            f.cancel()
        for f in list(self._sides):
            f.cancel()
        self._window.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def side(self, fn: Callable, *args: Any) -> Future:
        """Run ``fn(*args)`` in the pool outside the window; the caller takes ``.result()`` itself."""
        f = self._pool.submit(fn, *args)
        self._sides.add(f)
        f.add_done_callback(self._sides.discard)   # a done job's result is held by the caller's future alone
        return f

    def submit(self, tag: int, fn: Callable, *args: Any) -> None:
        """Queue ``fn(*args)`` at the end of the window (make ``room`` first)."""
        self._window.append((tag, self._pool.submit(fn, *args)))

    def _next(self) -> Any:
        # no local keeps the result: once delivered, the consumer holds the only reference
        return self._window.popleft()[1].result()

    def room(self) -> Iterator[Any]:
        """Deliver results until the window has room for one more job."""
        while len(self._window) >= self.depth:
            yield self._next()

    def until_done(self, futs: Iterable[Future]) -> Iterator[Any]:
        """Deliver results while a job of ``futs`` runs; all of them if one of ``futs`` failed (its exception is
        then raised by the caller's ``.result()`` after every earlier result, as the serial loop does)."""
        futs = list(futs)
        while self._window and not all(f.done() for f in futs):
            yield self._next()
        if any(f.exception() is not None for f in futs):
            yield from self.drain()

    def oldest(self, default: int) -> int:
        """The smallest tag of a job in the window (``default`` when the window is empty)."""
        return min((t for t, _ in self._window), default=default)

    def drain(self, below: int | None = None) -> Iterator[Any]:
        """Deliver the window's results (only those with a tag below ``below`` when given)."""
        while self._window and (below is None or self._window[0][0] < below):
            yield self._next()
