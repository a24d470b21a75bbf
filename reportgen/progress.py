"""Progress on stderr: a rich bar on a terminal, plain lines otherwise, nothing with -q.

Scheduled jobs log to files, where bars turn into control-character soup, so
the plain-line mode prints at most ~10 lines per task.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, quiet: bool = False):
        self.label, self.total, self.quiet = label, max(total, 0), quiet
        self.done = 0
        self._bar = None
        self._t0 = time.perf_counter()
        self._next_report = 0
        if quiet or total == 0:
            return
        if sys.stderr.isatty():
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(transient=True, console=None)
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)
        else:
            print(f"{label}: 0/{total}", file=sys.stderr, flush=True)
            self._next_report = max(1, total // 10)

    def advance(self, n: int = 1, note: str | None = None) -> None:
        self.done += n
        if self.quiet or self.total == 0:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=n, description=f"{self.label} {note or ''}".strip())
        elif self.done >= self._next_report or self.done == self.total:
            print(f"{self.label}: {self.done}/{self.total}", file=sys.stderr, flush=True)
            self._next_report = self.done + max(1, self.total // 10)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if not self.quiet and self.total:
            print(f"{self.label}: done in {time.perf_counter() - self._t0:.2f} s", file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)
