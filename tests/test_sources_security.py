"""Tokens never leak; ids never steer paths; hostile ids are refused before any request."""

from __future__ import annotations

import logging
import pickle

import pytest
from hubserver import fake_hub  # noqa: F401 - fixture

from reportgen.job import ModelRef
from reportgen.sources import SourceError, resolve_all, write_snapshot
from reportgen.sources.errors import redact
from reportgen.sources.hub import HubSettings

TOKEN = "hf_TopSecretTokenValue0123456789abcdef"


def test_token_from_env_is_sent_but_never_in_errors_logs_or_outputs(fake_hub, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    fake_hub.add("acme/gated", behaviour="gated")           # these echo the Authorization header back
    fake_hub.add("acme/forbidden", behaviour="forbidden")
    fake_hub.add("acme/down", behaviour="error500")
    fake_hub.add("acme/ok", {"config.json": {"model_type": "llama"}})
    # Our loggers and huggingface_hub's at DEBUG, everything else (httpx2 request lines) at INFO.
    # Not httpcore2's DEBUG wire trace: it prints raw response headers, and this hostile server
    # echoes the token in them; the CLI must keep third-party wire tracing off.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="reportgen")
    caplog.set_level(logging.DEBUG, logger="huggingface_hub")
    out = resolve_all([ModelRef(x) for x in ["acme/gated", "acme/forbidden", "acme/down", "acme/missing",
                                             "acme/ok"]], timeout=0.5, retries=1, backoff=0.01)
    assert all(r.authorized for r in fake_hub.requests)      # the token was used...
    errors = [r for r in out if isinstance(r, SourceError)]
    assert [e.kind for e in errors] == ["gated", "gated", "network", "not_found"]
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [e.message for e in errors]
    texts += [repr(r) for r in out] + [caplog.text, repr(HubSettings.from_env())]
    texts.append(write_snapshot(out, tmp_path / "snap").read_text())
    texts += [repr(pickle.loads(pickle.dumps(e))) for e in errors]
    for t in texts:                                          # ...and appears nowhere
        assert TOKEN not in t
        assert "TopSecret" not in t


def test_explicit_token_argument_is_used(fake_hub):
    fake_hub.add("acme/ok", {"config.json": {"model_type": "llama"}})
    resolve_all([ModelRef("acme/ok")], token=TOKEN, timeout=1, retries=0)
    assert fake_hub.requests and all(r.authorized for r in fake_hub.requests)


def test_redact_catches_token_shapes_even_when_unknown():
    assert redact(f"bad header Authorization: Bearer {TOKEN}") == "bad header Authorization: Bearer ***"
    assert redact("x hf_abcdefghijklmnop y") == "x *** y"
    assert redact("custom-token-123", token="custom-token-123") == "***"
    err = SourceError(ModelRef("a/b"), "network", f"boom {TOKEN}")
    assert TOKEN not in repr(err) and TOKEN not in str(err)


@pytest.mark.parametrize("bad", ["a/b/c", "org/../etc", "org/na--me", "-lead/x", "x/y.git", "a" * 97,
                                 " org/x", "org/x\n", "org/x\x00", "", "org/"])
def test_hostile_hub_ids_are_invalid_and_never_requested(fake_hub, bad):
    [r] = resolve_all([ModelRef(bad)], timeout=0.5, retries=0)
    assert isinstance(r, SourceError) and r.kind == "invalid_id", r
    assert fake_hub.requests == []


@pytest.mark.parametrize("rev", ["../../../tmp/x", "/abs", "main/../x", "a b", "x" * 300, "refs//x"])
def test_hostile_revisions_are_invalid(fake_hub, rev):
    [r] = resolve_all([ModelRef("acme/x", rev)], timeout=0.5, retries=0)
    assert r.kind == "invalid_id" and fake_hub.requests == []
    assert not (fake_hub.cache_dir.parent.parent / "tmp").exists()
