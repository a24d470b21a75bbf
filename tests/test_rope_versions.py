"""RoPE rules that changed between vLLM releases, priced per the job's ``vllm_version`` (arch/rope.py "Per
release"; ModelSpec.from_release resolved by estimate/served.py ``release_values`` / ``spec_for_version``).

Read in the release sdists (/work/vllm_src/vllm-X.Y.Z):

* derived maximum (``vllm/config/model.py`` ``_get_and_verify_max_len``): 0.29.0 lines 2452-2458 apply ``factor``
  for every type but su / longrope / llama3 and reset a yarn length to ``original_max_position_embeddings``;
  0.30.0 lines 2468-2481 add yarn / deepseek_yarn / deepseek_llama_scaling to the excluded types (no reset),
  and lines 2451-2457 drop layer types whose parameters are None;
* ``DynamicNTKScalingRotaryEmbedding._compute_cos_sin_cache``: 0.21.0 ``dynamic_ntk_scaling_rope.py`` lines
  56 / 62 ``arange(max_position_embeddings * scaling_factor)``, 0.22.0 line 67 ``arange(max_position_embeddings)``;
* ``MRotaryEmbedding``: 0.31.0 ``mrope.py`` line 349 ``max_position_embeddings * 4``, 0.32.0 line 351
  ``* positions_factor``, which Qwen3-VL / Qwen3.5 layers set to 1 without video pruning (0.32.0
  ``models/qwen3_vl.py`` lines 1818-1831, ``qwen3_5.py`` line 165).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.fields import Fields
from reportgen.arch.rope import cache_rows, derived_max_model_len, rope_parameters
from reportgen.cli import main
from reportgen.estimate.served import release_values, spec_for_version
from reportgen.estimate.weights import rotary_cache_bytes
from reportgen.job import Matrix
from reportgen.matrix import GpuLike, ModelEntry, estimate_one, evaluate_matrix

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
CONFIGS_2026 = ROOT / "tests" / "data" / "configs_2026"
MIB = 1 << 20
H100 = GpuLike(id="h100", name="H100", usable_memory_gib=79.19)
# the Qwen3 model card's long-context block: YaRN factor 4 over the 32,768 it was trained at, on a config whose
# max_position_embeddings is 40,960
QWEN3_YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}


def _raw(path: Path, **changes) -> dict:
    raw = json.loads(path.read_text())
    raw.update(changes)
    return raw


def _qwen3_yarn():
    return build_spec(_raw(BUNDLED / "Qwen--Qwen3-8B.json", rope_scaling=QWEN3_YARN))


# ---------------------------------------------------------------- derived maximum: yarn, 0.29 vs 0.30

def test_yarn_limit_per_release():
    """Up to 0.29: 32,768 x 4 = 131,072; from 0.30 the config's 40,960 stands (no factor, no reset)."""
    s = _qwen3_yarn()
    assert s.max_position_embeddings == 40960
    assert [release_values(s, v).max_model_len_limit for v in ("0.10", "0.29", "0.30", "0.31", "0.34")] == \
        [131072, 131072, 40960, 40960, 40960]
    assert s.from_release == (((0, 30), "max_model_len_limit", 40960),)


def test_estimate_one_refuses_the_yarn_length_from_030(monkeypatch):
    """The public path: 131,072 starts on 0.29 (vLLM accepts it) and is invalid_layout on 0.30 / 0.31 (the default
    profile) with vLLM's maximum in the reason; the fit search stops at each release's maximum."""
    monkeypatch.delenv("VLLM_ALLOW_LONG_MAX_MODEL_LEN", raising=False)
    s = _qwen3_yarn()
    old = estimate_one(s, H100, max_model_len=131072, vllm_version="0.29")
    assert old["status"] == "fits" and old["max_model_len_fit"] == 131072
    for v in ("0.30", "0.31", None):            # None: DEFAULT_VLLM_VERSION (0.31)
        new = estimate_one(s, H100, max_model_len=131072, vllm_version=v)
        assert new["status"] == "invalid_layout", v
        assert new["reason"].startswith("max_model_len 131072 exceeds the model's maximum 40960 (vLLM refuses")
        assert new["max_model_len_fit"] == 40960
    # VLLM_ALLOW_LONG_MAX_MODEL_LEN lifts the 0.31 rule as vLLM does
    assert estimate_one(s, H100, max_model_len=131072, allow_long_max_model_len=True)["status"] == "fits"


