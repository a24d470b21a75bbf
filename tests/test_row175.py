"""Row 175 (vLLM 0.20.1.dev1, `vllm serve zai-org/GLM-5.1-FP8 --tensor-parallel-size 8 --enforce-eager` on 8 x H200,
KV -10.8 %): what was checked, recomputed from the log rows, the bisect project's logs, the estimator and -- since
branch sparse175 -- the release sdists (/work/vllm_src/vllm-X.Y.Z; docs/decisions.md "Row 175: what was checked and
ruled out" and "Row 175 pinned from the sdists").  The change is still not attributed to a vLLM line: nothing is
priced, the row stays the 0.20 profile's known miss and no figure moves.  What the sdists add:

* the budget path is the same code in vllm 0.19.1 and 0.20.0 (``memory_profiling``, ``request_memory``,
  ``DeviceMemoryProfiler``, the start-up snapshot in ``init_device``, ``profile_run``, the fused-MoE workspace shapes
  and their ``WorkspaceManager`` allocation, the logits all-gather); ``determine_available_memory`` differs only in
  its CUDA-graph gate, closed for ``--enforce-eager`` in both; the DSA indexer's profile branch adds 1 MiB in 0.20.0;
* row 176's base (0.19.1rc1.dev329, not a release) prints the 0.19.1 sdist's line numbers on the profile path
  (gpu_worker.py:436, fused_moe.py:1077, kv_cache_utils.py:1319; gpu_model_runner.py:4823 = 0.19.1's 4820 + the
  3-line ssu_dispatch import of 0.20.0's lines 59-61, whose call the same log shows);
* v0.20.0's own profile holds, in torch memory alone, more than row 175's log leaves for activation + non-torch:
  the fused-MoE workspace kept in the WorkspaceManager (1.50 GiB at 8,192 tokens) + the sampler's bf16 and fp32
  logits (0.89 GiB) + the kept hidden states (0.11 GiB) = 2.49 GiB > 1.58 GiB, so that start's non-torch increase
  (device-wide, from the start-up snapshot) was <= -0.91 GiB: memory in use at the snapshot was released before the
  profile ended.  No non-negative priced term reproduces the row; the 2.80 GiB sits in that device-wide term.

Branch dsaws priced the indexer's K gather for DSA models (0.17+ profiles, both rows; docs/decisions.md "DSA
profile-run workspaces"): the activation below grows by what it exceeds the fitted fused-MoE workspaces by (0.35 GiB)
and row 175 moved -9.56 -> -10.56 % KV, row 176 -1.81 -> -2.90 %.

Sources (search-index files, a vLLM bisect project's per-commit results, one machine, one command, torch 2.11.0+cu130
in every build):

* 61170000292 -- 8f89533d ('Revert "[Bugfix][Perf] Indexer upcast WK to BF16 for fusion (#38928)"'),
  0.19.1rc1.dev329 on the precompiled wheel 18013df6: 'Model loading took 89.34 GiB', 'gpu_worker.py:436] Available
  KV cache memory: 32.11 GiB' (row 176);
* 61103921487 -- c0ba4f5b ('Clone buffered FP8 indexer tensors'), the same 0.19.1rc1.dev329 base: 89.39 GiB, 32.06 GiB;
* 61174240581 -- 39acbf39 (the same subject, 'Clone buffered FP8 indexer tensors') on v0.20.0 + 1 commit (0.20.1.dev1,
  precompiled wheel 88d34c64): 89.39 GiB, 'gpu_worker.py:440] Available KV cache memory: 34.86 GiB' (row 175).
  It is the only 0.20-based step of that project in the index: a run-state effect cannot be told from a vLLM change.

vLLM code read: ``vllm/utils/mem_utils.py`` @a6d5c390 and the 0.19.1 / 0.20.0 sdists (``memory_profiling``: non-KV =
weights + torch peak increase + non-torch increase since the start-up snapshot) and the later form quoted in search
files 57477222335 / 58867179645 (``total_consumed`` = free-memory drop since the snapshot, + ``transient_peak_headroom``
= torch peak - torch allocated after the profile; vLLM PR #37111's description); ``vllm/v1/attention/backends/mla/
indexer.py`` ``get_max_prefill_buffer_size`` (max_model_len x 40 rows of 132 B; "the flashmla_sparse backend uses a
workspace size of 5 * max_model_len" of 576 x 2 B) and ``vllm/model_executor/layers/sparse_attn_indexer.py`` @006475fe
and the sdists (profile-run branch: that K gather from the workspace manager, plus a freed
``VLLM_SPARSE_INDEXER_MAX_LOGITS_MB`` = 512 MiB tensor).
"""
import ast
import difflib
import random
from pathlib import Path

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
    assert r["profile"] == "0.20.1-0.24" and p["cuda_graph_gib"] == 0.0    # 0.20.1.dev1 = 0.20.1; --enforce-eager
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
    assert abs(r168["kv_err"]) < 1 and err_if_lean(r168) > 12       # 0.22.1, 256 x 262,144 logits (12.5: branch load29)
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
    is in both rows' estimate now (0.17+ profiles), so it cannot explain a difference between them either.
    Branch sparse175: the indexer's profile branch is the same in the 0.19.1 and 0.20.0 sdists (+1 MiB), and the
    NVLS share cannot close the row either -- row 175 needs a negative non-torch term
    (test_the_0_20_0_profile_holds_more_torch_memory_than_row_175_leaves)."""
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


# --- branch sparse175: the release sdists (docs/decisions.md "Row 175 pinned from the sdists") -----------------------

SRC = Path("/work/vllm_src")
needs_sdists = pytest.mark.skipif(not all((SRC / f"vllm-{v}").is_dir() for v in ("0.19.1", "0.20.0")),
                                  reason="vLLM release sdists not unpacked")


def _fn(version: str, path: str, qualname: str) -> tuple[int, int, list[str]]:
    """(first line, last line, source lines) of a function / class ``qualname`` in a release sdist's file."""
    text = (SRC / f"vllm-{version}" / path).read_text()
    body = ast.parse(text).body
    node = None
    for part in qualname.split("."):
        node = next(n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part)
        body = node.body
    return node.lineno, node.end_lineno, text.splitlines()[node.lineno - 1:node.end_lineno]


