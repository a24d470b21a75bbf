"""EAGLE / EAGLE-3 drafts (vLLM --speculative-config method eagle / eagle3): what the head adds per GPU.

Every number is derived by hand from the vLLM code reportgen/estimate/specdecode.py cites:
vLLM model_executor/models/llama_eagle.py (@e1c4a552 / @00da9231 and the index copy with ``process_eagle_weight``: one
LlamaDecoderLayer per draft layer with layer 0's input_layernorm an Identity, ``fc = nn.Linear(2H, H)``,
a VocabParallelEmbedding, no lm_head and no final norm), llama_eagle3.py @00bd1493 (layer 0's qkv_proj
reads 2H, a ``hidden_norm`` per layer, a final ``norm``, ``fc = ReplicatedLinear(3 x target_hidden_size, H)``,
``lm_head = ParallelLMHead(draft_vocab_size, H)``, ``draft_id_to_target_id`` int64 of draft_vocab_size),
v1/spec_decode/llm_base_proposer.py @00c4f22d (``_maybe_share_embeddings`` / ``_maybe_share_lm_head``:
shared when the checkpoint lacks the tensor or ``torch.equal`` finds it equal to the target's; the
embedding only when the widths match), config/speculative.py @002e77c1 (method from the draft id,
an EAGLE name wins over draft_model), transformers_utils/configs/eagle.py (index copy: the class rename).

The two head configs are tests/data/eagle/*.json, written from memory of the published config.json
files (tests/data/eagle/SOURCES.md).
"""

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import Component, Shard
from reportgen.estimate.specdecode import (EagleDraftConfig, SpecConfigError, draft_from_config, eagle_class,
                                           parse_speculative_config, resolve)
from reportgen.matrix import estimate_one
from reportgen.vllm_args import parse_vllm_command

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
DATA = ROOT / "tests" / "data" / "eagle"
GIB = float(1 << 30)
E1_ID, E3_ID = "yuhuili/EAGLE-LLaMA3.1-Instruct-8B", "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B"


def spec(model_id: str):
    return build_spec(json.loads((BUNDLED / (model_id.replace("/", "--") + ".json")).read_text()), model_id)


def head(model_id: str, names=None) -> EagleDraftConfig:
    cfg = json.loads((DATA / (model_id.replace("/", "--") + ".json")).read_text())
    sd = parse_speculative_config({"model": model_id, "num_speculative_tokens": 3})
    return draft_from_config(sd, cfg, model_id, checkpoint_names=names)


LLAMA = spec("meta-llama/Llama-3.1-8B-Instruct")
E1 = {"model": E1_ID, "num_speculative_tokens": 3}
E3 = {"method": "eagle3", "model": E3_ID, "num_speculative_tokens": 3}
H, V, DV = 4096, 128256, 32000
EMBED = V * H                                                   # 525,336,576 (128256 = 64 x 2004: no padding)
# EAGLE-3 layer 0: q (2H -> 4096), k / v (2H -> 1024), o, gate/up/down, input / post-attention / hidden norms
E3_LAYER = 2 * H * 4096 + 2 * (2 * H * 1024) + 4096 * H + 3 * H * 14336 + 3 * H
E3_PARAMS = E3_LAYER + H + 3 * H * H + DV * H                   # + final norm, fc (3H -> H), lm_head (32000 rows)
# EAGLE layer 0: q, k, v, o (H in), gate/up/down, post-attention norm only (input_layernorm is Identity)
E1_LAYER = H * 4096 + 2 * H * 1024 + 4096 * H + 3 * H * 14336 + H
E1_PARAMS = E1_LAYER + 2 * H * H                                # + fc (2H -> H, plain nn.Linear)


def test_hand_counts():
    assert E3_LAYER == 243_281_920 and E3_PARAMS == 424_689_664
    assert E1_LAYER == 218_107_904 and E1_PARAMS == 251_662_336
    # the published EAGLE-3 checkpoint is ~811 MB (SOURCES.md): the head without an embedding, d2t included
    assert (2 * E3_PARAMS + 8 * DV) / 2**20 == pytest.approx(810.3, abs=0.1)