def test_matrix_marks_the_cells_above_each_releases_maximum(monkeypatch):
    monkeypatch.delenv("VLLM_ALLOW_LONG_MAX_MODEL_LEN", raising=False)
    lens = [32768, 40960, 65536, 131072]
    got = {}
    for v in ("0.29", "0.31"):
        mx = Matrix(tp=[1], pp=[1], dp=[1], ep=[False], weight_dtype=["checkpoint"], kv_cache_dtype=["auto"],
                    max_model_len=lens, concurrency=[1], gpu_memory_utilization=[0.9], vllm_version=v)
        df = evaluate_matrix([ModelEntry("qwen3-yarn", _qwen3_yarn())], [H100], mx)
        got[v] = {r["max_model_len"]: r["status"] for r in df.iter_rows(named=True)}
    assert got["0.29"] == dict.fromkeys(lens, "fits")
    assert got["0.31"] == {32768: "fits", 40960: "fits", 65536: "invalid_layout", 131072: "invalid_layout"}


def _cli(*args) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["estimate", "--gpu", "H100", "--json", "--offline", *args])
    assert rc == 0
    return json.loads(out.getvalue())


def test_cli_default_length_is_the_releases_maximum(tmp_path):
    """``reportgen estimate --from-vllm-args`` without --max-model-len takes vLLM's default, the derived maximum of
    the release (estimate_cmd.py), and agrees with the matrix's length rule: 131,072 on 0.29, 40,960 on 0.31."""
    (tmp_path / "config.json").write_text(json.dumps(_raw(BUNDLED / "Qwen--Qwen3-8B.json", rope_scaling=QWEN3_YARN)))
    for v, length in (("0.29", 131072), ("0.31", 40960)):
        d = _cli("--vllm-version", v, "--from-vllm-args", f"vllm serve {tmp_path}")
        assert (d["status"], d["max_model_len"], d["max_model_len_fit"]) == ("fits", length, length), v


@pytest.mark.parametrize("name, limit", [("deepseek-ai--DeepSeek-V3", 163840), ("openai--gpt-oss-20b", 131072)])
def test_yarn_configs_stated_at_original_x_factor_do_not_move(name, limit):
    """DeepSeek-V3 (4,096 x 40 = max_position_embeddings 163,840), gpt-oss (4,096 x 32 = 131,072): both rules give
    the same maximum, so nothing is listed per release."""
    s = build_spec(_raw(BUNDLED / f"{name}.json"))
    assert s.from_release == ()
    assert {spec_for_version(s, v).max_model_len_limit for v in ("0.10", "0.29", "0.30", "0.34")} == {limit}


def test_dynamic_and_linear_keep_their_factor_in_every_release():
    """0.30 excludes only the yarn variants: linear / dynamic still scale the length."""
    for kind in ("linear", "dynamic"):
        f = Fields(None, {"model_type": "llama", "max_position_embeddings": 4096,
                          "rope_scaling": {"rope_type": kind, "factor": 2.5}})
        assert derived_max_model_len(f, (0, 29)) == derived_max_model_len(f, (0, 34)) == 10240


