"""Kimi-K2.5 (``kimi_k25``): the DeepSeek-V3 text stack (Kimi-K2) + the MoonViT-3D vision tower.

Follows vLLM ``vllm/model_executor/models/kimi_k25.py`` @009dff45c7165c77235e08edb3c8ebbd853dee06
(language model: vLLM's DeepseekV2Model with the text config, ``families/deepseek.py``; the vision
tower and projector are built without ``quant_config`` and cast to the model dtype, so no checkpoint
scheme quantizes them; ``lm_head`` is always its own ParallelLMHead, never tied) and the tower in
``vllm/model_executor/models/kimi_k25_vit.py`` @055e47c28003156421365af985d676fc921cb075:

* ``MoonVision3dPatchEmbed``: Conv2d(3 -> hidden, patch x patch, bias) and a learned
  ``init_pos_emb_height x init_pos_emb_width x hidden`` grid (the time table is a buffer);
* ``MoonViTEncoderLayer`` x layers: ``norm0`` / ``norm1`` LayerNorms, ``wqkv``
  (QKVParallelLinear, heads split over TP like Q), ``wo`` (row), ``mlp.fc0`` (column) / ``mlp.fc1``
  (row), all with biases; ``final_layernorm``;
* ``KimiK25MultiModalProjector`` (``patchmerger``): ``pre_norm`` LayerNorm(hidden), ``linear_1``
  (merged = hidden x kh x kw -> merged) and ``linear_2`` (merged -> text hidden), ReplicatedLinear
  with biases.

Sharding assumes vLLM's default ``mm_encoder_tp_mode="weights"``; in ``"data"`` mode the tower is
replicated on every rank instead (not modelled).  Parameter names follow transformers 5.24's
``Kimi_K25ForConditionalGeneration`` (q/k/v/proj, fc1/fc2, in_proj/out_proj), which the meta-device
count is taken from.

The shipped config names the tower dims ``vt_hidden_size`` & co. (remote-code names); vLLM's
KimiK25VisionConfig reads them, transformers' Kimi_K25VisionConfig does not (it reads
``hidden_size`` ...).  Where the two readings differ -- or the config selects a tower variant
transformers cannot build (``patchmergerv2`` projector, RMSNorm, no biases, a separate
``qkv_hidden_size``) -- the model is refused: vLLM would load a different tower than the one the
meta device counts.  The tie flag is the language model's (as for the other composites).
"""

from __future__ import annotations

from typing import Any

from reportgen.arch.errors import Unsupported
from reportgen.arch.families import deepseek, towers_moonvit
from reportgen.arch.fields import Fields
from reportgen.arch.spec import ModelSpec

# transformers 5.24's Kimi_K25ForConditionalGeneration names (the tower is towers_moonvit's, as Kimi-VL's)
NAMES = towers_moonvit.Names(tower="model.vision_tower", layers="layers", pos="patch_embed.pos_emb.position_embeddings",
                             norms=("norm1", "norm2"), qkv=("attn.q_proj", "attn.k_proj", "attn.v_proj"),
                             out="attn.proj", mlp=("mlp.fc1", "mlp.fc2"), final_norm="final_layernorm",
                             projector=("model.mm_projector.pre_norm", "model.mm_projector.in_proj",
                                        "model.mm_projector.out_proj"))
# vLLM tower options and the value transformers' model is built with
_FIXED = {"pos_emb_type": "divided_fixed", "merge_type": "sd2_tpool", "mm_projector_type": "patchmerger",
          "attn_bias": True, "linear_bias": True, "patch_embed_proj_bias": True, "norm_type": "layernorm",
          "mlp_type": "mlp2", "qkv_hidden_size": None, "video_attn_type": "spatial_temporal"}
# (vLLM field, remote-code alias, transformers field)
_DIMS = (("hidden_size", "vt_hidden_size", "hidden_size"),
         ("intermediate_size", "vt_intermediate_size", "intermediate_size"),
         ("num_hidden_layers", "vt_num_hidden_layers", "num_hidden_layers"),
         ("num_attention_heads", "vt_num_attention_heads", "num_attention_heads"),
         ("init_pos_emb_height", None, "pos_emb_height"),
         ("init_pos_emb_width", None, "pos_emb_width"),
         ("init_pos_emb_time", None, "pos_emb_time"))
