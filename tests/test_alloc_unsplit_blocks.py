"""The caching allocator's unsplit blocks in vLLM's "Model loading took" (issue 10, branch load29).

"Model loading took" is ``torch.cuda.max_memory_allocated`` read right after ``reset_peak_memory_stats``
(vllm 0.29.0 sdist platforms/cuda.py:355-360; 0.11.0 platforms/cuda.py:206-211), diffed around ``load_model`` by
``DeviceMemoryProfiler`` (0.29.0 utils/mem_utils.py:86-105): the allocator's *block* bytes then live (c10
CUDACachingAllocator ``alloc_found_block``: ``allocated_bytes.increase(block->size)``), not a transient peak.
A request of >= 10 MiB (``kMinLargeAlloc``) gets a new segment rounded to 2 MiB (``get_allocation_size``:
``kRoundLarge``); ``should_split`` splits the block only when ``size < max_split_size()`` and the remainder is over
1 MiB (``kSmallSize``).  vLLM 0.21.0+ loads the model under ``max_split_size_mb=20`` (0.29.0
v1/worker/gpu_worker.py:493 ``self._scoped_allocator_max_split(max_split_size_mb=20)``; absent from 0.20.2), so each
parameter of >= 20 MiB keeps its whole rounded block.  Every number below is hand-derived from the model geometry.

Run: ``HF_HUB_OFFLINE=1 PYTHONPATH=$PWD python -m pytest -q tests/test_alloc_unsplit_blocks.py``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reportgen.arch import build_spec  # noqa: E402
from reportgen.estimate import quant  # noqa: E402
from reportgen.estimate.layout import Layout  # noqa: E402
from reportgen.estimate.weights import allocator_unsplit_bytes, unsplit_block_extra  # noqa: E402

MiB = 2**20
GIB = 2**30
BF16 = quant.whatif_scheme("bf16")
SRC = Path("/work/vllm_src")
CONFIGS = ROOT / "tests" / "data" / "configs_profiles"
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"


def _spec(path: Path):
    return build_spec(json.loads(path.read_text()), path.stem.replace("--", "/"))


def test_block_rule_by_hand():
    # Qwen3-4B gate_up 2 x 9728 x 2560 x 2 B = 95 MiB: segment 96 MiB, remainder 1 MiB -> never split (either rule)
    assert 2 * 9728 * 2560 * 2 == 95 * MiB
    assert unsplit_block_extra(95 * MiB, True) == unsplit_block_extra(95 * MiB, False) == 1 * MiB
    # Qwen2.5-1.5B gate_up 2 x 8960 x 1536 x 2 B = 52.5 MiB: segment 54 MiB, remainder 1.5 MiB -> split before 0.21,
    # kept whole under max_split_size 20 MiB
    assert 2 * 8960 * 1536 * 2 == 52.5 * MiB
    assert unsplit_block_extra(52.5 * MiB, False) == 0 and unsplit_block_extra(52.5 * MiB, True) == 1.5 * MiB
    # Qwen2.5-1.5B q/k/v fused: (1536 + 2 x 256) x 1536 x 2 B = 6 MiB < 10 MiB: a 20 MiB segment, split
    assert unsplit_block_extra((1536 + 512) * 1536 * 2, True) == 0
    # 10-20 MiB: rounded segment, kept whole only when the remainder is <= 1 MiB (12.5 -> 14: split; 13.5 -> 14: kept)
    assert unsplit_block_extra(12.5 * MiB, True) == 0 and unsplit_block_extra(13.5 * MiB, True) == 0.5 * MiB
    # a 2 MiB multiple costs nothing (Llama-3.1-8B, Qwen3-14B)
    assert unsplit_block_extra(224 * MiB, True) == 0


def test_qwen25_15b_by_hand():
    """28 layers x (gate_up 52.5 -> 54 + down 1536 x 8960 x 2 = 26.25 -> 28 MiB) + the tied embedding
    151,936 x 1,536 x 2 = 445.125 -> 446 MiB (the lm_head vLLM builds is tied away, vocab_parallel_embedding.py
    tie_weights): 91.875 MiB at 0.30; before 0.21 only the embedding's 0.875 MiB remainder stays unsplit."""
    spec = _spec(CONFIGS / "Qwen--Qwen2.5-1.5B-Instruct.json")
    assert allocator_unsplit_bytes(spec, BF16, Layout(1, 1, 1, False), (0, 30, 0)) == [28 * 3.25 * MiB + 0.875 * MiB]
    assert allocator_unsplit_bytes(spec, BF16, Layout(1, 1, 1, False), (0, 19, 0)) == [0.875 * MiB]


