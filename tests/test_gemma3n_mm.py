"""Gemma 3n composite (gemma3n: text + timm vision tower + audio conformer + embedders), vLLM gemma3n_mm.py
@01e4fce0: exact parameters against the meta device (transformers 5.24 Gemma3nForConditionalGeneration, its
vision tower built by timm) on the class defaults (= google/gemma-3n-E4B), an E4B / E2B config written from
memory and >= 200 random valid configs (``ORACLE_VISION_EXAMPLES``); the committed timm tower table against
timm itself; sharding, encoder budget and refusals from vLLM's model file.

The meta-device tests need torch, timm and torchvision (``make test`` installs them: the ``oracle`` extra, and
timm + torchvision in ``<venv>/oracle-timm``, made importable by scripts/timm_towers.py ``enable_timm``, which
tests/conftest.py calls); they skip themselves without them -- the rest runs without any.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, strategies as st

from reportgen.arch import build_spec
from reportgen.arch.families import gemma3n
from reportgen.arch.spec import Component, Shard
from reportgen.arch.vision_parts import vision_split
from oracle_support import class_defaults, examples, model_on_meta, oracle_settings
from test_gemma3n import gemma3n_text_configs
import timm_towers  # scripts/, on sys.path through tests/conftest.py

SETTINGS = oracle_settings(examples("ORACLE_VISION_EXAMPLES"))
TABLE = gemma3n.timm_table()


HAS_TIMM = timm_towers.enable_timm()  # tests/conftest.py called it already; True when all three are installed
needs_timm = pytest.mark.skipif(not HAS_TIMM, reason="the meta-device oracle needs torch, torchvision and timm")


def meta_model(cfg: dict):
    """transformers' Gemma3nForConditionalGeneration on the meta device (timm builds the vision tower)."""
    import transformers

    conf = transformers.CONFIG_MAPPING["gemma3n"](**{k: v for k, v in copy.deepcopy(cfg).items()
                                                      if k != "model_type"})
    return model_on_meta(lambda: transformers.AutoModelForImageTextToText.from_config(conf))


def assert_exact(cfg: dict):
    """Total equal to the meta-device count, and every tower / embedder tensor by name and shape."""
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    model = meta_model(cfg)
    truth = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert spec.params_total == sum(p.numel() for p in model.parameters())
    ours = {t.name: t.shape for t in spec.tensors if t.component is Component.VISION and not t.allocated_only}
    assert ours == {n: s for n, s in truth.items() if not n.startswith("model.language_model.")}
    return spec


def defaults() -> dict:
    return class_defaults("gemma3n")


# google/gemma-3n-E4B-it config.json, WRITTEN FROM MEMORY (no gemma3n config is in the reference data):
# the fields that size tensors; E2B differs in the text model only (30 layers, MLP 8192, 10 KV-shared)
def e4b_from_memory() -> dict:
    lt = ["full_attention" if (i + 1) % 5 == 0 else "sliding_attention" for i in range(35)]
    return {
        "architectures": ["Gemma3nForConditionalGeneration"], "model_type": "gemma3n", "torch_dtype": "bfloat16",
        "audio_soft_tokens_per_image": 188, "vision_soft_tokens_per_image": 256,
        "audio_config": {
            "model_type": "gemma3n_audio", "hidden_size": 1536, "input_feat_size": 128, "vocab_size": 128,
            "vocab_offset": 262272, "conf_attention_chunk_size": 12, "conf_attention_context_left": 13,
            "conf_attention_context_right": 0, "conf_attention_logit_cap": 50.0, "conf_conv_kernel_size": 5,
            "conf_num_attention_heads": 8, "conf_num_hidden_layers": 12, "conf_reduction_factor": 4,
            "conf_residual_weight": 0.5, "gradient_clipping": 10000000000.0, "rms_norm_eps": 1e-06,
            "sscp_conv_channel_size": [128, 32], "sscp_conv_group_norm_eps": 0.001,
            "sscp_conv_kernel_size": [[3, 3], [3, 3]], "sscp_conv_stride_size": [[2, 2], [2, 2]]},
        "text_config": {
            "model_type": "gemma3n_text", "activation_sparsity_pattern": [0.95] * 10 + [0.0] * 25,
            "altup_active_idx": 0, "altup_coef_clip": 120.0, "altup_correct_scale": True, "altup_num_inputs": 4,
            "attention_bias": False, "final_logit_softcapping": 30.0, "head_dim": 256,
            "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2048, "hidden_size_per_layer_input": 256,
            "intermediate_size": [16384] * 35, "laurel_rank": 64, "layer_types": lt,
            "max_position_embeddings": 32768, "num_attention_heads": 8, "num_hidden_layers": 35,
            "num_key_value_heads": 2, "num_kv_shared_layers": 15, "query_pre_attn_scalar": 256,
            "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0, "rope_scaling": None, "rope_theta": 1000000.0,
            "sliding_window": 512, "vocab_size": 262400, "vocab_size_per_layer_input": 262144},
        "vision_config": {
            "model_type": "gemma3n_vision", "architecture": "mobilenetv5_300m_enc", "do_pooling": True,
            "hidden_size": 2048, "label_names": ["LABEL_0", "LABEL_1"], "model_args": None, "num_classes": 2,
            "rms_norm_eps": 1e-06, "vocab_offset": 262144, "vocab_size": 128},
    }


