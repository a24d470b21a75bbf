"""Version boundaries audited against the vLLM release sdists (issue 10, branch versionaudit).

Every ``*_FROM`` / ``*_SINCE`` constant and every profile's first release was checked against the unpacked release
sources (vllm-0.10.0 .. vllm-0.34.0; 0.15.0 is absent, 0.15.1 stands for 0.15): the first release whose source has
the behaviour.  The sdists are not in the repository, so the evidence is quoted here ("vllm X.Y.Z sdist,
path:line") and the tests pin the constants and, where cheap, the behaviour on both sides of the boundary through
the public estimate path.  The table of every boundary, verdict and evidence is docs/decisions.md, "Version
boundaries audited against the release sdists".
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from reportgen.arch import build_spec
from reportgen.estimate import compressed as C
from reportgen.estimate import encoder as enc
from reportgen.estimate import hybrid
from reportgen.estimate import kvcache as kv
from reportgen.estimate import overheads as oh
from reportgen.estimate import tables as T
from reportgen.estimate.profiles import PROFILES, capture_sizes, profile_for, runs_mrv2
from reportgen.estimate.quant import layouts as L
from reportgen.matrix import estimate_one
from test_estimate_specs import dense_spec

ROOT = Path(__file__).resolve().parents[1]
GLM5 = json.loads((ROOT / "tests" / "data" / "configs_2026" / "zai-org--GLM-5.json").read_text())
H100, B200 = 79.19, 178.56


# ---- fixed by the audit --------------------------------------------------------------------------------------------

def test_per_group_concurrency_from_0_27():
    """vllm 0.26.0 sdist, v1/core/kv_cache_utils.py:937-955: ``get_max_concurrency_for_kv_cache_config`` still sums
    the groups' per-request bytes and divides once by group 0's page (the legacy DeepSeek-V4 figure); vllm 0.27.0
    sdist, kv_cache_utils.py:937-959: ``sum(cdiv(max_memory_usage_bytes, page_size_bytes))`` per group.  It was
    (0, 26) and compared with the profile's first release; now the job's version is compared (matrix.py), so 0.26
    logs the legacy figure and 0.27 / 0.28 (same profile) the per-group one -- test_compressed_kv.py's row-156 test
    runs the matrix on both sides (0.26: 5,593 blocks a request, 0.27: 5,786)."""
    assert C.PER_GROUP_CONCURRENCY_FROM == (0, 27)
    assert profile_for("0.26")[0] is profile_for("0.27")[0]      # inside one profile: why the version decides


def test_dsa_indexer_workspace_from_0_13():
    """vllm 0.12.0 sdist, model_executor/models/deepseek_v2.py:767-786: the profile run's fake indexer op allocates
    ``torch.empty([total_seq_lens, head_dim + 4])`` (a transient, no workspace); vllm 0.13.0 sdist,
    deepseek_v2.py:622-627: ``current_workspace_manager().get_simultaneous(((total_seq_lens, head_dim), fp8),
    ((total_seq_lens, 4), uint8))`` -- the kept reservation.  It was (0, 17) against the profile's first release
    (the 0.11 profile covers 0.11-0.16); now the job's version decides."""
    assert C.DSA_INDEXER_WORKSPACE_FROM == (0, 13)
    spec = build_spec(GLM5)
    g = kv.kv_groups(spec, 8, 1, "auto", 2, 16)
    p11 = profile_for("0.13")[0]
    assert p11.name == "0.11.1" and p11.first == (0, 11, 1)
    assert T.dsa_indexer_workspace(g, spec, p11, (0, 12)).dsa_ix == 0
    assert T.dsa_indexer_workspace(g, spec, p11, (0, 13)).dsa_ix == 128
    assert T.dsa_indexer_workspace(g, spec, p11, (0, 16)).dsa_ix == 128
    assert T.dsa_indexer_workspace(g, spec, p11).dsa_ix == 0          # no version: the profile's first release
    assert T.dsa_indexer_workspace(g, spec, SimpleNamespace(first=(0, 20))).dsa_ix == 128
    assert T.EngineOptions.from_matrix(SimpleNamespace(vllm_version="0.13.0+faa43dbf.nv26.01")).vllm_version == (0, 13, 0)