def test_qwen3_4b_and_14b_by_hand():
    """Qwen3-4B: 36 x (gate_up 95 -> 96, down 47.5 -> 48) + embedding 741.875 -> 742 MiB = 54.125 MiB.
    Qwen3-14B: every decoder tensor a 2 MiB multiple (qkv 70, o 50, gate_up 340, down 170 MiB); embedding and
    lm_head 151,936 x 5,120 x 2 = 1,483.75 MiB each -> 0.25 + 0.25 MiB (row 161's weights stay exact)."""
    q4 = _spec(BUNDLED / "Qwen--Qwen3-4B.json")
    assert allocator_unsplit_bytes(q4, BF16, Layout(1, 1, 1, False), (0, 29, 0)) == [36 * 1.5 * MiB + 0.125 * MiB]
    q14 = _spec(CONFIGS / "Qwen--Qwen3-14B.json")
    assert allocator_unsplit_bytes(q14, BF16, Layout(1, 1, 1, False), (0, 29, 0)) == [0.5 * MiB]


def test_qwen25_7b_before_021_and_tp():
    """Qwen2.5-7B, 0.19 (no max_split): qkv (3584 + 1024) x 3584 x 2 = 31.5 -> 32 (kept), o 24.5 -> 26 (split),
    gate_up 259 -> 260 (kept), down 129.5 -> 130 (kept) = 2 MiB a layer x 28 + embedding / lm_head 152,064 x 3,584 x 2
    = 1,039.5 -> 1,040 MiB each: 57 MiB -- the logged 14.25 GiB against 14.19 of tensors (rows 126-133).  0.22: o kept
    too (+1.5 x 28): 99 MiB (row 143: 14.29 logged).  TP 2 at 0.19: qkv (1792 + 2 x 256) x 3584 x 2 = 15.75 -> 16
    (kept), o 12.25 -> 14 (split), gate_up 129.5 -> 130 (kept), down 64.75 -> 66 (split); vocab halves 519.75 -> 520
    (kept): 28 x 0.75 + 0.5 = 21.5 MiB (row 134: 7.10 -> 7.12 GiB, logged 7.12)."""
    spec = _spec(BUNDLED / "Qwen--Qwen2.5-7B-Instruct.json")
    assert allocator_unsplit_bytes(spec, BF16, Layout(1, 1, 1, False), (0, 19, 0)) == [57 * MiB]
    assert allocator_unsplit_bytes(spec, BF16, Layout(1, 1, 1, False), (0, 22, 0)) == [99 * MiB]
    assert allocator_unsplit_bytes(spec, BF16, Layout(2, 1, 1, False), (0, 19, 0)) == [28 * 0.75 * MiB + 0.5 * MiB]


# --- quantized schemes (branch quantalloc): each layer's final parts after process_weights_after_loading --------
# Qwen3-14B: hidden K = 5,120, q 40 x 128 = 5,120, k / v 8 x 128 = 1,024 each (qkv N = 7,168), intermediate
# 17,408 (gate_up N = 34,816), 40 layers, vocabulary 151,936 (a multiple of 64: no padding), head untied.
FP8 = quant.whatif_scheme("fp8")      # Fp8("channel"): the compressed-tensors W8A8 channel layout of row 159
INT4 = quant.whatif_scheme("int4")    # IntGroup(4, 128, zero points, "awq"): the Qwen3-14B-AWQ layout of rows 162/163
EMB14 = 151_936 * 5_120 * 2           # the bf16 embedding / lm_head: 1,483.75 MiB -> 1,484 (+0.25), kept either rule


