"""A fake Hugging Face Hub for the source-layer tests: no test ever touches the real Hub.

A threaded ``http.server`` on 127.0.0.1 (random port) that answers the endpoints
``hf_hub_download`` / ``get_hf_file_metadata`` / ``get_safetensors_metadata`` use:

    HEAD|GET /{repo_id}/resolve/{revision}/{filename}

with the headers huggingface_hub needs (file_download.py: ``X-Repo-Commit`` is mandatory,
``ETag`` (or ``X-Linked-Etag``) is mandatory, ``Content-Length`` gives the expected size),
HTTP Range requests (206) for safetensors headers, and per-repo behaviours:

    ok          200 with the repo's files (404 EntryNotFound for others)
    gated       401 + X-Error-Code: GatedRepo (the Hub's answer without an accepted licence)
    forbidden   403 + X-Error-Code: GatedRepo (logged in, licence not accepted)
    error500    500 on every request (transient: the client should retry, then give up)
    slow        sleeps ``delay`` s before answering (longer than the client timeout)
    trickle     answers GETs at once, then sends the body one byte every ``delay`` s (each read
                beats any per-read timeout; only a wall-clock bound stops it)
    unknown ids 404 + X-Error-Code: RepoNotFound

Hostile on purpose: error responses echo the request's Authorization header in
``X-Error-Message`` and the body, so a token leak through server text would be caught.
Every request is logged (method, repo, filename, revision, whether a token was sent).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def fake_commit(repo_id: str, salt: str = "") -> str:
    return hashlib.sha1(f"{repo_id}{salt}".encode()).hexdigest()


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, bytes] = field(default_factory=dict)
    behaviour: str = "ok"
    delay: float = 0.0
    commit: str = ""

    def __post_init__(self):
        self.commit = self.commit or fake_commit(self.repo_id)


@dataclass(frozen=True)
class Request:
    method: str
    repo: str
    revision: str
    filename: str
    authorized: bool


class FakeHub:
    def __init__(self):
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_HEAD(self):
                hub._handle(self, head=True)

            def do_GET(self):
                hub._handle(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.server.handle_error = lambda *a: None   # client hung up on a slow answer: expected
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    # -- setup -----------------------------------------------------------------------------
    def add(self, repo_id: str, files: dict[str, bytes | dict] | None = None, behaviour: str = "ok",
            delay: float = 0.0, commit: str = "") -> FakeRepo:
        encoded = {k: (json.dumps(v).encode() if isinstance(v, dict) else v) for k, v in (files or {}).items()}
        repo = FakeRepo(repo_id, encoded, behaviour, delay, commit)
        self.repos[repo_id] = repo
        return repo

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def count(self, repo: str, filename: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.repo == repo and (filename is None or r.filename == filename)
                       and (method is None or r.method == method))

    # -- serving ---------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        m = _RESOLVE.match(unquote(h.path.split("?", 1)[0]))
        auth = h.headers.get("Authorization") or ""
        if not m:
            return self._send(h, head, 404, b"not found", {"X-Error-Code": "RepoNotFound"})
        repo_id, rev, filename = m["repo"], m["rev"], m["file"]
        with self._lock:
            self.requests.append(Request("HEAD" if head else "GET", repo_id, rev, filename, bool(auth)))
        repo = self.repos.get(repo_id)
        echo = f"request had Authorization: {auth}"
        if repo is None:
            return self._send(h, head, 404, echo.encode(), {"X-Error-Code": "RepoNotFound", "X-Error-Message": echo})
        if repo.behaviour == "slow":
            if self.stopping.wait(repo.delay):
                return
        if repo.behaviour in ("gated", "forbidden"):
            status = 401 if repo.behaviour == "gated" else 403
            return self._send(h, head, status, echo.encode(),
                              {"X-Error-Code": "GatedRepo", "X-Error-Message": echo})
        if repo.behaviour == "error500":
            return self._send(h, head, 500, echo.encode(), {"X-Error-Message": echo})
        if rev not in ("main", repo.commit):
            return self._send(h, head, 404, b"", {"X-Error-Code": "RevisionNotFound"})
        common = {"X-Repo-Commit": repo.commit}
        if filename not in repo.files:
            return self._send(h, head, 404, b"", {**common, "X-Error-Code": "EntryNotFound"})
        body = repo.files[filename]
        etag = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
        headers = {**common, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        rng = h.headers.get("Range")
        if rng and not head:
            a, _, b = rng.removeprefix("bytes=").partition("-")
            start, end = int(a), min(int(b) if b else len(body) - 1, len(body) - 1)
            part = body[start:end + 1]
            headers = {**headers, "Content-Range": f"bytes {start}-{end}/{len(body)}"}
            if repo.behaviour == "trickle":
                return self._trickle(h, part, headers, repo.delay, status=206)
            return self._send(h, head, 206, part, headers)
        if repo.behaviour == "trickle" and not head:
            return self._trickle(h, body, headers, repo.delay)
        return self._send(h, head, 200, body, headers)

    def _trickle(self, h: BaseHTTPRequestHandler, body: bytes, headers: dict[str, str], delay: float,
                 status: int = 200) -> None:
        try:
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.send_header("Content-Type", "application/octet-stream")
            h.end_headers()
            h.wfile.flush()
            for i in range(len(body)):
                if self.stopping.wait(delay):
                    return
                h.wfile.write(body[i:i + 1])
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, head: bool, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.send_header("Content-Type", "application/octet-stream")
            h.end_headers()
            if not head:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


# -- helpers ---------------------------------------------------------------------------------
def prefill_cache(cache_dir: str | Path, repo_id: str, files: dict[str, bytes | dict], commit: str | None = None,
                  ref: str = "main") -> str:
    """Write the standard HF cache layout (blobs/, snapshots/<commit>/ symlinks, refs/<ref>)."""
    commit = commit or fake_commit(repo_id, "cached")
    root = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / ref).write_text(commit)
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = json.dumps(content).encode() if isinstance(content, dict) else content
        blob = root / "blobs" / hashlib.sha1(data).hexdigest()
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snap), snap / name)
    return commit


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], metadata: dict | None = None) -> bytes:
    """A real safetensors file (header + zero data) for ``{name: (dtype, shape)}``."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "U8": 1, "I8": 1, "F8_E4M3": 1, "I64": 8}
    header: dict = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A running FakeHub with the environment pointed at it and an empty HF_HOME under tmp."""
    from huggingface_hub import constants

    hub = FakeHub().start()
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("HF_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                "HF_HUB_ETAG_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    # huggingface_hub freezes these at import; the code under test reads the env, but
    # get_safetensors_metadata's index download and the stored-login lookup use the constants.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.cache_dir = home / "hub"
    try:
        yield hub
    finally:
        hub.stop()
