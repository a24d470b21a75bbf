"""Failures caused by the user's input or environment, as opposed to our bugs.

Why a shared base: the CLI maps every ``UserInputError`` to exit 2 with its one-line
message (issue 14: a damaged run directory, an output disk that is read-only or full, a
template that does not parse are not internal errors).  Library modules raise the
specific subclasses below without importing the CLI.
"""

from __future__ import annotations

import errno

# OSError numbers that mean "the place you asked us to write cannot take it", never a bug
OUTPUT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                           errno.EISDIR, errno.ENAMETOOLONG, errno.EFBIG, errno.EEXIST, errno.ENOENT,
                           errno.ELOOP, errno.EMLINK, errno.EIO})


class UserInputError(Exception):
    """Bad input or environment: the CLI prints the message and exits 2."""


class OutputError(UserInputError):
    """The output location cannot be written (read-only, full, not a directory...)."""


class RunDirError(UserInputError):
    """A run directory given to render/diff is damaged or not one of ours."""


class InputFileError(UserInputError, ValueError):
    """An input file (job, model list, catalog, config) is not a readable text file of sane size."""


class TemplateError(UserInputError):
    """A user template that cannot be used (does not parse, escapes its directory)."""


def output_error(e: OSError, where) -> OutputError:
    """One line for an OSError hit while writing ``where``."""
    why = e.strerror or type(e).__name__
    return OutputError(f"cannot write {str(where)!r}: {why}"
                       + (" (the disk is full)" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""))
