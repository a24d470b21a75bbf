"""resolve_all against the fake Hub: the mixed batch, resolution order, retries, fallbacks."""

from __future__ import annotations

import json
import time

import pytest
from hubserver import fake_hub, prefill_cache  # noqa: F401 - fake_hub is a fixture

from reportgen.job import ModelRef
from reportgen.sources import ResolvedConfig, SourceError, resolve_all
from reportgen.sources.bundled import bundled_dir

FAST = dict(timeout=0.5, retries=1, backoff=0.05)
LLAMA = {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "num_key_value_heads": 8}
MODELOPT = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8"}}


def _bundled(name: str) -> dict:
    return json.loads((bundled_dir() / name).read_text())


def test_mixed_batch_good_models_resolve_and_each_bad_one_is_one_clear_error(fake_hub, tmp_path):
    hub = fake_hub
    good = hub.add("acme/good-7b", {"config.json": LLAMA, "hf_quant_config.json": MODELOPT})
    hub.add("acme/gated-7b", behaviour="gated")
    hub.add("acme/broken-7b", {"config.json": b'{"model_type": "llama", '})
    hub.add("acme/slow-7b", {"config.json": LLAMA}, behaviour="slow", delay=5)
    hub.add("Qwen/Qwen3-8B", behaviour="error500")           # Hub down for it -> bundled copy
    hub.add("acme/cached-7b", behaviour="error500")          # Hub down for it -> user's cache
    cached_cfg = {**LLAMA, "hidden_size": 1024}
    cached_commit = prefill_cache(hub.cache_dir, "acme/cached-7b", {"config.json": cached_cfg})
    local_dir = tmp_path / "my-model"
    local_dir.mkdir()
    (local_dir / "config.json").write_text(json.dumps({**LLAMA, "hidden_size": 512}))

    refs = [ModelRef(x) for x in ["acme/good-7b", "Qwen/Qwen3-8B", str(local_dir), "acme/cached-7b",
                                  "acme/does-not-exist", "acme/gated-7b", "acme/broken-7b", "acme/slow-7b",
                                  "acme/good-7b", "bad//id"]]
    calls = []
    t0 = time.perf_counter()
    out = resolve_all(refs, workers=4, progress=lambda d, t, r: calls.append((d, t, r)), **FAST)
    elapsed = time.perf_counter() - t0

    assert len(out) == len(refs) and [r.ref for r in out] == refs
    hubcfg, bundled, local, cached, missing, gated, broken, slow, dup, invalid = out

    assert isinstance(hubcfg, ResolvedConfig) and hubcfg.source == "hub"
    assert hubcfg.config == LLAMA and hubcfg.revision == good.commit
    assert hubcfg.extra == {"hf_quant_config": MODELOPT}
    assert hubcfg.path.endswith(f"models--acme--good-7b/snapshots/{good.commit}/config.json")

    assert bundled.source == "bundled" and bundled.config == _bundled("Qwen--Qwen3-8B.json")
    assert bundled.config["num_hidden_layers"] == 36 and bundled.revision is None

    assert local.source == "local" and local.config["hidden_size"] == 512
    assert local.path == str(local_dir / "config.json")

    assert cached.source == "cache" and cached.config == cached_cfg and cached.revision == cached_commit

    expected = {missing: "not_found", gated: "gated", broken: "malformed_config", slow: "network",
                invalid: "invalid_id"}
    for err, kind in expected.items():
        assert isinstance(err, SourceError), err
        assert err.kind == kind, err
        assert "\n" not in err.message and err.message
    assert "HF_TOKEN" in gated.message and "licence" in gated.message and "acme/gated-7b" in gated.message
    assert "within 0.5s" in slow.message
    assert "not valid JSON" in broken.message

    # each distinct ref once: the duplicate is the same object, one config.json GET for it
    assert dup is hubcfg
    assert hub.count("acme/good-7b", "config.json", "GET") == 1
    assert [c[:2] for c in calls] == [(i, 9) for i in range(1, 10)]
    # slow endpoint: 2 attempts x 0.5 s timeout + 0.05 s back-off, in parallel with the rest
    assert elapsed < 4.0, elapsed


def test_answers_are_not_retried_but_transient_failures_are(fake_hub):
    fake_hub.add("acme/gated", behaviour="gated")
    fake_hub.add("acme/forbidden", behaviour="forbidden")
    fake_hub.add("acme/down", behaviour="error500")
    out = resolve_all([ModelRef("acme/gated"), ModelRef("acme/forbidden"), ModelRef("acme/down"),
                       ModelRef("acme/nope")], timeout=1, retries=3, backoff=0.01)
    assert [r.kind for r in out] == ["gated", "gated", "network", "not_found"]
    assert fake_hub.count("acme/gated") == 1
    assert fake_hub.count("acme/forbidden") == 1
    assert fake_hub.count("acme/nope") == 1
    assert fake_hub.count("acme/down") == 4          # first try + 3 retries
    assert "HTTP 500 after 4 attempts" in out[2].message