def e2b_from_memory() -> dict:
    cfg = e4b_from_memory()
    cfg["text_config"].update(num_hidden_layers=30, intermediate_size=[8192] * 30, num_kv_shared_layers=10,
                              activation_sparsity_pattern=[0.95] * 10 + [0.0] * 20,
                              layer_types=cfg["text_config"]["layer_types"][:30])
    return cfg


# ---------------------------------------------------------------- without torch: hand counts, vLLM facts

def test_e4b_hand_count_and_split():
    """Text model 6,835,235,568 (tests/test_gemma3n.py), MobileNetV5-300M 294,126,912 (the table), the audio
    conformer and both embedders by hand from transformers' modules."""
    spec = build_spec(e4b_from_memory())
    assert spec.unsupported_reason is None and spec.family == "gemma3n"
    h = 1536
    sscp = 128 * 1 * 9 + 128 + 32 * 128 * 9 + 32 + h * 32 * 32      # freq 128 -> 64 -> 32 bins
    block = (2 * (2 * 4 * h * h + 2 * h)                              # two macaron feed-forwards
             + 5 * h * h + h // 8 + 2 * h                             # q, k, v, pos_proj, post; per_dim_scale; norms
             + 3 * h * h + h * 5 + 2 * h                              # light conv
             + h)
    audio = sscp + 12 * block
    embedders = (128 * 2048 + 2 * 2048 + 2048 * 2048) + (128 * h + 2 * h + 2048 * h)
    assert audio == 681_348_640
    assert spec.params_total == 6_835_235_568 + 294_126_912 + audio + embedders == 7_818_517_072
    assert spec.params_text == 6_835_235_568
    split = vision_split(spec)
    assert split == {"tower": 294_126_912 + audio, "projector": embedders}


def test_e2b_from_memory():
    """E2B: the same towers and embedders over a 30-layer text model (the total is checked against the meta
    device below; the published "5.44B" could not be checked here -- config and figure are from memory)."""
    spec = build_spec(e2b_from_memory())
    assert spec.params_total - spec.params_text == 7_818_517_072 - 6_835_235_568
    assert spec.params_text == build_spec(dict(e2b_from_memory()["text_config"])).params_total