def test_awq_qwen3_14b_by_hand():
    """AWQ 4-bit via Marlin (vllm 0.29.0 sdist, auto_awq.py:113-139 repacks qweight (K, N/8) -> (K/8, N) int32,
    kernels/linear/mixed_precision/marlin.py:127-140 ``gptq_marlin_repack`` -> (K/16, 2N) int32): the final packed
    weight is a fresh K x N / 2 bytes.  qkv 5,120 x 7,168 / 2 = 17.5 MiB -> 18 (remainder 0.5: kept), o 12.5 -> 14
    (remainder 1.5, < 20 MiB: split), gate_up 5,120 x 34,816 / 2 = 85 -> 86 (+1), down 17,408 x 5,120 / 2 = 42.5 ->
    44 (+1.5, >= 20 MiB: kept at 0.21+); scales (40, N) fp16 and zeros (40, N/8) int32 under 10 MiB.
    0.29: 40 x 3 + 0.5 = 120.5 MiB (docs/decisions.md, branch load29's by-hand figure for rows 162 / 163);
    0.19 (no max_split): down's 1.5 MiB remainder is split: 40 x 1.5 + 0.5 = 60.5 MiB."""
    spec = _spec(CONFIGS / "Qwen--Qwen3-14B.json")
    assert 5_120 * 7_168 // 2 == 17.5 * MiB and 5_120 * 34_816 // 2 == 85 * MiB and 17_408 * 5_120 // 2 == 42.5 * MiB
    assert EMB14 == 1_483.75 * MiB
    assert allocator_unsplit_bytes(spec, INT4, Layout(1, 1, 1, False), (0, 29, 0)) == [120.5 * MiB]
    assert allocator_unsplit_bytes(spec, INT4, Layout(1, 1, 1, False), (0, 19, 0)) == [60.5 * MiB]


def test_fp8_channel_qwen3_14b_by_hand_tp1_and_tp2():
    """fp8 per channel (vllm 0.30.0 sdist, compressed_tensors_w8a8_fp8.py:157-179: the loaded (N, K) fp8 weight is
    kept, transposed as a view; the (N, 1) fp32 scale is small).  TP 1, 0.30: qkv 7,168 x 5,120 = 35 MiB -> 36,
    o 25 -> 26, gate_up 170 (even), down 85 -> 86: 40 x 3 + 0.5 = 120.5 MiB (row 159: 15.22 -> 15.34 GiB, logged
    15.34).  TP 2, 0.30: qkv (2,560 + 2 x 512) x 5,120 = 17.5 -> 18 (+0.5), o 5,120 x 2,560 = 12.5 (split), gate_up
    85 -> 86 (+1), down 5,120 x 8,704 = 42.5 -> 44 (+1.5); the vocabulary halves 75,968 x 5,120 x 2 = 741.875 ->
    742 MiB (+0.125 each): 40 x 3 + 0.25 = 120.25 MiB."""
    spec = _spec(CONFIGS / "Qwen--Qwen3-14B.json")
    assert 7_168 * 5_120 == 35 * MiB and 34_816 * 5_120 == 170 * MiB and 5_120 * 17_408 == 85 * MiB
    assert allocator_unsplit_bytes(spec, FP8, Layout(1, 1, 1, False), (0, 30, 0)) == [120.5 * MiB]
    assert (2_560 + 1_024) * 5_120 == 17.5 * MiB and 75_968 * 5_120 * 2 == 741.875 * MiB
    assert allocator_unsplit_bytes(spec, FP8, Layout(2, 1, 1, False), (0, 30, 0)) == [120.25 * MiB]
    # PP 2: layers 0-19 + the embedding on stage 0, 20-39 + lm_head on stage 1
    assert allocator_unsplit_bytes(spec, FP8, Layout(1, 2, 1, False), (0, 30, 0)) == [60.25 * MiB, 60.25 * MiB]


