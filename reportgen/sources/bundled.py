"""The bundled offline snapshot: config.json copies of popular models shipped in the wheel.

Used last, only when the Hub cannot answer (offline or unreachable): a bundled copy is not
pinned to a commit (see bundled/SOURCES.md for provenance), so it never overrides what the
Hub or the user's cache says, and it is not offered for a pinned revision other than the
default branch.  Lookup is by id with ``/`` → ``--``, case-insensitive (Hub ids are).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .ids import bundle_key
from .resolved import QUANT_FILE, QUANT_KEY, ResolvedConfig, read_json_object

if TYPE_CHECKING:
    from reportgen.job import ModelRef

_QUANT_SUFFIX = "." + QUANT_FILE
DEFAULT_BRANCHES = (None, "main")


def bundled_dir() -> Path:
    return Path(str(resources.files(__package__).joinpath("bundled")))


@lru_cache(maxsize=1)
def _index() -> dict[str, Path]:
    """casefolded ``org--name`` → config path (side files excluded)."""
    out: dict[str, Path] = {}
    for p in sorted(bundled_dir().glob("*.json")):
        if not p.name.endswith(_QUANT_SUFFIX):
            out[p.stem.casefold()] = p
    return out


def bundled_ids() -> list[str]:
    """Model ids in the bundle, as spelled by their file names."""
    return [p.stem.replace("--", "/", 1) for p in _index().values()]


def find_bundled(ref: ModelRef) -> ResolvedConfig | None:
    """The bundled config for ``ref``, or None (not bundled, or a non-default revision asked)."""
    if ref.revision not in DEFAULT_BRANCHES:
        return None
    path = _index().get(bundle_key(ref.id))
    if path is None:
        return None
    extra = {}
    quant = path.with_name(path.stem + _QUANT_SUFFIX)
    if quant.is_file():
        extra[QUANT_KEY] = read_json_object(quant, ref, QUANT_FILE)
    return ResolvedConfig(ref=ref, config=read_json_object(path, ref), source="bundled",
                          revision=ref.revision, path=str(path), extra=extra)