def test_vllm_sharding_and_encoder_budget():
    """vLLM gemma3n_mm.py: towers via AutoModel (plain torch: replicated, never quantized); embedders'
    ``embedding`` VocabParallelEmbedding, ``embedding_projection`` RowParallelLinear without quant_config;
    get_max_tokens_per_item {"image": 256, "audio": 188}; Gemma3nForCausalLM lacks SupportsPP."""
    spec = build_spec(defaults())
    by = {t.name: t for t in spec.tensors}
    tower = [t for t in spec.tensors if t.name.startswith(("model.vision_tower.", "model.audio_tower."))]
    assert tower and all(t.shard is Shard.REPLICATED and not t.quantizable for t in tower)
    for name in ("embed_vision", "embed_audio"):
        assert by[f"model.{name}.embedding.weight"].shard is Shard.VOCAB
        proj = by[f"model.{name}.embedding_projection.weight"]
        assert proj.shard is Shard.ROW and not proj.quantizable and proj.shape[0] == 2048
    assert by["model.embed_audio.embedding.weight"].shape == (128, 1536)
    assert spec.mm_item_tokens == 256 and spec.multimodal
    assert spec.pp_invalid and "SupportsPP" in spec.pp_invalid
    assert not any(t.name.startswith("lm_head") for t in spec.tensors)
    assert not any("output channels" in n for n in spec.notes)
    odd = build_spec(dict(defaults(), vision_config=dict(defaults()["vision_config"], hidden_size=1024)))
    assert odd.unsupported_reason is None and any("2048 output channels" in n for n in odd.notes)


def test_trimmed_config_uses_class_default_towers():
    cfg = {"model_type": "gemma3n", "text_config": defaults()["text_config"]}
    spec = build_spec(cfg)
    assert spec.params_total == 7_818_517_072
    assert any("no vision_config" in n for n in spec.notes) and any("no audio_config" in n for n in spec.notes)


@pytest.mark.parametrize(("change", "words"), [
    ({"vision_config": {"architecture": "resnet50"}}, "'resnet50': not in reportgen's timm tower table"),
    ({"vision_config": {"architecture": "mobilenetv5_300m_enc", "model_args": {"depth": 3}}}, "model_args"),
    ({"tie_word_embeddings": False}, "no lm_head"),
    ({"audio_config": {"model_type": "whisper"}}, "'whisper' audio_config"),
])
def test_refusals(change, words):
    reason = build_spec(dict(defaults(), **change)).unsupported_reason
    assert reason and words in reason, reason


def test_unknown_timm_name_reason_names_the_table():
    reason = build_spec(dict(defaults(), vision_config={"architecture": "vit_base_patch16_224"})).unsupported_reason
    assert "timm 1.0.29" in reason and "mobilenetv5_300m_enc" in reason


@pytest.mark.parametrize(("audio", "field"), [
    ({"conf_num_attention_heads": 7}, "audio_config.conf_num_attention_heads"),
    ({"sscp_conv_channel_size": [8]}, "audio_config.sscp_conv_channel_size"),
    ({"input_feat_size": 1, "sscp_conv_kernel_size": [[3, 9], [3, 3]]}, "audio_config.sscp_conv_kernel_size"),
])
def test_bad_audio_fields_name_the_field(audio, field):
    from reportgen.arch.errors import ConfigError

    cfg = defaults()
    cfg["audio_config"].update(audio)
    with pytest.raises(ConfigError) as e:
        build_spec(cfg)
    assert e.value.field == field


def test_table_provenance():
    assert TABLE["generated_by"] == "scripts/timm_towers.py" and TABLE["timm_version"] == "1.0.29"
    assert TABLE["create_model"] == {"pretrained": False, "num_classes": 0}
    e = TABLE["architectures"]["mobilenetv5_300m_enc"]
    assert e["params"] == sum(__import__("math").prod(s) for _, s in e["parameters"]) == 294_126_912


# ---------------------------------------------------------------- against timm and the meta device

@needs_timm
def test_timm_table_matches_timm():
    """Every architecture of the committed table rebuilt with the installed timm: same tensors, same order."""
    import timm

    assert timm.__version__ == TABLE["timm_version"], "regenerate with scripts/timm_towers.py"
    assert set(TABLE["architectures"]) == set(timm.list_models(timm_towers.PATTERN))
    fresh = timm_towers.build_table(list(TABLE["architectures"]))
    assert fresh["architectures"] == TABLE["architectures"]


