"""Speculative decoding (vLLM --speculative-config): what a draft adds to per-GPU memory.

Every figure is derived from the vLLM code reportgen/estimate/specdecode.py cites:
vLLM config/speculative.py @002e77c1 (method inference, n_predict, draft TP), models/deepseek_mtp.py
@03356f8c (the MTP layer's tensors), v1/spec_decode/llm_base_proposer.py @00c4f22d (an MTP draft shares
the target's embedding and lm_head; draft attention layers join the KV cache), v1/spec_decode/
draft_model.py @01dd981d (a draft model keeps its own weights, built at the target's TP),
config/vllm.py ``_set_cudagraph_sizes`` and config/compilation.py @ee525ce4
``adjust_cudagraph_sizes_for_spec_decode`` (capture sizes).
"""

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import Shard
from reportgen.estimate.profiles import DEFAULT_PROFILE, PROFILES, capture_sizes, profile_for, spec_rounded_sizes
from reportgen.estimate.specdecode import SpecConfigError, parse_speculative_config, resolve
from reportgen.job import JobError, parse_matrix
from reportgen.matrix import estimate_one
from reportgen.vllm_args import parse_vllm_command

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
GIB = float(1 << 30)


def spec(model_id: str):
    return build_spec(json.loads((BUNDLED / (model_id.replace("/", "--") + ".json")).read_text()), model_id)


DSV3 = spec("deepseek-ai/DeepSeek-V3")
MTP1 = {"method": "mtp", "num_speculative_tokens": 1}


# ------------------------------------------------------------------ parsing (speculative.py) ---

def test_method_inference_and_defaults_follow_vllm():
    assert parse_speculative_config('{"model": "ngram", "num_speculative_tokens": 3}').method == "ngram"
    sd = parse_speculative_config({"model": "Qwen/Qwen3-0.6B", "num_speculative_tokens": 4})
    assert (sd.method, sd.model, sd.num_speculative_tokens) == ("draft_model", "Qwen/Qwen3-0.6B", 4)
    assert parse_speculative_config({"method": "deepseek_mtp"}).method == "mtp"      # legacy MTP names
    assert parse_speculative_config({"method": "mtp"}).num_speculative_tokens is None  # n_predict, per model
    assert parse_speculative_config({"method": "suffix"}).num_speculative_tokens == 24  # max tree depth
    assert parse_speculative_config({"method": "suffix", "suffix_decoding_max_tree_depth": 8}).num_speculative_tokens == 8
    for empty in (None, "", "None", "{}", {}):
        assert parse_speculative_config(empty) is None


@pytest.mark.parametrize("value, needle", [
    ({"method": "ngram"}, "needs num_speculative_tokens"),
    ({"model": "yuhuili/EAGLE-LLaMA3.1-Instruct-8B"}, "method eagle needs num_speculative_tokens"),
    ({"method": "eagle3", "num_speculative_tokens": 3}, "method eagle3 needs the draft model id"),
    ({"method": "draft_model", "num_speculative_tokens": 3}, "draft model id"),
    ({"model": "Qwen/Qwen3-0.6B"}, "needs num_speculative_tokens"),
    ({"method": "mtp", "draft_sample_method": "probabilistic"}, "probabilistic"),
    ({"method": "mtp", "tensor_parallel_size": 2}, "draft_tensor_parallel_size"),
    ({"method": "mtp", "num_speculative_tokens": 0}, ">= 1"),
    ({"method": "mtp", "numspec": 1}, "unknown key 'numspec'"),
    ({"method": "dflash", "model": "z-lab/x", "num_speculative_tokens": 7}, "DFlash"),
    ("{method: mtp}", "not a JSON object"),
])
def test_configs_vllm_refuses_or_we_do_not_model_are_errors(value, needle):
    with pytest.raises(SpecConfigError, match=needle):
        parse_speculative_config(value)


# --------------------------------------------------------- capture sizes (vllm.py, compilation.py) ---

