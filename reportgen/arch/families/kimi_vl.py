"""Kimi-VL (``kimi_vl``: Kimi-VL-A3B-Instruct / -Thinking / -Thinking-2506): MoonViT + patch merger + DeepSeek-V3 stack.

transformers 5.24 has no Kimi-VL class (the checkpoints ship remote code, never run here), so the model is
built from vLLM's own files, read at:

* ``vllm/model_executor/models/kimi_vl.py`` @055e47c28003156421365af985d676fc921cb075:
  ``KimiVLForConditionalGeneration`` = ``vision_tower`` (MoonVitPretrainedModel) + ``multi_modal_projector``
  (``pre_norm`` LayerNorm(vision hidden), ``linear_1`` / ``linear_2`` ReplicatedLinear with biases, no
  ``quant_config``) + ``language_model`` = ``init_vllm_registered_model(text_config,
  architectures=["DeepseekV2ForCausalLM"])``; ``AutoWeightsLoader`` for everything.
* ``vllm/model_executor/models/moonvit.py`` @055e47c2: the 2-D MoonViT tower (``towers_moonvit``; shared with
  Kimi-K2.5's MoonViT-3D, whose parameters are the same): ``patch_embed.proj`` Conv2d + ``pos_emb.weight``
  (``init_pos_emb_height x init_pos_emb_width x hidden``), ``encoder.blocks.i`` = ``norm0`` / ``norm1``,
  ``wqkv`` (QKVParallelLinear, as many K/V heads as heads: every part split by heads), ``wo`` (row),
  ``mlp.fc0`` (column) / ``mlp.fc1`` (row), all biased; ``encoder.final_layernorm``; ``Rope2DPosEmb`` holds no
  parameter.  No ``quant_config`` reaches the tower.
* ``vllm/model_executor/models/deepseek_v2.py`` @002d6073: ``DeepseekV2ForCausalLM`` -- MLA (no biases),
  MoE where ``i >= first_k_dense_replace and i % moe_layer_freq == 0``, MLPs without biases, silu only, an
  ``lm_head`` of its own (never tied) -- ``families/deepseek.py`` with ``vllm_reading=True``.
* the config classes vLLM parses ``kimi_vl`` with (its own, not transformers'):
  ``vllm/transformers_utils/configs/kimi_vl.py`` @055e47c2 (a shim to
  ``vllm/foundation/integrations/transformers_utils/configs/kimi_vl.py`` @055e47c2, same text as
  ``transformers_utils/configs/kimi_vl.py`` @4487edc6): ``KimiVLConfig`` builds ``text_config`` with
  transformers' **DeepseekV2Config** (whatever the dict's ``model_type`` says: absent fields take V2's
  defaults, e.g. ``first_k_dense_replace`` 0, ``n_shared_experts`` 2, ``q_lora_rank`` 1536) and
  ``vision_config`` with ``MoonViTConfig`` (``transformers_utils/configs/moonvit.py`` @24cbcf2e, the stored
  version; @055e47c2 is a shim to a path the index lacks): patch 14, 64 x 64 position grid, 16 heads,
  27 layers, hidden 1152, intermediate 4304, merge kernel (2, 2).  reportgen does the same without remote
  code: ``parse`` below (the text part through transformers 5.24's DeepseekV2Config -- vLLM's transformers
  version may differ in a default) and ``VISION_DEFAULTS``.

Sharding assumes vLLM's default ``mm_encoder_tp_mode="weights"`` (``"data"`` replicates the tower: not
modelled).  Refused where vLLM would build something else than priced or nothing: ``attention_bias`` /
``mlp_bias`` (vLLM builds no such biases; its loader drops the checkpoint's), a tied language model, an
activation other than silu.  Not counted, as for every DeepSeek family here: the gate's
``e_score_correction_bias`` (``topk_method: noaux_tc``; E float32 values per MoE layer, 6.5 KiB for
Kimi-VL-A3B), MTP layers (``mtp_params`` only).  Not modelled: vLLM's tower TP rule (vision heads and
``intermediate_size`` must divide by tp; 16 / 4304 for the published checkpoints, which the text model's 16
heads already bound).

Encoder budget: vLLM profiles one dummy 1024 x 1024 image (``MaxImageTokenMeta``); its token count is
``ceil(1024 / (patch * kh)) * ceil(1024 / (patch * kw))`` (1,369 for patch 14, merge 2 x 2) unless the
processor's ``in_token_limit`` (``preprocessor_config.json``, not read) shrinks it first -- the larger figure
is used (the encoder budget is ``max(max_num_batched_tokens, item)``, so the bound errs high, and only below
1,369 batched tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families import deepseek, towers_moonvit
from reportgen.arch.families.mla_moe import refuse_attention_bias
from reportgen.arch.families.multimodal import check_subconfigs
from reportgen.arch.fields import Fields, check_int
from reportgen.arch.parse import parse_config
from reportgen.arch.spec import ModelSpec

# vLLM's MoonViTConfig defaults (configs/moonvit.py @24cbcf2e)
VISION_DEFAULTS: dict[str, Any] = {"patch_size": 14, "init_pos_emb_height": 64, "init_pos_emb_width": 64,
                                   "num_attention_heads": 16, "num_hidden_layers": 27, "hidden_size": 1152,
                                   "intermediate_size": 4304, "merge_kernel_size": (2, 2)}
# KimiVLConfig's own fields (configs/kimi_vl.py)
TOP_DEFAULTS: dict[str, Any] = {"ignore_index": -100, "media_placeholder_token_id": 163605, "pad_token_id": 0}
DUMMY_IMAGE = 1024      # kimi_vl.py MaxImageTokenMeta: the profiled image is 1024 x 1024
TOWER_DEFAULTS_NOTE = ("no vision_config: the tower is vLLM's MoonViTConfig defaults (27 layers, hidden 1152), as "
                       "vLLM's KimiVLConfig builds it")

# vLLM's / the checkpoint's names (moonvit.py, kimi_vl.py)
NAMES = towers_moonvit.Names(tower="vision_tower", layers="encoder.blocks", pos="patch_embed.pos_emb.weight",
                             norms=("norm0", "norm1"), qkv=("wqkv[q]", "wqkv[k]", "wqkv[v]"), out="wo",
                             mlp=("mlp.fc0", "mlp.fc1"), final_norm="encoder.final_layernorm",
                             projector=("multi_modal_projector.pre_norm", "multi_modal_projector.linear_1",
                                        "multi_modal_projector.linear_2"))


def prepare(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Sub-configs are objects, known fields in range; returns the raw text config."""
    if not isinstance(config.get("text_config"), Mapping):
        raise ConfigError("text_config", "is missing (a multimodal config needs its text sub-config)")
    check_subconfigs(config)
    return config["text_config"]


