"""Issue 12's "Done when" lines that had no test of their own (stop 23 audit, docs/decisions.md):

* README's generated supported-architecture table names, for each model_type, the vLLM model file it follows
  (``registry.VLLM_FILES``, rendered by scripts/readme_tables.py; tests/test_readme.py keeps README current).
* the issue's families still refused say why (kimi_k3: the pinned transformers has no class to count with).
* a checkpoint whose ``quantization_config.kv_cache_scheme`` turns ``--kv-cache-dtype auto`` into an fp8 cache says
  so in ``estimate --json`` and in a run's Parquet, CSV and HTML report.  nvidia/Gemma-4-31B-IT-NVFP4's real
  config.json (tests/data/configs_2026/SOURCES.md): ModelOpt producer, ``kv_cache_scheme`` 8-bit float, so vLLM
  (>= PR #30785, reportgen/estimate/quant/kv.py) allocates fp8_e4m3.  KV per token, by hand from vLLM's
  ``AttentionSpec.real_page_size_bytes`` (2 x block x heads x head_size x dtype bytes, per block of 16): 50
  sliding layers x 2 x 16 heads x 256 + 10 full layers x 2 x 4 heads x 512, at 1 byte = 450,560 B (bf16: 901,120,
  tests/test_arch_flagships_gqa.py::test_gemma4_global_kv_heads_per_layer).
* per-token KV bytes in fp8 as well as bf16 for the two cache kinds the audit found pinned in bf16 only: Kimi-K2.5's
  MLA latent and MiniMax-M1's softmax layers beside its lightning state.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from reportgen.arch import build_spec
from reportgen.arch.registry import ADAPTERS, UNSUPPORTED, VLLM_FILES, WEIGHTS_ONLY

ROOT = Path(__file__).resolve().parents[1]
G31 = ROOT / "tests" / "data" / "configs_2026" / "nvidia--Gemma-4-31B-IT-NVFP4.json"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}

# issue 12's families -> the vLLM file their family module was written from (vllm/model_executor/models/ unless
# a path is given); minimax_m3 is parsed as transformers' minimax_m3_vl_text (parse.ARCHITECTURE_FALLBACK)
ISSUE12 = {
    "deepseek_v32": "deepseek_v2.py", "glm_moe_dsa": "deepseek_v2.py", "deepseek_v4": "deepseek_v4.py",
    "kimi_k25": "kimi_k25.py", "minimax_m2": "minimax_m2.py", "minimax_m3_vl_text": "vllm/models/minimax_m3/nvidia/model.py",
    "minimax_m3_vl": "vllm/models/minimax_m3/nvidia/model.py + common/vision_tower.py",
    "minimax": "minimax_text_01.py", "gemma4": "gemma4_mm.py", "gemma4_text": "gemma4.py",
    "glm4_moe_lite": "glm4_moe_lite.py", "step3p7": "step3p7.py", "mimo_v2_flash": "mimo_v2.py",
    "mistral3": "mistral3.py", "ministral3": "mistral.py", "mistral4": "mistral_large_3.py (Mistral-format path)",
    "smollm3": "transformers/ (Transformers backend)", "cohere": "commandr.py", "cohere2": "commandr.py",
    "cohere2_moe": "cohere2_moe.py", "ernie4_5": "ernie45.py", "ernie4_5_moe": "ernie45_moe.py",
    "hunyuan_v1_dense": "hunyuan_v1.py", "hunyuan_v1_moe": "hunyuan_v1.py", "exaone": "exaone.py",
    "exaone_moe": "exaone_moe.py", "dots1": "dots1.py", "longcat_flash": "longcat_flash.py", "apertus": "apertus.py",
    "seed_oss": "seed_oss.py", "glm4": "glm4.py",
}


def test_every_supported_model_type_names_its_vllm_file():
    assert set(VLLM_FILES) == set(ADAPTERS)
    assert {t: VLLM_FILES[t] for t in ISSUE12} == ISSUE12


def test_readme_table_lists_each_family_with_its_vllm_file():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("<!-- families:start -->"):readme.index("<!-- families:end -->")]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and cells[1].startswith("`"):
            for t in cells[0].split(", "):
                rows[t.strip("`")] = cells[1].strip("`")
    assert rows == {t: f for t, f in VLLM_FILES.items() if t not in WEIGHTS_ONLY}
    assert "| `mistral_large4` |" in table and "| `kimi_k3` |" in table


@pytest.mark.parametrize("model_type, words", [
    ("kimi_k3", ("transformers 5.25.0", "no kimi_k3 config or model class")),
    ("mistral_large4", ("no vLLM model serves it", "MistralLarge3ForCausalLM")),
])
def test_issue12_families_left_refused_say_why(model_type, words):
    import transformers

    reason = build_spec({"model_type": model_type}).unsupported_reason
    assert reason == UNSUPPORTED[model_type] and all(w in reason for w in words)
    if model_type == "kimi_k3":       # the reason is a fact of the pinned transformers
        assert transformers.__version__ == "5.25.0" and "kimi_k3" not in transformers.CONFIG_MAPPING


def test_kv_cache_scheme_auto_is_fp8_in_estimate_json():
    r = subprocess.run([sys.executable, "-m", "reportgen", "estimate", str(G31), "--gpu", "H200", "--tp", "2",
                        "--json", "--offline", "-q"], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert (out["kv_cache_dtype"], out["kv_cache_dtype_used"]) == ("auto", "fp8_e4m3")
    assert out["kv_bytes_per_token"] == 50 * 2 * 16 * 256 + 10 * 2 * 4 * 512 == 450_560
    assert out["kv_bytes_per_token_rank"] == 450_560 / 2


def test_kv_cache_scheme_auto_is_fp8_in_parquet_csv_and_report(tmp_path):
    model = tmp_path / "gemma-4-31b-nvfp4"
    model.mkdir()
    shutil.copy(G31, model / "config.json")
    job = tmp_path / "job.toml"
    job.write_text(f'name = "kvscheme"\nmodels = ["{model}"]\ngpus = ["H200"]\nformats = ["parquet", "csv", "html"]\n'
                   "[matrix]\ntp = [1, 2]\npp = [1]\nweights_as = [\"checkpoint\"]\nmax_model_len = [32768]\n"
                   "concurrency = [1]\n")
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "reportgen", "run", str(job), "--out", str(out), "-q"],
                       capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = pl.read_parquet(out / "results.parquet").sort("tp")
    assert res["kv_cache_dtype"].to_list() == ["auto", "auto"]
    assert res["kv_cache_dtype_used"].to_list() == ["fp8_e4m3", "fp8_e4m3"]
    assert res["kv_bytes_per_token"].to_list() == [450_560.0, 225_280.0]
    rows = sorted(csv.DictReader((out / "results.csv").open()), key=lambda row: int(row["tp"]))
    assert [(row["kv_cache_dtype"], row["kv_cache_dtype_used"], float(row["kv_bytes_per_token"])) for row in rows] \
        == [("auto", "fp8_e4m3", 450_560.0), ("auto", "fp8_e4m3", 225_280.0)]
    assert "<dt>KV cache costed as</dt><dd>auto → fp8_e4m3</dd>" in (out / "report.html").read_text()


def test_kimi_k25_mla_latent_bf16_and_fp8():
    """vLLM ``vllm/model_executor/layers/attention/mla_attention.py`` @0014ca6b, ``MLAAttention.__init__``:
    ``self.head_size = kv_lora_rank + qk_rope_head_dim``, ``self.num_kv_heads = 1``, the cache dtype is
    ``cache_config.cache_dtype`` (fp8 stays plain fp8 off the FLASHMLA_SPARSE backend: Kimi-K2.5's DeepSeek-V3
    text stack has no indexer).  61 layers x (512 + 64), 2 bytes or 1, on every TP rank (not split)."""
    from reportgen.estimate.kvcache import kv_bytes_per_token

    spec = build_spec(json.loads((ROOT / "tests/data/configs_2026/moonshotai--Kimi-K2.5.json").read_text()))
    assert kv_bytes_per_token(spec, "auto") == 61 * 576 * 2 == 70_272
    assert kv_bytes_per_token(spec, "fp8") == kv_bytes_per_token(spec, "fp8", 2, 8) == 61 * 576 == 35_136


@pytest.mark.parametrize("kv_dtype, elem, block", [("auto", 2, 512), ("fp8", 1, 1024)])
def test_minimax_m1_fp8_halves_the_softmax_kv_not_the_lightning_state(kv_dtype, elem, block):
    """MiniMax-Text-01 / M1 at TP 8 (tests/test_arch_minimax.py's TEXT01): the 10 softmax layers cache K and V
    (1 KV head x 128 a rank) in the KV dtype; the 70 lightning layers' state (8 heads x 128 x 128 a rank) is in
    ``mamba_cache_dtype`` (auto: the model dtype, families/minimax.py), whatever ``--kv-cache-dtype`` says.
    vLLM ``HybridAttentionMambaModelConfig.verify_and_update_config`` (reportgen/estimate/hybrid.py) sizes the
    attention page per token in the KV dtype and raises the block size until it covers the state page:
    16 x cdiv(262,144 state bytes, 16 x 2 x 128 x elem per layer and token) -> 512 tokens in bf16, 1,024 in fp8."""
    from test_arch_minimax import TEXT01

    from reportgen.estimate.kvcache import kv_bytes_per_token, kv_groups

    spec = build_spec(TEXT01)
    attn = 10 * 1 * 2 * 128 * elem
    assert kv_bytes_per_token(spec, kv_dtype, 2, 8) == attn
    g = kv_groups(spec, 8, 1, kv_dtype, elem, 16, state_conv_bytes=2, state_mode="none")
    assert g.stage_token_bytes == (attn,) and g.token_block == block
    assert g.stage_bytes_per_block == (10 * 8 * 128 * 128 * 2,) == (2_621_440,)   # one padded state page x 10
