"""checkpoint_weight_bytes: true on-disk weight bytes from safetensors headers (Range requests)."""

from __future__ import annotations

import json

import pytest
from hubserver import fake_hub, safetensors_bytes  # noqa: F401 - fixture

from reportgen.job import ModelRef
from reportgen.sources import SourceError, checkpoint_weight_bytes

SHARD1 = {"model.embed_tokens.weight": ("BF16", [16, 8]),              # 256 B
          "model.layers.0.mlp.down_proj.qweight": ("I32", [8, 2]),      # 64 B, packed int4 (AWQ)
          "model.layers.0.mlp.down_proj.scales": ("F16", [1, 16])}      # 32 B
SHARD2 = {"lm_head.weight": ("BF16", [16, 8]),                        # 256 B
          "model.layers.0.mlp.experts.w1": ("U8", [4, 4, 3])}          # 48 B, e.g. MXFP4 blocks


def test_sharded_checkpoint_bytes_per_dtype_and_per_tensor(fake_hub):
    files = {"model-00001-of-00002.safetensors": safetensors_bytes(SHARD1),
             "model-00002-of-00002.safetensors": safetensors_bytes(SHARD2)}
    index = {"metadata": {"total_size": 656},
             "weight_map": {**{k: "model-00001-of-00002.safetensors" for k in SHARD1},
                            **{k: "model-00002-of-00002.safetensors" for k in SHARD2}}}
    fake_hub.add("acme/awq", {**files, "model.safetensors.index.json": json.dumps(index).encode(),
                              "config.json": b"{}"})
    out = checkpoint_weight_bytes(ModelRef("acme/awq"))
    assert out["sharded"] is True and out["source"] == "safetensors"
    assert out["bytes_by_dtype"] == {"BF16": 512, "I32": 64, "F16": 32, "U8": 48}
    assert out["total_bytes"] == 656
    assert out["params_by_dtype"] == {"BF16": 256, "I32": 16, "F16": 16, "U8": 48}
    assert out["tensors"]["model.layers.0.mlp.down_proj.qweight"] == {
        "shape": [8, 2], "dtype": "I32", "bytes": 64, "file": "model-00001-of-00002.safetensors"}
    assert out["tensors"]["model.layers.0.mlp.experts.w1"]["shape"] == [4, 4, 3]
    assert len(out["tensors"]) == 5
    # headers only: every shard GET was a Range request answered 206, never the whole file
    assert fake_hub.count("acme/awq", "model-00001-of-00002.safetensors", "GET") == 1


def test_single_file_checkpoint(fake_hub):
    fake_hub.add("acme/tiny", {"model.safetensors": safetensors_bytes({"w": ("F32", [3, 5])})})
    out = checkpoint_weight_bytes(ModelRef("acme/tiny"))
    assert out["sharded"] is False and out["bytes_by_dtype"] == {"F32": 60} and out["total_params"] == 15


def test_checkpoint_errors(fake_hub, monkeypatch):
    fake_hub.add("acme/no-weights", {"config.json": b"{}"})
    fake_hub.add("acme/gated", behaviour="gated")
    fake_hub.add("acme/corrupt", {"model.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00not-json-header!"})
    cases = {"acme/no-weights": "not_found", "acme/gated": "gated", "acme/corrupt": "malformed_config",
             "a/b/c": "invalid_id"}
    for model_id, kind in cases.items():
        with pytest.raises(SourceError) as ei:
            checkpoint_weight_bytes(ModelRef(model_id), retries=0)
        assert ei.value.kind == kind, (model_id, ei.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(fake_hub.requests)
    with pytest.raises(SourceError) as ei:
        checkpoint_weight_bytes(ModelRef("acme/tiny"))
    assert ei.value.kind == "network" and "--weights auto" in ei.value.message
    assert len(fake_hub.requests) == n