def test_layer_types_without_rope_are_dropped():
    """A nested rope_parameters with a None layer type (0.30.0 lines 2451-2457 drop it): the other type's
    parameters decide -- here linear x2 over 8,192 = 16,384 -- instead of the whole dict being read as one
    flat, factor-less set (8,192)."""
    rp = {"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e6}, "sliding_attention": None}
    f = Fields(None, {"model_type": "llama", "max_position_embeddings": 8192, "rope_parameters": rp})
    assert rope_parameters(f) == {"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e6}}
    assert derived_max_model_len(f, (0, 30)) == 16384


# ---------------------------------------------------------------- rotary caches: dynamic 0.21 vs 0.22

def test_dynamic_cache_rows_per_release():
    rp = {"rope_type": "dynamic", "factor": 2.0}
    assert cache_rows(rp, 4096) == cache_rows(rp, 4096, (0, 21)) == 8192
    assert cache_rows(rp, 4096, (0, 22)) == cache_rows(rp, 4096, (0, 34)) == 4096
    assert cache_rows({"rope_type": "dynamic", "alpha": 2.0}, 4096, (0, 21)) == 4096      # the alpha class: never x


def test_dynamic_rotary_bytes_through_estimate_one():
    """CodeLlama-7b (max_position_embeddings 16,384, head_dim 128, bf16) with dynamic x2: the cache is 32,768 x 128
    x 2 B = 8 MiB on 0.21 and 16,384 x 128 x 2 B = 4 MiB on 0.22; the weights of one rank differ by exactly those
    4 MiB (0.21 and 0.22 share a profile, nothing else moves) and the KV cache gets them back."""
    s = build_spec(_raw(BUNDLED / "codellama--CodeLlama-7b-hf.json", rope_scaling={"type": "dynamic", "factor": 2.0}))
    assert rotary_cache_bytes(spec_for_version(s, "0.21"), 2) == 8 * MIB
    assert rotary_cache_bytes(spec_for_version(s, "0.22"), 2) == 4 * MIB
    assert s.max_model_len_limit == spec_for_version(s, "0.34").max_model_len_limit == 32768
    old, new = (estimate_one(s, H100, max_model_len=8192, vllm_version=v) for v in ("0.21", "0.22"))
    assert (old["weights_gib"] - new["weights_gib"]) * 2**30 == pytest.approx(4 * MIB, abs=1)
    assert (new["kv_cache_gib"] - old["kv_cache_gib"]) * 2**30 == pytest.approx(4 * MIB, abs=1)
    assert (old["kv_cache_tokens"], new["kv_cache_tokens"]) == (119728, 119744)


# ---------------------------------------------------------------- rotary caches: Qwen3.5 MRoPE 0.31 vs 0.32

def test_qwen35_mrope_cache_per_release():
    """Qwen3.5-35B-A3B: 262,144 positions x 64 rotary dims x bf16 -- x 4 (128 MiB) up to 0.31, x 1 (32 MiB) from
    0.32; through estimate_one at TP 2 (the cache is whole on each rank) the weights drop by the 96 MiB."""
    s = build_spec(_raw(BUNDLED / "Qwen--Qwen3.5-35B-A3B.json"))
    assert rotary_cache_bytes(spec_for_version(s, "0.31"), 2) == 128 * MIB
    assert rotary_cache_bytes(spec_for_version(s, "0.32"), 2) == 32 * MIB
    old, new = (estimate_one(s, H100, tp=2, max_model_len=8192, vllm_version=v) for v in ("0.31", "0.32"))
    assert (old["weights_gib"] - new["weights_gib"]) * 2**30 == pytest.approx(96 * MIB, abs=1)


def test_qwen25_vl_keeps_four_times_on_032():
    """Qwen2.5-VL's layers keep MRotaryEmbedding's default positions_factor 4 (only the Qwen3-VL / Qwen3.5 layers
    pass 1): 128,000 x 4 = 512,000 rows in every release."""
    s = build_spec(_raw(CONFIGS_2026 / "Qwen--Qwen2.5-VL-7B-Instruct.json"))
    assert s.from_release == ()
    assert spec_for_version(s, "0.34").rope_caches == ((512000, 128, 0),)


# ---------------------------------------------------------------- vLLM's default length: longrope, 0.11.1 on

def test_longrope_default_length_from_011():
    """Phi-3-mini-128k (longrope, top-level original_max_position_embeddings 4,096): the limit stays 131,072 in every
    release (longrope adds no factor), but a command without --max-model-len runs at 4,096 from 0.11.1 (0.11.1 sdist
    vllm/config/model.py lines 2112-2119; 0.10.x took the derived maximum) -- the CLI prices that length."""
    s = build_spec(_raw(BUNDLED / "microsoft--Phi-3-mini-128k-instruct.json"))
    assert {release_values(s, v).max_model_len_limit for v in ("0.10", "0.11", "0.31")} == {131072}
    assert [release_values(s, v).max_model_len_default for v in ("0.10", "0.11", "0.31")] == [None, 4096, 4096]
    cmd = "vllm serve microsoft/Phi-3-mini-128k-instruct"
    assert _cli("--vllm-version", "0.10", "--from-vllm-args", cmd)["max_model_len"] == 131072
    d = _cli("--vllm-version", "0.31", "--from-vllm-args", cmd)
    assert (d["status"], d["max_model_len"]) == ("fits", 4096)
