"""`reportgen run --weights checkpoint`: as-shipped cells costed from the safetensors headers of a
(fake) hub, recorded as such; models whose headers cannot be read keep config-derived weights."""

import contextlib
import io
import json

import polars as pl
from hubserver import fake_hub, safetensors_bytes  # noqa: F401 - fixture

from reportgen.arch import build_spec
from reportgen.cli import main

CFG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 256, "hidden_size": 64,
       "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
       "max_position_embeddings": 512, "torch_dtype": "bfloat16", "tie_word_embeddings": False}


def bf16_listing(extra_bytes_tensor: bool) -> dict:
    spec = build_spec(CFG)
    tensors = {("model." + t.name if not t.name.startswith(("model.", "lm_head")) else t.name): ("BF16", list(t.shape))
               for t in spec.tensors}
    if extra_bytes_tensor:     # a stored tensor the config does not announce (e.g. a static input scale)
        tensors["model.layers.0.mlp.down_proj.input_scale"] = ("F32", [1024])
    return tensors


def run(args) -> int:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        return main(args)


def test_run_weights_checkpoint_uses_headers_and_records_it(fake_hub, tmp_path):
    fake_hub.add("acme/tiny", {"config.json": CFG, "model.safetensors": safetensors_bytes(bf16_listing(True))})
    fake_hub.add("acme/no-weights", {"config.json": CFG})
    job = tmp_path / "job.toml"
    job.write_text('models = ["acme/tiny", "acme/no-weights"]\ngpus = ["H100"]\nformats = ["parquet", "csv"]\n'
                   '[matrix]\nweight_dtype = ["checkpoint", "fp8"]\n')
    assert run(["run", str(job), "--out", str(tmp_path / "cfg"), "-q"]) == 0
    assert run(["run", str(job), "--out", str(tmp_path / "ckpt"), "--weights", "checkpoint", "-q"]) == 0
    cfg = pl.read_parquet(tmp_path / "cfg" / "results.parquet")
    ckpt = pl.read_parquet(tmp_path / "ckpt" / "results.parquet")
    key = ["model", "weights_as"]
    joined = cfg.select(*key, w_cfg="weights_gib").join(ckpt.select(*key, "weights_gib", "weights_source"), on=key)
    rows = {(r["model"], r["weights_as"]): r for r in joined.iter_rows(named=True)}
    tiny = rows[("acme/tiny", "checkpoint")]
    assert tiny["weights_source"] == "safetensors"
    # exactly the 4 KiB input-scale tensor more than the config-derived bytes (TP 1: one rank holds all)
    assert (tiny["weights_gib"] - tiny["w_cfg"]) * 2**30 == 1024 * 4
    assert rows[("acme/tiny", "fp8")]["weights_source"] == "config"          # what-ifs stay config-derived
    no_w = rows[("acme/no-weights", "checkpoint")]
    assert no_w["weights_source"] == "config" and no_w["weights_gib"] == no_w["w_cfg"]
    models = {m["id"]: m for m in json.loads((tmp_path / "ckpt" / "manifest.json").read_text())["models"]}
    assert models["acme/tiny"]["weights_source"] == "safetensors"
    assert models["acme/tiny"]["weights_coverage"]["unmatched_bytes"] == 0
    assert "checkpoint headers unavailable (not_found" in models["acme/no-weights"]["weights_note"]


def test_weights_checkpoint_offline_falls_back_without_network(fake_hub, tmp_path, monkeypatch):
    job = tmp_path / "job.toml"
    job.write_text('models = ["Qwen/Qwen3-0.6B"]\ngpus = ["H100"]\nformats = ["parquet", "csv"]\n')
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert run(["run", str(job), "--out", str(tmp_path / "r"), "--weights", "checkpoint", "-q"]) == 0
    assert fake_hub.requests == []
    res = pl.read_parquet(tmp_path / "r" / "results.parquet")
    assert set(res["weights_source"]) == {"config"}
