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


# ---- patch-level boundaries (issue 10, branch patchver) -------------------------------------------------------------
# Versions keep their patch (profiles.parse_version): "0.20" is the 0.20.0 release, "0.20.2" that patch, and a
# pre-release / dev build of X.Y.Z is priced as X.Y.Z (row 166, the 0.20.1rc1.dev91 nightly, prints 0.20.1's line).
# Each boundary below is pinned on both sides from the release sdists when they are unpacked (tests/sdist_support.py)
# and, always, through the code that carries it.

from sdist_support import SRC, needs_sdists  # noqa: E402

from reportgen.estimate import profiles as vp  # noqa: E402
from reportgen.job import parse_vllm_version  # noqa: E402


def _lines(release: str, path: str, first: int, last: int) -> str:
    """Lines first..last (1-based, inclusive) of vllm/<path> in the release's sdist."""
    text = (SRC / f"vllm-{release}" / "vllm" / path).read_text().splitlines()
    return "\n".join(text[first - 1:last])


@pytest.mark.parametrize("text, release", [
    ("0.20", (0, 20, 0)), ("v0.20.2", (0, 20, 2)), ("0.20.1rc1.dev91+ga749a33d8", (0, 20, 1)),
    ("0.20.1.dev1+g39acbf39c.precompiled", (0, 20, 1)), ("0.13.0+faa43dbf.nv26.01", (0, 13, 0)),
    ("0.10.1.1", (0, 10, 1)), ("v0.21.1rc1", (0, 21, 1)), ("nonsense", None)])
def test_versions_keep_their_patch(text, release):
    assert vp.parse_version(text) == release
    if release is not None:
        # (major, minor) boundaries keep their meaning: "from 0.28" = 0.28.0 on, 0.27.x before
        assert (release >= (0, release[1])) and not (release < (0, release[1]))


def test_job_and_cli_versions_keep_their_patch():
    assert parse_vllm_version("v0.20.2") == "0.20.2" and parse_vllm_version("0.20") == "0.20"
    assert parse_vllm_version("0.20.1rc1.dev91+ga749a33d8") == "0.20.1"       # priced as the release it leads to
    assert vp.profile_for("0.20")[0] is vp.profile_for("0.20.0")[0]             # major.minor = the .0 release


@needs_sdists
def test_token_line_sdists_0_20_0_vs_0_20_1():
    """``_report_kv_cache_config``: vllm 0.20.0 sdist v1/core/kv_cache_utils.py:1694-1697 counts ``num_blocks //
    len(kv_cache_groups) * min_block_size``; vllm 0.20.1 (and 0.20.2) sdist kv_cache_utils.py:1706 logs
    ``int(max_concurrency * max_model_len)``, as 0.21.0 does at :1708."""
    old = _lines("0.20.0", "v1/core/kv_cache_utils.py", 1694, 1697)
    assert "kv_cache_config.num_blocks" in old and "// len(kv_cache_config.kv_cache_groups)" in old
    assert "int(max_concurrency * max_model_len)" not in (SRC / "vllm-0.20.0/vllm/v1/core/kv_cache_utils.py").read_text()
    for release in ("0.20.1", "0.20.2"):
        assert "num_tokens = int(max_concurrency * max_model_len)" in _lines(release, "v1/core/kv_cache_utils.py",
                                                                              1706, 1706)
    assert "num_tokens = int(max_concurrency * max_model_len)" in _lines("0.21.0", "v1/core/kv_cache_utils.py",
                                                                         1708, 1708)


def test_token_line_profile_from_0_20_1():
    assert not vp.profile_for("0.20.0")[0].tokens_from_concurrency
    for v in ("0.20.1", "0.20.1rc1.dev91", "0.20.2", "0.21.0"):
        assert vp.profile_for(v)[0].tokens_from_concurrency, v
    # one profile from 0.20.1 to 0.24, labelled so in the output; 0.20.0 alone
    assert vp.profile_for("0.20.2")[0].label == "0.20.1-0.24" and vp.profile_for("0.20")[0].label == "0.20.0"


def _estimate_cli(version: str) -> dict:
    import contextlib
    import io

    from reportgen.cli import main

    cfg = ROOT / "reportgen" / "sources" / "bundled" / "google--gemma-3-12b-it.json"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["estimate", str(cfg), "--gpu", "H100", "--json", "--offline", "--max-model-len", "32768",
              "--vllm-version", version])
    return json.loads(out.getvalue())


