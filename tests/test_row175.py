"""Row 175 (vLLM 0.20.1.dev1, `vllm serve zai-org/GLM-5.1-FP8 --tensor-parallel-size 8 --enforce-eager` on 8 x H200,
KV -8.8 %): what was checked, recomputed from the log rows, the bisect project's logs and the estimator (issue 10,
branch row175; docs/decisions.md "Row 175").  The change in vLLM is not pinned: nothing is priced, the row stays the
0.20 profile's known miss and no figure moves.  Branch dsaws since priced the indexer's K gather for DSA models
(0.17+ profiles, both rows; docs/decisions.md "DSA profile-run workspaces"): the activation below grows by what it
exceeds the fused-MoE workspaces by (0.35 GiB) and row 175 moves -9.56 -> -10.56 % KV, row 176 -1.81 -> -2.90 %.

Sources (search-index files, a vLLM bisect project's per-commit results, one machine, one command, torch 2.11.0+cu130
in every build):

* 61170000292 -- 8f89533d ('Revert "[Bugfix][Perf] Indexer upcast WK to BF16 for fusion (#38928)"'),
  0.19.1rc1.dev329 on the precompiled wheel 18013df6: 'Model loading took 89.34 GiB', 'gpu_worker.py:436] Available
  KV cache memory: 32.11 GiB' (row 176);
* 61103921487 -- c0ba4f5b ('Clone buffered FP8 indexer tensors'), the same 0.19.1rc1.dev329 base: 89.39 GiB, 32.06 GiB;
* 61174240581 -- 39acbf39 (the same subject, 'Clone buffered FP8 indexer tensors') on v0.20.0 + 1 commit (0.20.1.dev1,
  precompiled wheel 88d34c64): 89.39 GiB, 'gpu_worker.py:440] Available KV cache memory: 34.86 GiB' (row 175).

vLLM code read: ``vllm/utils/mem_utils.py`` @a6d5c390 (``memory_profiling``: non-KV = weights + torch peak increase +
non-torch increase since the start-up snapshot) and the later form quoted in search files 57477222335 / 58867179645
(``total_consumed`` = free-memory drop since the snapshot, + ``transient_peak_headroom`` = torch peak - torch allocated
after the profile; vLLM PR #37111's description); ``vllm/v1/attention/backends/mla/indexer.py``
``get_max_prefill_buffer_size`` (max_model_len x 40 rows of 132 B; "the flashmla_sparse backend uses a workspace size
of 5 * max_model_len" of 576 x 2 B) and ``vllm/model_executor/layers/sparse_attn_indexer.py`` @006475fe (profile-run
branch: that K gather from the workspace manager, plus a freed ``VLLM_SPARSE_INDEXER_MAX_LOGITS_MB`` = 512 MiB tensor).
"""
import random

import pytest

import scripts.validate_vllm_logs as vvl
from reportgen.estimate import compressed as C
from reportgen.estimate import overheads as oh
from reportgen.estimate import profiles as vp

GiB = 1024 ** 3
BUDGET = 0.9 * 139.81          # util 0.9 default x the H200 total vLLM prints (catalog; not printed in these tails)
M = 202752                     # max_model_len: GLM-5's max_position_embeddings (the command sets none)

# (weights GiB, KV GiB) printed by the three bisect steps (module docstring)
BASE019_REVERT = (89.34, 32.11)     # 8f89533d, row 176
BASE019_PATCH = (89.39, 32.06)      # c0ba4f5b
BASE020_PATCH = (89.39, 34.86)      # 39acbf39, row 175


@pytest.fixture(scope="module")
def res():
    rows = {r["row_id"]: r for r in vvl.load_rows()}
    out = {}
    for rid in ("168", "171", "175", "176"):
        case = vvl.make_case(rows[rid])
        p = vvl.predict(case)
        out[rid] = (rows[rid], p, vvl.compare(case, p))
    return out


def _left(weights_kv: tuple[float, float]) -> float:
    """What the log leaves inside the budget for activation + non-torch (eager: no graph term)."""
    return BUDGET - weights_kv[0] - weights_kv[1]