def _changed(path: str, qualname: str) -> list[str]:
    """The stripped lines a unified diff of ``qualname`` 0.19.1 -> 0.20.0 adds or removes."""
    a, b = _fn("0.19.1", path, qualname)[2], _fn("0.20.0", path, qualname)[2]
    return [l[1:].strip() for l in difflib.unified_diff(a, b, lineterm="", n=0)
            if l[:1] in "+-" and not l.startswith(("+++", "---"))]


def _line(version: str, path: str, n: int) -> str:
    return (SRC / f"vllm-{version}" / path).read_text().splitlines()[n - 1]


@needs_sdists
def test_the_budget_path_is_the_same_code_in_0_19_1_and_0_20_0():
    """What decides "Available KV cache memory" for this command, 0.19.1 vs 0.20.0 sdists: ``memory_profiling``
    (mem_utils.py 0.19.1:197-281 / 0.20.0:191-275), ``request_memory`` (v1/worker/utils.py:403-423, both),
    ``DeviceMemoryProfiler`` ("Model loading took", mem_utils.py 0.19.1:44-63 / 0.20.0:48-67) and
    ``get_current_memory_usage`` (platforms/cuda.py 0.19.1:206-211 / 0.20.0:240-245) are identical; ``init_device``
    (the start-up snapshot after ``init_worker_distributed_environment``, gpu_worker.py:263 / 282, both) and
    ``profile_run`` differ only in a log call's ``scope="local"``; ``determine_available_memory`` only in log text and
    its CUDA-graph gate (0.19.1: ``not enforce_eager``; 0.20.0: ``cudagraph_mode != NONE``), closed in both for
    ``--enforce-eager`` (the 0.20 log: "Enforce eager set ... -cc.cudagraph_mode=none")."""
    for path, q in (("vllm/utils/mem_utils.py", "memory_profiling"),
                    ("vllm/utils/mem_utils.py", "DeviceMemoryProfiler"),
                    ("vllm/v1/worker/utils.py", "request_memory"),
                    ("vllm/platforms/cuda.py", "CudaPlatformBase.get_current_memory_usage")):
        assert _changed(path, q) == [], q
    for path, q in (("vllm/v1/worker/gpu_worker.py", "Worker.init_device"),
                    ("vllm/v1/worker/gpu_model_runner.py", "GPUModelRunner.profile_run")):
        assert all("logger.info_once" in l or l == 'scope="local",' for l in _changed(path, q)), q
    changed = _changed("vllm/v1/worker/gpu_worker.py", "Worker.determine_available_memory")
    code = [l for l in changed if l and not l.startswith(("#", '"', "logger.", "scope=", "re-enabling"))]
    assert code == ["if not self.model_config.enforce_eager and not current_platform.is_rocm():",
                    "if (", "not current_platform.is_rocm()", "and self.vllm_config.compilation_config.cudagraph_mode",
                    "!= CUDAGraphMode.NONE", "):"]
    assert _fn("0.19.1", "vllm/utils/mem_utils.py", "memory_profiling")[:2] == (197, 281)
    assert _fn("0.20.0", "vllm/utils/mem_utils.py", "memory_profiling")[:2] == (191, 275)


