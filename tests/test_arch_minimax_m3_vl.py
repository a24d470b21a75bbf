"""MiniMax-M3 as published (``minimax_m3_vl``, ``MiniMaxM3SparseForConditionalGeneration``): the vision tower and
projector hand-counted from vLLM ``vllm/models/minimax_m3/common/vision_tower.py`` (vllm 0.34.0 sdist; ``vt:LINE``),
their tensor-parallel split, the refusals, and the verdict per vLLM release (model.py, registry.py; 0.24.0 first).

The fixture (tests/data/configs_vision/MiniMaxAI--MiniMax-M3-composite.synthetic.json, see SOURCES.md there) is
synthetic: transformers 5.25's MiniMaxM3VLConfig / MiniMaxM3VLVisionConfig defaults around the repo's MiniMax-M3 text
fields (tests/data/configs_2026/MiniMaxAI--MiniMax-M3.json), plus ``img_token_compression_config`` which vLLM 0.24 -
0.33 read.  Totals against the meta device: tests/test_oracle_minimax_m3_vl.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import Shard as S
from reportgen.arch.vision_parts import vision_split
from reportgen.estimate import encoder
from reportgen.estimate.served import spec_for_version

DATA = Path(__file__).parent / "data"
VL = json.loads((DATA / "configs_vision/MiniMaxAI--MiniMax-M3-composite.synthetic.json").read_text())
TEXT_TOTAL = 426_174_565_632      # the text stack alone (tests/test_oracle_minimax_m3.py, meta device)

# vision defaults (MiniMaxM3VLVisionConfig) and the text width
H, I, L, HEADS, C, T, P, M, TH, MID = 1280, 5120, 32, 16, 3, 2, 14, 2, 6144, 6144


def _cfg(vision=None, **top):
    cfg = copy.deepcopy(VL)
    cfg["vision_config"].update(vision or {})
    for k, v in top.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    return cfg


def _t(spec, name):
    return next(t for t in spec.tensors if t.name == name)


def test_tower_and_projector_hand_counted():
    """vt:54-60 Conv3d(C -> H, T x P x P, no bias); vt:359 pre_layrnorm; per layer (vt:185-221) two LayerNorms,
    q / k / v / out (H x H + H), fc1 (H x I + I), fc2 (I x H + H); no post_layernorm (vt:632-637).  Projector
    (vt:527-599): linear_1 H -> MID, linear_2 MID -> TH, patch merge TH x M^2 -> MID -> TH, all with biases."""
    spec = build_spec(VL)
    assert spec.unsupported_reason is None and spec.family == "minimax_m3_vl" and spec.multimodal
    conv = H * C * T * P * P                              # 1,505,280
    layer = 2 * 2 * H + 4 * (H * H + H) + (H * I + I) + (I * H + H)
    tower = conv + 2 * H + L * layer
    projector = (H * MID + MID) + (MID * TH + TH) + (TH * M * M * MID + MID) + (MID * TH + TH)
    assert (layer, tower, projector) == (19_677_440, 631_185_920, 234_381_312)
    assert vision_split(spec) == {"tower": tower, "projector": projector}
    assert spec.params_total == TEXT_TOTAL + tower + projector == 427_040_132_864
    assert encoder.text_only(spec).params_total == TEXT_TOTAL


def test_tower_shards_as_vllm_builds_it():
    """QKVParallelLinear with total_num_kv_heads = num_heads (vt:102-111: q, k, v split by heads), out_proj / fc2
    RowParallelLinear (their biases whole on every rank), fc1 ColumnParallelLinear (vt:205-221); projector and patch
    merger linear_1 column, linear_2 row (vt:543-559, 584-599); conv and LayerNorms replicated; every linear weight
    built with quant_config (model.py 0.34.0:1886-1893), so quantizable."""
    spec = build_spec(VL)
    p = "model.vision_tower.layers.0"
    for name, shard in ((f"{p}.self_attn.q_proj.weight", S.COLUMN), (f"{p}.self_attn.k_proj.bias", S.COLUMN),
                        (f"{p}.self_attn.out_proj.weight", S.ROW), (f"{p}.self_attn.out_proj.bias", S.REPLICATED),
                        (f"{p}.mlp.fc1.weight", S.COLUMN), (f"{p}.mlp.fc2.weight", S.ROW),
                        (f"{p}.layer_norm1.weight", S.REPLICATED),
                        ("model.vision_tower.embeddings.proj.weight", S.REPLICATED),
                        ("model.multi_modal_projector.linear_1.weight", S.COLUMN),
                        ("model.multi_modal_projector.merge_linear_2.weight", S.ROW),
                        ("model.multi_modal_projector.merge_linear_2.bias", S.REPLICATED)):
        assert _t(spec, name).shard is shard, name
    assert _t(spec, f"{p}.mlp.fc1.weight").quantizable
    assert not _t(spec, "model.vision_tower.embeddings.proj.weight").quantizable


def test_tower_bytes_per_rank_at_tp8_follow_vllm_sharding():
    from reportgen.matrix import estimate_one

    spec = build_spec(VL)
    tp = 8
    layer_split = 4 * H * H + 3 * H + H * I + I + I * H          # q/k/v/out weights, q/k/v biases, fc1, fc2 weight
    layer_whole = 4 * H + H + H                                   # two LayerNorms, out_proj and fc2 biases
    whole = H * C * T * P * P + 2 * H                             # conv, pre_layrnorm
    proj_split = H * MID + MID + MID * TH + TH * M * M * MID + MID + MID * TH
    proj_whole = TH + TH                                          # the two row biases
    per_rank = L * (layer_split / tp + layer_whole) + whole + proj_split / tp + proj_whole
    # 0.33: the conv in the model dtype (0.34's fp32 conv: test_patch_conv_is_fp32_from_0_34_only)
    full = estimate_one(spec, 141.0, tp=tp, max_model_len=131_072, block_size=128, vllm_version="0.33")
    text = estimate_one(encoder.text_only(spec), 141.0, tp=tp, max_model_len=131_072, block_size=128,
                        vllm_version="0.33")
    assert full["status"] == text["status"] == "fits"
    assert (full["weights_gib"] - text["weights_gib"]) * 2**30 == pytest.approx(per_rank * 2, rel=1e-9)


def test_verdict_per_release():
    """Registry lists MiniMaxM3SparseForConditionalGeneration from 0.24.0 (0.24.0 sdist registry.py:486-489);
    0.23 refuses it, 0.24 and 0.34 price it (same KV as the text model: the tower holds no KV cache)."""
    from reportgen.matrix import estimate_one

    spec = build_spec(VL)
    r23 = estimate_one(spec, 141.0, tp=8, max_model_len=131_072, block_size=128, vllm_version="0.23")
    assert r23["status"] == "unsupported" and "listed from v0.24 on" in r23["reason"]
    text = build_spec({**VL["text_config"], "architectures": ["MiniMaxM3SparseForCausalLM"]})
    for v in ("0.24", "0.34"):
        r = estimate_one(spec, 141.0, tp=8, max_model_len=131_072, block_size=128, vllm_version=v)
        assert r["status"] == "fits" and r["block_size"] == 128
    from reportgen.estimate.kvcache import kv_bytes_per_token
    assert kv_bytes_per_token(spec) == kv_bytes_per_token(text)


@pytest.mark.parametrize("vision, top, words", [
    ({"multimodal_projector_bias": False}, {}, "multimodal_projector_bias"),
    ({"patch_merge_bias": False}, {}, "patch_merge_bias"),
    ({}, {"projector_hidden_size": 0}, "projector_hidden_size"),
])
def test_towers_transformers_cannot_build_are_refused(vision, top, words):
    r = build_spec(_cfg(vision, **top)).unsupported_reason
    assert r and words in r and "different towers" in r


def test_tied_language_model_is_refused():
    cfg = _cfg()
    cfg["text_config"]["tie_word_embeddings"] = True
    r = build_spec(cfg).unsupported_reason
    assert r and "tie_word_embeddings" in r


@pytest.mark.parametrize("vision, top, words", [
    # vLLM 0.24 - 0.33: PretrainedConfig.from_dict(raw vision_config) -> attribute read without default
    ({"img_token_compression_config": None}, {}, "img_token_compression_config"),
    # 0.24.0 vt:48-49 temporal kernel from img_token_compression_config; transformers / 0.34 vt:45 temporal_patch_size
    ({"img_token_compression_config": {"temporal_patch_size": 1}}, {}, "temporal kernel"),
    # vLLM's own MiniMaxM3Config (0.24.0 configs/minimax_m3.py:123-149) has no projector_hidden_size default
    ({}, {"projector_hidden_size": None}, "projector_hidden_size"),
])
def test_configs_only_0_34_builds_like_transformers_are_priced_from_0_34(vision, top, words):
    cfg = _cfg(vision, **top)
    if top.get("projector_hidden_size", 1) is None:
        cfg["text_config"]["hidden_size"] = 4096     # transformers' 6144 default then differs from the text width
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.served_from[0] == (0, 34)
    r = spec_for_version(spec, "0.33").unsupported_reason
    assert r and words in r and "0.34" in r
    assert spec_for_version(spec, "0.34").unsupported_reason is None


def test_absent_projector_hidden_size_equal_to_text_width_is_priced_on_every_release():
    spec = build_spec(_cfg(projector_hidden_size=None))
    assert spec.served_from is None and spec.params_total == 427_040_132_864


def test_patch_conv_is_fp32_from_0_34_only():
    """vLLM 0.34 vt:61-63 ``self.patch_embedding.to(torch.float32)``; 0.24 - 0.33 an ``nn.Conv3d`` in the model dtype
    (no float32 cast in 0.31 - 0.33's vision_tower.py either): the replicated conv costs H x C x T x P x P x 2 bytes
    more on every rank from 0.34, at any tp."""
    from reportgen.matrix import estimate_one

    spec = build_spec(VL)
    conv = "model.vision_tower.embeddings.proj.weight"
    assert _t(spec_for_version(spec, "0.33"), conv).dtype_bytes == 0         # the weight scheme's dtype
    assert _t(spec_for_version(spec, "0.34"), conv).dtype_bytes == 4
    assert spec_for_version(spec, "0.34").params_total == spec.params_total
    for tp in (4, 8):
        w = {v: estimate_one(spec, 141.0, tp=tp, max_model_len=131_072, block_size=128,
                             vllm_version=v)["weights_gib"] for v in ("0.33", "0.34")}
        assert (w["0.34"] - w["0.33"]) * 2**30 == pytest.approx(H * C * T * P * P * 2, rel=1e-6)
        # text only (--limit-mm-per-prompt 0): no tower on either release, the fp32 conv included
        t = {v: estimate_one(encoder.text_only(spec), 141.0, tp=tp, max_model_len=131_072, block_size=128,
                             vllm_version=v)["weights_gib"] for v in ("0.33", "0.34")}
        assert t["0.33"] == t["0.34"] < w["0.33"]


def test_encoder_items_from_0_34():
    """vLLM 0.34 common/mm_preprocess.py: the profiled image is a 3584 px square (:52, a multiple of 14 x 2):
    (3584 / 14)**2 / 2**2 = 16,384 tokens; a video step is two frames (temporal_patch_size 2) of 2188 px floored to 28
    = 2184 px (:53): (2184 / 14)**2 / 4 = 6,084 tokens, at most 63 frames (:63) -> ceil(63 / 2) = 32 steps, and
    ``_get_max_video_frames`` keeps the frames whose tokens fit max_model_len (at least one).  0.24 - 0.33 size the
    items by the processor's max_pixels (not in config.json): not modelled, 0."""
    spec = build_spec(VL)
    s34, s33 = spec_for_version(spec, "0.34"), spec_for_version(spec, "0.33")
    assert (s34.mm_item_tokens, s34.mm_video_patch_tokens, s34.mm_video_max_patches) == (16_384, 6_084, 32)
    assert [encoder.video_item_tokens(s34, n) for n in (4_096, 131_072, 1_048_576)] == [
        16_384, 131_072 // 6_084 * 6_084, 32 * 6_084]
    assert 131_072 // 6_084 * 6_084 == 127_764
    assert (s33.mm_item_tokens, s33.mm_video_patch_tokens) == (0, 0)
    assert encoder.tower_modalities(spec) == ("image", "video")      # _mark_tower_model(..., {"image", "video"})


def test_limits_applied_before_the_release_stay_applied():
    """The job applies --limit-mm-per-prompt to the built spec and resolves the release afterwards: video = 0 drops
    0.34's video item, image = video = 0 the tower, its fp32 conv and the items."""
    spec = build_spec(VL)
    no_video = spec_for_version(encoder.apply_limits(spec, {"video": 0}), "0.34")
    assert (no_video.mm_item_tokens, no_video.mm_video_patch_tokens) == (16_384, 0)
    assert encoder.video_item_tokens(no_video, 131_072) == 16_384
    still = spec_for_version(encoder.apply_limits(spec, {"image": 0}), "0.34")      # videos go through the tower
    assert still.multimodal and still.mm_video_patch_tokens == 6_084
    text = spec_for_version(encoder.apply_limits(spec, {"image": 0, "video": 0}), "0.34")
    assert not text.multimodal and text.mm_item_tokens == 0 and text.mm_video_patch_tokens == 0
    assert text.params_total == TEXT_TOTAL and vision_split(text) == {"tower": 0, "projector": 0}
