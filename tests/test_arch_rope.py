"""vLLM's derived maximum model length and its rotary cos/sin caches (reportgen/arch/rope.py).

Every expected value below is worked out by hand from vLLM v0.19's code:

* limit: ``_get_and_verify_max_len`` (vllm/config/model.py) over ``hf_text_config`` with
  ``derive_max_model_len_and_key`` (smallest of max_position_embeddings, n_positions, ...,
  then a truthy ``model_max_length`` replaces it) and the rope rule (skipped when the text
  model_type contains "gemma3"; types su / longrope / llama3 add no factor; any other type
  multiplies by ``factor``, yarn first resetting the length to
  ``original_max_position_embeddings``); a user value above it -- and above model_max_length --
  raises unless VLLM_ALLOW_LONG_MAX_MODEL_LEN.
* caches: ``get_rope`` (memoised: one module per distinct parameters) and each class's
  ``_compute_cos_sin_cache``: rows x rotary_dim in the model dtype -- RotaryEmbedding /
  Llama3 max_position; LinearScaling max_position x factor; YaRN / DeepseekScaling
  ceil(original x factor); Phi3LongRoPE original + max_position; gpt-oss asks for float32.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.fields import Fields
from reportgen.arch.rope import cache_rows, derived_max_model_len
from reportgen.estimate.layout import Layout
from reportgen.estimate.quant import checkpoint_scheme
from reportgen.estimate.weights import build_weight_table, rotary_cache_bytes, stage_weights
from reportgen.job import Matrix
from reportgen.matrix import GpuLike, ModelEntry, estimate_one, evaluate_matrix

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
MIB = 1 << 20


def _raw(name: str) -> dict:
    return json.loads((BUNDLED / f"{name}.json").read_text())


def _spec(name: str, **changes):
    raw = _raw(name)
    raw.update(changes)
    return build_spec(raw)


# ---------------------------------------------------------------- derived maximum, bundled configs

def test_gemma2_9b_limit_is_its_max_position_embeddings():
    """gemma-2-9b: max_position_embeddings 8192, default rope (no factor) -> 8192."""
    assert _spec("google--gemma-2-9b").max_model_len_limit == 8192


def test_mistral_7b_v03_limit():
    """Mistral-7B-Instruct-v0.3: max_position_embeddings 32768, no rope_scaling -> 32768."""
    assert _spec("mistralai--Mistral-7B-Instruct-v0.3").max_model_len_limit == 32768


@pytest.mark.parametrize("name", ["meta-llama--Llama-3.1-8B-Instruct", "meta-llama--Llama-3.2-1B-Instruct",
                                  "meta-llama--Meta-Llama-3.1-70B"])
def test_llama3_rope_adds_no_factor(name):
    """Llama-3.1 / 3.2: rope_type llama3 (factor 8 / 32) is in vLLM's (su, longrope, llama3) skip list:
    the limit stays max_position_embeddings 131072, not 131072 x factor."""
    assert _spec(name).max_model_len_limit == 131072


def test_llama4_scout_limit():
    """Llama-4-Scout text_config: max_position_embeddings 10485760, llama3 rope (skipped) -> 10485760."""
    assert _spec("meta-llama--Llama-4-Scout-17B-16E-Instruct").max_model_len_limit == 10485760


def test_phi3_longrope_adds_no_factor():
    """Phi-3-mini-128k: rope_scaling type longrope (vLLM maps legacy su to it) is skipped -> 131072."""
    assert _spec("microsoft--Phi-3-mini-128k-instruct").max_model_len_limit == 131072


def test_gemma3_scaling_is_not_applied_twice():
    """gemma-3-12b-it: text model_type gemma3_text contains "gemma3", so vLLM skips the rope rule
    (its full-attention layers' linear factor 8 is already in max_position_embeddings) -> 131072."""
    assert _spec("google--gemma-3-12b-it").max_model_len_limit == 131072


@pytest.mark.parametrize("name,limit", [("Qwen--Qwen2.5-7B-Instruct", 32768), ("Qwen--Qwen2.5-7B", 131072),
                                        ("Qwen--Qwen3-8B", 40960), ("microsoft--phi-4", 16384),
                                        ("microsoft--phi-2", 2048), ("zai-org--GLM-4.5-Air", 131072)])
def test_unscaled_limits(name, limit):
    """No rope factor (default type): the limit is max_position_embeddings itself."""
    assert _spec(name).max_model_len_limit == limit


@pytest.mark.parametrize("name", ["deepseek-ai--DeepSeek-V3", "deepseek-ai--DeepSeek-V2-Lite"])
def test_deepseek_yarn_limit(name):
    """DeepSeek-V3 / V2-Lite: yarn, original_max_position_embeddings 4096, factor 40 -> the length is
    reset to 4096 then multiplied: 4096 x 40 = 163840 (= max_position_embeddings)."""
    assert _spec(name).max_model_len_limit == 163840


def test_gpt_oss_yarn_limit():
    """gpt-oss-20b: yarn, original 4096 x factor 32 = 131072."""
    assert _spec("openai--gpt-oss-20b").max_model_len_limit == 131072


# ---------------------------------------------------------------- derived maximum, edited configs

def test_qwen25_with_yarn_rope_scaling():
    """Qwen2.5-7B-Instruct with the model card's yarn block (factor 4, original 32768):
    32768 x 4 = 131072 -- the long-context setting vLLM then accepts."""
    s = _spec("Qwen--Qwen2.5-7B-Instruct",
              rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768})
    assert s.max_model_len_limit == 131072