def test_the_same_patch_on_both_bases_moves_2_8_gib(res):
    row175, row176 = res["175"][0], res["176"][0]
    assert (float(row175["weights_loading_gib"]), float(row175["kv_cache_gib"])) == BASE020_PATCH
    assert (float(row176["weights_loading_gib"]), float(row176["kv_cache_gib"])) == BASE019_REVERT
    assert round(_left(BASE019_REVERT), 2) == round(_left(BASE019_PATCH), 2) == 4.38
    assert round(_left(BASE020_PATCH), 2) == 1.58
    # the commit under test is the same and loads the same 89.39 GiB on both bases: the 2.80 GiB is the base
    assert BASE019_PATCH[0] == BASE020_PATCH[0]
    assert round(BASE020_PATCH[1] - BASE019_PATCH[1], 2) == 2.80


def test_what_the_model_puts_in_the_remainder(res):
    _, p, r = res["175"]
    assert r["profile"] == "0.20" and p["cuda_graph_gib"] == 0.0                     # --enforce-eager
    rows, vocab = r["sampler_rows"], r["vocab"]
    assert (rows, vocab) == (1024, 154880)
    sampler = rows * vocab * (2 + oh.SAMPLER_BYTES) / GiB
    hidden = oh.HIDDEN_KEPT * 8192 * 6144 * 2 / GiB
    moe = oh.MOE_WS * 8 * (3 * 2048 / 8 + 6144) * 2 * 8192 / GiB
    # the indexer's K gather (branch dsaws) shares the WorkspaceManager buffer with the fused-MoE workspaces: the
    # larger, 40 x 202,752 rows x 132 B + 1 MiB = 1,071,579,136 B, replaces them
    gather = C.indexer_workspace_bytes(M, 128, 1) / GiB
    assert C.indexer_workspace_bytes(M, 128, 1) == 1_071_579_136 and gather > moe
    assert abs(p["activation_gib"] - (sampler + hidden + max(moe, gather))) < 1e-6    # max(F, H + S) + buffer
    assert round(sampler, 2) == 2.11 and round(moe, 2) == 0.65 and round(hidden, 2) == 0.19
    nt = vp.non_torch_gib(vp.profile_for("0.20")[0], 8, 1, 1, True, oh.NT_PP_ONLY)
    assert abs(p["non_torch_gib"] - nt) < 1e-9 and round(nt, 2) == 2.32
    nvls_share = nt - vp.non_torch_gib(vp.profile_for("0.20")[0], 8, 1, 1, True, oh.NT_PP_ONLY, nvls=False)
    assert round(nvls_share, 2) == 1.74
    # 5.265 (2.95 + 2.32 in the notes) before branch dsaws's 0.35 GiB: 3.30 + 2.32
    assert abs(p["activation_gib"] + p["non_torch_gib"] - 5.615) < 0.01


def test_a_leaner_profile_sampler_is_ruled_out_by_rows_171_and_168(res):
    """A 0.20 sampler holding MRV2's 4 B a logit instead of the fitted 12.3 (e.g. the FlashInfer top-k/top-p default,
    vLLM PR #40376) would free 1.23 GiB here -- under half the gap -- and would break two rows that fit now."""
    def lean(r):
        return r["sampler_rows"] * r["vocab"] * (oh.SAMPLER_BYTES - oh.MRV2_SAMPLER_BYTES) / GiB

    def err_if_lean(r):
        return (r["kv_pred"] + lean(r) - r["kv_meas"]) / r["kv_meas"] * 100

    r171, r168, r175 = res["171"][2], res["168"][2], res["175"][2]
    assert abs(r171["kv_err"]) < 1 and err_if_lean(r171) > 1.4      # 0.20.x, TP 1, 1,024 x 151,936 logits
    assert abs(r168["kv_err"]) < 1 and err_if_lean(r168) > 13       # 0.22.1, 256 x 262,144 logits
    assert round(lean(r175), 2) == 1.23 < 2.80


