"""SIGTERM cleans up like Ctrl-C.

Why: cron's timeout, systemd and Kubernetes stop a job with SIGTERM, whose default action
kills the process at once - the hidden temporary run directory would stay behind.  While a
command runs, SIGTERM raises :class:`Terminated` (a BaseException, like KeyboardInterrupt, so
no ``except Exception`` in library code swallows it); the ``with`` blocks that own temporary
files remove them, and the CLI exits 143 (128 + SIGTERM), as a shell reports a TERM-killed
process.  Ctrl-C (SIGINT) exits 130 the same way.

One Ctrl-C must be one KeyboardInterrupt.  Importing polars (2.x) installs its own SIGINT
handler at the C level (``signal_hook``, polars_error/abort.rs) that aborts a running query
with a KeyboardInterrupt *and* chains to Python's handler, whose pending flag raises a
*second* KeyboardInterrupt at the next bytecode check - typically at the first line of the
``__exit__`` that was about to remove the temporary run directory, so the clean-up was
skipped (the flaky ``test_signal_mid_run...[2-130]``; docs/decisions.md).  While a command runs,
:func:`reclaim_sigint` puts Python's own handler (or an inherited SIG_IGN) back in place:
a polars call then runs to its end and the single interrupt is raised when it returns.
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


def reclaim_sigint() -> None:
    """Re-install, at the C level, the SIGINT disposition Python records (default_int_handler,
    a user's handler, or an inherited SIG_IGN), replacing the hook polars installs on import.

    ``signal.getsignal`` still reports Python's handler after polars took over, and
    ``signal.signal`` always calls sigaction, so this undoes polars' hook.  Main thread only."""
    import importlib

    importlib.import_module("polars")    # its import installs the hook: it must come first

    current = signal.getsignal(signal.SIGINT)
    if current is not None:          # None: installed outside Python; leave it alone
        signal.signal(signal.SIGINT, current)


@contextlib.contextmanager
def sigterm_unwinds():
    """Within the block, SIGTERM raises Terminated in the main thread (no-op elsewhere), and
    SIGINT raises exactly one KeyboardInterrupt (:func:`reclaim_sigint`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reclaim_sigint()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
