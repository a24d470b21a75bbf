"""Qwen3-VL / Qwen3.5's dummy video against the largest image (issue 13, branch vlvideo).

vLLM qwen3_vl.py @4f5768c7 (``Qwen3VLProcessingInfo``; qwen3_5.py @36c110bd's ``Qwen3_5(Moe)ProcessingInfo``
subclass it unchanged): ``get_max_video_tokens(seq_len)`` prices ``get_num_frames_with_most_features`` frames of the largest
image size through ``_get_vision_info`` with the *video* processor, whose ``smart_resize`` (transformers
``video_processing_qwen3_vl``) spreads one pixel budget over every frame.  With the published processors
(image ``longest_edge`` 16,777,216 -> 4,096 x 4,096 frames; video ``size`` 4,096 / 25,165,824):

- 2 frames: 2 x 4,096**2 > 25,165,824, beta = sqrt(2 x 4,096**2 / 25,165,824) = 1.1547, frame
  floor(4,096 / 1.1547 / 32) x 32 = 3,520 -> 1 temporal patch x 220 x 220 patches / 4 = 12,100 tokens;
- 3 frames: beta = sqrt(2) -> floor(90.5) x 32 = 2,880, padded to 4 frames -> 2 x 180 x 180 / 4 = 16,200 tokens,
  the most any frame count reaches -- so vLLM's loop (from 2 frames, on while the next count fits max_model_len)
  stays at 2 frames below max_model_len 16,200 and from there runs to the cap;
- 24,576 frames (``_MAX_FRAMES_PER_VIDEO``): beta = 128 -> 32 x 32 frames -> 12,288 x 2 x 2 / 4 = 12,288 tokens.

So the video never exceeds the 16,384-token image: the budget is the image at any max_model_len while images
are allowed; with ``image=0`` the item is the video alone (12,288 tokens from max_model_len 16,200; 12,100 below).
Row evidence: PR vllm-project/vllm#34330's log profiles Qwen3-VL-4B with ``--limit-mm-per-prompt.image 0``
"instead of default 12288 tokens".
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from reportgen.arch import build_spec, mm_video
from reportgen.estimate import encoder

DATA = Path(__file__).parent / "data"
REF = Path("/work/shared/reference/configs_2026")
PUBLISHED = (4_096, 16, 2, 2, 4_096, 25_165_824)     # side, patch, merge, tps, video shortest / longest edge


def _config(name: str) -> dict:
    for where in (DATA / "configs_2026", REF):
        path = where / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text())
    pytest.skip(f"{name} not available")


def test_resize_is_transformers_smart_resize():
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize
    rng = random.Random(13)
    cases = [(n, 4_096, 4_096, 2, 32, 4_096, 25_165_824) for n in (2, 3, 4, 5, 7, 64, 768, 24_575, 24_576, 30_000)]
    cases += [(rng.randint(2, 5_000), rng.randint(40, 9_000), rng.randint(40, 9_000), rng.choice([1, 2, 3]),
               rng.choice([16, 28, 32, 42]), rng.choice([4_096, 131_072]), rng.choice([786_432, 25_165_824]))
              for _ in range(300)]
    for n, h, w, tf, factor, lo, hi in cases:
        if max(h, w) / min(h, w) > 200 or n < tf:
            continue
        assert mm_video.qwen3_vl_video_resize(n, h, w, tf, factor, lo, hi) == smart_resize(
            num_frames=n, height=h, width=w, temporal_factor=tf, factor=factor, min_pixels=lo, max_pixels=hi)


# (frames, frame side, tokens): beta = sqrt(n x 4,096**2 / 25,165,824), side floor(4,096 / beta / 32) x 32, vLLM's
# grid_t = (n + n % 2) // 2 (odd counts pad up a temporal patch: why 3 and 5 frames cost more than 4 and 6)
HAND = [(2, 3_520, 1 * 220 * 220 // 4), (3, 2_880, 2 * 180 * 180 // 4), (4, 2_496, 2 * 156 * 156 // 4),
        (5, 2_240, 3 * 140 * 140 // 4), (6, 2_048, 3 * 128 * 128 // 4), (24_576, 32, 12_288 * 2 * 2 // 4)]


@pytest.mark.parametrize("frames,side,tokens", HAND)
def test_published_sizes_by_hand(frames, side, tokens):
    assert mm_video.qwen3_vl_video_resize(frames, 4_096, 4_096, 2, 32, 4_096, 25_165_824) == (side, side)
    assert mm_video.qwen3_vl_video_tokens(frames, *PUBLISHED) == tokens
    assert [t for _, _, t in HAND] == [12_100, 16_200, 12_168, 14_700, 12_288, 12_288]


def test_steps_of_the_published_geometry():
    # 3 frames (16,200) is the only record: below it the loop stays at 2 frames, from it the loop runs to the cap
    assert mm_video.qwen3_vl_video_steps(*PUBLISHED) == ((1, 12_100), (16_200, 12_288))
    assert max(mm_video.qwen3_vl_video_tokens(n, *PUBLISHED) for n in range(2, 24_577)) == 16_200 < 16_384


def _at(steps, mml):
    return [t for m, t in steps if m <= mml][-1]


@pytest.mark.parametrize("mml,tokens", [(1, 12_100), (8_192, 12_100), (16_199, 12_100), (16_200, 12_288),
                                        (32_768, 12_288), (262_144, 12_288)])
def test_video_item_per_max_model_len(mml, tokens):
    # the frame loop starts at 2 frames and stops before the first count over max_model_len; at 16,200 it passes
    # 3 frames and every later count (<= 16,200) up to the 24,576 cap
    assert mm_video.qwen3_vl_video_item(mml, *PUBLISHED) == tokens == _at(mm_video.qwen3_vl_video_steps(*PUBLISHED), mml)


def test_steps_match_vllm_s_frame_loop_on_random_geometries():
    rng = random.Random(7)
    for _ in range(40):
        p, m, tps = rng.choice([8, 14, 16, 20]), rng.choice([1, 2, 3]), rng.choice([1, 2, 3])
        factor = p * m
        side = max(factor, int((16_777_216 ** 0.5) // factor) * factor)
        lo, hi, cap = rng.choice([4_096, 131_072]), rng.choice([786_432, 12_000_000, 25_165_824]), rng.choice([300, 3_000])
        steps = mm_video.qwen3_vl_video_steps.__wrapped__(side, p, m, tps, lo, hi, cap)
        lens = {1, 10**9} | {x + d for x, _ in steps for d in (-1, 0, 1)} | {rng.randint(1, 200_000) for _ in range(5)}
        for mml in sorted(x for x in lens if x >= 1):
            assert _at(steps, mml) == mm_video.qwen3_vl_video_item(mml, side, p, m, tps, lo, hi, cap), (p, m, tps, hi, mml)


@pytest.mark.parametrize("name", ["Qwen--Qwen3-VL-8B-Instruct", "Qwen--Qwen3-VL-30B-A3B-Instruct"])
def test_shipped_qwen3_vl_budget_is_the_image_at_any_length(name):
    spec = build_spec(_config(name))
    assert spec.mm_item_tokens == 16_384 and spec.mm_item_tokens_by_modality == {"image": 16_384, "video": 12_288}
    assert spec.mm_video_patch_tokens == 0                      # nothing priced per max_model_len
    for mml in (4_096, 32_768, 128_000, 262_144):
        assert encoder.video_item_tokens(spec, mml) == 16_384
    assert any("12,100, 12,288 from max_model_len 16,200 tokens" in n for n in spec.notes)
    assert not any("lower bound" in n for n in spec.notes)


def test_limits_image_zero_leaves_the_video_alone():
    spec = build_spec(_config("Qwen--Qwen3-VL-8B-Instruct"))
    assert encoder.apply_limits(spec, {"image": 0}).mm_item_tokens == 12_288
    assert encoder.apply_limits(spec, {"video": 0}).mm_item_tokens == 16_384
    assert encoder.apply_limits(spec, {"image": 2, "video": 1}).mm_item_tokens == 16_384
    assert encoder.encoder_budget(2_048, encoder.apply_limits(spec, {"image": 0}).mm_item_tokens) == 12_288


@pytest.mark.parametrize("name", ["Qwen--Qwen3.5-27B", "Qwen--Qwen3.5-35B-A3B"])
def test_qwen35_composites_say_what_is_not_worked_out(name):
    # qwen3_5.py's processing info is Qwen3VLProcessingInfo: the video stays at 12,288 tokens at most, but the image item
    # itself is not worked out for Qwen3.5 (no ITEM_PIXELS entry), so the budget is max_num_batched_tokens
    spec = build_spec(_config(name))
    assert spec.family in ("qwen3_5", "qwen3_5_moe") and spec.mm_item_tokens == 0
    assert any("at most 12,288 tokens" in n and "lower bound" in n for n in spec.notes)