def test_backoff_is_exponential():
    from reportgen.sources.hub import HubClient, HubSettings, HubFailure
    import httpx2

    sleeps = []
    client = HubClient(HubSettings(endpoint="http://x", cache_dir="/nonexistent", offline=False, retries=4,
                                   backoff=0.5), sleep=sleeps.append)

    def fail():
        raise httpx2.ConnectError("refused")

    with pytest.raises(HubFailure) as ei:
        client.retrying("x", fail)
    assert ei.value.attempts == 5
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_revision_pinning_and_revision_not_found(fake_hub):
    repo = fake_hub.add("acme/pinned", {"config.json": LLAMA})
    out = resolve_all([ModelRef("acme/pinned", repo.commit), ModelRef("acme/pinned", "v9.9"),
                       ModelRef("acme/pinned", "../../etc")], **FAST)
    assert out[0].source == "hub" and out[0].revision == repo.commit and out[0].config == LLAMA
    assert out[1].kind == "not_found" and "v9.9" in out[1].message
    assert out[2].kind == "invalid_id"
    assert {r.revision for r in fake_hub.requests} == {repo.commit, "v9.9"}   # the invalid one never sent


def test_missing_config_json_in_an_existing_repo_is_not_found(fake_hub):
    fake_hub.add("acme/no-config", {"README.md": b"hi"})
    [err] = resolve_all([ModelRef("acme/no-config")], **FAST)
    assert err.kind == "not_found" and "has no config.json" in err.message


def test_hub_answer_wins_over_cache_and_bundled(fake_hub):
    """Online and reachable: the Hub's current commit is used, not a stale cache or the bundle."""
    new = {**_bundled("Qwen--Qwen3-8B.json"), "max_position_embeddings": 1}
    repo = fake_hub.add("Qwen/Qwen3-8B", {"config.json": new})
    prefill_cache(fake_hub.cache_dir, "Qwen/Qwen3-8B", {"config.json": {"stale": True}})
    [r] = resolve_all([ModelRef("Qwen/Qwen3-8B")], **FAST)
    assert r.source == "hub" and r.config == new and r.revision == repo.commit


def test_malformed_configs_of_every_shape(fake_hub, tmp_path):
    fake_hub.add("acme/list", {"config.json": b"[1, 2]"})
    fake_hub.add("acme/binary", {"config.json": b"\xff\xfe\x00garbage"})
    fake_hub.add("acme/bad-quant", {"config.json": LLAMA, "hf_quant_config.json": b"nope"})
    bad_local = tmp_path / "bad.json"
    bad_local.write_text("{")
    out = resolve_all([ModelRef("acme/list"), ModelRef("acme/binary"), ModelRef("acme/bad-quant"),
                       ModelRef(str(bad_local))], **FAST)
    assert [r.kind for r in out] == ["malformed_config"] * 4
    assert "JSON object, got list" in out[0].message
    assert "hf_quant_config.json" in out[2].message


def test_local_paths_directory_file_side_file_and_missing(tmp_path, fake_hub):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(LLAMA))
    (d / "hf_quant_config.json").write_text(json.dumps(MODELOPT))
    f = tmp_path / "other.json"
    f.write_text(json.dumps({"model_type": "qwen3"}))
    empty = tmp_path / "empty"
    empty.mkdir()
    out = resolve_all([ModelRef(str(d)), ModelRef(str(d / "config.json")), ModelRef(str(f)),
                       ModelRef(str(empty)), ModelRef(str(tmp_path / "nope"))], **FAST)
    assert out[0].config == LLAMA and out[0].extra == {"hf_quant_config": MODELOPT} and out[0].source == "local"
    assert out[1].config == LLAMA and out[1].extra == {"hf_quant_config": MODELOPT}
    assert out[2].config == {"model_type": "qwen3"} and out[2].extra == {}
    assert out[3].kind == "not_found" and "has no config.json" in out[3].message
    assert out[4].kind == "not_found" and "no such file" in out[4].message
    assert fake_hub.requests == []                   # local paths never touch the Hub


def test_bundled_lookup_is_case_insensitive_and_carries_modelopt_side_file(fake_hub):
    out = resolve_all([ModelRef("nvidia/qwen3-235b-a22b-nvfp4"), ModelRef("meta-llama/Llama-3.1-8B-Instruct"),
                       ModelRef("Qwen/Qwen3-8B", "0123456789abcdef0123456789abcdef01234567")], offline=True)
    nv, llama, pinned = out
    assert nv.source == "bundled" and nv.extra["hf_quant_config"]["quantization"]["quant_algo"] == "NVFP4"
    assert llama.config["num_hidden_layers"] == 32 and llama.extra == {}
    # a pinned commit is never served by an unpinned bundled copy
    assert isinstance(pinned, SourceError) and pinned.kind == "network"
