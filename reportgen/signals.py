"""SIGTERM cleans up like Ctrl-C.

Why: cron's timeout, systemd and Kubernetes stop a job with SIGTERM, whose default action
kills the process at once - the hidden temporary run directory would stay behind.  While a
command runs, SIGTERM raises :class:`Terminated` (a BaseException, like KeyboardInterrupt, so
no ``except Exception`` in library code swallows it); the ``with`` blocks that own temporary
files remove them, and the CLI exits 143 (128 + SIGTERM), as a shell reports a TERM-killed
process.  Ctrl-C (SIGINT) exits 130 the same way.
"""

from __future__ import annotations

import contextlib
import signal
import threading

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(BaseException):
    """SIGTERM arrived: unwind (cleaning up) and exit 143."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_unwinds():
    """Within the block, SIGTERM raises Terminated in the main thread (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