def test_spec_decode_capture_sizes_are_rounded_to_one_plus_k():
    # Model Runner V1's rounding (adjust_cudagraph_sizes_for_spec_decode; ``not use_v2_model_runner``, vllm 0.28.0
    # sdist config/compilation.py:1475-1490): the 0.26 profile at 0.28.0 keeps it.  From 0.29 every model runs Model
    # Runner V2, which skips it (tests/test_specdecode_mrv2.py)
    p, v = profile_for("0.28.0")[0], (0, 28, 0)
    assert p.name == "0.26" and DEFAULT_PROFILE.mrv2 == "all"
    assert capture_sizes(p, 1024, 8192, version=v) == 102                   # the reference 51 + 51
    # k=1: max = min(1024 x 2 x 2, 512) = 512; [1, 2, 4, 8..248, 256..512] rounded up to even numbers ->
    # {2, 4} + 31 + 17 = 50 sizes, all FULL (<= 1024 x 2)
    assert capture_sizes(p, 1024, 8192, num_spec=1, version=v) == 100
    # k=4 (q=5): 1, 2, 4 -> 5; 8..248 -> 31 distinct multiples of 5; 256..496 -> 16 (512 -> 515 > 512)
    assert capture_sizes(p, 1024, 8192, num_spec=4, version=v) == 2 * (1 + 31 + 16)
    # max_num_seqs 4, k=2 (q=3): max = min(4 x 3 x 2, 512) = 24: [1, 2, 4, 8, 16, 24] -> {3, 6, 9, 18, 24};
    # FULL up to 4 x 3 = 12 tokens -> {3, 6, 9}
    assert capture_sizes(p, 4, 8192, num_spec=2, version=v) == 5 + 3
    assert capture_sizes(p, 4, 8192, version=v) == 4 + 3                    # without: [1, 2, 4, 8], FULL up to 4
    assert spec_rounded_sizes([1, 2, 4], 4, 4) == [4]
    assert spec_rounded_sizes([1, 2], 3, 2) == []                # vLLM raises "No valid cudagraph sizes"
    assert capture_sizes(p, 1024, 8192, enforce_eager=True, num_spec=3, version=v) == 0
    assert capture_sizes(PROFILES[0], 1024, 8192, num_spec=3) == capture_sizes(PROFILES[0], 1024, 8192)


# ---------------------------------------------------------------------------- MTP (deepseek_mtp.py) ---

def test_deepseek_v3_mtp_tensors_are_the_layer_without_embedding_and_head():
    h, v = 7168, 129280
    mtp_params = sum(t.params for t in DSV3.mtp_tensors)
    assert DSV3.mtp_params == 13_463_426_048                     # layer + own embedding / head + 3 norms + eh_proj
    assert mtp_params == 13_463_426_048 - 2 * v * h == 11_610_067_968
    eh = next(t for t in DSV3.mtp_tensors if t.name.endswith("eh_proj.weight"))
    assert eh.shape == (h, 2 * h) and eh.shard is Shard.REPLICATED and not eh.quantizable   # plain nn.Linear
    assert len(DSV3.mtp_layers_kv) == 1 and DSV3.mtp_layers_kv[0].head_size_k == 512 + 64


