"""One writer per run directory, and clean-up after runs that were killed.

Why: scheduled runs overlap (a slow cron job still running when the next starts, two CI
jobs given the same ``--out``).  Without a lock both would write hidden temporary siblings
and the second rename would either fail late or - before issue 14 - silently land under
``<out>-2``, so a scheduler would read last week's numbers.  The second run now fails at
once with exit 2 naming the holder's pid.

The lock is ``flock`` on ``.<name>.lock`` beside the run directory: the kernel releases it
when its holder dies, even by SIGKILL, so a lock left by a killed run is never stale for
long.  That same property identifies stale temporary directories: a ``.<name>.tmp-*``
sibling whose ``.<name>.lock`` can be taken belongs to a dead run and is removed
(:func:`remove_stale_siblings`, called whenever a run directory is created).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
from pathlib import Path

from reportgen.usererrors import OutputError, output_error

_TMP = re.compile(r"^\.(?P<name>.+)\.tmp-[A-Za-z0-9_]+$")


def lock_path(final: Path) -> Path:
    return final.parent / f".{final.name}.lock"


class RunLock:
    """``with RunLock(final):`` exclusive right to create ``final``; OutputError if held elsewhere."""

    def __init__(self, final: Path | str):
        self.final = Path(final)
        self.path = lock_path(self.final)
        self.fd: int | None = None

    def acquire(self, blocking: bool = False) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise output_error(e, self.final) from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise output_error(e, self.final) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as e:
                holder = _read_pid(fd)
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputError(
                        f"another reportgen run{f' (pid {holder})' if holder else ''} is writing "
                        f"{str(self.final)!r}; wait for it to finish or choose another --out") from None
                raise output_error(e, self.final) from None
            # the previous holder may have unlinked the file between our open and flock: retry
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)      # unlink while still holding it (see acquire)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


def remove_stale_siblings(parent: Path) -> list[Path]:
    """Remove ``.<name>.tmp-*`` directories in ``parent`` whose run is dead (its lock is free),
    and lock files nobody holds.  Returns what was removed.  Never touches a live run's files."""
    removed: list[Path] = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TMP.match(p.name)
        if not m or not p.is_dir() or p.is_symlink():
            continue
        lock = RunLock(parent / m["name"])
        try:
            lock.acquire()
        except OutputError:
            continue                         # a live run owns it
        try:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
        finally:
            lock.release()
    for p in entries:
        if p.name.startswith(".") and p.name.endswith(".lock") and p.is_file() and p.exists():
            lock = RunLock(parent / p.name[1:-len(".lock")])
            try:
                lock.acquire()
            except OutputError:
                continue
            lock.release()                   # unlinks it
            removed.append(p)
    return removed
