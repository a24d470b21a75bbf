"""HF_HUB_OFFLINE: only the cache and the bundle, never a network attempt, never a stall."""

from __future__ import annotations

import json
import time

from hubserver import fake_hub, prefill_cache  # noqa: F401 - fixture

from reportgen.job import ModelRef
from reportgen.sources import SourceError, resolve_all
from reportgen.sources.bundled import bundled_dir

LLAMA = {"model_type": "llama", "hidden_size": 2048}


def test_offline_uncached_unbundled_fails_fast_without_any_request(fake_hub, monkeypatch):
    # Every repo on the fake Hub sleeps 30 s: a single network attempt would blow the bound.
    fake_hub.add("acme/never-downloaded", {"config.json": LLAMA}, behaviour="slow", delay=30)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    [err] = resolve_all([ModelRef("acme/never-downloaded")])      # default timeout 10 s, 3 retries
    elapsed = time.perf_counter() - t0
    print(f"\noffline resolution of an uncached, unbundled id: {elapsed * 1000:.2f} ms")
    assert isinstance(err, SourceError) and err.kind == "network"
    assert "offline" in err.message and "--snapshot" in err.message
    assert fake_hub.requests == []
    assert elapsed < 5.0


def test_offline_uses_cache_then_bundled_and_cache_beats_bundled(fake_hub, monkeypatch):
    mine = {**json.loads((bundled_dir() / "Qwen--Qwen3-8B.json").read_text()), "torch_dtype": "float16"}
    commit = prefill_cache(fake_hub.cache_dir, "Qwen/Qwen3-8B", {"config.json": mine})
    quant = {"quantization": {"quant_algo": "FP8"}}
    c2 = prefill_cache(fake_hub.cache_dir, "acme/only-cached", {"config.json": LLAMA, "hf_quant_config.json": quant})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    qwen, only_cached, bundled = resolve_all(
        [ModelRef("Qwen/Qwen3-8B"), ModelRef("acme/only-cached"), ModelRef("google/gemma-2-9b")])
    assert qwen.source == "cache" and qwen.config == mine and qwen.revision == commit
    assert only_cached.source == "cache" and only_cached.extra == {"hf_quant_config": quant}
    assert only_cached.revision == c2
    assert bundled.source == "bundled" and bundled.config["model_type"] == "gemma2"
    assert fake_hub.requests == []


def test_offline_argument_overrides_environment(fake_hub):
    fake_hub.add("acme/online-only", {"config.json": LLAMA})
    [err] = resolve_all([ModelRef("acme/online-only")], offline=True)
    assert err.kind == "network" and fake_hub.requests == []
    [ok] = resolve_all([ModelRef("acme/online-only")], offline=False)
    assert ok.source == "hub" and ok.config == LLAMA


def test_what_an_online_run_downloaded_is_found_offline(fake_hub, monkeypatch):
    """The cache written by hf_hub_download (refs/main, snapshots/<sha>) is what offline reads."""
    repo = fake_hub.add("acme/fetched", {"config.json": LLAMA, "hf_quant_config.json": {"q": 1}})
    [online] = resolve_all([ModelRef("acme/fetched")], timeout=1, retries=0)
    n = len(fake_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    [offline] = resolve_all([ModelRef("acme/fetched")])
    assert online.source == "hub" and offline.source == "cache"
    assert offline.config == online.config and offline.revision == online.revision == repo.commit
    assert offline.extra == online.extra == {"hf_quant_config": {"q": 1}}
    assert len(fake_hub.requests) == n


def test_unreachable_hub_falls_back_quickly(fake_hub, monkeypatch):
    """No route (connection refused): the error is network, after our retries, in well under a second."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # discard port: refused
    t0 = time.perf_counter()
    err, bundled = resolve_all([ModelRef("acme/anything"), ModelRef("Qwen/Qwen3-8B")], timeout=1, retries=2,
                               backoff=0.01)
    assert err.kind == "network" and "cannot connect" in err.message and "3 attempts" in err.message
    assert bundled.source == "bundled"
    assert time.perf_counter() - t0 < 3.0
