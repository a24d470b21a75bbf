"""Gemma 4 composite (gemma4) towers under --limit-mm-per-prompt and quantization, and Gemma 3's SigLIP
quantization rule (issue 13).

Read from vLLM:
* ``vllm/model_executor/models/gemma4_mm.py`` @01bae219: ``_mark_tower_model(vllm_config, {"image", "video"})``
  around ``vision_tower`` + ``embed_vision``, ``_mark_tower_model(vllm_config, "audio")`` around ``audio_tower`` +
  ``embed_audio`` (only when ``config.audio_config`` is set); ``get_supported_mm_limits`` lists audio only with an
  audio tower; ``get_mm_max_tokens_per_item`` = {"image": vision ``default_output_length``, "audio": the processor's
  ``audio_seq_length``, "video": 32 x (70 + 2 + 6)}; ``tower_quant`` = the quant config only when the vision
  tower's hidden and intermediate sizes are multiples of 64 (bitsandbytes / torchao excepted), used for both towers
  (``recursive_replace_linear``) and both embedders.
* ``vllm/multimodal/budget.py`` @03ff0a31 (``MultiModalBudget``): max tokens per item asked for the modalities
  whose limit is > 0 only; ``compute_mm_encoder_budget`` takes their max.
* ``vllm/model_executor/models/gemma3_mm.py`` @e5fa9450: ``SiglipVisionModel(config.vision_config, quant_config)``;
  ``siglip.py`` @0c028ba4: ``SiglipAttention`` qkv_proj / out_proj with ``quant_config``, ``SiglipMLP`` fc1 / fc2
  with it only when hidden and intermediate sizes are multiples of 64.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from reportgen.arch import build_spec
from reportgen.arch.spec import Component
from reportgen.estimate import encoder
from reportgen.estimate.quant.online import online_scheme

ROOT = Path(__file__).resolve().parents[1]
E4B = json.loads((ROOT / "tests" / "data" / "configs_2026" / "google--gemma-4-E4B-it.json").read_text())
GEMMA3_12B = json.loads((ROOT / "reportgen" / "sources" / "bundled" / "google--gemma-3-12b-it.json").read_text())
VISION = ("model.vision_tower.", "model.embed_vision.")
AUDIO = ("model.audio_tower.", "model.embed_audio.")


def params(spec, prefixes):
    return sum(t.params for t in spec.tensors if t.name.startswith(prefixes))


def test_e4b_towers_by_hand():
    spec = build_spec(copy.deepcopy(E4B))
    # vision (768 wide, 16 layers, MLP 3072, head_dim 64, patch 16, position table 10,240):
    layer = 4 * 768 * 768 + 2 * 64 + 3 * 768 * 3072 + 4 * 768
    vision = 768 * 3 * 16 * 16 + 2 * 10240 * 768 + 16 * layer + 2560 * 768       # + embed_vision 768 -> 2560
    assert params(spec, VISION) == vision == 169_330_688
    assert params(spec, AUDIO) == 308_756_768          # the audio class defaults (1024 wide, 12 layers) + embed_audio
    assert spec.params_by_component()["vision"] == vision + 308_756_768


def test_image_limit_keeps_both_towers_while_videos_and_audio_are_allowed():
    spec = build_spec(copy.deepcopy(E4B))
    assert encoder.tower_modalities(spec) == ("image", "video", "audio")
    assert encoder.apply_limits(spec, {"image": 0}) is spec      # videos go through the vision tower


def test_each_tower_goes_with_its_own_modalities():
    spec = build_spec(copy.deepcopy(E4B))
    v, a = params(spec, VISION), params(spec, AUDIO)
    no_vision = encoder.apply_limits(spec, {"image": 0, "video": 0})
    assert no_vision.multimodal and params(no_vision, VISION) == 0 and params(no_vision, AUDIO) == a
    assert no_vision.params_total == spec.params_total - v
    no_audio = encoder.apply_limits(spec, {"audio": 0})
    assert no_audio.multimodal and params(no_audio, AUDIO) == 0 and params(no_audio, VISION) == v
    text = encoder.apply_limits(spec, {"image": 0, "video": 0, "audio": 0})
    assert not text.multimodal and not [t for t in text.tensors if t.component is Component.VISION]
    assert text.params_total == spec.params_total - v - a
    # the per-layer-embedding buffer belongs to the language model: kept text only
    assert text.init_buffer_per_token == spec.init_buffer_per_token == 42 * 256      # vLLM per_layer_embeddings


def test_largest_item_is_the_largest_active_modality():
    spec = build_spec(copy.deepcopy(E4B))
    assert spec.mm_item_tokens_by_modality == {"image": 280, "video": 32 * 78, "audio": 750}
    assert spec.mm_item_tokens == 2496                                        # a 32-frame video
    assert encoder.apply_limits(spec, {"video": 0}).mm_item_tokens == 750      # the audio clip
    assert encoder.apply_limits(spec, {"video": 0, "audio": 0}).mm_item_tokens == 280
    assert encoder.apply_limits(spec, {"image": 0, "video": 0}).mm_item_tokens == 750
    assert encoder.apply_limits(spec, {"image": 5, "audio": 0}).mm_item_tokens == 2496
    assert encoder.encoder_budget(2048, encoder.apply_limits(spec, {"audio": 0}).mm_item_tokens) == 2496
    assert encoder.encoder_budget(2048, encoder.apply_limits(spec, {"video": 0}).mm_item_tokens) == 2048


def test_default_output_length_sets_the_image_item():
    cfg = copy.deepcopy(E4B)
    cfg["vision_config"]["default_output_length"] = 1120
    spec = build_spec(cfg)
    assert spec.mm_item_tokens_by_modality["image"] == 1120
    assert encoder.apply_limits(spec, {"video": 0, "audio": 0}).mm_item_tokens == 1120


def test_without_audio_config_images_and_videos_are_the_only_modalities():
    cfg = copy.deepcopy(E4B)
    del cfg["audio_config"]
    spec = build_spec(cfg)
    assert params(spec, AUDIO) == 0
    assert encoder.tower_modalities(spec) == ("image", "video")
    assert spec.mm_item_tokens_by_modality == {"image": 280, "video": 2496}
    text = encoder.apply_limits(spec, {"image": 0, "video": 0})
    assert not text.multimodal and params(text, VISION) == 0
    assert encoder.apply_limits(spec, {"video": 0}).mm_item_tokens == 280


def test_tower_quantization_follows_the_vision_widths():
    spec = build_spec(copy.deepcopy(E4B))                    # 768 / 3072: multiples of 64 -> tower_quant set
    by = {t.name: t for t in spec.tensors}
    assert by["model.vision_tower.encoder.layers.0.self_attn.q_proj.linear.weight"].quantizable
    assert by["model.audio_tower.layers.0.feed_forward1.ffw_layer_1.linear.weight"].quantizable
    assert by["model.embed_audio.embedding_projection.weight"].quantizable
    cfg = copy.deepcopy(E4B)
    cfg["vision_config"]["intermediate_size"] = 4304         # not a multiple of 64: no tower is quantized
    odd = build_spec(cfg)
    towers = [t for t in odd.tensors if t.component is Component.VISION]
    assert towers and not any(t.quantizable for t in towers)
    # the language model is unaffected
    assert by["model.language_model.layers.0.self_attn.q_proj.weight"].quantizable
    fp8 = online_scheme("fp8", "bfloat16")
    q = next(t for t in odd.tensors if t.name == "model.audio_tower.layers.0.self_attn.q_proj.linear.weight")
    assert fp8.tensor_bytes(q) == 1024 * 1024 * 2             # stays bf16 under --quantization fp8


def test_gemma3_siglip_attention_quantized_mlp_not():
    spec = build_spec(copy.deepcopy(GEMMA3_12B))
    by = {t.name: t for t in spec.tensors}
    p = "vision_tower.vision_model.encoder.layers.0"
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert by[f"{p}.self_attn.{name}.weight"].quantizable
    assert not by[f"{p}.mlp.fc1.weight"].quantizable and not by[f"{p}.mlp.fc2.weight"].quantizable
    # so400m: 27 layers of 1152-wide attention; under online fp8 each q/k/v/out weight is 1 byte + a fp32 scale,
    # the 1152 x 4304 MLP matrices stay bf16
    fp8 = online_scheme("fp8", "bfloat16")
    assert fp8.tensor_bytes(by[f"{p}.self_attn.q_proj.weight"]) == 1152 * 1152 + 4
    assert fp8.tensor_bytes(by[f"{p}.mlp.fc1.weight"]) == 1152 * 4304 * 2
    tower = [t for t in spec.tensors if t.name.startswith("vision_tower.") and t.name.endswith(".weight")
             and len(t.shape) == 2 and t.shape != (4096, 1152)]
    saved = sum(t.numel * 2 - fp8.tensor_bytes(t) for t in tower)
    assert saved == 27 * 4 * (1152 * 1152 - 4)


def test_gemma3_siglip_mlp_quantized_when_widths_are_multiples_of_64():
    cfg = copy.deepcopy(GEMMA3_12B)
    cfg["vision_config"]["intermediate_size"] = 4352
    by = {t.name: t for t in build_spec(cfg).tensors}
    assert by["vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"].quantizable


def test_gemma3_largest_item_is_one_pooled_image():
    """gemma3_mm.py @e5fa9450: (num_crops + 1) x image_seq_length, no pan-and-scan by default -> 256."""
    spec = build_spec(copy.deepcopy(GEMMA3_12B))
    assert spec.mm_item_tokens == GEMMA3_12B.get("mm_tokens_per_image", 256) == 256
    assert encoder.encoder_budget(128, spec.mm_item_tokens) == 256