def test_yarn_without_original_uses_max_position_embeddings():
    """yarn without original_max_position_embeddings: transformers 5 fills it with
    max_position_embeddings (32768) when standardising, so 32768 x 2 = 65536."""
    s = _spec("Qwen--Qwen2.5-7B-Instruct", rope_scaling={"type": "yarn", "factor": 2.0})
    assert s.max_model_len_limit == 65536


@pytest.mark.parametrize("kind", ["linear", "dynamic"])
def test_linear_and_dynamic_multiply(kind):
    """linear / dynamic are not in the skip list: 4096 x 2.5 = 10240."""
    s = _spec("codellama--CodeLlama-7b-hf", max_position_embeddings=4096,
              rope_scaling={"type": kind, "factor": 2.5})
    assert s.max_model_len_limit == 10240


def test_fractional_product_is_floored():
    """vLLM compares ``max_model_len > derived`` with a float derived: 4097 x 2.5 = 10242.5 accepts
    10242, refuses 10243 -> limit 10242."""
    s = _spec("codellama--CodeLlama-7b-hf", max_position_embeddings=4097,
              rope_scaling={"type": "linear", "factor": 2.5})
    assert s.max_model_len_limit == 10242


def test_model_max_length_replaces_and_allows():
    """A truthy model_max_length replaces the minimum (Command-R rule), larger or smaller."""
    assert _spec("codellama--CodeLlama-7b-hf", model_max_length=65536).max_model_len_limit == 65536
    assert _spec("codellama--CodeLlama-7b-hf", model_max_length=2048).max_model_len_limit == 2048


def test_smallest_length_key_wins():
    """Several length keys: the smallest (here seq_length 4096 < max_position_embeddings 16384)."""
    assert _spec("codellama--CodeLlama-7b-hf", seq_length=4096).max_model_len_limit == 4096


def test_rope_parameters_in_transformers5_form():
    """transformers 5 configs carry rope_parameters (not rope_scaling): same rule."""
    s = _spec("codellama--CodeLlama-7b-hf", max_position_embeddings=4096,
              rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 1e6})
    assert s.max_model_len_limit == 16384


def test_no_length_key_means_no_limit():
    """None of the keys set: vLLM takes any user value unchecked (it only defaults to 2048)."""
    f = Fields(None, {"model_type": "x"})
    assert derived_max_model_len(f) is None


# ---------------------------------------------------------------- rotary caches

def test_gemma3_two_caches_576_mib():
    """gemma-3-12b: sliding layers default rope (local base 10000) -> 131072 x 256; full layers
    linear x8 -> 131072 x 8 x 256; two distinct get_rope modules, bf16: 64 + 512 = 576 MiB."""
    s = _spec("google--gemma-3-12b-it")
    assert sorted(s.rope_caches) == [(131072, 256, 0), (1048576, 256, 0)]
    assert rotary_cache_bytes(s, 2) == 576 * MIB


def test_gemma2_one_cache():
    """gemma-2-9b: one default rope shared by all layers: 8192 x 256 x 2 B = 4 MiB."""
    s = _spec("google--gemma-2-9b")
    assert s.rope_caches == ((8192, 256, 0),)
    assert rotary_cache_bytes(s, 2) == 4 * MIB


def test_llama31_cache():
    """Llama3RotaryEmbedding keeps max_position rows: 131072 x 128 x 2 B = 32 MiB."""
    s = _spec("meta-llama--Llama-3.1-8B-Instruct")
    assert s.rope_caches == ((131072, 128, 0),)
    assert rotary_cache_bytes(s, 2) == 32 * MIB


def test_deepseek_cache_is_rope_head_dim_wide():
    """DeepSeek-V3: MLA maps yarn to deepseek_yarn: ceil(4096 x 40) = 163840 rows x qk_rope_head_dim 64."""
    assert _spec("deepseek-ai--DeepSeek-V3").rope_caches == ((163840, 64, 0),)