def test_fp8_qwen25_7b_before_021_by_hand():
    """Row 89 (RedHatAI Qwen2.5-7B-Instruct-fp8-dynamic, 0.19.0: no max_split): qkv (3,584 + 1,024) x 3,584 =
    15.75 -> 16 (+0.25, kept), o 12.25 -> 14 (split), gate_up 2 x 18,944 x 3,584 = 129.5 -> 130 (+0.5, kept), down
    64.75 -> 66 (split); embedding / lm_head 152,064 x 3,584 x 2 = 1,039.5 -> 1,040 (+0.5 each): 28 x 0.75 + 1 =
    22 MiB -- 8.12 -> 8.14 GiB, the logged 8.14."""
    spec = _spec(BUNDLED / "Qwen--Qwen2.5-7B-Instruct.json")
    assert (3_584 + 1_024) * 3_584 == 15.75 * MiB and 2 * 18_944 * 3_584 == 129.5 * MiB
    assert allocator_unsplit_bytes(spec, FP8, Layout(1, 1, 1, False), (0, 19, 0)) == [22 * MiB]


def test_mxfp4_experts_not_priced_bf16_rest_is():
    """gpt-oss-20b: the MXFP4 experts are re-tiled per rank by the MoE backend (``Scheme.moe_padding``): not priced.
    The bf16 rest is: qkv (4,096 + 2 x 512) x 2,880 x 2 = 28.125 -> 30 MiB (+1.875), o 2,880 x 4,096 x 2 = 22.5 ->
    24 (+1.5), 24 layers; embedding and lm_head 201,088 x 2,880 x 2 = 1,104.609375 -> 1,106 MiB (+1.390625 each):
    83.78125 MiB at 0.30 (row 160: 13.70 -> 13.78 GiB, logged 13.80)."""
    from reportgen.estimate.tables import scheme_for

    spec = _spec(BUNDLED / "openai--gpt-oss-20b.json")
    scheme = scheme_for(spec, "checkpoint", "auto", None)
    assert scheme.moe_padding is not None
    assert (4_096 + 1_024) * 2_880 * 2 == 28.125 * MiB and 201_088 * 2_880 * 2 == 1_104.609375 * MiB
    assert allocator_unsplit_bytes(spec, scheme, Layout(1, 1, 1, False), (0, 30, 0)) == [
        24 * (1.875 + 1.5) * MiB + 2 * 1.390625 * MiB]


def test_expandable_segments_hold_no_rounded_block():
    """``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True`` (row 170's command): c10 ``should_split`` returns
    ``remaining >= kMinBlockSize`` for every block then -- nothing stays rounded."""
    spec = _spec(CONFIGS / "Qwen--Qwen3-14B.json")
    assert allocator_unsplit_bytes(spec, FP8, Layout(1, 1, 1, False), (0, 30, 0), None, True) == [0.0]
    assert allocator_unsplit_bytes(spec, BF16, Layout(1, 1, 1, False), (0, 30, 0), None, True) == [0.0]


@pytest.fixture(scope="module")
def scored():
    from scripts import validate_vllm_logs as vvl

    rows = {r["row_id"]: r for r in vvl.load_rows(vvl.CSV)}
    out = {}
    for rid in ("126", "143", "161", "180", "184", "33", "89", "159", "162"):
        case = vvl.make_case(rows[rid])
        out[rid] = vvl.compare(case, vvl.predict(case))
    return out


