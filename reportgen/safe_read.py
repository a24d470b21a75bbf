"""Reading user-named input files safely: regular files only, bounded size, strict UTF-8.

Why: a job, model list or catalog path comes from a user or a scheduled job's config and
may point anywhere - ``/dev/zero`` (read until the machine runs out of memory), a FIFO
(``open`` blocks forever), ``/proc/self/environ`` (secrets, NUL-separated), a 10 GB file, a
binary.  Every such file is opened without blocking, checked with ``fstat`` on the opened
descriptor (no race between the check and the read), read at most ``max_bytes`` + 1 bytes,
and decoded as UTF-8 (a leading BOM is accepted; NUL bytes mean binary).  Errors never
quote the file's content.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from reportgen.usererrors import InputFileError

MIB = 1024 * 1024
JOB_MAX_BYTES = 1 * MIB           # a job file is a few hundred bytes
LIST_MAX_BYTES = 4 * MIB          # ~100k model ids
CATALOG_MAX_BYTES = 4 * MIB
CONFIG_MAX_BYTES = 4 * MIB        # the largest real config.json we know is ~200 KB (multimodal)


def read_bytes_capped(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; InputFileError otherwise."""
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputFileError(f"{what} {p!r}: cannot open ({e.strerror or type(e).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(f"{what} {p!r} is not a regular file (a device, pipe or directory)")
        if st.st_size > max_bytes:
            raise InputFileError(f"{what} {p!r} is {st.st_size / MIB:.1f} MiB, larger than the "
                                 f"{max_bytes / MIB:g} MiB allowed")
        chunks, total = [], 0
        while True:        # procfs files report size 0: read, but never beyond the cap
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise InputFileError(f"{what} {p!r} is larger than the {max_bytes / MIB:g} MiB allowed")
        return b"".join(chunks)
    except OSError as e:
        raise InputFileError(f"{what} {p!r}: cannot read ({e.strerror or type(e).__name__})") from None
    finally:
        os.close(fd)


def decode_text(data: bytes, what: str, where: str) -> str:
    """Strict UTF-8 (BOM stripped); binary (NUL bytes or invalid UTF-8) -> InputFileError."""
    if b"\x00" in data:
        raise InputFileError(f"{what} {where!r} is not a text file (binary content; not shown)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputFileError(f"{what} {where!r} is not a text file (not UTF-8; not shown)") from None


def read_text_file(path: str | Path, what: str, max_bytes: int) -> str:
    """A regular UTF-8 text file of at most ``max_bytes`` (a BOM is accepted)."""
    return decode_text(read_bytes_capped(path, what, max_bytes), what, str(path))
