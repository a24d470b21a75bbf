"""Configs from the local file system: a directory with config.json, or a .json file.

A local path is the user's explicit choice, so it wins over every other source and is never
combined with them (no Hub lookup "to be sure").  The path is only read, never used to build
output paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SourceError
from .resolved import QUANT_FILE, QUANT_KEY, ResolvedConfig, read_json_object

if TYPE_CHECKING:
    from reportgen.job import ModelRef


def local_config_path(model_id: str) -> tuple[Path, Path | None]:
    """(config file, optional ModelOpt side file) for a path-like id; neither need exist.

    Directory → ``dir/config.json`` + ``dir/hf_quant_config.json``.  File ``X.json`` → itself +
    ``X.hf_quant_config.json`` (the bundled naming) or, for a file named ``config.json``, the
    sibling ``hf_quant_config.json`` (a checkout of a Hub repo).
    """
    p = Path(os.path.expanduser(model_id))
    if p.is_dir():
        return p / "config.json", p / QUANT_FILE
    if p.name == "config.json":
        return p, p.with_name(QUANT_FILE)
    return p, p.with_name(p.name[: -len(".json")] + "." + QUANT_FILE) if p.name.endswith(".json") else None


def resolve_local(ref: ModelRef) -> ResolvedConfig:
    """Read a local config; ``not_found`` when the path or its config.json is missing."""
    try:
        return _resolve_local(ref)
    except OSError as e:      # ENAMETOOLONG, ELOOP...: the path itself cannot name a file
        raise SourceError(ref, "invalid_id", f"local path cannot be used: {e.strerror or type(e).__name__}") from None


def _resolve_local(ref: ModelRef) -> ResolvedConfig:
    config_path, quant_path = local_config_path(ref.id)
    if not config_path.is_file():
        given = Path(os.path.expanduser(ref.id))
        where = "directory has no config.json" if given.is_dir() else "no such file or directory"
        raise SourceError(ref, "not_found", f"local path {ref.id!r}: {where}")
    config = read_json_object(config_path, ref)
    extra = {}
    if quant_path is not None and quant_path.is_file():
        extra[QUANT_KEY] = read_json_object(quant_path, ref, QUANT_FILE)
    return ResolvedConfig(ref=ref, config=config, source="local", revision=ref.revision,
                          path=str(config_path.resolve()), extra=extra)
