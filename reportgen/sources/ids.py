"""Model ids and revisions: what is a local path, what is a valid Hub id, what is a bundle key.

Ids come from user files (job TOML, model lists), so they are untrusted.  A Hub id reaches
URLs and, through ``huggingface_hub``, cache paths (``models--org--name``, ``refs/<revision>``);
a revision is written verbatim as a file name under ``refs/``.  Both are therefore checked
against the Hub grammar before anything touches the network or the disk.  Output paths are
never derived from ids (snapshots name files by hash; see snapshot.py).
"""

from __future__ import annotations

import re

from huggingface_hub.utils import HFValidationError, validate_repo_id

_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
# Branch, tag or commit: git ref characters, no traversal, no leading slash, bounded length.
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,254}$")
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


def looks_like_path(model_id: str) -> bool:
    """True for ids the user meant as a file-system path.

    Deliberately syntactic: ``Qwen/Qwen3-8B`` is a Hub id even if a ``Qwen/Qwen3-8B``
    directory happens to exist in the working directory (transformers would pick the directory,
    which makes a scheduled job's result depend on its cwd).  Write ``./Qwen/Qwen3-8B`` to
    mean the directory.  A ``.json`` suffix also means a file: no Hub repo id ends that way
    in practice, and a config file is the natural thing to point at.
    """
    return (model_id.startswith(_PATH_PREFIXES) or bool(_WINDOWS_DRIVE.match(model_id))
            or model_id.lower().endswith(".json"))


def hub_id_problem(model_id: str) -> str | None:
    """Why ``model_id`` is not a valid Hub repo id, or None when it is.

    Uses huggingface_hub's own validator (1–96 chars, ``name`` or ``org/name``, ``[\\w.-]``,
    no ``--``/``..``, no ``.git`` suffix) plus the checks it leaves to the server.
    """
    if not model_id or model_id != model_id.strip():
        return "empty id or surrounding whitespace"
    if any(ord(c) < 32 for c in model_id):
        return "control characters in id"
    try:
        validate_repo_id(model_id)
    except HFValidationError:
        return ("not a Hugging Face repo id: expected 'org/name' (letters, digits, '-', '_', '.'; "
                "no '..' or '--'; at most 96 characters); prefix a local path with './' or '/'")
    return None


def revision_problem(revision: str | None) -> str | None:
    """Why ``revision`` is unsafe or invalid, or None.  ``None`` means the default branch."""
    if revision is None:
        return None
    if not _REVISION.match(revision) or ".." in revision or "//" in revision or revision.endswith(("/", ".lock")):
        return "invalid revision: expected a branch, tag or 40-hex commit sha (no '..', no leading '/')"
    return None


def bundle_key(model_id: str) -> str:
    """File stem of a bundled config: ``org/name`` → ``org--name``, case-folded for lookup."""
    return model_id.replace("/", "--").casefold()