@needs_sdists
def test_the_profile_runs_allocations_are_the_same_code():
    """The terms the profile's torch peak holds for this model, 0.19.1 vs 0.20.0: the Triton fused-MoE workspace shapes
    (fused_moe.py 0.19.1:1976-1991 / 0.20.0:1968-1983) and their allocation from the one ``WorkspaceManager`` buffer
    (modular_kernel.py ``_allocate_buffers`` 0.19.1:1009-1070 / 0.20.0:1041-1102) are identical, as is the logits
    all-gather (logits_processor.py:75-87); the dummy sampler run only passes one more metadata field
    (``logprob_token_ids=None``); the DSA indexer's profile branch (sparse_attn_indexer.py 0.19.1:49-61 /
    0.20.0:108-124) adds the 1 MiB ``RADIX_TOPK_WORKSPACE_SIZE`` (0.20.0:37) -- 0.20.0 holds more, not less.
    The ``WorkspaceManager`` now frees and ``empty_cache()``s before it grows (workspace.py 0.20.0:164-179): that moves
    reserved (fragmented) memory, which ``memory_profiling`` never charges (non-torch = used - reserved)."""
    for path, q in (("vllm/model_executor/layers/fused_moe/fused_moe.py", "TritonExperts.workspace_shapes"),
                    ("vllm/model_executor/layers/fused_moe/modular_kernel.py",
                     "FusedMoEKernelModularImpl._allocate_buffers"),
                    ("vllm/model_executor/layers/logits_processor.py", "LogitsProcessor._gather_logits")):
        assert _changed(path, q) == [], q
    assert _changed("vllm/v1/worker/gpu_model_runner.py", "GPUModelRunner._dummy_sampler_run") == [
        "logprob_token_ids=None,"]
    assert _line("0.20.0", "vllm/model_executor/layers/sparse_attn_indexer.py", 37) == \
        "RADIX_TOPK_WORKSPACE_SIZE = 1024 * 1024"
    for v, n in (("0.19.1", 50), ("0.20.0", 109)):
        assert "Reserve workspace for indexer during profiling run" in \
            _line(v, "vllm/model_executor/layers/sparse_attn_indexer.py", n)
    assert _line("0.20.0", "vllm/v1/worker/workspace.py", 175).strip() == "torch.accelerator.empty_cache()"


@needs_sdists
def test_row_176s_base_prints_the_0_19_1_line_numbers_on_the_profile_path():
    """Row 176's build (0.19.1rc1.dev329, main between the 0.19 and 0.20 branch points) is in no sdist.  Its log's
    source lines (search file 61170000292) are 0.19.1's where row 175's (61174240581) are 0.20.0's: so the
    0.19.1 -> 0.20.0 diff covers both rows' profile-path Python.  gpu_model_runner.py:4823 is 0.19.1's 4820 plus the
    3-line ``initialize_mamba_ssu_backend`` import (0.20.0 lines 59-61), whose call the dev329 log prints
    ("ssu_dispatch.py:207 Using triton Mamba SSU backend")."""
    # (file, line logged by row 176, line logged by row 175, the message) -- the logger call's first line
    for path, l176, l175, msg in (
            ("vllm/v1/worker/gpu_worker.py", 436, 440, "Available KV cache memory"),
            ("vllm/model_executor/layers/fused_moe/fused_moe.py", 1077, 1078, "Using configuration from"),
            ("vllm/v1/core/kv_cache_utils.py", 1319, 1711, "GPU KV cache size")):
        for v, n in (("0.19.1", l176), ("0.20.0", l175)):
            text = (SRC / f"vllm-{v}" / path).read_text().splitlines()
            assert "logger.info" in text[n - 1] and msg in "\n".join(text[n - 1:n + 1]), (v, path, n)
    for v, n in (("0.19.1", 4820), ("0.20.0", 4879)):
        text = (SRC / f"vllm-{v}" / "vllm/v1/worker/gpu_model_runner.py").read_text().splitlines()
        assert "logger.info_once" in text[n - 1] and "Model loading took" in text[n]
    assert [_line("0.20.0", "vllm/v1/worker/gpu_model_runner.py", n) for n in (59, 60, 61)] == [
        "from vllm.model_executor.layers.mamba.ops.ssu_dispatch import (", "    initialize_mamba_ssu_backend,", ")"]
    assert 4820 + 3 == 4823


