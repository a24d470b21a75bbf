"""The Hugging Face Hub and its local cache, through ``huggingface_hub``.

Why not just ``hf_hub_download``?  When its metadata HEAD fails with a transient error and
the file is not cached, it retries on its own with a 60 s timeout and up to 5 back-offs
(1, 2, 4, 8, 8 s) — a single unreachable model stalls a batch for minutes, and our
``timeout``/``retries`` would be ignored.  So each file is fetched in two steps:

1. ``get_hf_file_metadata`` (one HEAD, our timeout, no library retries) inside our own retry
   loop: exponential back-off for transient failures only (timeouts, connection errors,
   408/429/5xx); 401/403/404 are answers, never retried.  This also classifies the error
   (gated / not found / network) and yields the commit sha.
2. ``hf_hub_download`` at the asked revision: standard cache layout under HF_HOME, refs
   updated, blob reused if cached.  It repeats the HEAD (cheap; the Hub just answered).  Its
   internal slow retry can only trigger if the Hub fails in the milliseconds between the two
   calls — accepted.

Settings are read from the environment at call time (``HF_ENDPOINT``, ``HF_HOME``/
``HF_HUB_CACHE``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``) and passed explicitly, because
``huggingface_hub.constants`` freezes them at import.  Offline, only the cache is read, with
``try_to_load_from_cache`` (pure file-system: no code path that could open a socket).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import httpx2
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    FileMetadataError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import get_token

from .errors import SourceError, gated_message, redact
from .resolved import QUANT_FILE, QUANT_KEY, ResolvedConfig, read_json_object

if TYPE_CHECKING:
    from reportgen.job import ModelRef

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429} | set(range(500, 600)))
TRANSIENT_EXCEPTIONS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
MAX_BACKOFF_S = 8.0
_TRUE = {"1", "on", "yes", "true"}


def env_offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE as set now (falls back to the import-time value)."""
    raw = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return raw.strip().lower() in _TRUE if raw is not None else bool(constants.HF_HUB_OFFLINE)


def env_cache_dir() -> str:
    """The standard hub cache: HF_HUB_CACHE, else HF_HOME/hub, as set now."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return constants.HF_HUB_CACHE


def env_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


@dataclass(frozen=True)
class HubSettings:
    """Everything a Hub call needs, fixed for one run.  ``token`` is excluded from repr."""

    endpoint: str
    cache_dir: str
    offline: bool
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, *, offline: bool | None = None, token: str | None = None, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.5) -> HubSettings:
        """Explicit arguments win; otherwise the environment, then the stored ``hf auth login``."""
        return cls(endpoint=env_endpoint(), cache_dir=env_cache_dir(),
                   offline=env_offline() if offline is None else bool(offline),
                   timeout=float(timeout), retries=max(0, int(retries)), backoff=max(0.0, float(backoff)),
                   token=token if token is not None else get_token())


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the Hub could answer differently in a moment."""
    if isinstance(exc, HfHubHTTPError) and not isinstance(exc, LocalEntryNotFoundError):
        status = exc.response.status_code if exc.response is not None else None
        return status in TRANSIENT_STATUS
    return isinstance(exc, TRANSIENT_EXCEPTIONS)


class TooLarge(Exception):
    """A file the Hub says is bigger than the config size cap: refused without downloading it."""

    def __init__(self, filename: str, size: int, cap: int):
        super().__init__(filename)
        self.filename, self.size, self.cap = filename, size, cap


class HubFailure(Exception):
    """Internal: the retry loop's verdict — the last error and how many attempts were made —
    handed to :meth:`HubClient.classify`, which turns it into the user's one-line SourceError."""

    def __init__(self, error: BaseException, attempts: int):
        super().__init__(type(error).__name__)
        self.error, self.attempts = error, attempts