def test_rows_reach_the_logged_weights(scored):
    # tensors + rotary cache + the unsplit blocks above, against the logged "Model loading took"
    q25_15 = 1_543_714_304 * 2 + 32_768 * 128 * 2 + 91.875 * MiB          # 0.30.0, row 180
    assert scored["180"]["w_pred"] == pytest.approx(q25_15 / GIB, abs=1e-4) and round(q25_15 / GIB, 2) == 2.97
    assert scored["180"]["w_meas"] == 2.98
    assert scored["126"]["w_pred"] == pytest.approx(14.25, abs=0.005) and scored["126"]["w_meas"] == 14.25
    assert scored["143"]["w_pred"] == pytest.approx(14.29, abs=0.005) and scored["143"]["w_meas"] == 14.29
    assert scored["161"]["w_pred"] == pytest.approx(27.52, abs=0.005) and scored["161"]["w_meas"] == 27.52
    # typhoon2.5 (its own config, printed in row 185's log: Qwen3-4B geometry, 262,144 positions):
    # 4,022,468,096 x 2 + 262,144 x 128 x 2 (rotary cache) + 54.125 MiB
    typhoon = 4_022_468_096 * 2 + 262_144 * 128 * 2 + 54.125 * MiB
    assert scored["184"]["w_pred"] == pytest.approx(typhoon / GIB, abs=1e-4) and round(typhoon / GIB, 2) == 7.61


def test_row184_remainder_is_named_not_priced():
    """Row 184 logs 7.64 GiB: 0.03 GiB above the estimate (7.61, with the checkpoint's own 262,144-position
    rotary cache since its config.json is shipped; under the Qwen3-4B proxy's 40,960 it was 7.56), named: the freed float32 rope transients of layer 0 (rotary_embedding/base.py:88-100: freqs, cos, sin
    262,144 x 64 x 4 = 64 MiB each, cat 128 MiB; ``cache.to(dtype)`` reuses one 64 MiB block) reused by the first
    two down_proj requests of 47.5 MiB (a cached 64 MiB block is returned when < request + 20 MiB, c10
    ``get_free_block``; not split): 2 x 16.5 MiB."""
    base = 4_022_468_096 * 2 + 262_144 * 128 * 2 + 54.125 * MiB
    assert round(base / GIB, 2) == 7.61
    assert round((base + 2 * 16.5 * MiB) / GIB, 2) == 7.64


@pytest.mark.skipif(not (SRC / "vllm-0.21.0").is_dir(), reason="vllm sdists not unpacked")
def test_max_split_scope_is_021_plus():
    def has(v):
        text = (SRC / f"vllm-{v}" / "vllm" / "v1" / "worker" / "gpu_worker.py").read_text()
        return "_scoped_allocator_max_split(max_split_size_mb=20)" in text
    assert not has("0.20.2") and has("0.21.0") and has("0.29.0") and has("0.30.0") and has("0.31.0")
    cuda = (SRC / "vllm-0.29.0" / "vllm" / "platforms" / "cuda.py").read_text()
    assert re.search(r"reset_peak_memory_stats\(device\)\n\s+return torch\.cuda\.max_memory_allocated\(device\)", cuda)


def test_quantized_rows_reach_the_logged_weights(scored, monkeypatch):
    """Rows 159 / 162 / 89: the quantized estimate with the allocator term off (the tensors + rotary cache), plus
    the by-hand blocks above, against the logged "Model loading took"."""
    from reportgen.estimate import tables
    from scripts import validate_vllm_logs as vvl

    monkeypatch.setattr(tables, "allocator_unsplit_bytes", lambda spec, scheme, lay, *rest: [0.0] * lay.pp)
    rows = {r["row_id"]: r for r in vvl.load_rows(vvl.CSV)}
    for rid, extra, logged in (("159", 120.5, 15.34), ("162", 120.5, 9.44), ("89", 22, 8.14)):
        case = vvl.make_case(rows[rid])
        bare = vvl.compare(case, vvl.predict(case))["w_pred"]
        assert scored[rid]["w_pred"] == pytest.approx(bare + extra * MiB / GIB, abs=1e-6), rid
        assert scored[rid]["w_meas"] == logged
    assert round(scored["159"]["w_pred"], 2) == 15.34 and round(scored["89"]["w_pred"], 2) == 8.14
    # 162: 9.42 against 9.44 -- the rest is the AWQ repack's freed blocks reused (second order, not priced)
    assert round(scored["162"]["w_pred"], 2) == 9.42