_VLLM_DEFAULTS = {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                  "num_attention_heads": 16, "init_pos_emb_height": 64, "init_pos_emb_width": 64,
                  "init_pos_emb_time": 4}


def _vllm_dim(raw: dict, name: str, alias: str | None) -> Any:
    for key in (name, alias):
        if key and raw.get(key) is not None:
            return raw[key]
    return _VLLM_DEFAULTS[name]


def _tower_dims(vis: Fields) -> dict[str, int]:
    raw = vis.raw
    for key, want in _FIXED.items():
        if raw.get(key, want) != want:
            raise Unsupported(f"kimi_k25 vision_config.{key}={raw[key]!r}: transformers builds only the "
                              f"{want!r} tower; not modelled")
    dims: dict[str, int] = {}
    for name, alias, hf_name in _DIMS:
        v, h = _vllm_dim(raw, name, alias), vis.int(hf_name)
        if v != h:
            raise Unsupported(f"kimi_k25 vision_config: vLLM reads {alias or name}={v}, transformers "
                              f"{hf_name}={h}; the towers differ, not modelled")
        dims[name] = h
    patch = vis.get("patch_size")
    patch = (patch, patch) if isinstance(patch, int) else tuple(patch or ())
    merge = tuple(vis.get("merge_kernel_size") or ())
    if len(patch) != 2 or len(merge) != 2 or not all(isinstance(x, int) and x > 0 for x in patch + merge):
        raise vis.err("patch_size", "patch_size and merge_kernel_size must be positive ints / pairs")
    if dims["hidden_size"] % dims["num_attention_heads"]:
        raise vis.err("hidden_size", "is not a multiple of the attention heads")
    dims["patch_h"], dims["patch_w"] = patch
    dims["merge"] = merge[0] * merge[1]
    return dims


def build(f: Fields, spec: ModelSpec) -> None:
    text = Fields(f.obj.text_config, f.raw["text_config"], "text_config.")
    vis = Fields(f.obj.vision_config, f.raw["vision_config"], "vision_config.")
    if text.model_type != "deepseek_v3":
        raise Unsupported(f"kimi_k25 with a {text.model_type!r} language model is not supported")
    d = _tower_dims(vis)
    deepseek.build(text, spec)
    if spec.tie_word_embeddings:
        raise Unsupported("kimi_k25 with a tied language model: vLLM's KimiK25ForConditionalGeneration always "
                          "builds its own lm_head; not modelled")
    top_tie = f.raw.get("tie_word_embeddings")
    if top_tie is not spec.tie_word_embeddings:
        spec.notes.append(f"top-level tie_word_embeddings={top_tie} differs from the language model's "
                          f"{spec.tie_word_embeddings}; the language model's flag is used (as vLLM does)")
    h_t = spec.hidden_size
    h = d["hidden_size"]
    proj_h = f.get("projection_hidden_size")
    if proj_h is not None and proj_h != h:
        raise Unsupported(f"kimi_k25 projection_hidden_size {proj_h} != vision hidden_size {h}: vLLM's "
                          "projector norm is the vision width; not modelled")
    mm_h = f.raw["vision_config"].get("mm_hidden_size")
    if mm_h is not None and mm_h not in (h, h_t):
        raise Unsupported(f"kimi_k25 vision_config.mm_hidden_size {mm_h}: vLLM projects to it, not to the "
                          f"text hidden size {h_t}; not modelled")
    towers_moonvit.tower(spec.tensors, NAMES, hidden=h, inter=d["intermediate_size"], layers=d["num_hidden_layers"],
                         patch=(d["patch_h"], d["patch_w"]), pos_hw=(d["init_pos_emb_height"], d["init_pos_emb_width"]))
    towers_moonvit.projector(spec.tensors, NAMES, hidden=h, merge=d["merge"], text_hidden=h_t)
    spec.multimodal = True