def test_cli_vllm_version_0_20_2_logs_the_concurrency_token_line():
    """``reportgen estimate --vllm-version 0.20.2``: Gemma-3-12B has sliding-window and full-attention KV groups, so
    the two "GPU KV cache size" rules differ.  0.20.0: a block multiple (``num_blocks // n_groups x 16``); 0.20.2 (and
    the 0.20.1rc1 nightly): ``int(max_concurrency x max_model_len)``, on the same budget (0.20's)."""
    old, new, rc = _estimate_cli("0.20"), _estimate_cli("v0.20.2"), _estimate_cli("0.20.1rc1.dev91+ga749a33d8")
    assert (old["vllm_version"], new["vllm_version"], rc["vllm_version"]) == ("0.20", "0.20.2", "0.20.1")
    assert old["vllm_profile"] == "0.20.0" and new["vllm_profile"] == rc["vllm_profile"] == "0.20.1-0.24"
    assert new["kv_cache_gib"] == pytest.approx(old["kv_cache_gib"]) and new["weights_gib"] == old["weights_gib"]
    assert new["kv_cache_tokens"] == rc["kv_cache_tokens"] == int(new["max_concurrency"] * 32768)
    assert old["kv_cache_tokens"] % 16 == 0 and old["kv_cache_tokens"] < new["kv_cache_tokens"] / 2


@needs_sdists
def test_capture_list_sdists_0_11_0_vs_0_11_1():
    """vllm 0.11.0 sdist config/scheduler.py:226-227 ``cuda_graph_sizes = [min(self.max_num_seqs * 2, 512)]`` and
    config/__init__.py:594-597 ``[1, 2, 4] + range(8, cuda_graph_sizes[0] + 1, 8)``; FULL decode graphs for those sizes
    up to max_num_seqs (v1/worker/gpu_model_runner.py:3453-3460).  vllm 0.11.1 sdist config/vllm.py:884-888: multiples
    of 16 from 256 (``range(256, max_cudagraph_capture_size + 1, 16)``)."""
    assert "min(self.max_num_seqs * 2, 512)" in _lines("0.11.0", "config/scheduler.py", 226, 227)
    assert "range(8, cuda_graph_sizes[0] + 1, 8)" in _lines("0.11.0", "config/__init__.py", 594, 597)
    assert "x <= max_num_tokens" in _lines("0.11.0", "v1/worker/gpu_model_runner.py", 3453, 3460)
    assert "range(256, 993, 16)" not in _lines("0.11.0", "config/__init__.py", 580, 620)
    assert "range(256, max_cudagraph_capture_size + 1, 16)" in _lines("0.11.1", "config/vllm.py", 884, 888)


@pytest.mark.parametrize("max_num_seqs, tokens, n", [
    (1024, 8192, 67 + 67),     # step-8 list to 512: [1, 2, 4] + 64 multiples of 8, FULL for all (<= 1024)
    (256, 8192, 67 + 35),      # FULL stops at 256: [1, 2, 4] + 32
    (128, 8192, 35 + 19)])
def test_0_11_0_counts_the_step8_list_with_full_graphs(max_num_seqs, tokens, n):
    assert capture_sizes(profile_for("0.11.0")[0], max_num_seqs, tokens) == n
    # 0.11.1: [1, 2, 4] + range(8, 256, 8) + range(256, top + 1, 16) -> 51 sizes at top 512, 35 at 256, 19 at 128;
    # PIECEWISE up to min(2 x max_num_seqs, 512), FULL up to max_num_seqs
    new = {1024: 51 + 51, 256: 51 + 35, 128: 35 + 19}[max_num_seqs]
    assert capture_sizes(profile_for("0.11.1")[0], max_num_seqs, tokens) == new


@needs_sdists
def test_gpt_oss_capture_override_sdists():
    """models/config.py ``GptOssForCausalLMConfig``: none in the vllm 0.10.0 sdist (``MODELS_CONFIG_MAP`` :306 has no
    gpt_oss entry); 1024 in 0.10.1 (:266 ``if max_capture_size < 1024``); 992 in 0.11.0 (``range(256, 993, 16)``,
    :248-273); 1024 again in 0.11.1 (:271 ``max_cudagraph_capture_size = 1024``)."""
    assert "GptOss" not in (SRC / "vllm-0.10.0/vllm/model_executor/models/config.py").read_text()
    assert "max_capture_size < 1024" in _lines("0.10.1", "model_executor/models/config.py", 266, 266)
    assert "range(256, 993, 16)" in _lines("0.11.0", "model_executor/models/config.py", 248, 273)
    assert "max_cudagraph_capture_size = 1024" in _lines("0.11.1", "model_executor/models/config.py", 271, 271)


