"""Where model configs come from: local paths, the Hugging Face Hub and its cache, the bundled
offline snapshot, and frozen ``--snapshot`` directories.

Public interface (the rest of reportgen uses only this)::

    resolve_all(refs, *, snapshot_dir=None, offline=None, token=None, workers=8, timeout=10.0,
                retries=3, progress=None) -> list[ResolvedConfig | SourceError]
    write_snapshot(results, out_dir) -> Path            # manifest path
    checkpoint_weight_bytes(ref, token=None) -> dict    # --weights checkpoint

Resolution order and the cache-vs-bundled decision are documented in resolve.py.
"""

from .bundled import bundled_ids
from .checkpoint import checkpoint_weight_bytes
from .errors import KINDS, SourceError
from .resolve import resolve_all
from .resolved import SOURCES, ResolvedConfig
from .snapshot import SnapshotReader, write_snapshot

__all__ = ["KINDS", "SOURCES", "ResolvedConfig", "SnapshotReader", "SourceError", "bundled_ids",
           "checkpoint_weight_bytes", "resolve_all", "write_snapshot"]