def parse(config: Mapping[str, Any], model_type: str) -> SimpleNamespace:
    """What vLLM's KimiVLConfig makes of the dict, without remote code: text_config through transformers'
    DeepseekV2Config, vision_config over MoonViTConfig's defaults, the top-level fields over KimiVLConfig's."""
    try:
        text = parse_config(config["text_config"], "deepseek_v2")
    except ConfigError as e:
        raise ConfigError(f"text_config.{e.field}", e.message) from None
    vis = {**VISION_DEFAULTS, **(config.get("vision_config") or {})}
    top = {**TOP_DEFAULTS, **{k: v for k, v in config.items() if isinstance(k, str)}}
    top.update(model_type=model_type, text_config=text, vision_config=SimpleNamespace(**vis))
    return SimpleNamespace(**top)


def _pair(vis: Fields, name: str) -> tuple[int, int]:
    v = vis.get(name)
    v = (v, v) if isinstance(v, int) and not isinstance(v, bool) else v
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise vis.err(name, f"must be an integer or a pair of integers, got {v!r}")
    return (check_int(f"{vis.prefix}{name}[0]", v[0], 1, 1 << 12, False),
            check_int(f"{vis.prefix}{name}[1]", v[1], 1, 1 << 12, False))


def tower_dims(vis: Fields) -> dict[str, Any]:
    """The MoonViT fields vLLM reads, validated (a head size MoonViT's 2-D RoPE cannot take is a ConfigError)."""
    d: dict[str, Any] = {k: vis.int(k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                 "num_attention_heads")}
    for k in ("init_pos_emb_height", "init_pos_emb_width"):
        d[k] = check_int(vis.prefix + k, vis.get(k), 1, 1 << 12, False)
    h, heads = d["hidden_size"], d["num_attention_heads"]
    if h % heads:
        raise vis.err("num_attention_heads", f"{heads} does not divide hidden_size {h}")
    if (h // heads) % 4:
        raise vis.err("num_attention_heads", f"head size {h // heads} is not a multiple of 4 (MoonViT's 2-D RoPE "
                      "asserts it)")
    d["patch"], d["merge"] = _pair(vis, "patch_size"), _pair(vis, "merge_kernel_size")
    return d


def build(f: Fields, spec: ModelSpec) -> None:
    text = Fields(f.obj.text_config, f.raw["text_config"], "text_config.")
    raw_vis = f.raw.get("vision_config")
    vis = Fields(f.obj.vision_config, raw_vis or {}, "vision_config.")
    d = tower_dims(vis)
    refuse_attention_bias(text)
    if text.flag("mlp_bias"):
        raise Unsupported("kimi_vl with mlp_bias: vLLM's DeepseekV2MLP has no biases (its loader drops the "
                          "checkpoint's); not modelled")
    if text.get("hidden_act") != "silu":
        raise Unsupported(f"kimi_vl with hidden_act {text.get('hidden_act')!r}: vLLM's DeepseekV2MLP / MoE accept "
                          "silu only")
    deepseek.build(text, spec, vllm_reading=True)
    if spec.tie_word_embeddings:
        raise Unsupported("kimi_vl with a tied language model: vLLM's DeepseekV2ForCausalLM always builds its own "
                          "lm_head; not modelled")
    if raw_vis is None:
        spec.notes.append(TOWER_DEFAULTS_NOTE)
    h, (kh, kw), (ph, pw) = d["hidden_size"], d["merge"], d["patch"]
    towers_moonvit.tower(spec.tensors, NAMES, hidden=h, inter=d["intermediate_size"], layers=d["num_hidden_layers"],
                         patch=d["patch"], pos_hw=(d["init_pos_emb_height"], d["init_pos_emb_width"]))
    towers_moonvit.projector(spec.tensors, NAMES, hidden=h, merge=kh * kw, text_hidden=spec.hidden_size)
    spec.multimodal = True
    spec.mm_item_tokens = -(-DUMMY_IMAGE // (ph * kh)) * -(-DUMMY_IMAGE // (pw * kw))
    spec.notes.append(f"largest image: {spec.mm_item_tokens:,} tokens (vLLM's 1024 x 1024 profiling image before "
                      "the processor's in_token_limit, which preprocessor_config.json sets and is not read)")