# ------------------------------------------------------------------------------------ parsing ---

def test_method_from_the_draft_id_and_the_pasted_command():
    assert parse_speculative_config(E1).method == "eagle"
    assert parse_speculative_config({"model": E3_ID, "num_speculative_tokens": 3}).method == "eagle3"
    # vLLM tests the id before "draft_model": an EAGLE name wins over an explicit draft_model
    assert parse_speculative_config({**E1, "method": "draft_model"}).method == "eagle"
    sd = parse_speculative_config(E3)
    assert (sd.method, sd.model, sd.num_speculative_tokens) == ("eagle3", E3_ID, 3)
    cmd = parse_vllm_command("vllm serve meta-llama/Llama-3.1-8B-Instruct --speculative-config "
                             f"'{{\"method\": \"eagle3\", \"model\": \"{E3_ID}\", \"num_speculative_tokens\": 3}}'")
    assert cmd.engine["speculative_config"] == E3
    dotted = parse_vllm_command(f"vllm serve meta-llama/Llama-3.1-8B-Instruct --speculative-config.method eagle3 "
                                f"--speculative-config.model {E3_ID} --speculative-config.num_speculative_tokens 3")
    assert dotted.engine["speculative_config"] == E3
    with pytest.raises(SpecConfigError, match="needs num_speculative_tokens"):
        parse_speculative_config({"method": "eagle", "model": E1_ID})


def test_vllm_class_rename():
    assert eagle_class("eagle", "LlamaForCausalLM") == "EagleLlamaForCausalLM"
    assert eagle_class("eagle3", "LlamaForCausalLM") == "Eagle3LlamaForCausalLM"
    assert eagle_class("eagle3", "LlamaForCausalLMEagle3") == "LlamaForCausalLMEagle3"
    assert eagle_class("eagle3", "Qwen3ForCausalLM") == "Eagle3Qwen3ForCausalLM"


# ------------------------------------------------------------------------------------ EAGLE-3 ---

def test_eagle3_head_weights_upper_bound_and_kv():
    base = estimate_one(LLAMA, 79.19, max_model_len=32768)
    r = estimate_one(LLAMA, 79.19, max_model_len=32768, speculative_config=E3, draft_spec=head(E3_ID))
    # bf16 at TP 1: every tensor whole, d2t int64; the embedding priced (no header listing: upper bound)
    assert r["draft_weights_gib"] * GIB == 2 * (E3_PARAMS + EMBED) + 8 * DV == 1_900_308_480
    assert r["weights_gib"] - base["weights_gib"] == pytest.approx(r["draft_weights_gib"], rel=1e-9)
    # one more full-attention layer in the pool: 8 KV heads x 128 x (K + V) x 2 bytes
    assert base["kv_bytes_per_token"] == 32 * 8 * 128 * 2 * 2 == 131072
    assert r["kv_bytes_per_token"] == 33 * 8 * 128 * 2 * 2 == 135168
    assert r["kv_cache_tokens"] < base["kv_cache_tokens"]
    assert r["speculative"].startswith(f"eagle3 k=3: {E3_ID} (1 layer; fc 12288->4096; own lm_head 32000 rows")
    assert "upper bound" in r["speculative"] and "no safetensors header listing" in r["speculative"]


def test_eagle3_header_listing_without_embedding_shares_it():
    names = {"midlayer.self_attn.q_proj.weight", "fc.weight", "norm.weight", "lm_head.weight", "d2t", "t2d"}
    r = estimate_one(LLAMA, 79.19, max_model_len=32768, speculative_config=E3, draft_spec=head(E3_ID, names))
    assert r["draft_weights_gib"] * GIB == 2 * E3_PARAMS + 8 * DV == 849_635_328
    assert "embedding shared (not in the checkpoint)" in r["speculative"]
    # no lm_head in the checkpoint either: the target's head is shared too
    r2 = estimate_one(LLAMA, 79.19, speculative_config=E3, draft_spec=head(E3_ID, names - {"lm_head.weight"}))
    assert r2["draft_weights_gib"] * GIB == 2 * (E3_PARAMS - DV * H) + 8 * DV


