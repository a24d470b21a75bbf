"""write_snapshot then resolve_all(snapshot_dir=...): identical configs, offline, no Hub."""

from __future__ import annotations

import json

import pytest
from hubserver import fake_hub, prefill_cache  # noqa: F401 - fixture

from reportgen.job import ModelRef
from reportgen.sources import SnapshotReader, SourceError, resolve_all, write_snapshot

LLAMA = {"model_type": "llama", "hidden_size": 2048, "rope_theta": 500000.0, "eos_token_id": [1, 2]}


@pytest.fixture
def online_results(fake_hub, tmp_path):
    fake_hub.add("acme/a", {"config.json": LLAMA, "hf_quant_config.json": {"quantization": {"quant_algo": "FP8"}}})
    pinned = fake_hub.add("acme/b", {"config.json": {**LLAMA, "hidden_size": 4096}})
    fake_hub.add("Qwen/Qwen3-8B", behaviour="error500")
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"model_type": "mistral"}))
    refs = [ModelRef("acme/a"), ModelRef("acme/b", pinned.commit), ModelRef("Qwen/Qwen3-8B"),
            ModelRef(str(local)), ModelRef("acme/missing")]
    return refs, resolve_all(refs, timeout=0.5, retries=0)


def test_snapshot_roundtrip_is_identical_and_offline(online_results, fake_hub, tmp_path, monkeypatch):
    refs, online = online_results
    assert [r.kind if isinstance(r, SourceError) else r.source for r in online] == ["hub", "hub", "bundled", "local", "not_found"]
    manifest_path = write_snapshot(online, tmp_path / "snap")
    manifest = json.loads(manifest_path.read_text())
    assert [m["id"] for m in manifest["models"]] == [r.id for r in refs[:4]]
    assert manifest["unresolved"] == [{"id": "acme/missing", "requested_revision": None, "kind": "not_found",
                                       "message": online[4].message}]

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")      # nothing listens: any attempt would fail
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    n = len(fake_hub.requests)
    frozen = resolve_all(refs[:4] + [ModelRef("acme/not-in-snapshot")], snapshot_dir=tmp_path / "snap")
    assert len(fake_hub.requests) == n
    for a, b in zip(online[:4], frozen):
        assert b.config == a.config and b.revision == a.revision and b.extra == a.extra and b.ref == a.ref
    assert [r.source for r in frozen[:4]] == ["snapshot", "snapshot", "snapshot", "local"]
    assert frozen[1].revision == refs[1].revision
    assert frozen[4].kind == "not_found" and "snapshot" in frozen[4].message


def test_snapshot_is_exclusive_no_cache_no_bundle(tmp_path, fake_hub):
    prefill_cache(fake_hub.cache_dir, "acme/cached", {"config.json": LLAMA})
    write_snapshot([], tmp_path / "empty-snap")
    out = resolve_all([ModelRef("acme/cached"), ModelRef("Qwen/Qwen3-8B")], snapshot_dir=tmp_path / "empty-snap")
    assert [r.kind for r in out] == ["not_found", "not_found"]


def test_local_path_missing_on_this_machine_comes_from_the_snapshot(online_results, tmp_path):
    refs, online = online_results
    write_snapshot(online, tmp_path / "snap")
    local_file = refs[3].id
    import os
    os.remove(local_file)
    [r] = resolve_all([refs[3]], snapshot_dir=tmp_path / "snap")
    assert r.source == "snapshot" and r.config == {"model_type": "mistral"}


def test_file_names_never_come_from_ids_and_manifest_cannot_escape(tmp_path, online_results):
    _, online = online_results
    snap = tmp_path / "snap"
    write_snapshot(online, snap)
    names = [p.name for p in (snap / "configs").iterdir()]
    assert all("acme" not in n and "/" not in n for n in names)
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["models"][0]["config"] = "../../etc/passwd"
    (snap / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="outside the snapshot"):
        SnapshotReader(snap)


def test_tampered_snapshot_file_is_reported(tmp_path, online_results):
    _, online = online_results
    snap = tmp_path / "snap"
    write_snapshot(online, snap)
    manifest = json.loads((snap / "manifest.json").read_text())
    (snap / manifest["models"][0]["config"]).write_text('{"model_type": "edited"}')
    [r] = resolve_all([online[0].ref], snapshot_dir=snap)
    assert isinstance(r, SourceError) and r.kind == "malformed_config" and "checksum" in r.message


def test_rewrite_replaces_old_snapshot_but_never_a_foreign_directory(tmp_path, online_results):
    _, online = online_results
    snap = tmp_path / "snap"
    write_snapshot(online, snap)
    write_snapshot(online[:1], snap)
    assert len(json.loads((snap / "manifest.json").read_text())["models"]) == 1
    assert len(list((snap / "configs").iterdir())) == 2      # config + its hf_quant_config
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError):
        write_snapshot(online, foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []   # no temp dirs left


def test_unreadable_snapshot_dir_is_a_usage_error(tmp_path):
    with pytest.raises(ValueError, match="not a readable snapshot"):
        resolve_all([ModelRef("acme/a")], snapshot_dir=tmp_path / "nope")