class HubClient:
    """Fetches config.json (+ optional hf_quant_config.json) for Hub ids.

    ``fetch`` and ``from_cache`` raise only :class:`SourceError`; ``retrying`` is shared with
    checkpoint.py so every Hub call follows the same timeout/retry policy."""

    def __init__(self, settings: HubSettings, sleep: Callable[[float], None] = time.sleep):
        self.s = settings
        self._sleep = sleep

    # -- network ----------------------------------------------------------------------------
    def retrying(self, what: str, fn: Callable[[], T]) -> T:
        """Call ``fn``; retry transient failures with exponential back-off; wrap the last error."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as e:  # noqa: BLE001 - classified below
                if not is_transient(e) or attempt > self.s.retries:
                    raise HubFailure(e, attempt) from None
                delay = min(MAX_BACKOFF_S, self.s.backoff * (2 ** (attempt - 1)))
                log.info("%s: transient %s, retry %d/%d in %.2fs", what, _describe(e), attempt,
                         self.s.retries, delay)
                self._sleep(delay)

    def _download(self, repo_id: str, filename: str, revision: str) -> tuple[str, str]:
        """(commit sha, cached file path) for one file, via the two steps in the module doc."""
        url = hf_hub_url(repo_id, filename, revision=revision, endpoint=self.s.endpoint)
        meta = self.retrying(f"{repo_id}/{filename}", lambda: get_hf_file_metadata(
            url, token=self.s.token, timeout=self.s.timeout, endpoint=self.s.endpoint))
        if not meta.commit_hash:
            raise HubFailure(FileMetadataError("missing X-Repo-Commit"), 1)
        from reportgen.safe_read import CONFIG_MAX_BYTES

        if meta.size is not None and meta.size > CONFIG_MAX_BYTES:     # refused before it is downloaded
            raise HubFailure(TooLarge(filename, meta.size, CONFIG_MAX_BYTES), 1)
        path = self.retrying(f"{repo_id}/{filename}", lambda: hf_hub_download(
            repo_id, filename, revision=revision, cache_dir=self.s.cache_dir, endpoint=self.s.endpoint,
            token=self.s.token, etag_timeout=self.s.timeout))
        return meta.commit_hash, str(path)

    def fetch(self, ref: ModelRef) -> ResolvedConfig:
        """Resolve ``ref`` against the Hub (online).  ``source="hub"``, revision = commit sha."""
        revision = ref.revision or constants.DEFAULT_REVISION
        try:
            commit, path = self._download(ref.id, "config.json", revision)
            config = read_json_object(path, ref)
            extra: dict[str, Any] = {}
            try:  # optional file, pinned to the config's commit so both come from one tree
                _, qpath = self._download(ref.id, QUANT_FILE, commit)
                extra[QUANT_KEY] = read_json_object(qpath, ref, QUANT_FILE)
            except HubFailure as a:
                if not (isinstance(a.error, EntryNotFoundError) and not isinstance(a.error, LocalEntryNotFoundError)):
                    raise
        except HubFailure as a:
            raise self.classify(ref, a.error, a.attempts) from None
        return ResolvedConfig(ref=ref, config=config, source="hub", revision=commit, path=path, extra=extra)

    # -- cache (no network) -----------------------------------------------------------------
    def from_cache(self, ref: ModelRef) -> ResolvedConfig | None:
        """The cached config for ``ref`` at its revision (branch via refs/, or a commit), else None.

        Only reads the cache directory: safe and instant when offline.
        """
        revision = ref.revision or constants.DEFAULT_REVISION
        path = try_to_load_from_cache(ref.id, "config.json", cache_dir=self.s.cache_dir, revision=revision)
        if not isinstance(path, str):
            return None
        commit = Path(path).parent.name      # .../snapshots/<commit>/config.json
        config = read_json_object(path, ref)
        extra: dict[str, Any] = {}
        qpath = try_to_load_from_cache(ref.id, QUANT_FILE, cache_dir=self.s.cache_dir, revision=commit)
        if isinstance(qpath, str):
            extra[QUANT_KEY] = read_json_object(qpath, ref, QUANT_FILE)
        return ResolvedConfig(ref=ref, config=config, source="cache", revision=commit, path=path, extra=extra)

    # -- errors -----------------------------------------------------------------------------
    def classify(self, ref: ModelRef, e: BaseException, attempts: int) -> SourceError:
        """Turn a huggingface_hub/httpx error into one actionable line (server text never copied)."""
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        host = self.s.endpoint
        if isinstance(e, TooLarge):
            return SourceError(ref, "malformed_config", f"{e.filename} is {e.size / 2**20:.1f} MiB on the Hub, larger "
                                                        f"than the {e.cap / 2**20:g} MiB allowed for a config; not downloaded")
        if isinstance(e, GatedRepoError):
            return SourceError(ref, "gated", gated_message(ref.id, host))
        if isinstance(e, RevisionNotFoundError):
            return SourceError(ref, "not_found", f"revision {ref.revision!r} not found in {ref.id} on the Hub")
        if isinstance(e, LocalEntryNotFoundError):
            return SourceError(ref, "network", f"could not reach {host} {tries} and config.json is not cached")
        if isinstance(e, EntryNotFoundError):
            return SourceError(ref, "not_found", f"{ref.id} has no config.json (not a transformers model repo?)")
        if isinstance(e, RepositoryNotFoundError):
            return SourceError(ref, "not_found", f"repository {ref.id} not found on {host}: check the id "
                                                 "(if it is private, set HF_TOKEN)")
        if isinstance(e, HfHubHTTPError):
            status = e.response.status_code if e.response is not None else None
            if status in (401, 403):
                return SourceError(ref, "gated", gated_message(ref.id, host))
            if status in TRANSIENT_STATUS:
                return SourceError(ref, "network", f"the Hub answered HTTP {status} {tries}; try again later")
            return SourceError(ref, "network", f"the Hub answered HTTP {status} for {ref.id}")
        if isinstance(e, httpx2.TimeoutException):
            return SourceError(ref, "network", f"no answer from {host} within {self.s.timeout:g}s ({tries}); "
                                               "check the network or set HF_HUB_OFFLINE=1 to use the cache")
        if isinstance(e, (httpx2.TransportError, OSError)) and not isinstance(e, FileMetadataError):
            return SourceError(ref, "network", f"cannot connect to {host} ({tries}): {_describe(e)}; "
                                               "set HF_HUB_OFFLINE=1 to use the cache")
        if isinstance(e, FileMetadataError):
            return SourceError(ref, "network", f"{host} does not answer like the Hugging Face Hub "
                                               "(no X-Repo-Commit/ETag): check HF_ENDPOINT and proxy settings")
        if isinstance(e, OfflineModeIsEnabled):
            return SourceError(ref, "network", "offline mode is enabled and config.json is not cached")
        if isinstance(e, SourceError):
            return e
        return SourceError(ref, "network", f"unexpected {type(e).__name__} while fetching from {host}")


def _describe(e: BaseException) -> str:
    """Exception type + redacted first line, for logs and connection-error messages."""
    text = str(e).splitlines()[0] if str(e) else ""
    return redact(f"{type(e).__name__}: {text}"[:160])