def test_nvfp4_moe_backend_flag_from_0_17():
    """``--moe-backend`` and ``map_nvfp4_backend`` first appear in the vllm 0.17.0 sdist (engine/arg_utils.py:1238;
    fused_moe/oracle/nvfp4.py:113-125, :196-199 ``runner_backend = config.moe_backend``); the 0.16.0 sdist has
    neither, so a 0.16 start cannot be refused for the flag (was (0, 16)).  MXFP4 stays (0, 19): vllm 0.19.0 sdist,
    fused_moe/oracle/mxfp4.py:262, the file's first release."""
    assert L.MOE_BACKEND_FLAG_FROM == {"nvfp4": (0, 17), "mxfp4": (0, 19)}
    # FlashInfer TRT-LLM runs on SM 10.x only: refused on an SM 12.0 card once the flag exists
    assert L.moe_backend_refusal("flashinfer_trtllm", "nvfp4", (12, 0), (0, 16)) is None
    assert "does not support" in L.moe_backend_refusal("flashinfer_trtllm", "nvfp4", (12, 0), (0, 17))
    assert L.moe_backend_refusal("triton", "mxfp4", (12, 0), (0, 18)) is None
    assert L.moe_backend_refusal("triton", "mxfp4", (12, 0), (0, 19)) is not None


@pytest.mark.parametrize("max_num_seqs, tokens, n", [
    (1024, 8192, 67), (256, 8192, 67), (128, 8192, 35), (64, 8192, 19), (1024, 64, 11)])
def test_0_10_capture_list_follows_max_num_seqs(max_num_seqs, tokens, n):
    """vllm 0.10.0 sdist, config.py:2451-2456: ``SchedulerConfig.cuda_graph_sizes`` defaults to
    ``[min(max_num_seqs * 2, 512)]``; config.py:4760-4777: ``[1, 2, 4] + range(8, that + 1, 8)``, then sizes above
    ``max_num_batched_tokens`` dropped (0.10.1 config/scheduler.py:244, 0.10.2 config/__init__.py:3652-3669: the
    same).  It was 67 whatever max_num_seqs."""
    assert capture_sizes(profile_for("0.10")[0], max_num_seqs, tokens) == n


def test_0_10_graph_memory_through_the_estimate():
    """The public path: the captured-graph figure's per-layer part scales 35 / 67 from max_num_seqs 256 to 128."""
    big = estimate_one(dense_spec(), H100, vllm_version="0.10", max_num_seqs=256)["cuda_graph_gib"]
    small = estimate_one(dense_spec(), H100, vllm_version="0.10", max_num_seqs=128)["cuda_graph_gib"]
    assert (small - oh.G_BASE) / (big - oh.G_BASE) == pytest.approx(35 / 67)


def test_huge_gpu_scheduler_defaults_from_0_28():
    """vllm 0.28.0 sdist, engine/arg_utils.py:2582-2590: ``device_memory >= 160 * GiB_bytes`` -> 16384 batched
    tokens / 1024 sequences for the API server; the 0.27.1 sdist has no such branch (8192 / 1024)."""
    assert oh.HUGE_GPU_DEFAULTS_FROM == (0, 28) and oh.HUGE_GPU_GIB == 160
    assert oh.default_scheduler_limits(B200, True, (0, 27)) == (8192, 1024)
    assert oh.default_scheduler_limits(B200, True, (0, 28)) == (16384, 1024)
    assert oh.default_scheduler_limits(139.81, True, (0, 34)) == (8192, 1024)      # H200: below 160 GiB
    assert oh.default_scheduler_limits(79.15, False, (0, 28)) == (2048, 256)       # A100
    before = estimate_one(dense_spec(), B200, vllm_version="0.27")
    after = estimate_one(dense_spec(), B200, vllm_version="0.28")
    assert (before["max_num_batched_tokens"], after["max_num_batched_tokens"]) == (8192, 16384)
    assert before["max_num_seqs"] == after["max_num_seqs"] == 1024
    assert after["activation_gib"] > before["activation_gib"]