def test_eagle3_at_tp2():
    names = {"fc.weight", "lm_head.weight", "d2t"}
    r = estimate_one(LLAMA, 79.19, tp=2, max_model_len=32768, speculative_config=E3, draft_spec=head(E3_ID, names))
    # q/k/v/o/MLP / 2 (8 KV heads over 2 ranks), lm_head rows / 2; norms, fc (ReplicatedLinear) and d2t whole
    sharded = 2 * H * 4096 + 2 * (2 * H * 1024) + 4096 * H + 3 * H * 14336 + DV * H
    replicated = 3 * H + H + 3 * H * H
    assert r["draft_weights_gib"] * GIB == 2 * (sharded // 2 + replicated) + 8 * DV == 475_293_696
    assert r["kv_bytes_per_token"] == 33 * 4 * 128 * 2 * 2


# -------------------------------------------------------------------------------------- EAGLE ---

def test_eagle_head_weights():
    r = estimate_one(LLAMA, 79.19, max_model_len=32768, speculative_config=E1, draft_spec=head(E1_ID))
    assert r["draft_weights_gib"] * GIB == 2 * (E1_PARAMS + EMBED) == 1_553_997_824   # embedding: upper bound
    assert r["kv_bytes_per_token"] == 135168
    assert "fc 8192->4096, lm_head shared" in r["speculative"]
    shared = estimate_one(LLAMA, 79.19, speculative_config=E1, draft_spec=head(E1_ID, {"layers.0.mlp.up_proj.weight"}))
    assert shared["draft_weights_gib"] * GIB == 2 * E1_PARAMS == 503_324_672
    cfg = json.loads((DATA / "yuhuili--EAGLE-LLaMA3.1-Instruct-8B.json").read_text())
    hass = EagleDraftConfig(E1_ID, {**cfg, "add_para_norm": True}, frozenset({"fc.weight"}))
    d = resolve(LLAMA, parse_speculative_config(E1), hass)          # + embedding_layernorm, hidden_states_layernorm
    assert sum(t.numel for t in d.weights.tensors) == E1_PARAMS + 2 * H


def test_eagle_draft_layers_join_the_graphs_and_capture_sizes_round():
    base = estimate_one(LLAMA, 79.19, max_model_len=32768)
    r = estimate_one(LLAMA, 79.19, max_model_len=32768, speculative_config=E1, draft_spec=head(E1_ID))
    ngram = estimate_one(LLAMA, 79.19, max_model_len=32768,
                         speculative_config={"method": "ngram", "num_speculative_tokens": 3})
    # the same rounded capture sizes as any k=3 method, one more layer in the graphs than ngram's
    assert r["cuda_graph_gib"] > ngram["cuda_graph_gib"] and ngram["cuda_graph_gib"] != base["cuda_graph_gib"]


# ---------------------------------------------------------------------------------- refusals ---

def test_refusals_name_the_reason():
    d = resolve(LLAMA, parse_speculative_config(E3), None)
    assert "could not be resolved" in d.reason
    ds_head = EagleDraftConfig("x/ds-eagle3", {"architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 4096})
    assert "Eagle3DeepseekV3ForCausalLM" in resolve(LLAMA, parse_speculative_config(
        {"method": "eagle3", "model": "x/ds-eagle3", "num_speculative_tokens": 2}), ds_head).reason
    spx = EagleDraftConfig("x/s", {"architectures": ["EagleSpeculator"], "speculators_model_type": "eagle"})
    assert "speculators-format 'eagle' config" in resolve(LLAMA, parse_speculative_config(E3), spx).reason
    cfg = json.loads((DATA / "yuhuili--EAGLE3-LLaMA3.1-Instruct-8B.json").read_text())
    nested = EagleDraftConfig(E3_ID, {**cfg, "eagle_config": {"norm_before_fc": True}})
    assert "norm_before_fc set" in resolve(LLAMA, parse_speculative_config(E3), nested).reason
    mla = resolve(spec("deepseek-ai/DeepSeek-V3"), parse_speculative_config(E3), head(E3_ID))
    assert "MLA target" in mla.reason
    pp = estimate_one(LLAMA, 79.19, tp=1, pp=2, speculative_config=E3, draft_spec=head(E3_ID))
    assert pp["status"] == "unsupported" and "pipeline parallelism" in pp["reason"]


def test_estimate_cli_with_a_local_head(tmp_path, capsys):
    from reportgen.cli import main

    d = tmp_path / "EAGLE3-LLaMA3.1-Instruct-8B"
    d.mkdir()
    (d / "config.json").write_text((DATA / "yuhuili--EAGLE3-LLaMA3.1-Instruct-8B.json").read_text())
    sc = json.dumps({"method": "eagle3", "model": str(d), "num_speculative_tokens": 3})
    rc = main(["estimate", "--gpu", "H100", "--offline", "--json", "--from-vllm-args",
               f"vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 32768 --speculative-config '{sc}'"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["speculative"].startswith("eagle3 k=3")
    assert out["draft_weights_gib"] * GIB == 1_900_308_480
    assert out["kv_bytes_per_token_rank"] == 135168


# ------------------------------------------------------------------ buffers (llm_base_proposer.py) ---

def test_proposer_buffers_and_eagle3_aux_states():
    d3 = resolve(LLAMA, parse_speculative_config(E3), head(E3_ID))
    d1 = resolve(LLAMA, parse_speculative_config(E1), head(E1_ID))
    # hidden_states + inputs_embeds [T, 4096] bf16; input_ids, arange int32; positions, slot mapping int64
    assert (d3.buffer_elems_t, d3.buffer_bytes_t, d3.fwd_elems_t) == (2 * H, 4 + 4 + 8 + 8, 3 * H)
    assert (d1.buffer_elems_t, d1.buffer_bytes_t, d1.fwd_elems_t) == (2 * H, 24, 0)
    t = 8192                                          # vLLM's max_num_batched_tokens on an 80 GB GPU
    ngram = estimate_one(LLAMA, 79.19, max_model_len=32768,
                         speculative_config={"method": "ngram", "num_speculative_tokens": 3})
    e1 = estimate_one(LLAMA, 79.19, max_model_len=32768, speculative_config=E1, draft_spec=head(E1_ID))
    assert (e1["activation_gib"] - ngram["activation_gib"]) * GIB == pytest.approx(t * (2 * H * 2 + 24), rel=1e-9)
    # with few sequences the forward, not the sampler, is the activation peak: EAGLE-3's three aux hidden
    # states (3 x 4096 bf16 a token) are alive in it
    few = dict(max_model_len=32768, max_num_seqs=8)
    e1f = estimate_one(LLAMA, 79.19, speculative_config=E1, draft_spec=head(E1_ID), **few)
    e3f = estimate_one(LLAMA, 79.19, speculative_config=E3, draft_spec=head(E3_ID), **few)
    assert (e3f["activation_gib"] - e1f["activation_gib"]) * GIB == pytest.approx(t * 3 * H * 2, rel=1e-9)


def test_quantized_heads():
    cfg = json.loads((DATA / "yuhuili--EAGLE3-LLaMA3.1-Instruct-8B.json").read_text())
    q = EagleDraftConfig(E3_ID, {**cfg, "quantization_config": {"quant_method": "fp8"}})
    assert "quantized EAGLE checkpoint" in resolve(LLAMA, parse_speculative_config(E3), q).reason
    # an online draft quantization (speculative_config.quantization) quantizes the Linear layers and the
    # EAGLE-3 fc (a ReplicatedLinear built with the draft's quant config); norms, lm_head and d2t stay as they are
    names = {"fc.weight", "lm_head.weight", "d2t"}
    fp8 = estimate_one(LLAMA, 79.19, speculative_config={**E3, "quantization": "fp8"}, draft_spec=head(E3_ID, names))
    bf16 = estimate_one(LLAMA, 79.19, speculative_config=E3, draft_spec=head(E3_ID, names))
    linears = E3_LAYER - 3 * H + 3 * H * H
    assert (bf16["draft_weights_gib"] - fp8["draft_weights_gib"]) * GIB == pytest.approx(linears, rel=1e-3)


def test_job_run_resolves_the_head(tmp_path):
    import polars as pl

    from reportgen.cli import main

    d = tmp_path / "EAGLE-LLaMA3.1-Instruct-8B"
    d.mkdir()
    (d / "config.json").write_text((DATA / "yuhuili--EAGLE-LLaMA3.1-Instruct-8B.json").read_text())
    job = tmp_path / "job.toml"
    job.write_text('name = "eagle"\nmodels = ["meta-llama/Llama-3.1-8B-Instruct"]\ngpus = ["H100"]\n'
                   'formats = ["parquet"]\n[matrix]\ntp = [1, 2]\nmax_model_len = [32768]\n'
                   f'speculative_config = {{ method = "eagle", model = "{d}", num_speculative_tokens = 3 }}\n')
    out = tmp_path / "run"
    assert main(["run", str(job), "--out", str(out), "--offline", "-q"]) == 0
    rows = {r["tp"]: r for r in pl.read_parquet(out / "results.parquet").iter_rows(named=True)}
    assert rows[1]["speculative"].startswith("eagle k=3") and rows[1]["kv_bytes_per_token"] == 135168
    assert rows[1]["draft_weights_gib"] * GIB == 1_553_997_824
    # TP 2: layer linears and the embedding rows halved; fc (nn.Linear) and the norm whole on each rank
    assert rows[2]["draft_weights_gib"] * GIB == 2 * ((E1_LAYER - H) // 2 + EMBED // 2 + H + 2 * H * H)


# ------------------------------------------------------------------------ qwen3_eagle3.py @055e47c2 ---

# a Qwen3ForCausalLM-architecture head for Qwen3-8B: a hypothetical config written for this test (geometry of
# Qwen3-8B's layer, a 32000-token draft vocabulary, norm_before_fc, aux layers given by id)
QWEN3_HEAD = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 4096,
              "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 12288,
              "num_hidden_layers": 1, "vocab_size": 151936, "draft_vocab_size": 32000, "rms_norm_eps": 1e-6,
              "eagle_config": {"norm_before_fc": True, "eagle_aux_hidden_state_layer_ids": [1, 17, 32]}}


def test_qwen3_eagle3_head():
    qwen = spec("Qwen/Qwen3-8B")
    sc = {"method": "eagle3", "model": "x/qwen3-8b-eagle3", "num_speculative_tokens": 2}
    ed = EagleDraftConfig("x/qwen3-8b-eagle3", QWEN3_HEAD, frozenset({"fc.weight", "lm_head.weight", "d2t"}))
    d = resolve(qwen, parse_speculative_config(sc), ed)
    assert d.reason is None and d.weights.architectures == ("Eagle3Qwen3ForCausalLM",)
    # layer 0: q/k/v over 2H, o, q_norm + k_norm (head_dim), MLP (12288), three norms
    layer = 2 * H * 4096 + 2 * (2 * H * 1024) + 4096 * H + 2 * 128 + 3 * H * 12288 + 3 * H
    params = layer + H + 3 * H * H + 3 * H + DV * H       # + norm, fc, input_norm (norm_before_fc), lm_head
    assert layer == 218_116_352 and params == 399_536_384
    assert sum(t.numel for t in d.weights.tensors) == params + DV               # + d2t (int64, 8 bytes each)
    assert d.fwd_elems_t == 3 * 4096                                              # three aux ids
    r = estimate_one(qwen, 79.19, max_model_len=32768, speculative_config=sc, draft_spec=ed)
    assert r["draft_weights_gib"] * GIB == 2 * params + 8 * DV == 799_328_768
    assert r["kv_bytes_per_token"] == 37 * 8 * 128 * 2 * 2
    sliding = EagleDraftConfig("x/s", {**QWEN3_HEAD, "layer_types": ["sliding_attention"], "sliding_window": 4096})
    assert "sliding-window draft layers" in resolve(qwen, parse_speculative_config(sc), sliding).reason


def test_draft_spec_for_reads_the_heads_header_listing(tmp_path, monkeypatch):
    import reportgen.sources as sources
    from reportgen.estimate_cmd import draft_spec_for
    from reportgen.sources import SourceError

    d = tmp_path / "EAGLE3-LLaMA3.1-Instruct-8B"
    d.mkdir()
    (d / "config.json").write_text((DATA / "yuhuili--EAGLE3-LLaMA3.1-Instruct-8B.json").read_text())
    sc = {"method": "eagle3", "model": str(d), "num_speculative_tokens": 3}
    listing = {"source": "safetensors", "total_bytes": 1,
               "tensors": {n: {"shape": [1], "dtype": "BF16", "bytes": 2} for n in ("fc.weight", "lm_head.weight", "d2t")}}
    monkeypatch.setattr(sources, "checkpoint_weight_bytes", lambda ref, **kw: listing)
    ed = draft_spec_for(sc, offline=True, headers=True)
    assert isinstance(ed, EagleDraftConfig) and ed.checkpoint_names == {"fc.weight", "lm_head.weight", "d2t"}
    assert draft_spec_for(sc, offline=True).checkpoint_names is None          # --weights config: no listing read
    r = estimate_one(LLAMA, 79.19, speculative_config=sc, draft_spec=ed)
    assert r["draft_weights_gib"] * GIB == 849_635_328 and "embedding shared" in r["speculative"]

    def missing(ref, **kw):
        raise SourceError(ref, "not_found", "pytorch_model.bin only")
    monkeypatch.setattr(sources, "checkpoint_weight_bytes", missing)
    assert draft_spec_for(sc, offline=True, headers=True).checkpoint_names is None   # upper bound then


def test_speculators_format_eagle3_head():
    """vLLM reads a speculators config as its transformer_layer_config plus the EAGLE-3 fields
    (SpeculatorsConfig.extract_transformers_pre_trained_config + algos.update_eagle3): the same head."""
    sid = "RedHatAI/Llama-3.1-8B-Instruct-speculator.eagle3"
    cfg = json.loads((DATA / (sid.replace("/", "--") + ".json")).read_text())
    assert parse_speculative_config({"model": sid, "num_speculative_tokens": 3}).method == "eagle3"
    sc = {"method": "eagle3", "model": sid, "num_speculative_tokens": 3}
    r = estimate_one(LLAMA, 79.19, speculative_config=sc, draft_spec=EagleDraftConfig(sid, cfg))
    assert r["draft_weights_gib"] * GIB == 2 * (E3_PARAMS + EMBED) + 8 * DV == 1_900_308_480
    assert "Eagle3LlamaForCausalLM" == resolve(LLAMA, parse_speculative_config(sc), EagleDraftConfig(sid, cfg)).weights.architectures[0]
    q3 = {**cfg, "transformer_layer_config": {**cfg["transformer_layer_config"], "model_type": "qwen3"}}
    d = resolve(LLAMA, parse_speculative_config(sc), EagleDraftConfig(sid, q3))
    assert d.weights.architectures == ("Eagle3Qwen3ForCausalLM",)           # q_norm / k_norm: 2 x 128 more
    assert sum(t.numel for t in d.weights.tensors) == sum(t.numel for t in resolve(
        LLAMA, parse_speculative_config(sc), EagleDraftConfig(sid, cfg)).weights.tensors) + 2 * 128
    nf = {**cfg, "norm_before_fc": True}
    assert "norm_before_fc set" in resolve(LLAMA, parse_speculative_config(sc), EagleDraftConfig(sid, nf)).reason


# ----------------------------------------------- the head's layers are its family's (shared blocks) ---

def _layer(tensors, i):
    return sorted((t.name, t.shape, t.shard, t.component, t.quantizable) for t in tensors if t.layer == i)


@pytest.mark.parametrize("method,model_type,extra", [
    ("eagle", "llama", {}), ("eagle3", "llama", {}),
    ("eagle", "llama", {"attention_bias": True, "mlp_bias": True}),
    ("eagle3", "qwen3", {"architectures": ["Qwen3ForCausalLM"], "head_dim": 96}),
])
def test_head_layer_is_the_family_layer(method, model_type, extra):
    """A 3-layer head: layers 1 and 2 are exactly the layers llama.build / the qwen3 family builds for the
    same fields (families/common.py decoder_layer); layer 0 differs only as llama_eagle.py / llama_eagle3.py
    say -- EAGLE: no input_layernorm; EAGLE-3: q/k/v read 2H and every layer has a hidden_norm."""
    cfg = {**json.loads((DATA / "yuhuili--EAGLE-LLaMA3.1-Instruct-8B.json").read_text()),
           "model_type": model_type, "num_hidden_layers": 3, **extra}
    target = build_spec({**cfg, "architectures": [{"llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM"}[model_type]]},
                        "x/family")
    assert target.unsupported_reason is None
    sc = {"method": method, "model": "x/head", "num_speculative_tokens": 2}
    d = resolve(LLAMA, parse_speculative_config(sc), EagleDraftConfig("x/head", cfg, frozenset({"fc.weight"})))
    assert d.reason is None and len(d.layers_kv) == 3
    hidden_norm = [(f"model.layers.{i}.hidden_norm.weight", (H,), Shard.REPLICATED, Component.NORM, False)
                   for i in range(3)]
    for i in (1, 2):
        want = _layer(target.tensors, i) + ([hidden_norm[i]] if method == "eagle3" else [])
        assert _layer(d.weights.tensors, i) == sorted(want)
    fam0 = _layer(target.tensors, 0)
    if method == "eagle":
        assert _layer(d.weights.tensors, 0) == [t for t in fam0 if "input_layernorm" not in t[0]]
    else:
        widen = {"q_proj.weight", "k_proj.weight", "v_proj.weight"}
        want = [(n, (s[0], 2 * s[1]) if n.rsplit(".", 2)[-2] + ".weight" in widen else s, sh, c, q)
                for n, s, sh, c, q in fam0]
        assert _layer(d.weights.tensors, 0) == sorted(want + [hidden_norm[0]])


# -------------------------------------------- EAGLE-3 Llama heads on gpt-oss and Qwen3-MoE targets ---
# Both kinds of published heads are Llama-layer EAGLE-3 heads (architectures LlamaForCausalLMEagle3 ->
# llama_eagle3.py @00bd1493).  The two configs below are HYPOTHETICAL, written for these tests in the shape of
# such heads (not copies of a published config.json): only the arithmetic of the vLLM file is checked.

GPT_OSS_HEAD = {"architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama", "hidden_size": 2880,
                "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 17280,
                "num_hidden_layers": 1, "vocab_size": 201088, "draft_vocab_size": 201088,
                "target_hidden_size": 2880, "rms_norm_eps": 1e-5, "tie_word_embeddings": False}
QWEN3_MOE_HEAD = {"architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama", "hidden_size": 2048,
                  "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "intermediate_size": 6144,
                  "num_hidden_layers": 1, "vocab_size": 151936, "draft_vocab_size": 32000, "rms_norm_eps": 1e-6}


def _eagle3_llama_params(c):
    """llama_eagle3.py @00bd1493: layer 0 = QKVParallelLinear(2H -> (heads + 2 kv) x head_dim), o_proj,
    gate/up/down, input_layernorm + post_attention_layernorm + hidden_norm; model.norm; fc =
    ReplicatedLinear(3 x target_hidden_size (else H), H); lm_head = ParallelLMHead(draft_vocab_size, H)."""
    h, hd = c["hidden_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    layer = 2 * h * (q + 2 * kv) + q * h + 3 * h * c["intermediate_size"] + 3 * h
    fc = 3 * c.get("target_hidden_size", h) * h
    return layer + h + fc + c["draft_vocab_size"] * h


@pytest.mark.parametrize("target_id,cfg,base_kv", [
    ("openai/gpt-oss-20b", GPT_OSS_HEAD, 24 * 8 * 64 * 2 * 2),            # 12 full + 12 sliding layers, bf16 KV
    ("Qwen/Qwen3-30B-A3B", QWEN3_MOE_HEAD, 48 * 4 * 128 * 2 * 2),
])
def test_eagle3_llama_heads_on_moe_targets(target_id, cfg, base_kv):
    target = spec(target_id)
    sc = {"method": "eagle3", "model": "x/head", "num_speculative_tokens": 3}
    ed = EagleDraftConfig("x/head", cfg, frozenset({"fc.weight", "lm_head.weight", "d2t"}))   # no embed_tokens
    d = resolve(target, parse_speculative_config(sc), ed)
    params, dv = _eagle3_llama_params(cfg), cfg["draft_vocab_size"]
    assert d.reason is None and sum(t.numel for t in d.weights.tensors) == params + dv       # + d2t (int64)
    assert d.fwd_elems_t == 3 * target.hidden_size                                             # 3 aux states
    base = estimate_one(target, 79.19, max_model_len=32768)
    r = estimate_one(target, 79.19, max_model_len=32768, speculative_config=sc, draft_spec=ed)
    # the head is bf16 (its own config has no quantization_config) whatever the target's scheme (MXFP4 for gpt-oss)
    assert r["draft_weights_gib"] * GIB == 2 * params + 8 * dv
    # one more full-attention layer (the head's KV heads and head_dim, bf16) joins the target's full group
    draft_kv = cfg["num_key_value_heads"] * cfg["head_dim"] * 2 * 2
    assert (base["kv_bytes_per_token"], r["kv_bytes_per_token"]) == (base_kv, base_kv + draft_kv)
    assert r["kv_cache_tokens"] < base["kv_cache_tokens"]


def test_gpt_oss_head_numbers():
    # the arithmetic above, spelled out once: 190,595,520 layer + 2,880 norm + 24,883,200 fc + 579,133,440 lm_head
    assert _eagle3_llama_params(GPT_OSS_HEAD) == 794_615_040
    assert 2 * 794_615_040 + 8 * 201088 == 1_590_838_784


def test_sliding_llama_head_and_read_but_unpriced_classes_are_refused():
    sc = parse_speculative_config({"method": "eagle3", "model": "x/head", "num_speculative_tokens": 3})
    sliding = EagleDraftConfig("x/head", {**GPT_OSS_HEAD, "layer_types": ["sliding_attention"], "sliding_window": 128})
    assert "sliding-window draft layers" in resolve(spec("openai/gpt-oss-20b"), sc, sliding).reason
    e1 = parse_speculative_config({"method": "eagle", "model": "x/head", "num_speculative_tokens": 3})
    l4 = EagleDraftConfig("x/head", {**GPT_OSS_HEAD, "architectures": ["Llama4ForCausalLM"]})
    assert "EagleLlama4ForCausalLM: llama4_eagle.py" in resolve(LLAMA, e1, l4).reason
    mc = EagleDraftConfig("x/head", {**GPT_OSS_HEAD, "architectures": ["MiniCPMForCausalLM"]})
    assert "EagleMiniCPMForCausalLM: minicpm_eagle.py" in resolve(LLAMA, e1, mc).reason


def test_deepseek_eagle_head_is_refused_with_its_files_reason():
    """deepseek_eagle.py @0c58615d: EagleDeepseekV3ForCausalLM (an EAGLE head whose config names
    DeepseekV3ForCausalLM), on an MLA target: the class reason, not the generic MLA one."""
    ds = spec("deepseek-ai/DeepSeek-V3")
    e1 = parse_speculative_config({"method": "eagle", "model": "x/ds-head", "num_speculative_tokens": 1})
    ds_head = EagleDraftConfig("x/ds-head", {"architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168})
    assert "EagleDeepseekV3ForCausalLM: deepseek_eagle.py" in resolve(ds, e1, ds_head).reason
    assert "MLA target" in resolve(ds, parse_speculative_config(E3), head(E3_ID)).reason     # a Llama head
