"""Frozen snapshots: every config a job needs, with ids and revisions, in one directory.

A weekly report must be reproducible and runnable on a machine without the Hub:
``write_snapshot`` freezes resolved configs; ``resolve_all(..., snapshot_dir=DIR)`` then
reads only DIR (plus local paths), offline, and returns the same config dicts and revisions.

Layout::

    DIR/manifest.json                 format, version, tool version, created (UTC), models[]
    DIR/configs/<key>.json            config.json as resolved
    DIR/configs/<key>.<side file>     e.g. <key>.hf_quant_config.json

``<key>`` is a hash of (id, asked revision): ids never become file names, so a hostile id
(``../../x``) cannot steer where anything is written, and the manifest is validated on read
(every file must stay inside DIR).  Tokens are never part of a result, so never written.
The directory is written atomically (temp dir, then rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .errors import SourceError
from .resolved import ResolvedConfig, read_json_object

if TYPE_CHECKING:
    from reportgen.job import ModelRef

MANIFEST = "manifest.json"
FORMAT = "reportgen-config-snapshot"
VERSION = 1


def _key(model_id: str, revision: str | None) -> str:
    return hashlib.sha256(f"{model_id}\0{revision or ''}".encode()).hexdigest()[:24]


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_snapshot(results: Iterable[ResolvedConfig | SourceError], out_dir: str | os.PathLike) -> Path:
    """Freeze ``results`` into ``out_dir``; returns the manifest path.

    SourceErrors are listed under ``unresolved`` (kind and message only) so a snapshot of a
    partly failed job says what is missing.  An existing ``out_dir`` is replaced only if it is
    empty or an earlier snapshot (has our manifest); anything else is refused.
    """
    from reportgen import __version__

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not _is_snapshot(out):
        raise FileExistsError(f"{out} exists and is not a reportgen snapshot; refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=out.parent))
    try:
        (tmp / "configs").mkdir()
        models, unresolved, seen = [], [], set()
        for r in results:
            if isinstance(r, SourceError):
                unresolved.append({"id": r.ref.id, "requested_revision": r.ref.revision,
                                   "kind": r.kind, "message": r.message})
                continue
            key = _key(r.ref.id, r.ref.revision)
            if key in seen:
                continue
            seen.add(key)
            body = _dump(r.config)
            (tmp / "configs" / f"{key}.json").write_bytes(body)
            extra_files = {}
            for name, payload in sorted(r.extra.items()):
                fname = f"configs/{key}.{_safe_extra(name)}.json"
                (tmp / fname).write_bytes(_dump(payload))
                extra_files[name] = fname
            models.append({"id": r.ref.id, "requested_revision": r.ref.revision, "revision": r.revision,
                           "origin": r.source, "config": f"configs/{key}.json",
                           "sha256": hashlib.sha256(body).hexdigest(), "extra": extra_files})
        manifest = {"format": FORMAT, "version": VERSION, "tool_version": __version__,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "models": models, "unresolved": unresolved}
        (tmp / MANIFEST).write_bytes(_dump(manifest))
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / MANIFEST


def _safe_extra(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"extra key {name!r} is not a simple name")
    return name


def _is_snapshot(d: Path) -> bool:
    try:
        return json.loads((d / MANIFEST).read_text("utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _replace_dir(new: Path, out: Path) -> None:
    """Rename ``new`` onto ``out``; an old snapshot is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class _Entry:
    id: str
    requested_revision: str | None
    revision: str | None
    config: Path
    sha256: str
    extra: dict[str, Path]


class SnapshotReader:
    """Looks up (id, revision) in a snapshot directory.  No network, ever."""

    def __init__(self, snapshot_dir: str | os.PathLike):
        self.dir = Path(snapshot_dir).resolve()
        try:
            manifest = json.loads((self.dir / MANIFEST).read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{snapshot_dir} is not a readable snapshot ({MANIFEST}: {type(e).__name__})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"{snapshot_dir}/{MANIFEST} is not a reportgen snapshot manifest")
        if manifest.get("version") != VERSION:
            raise ValueError(f"snapshot version {manifest.get('version')!r} is not supported (expected {VERSION})")
        self._entries: dict[tuple[str, str | None], _Entry] = {}
        for m in manifest.get("models", []):
            e = _Entry(id=str(m["id"]), requested_revision=m.get("requested_revision"),
                       revision=m.get("revision"), config=self._inside(m["config"]), sha256=str(m["sha256"]),
                       extra={str(k): self._inside(v) for k, v in (m.get("extra") or {}).items()})
            self._entries[(e.id, e.requested_revision)] = e

    def _inside(self, rel: str) -> Path:
        p = (self.dir / rel).resolve()
        if not p.is_relative_to(self.dir):
            raise ValueError(f"snapshot manifest points outside the snapshot: {rel!r}")
        return p

    def __contains__(self, ref: ModelRef) -> bool:
        return (ref.id, ref.revision) in self._entries

    def get(self, ref: ModelRef) -> ResolvedConfig | None:
        """The frozen config for ``ref`` (exact id and asked revision), or None."""
        e = self._entries.get((ref.id, ref.revision))
        if e is None:
            return None
        try:
            body = e.config.read_bytes()
        except OSError:
            raise SourceError(ref, "not_found", f"snapshot file missing: {e.config.name}") from None
        if hashlib.sha256(body).hexdigest() != e.sha256:
            raise SourceError(ref, "malformed_config", f"snapshot file {e.config.name} does not match its "
                                                       "manifest checksum (edited or corrupted)")
        config = read_json_object(e.config, ref)
        extra = {name: read_json_object(p, ref, p.name) for name, p in e.extra.items()}
        return ResolvedConfig(ref=ref, config=config, source="snapshot", revision=e.revision,
                              path=str(e.config), extra=extra)