def test_named_architectures_on_model_runner_v2_before_0_29():
    """``DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES`` (vllm config/vllm.py:69 in the 0.22.0 / 0.23.0 / 0.27.0 / 0.28.0
    sdists, :68 in 0.24.0-0.26.0): 0.22.0 {Qwen3ForCausalLM}; 0.23.0 {Llama, Mistral, Qwen3}ForCausalLM, both only
    unquantized non-MoE (:532 / :558 ``not is_moe and not is_quantized``); 0.24.0 adds DeepseekV2 / Qwen2Moe /
    GraniteMoe and drops the filter; 0.25.0-0.28.0 name MoE architectures beside the dense default (0.28.0 adds
    DeepseekV4ForCausalLM, :69-80); hybrids excluded in 0.25.0-0.27.x (0.25.0 :565-569).  MRV2's
    ``profile_cudagraph_memory`` returns 0 (v1/worker/gpu/model_runner.py:620-622 in 0.22.0)."""
    from reportgen.estimate.profiles import named_mrv2

    assert not named_mrv2((0, 21), ["Qwen3ForCausalLM"], False, False, False)
    assert named_mrv2((0, 22), ["Qwen3ForCausalLM"], False, False, False)
    assert not named_mrv2((0, 22), ["LlamaForCausalLM"], False, False, False)
    assert named_mrv2((0, 23), ["LlamaForCausalLM"], False, False, False)
    assert not named_mrv2((0, 23), ["LlamaForCausalLM"], False, True, False)        # quantized: V1 in 0.23
    assert named_mrv2((0, 24), ["LlamaForCausalLM"], False, True, False)            # any quantization in 0.24
    assert not named_mrv2((0, 23), ["Qwen2MoeForCausalLM"], True, False, False)
    assert named_mrv2((0, 24), ["Qwen2MoeForCausalLM"], True, False, False)
    assert not named_mrv2((0, 27), ["DeepseekV4ForCausalLM"], True, False, False)
    assert named_mrv2((0, 28), ["DeepseekV4ForCausalLM"], True, False, False)
    assert not named_mrv2((0, 29), ["DeepseekV4ForCausalLM"], True, False, False)   # 0.29: the profile's "all"
    assert not named_mrv2((0, 22), ["Qwen2ForCausalLM"], False, False, False)
    # the public path: a Llama-architecture dense model on an H100 leaves MRV1 at 0.23 -- no graph estimate taken
    # from the budget, MRV2's sampler -- and prices as 0.25 does; a Qwen2 one stays on MRV1 until 0.25
    from dataclasses import replace
    llama, qwen2 = replace(dense_spec(), architectures=("LlamaForCausalLM",)), \
        replace(dense_spec(), architectures=("Qwen2ForCausalLM",))
    kv = {(n, v): estimate_one(s, H100, vllm_version=v)["kv_cache_gib"]
          for n, s in (("llama", llama), ("qwen2", qwen2)) for v in ("0.22", "0.23", "0.25")}
    assert kv["llama", "0.23"] == pytest.approx(kv["llama", "0.25"]) and kv["llama", "0.23"] > kv["llama", "0.22"] + 1
    assert kv["qwen2", "0.23"] == pytest.approx(kv["qwen2", "0.22"]) and kv["qwen2", "0.25"] > kv["qwen2", "0.23"] + 1


# ---- confirmed by the audit (pinned so a later edit has to face the evidence) ---------------------------------------