@needs_timm
@pytest.mark.parametrize("make", [defaults, e4b_from_memory, e2b_from_memory])
def test_exact_on_meta_device(make):
    assert_exact(make())


@st.composite
def gemma3n_configs(draw):
    text = draw(gemma3n_text_configs())
    for key in ("architectures", "pad_token_id", "bos_token_id", "eos_token_id"):
        text.pop(key, None)
    heads = draw(st.integers(1, 4))
    kernels = [[draw(st.integers(1, 4)), draw(st.integers(1, 4))] for _ in range(2)]
    audio = dict(model_type="gemma3n_audio", hidden_size=heads * draw(st.sampled_from([2, 4, 8])),
                 conf_num_attention_heads=heads, conf_num_hidden_layers=draw(st.integers(0, 2)),
                 conf_conv_kernel_size=draw(st.integers(1, 6)), vocab_size=draw(st.integers(1, 200)),
                 sscp_conv_channel_size=[draw(st.integers(1, 16)), draw(st.integers(1, 16))],
                 sscp_conv_kernel_size=kernels,
                 sscp_conv_stride_size=[[draw(st.integers(1, 3)), draw(st.integers(1, 3))] for _ in range(2)],
                 input_feat_size=draw(st.integers(4, 64)))
    vision = dict(model_type="gemma3n_vision", architecture=draw(st.sampled_from(sorted(TABLE["architectures"]))),
                  hidden_size=draw(st.integers(1, 64)), vocab_size=draw(st.integers(1, 200)))
    return dict(model_type="gemma3n", architectures=["Gemma3nForConditionalGeneration"], text_config=text,
                audio_config=audio, vision_config=vision)


@needs_timm
@SETTINGS
@given(gemma3n_configs())
def test_random_gemma3n_configs_match_meta_device(cfg):
    assert_exact(cfg)


def test_limit_mm_per_prompt_drops_each_tower_on_its_own():
    """vLLM marks the vision tower + embed_vision as the "image" tower and the audio tower + embed_audio as the
    "audio" one: a limit of 0 skips that pair; both at 0 is text only (no encoder profile)."""
    from reportgen.estimate.encoder import apply_limits

    spec = build_spec(defaults())
    no_image = apply_limits(spec, {"image": 0})
    assert no_image.multimodal and no_image.params_total == spec.params_total - 294_126_912 - 4_460_544
    no_audio = apply_limits(spec, {"audio": 0})
    assert no_audio.multimodal and no_audio.params_total == spec.params_total - 681_348_640 - 3_345_408
    text = apply_limits(spec, {"image": 0, "audio": 0})
    assert not text.multimodal and text.params_total == 6_835_235_568
    assert apply_limits(spec, {"image": 2}) is spec
    # vLLM MultiModalBudget (budget.py @03ff0a31) profiles the largest item of the modalities left:
    # get_max_tokens_per_item {"image": 256, "audio": 188}
    assert spec.mm_item_tokens == 256 and no_image.mm_item_tokens == 188 and no_audio.mm_item_tokens == 256


def test_per_layer_embeddings_buffer_priced_per_batched_token():
    """vLLM allocates per_layer_embeddings = zeros(max_num_batched_tokens, 35, 256) in the model dtype at init:
    8,960 elements = 17,920 bf16 bytes per batched token (146.8 MB at 8,192), text only included."""
    import dataclasses

    from reportgen.estimate.encoder import apply_limits
    from reportgen.estimate.layout import Layout
    from reportgen.estimate.tables import activation_coeffs, model_facts

    spec = build_spec(defaults())
    assert spec.init_buffer_per_token == 35 * 256
    assert apply_limits(spec, {"image": 0, "audio": 0}).init_buffer_per_token == 35 * 256
    with_buf = activation_coeffs(model_facts(spec), Layout(tp=2, pp=1), 2.0)["a_add_t"]
    without = activation_coeffs(model_facts(dataclasses.replace(spec, init_buffer_per_token=0)), Layout(tp=2, pp=1),
                                2.0)["a_add_t"]
    assert with_buf - without == 17_920 and 17_920 * 8192 == 146_800_640