def test_gpt_oss_cache_is_float32():
    """gpt-oss: get_rope(..., dtype=torch.float32), yarn ceil(4096 x 32) = 131072 x 64 x 4 B = 32 MiB."""
    s = _spec("openai--gpt-oss-20b")
    assert s.rope_caches == ((131072, 64, 4),)
    assert rotary_cache_bytes(s, 2) == 32 * MIB


def test_phi3_longrope_short_plus_long():
    """Phi-3-mini-128k: Phi3LongRoPEScaledRotaryEmbedding concatenates the short (original 4096) and
    long (131072) caches: 135168 rows x head_dim 96."""
    assert _spec("microsoft--Phi-3-mini-128k-instruct").rope_caches == ((135168, 96, 0),)


@pytest.mark.parametrize("name,cache", [("zai-org--GLM-4.5-Air", (131072, 64, 0)),     # partial 0.5 of 128
                                        ("microsoft--phi-2", (2048, 32, 0)),            # partial 0.4 of 80
                                        ("meta-llama--Llama-4-Scout-17B-16E-Instruct", (10485760, 128, 0))])
def test_partial_rotary_and_llama4(name, cache):
    """rotary_dim = head_dim x partial_rotary_factor; Llama-4: llama3 rope over 10485760 positions."""
    assert _spec(name).rope_caches == (cache,)


def test_llama4_all_nope_has_no_cache():
    """Llama-4 builds no rotary module on NoPE layers; all NoPE -> no cache."""
    raw = _raw("meta-llama--Llama-4-Scout-17B-16E-Instruct")
    raw["text_config"]["no_rope_layers"] = [0] * raw["text_config"]["num_hidden_layers"]
    s = build_spec(raw)
    assert s.rope_caches == () and rotary_cache_bytes(s, 2) == 0   # not the hand-built-spec fallback