def test_gpt_oss_capture_override_per_release():
    assert [vp.model_max_capture("gpt_oss", vp.parse_version(v)) for v in
            ("0.10", "0.10.1", "0.10.2", "0.11", "0.11.1", "0.19")] == [None, 1024, 1024, 992, 1024, 1024]
    assert vp.model_max_capture("gpt_oss") == 1024 and vp.model_max_capture("llama", (0, 19, 0)) is None
    p = profile_for("0.11.0")[0]
    # 0.11.0's override list: [1, 2, 4] + range(8, 256, 8) + range(256, 993, 16) = 3 + 31 + 47 = 81 sizes, PIECEWISE
    # and FULL (max_num_seqs 1024); 0.11.1: 83 + 83 (rows G01 / G02 log "83/83")
    assert capture_sizes(p, 1024, 8192, max_capture=vp.OVERRIDE_CAPTURE) == 81 + 81
    assert capture_sizes(profile_for("0.11.1")[0], 1024, 8192, max_capture=vp.OVERRIDE_CAPTURE) == 83 + 83


@needs_sdists
def test_nvfp4_sm12_sdists():
    """vllm 0.15.1 sdist model_executor/layers/fused_moe/flashinfer_cutlass_moe.py:93-103: the FlashInfer CUTLASS
    MoE device check takes the SM 12.x family, and oracle/nvfp4.py:106 selects from the MoE config; the 0.14.1 sdist's
    oracle/nvfp4.py:80-92 ``select_nvfp4_moe_backend()`` takes no config and returns VLLM_CUTLASS unless
    VLLM_USE_FLASHINFER_MOE_FP4 is set (the ``< (0, 15)`` branch).  0.15.0 (no sdist read) is the release vllm#33417
    fixed: the boundary's lower side rests on that issue, not on a source read here."""
    assert "is_device_capability_family(120)" in _lines("0.15.1", "model_executor/layers/fused_moe/"
                                                         "flashinfer_cutlass_moe.py", 93, 103)
    assert "def select_nvfp4_moe_backend(" in _lines("0.15.1", "model_executor/layers/fused_moe/oracle/nvfp4.py", 106, 106)
    old = _lines("0.14.1", "model_executor/layers/fused_moe/oracle/nvfp4.py", 80, 92)
    assert "def select_nvfp4_moe_backend() -> NvFp4MoeBackend:" in old and "NvFp4MoeBackend.VLLM_CUTLASS" in old
    assert not (SRC / "vllm-0.15.0").exists()


def test_nvfp4_sm12_from_0_15_1():
    assert L.NVFP4_SM12_FROM == (0, 15, 1)
    assert L.nvfp4_moe_backend((12, 0), vp.parse_version("0.15")) is None                # 0.15.0: failed (vllm#33417)
    assert L.nvfp4_moe_backend((12, 0), vp.parse_version("0.15.1")) == "nvfp4_flashinfer_cutlass"
    assert L.nvfp4_moe_backend((12, 0), vp.parse_version("0.16.0")) == "nvfp4_flashinfer_cutlass"
    assert L.nvfp4_moe_backend((12, 0), vp.parse_version("0.14.1")) == "nvfp4_cutlass"  # pre-oracle
    # the public path: EngineOptions carries the patch (matrix.py passes it per GPU)
    assert T.EngineOptions.from_matrix(SimpleNamespace(vllm_version="0.15.1")).vllm_version == (0, 15, 1)


@needs_sdists
def test_first_listing_at_a_patch_sdists():
    """MellumForCausalLM: vllm 0.22.1 sdist model_executor/models/registry.py:163, absent from the 0.22.0 registry;
    GptOssForCausalLM: vllm 0.10.1 sdist registry.py:76, absent from 0.10.0's."""
    assert '"MellumForCausalLM"' in _lines("0.22.1", "model_executor/models/registry.py", 163, 163)
    assert "MellumForCausalLM" not in (SRC / "vllm-0.22.0/vllm/model_executor/models/registry.py").read_text()
    assert '"GptOssForCausalLM"' in _lines("0.10.1", "model_executor/models/registry.py", 76, 76)
    assert "GptOssForCausalLM" not in (SRC / "vllm-0.10.0/vllm/model_executor/models/registry.py").read_text()


