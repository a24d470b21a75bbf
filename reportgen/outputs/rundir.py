"""Atomic run directories: write everything into a hidden temporary sibling, then rename.

A scheduled run that is killed half-way must not leave a half-written report
that next week's `reportgen diff` would pick up.  The final name is only ever
created by one `os.rename` of a complete directory.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

from reportgen.usererrors import OUTPUT_ERRNOS, OutputError, output_error

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

# temporary run directories of this process that exist and are not yet renamed or removed: the CLI's
# signal exits (reportgen.cli) remove whatever is still here, so an interrupted run leaves nothing
# behind even if a signal lands where a ``with`` block cannot clean up
_LIVE: set[Path] = set()


def remove_tree(path: Path) -> None:
    """``rmtree`` that checks its work: ignore_errors hides a directory that was not emptied, so try
    again (three times) and stop tracking it once it is gone."""
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            break
    _LIVE.discard(path)


def remove_live_temporaries() -> None:
    """Remove every temporary run directory this process still holds (signal exits)."""
    for path in list(_LIVE):
        remove_tree(path)


def safe_name(text: str, fallback: str = "job") -> str:
    """A single, harmless path component: no separators, no '..', no leading dot."""
    name = _SAFE.sub("-", text).strip(".-")[:80]
    return name or fallback


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def job_folder(job_name: str) -> str:
    """The job's history folder: its name when already a safe component, else the sanitised name
    plus a hash of the exact name, so two jobs never share a history (non-Latin names such as
    "週次" and "月次" both sanitise to "job"; "a b" and "a-b" both to "a-b")."""
    import hashlib

    safe = safe_name(job_name)
    if safe == job_name:
        return safe
    return f"{safe}-{hashlib.sha256(job_name.encode('utf-8')).hexdigest()[:8]}"


def default_run_dir(base: Path, job_name: str, now: datetime | None = None) -> Path:
    return base / job_folder(job_name) / utc_stamp(now)


class AtomicDir:
    """`with AtomicDir(final) as d:` write into `d.tmp`; on success it becomes `d.final`.

    ``exclusive`` (an explicit ``--out``): the final name must not exist; if it appears
    meanwhile the run fails (OutputError, exit 2) instead of landing somewhere else.
    Otherwise (the default timestamped tree: two sequential runs in the same second) the
    directory gets a -2, -3 ... suffix rather than overwriting a finished run.  Concurrent
    writers are kept apart by :class:`reportgen.outputs.lock.RunLock`, taken by the caller.
    On any exception (SIGTERM and SIGINT included, see reportgen.signals) the temporary
    directory is removed and nothing appears under the final name; temporary siblings left
    by runs killed with SIGKILL are removed on entry.
    """

    def __init__(self, final: Path, exclusive: bool = False):
        self.final = Path(final)
        self.exclusive = exclusive
        self.tmp: Path | None = None

    def __enter__(self) -> "AtomicDir":
        from reportgen.outputs.lock import remove_stale_siblings

        if self.exclusive:
            check_out_path(self.final)
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_siblings(self.final.parent)
            # the name is known before the directory exists, so a signal that lands inside __enter__
            # (before the with-body, where __exit__ would not run) can still remove it
            self.tmp = self.final.parent / f".{self.final.name}.tmp-{secrets.token_hex(4)}"
            _LIVE.add(self.tmp)
            os.mkdir(self.tmp, 0o700)
        except OSError as e:
            raise output_error(e, self.final) from None
        except BaseException:                  # SIGINT / SIGTERM while entering: nothing left behind
            if self.tmp is not None:
                remove_tree(self.tmp)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.tmp is not None
        if exc_type is not None:
            remove_tree(self.tmp)
            if isinstance(exc, OSError) and exc.errno in OUTPUT_ERRNOS:
                # a read-only or full output disk is the environment, not a bug: exit 2, nothing left
                raise output_error(exc, self.final) from None
            return False
        try:
            os.chmod(self.tmp, 0o755)
        except OSError as e:
            remove_tree(self.tmp)
            raise output_error(e, self.final) from None
        target, n = self.final, 1
        while True:
            try:
                if target.exists() or target.is_symlink():
                    # rename(2) would silently replace an empty directory
                    raise FileExistsError(errno.EEXIST, "exists", str(target))
                os.rename(self.tmp, target)
                _LIVE.discard(self.tmp)
                break
            except OSError as e:
                if not target.exists() or self.exclusive:
                    remove_tree(self.tmp)
                    if self.exclusive and target.exists():
                        raise OutputError(f"--out: {str(target)!r} appeared while this run was writing; "
                                          "runs never overwrite a finished run") from None
                    raise output_error(e, self.final) from None
                n += 1
                target = self.final.with_name(f"{self.final.name}-{n}")
        self.final = target
        return False


def check_out_path(final: Path | str) -> Path:
    """Refuse an output path that can never work, before any model is resolved.

    Empty, the current directory, an existing path (runs never overwrite), or a path below
    a regular file (``--out some.csv/run``): each is an :class:`OutputError` (exit 2).
    """
    text = str(final)
    if not text.strip() or text.strip() in (".", "./"):
        raise OutputError("--out: an empty path or '.' is not a run directory; give a new directory name")
    p = Path(text)
    if p.exists() or p.is_symlink():
        raise OutputError(f"--out: {text!r} already exists; runs never overwrite a finished run")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"--out: {str(parent)!r} is not a directory (it is a file), so "
                                  f"{text!r} cannot be created")
            break
    return p
