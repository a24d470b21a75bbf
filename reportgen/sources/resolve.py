"""Resolution order and the parallel batch: every model id of a job → config or SourceError.

Order for one ref (first that applies wins; the result records which):

1. **local** — a path-like id (``/``, ``./``, ``../``, ``~``, ``*.json``): read it, nothing else.
   (With ``--snapshot``, a path that no longer exists is looked up in the snapshot, so a
   snapshot taken on one machine runs on another.)
2. **snapshot** — when ``snapshot_dir`` is given it is exclusive: Hub ids come from it or fail
   ``not_found``.  No cache, no Hub, no bundle: the run is exactly the frozen one.
3. **hub** — online: the Hub is asked (``source="hub"`` even if the bytes came from the cache,
   because the commit was confirmed now).  Its *answers* are final: gated → ``gated``,
   missing → ``not_found``, bad JSON → ``malformed_config``.  Only when it cannot answer
   (timeouts, connection errors, 5xx after retries) do we fall back to 4, then 5.
4. **cache** — the standard HF cache, read without network.  Offline this comes first.
   A cached config beats the bundled one: it is what the user actually downloaded, it is
   pinned to a commit, and the bundled copies are best-effort reconstructions (SOURCES.md).
5. **bundled** — reportgen's offline copy, default branch only.
Otherwise the network error (online) or an "offline and not cached" error is returned.

Each distinct (id, revision) is resolved once per call, in a bounded thread pool (the work
is I/O bound); results come back in input order.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from .bundled import find_bundled
from .errors import SourceError, redact
from .hub import MAX_BACKOFF_S, HubClient, HubSettings
from .ids import hub_id_problem, looks_like_path, revision_problem
from .local import resolve_local
from .resolved import ResolvedConfig
from .snapshot import SnapshotReader

if TYPE_CHECKING:
    from reportgen.job import ModelRef

log = logging.getLogger(__name__)
Progress = Callable[[int, int, "ModelRef"], None]


class Resolver:
    """Resolves one ref by the order in the module doc; returns, never raises, SourceError."""

    def __init__(self, hub: HubClient, snapshot: SnapshotReader | None = None):
        self.hub = hub
        self.snapshot = snapshot

    def __call__(self, ref: ModelRef) -> ResolvedConfig | SourceError:
        try:
            return self.resolve(ref)
        except SourceError as e:
            return e
        except Exception as e:  # noqa: BLE001 - one bad model never sinks the batch
            log.debug("unexpected error resolving %s", ref, exc_info=False)
            return SourceError(ref, "network", f"unexpected {type(e).__name__}: "
                                               f"{redact(str(e), self.hub.s.token)}")

    def resolve(self, ref: ModelRef) -> ResolvedConfig:
        if looks_like_path(ref.id):
            if self.snapshot is not None and ref in self.snapshot \
                    and not Path(os.path.expanduser(ref.id)).exists():
                return self.snapshot.get(ref)
            return resolve_local(ref)

        problem = hub_id_problem(ref.id) or revision_problem(ref.revision)
        if problem:
            raise SourceError(ref, "invalid_id", problem)

        if self.snapshot is not None:
            found = self.snapshot.get(ref)
            if found is None:
                raise SourceError(ref, "not_found", f"not in the snapshot {self.snapshot.dir.name}: re-create it "
                                                    "with `reportgen snapshot` for a job that includes this model")
            return found

        if self.hub.s.offline:
            found = self.hub.from_cache(ref) or find_bundled(ref)
            if found is None:
                raise SourceError(ref, "network", "offline (HF_HUB_OFFLINE) and not in the Hugging Face cache "
                                                  "or the bundled configs: run once online, or use --snapshot")
            return found

        try:
            return self.hub.fetch(ref)
        except SourceError as e:
            if e.kind != "network":
                raise
            found = self.hub.from_cache(ref) or find_bundled(ref)
            if found is None:
                raise
            log.warning("%s: Hub unavailable (%s); using the %s copy", ref, e.message, found.source)
            return found


def model_budget(timeout: float, retries: int, backoff: float) -> float:
    """Wall-clock seconds one model's resolution may take: every attempt's timeout plus the
    back-off sleeps between them, plus a small allowance for the cache/bundled fallbacks.

    Per-request timeouts alone do not bound a model: a server that trickles one byte per
    second beats any read timeout, and ``hf_hub_download`` has retries of its own."""
    retries = max(0, int(retries))
    sleeps = sum(min(MAX_BACKOFF_S, backoff * (2 ** i)) for i in range(retries))
    return timeout * (retries + 1) + sleeps + 1.0


def resolve_all(refs: Iterable[ModelRef], *, snapshot_dir: str | os.PathLike | None = None,
                offline: bool | None = None, token: str | None = None, workers: int = 8,
                timeout: float = 10.0, retries: int = 3, progress: Progress | None = None,
                backoff: float = 0.5, deadline: float | None = None) -> list[ResolvedConfig | SourceError]:
    """Resolve every ref; one result per input ref, same order, each distinct ref resolved once.

    ``offline`` None → HF_HUB_OFFLINE from the environment.  ``token`` None → HF_TOKEN or the
    stored login.  ``timeout`` is per HTTP request; ``retries`` counts extra attempts for
    transient failures, spaced ``backoff``·2^n seconds (capped at 8 s).  Together they bound the
    whole resolution of each model (:func:`model_budget`): a model not done by then is a
    ``network`` error saying so.  ``deadline`` (a ``time.monotonic()`` instant) bounds the whole
    call: models not resolved by then are ``network`` errors naming the deadline.
    ``progress(done, total, ref)`` is called from the calling thread as each distinct ref finishes.
    Raises ValueError only for an unreadable ``snapshot_dir`` (a usage error, not a model error).
    """
    refs = list(refs)
    distinct = list(dict.fromkeys(refs))
    snapshot = SnapshotReader(snapshot_dir) if snapshot_dir is not None else None
    settings = HubSettings.from_env(offline=offline, token=token, timeout=timeout, retries=retries,
                                    backoff=backoff)
    resolver = Resolver(HubClient(settings), snapshot)
    budget = model_budget(settings.timeout, settings.retries, settings.backoff)

    def overrun(ref, why: str) -> SourceError:
        if why == "error":
            return SourceError(ref, "network", "unexpected failure while resolving")
        if why == "deadline":
            return SourceError(ref, "network", "not resolved before the job deadline (--deadline); "
                                               "raise it, or run from the cache or a --snapshot")
        return SourceError(ref, "network", (
            f"no complete answer from {settings.endpoint} within {budget:g}s (--hub-timeout x "
            "(--hub-retries + 1) plus back-off): the server stalled or sent the file too slowly"))

    total = len(distinct)
    done_refs: list = []

    def advance(ref) -> None:
        done_refs.append(ref)
        if progress:
            progress(len(done_refs), total, ref)

    results = bounded_map(distinct, resolver, workers=workers, budget=budget, deadline=deadline,
                          on_overrun=overrun, on_done=advance)
    return [results[r] for r in refs]


def bounded_map(items: list, fn: Callable, *, workers: int, budget: float, deadline: float | None,
                on_overrun: Callable, on_done: Callable | None = None) -> dict:
    """``{item: fn(item)}`` computed on daemon threads, never waiting past an item's ``budget``
    (seconds from its start) or ``deadline`` (a ``time.monotonic()`` instant).

    An item that overruns gets ``on_overrun(item, "budget" | "deadline")``; its thread is
    abandoned (daemon: it cannot hold up exit; a late answer is dropped).  ``fn`` must return
    its failures, not raise them (an escaping exception becomes ``on_overrun(item, "error")``).
    ``on_done(item)`` is called from the calling thread as each item finishes."""
    import queue
    import threading
    import time

    done: queue.Queue = queue.Queue()
    pending = list(items)
    running: dict = {}                      # item -> monotonic start
    results: dict = {}
    workers = max(1, min(int(workers), len(items) or 1))

    def work(item):
        try:
            done.put((item, fn(item), None))
        except BaseException as e:  # noqa: BLE001 - last guard; fn returns its errors
            done.put((item, None, e))

    def finish(item, res):
        results[item] = res
        if on_done:
            on_done(item)

    while pending or running:
        if deadline is not None and time.monotonic() >= deadline:
            for item in [*running, *pending]:
                finish(item, on_overrun(item, "deadline"))
            break
        while pending and len(running) < workers:
            item = pending.pop(0)
            running[item] = time.monotonic()
            threading.Thread(target=work, args=(item,), name="reportgen-bounded", daemon=True).start()
        wake = min(start + budget for start in running.values())
        if deadline is not None:
            wake = min(wake, deadline)
        try:
            item, res, exc = done.get(timeout=max(0.0, wake - time.monotonic()))
        except queue.Empty:
            now = time.monotonic()
            for item, start in list(running.items()):
                if now >= start + budget:
                    del running[item]
                    finish(item, on_overrun(item, "budget"))
            continue
        if item in running:                 # else: already given up on, a late answer
            del running[item]
            finish(item, on_overrun(item, "error") if exc is not None else res)
    return results