def test_mtp_adds_one_latent_layer_and_the_layer_weights():
    base = estimate_one(DSV3, 139.81, tp=8, weights_as="bf16", max_model_len=32768)
    mtp = estimate_one(DSV3, 139.81, tp=8, weights_as="bf16", max_model_len=32768, speculative_config=MTP1)
    assert base["kv_bytes_per_token"] == 61 * 576 * 2 == 70272
    assert mtp["kv_bytes_per_token"] == 62 * 576 * 2 == 71424   # the MTP layer's latent joins the pool
    # bf16: replicated tensors whole on every rank, the rest / 8 (no vocab tensors: embedding and head shared)
    rep = sum(t.numel for t in DSV3.mtp_tensors if t.shard is Shard.REPLICATED)
    rest = sum(t.numel for t in DSV3.mtp_tensors if t.shard is not Shard.REPLICATED)
    assert mtp["draft_weights_gib"] * GIB == pytest.approx(2 * (rep + rest / 8), rel=1e-12)
    assert mtp["weights_gib"] - base["weights_gib"] == pytest.approx(mtp["draft_weights_gib"], rel=1e-9)
    assert mtp["speculative"].startswith("mtp k=1: 1 MTP layer") and base["speculative"] is None
    fp8_base = estimate_one(DSV3, 139.81, tp=8, max_model_len=32768)
    fp8_mtp = estimate_one(DSV3, 139.81, tp=8, max_model_len=32768, speculative_config=MTP1)
    # fewer tokens: less KV room (the draft's weights) and more bytes per token (one more latent)
    kv_room = fp8_mtp["kv_cache_gib"] * GIB
    assert fp8_mtp["kv_cache_gib"] < fp8_base["kv_cache_gib"]
    assert fp8_mtp["block_size"] == 64      # vLLM 0.34's default block size (config/cache.py:185)
    assert fp8_mtp["kv_cache_tokens"] == int(kv_room // (71424 * 64)) * 64
    one = estimate_one(DSV3, 139.81, tp=1, weights_as="bf16", speculative_config=MTP1)
    assert one["draft_weights_gib"] * GIB == 2 * 11_610_067_968


def test_mtp_checkpoint_scheme_keeps_eh_proj_unquantized():
    fp8 = estimate_one(DSV3, 139.81, tp=8, speculative_config=MTP1)   # the fp8 block-scaled checkpoint
    bf16 = estimate_one(DSV3, 139.81, tp=8, weights_as="bf16", speculative_config=MTP1)
    assert 0.5 < fp8["draft_weights_gib"] / bf16["draft_weights_gib"] < 0.6
    assert fp8["draft_weights_gib"] * GIB > 7168 * 14336 * 2      # eh_proj alone stays bf16 on every rank


@pytest.mark.parametrize("model, needle", [
    (str(ROOT / "tests" / "data" / "configs_2026" / "zai-org--GLM-4.7-Flash.json"), "MTP layers whose vLLM model file"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama has no MTP layers"),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", "hybrid target"),
])
def test_mtp_elsewhere_is_refused_with_the_reason(model, needle):
    if model.endswith(".json"):     # GLM-4.7-Flash with its checkpoint's one MTP layer (glm4_moe_lite_mtp.py: not read)
        sp = build_spec({**json.loads(Path(model).read_text()), "num_nextn_predict_layers": 1}, "GLM-4.7-Flash")
    else:
        sp = spec(model)
    r = estimate_one(sp, 139.81, tp=1, speculative_config=MTP1)
    assert r["status"] == "unsupported" and needle in r["reason"]


def test_layout_refusals():
    pp = estimate_one(DSV3, 139.81, tp=4, pp=2, speculative_config=MTP1)
    assert pp["status"] == "unsupported" and "pipeline parallelism" in pp["reason"]
    d1 = estimate_one(DSV3, 139.81, tp=8, speculative_config={**MTP1, "draft_tensor_parallel_size": 1})
    assert d1["status"] == "unsupported" and "draft_tensor_parallel_size 1" in d1["reason"]
    d3 = estimate_one(DSV3, 139.81, tp=8, speculative_config={**MTP1, "draft_tensor_parallel_size": 3})
    assert "vLLM refuses" in d3["reason"]
    ok = estimate_one(DSV3, 139.81, tp=8, speculative_config={**MTP1, "draft_tensor_parallel_size": 8})
    assert ok["status"] in ("fits", "tight")
    k3 = estimate_one(DSV3, 139.81, tp=8, speculative_config={"method": "mtp", "num_speculative_tokens": 3})
    assert k3["speculative"].startswith("mtp k=3") and k3["kv_bytes_per_token"] == 71424   # one layer, reused


# -------------------------------------------------------------------- draft model (draft_model.py) ---

def test_draft_model_weights_and_kv_at_the_targets_tp():
    target, draft = spec("Qwen/Qwen3-32B"), spec("Qwen/Qwen3-0.6B")
    sc = {"model": "Qwen/Qwen3-0.6B", "num_speculative_tokens": 4}
    r = estimate_one(target, 79.19, tp=2, max_model_len=32768, speculative_config=sc, draft_spec=draft)
    base = estimate_one(target, 79.19, tp=2, max_model_len=32768)
    alone = estimate_one(draft, 79.19, tp=2, max_model_len=32768)
    # 64 target layers + 28 draft layers, 8 KV heads / 2 ranks, head 128, K and V, bf16
    assert r["kv_bytes_per_token"] == (64 + 28) * 4 * 128 * 2 * 2 == 188416
    # own embedding, tied head; served alone, Qwen3-0.6B's vocab half 151,936 / 2 x 1,024 x 2 B = 148.375 MiB keeps its
    # 150 MiB allocator block (branch load29, weights.allocator_unsplit_bytes; not priced for a draft): 1.625 MiB
    assert r["draft_weights_gib"] == pytest.approx(alone["weights_gib"] - 1.625 * 2**20 / 2**30, rel=1e-12)
    assert r["weights_gib"] == pytest.approx(base["weights_gib"] + r["draft_weights_gib"], rel=1e-12)
    assert "draft_model k=4: Qwen/Qwen3-0.6B (28 layers" in r["speculative"]
    # Llama-3.1-70B + Llama-3.2-1B at TP 4: pages differ (head 128 vs 64) but both are full attention:
    # one KV group whose block holds a page of every layer (vLLM UniformTypeKVCacheSpecs)
    r70 = estimate_one(spec("meta-llama/Meta-Llama-3.1-70B"), 79.19, tp=4, max_model_len=8192,
                       speculative_config={"model": "meta-llama/Llama-3.2-1B-Instruct", "num_speculative_tokens": 5},
                       draft_spec=spec("meta-llama/Llama-3.2-1B-Instruct"))
    assert r70["kv_bytes_per_token"] == 80 * 2 * 128 * 4 + 16 * 2 * 64 * 4 == 90112


def test_draft_model_refusals():
    llama = spec("meta-llama/Llama-3.1-8B-Instruct")
    sc = {"model": "Qwen/Qwen3-0.6B", "num_speculative_tokens": 4}
    r = estimate_one(llama, 79.19, speculative_config=sc, draft_spec=spec("Qwen/Qwen3-0.6B"))
    assert r["status"] == "unsupported" and "vocab_size 151936 != target vocab_size 128256" in r["reason"]
    missing = estimate_one(llama, 79.19, speculative_config=sc, draft_spec=None)
    assert "could not be resolved" in missing["reason"]


# ------------------------------------------------------------------------------- ngram / suffix ---

def test_ngram_and_suffix_add_no_weights_or_kv():
    llama = spec("meta-llama/Llama-3.1-8B-Instruct")
    base = estimate_one(llama, 79.19, max_model_len=32768)
    for sc, label in (({"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4}, "ngram k=4"),
                      ({"method": "suffix"}, "suffix k=24")):
        r = estimate_one(llama, 79.19, max_model_len=32768, speculative_config=sc)
        assert r["draft_weights_gib"] == 0.0 and r["weights_gib"] == base["weights_gib"]
        assert r["kv_bytes_per_token"] == base["kv_bytes_per_token"]
        assert r["speculative"].startswith(label) and "no draft weights or KV" in r["speculative"]
        assert r["cuda_graph_gib"] != base["cuda_graph_gib"]     # fewer, rounded capture sizes


def test_resolve_on_its_own():
    d = resolve(DSV3, parse_speculative_config(MTP1))
    assert (d.method, d.k, d.graph_layers, d.reason) == ("mtp", 1, 1, None)
    assert (d.buffer_elems_t, d.buffer_bytes_t) == (2 * 7168, 24)     # the proposer's hidden_states + inputs_embeds ...
    assert sum(t.params for t in d.weights.tensors) == 11_610_067_968


# --------------------------------------------------------------------- the three ways to say it ---

def test_job_key_cli_line_and_dotted_flags_agree():
    m = parse_matrix({"speculative_config": {"method": "mtp", "num_speculative_tokens": 1}})
    assert m.speculative_config == {"method": "mtp", "num_speculative_tokens": 1}
    m2 = parse_matrix({"speculative_config": '{"method": "mtp", "num_speculative_tokens": 1}'})
    assert m2.speculative_config == m.speculative_config
    with pytest.raises(JobError, match="matrix.speculative_config: method medusa"):
        parse_matrix({"speculative_config": {"method": "medusa", "model": "x/y", "num_speculative_tokens": 2}})
    cmd = parse_vllm_command("vllm serve deepseek-ai/DeepSeek-V3 -tp 8 --speculative-config "
                             "'{\"method\": \"mtp\", \"num_speculative_tokens\": 1}'")
    assert cmd.engine["speculative_config"] == m.speculative_config
    dotted = parse_vllm_command("vllm serve deepseek-ai/DeepSeek-V3 --speculative-config.num_speculative_tokens 1 "
                                "--speculative-config.method mtp")
    assert dotted.engine["speculative_config"] == m.speculative_config


def test_estimate_json_reports_the_method_and_draft(capsys):
    from reportgen.cli import main

    rc = main(["estimate", "--gpu", "H200", "--offline", "--json", "--from-vllm-args",
               "vllm serve deepseek-ai/DeepSeek-V3 -tp 8 --max-model-len 32k --speculative-config "
               "'{\"method\": \"mtp\", \"num_speculative_tokens\": 1}'"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["engine"]["speculative_config"] == MTP1
    assert out["speculative"].startswith("mtp k=1") and out["draft_weights_gib"] > 1.0
    assert out["kv_bytes_per_token_rank"] == 71424


def test_glm5_mtp_layer_brings_its_indexer_cache():
    glm5 = build_spec(json.loads((ROOT / "tests" / "data" / "configs_2026" / "zai-org--GLM-5.json").read_text()),
                      "zai-org/GLM-5")
    # 11,856,085,760 MTP parameters less the embedding and head vLLM shares (2 x 154,880 x 6,144)
    assert sum(t.params for t in glm5.mtp_tensors) == 11_856_085_760 - 2 * 154880 * 6144 == 9_952_920_320
    base = estimate_one(glm5, 268.09, tp=8, max_model_len=32768)
    mtp = estimate_one(glm5, 268.09, tp=8, max_model_len=32768, speculative_config=MTP1)
    # DSA layer: 1,152-byte bf16 latent + 132-byte indexer key; 78 layers -> 79 with the MTP layer
    assert base["kv_bytes_per_token"] == 78 * (1152 + 132) == 100152
    assert mtp["kv_bytes_per_token"] == 79 * (1152 + 132) == 101436


def test_job_run_and_snapshot_resolve_the_draft_model(tmp_path):
    import polars as pl

    from reportgen.cli import main

    job = tmp_path / "job.toml"
    job.write_text('name = "draft"\nmodels = ["Qwen/Qwen3-32B"]\ngpus = ["H100"]\nformats = ["parquet", "csv", "html"]\n'
                   '[matrix]\ntp = [2]\nmax_model_len = [32768]\n'
                   'speculative_config = { model = "Qwen/Qwen3-0.6B", num_speculative_tokens = 4 }\n')
    snap = tmp_path / "snap"
    assert main(["snapshot", str(job), "--out", str(snap), "--offline", "-q"]) == 0
    assert "Qwen/Qwen3-0.6B" in (snap / "manifest.json").read_text()     # the draft's config is frozen too
    out = tmp_path / "run"
    assert main(["run", str(job), "--snapshot", str(snap), "--out", str(out), "-q"]) == 0
    row = pl.read_parquet(out / "results.parquet").row(0, named=True)
    assert row["kv_bytes_per_token"] == 188416 and row["speculative"].startswith("draft_model k=4")
    assert (out / "results.csv").read_text().splitlines()[0].endswith(",speculative,draft_weights_gib")
    assert "speculative decoding" in (out / "report.html").read_text()     # the report's assumptions say so


def test_glm45_air_mtp_follows_glm4_moe_mtp():
    air = spec("zai-org/GLM-4.5-Air")        # 46 GQA layers (8 KV heads, head 128), one MTP layer
    h, v = air.hidden_size, air.vocab_size
    assert sum(t.params for t in air.mtp_tensors) == air.mtp_params - 2 * v * h
    base = estimate_one(air, 79.19, tp=4, max_model_len=32768)
    mtp = estimate_one(air, 79.19, tp=4, max_model_len=32768, speculative_config=MTP1)
    per_layer = 2 * 128 * 2 * 2                # 8 KV heads / 4 ranks, head 128, K and V, bf16
    assert base["kv_bytes_per_token"] == air.num_layers * per_layer
    assert mtp["kv_bytes_per_token"] == (air.num_layers + 1) * per_layer
    assert mtp["weights_gib"] - base["weights_gib"] == pytest.approx(mtp["draft_weights_gib"], rel=1e-9)