def test_cache_rows_per_type():
    """The table of the module docstring."""
    assert cache_rows({"rope_type": "default"}, 4096) == 4096
    assert cache_rows({"rope_type": "llama3", "factor": 8.0}, 4096) == 4096
    assert cache_rows({"rope_type": "linear", "factor": 2.5}, 4097) == 10243        # arange(10242.5)
    assert cache_rows({"rope_type": "dynamic", "factor": 2.0}, 4096) == 8192
    assert cache_rows({"rope_type": "dynamic", "alpha": 2.0}, 4096) == 4096
    assert cache_rows({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
                      32768) == 131072
    assert cache_rows({"rope_type": "longrope", "original_max_position_embeddings": 4096}, 131072) == 135168


def test_mrope_cache_is_four_times_longer():
    """MRotaryEmbedding (get_rope's default / yarn branch when the parameters carry mrope_section) builds its
    cache over max_position x 4: vLLM rotary_embedding/mrope.py ``self.cache_max_position_num =
    max_position_embeddings * 4`` @055e47c2 (yarn: its original_max_position_embeddings x 4, then YaRN's
    ``arange(max_position_embeddings * scaling_factor)``)."""
    sec = [16, 24, 24]
    assert cache_rows({"rope_type": "default", "mrope_section": sec}, 128000) == 512000
    assert cache_rows({"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 262144,
                       "mrope_section": [11, 11, 10]}, 262144) == 2097152               # 262144 x 4 x 2
    assert cache_rows({"rope_type": "linear", "factor": 2.0, "mrope_section": sec}, 4096) == 8192   # not mrope
    assert cache_rows({"rope_type": "default", "mrope_section": []}, 4096) == 4096   # empty: plain RotaryEmbedding


def test_qwen25_vl_7b_weights_by_hand():
    """Row N03F (tests/data/vllm_logs_2026.csv, vLLM 0.23.0): Qwen2.5-VL-7B-Instruct, bf16, untied.
    Parameters 8,292,166,656 (text 7,615,616,512 incl. the 544,997,376 lm_head + ViT 631,975,680 + merger
    44,574,464) x 2 B = 16,584,333,312 B (the log's 'Checkpoint size: 15.45 GiB'); the language model's one
    MRotaryEmbedding: rope_scaling {type: mrope, mrope_section: [16, 24, 24]} -> max_position_embeddings
    128,000 x 4 = 512,000 rows x head_dim 128 x bf16 = 131,072,000 B (was priced at 128,000 rows, 32,768,000 B);
    the ViT's Qwen2_5_VisionRotaryEmbedding is a 20-float inv_freq (not counted).  Total 16,715,405,312 B =
    15.567 GiB against the logged 'Model loading took 15.67 GiB'."""
    path = Path(__file__).resolve().parent / "data" / "configs_2026" / "Qwen--Qwen2.5-VL-7B-Instruct.json"
    s = build_spec(json.loads(path.read_text()))
    assert s.rope_caches == ((512000, 128, 0),)
    assert rotary_cache_bytes(s, 2) == 131_072_000
    wt = build_weight_table(s, checkpoint_scheme(s), 2)
    assert wt.buffer_bytes == 131_072_000
    assert stage_weights(wt, Layout())[0].bytes == 8_292_166_656 * 2 + 131_072_000 == 16_715_405_312


def test_qwen35_mrope_cache():
    """Qwen3.5-35B-A3B: mrope_section [11, 11, 10] interleaved, partial_rotary_factor 0.25 of head_dim 256 ->
    rotary 64; max_position_embeddings 262,144 x 4 = 1,048,576 rows x 64 x bf16 = 128 MiB."""
    s = _spec("Qwen--Qwen3.5-35B-A3B")
    assert s.rope_caches == ((1048576, 64, 0),)
    assert rotary_cache_bytes(s, 2) == 128 * MIB


def test_gemma3_weights_include_the_caches():
    """The weight table's per-stage buffer is the 576 MiB of gemma-3's two caches."""
    s = _spec("google--gemma-3-12b-it")
    wt = build_weight_table(s, checkpoint_scheme(s), 2)
    assert wt.buffer_bytes == 576 * MIB
    no_rope = build_spec(_raw("google--gemma-3-12b-it"))
    no_rope.rope_caches = ((1, 1, 0),)
    assert (stage_weights(wt, Layout())[0].bytes
            - stage_weights(build_weight_table(no_rope, checkpoint_scheme(no_rope), 2), Layout())[0].bytes
            == 576 * MIB - 2)


# ---------------------------------------------------------------- the matrix rule

H100 = GpuLike(id="h100", name="H100", usable_memory_gib=79.19)


def test_estimate_one_refuses_above_the_limit(monkeypatch):
    monkeypatch.delenv("VLLM_ALLOW_LONG_MAX_MODEL_LEN", raising=False)
    s = _spec("google--gemma-2-9b")
    ok = estimate_one(s, H100, max_model_len=8192)
    assert ok["status"] in ("fits", "tight") and ok["max_model_len_fit"] <= 8192
    bad = estimate_one(s, H100, max_model_len=131072)
    assert bad["status"] == "invalid_layout"
    assert bad["reason"].startswith("max_model_len 131072 exceeds the model's maximum 8192 (vLLM refuses to start")


def test_allow_long_lifts_the_rule(monkeypatch):
    s = _spec("google--gemma-2-9b")
    r = estimate_one(s, H100, max_model_len=16384, allow_long_max_model_len=True)
    assert r["status"] != "invalid_layout" and r["max_model_len_fit"] > 8192
    monkeypatch.setenv("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "1")
    r = estimate_one(s, H100, max_model_len=16384)
    assert r["status"] != "invalid_layout" and r["max_model_len_fit"] > 8192


def test_matrix_marks_only_the_cells_above_each_models_limit(monkeypatch):
    monkeypatch.delenv("VLLM_ALLOW_LONG_MAX_MODEL_LEN", raising=False)
    models = [ModelEntry("gemma2", _spec("google--gemma-2-9b")),
              ModelEntry("mistral", _spec("mistralai--Mistral-7B-Instruct-v0.3"))]
    mx = Matrix(tp=[1, 2], pp=[1], dp=[1], ep=[False], weight_dtype=["checkpoint"], kv_cache_dtype=["auto"],
                max_model_len=[4096, 8192, 16384, 65536], concurrency=[1], gpu_memory_utilization=[0.9])
    df = evaluate_matrix(models, [H100], mx)
    for row in df.iter_rows(named=True):
        limit = 8192 if row["model"] == "gemma2" else 32768
        if row["max_model_len"] > limit:
            assert row["status"] == "invalid_layout", row
            assert f"exceeds the model's maximum {limit}" in row["reason"]
        else:
            assert row["status"] != "invalid_layout", row
        assert row["max_model_len_fit"] is None or row["max_model_len_fit"] <= limit


def test_layout_rule_wins_over_length_rule(monkeypatch):
    """A layout vLLM rejects for its own reason keeps that reason (heads % tp first)."""
    monkeypatch.delenv("VLLM_ALLOW_LONG_MAX_MODEL_LEN", raising=False)
    r = estimate_one(_spec("google--gemma-2-9b"), H100, tp=3, max_model_len=131072)
    assert r["status"] == "invalid_layout" and "% tp" in r["reason"]
