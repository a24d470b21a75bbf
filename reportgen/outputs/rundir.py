"""Atomic run directories: write everything into a hidden temporary sibling, then rename.

A scheduled run that is killed half-way must not leave a half-written report
that next week's `reportgen diff` would pick up.  The final name is only ever
created by one `os.rename` of a complete directory.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, fallback: str = "job") -> str:
    """A single, harmless path component: no separators, no '..', no leading dot."""
    name = _SAFE.sub("-", text).strip(".-")[:80]
    return name or fallback


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def default_run_dir(base: Path, job_name: str, now: datetime | None = None) -> Path:
    return base / safe_name(job_name) / utc_stamp(now)


class AtomicDir:
    """`with AtomicDir(final) as d:` write into `d.tmp`; on success it becomes `d.final`.

    If `final` already exists (two runs in the same second) the directory gets a
    -2, -3 ... suffix rather than overwriting a finished run.  On any exception the
    temporary directory is removed and nothing appears under the final name.
    """

    def __init__(self, final: Path):
        self.final = Path(final)
        self.tmp: Path | None = None

    def __enter__(self) -> "AtomicDir":
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.tmp-", dir=self.final.parent))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        os.chmod(self.tmp, 0o755)
        target, n = self.final, 1
        while True:
            try:
                os.rename(self.tmp, target)
                break
            except OSError:
                if not target.exists():
                    shutil.rmtree(self.tmp, ignore_errors=True)
                    raise
                n += 1
                target = self.final.with_name(f"{self.final.name}-{n}")
        self.final = target
        return False