def test_profile_boundaries_match_the_sdists():
    """0.11: FULL_AND_PIECEWISE default (vllm 0.11.0 sdist config/__init__.py:361-367).  0.17: Triton top-k/top-p
    (v1/sample/ops/topk_topp_triton.py first in the 0.17.0 sdist).  0.20: VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS
    default "1" (vllm 0.20.0 sdist envs.py:1724-1726; "0" in 0.19.1 envs.py:1654-1656).  0.21: "GPU KV cache size" =
    int(max_concurrency x max_model_len) (vllm 0.21.0 sdist v1/core/kv_cache_utils.py:1708).  0.25: dense models on
    Model Runner V2 (vllm 0.25.0 sdist config/vllm.py:557-570) whose ``profile_cudagraph_memory`` returns 0
    (v1/worker/gpu/model_runner.py:680-682).  0.29: MRV2 for every model (vllm 0.29.0 sdist config/vllm.py:645) and
    its estimate (model_runner.py:896-898; 0.28.0 still ``return 0`` at :843-845)."""
    firsts = {p.name: p.first for p in PROFILES}
    assert firsts == {"0.10": (0, 10), "0.11": (0, 11), "0.11.1": (0, 11, 1), "0.17": (0, 17), "0.20": (0, 20),
                      "0.20.1": (0, 20, 1), "0.25": (0, 25), "0.26": (0, 26), "0.29": (0, 29), "0.34": (0, 34)}
    by = {p.name: p for p in PROFILES}
    assert [p.name for p in PROFILES if p.graphs_in_budget][0] == "0.20"
    assert [p.name for p in PROFILES if p.tokens_from_concurrency][0] == "0.20.1"     # branch patchver: was 0.21
    assert [p.sampler_extra_bytes > 0 for p in PROFILES] == [True] * 3 + [False] * 7
    # 0.34: block size 64 and the extensible KV cache by default (vllm 0.34.0 sdist config/cache.py:185, :395-406)
    assert [p.name for p in PROFILES if p.extensible_kv_cache] == ["0.34"]
    assert [p.default_block_size for p in PROFILES] == [16] * 9 + [64]
    assert by["0.10"].capture_rule == "step8" and by["0.11"].capture_rule == "step8_full"
    assert by["0.11.1"].capture_rule == "max_num_seqs"
    assert runs_mrv2(profile_for("0.25.0")[0], is_moe=False, hybrid=False)
    assert not runs_mrv2(profile_for("0.25.0")[0], is_moe=True, hybrid=False)
    assert not by["0.25"].dense_graph_estimate and not by["0.26"].dense_graph_estimate
    assert by["0.29"].dense_graph_estimate and by["0.29"].mrv2 == "all"


def test_defaults_and_gates_confirmed():
    """PREFIX_CACHING_DEFAULT_FROM (0, 28): vllm 0.27.1 sdist engine/arg_utils.py:2602-2605 keeps hybrids opt-in,
    vllm 0.28.0 sdist config/model.py ``is_prefix_caching_supported`` answers True for a generative hybrid.
    BATCHED_FLOOR_SINCE (0, 22): "Raising max_num_batched_tokens from" first in vllm 0.22.0 sdist
    engine/arg_utils.py:2533.  PREFIX_LM_SINCE gemma4 (0, 20): ``Gemma4ModelArchConfigConvertor.is_mm_prefix_lm``
    first in vllm 0.20.0 sdist transformers_utils/model_arch_config_convertor.py:479-483.  FlashMLA-sparse's kept
    q-concat buffer: first in vllm 0.18.0 sdist v1/attention/backends/mla/flashmla_sparse.py:587, not kept from
    0.31.0 (:1359); SM 9.x leaves it at 0.25.0 (platforms/cuda.py:140 FLASH_ATTN_MLA_SPARSE first)."""
    assert hybrid.PREFIX_CACHING_DEFAULT_FROM == (0, 28)
    assert hybrid.state_cache_mode("0.27.1", None) == "none" and hybrid.state_cache_mode("0.28.0", None) == "align"
    assert enc.BATCHED_FLOOR_SINCE == (0, 22)
    assert enc.PREFIX_LM_SINCE == {"gemma4": (0, 20)}
    assert T.FLASHMLA_Q_CONCAT_SM9 == ((0, 18), (0, 25))
    assert T.FLASHMLA_Q_CONCAT_SM10 == ((0, 18), (0, 29))
    assert T.FLASHMLA_Q_CONCAT_SM10_PADDED == ((0, 29), (0, 31))
