"""DeepSeek-V4's KV cache as vLLM allocates it (reportgen/estimate/compressed.py).

Every number below is worked out by hand from the vLLM lines cited (vllm-project/vllm, read with the
search tool's read_file at the commit named) and pinned; the pool arithmetic is checked against a real
start-up log (vllm#44376).

- deepseek_v4_attention.py @0a291a2e: DeepseekV4MLAAttention.get_kv_cache_spec (compressed latent,
  ``alignment=576``, ``model_version="deepseek_v4"``, ``cache_dtype_str`` fp8_ds_mla), the
  ``assert kv_cache_dtype.startswith("fp8")``; DeepseekV4IndexerCache (``head_dim + head_dim // 128 * 4``
  uint8, ``compress_ratio``, ``alignment=576``).
- sparse_swa.py @72ecd68b: DeepseekV4SWACache (``self.block_size = 64``, SlidingWindowMLASpec,
  ``alignment=576``); DeepseekSparseSWABackend.get_preferred_block_size -> 256.
- deepseek_compressor.py @bbd10241: CompressorStateCache (float32, ``state_dim = 2 * coff * head_dim``,
  block 4 / 8, ``sliding_window = coff * compress_ratio``, ``alignment=576``).
- kv_cache_interface.py @7a24fbb3: ``storage_block_size = block_size // compress_ratio``,
  ``return self.storage_block_size * 584``, ``_apply_alignment_padding`` (``round_up(page, alignment)``).
- kv_cache_planning.py @fc23e695: group_and_unify_kv_cache_specs, _approximate_gcd,
  _get_kv_cache_groups_uniform_groups, _get_kv_cache_config_deepseek_v4,
  _max_memory_usage_bytes_from_groups.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from reportgen.arch import build_spec
from reportgen.estimate import compressed as C
from reportgen.matrix import GpuLike

ROOT = Path(__file__).resolve().parents[1]
FLASH = json.loads((ROOT / "tests/data/configs_2026/deepseek-ai--DeepSeek-V4-Flash.json").read_text())
GIB = 2**30
_FLASH_SPEC = build_spec(FLASH)


@pytest.fixture(scope="module")
def flash():
    return build_spec(FLASH)


def test_the_layer_kinds_follow_compress_ratios(flash):
    ratios = [l.compressed.ratio for l in flash.layers_kv]
    assert len(ratios) == 43 and ratios == FLASH["compress_ratios"][:43]
    assert ratios.count(0) == 2 and ratios.count(4) == 21 and ratios.count(128) == 20
    assert {l.window for l in flash.layers_kv} == {128}


def test_page_bytes_of_each_cache_kind_at_vllms_default_block_256(flash):
    caches = C.layer_caches(flash.layers_kv)
    by = {}
    for c in caches:
        by.setdefault(c.kind, set()).add((c.block_size, c.window, c.raw_page, c.page))
    assert by == {
        # MLAAttentionSpec, storage 256 // 4 = 64 entries x 584 B = 37,376 -> round_up(., 576) = 37,440
        "c4a": {(256, None, 37_376, 37_440)},
        # DeepseekV4IndexerCache: 64 entries x (128 + 128 // 128 * 4 = 132 B) = 8,448 -> 8,640
        "c4i": {(256, None, 8_448, 8_640)},
        # MLAAttentionSpec, storage 256 // 128 = 2 entries x 584 = 1,168 -> 1,728
        "c128a": {(256, None, 1_168, 1_728)},
        # DeepseekV4SWACache: block 64 x 584 = 37,376 -> 37,440, window = config sliding_window 128
        "swa": {(64, 128, 37_376, 37_440)},
        # CompressorStateCache, ratio 4 (coff 2): block 4 x (2 x 2 x 512) x 4 B = 32,768 -> 32,832, window 8
        "c4a_state": {(4, 8, 32_768, 32_832)},
        # the indexer's compressor (head 128): 4 x (2 x 2 x 128) x 4 = 8,192 -> 8,640
        "c4i_state": {(4, 8, 8_192, 8_640)},
        # ratio 128 (coff 1): block 8 x (2 x 512) x 4 = 32,768 -> 32,832, window 128
        "c128a_state": {(8, 128, 32_768, 32_832)},
    }
    # per token of context, the compressed caches with their padding: 37,440 / 256, 8,640 / 256, 1,728 / 256
    assert {c.kind: c.token_bytes for c in caches if c.window is None} == {"c4a": 146.25, "c4i": 33.75,
                                                                            "c128a": 6.75}


def test_unpadded_bytes_per_token_on_the_spec(flash):
    # 584 / 4 + 132 / 4 = 179 B on a ratio-4 layer, 584 / 128 = 4.5625 B on a ratio-128 layer
    assert flash.layers_kv[2].bytes_per_token(1.0) == 179.0
    assert flash.layers_kv[3].bytes_per_token(1.0) == 4.5625
    assert flash.layers_kv[0].bytes_per_token(1.0) == 0.0
    assert flash.kv_bytes_per_token() == 21 * 179 + 20 * 4.5625 == 3_850.25


def test_approximate_gcd_is_vllms():
    # V4-Flash: tuples per group [MLA 21 (most common page count), SWA 43, C4 states 21, C128 states 20]
    assert C.approximate_gcd([21, 43, 21, 20], 21) == 22       # padding 1 + 1 + 1 + 2 = 5 (d = 21: 20)
    assert C.approximate_gcd([4, 8], 4) == 4                   # d = 8 would pad 4
    assert C.approximate_gcd([6], 2) == 6                      # 2, 3 and 6 all pad 0: ties take the larger d
    assert C.approximate_gcd([3], 5) == 5                      # lower bound above the maximum


def test_five_groups_and_the_bytes_a_block_costs(flash):
    p = C.plan(flash.layers_kv, [(0, 43)])
    shape = [(g.block_size, g.window, len(g.caches), sorted(set(g.pages))) for g in p.groups]
    assert shape == [
        (256, None, 62, [1_728, 8_640, 37_440]),   # all MLAAttentionSpec caches: 21 C4A + 21 C4I + 20 C128A
        (64, 128, 22, [37_440]),                   # 43 sliding-window latents split into ceil(43 / 22) groups
        (64, 128, 21, [37_440]),
        (4, 8, 42, [8_640, 37_440]),               # C4 states, the 32,832 pages padded to the next MLA page
        (8, 128, 20, [37_440]),                    # C128 states, 32,832 -> 37,440
    ]
    # one block = 22 layer tuples x (37,440 + 8,640 + 1,728)
    assert p.stage_bytes_per_block == p.stage_check_bytes_per_block == (22 * 47_808,) == (1_051_776,)
    assert p.stage_token_bytes == (21 * 146.25 + 21 * 33.75 + 20 * 6.75,) == (3_915.0,)


def test_vllm_44376_log_is_reproduced(flash):
    """vllm#44376 (comment of 2026-06-03): DeepSeek-V4-Flash, TP2 on 2 x GH200, LLM(max_model_len=30_000,
    kv_cache_dtype="fp8", block_size=256, enable_prefix_caching=True) -> "ValueError: To serve at least one
    request with the model's max seq len (30000), (6.66 GiB KV cache is needed, which is larger than the
    available KV cache memory (5.44 GiB). Based on the available memory, the estimated maximum model length is
    13528."  max_num_batched_tokens: the LLM class default on a >= 70 GiB Hopper, 16,384."""
    row = next(r for r in csv.DictReader((ROOT / "tests/data/vllm_logs_2026.csv").open(newline=""))
               if r["row_id"] == "D01")
    assert (row["max_model_len"], row["block_size"], row["kv_cache_gib"], row["kv_cache_dtype"]) == \
        ("30000", "256", "5.44", "fp8") and "13528" in row["notes"] and "6.66 GiB" in row["notes"]
    p = C.plan(flash.layers_kv, [(0, 43)], int(row["block_size"]))
    f = 16_384
    # pages: MLA cdiv(30000, 256) = 118; sliding 2 x (cdiv(127 + 16384, 64) + 1) = 2 x 259;
    # C4 states cdiv(7 + 16384, 4) + 1 = 4,099; C128 states cdiv(127 + 16384, 8) + 1 = 2,065
    assert p.pages_per_request(30_000, f) == 118 + 2 * 259 + 4_099 + 2_065 == 6_800
    need = p.memory_needed(0, 30_000, f)
    assert need == 6_800 * 1_051_776 and round(need / GIB, 2) == 6.66
    lo, hi = p.memory_needed(0, 13_528, f), p.memory_needed(0, 13_529, f)
    assert round(lo / GIB, 2) == round((hi - 1) / GIB, 2) == 5.44      # every such budget logs "5.44 GiB"
    for avail in (lo, (lo + hi) // 2, hi - 1):
        assert p.max_model_len_fit([avail], f, 30_000) == 13_528


def test_a_million_token_context(flash):
    """max_position_embeddings 1,048,576: one sequence's pages at the server default 8,192 batched tokens."""
    p = C.plan(flash.layers_kv, [(0, 43)])
    m, f = 1_048_576, 8_192
    assert p.pages_per_request(m, f) == 4_096 + 2 * 131 + 2_051 + 1_041 == 7_450
    assert p.memory_needed(0, m, f) == 7_450 * 1_051_776 == 7_835_731_200        # 7.30 GiB a sequence
    # the pool: 70 GiB of KV memory holds 71,461 blocks -> 9.59 such sequences, "GPU KV cache size" 10.06 M
    nb = p.num_blocks([70 * GIB])
    assert nb == 70 * GIB // 1_051_776 == 71_461
    assert p.kv_cache_tokens(nb, m, f) == int(71_461 / 7_450 * m) == 10_058_025


def test_fp8_only_as_vllm_asserts():
    for d in ("fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla", "FP8"):
        assert C.resolve_kv_dtype(d) == "fp8_ds_mla"
    for d in ("auto", "bfloat16", "float16", "nvfp4"):
        with pytest.raises(C.UnsupportedLayout, match="DeepseekV4 only supports fp8 kv-cache format"):
            C.resolve_kv_dtype(d)


def test_block_size_must_give_whole_ratio_128_entries(flash):
    with pytest.raises(C.UnsupportedLayout, match="multiple of 128"):
        C.layer_caches(flash.layers_kv, 64)
    c128 = [c for c in C.layer_caches(flash.layers_kv, 128) if c.kind == "c128a"][0]
    assert (c128.raw_page, c128.page) == (584, 1_152)


def test_pipeline_stages_project_the_whole_model_groups(flash):
    """kv_cache_planning @fc23e695 _project_kv_cache_groups_to_worker: the groups are the whole model's; each
    stage keeps its layers of each group (a group with none keeps the whole-model spec)."""
    p = C.plan(flash.layers_kv, [(0, 22), (22, 43)])
    # stage 0 (layers 0-21): sliding sub-groups (even / odd layers) 11 + 11, C4 10, C128 10 -> 11 tuples;
    # stage 1 (22-42): sliding 11 + 10, C4 11, C128 10 -> 11 tuples; 11 x 47,808 each
    assert p.stage_bytes_per_block == p.stage_check_bytes_per_block == (525_888, 525_888)
    assert p.stage_token_bytes == (10 * 146.25 + 10 * 33.75 + 10 * 6.75, 11 * 180.0 + 10 * 6.75) == (1_867.5, 2_047.5)
    # a stage holding only the two sliding-only layers: its pool block is one tuple (47,808 B, page sizes of the
    # whole model's MLA group), but the start-up check charges the empty groups' whole-model 21 tuples
    p = C.plan(flash.layers_kv, [(0, 2), (2, 43)])
    assert p.stage_bytes_per_block == (47_808, 1_003_968) and p.stage_check_bytes_per_block == (1_003_968,) * 2
    assert p.stage_token_bytes == (0, 3_915.0)


# ---- the matrix cells (exprs.compressed_lens, kvcache._compressed_groups) ----

def _cells(spec, mem=94.5, **kw):
    from reportgen.job import Matrix
    from reportgen.matrix import GpuLike, ModelEntry, evaluate_matrix_lazy

    base = dict(tp=[2], pp=[1], dp=[1], ep=[True], weight_dtype=["checkpoint"], kv_cache_dtype=["fp8"],
                max_model_len=[30_000], concurrency=[1], gpu_memory_utilization=[0.95], max_num_batched_tokens=16_384,
                block_size=256, max_nodes=64, allow_cross_node_tp=True)
    base.update(kw)
    gpu = GpuLike(id="gh200", name="GH200", usable_memory_gib=mem)
    return evaluate_matrix_lazy([ModelEntry("deepseek-ai/DeepSeek-V4-Flash", spec)], [gpu], Matrix(**base)).collect()


def test_d01_cell_with_vllms_logged_kv_memory(flash):
    """vllm#44376 (row D01) with the KV memory fixed at what the log reports available: the cell is vLLM's
    failed start, its reason carries vLLM's estimate 13,528, and one request needs 6.66 GiB.  The pool block is
    1,051,776 B; available = memory_needed(13,528) = 5,554 x 1,051,776 B (any budget up to the next length's
    logs "5.44 GiB")."""
    avail = 5_554 * 1_051_776
    df = _cells(flash, kv_cache_memory_bytes=avail)
    r = df.row(0, named=True)
    assert r["status"] == "no_fit" and "the largest max_model_len that fits is 13528" in r["reason"]
    assert r["max_model_len_fit"] == 13_528
    assert r["kv_needed_gib"] * GIB == pytest.approx(6_800 * 1_051_776) and round(r["kv_needed_gib"], 2) == 6.66
    # "GPU KV cache size" = max_concurrency x max_model_len = 5,554 / 6,800 x 30,000
    assert r["max_concurrency"] == pytest.approx(5_554 / 6_800)
    assert r["kv_cache_tokens"] == int(5_554 / 6_800 * 30_000) == 24_502
    assert r["block_size"] == 256


def test_million_token_context_cell(flash):
    """1,048,576 tokens at 8,192 batched tokens on a fixed 70 GiB KV pool: 71,461 blocks, 7,450 a request
    (test_a_million_token_context), 9.59 requests, "GPU KV cache size" 10,058,025; 8 concurrent fit, 16 do not."""
    df = _cells(flash, 139.8, tp=[8], max_model_len=[1_048_576], concurrency=[8, 16], max_num_batched_tokens=8_192,
                kv_cache_memory_bytes=70 * GIB)     # no --block-size: DeepSeek-V4 takes 256
    a, b = df.row(0, named=True), df.row(1, named=True)
    assert a["block_size"] == 256
    assert a["max_concurrency"] == pytest.approx(71_461 / 7_450)
    assert a["kv_cache_tokens"] == 10_058_025
    assert a["max_model_len_fit"] == 1_048_576                      # the model's limit (max_position_embeddings)
    assert a["kv_needed_gib"] * GIB == pytest.approx(8 * 7_450 * 1_051_776)
    assert a["status"] in ("fits", "tight") and b["status"] == "no_fit" and "concurrency" in b["reason"]


def _moe_ws(t, moe_tp):
    """overheads.MOE_WS x T x topk x (3 x I / moe_tp + h) x 2 (bf16): V4-Flash's fused-MoE workspaces, in the
    activation figure (``a_add_t``) and, since vLLM 0.14, in the shared ``WorkspaceManager`` buffer."""
    from reportgen.estimate import overheads as oh
    return oh.MOE_WS * t * 6 * (3 * 2_048 / moe_tp + 4_096) * 2


def test_prefill_workspace_grows_with_max_model_len(flash):
    """The profile run's shared workspace (workspace.py ``get_simultaneous``: one buffer, grown to the largest
    request) on the FlashMLA path: deepseek_v4_attention.py @0a291a2e reserves PREFILL_CHUNK_SIZE (4) x
    (cdiv(M, 4) + window (128) + T) x 512 bf16 = 4,096 B a row; the lightning indexer (sparse_attn_indexer.py
    @006475fe) reserves ``40 x M // 4`` rows of 128 fp8 + 4 scale bytes (each rounded up to 256 B) and the
    1 MiB radix scratch (mla/indexer.py @0023368d: ``max_model_len * 40``); the fused-MoE workspaces (the modular
    kernel's, from the same buffer) are the third request.  At M = 30,000, T = 16,384 the gather is
    4,096 x 24,012 = 98,353,152 B and the indexer 38,400,000 + 1,200,128 + 1 MiB = 40,648,704 B; at 1,048,576 the
    indexer 10,485,760 x 132 + 1,048,576 = 1,385,168,896 B beats the gather's 4,096 x 278,656 = 1,141,374,976 B.
    TP 8 without EP at T = 4,096: MoE 0.768 x 4,096 x 6 x (768 + 4,096) x 2 = 183.6 MB, above both at 30,000
    (gather 4,096 x 11,724): the buffer is the MoE's there, the indexer's at 1M; the KV memory loses the
    difference and the activation gains it; the blocks follow."""
    assert C.profile_workspace_bytes(30_000, 16_384, 4, 128, 512, 128, False) == 4_096 * 24_012 == 98_353_152
    assert C.indexer_workspace_bytes(30_000, 128) == 38_400_000 + 1_200_128 + 1_048_576 == 40_648_704
    big = C.profile_workspace_bytes(1_048_576, 16_384, 4, 128, 512, 128, False)
    assert big == C.indexer_workspace_bytes(1_048_576, 128) == 1_385_168_896 > 4_096 * 278_656
    moe = _moe_ws(4_096, 8)
    assert moe == pytest.approx(183_609_851.9, abs=0.1)
    assert C.profile_workspace_bytes(30_000, 4_096, 4, 128, 512, 128, False, moe) == moe > 4_096 * 11_724
    df = _cells(flash, tp=[8], ep=[False], max_model_len=[30_000, 1_048_576], max_num_batched_tokens=4_096)
    a, b = df.row(0, named=True), df.row(1, named=True)
    ws = 1_385_168_896 - moe
    assert (a["kv_cache_gib"] - b["kv_cache_gib"]) * GIB == pytest.approx(ws, abs=1)
    assert (b["activation_gib"] - a["activation_gib"]) * GIB == pytest.approx(ws, abs=1)
    # blocks = floor(KV bytes / 1,051,776): tokens = blocks / pages a request x M (the 0.27+ per-group sum)
    nb_a, nb_b = int(a["kv_cache_gib"] * GIB // 1_051_776), int(b["kv_cache_gib"] * GIB // 1_051_776)
    assert a["kv_cache_tokens"] == int(nb_a / (118 + 2 * 67 + 1_027 + 529) * 30_000)
    assert b["kv_cache_tokens"] == int(nb_b / (4_096 + 2 * 67 + 1_027 + 529) * 1_048_576)


@dataclass(frozen=True)
class _CcGpu(GpuLike):
    compute_capability: tuple[int, int] | None = None


def test_sm12_reserves_flashinfers_workspace_and_the_indexers_not_the_gather(flash):
    """On SM 12.x vLLM runs FlashInfer's SM120 sparse MLA (flashinfer_sparse.py: the dummy run's
    ``_reserve_empty_forward_workspace`` allocates ``_FLASHINFER_DSV4_WORKSPACE_BUFFER_SIZE = 128 * 1024 * 1024``;
    no bf16 gather), so the profile run holds max(indexer K gather, MoE) + 128 MiB at every length:
    TP 8, EP, T 4,096 (MoE 0.768 x 4,096 x 6 x 10,240 x 2 = 386.5 MB): 30,000: the MoE's + 134,217,728 B (the
    Hopper buffer is the MoE's too); 1,048,576: 1,385,168,896 + 134,217,728 B against Hopper's 1,385,168,896 B.
    The GPU's capability is each GPU's own (``ModelTables.mxfp4_variant``'s third item; mixed jobs:
    ``test_sm12_workspace_follows_each_gpu_in_a_mixed_job``)."""
    from reportgen.job import Matrix
    from reportgen.matrix import ModelEntry, evaluate_matrix_lazy

    moe = _moe_ws(4_096, 1)
    assert C.profile_workspace_bytes(30_000, 4_096, 4, 128, 512, 128, True, moe) == moe + 134_217_728
    assert C.profile_workspace_bytes(1_048_576, 4_096, 4, 128, 512, 128, True, moe) == 1_385_168_896 + 134_217_728

    def cells(cc):
        m = Matrix(tp=[8], pp=[1], dp=[1], ep=[True], weight_dtype=["checkpoint"], kv_cache_dtype=["fp8"],
                   max_model_len=[30_000, 1_048_576], concurrency=[1], gpu_memory_utilization=[0.95],
                   max_num_batched_tokens=4_096, block_size=256, max_nodes=64, allow_cross_node_tp=True,
                   vllm_version="0.25")
        gpu = _CcGpu(id="g", name="G", usable_memory_gib=94.5, compute_capability=cc)
        return evaluate_matrix_lazy([ModelEntry("deepseek-ai/DeepSeek-V4-Flash", flash)], [gpu], m).collect()

    hopper, sm12 = cells((9, 0)), cells((12, 0))
    for i, extra in ((0, 134_217_728), (1, 134_217_728)):
        h, s = hopper.row(i, named=True), sm12.row(i, named=True)
        assert (s["activation_gib"] - h["activation_gib"]) * GIB == pytest.approx(extra, abs=1)
        # (the expert layout differs too: MXFP4 Triton on SM 9.0, the checkpoint's on SM 12.0 -- weights apart)
        kv_h, kv_s = h["kv_cache_gib"] + h["weights_gib"], s["kv_cache_gib"] + s["weights_gib"]
        assert (kv_h - kv_s) * GIB == pytest.approx(extra, abs=1)


def test_sm12_workspace_follows_each_gpu_in_a_mixed_job(flash):
    """One job of SM 9.0, SM 10.0, SM 12.0 and a GPU of unknown capability: each GPU's cells are its one-GPU
    job's, bit for bit (headroom_pct too: test_mxfp4_backend._same_cells); SM 10.0 and SM 12.0 share
    DeepGemmFP4Experts' expert layout (the same weights) but not the attention workspace (FlashMLA's gather
    vs FlashInfer's 128 MiB beside the shared buffer), and the unknown GPU keeps the H100 default."""
    import numpy as np

    from reportgen.job import Matrix
    from reportgen.matrix import ModelEntry, evaluate_matrix
    from test_matrix_batches import assert_same_bits

    m = Matrix(tp=[2, 8], pp=[1], dp=[1], ep=[True], weight_dtype=["checkpoint", "fp8"], kv_cache_dtype=["fp8"],
               max_model_len=[30_000, 1_048_576], concurrency=[1], gpu_memory_utilization=[0.95],
               max_num_batched_tokens=4_096, block_size=256, max_nodes=64, allow_cross_node_tp=True,
               vllm_version="0.25")
    gpus = [_CcGpu(id=f"g{i}", name=f"G{i}", usable_memory_gib=94.5, compute_capability=cc)
            for i, cc in enumerate(((9, 0), (10, 0), (12, 0), None))]
    ents = [ModelEntry("deepseek-ai/DeepSeek-V4-Flash", flash)]
    whole = evaluate_matrix(ents, gpus, m)
    alone = {}
    for g in gpus:
        one = alone[g.id] = evaluate_matrix(ents, [g], m)
        got = whole.filter(pl.col("gpu") == g.id)
        assert one.height * len(gpus) == whole.height
        assert_same_bits(got, one)
        assert (got["headroom_pct"].drop_nulls() == one["headroom_pct"].drop_nulls()).all()
    ok = alone["g1"]["status"].is_in(["fits", "tight"]).to_numpy()
    assert ok.any()
    sm10, sm12 = alone["g1"].filter(ok), alone["g2"].filter(ok)
    assert sm10["weights_gib"].to_list() == sm12["weights_gib"].to_list()
    np.testing.assert_allclose((sm12["activation_gib"] - sm10["activation_gib"]).to_numpy() * GIB, 134_217_728,
                               atol=1)
    assert_same_bits(alone["g3"].drop("gpu", "gpu_name"), alone["g0"].drop("gpu", "gpu_name"))


def test_vllm_025_logs_the_legacy_concurrency_row_156(flash):
    """vLLM <= 0.25 logs DeepSeek-V4's concurrency as ``num_blocks / cdiv(sum of every group's pages x its
    aggregated page bytes, group 0's aggregated page bytes)`` (vllm#48317, opened 2026-07-11 against main
    425c4eaf, describes and replaces it; kv_cache_interface ``UniformTypeKVCacheSpecs.page_size_bytes`` = the sum of
    its layers' pages, ``max_memory_usage_bytes`` = max pages x that).  V4-Flash + its MTP layer, 1M context,
    4,096 batched tokens (row 156): group pages 4,096 / 67 / 67 / 1,027 / 529 and aggregated page bytes
    1,002,240 (21 x 8,640 + 21 x 37,440 + 20 x 1,728) / 22 x 37,440 (twice) / 21 x (37,440 + 8,640) /
    20 x 37,440: cdiv(5,605,470,720, 1,002,240) = 5,593 where the per-group sum is 5,786.  At the logged
    10.29 GiB (10,504 blocks of 1,051,776 B) that is 1.878x / 1,969,290 tokens against vLLM's 1.90x /
    1,993,100 (-1.2 %; the per-group sum gives 1.815x, -4.5 %)."""
    from reportgen.estimate.specdecode import parse_speculative_config, resolve

    d = resolve(flash, parse_speculative_config({"method": "mtp", "num_speculative_tokens": 2}))
    layers = list(flash.layers_kv) + list(d.layers_kv)
    p = C.plan(layers, [(0, len(layers))])
    m, t = 1_048_576, 4_096
    assert [g.pages_per_request(m, t) for g in p.groups] == [4_096, 67, 67, 1_027, 529]
    assert [sum(g.pages) for g in p.groups] == [1_002_240, 22 * 37_440, 22 * 37_440, 21 * (37_440 + 8_640),
                                               20 * 37_440]
    assert p.legacy_pages_per_request(m, t) == -(-5_605_470_720 // 1_002_240) == 5_593
    assert p.pages_per_request(m, t) == 5_786
    nb = int(10.29 * GIB) // 1_051_776
    assert nb == 10_504 and int(nb / 5_593 * m) == 1_969_290 and round(nb / 5_593, 2) == 1.88
    # the matrix at vLLM 0.25 on the logged KV memory: the same figure; the per-group sum from 0.27 (vllm 0.26.0
    # sdist v1/core/kv_cache_utils.py:937-955 still the legacy form, 0.27.0 sdist :937-959 the sum; branch versionaudit)
    for version, bpr in (("0.25", 5_593), ("0.26", 5_593), ("0.27", 5_786)):
        df = _cells(flash, tp=[2], max_model_len=[m], max_num_batched_tokens=t, vllm_version=version,
                    kv_cache_memory_bytes=nb * 1_051_776,
                    speculative_config={"method": "mtp", "num_speculative_tokens": 2})
        r = df.row(0, named=True)
        assert r["max_concurrency"] == pytest.approx(nb / bpr)
        assert r["kv_cache_tokens"] == int(nb / bpr * m)


def test_non_fp8_kv_is_an_invalid_cell_and_pp_stage_without_compressed_layers_unsupported(flash):
    df = _cells(flash, kv_cache_dtype=["auto", "bfloat16"])
    assert df["status"].to_list() == ["invalid_layout"] * 2
    assert all("DeepseekV4 only supports fp8 kv-cache format" in r for r in df["reason"])
    # pp 22: stage 0 holds layers 0-1 (sliding only) -> vLLM's check charges other bytes than its pool block
    df = _cells(flash, pp=[22], tp=[1])
    assert df["status"][0] == "unsupported" and "not modelled" in df["reason"][0]


@settings(max_examples=200, deadline=None)
@given(nb=st.integers(0, 80_000), t=st.sampled_from([512, 2_048, 8_192, 16_384]), m=st.integers(1, 1_048_576),
       cap=st.sampled_from([30_000, 1_048_576, 2**31 - 1]))
def test_vectorised_fit_and_blocks_match_the_planner(nb, t, m, cap):
    """exprs.compressed_lens' binary search and extra_slides against compressed.Plan (vLLM's arithmetic)."""
    import polars as pl

    from reportgen.estimate import exprs as ex
    from reportgen.estimate.kvcache import kv_groups, max_model_len_fit_scalar

    spec = _FLASH_SPEC
    g = kv_groups(spec, 1, 1, "fp8", 1, 256)
    p = C.plan(spec.layers_kv, [(0, 43)])
    cols = {k: [getattr(g, k)] for k in ("n_full", "bs_full", "n_slide", "window", "bs_slide", "n_chunk", "chunk",
                                         "bs_chunk", "n_state", "state_blocks", "n_slide2", "window2", "bs_slide2",
                                         "n_slide3", "window3", "bs_slide3", "tok_conc", "ws_b")}
    f = pl.DataFrame({**cols, "_nbv": [nb], "max_num_batched_tokens": [t], "max_model_len": [m], "max_pos": [cap],
                      "dp": [1], "kv_cache_gib": [1.0], "activation_gib": [1.0], "_wsr": [4], "max_model_len_fit": [0],
                      "kv_cache_tokens": [0], "max_concurrency": [0.0]}, schema_overrides={"max_pos": pl.Int64, "_nbv": pl.Int64}).lazy()
    before, after = ex.compressed_lens(1, fixed_kv=True)
    f = f.with_columns(ex.blocks_per_request(pl.col("max_model_len"), pl.col("max_num_batched_tokens")).alias("_bpr"))
    for b in before + after:
        f = f.with_columns(b)
    r = f.collect().row(0, named=True)
    assert r["_bpr"] == p.pages_per_request(m, t) == g.blocks_per_request(m, t)
    want = max_model_len_fit_scalar(g, nb, t, cap)
    assert r["max_model_len_fit"] == want
    if nb and want:
        assert want == p.max_model_len_fit([nb * p.stage_bytes_per_block[0]], t, cap)
    assert r["kv_cache_tokens"] == int(nb / p.pages_per_request(m, t) * m)


def test_deepseek_v4_runs_apart_and_job_order_is_kept(flash):
    """matrix._kind_runs: DeepSeek-V4 is evaluated in runs of its own (its per-length search never runs on other
    models' rows); the rows still come out in job order, and a dense model's cells are the same as alone."""
    from reportgen.job import Matrix
    from reportgen.matrix import GpuLike, ModelEntry, _kind_runs, evaluate_matrix

    llama = build_spec(json.loads((ROOT / "reportgen/sources/bundled/meta-llama--Llama-3.1-8B-Instruct.json")
                                  .read_text()))
    models = [ModelEntry("a", llama), ModelEntry("dsv4", flash), ModelEntry("b", llama)]
    assert [[m.model for m in r] for r in _kind_runs(models)] == [["a"], ["dsv4"], ["b"]]
    mx = Matrix(tp=[8], pp=[1], dp=[1], ep=[True], weight_dtype=["checkpoint"], kv_cache_dtype=["fp8"],
                max_model_len=[32_768], concurrency=[1], gpu_memory_utilization=[0.9])
    gpu = [GpuLike(id="h200", name="H200", usable_memory_gib=139.8)]
    df = evaluate_matrix(models, gpu, mx)
    assert df["model"].to_list() == ["a", "dsv4", "b"]
    alone = evaluate_matrix([models[0]], gpu, mx)
    assert df.row(0) == alone.row(0)
    assert df.row(1, named=True)["status"] in ("fits", "tight") and df.row(1, named=True)["block_size"] == 256


def test_a_per_model_kv_axis_prices_deepseek_v4_beside_auto_models(flash):
    """A job ``models`` entry ``{id = ..., kv_cache_dtype = ["fp8"]}`` (ModelEntry.kv_cache_dtype) replaces the
    matrix's KV axis for that model only: DeepSeek-V4 is priced at fp8 (fp8_ds_mla) while SmolLM3 keeps ``auto``
    (bf16); the counts follow each model's own axis (Matrix.n_cells_per_model_gpu, matrix._chunks)."""
    from reportgen.job import Matrix
    from reportgen.matrix import GpuLike, ModelEntry, _chunks, cells_per_model_gpu, evaluate_matrix

    smol = build_spec(json.loads((ROOT / "tests/data/configs_2026/HuggingFaceTB--SmolLM3-3B.json").read_text()))
    mx = Matrix(tp=[4, 8], weight_dtype=["checkpoint"], kv_cache_dtype=["auto", "bf16"], max_model_len=[8_192],
                concurrency=[1, 32])
    dsv4 = ModelEntry("deepseek-ai/DeepSeek-V4-Flash", flash, kv_cache_dtype=("fp8",))
    plain = ModelEntry("HuggingFaceTB/SmolLM3-3B", smol)
    gpus = [GpuLike(id="h200", name="H200", usable_memory_gib=139.8), GpuLike(id="b200", name="B200",
                                                                               usable_memory_gib=178.4)]
    assert cells_per_model_gpu(dsv4, mx) == 2 * 1 * 1 * 2 and cells_per_model_gpu(plain, mx) == 2 * 2 * 2
    df = evaluate_matrix([plain, dsv4], gpus, mx)
    assert df.height == 2 * (4 + 8)
    d = df.filter(pl.col("model") == "deepseek-ai/DeepSeek-V4-Flash")
    assert d.height == 8 and set(d["kv_cache_dtype"]) == {"fp8"} and set(d["kv_cache_dtype_used"]) == {"fp8_ds_mla"}
    assert "invalid_layout" not in set(d["status"]) and d["kv_cache_tokens"].min() > 0
    assert d.filter((pl.col("tp") == 8) & (pl.col("concurrency") == 1))["status"].to_list() == ["fits"] * 2
    s = df.filter(pl.col("model") == "HuggingFaceTB/SmolLM3-3B")
    assert s.height == 16 and set(s["kv_cache_dtype"]) == {"auto", "bf16"} and set(s["kv_cache_dtype_used"]) == {"bfloat16"}
    # chunks count the largest model's own axis (8 cells a GPU): 16 cells hold one model on both GPUs,
    # 8 split it by GPU
    assert [(len(m), len(g)) for m, g in _chunks([plain, dsv4], gpus, mx, 16)] == [(1, 2), (1, 2)]
    assert [(len(m), len(g)) for m, g in _chunks([plain, dsv4], gpus, mx, 8)] == [(1, 1)] * 4