def test_the_0_20_0_profile_holds_more_torch_memory_than_row_175_leaves(res):
    """v0.20.0's profile at 8,192 tokens (GLM-5 geometry: hidden 6,144, 8 of 256 experts, moe_intermediate 2,048 / TP 8
    = 256; vocab 154,880), torch memory alone, lower bound:

    - the fused-MoE workspaces kept in the ``WorkspaceManager`` (``TritonExperts.workspace_shapes``: workspace13 and
      workspace2 both (M, topk, max(N_act, K)) = 8,192 x 8 x 6,144, in the activation dtype (modular_kernel.py
      0.20.0:816-820, bf16) -- 1.50 GiB; the indexer's 1.0 GiB K gather fits inside and is freed when the buffer
      grows; the 72 MiB FlashMLA-sparse q-concat buffer it started from was allocated at load, before the profile;
    - during the dummy sampler run: the all-gathered bf16 logits (1,024 x 154,880 x 2 B, logits_processor.py:83) and
      the sampler's float32 copy of them (sampler.py 0.20.0:91) -- 0.89 GiB;
    - the dummy run's hidden states, still referenced by ``profile_run`` (8,192 x 6,144 x 2 B) and the 1,024 rows
      gathered from them -- 0.11 GiB.

    2.49 GiB > the 1.58 GiB row 175's log leaves for activation + non-torch, so its non-torch increase (used -
    torch-reserved, device-wide, from the start-up snapshot) was <= -0.91 GiB; row 176's is <= 1.89 GiB.  With the
    sampler as fitted on row 171 (0.20.x, TP 1) the two are -2.22 and +0.58 GiB: the 2.80 GiB sits in that device-wide
    term, and even reportgen's own activation (3.30 GiB) exceeds row 175's remainder -- dropping the whole TP-group
    non-torch term (2.32) would leave row 175 at -4.1 % and move row 176 to +4.1 %: no non-negative term fits both."""
    hidden, topk, experts_i, tp, vocab, rows, tokens = 6144, 8, 2048, 8, 154880, 1024, 8192
    n = 2 * experts_i // tp                                           # w13 rows a rank (gate + up)
    workspace = 2 * tokens * topk * max(n // 2, hidden) * 2            # workspace13 + workspace2, bf16
    logits = rows * vocab * (2 + 4)                                    # gathered bf16 + the sampler's fp32
    kept = tokens * hidden * 2 + rows * hidden * 2                     # hidden states + the gathered rows
    assert workspace == 1_610_612_736
    bound = (workspace + logits + kept) / GiB
    assert round(bound, 2) == 2.49
    left175, left176 = _left(BASE020_PATCH), _left(BASE019_REVERT)
    assert round(left175, 2) == 1.58 and bound > left175
    assert round(left175 - bound, 2) == -0.91 and round(left176 - bound, 2) == 1.89
    fitted = (workspace + rows * vocab * (2 + oh.SAMPLER_BYTES) + oh.HIDDEN_KEPT * tokens * hidden * 2) / GiB
    nt175, nt176 = left175 - fitted, left176 - fitted
    assert (round(nt175, 2), round(nt176, 2)) == (-2.22, 0.58) and round(nt176 - nt175, 2) == 2.80
    # reportgen's activation for row 175 alone exceeds the remainder; without any non-torch term:
    _, p, r = res["175"]
    assert p["activation_gib"] > left175
    no_nt = r["kv_pred"] + p["non_torch_gib"]
    assert round((no_nt - r["kv_meas"]) / r["kv_meas"] * 100, 1) == -4.1
    assert round((no_nt - res["176"][2]["kv_meas"]) / res["176"][2]["kv_meas"] * 100, 1) == 4.1
