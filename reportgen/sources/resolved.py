"""The successful result of resolving one model, and the one way config files are read.

Every source (local, hub, cache, bundled, snapshot) ends in :func:`read_json_object`, so a
truncated download, an HTML error page saved as config.json or a JSON list all become the
same ``malformed_config`` error whatever the origin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SourceError

if TYPE_CHECKING:
    from reportgen.job import ModelRef

SOURCES = ("local", "hub", "cache", "bundled", "snapshot")
QUANT_FILE = "hf_quant_config.json"     # ModelOpt (NVIDIA) quantization side file, optional
QUANT_KEY = "hf_quant_config"           # its key in ResolvedConfig.extra


@dataclass(frozen=True)
class ResolvedConfig:
    """A parsed config.json and where it came from.

    ``source``: ``local`` (a path the user gave), ``hub`` (confirmed against the Hub in this
    run, possibly served from the cache), ``cache`` (the local HF cache without asking the Hub:
    offline or Hub unreachable), ``bundled`` (reportgen's own offline copy), ``snapshot`` (a
    frozen ``--snapshot`` directory).  ``revision`` is the commit sha when known, else the
    revision asked for (None = default branch).  ``extra`` holds optional side files, e.g.
    ``{"hf_quant_config": {...}}``.
    """

    ref: ModelRef
    config: dict[str, Any]
    source: str
    revision: str | None = None
    path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; expected one of {SOURCES}")


def read_json_object(path: str | Path, ref: ModelRef, what: str = "config.json") -> dict[str, Any]:
    """Parse ``path`` as a JSON object or raise ``SourceError(malformed_config)``.

    NaN/Infinity literals are accepted (Python's json does, and some real configs carry them);
    anything that is not a top-level object is rejected because every consumer indexes keys.
    """
    from reportgen.safe_read import CONFIG_MAX_BYTES, read_bytes_capped
    from reportgen.usererrors import InputFileError

    try:
        raw = read_bytes_capped(path, what, CONFIG_MAX_BYTES)   # size cap checked before reading
    except InputFileError as e:
        raise SourceError(ref, "malformed_config", str(e).replace(repr(str(path)), "").replace("  ", " ")) from None
    try:
        text = raw.decode("utf-8-sig")
        data = json.loads(text)
    except RecursionError:
        raise SourceError(ref, "malformed_config", f"{what} is nested too deeply to be a model config") from None
    except UnicodeDecodeError:
        raise SourceError(ref, "malformed_config", f"{what} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise SourceError(ref, "malformed_config",
                          f"{what} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise SourceError(ref, "malformed_config",
                          f"{what} must be a JSON object, got {type(data).__name__}")
    return data