def test_the_later_profiling_formula_cannot_raise_the_kv_budget():
    """mem_utils @a6d5c390: non_kv = W + (peak - A0) + dNT.  Later form (PR #37111's): non_kv = (free drop since the
    snapshot) + (peak - A1) = dNT + R1 + peak - A1.  With R1 = A1 + fragmentation and A0 = W + B (torch memory allocated
    after the snapshot outside the weights measure), new - old = fragmentation + B >= 0: the switch can only shrink KV."""
    rng = random.Random(175)
    for _ in range(1000):
        w, b, kept, frag, d_nt = (rng.uniform(0, 100) for _ in range(5))
        a0 = w + b                       # allocated when the profile starts
        a1 = a0 + kept                   # allocated after it (persistent workspaces kept)
        peak = a1 + rng.uniform(0, 20)
        r1 = a1 + frag                   # reserved after empty_cache
        old = w + (peak - a0) + d_nt
        new = (d_nt + r1) + (peak - a1)
        assert new - old == pytest.approx(frag + b) and new >= old - 1e-9


def test_each_remaining_candidate_alone_is_below_the_gap():
    """The DSA profile-run reservations of this model and the NVLS share of the TP-group non-torch term: each alone
    is smaller than the 2.80 GiB; no single one is attributed, nothing is fitted.  Branch dsaws read them: the
    FlashMLA-sparse bf16 gather (5 x M x 576 x 2 B) is reserved only for an fp8_ds_mla cache (flashmla_sparse.py
    @008a0c31, ``FlashMLASparseImpl.__init__``), not for this command's ``auto`` (bf16) cache; the indexer's K gather
    is in both rows' estimate now (0.17+ profiles), so it cannot explain a difference between them either."""
    indexer_gather = C.indexer_workspace_bytes(M, 128, 1) / GiB      # K gather (fp8 + fp32 scale) + radix workspace
    flashmla_sparse = 5 * M * 576 * 2 / GiB                          # bf16 latent gather (fp8_ds_mla only)
    logits_transient = 512 * (1 << 20) / GiB
    assert round(indexer_gather, 2) == 1.0 and round(flashmla_sparse, 2) == 1.09
    p20 = vp.profile_for("0.20")[0]
    nvls_share = p20.nt_comm_base - p20.nt_single
    for candidate in (indexer_gather, indexer_gather + logits_transient, nvls_share):
        assert candidate < 2.80


def test_the_indexer_logits_transient_cannot_raise_this_rows_profile_peak(res):
    """Branch dsa2: the indexer's dummy-run ``torch.empty(VLLM_SPARSE_INDEXER_MAX_LOGITS_MB MiB)`` (envs default 512;
    sparse_attn_indexer.py of the v0.19.0+ sdists, v0.20.0 lines 121-124, dropped at once) is seen by the profile's
    ``max_memory_allocated``, but that peak is one maximum over ``profile_run`` = ``_dummy_run`` then
    ``_dummy_sampler_run`` (v0.20.0 gpu_model_runner.py:5848-5855).  Beyond the kept workspace buffer, the sampler
    phase holds the MRV1 logits + kept hidden states (2.30 GiB); the attention phase at 8,192 tokens holds the hidden
    and residual streams (2 x 8,192 x 6,144 x 2 B), the rank's q (8,192 x 8 x 576 x 2 B), the indexer's fp8 q
    (8,192 x 32 x 128 B), its weights (8,192 x 32 x 4 B) and k (8,192 x 128 x 2 B) -- 0.29 GiB: + 0.5 GiB stays below
    the sampler phase, so the transient adds nothing to rows 175 / 176 and is not priced."""
    _, p, r = res["175"]
    kept = max(oh.MOE_WS * 8 * (3 * 2048 / 8 + 6144) * 2 * 8192, C.indexer_workspace_bytes(M, 128, 1)) / GiB
    sampler_phase = p["activation_gib"] - kept
    attention_phase = (2 * 8192 * 6144 * 2 + 8192 * 8 * 576 * 2 + 8192 * 32 * 128 + 8192 * 32 * 4 + 8192 * 128 * 2) / GiB
    assert round(sampler_phase, 2) == 2.30 and round(attention_phase, 2) == 0.29
    assert attention_phase + 512 / 1024 < sampler_phase