@needs_sdists
def test_flashinfer_sampler_default_stays_explicit_sdists():
    """Not changed at patch level: the FlashInfer top-k/top-p sampler is the default only when FlashInfer is installed
    in 0.10.0-0.11.0 (vllm 0.11.0 sdist v1/sample/ops/topk_topp_sampler.py:46 ``is not False``) and opt-in from
    0.11.1 (:34 ``if envs.VLLM_USE_FLASHINFER_SAMPLER:``); whether FlashInfer was installed is not a version fact
    (0.11.0 rows 76-79 show the sort-based sampler, row 80 FlashInfer's), so ``flashinfer_sampler`` stays explicit."""
    assert "VLLM_USE_FLASHINFER_SAMPLER is not False" in _lines("0.11.0", "v1/sample/ops/topk_topp_sampler.py", 46, 46)
    assert "if envs.VLLM_USE_FLASHINFER_SAMPLER:" in _lines("0.11.1", "v1/sample/ops/topk_topp_sampler.py", 34, 34)
    a = estimate_one(dense_spec(), H100, vllm_version="0.11.0")["activation_gib"]
    assert a == estimate_one(dense_spec(), H100, vllm_version="0.11.1")["activation_gib"]


@needs_sdists
def test_off_grid_batched_tokens_captured_sdists():
    """vllm 0.20.1 sdist config/vllm.py:1527-1532 appends ``max_num_tokens`` (max_num_batched_tokens) to the default
    capture list when it is within the maximum capture size and not on the grid; the 0.20.0 sdist builds the grid
    only (config/vllm.py:1513-1523).  Found while diffing the 0.20.0 / 0.20.1 sdists (branch patchver)."""
    assert "max_num_tokens not in cudagraph_capture_sizes" in _lines("0.20.1", "config/vllm.py", 1527, 1532)
    assert "ensure max_num_tokens is captured" not in (SRC / "vllm-0.20.0/vllm/config/vllm.py").read_text()
    assert "ensure max_num_tokens is captured" in (SRC / "vllm-0.34.0/vllm/config/vllm.py").read_text()


@pytest.mark.parametrize("seqs, tokens, spec, before, after", [
    # top = min(2 x 256, 512, 300) = 300: [1, 2, 4] + 31 multiples of 8 + 256 / 272 / 288 = 37 PIECEWISE, 35 FULL
    # (<= 256); 0.20.1 adds 300 (PIECEWISE only: above max_num_seqs)
    (256, 300, 0, 37 + 35, 38 + 35),
    # top = min(128, 512, 100) = 100: [1, 2, 4] + 8..96 = 15 PIECEWISE, 11 FULL (<= 64); 0.20.1 adds 100
    (64, 100, 0, 15 + 11, 16 + 11),
    # speculative q = 2 (Model Runner V1, to 0.28): the 37 sizes rounded up to even ones (1 -> 2) = 36, all <= 256 x 2
    # FULL; +300 from 0.20.1.  From 0.29 (Model Runner V2: no rounding, vllm 0.29.0 sdist config/compilation.py
    # :1481-1496) the 38 sizes stay PIECEWISE and FULL takes them rounded up to whole requests, 1 and 2 -> 2: 37
    # (test_specdecode_mrv2.py) -- ``MRV2_SPEC`` below
    (256, 300, 1, 36 + 36, 37 + 37),
    # on the grid (296 is not, 288 is): nothing added
    (256, 288, 0, 37 + 35, 37 + 35),
    (1024, 8192, 0, 51 + 51, 51 + 51)])
def test_off_grid_batched_tokens_captured_from_0_20_1(seqs, tokens, spec, before, after):
    assert capture_sizes(profile_for("0.20.0")[0], seqs, tokens, num_spec=spec) == before
    for v in ("0.20.1", "0.24", "0.29", "0.34"):
        expected = MRV2_SPEC.get((seqs, tokens, spec), after) if v in ("0.29", "0.34") else after
        assert capture_sizes(profile_for(v)[0], seqs, tokens, num_spec=spec) == expected, v


MRV2_SPEC = {(256, 300, 1): 38 + 37}
