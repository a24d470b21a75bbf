"""The video item vLLM profiles for Qwen2-VL / Qwen2.5-VL towers, sized by max_model_len (issue 13).

Hand arithmetic from vLLM qwen2_vl.py @002d181a (``Qwen2VLProcessingInfo``, which qwen2_5_vl.py reuses) and
vllm/multimodal/budget.py @03ff0a31 (``get_mm_max_tokens_per_item(seq_len=max_model_len,
mm_counts={modality: 1 for each active modality})``):

- the largest frame is the largest image: Qwen2.5-VL-7B, max_pixels 12,845,056 -> 3,584 x 3,584 ->
  256 x 256 patches of 14 -> 16,384 tokens after the 2 x 2 merge;
- a video of n frames is padded to ``n + n % 2`` and costs ``(padded // 2) x 16,384`` tokens;
- ``_get_max_video_frames(max_model_len)`` adds frames from 1 while that stays <= max_model_len, then
  ``min(frames // 1, _MAX_FRAMES_PER_VIDEO = 14)``.

The helper is not yet wired into the matrix (see encoder.video_item_tokens): these tests pin the item only,
plus the effect it would have on row N03F.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.estimate import encoder

CONFIGS = Path(__file__).parent / "data" / "configs_2026"


def _spec(name: str, where: Path = CONFIGS):
    return build_spec(json.loads((where / f"{name}.json").read_text()))


@pytest.fixture(scope="module")
def qwen25():
    spec = _spec("Qwen--Qwen2.5-VL-7B-Instruct")
    assert spec.family == "qwen2_5_vl" and spec.mm_item_tokens == 256 * 256 // 4 == 16_384
    return spec


# (max_model_len, frames vLLM picks, tokens = ceil(frames / 2) x 16,384)
HAND = [
    (8_192, 1, 16_384),       # 2 frames (16,384) > 8,192: stays at 1 frame, padded to 2 -> one temporal patch
    (32_767, 1, 16_384),      # 2 frames fit (16,384), 3 frames pad to 4 = 32,768 > 32,767; 2 frames -> 16,384
    (32_768, 4, 32_768),      # 4 frames -> 2 temporal patches
    (100_000, 12, 98_304),    # floor(100,000 / 16,384) = 6 temporal patches -> 12 frames
    (128_000, 14, 114_688),   # 7 patches = the 14-frame cap: row N03F's logged budget (vLLM 0.23.0)
    (1_000_000, 14, 114_688),  # the cap holds however long the context
]


@pytest.mark.parametrize("mml,frames,tokens", HAND)
def test_qwen2_5_vl_7b_video_item_matches_hand_arithmetic(qwen25, mml, frames, tokens):
    assert encoder.qwen2_vl_video_tokens(frames, 16_384) == tokens
    assert encoder.video_item_tokens(qwen25, mml) == max(tokens, 16_384)


def test_n03f_logged_budget_is_seven_frames_worth():
    # 'Encoder cache will be initialized with a budget of 114688 tokens, and profiled with 1 video items'
    # at 'Using max model len 128000': subtracting one image first (older vLLM code) would give 6 x 16,384
    assert encoder.qwen2_vl_video_item_tokens(128_000, 16_384) == 114_688 == 7 * 16_384
    assert encoder.qwen2_vl_video_item_tokens(128_000 - 16_384, 16_384) == 6 * 16_384


def test_video_limit_zero_restores_the_image_item(qwen25):
    assert encoder.video_item_tokens(qwen25, 128_000, {"video": 0}) == qwen25.mm_item_tokens == 16_384
    assert encoder.video_item_tokens(qwen25, 128_000, {"image": 0, "video": 2}) == 114_688
    assert encoder.video_item_tokens(qwen25, 128_000, {"image": 3}) == 114_688   # videos keep the default


def test_qwen2_vl_uses_the_same_processing_info():
    spec = _spec("Qwen--Qwen2-VL-7B-Instruct", CONFIGS.parent / "configs_vision")
    assert spec.family == "qwen2_vl" and spec.mm_item_tokens == 16_384
    assert encoder.video_item_tokens(spec, 65_536) == 65_536


def test_towers_without_a_modelled_video_item_keep_today_s_figure():
    spec = _spec("Qwen--Qwen3-VL-8B-Instruct")       # qwen3_vl.py sizes videos its own way: not modelled yet
    assert encoder.video_item_tokens(spec, 128_000) == spec.mm_item_tokens


def test_n03f_reason_moves_to_no_kv_memory_with_the_video_item():
    """What wiring the item in would do to row N03F (vLLM: "No available memory for the cache blocks"):
    today the estimate keeps 0.39 GiB of KV and fails only the max_model_len check; with the 114,688-token
    item the KV memory goes negative (the right reason, though the logged -14.28 GiB shows the per-token
    encoder coefficient, fitted on images, is far short of the ~15 GiB the video tower peaked at)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import validate_vllm_logs as v

    row = next(r for r in v.load_rows() if r["row_id"] == "N03F")
    case = v.make_case(row)
    today = v.predict(case)
    assert today["status"] == "no_fit" and today["reason"].startswith("one request of max_model_len")
    item = encoder.video_item_tokens(case.spec, case.matrix.max_model_len[0])
    assert item == 114_688
    video = v.predict(dataclasses.replace(case, spec=dataclasses.replace(case.spec, mm_item_tokens=item)))
    assert video["status"] == "no_fit" and video["kv_cache_gib"] < 0 < today["kv_cache_gib"]
    assert video["reason"].startswith("no memory left for the KV cache")
