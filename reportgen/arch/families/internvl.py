"""InternVL in the Hugging Face format (``InternVLForConditionalGeneration``, model_type ``internvl``).

Shapes: transformers 5.24 ``modeling_internvl.py``: ``vision_tower`` = ``InternVLVisionModel``
(``embeddings.cls_token``, ``mask_token`` when ``use_mask_token``, patch ``Conv2d`` with bias,
``position_embeddings`` of ``num_patches + 1`` rows when ``use_absolute_position_embeddings``;
``encoder.layer.{i}``: ``attention.q/k/v_proj`` (bias = ``attention_bias``), ``projection_layer``
(with bias), ``q_norm`` / ``k_norm`` RMSNorms over the whole width when ``use_qk_norm``,
``layernorm_before`` / ``layernorm_after`` (LayerNorm or RMSNorm by ``norm_type``), ``lambda_1`` /
``lambda_2`` layer scales, ``mlp.fc1`` / ``fc2`` with biases; a final ``layernorm`` unless
``use_mean_pooling``); ``multi_modal_projector`` = LayerNorm + ``linear_1`` + ``linear_2`` (biases)
on the pixel-shuffled width ``vision_hidden * int(1 / downsample_ratio)**2``.  The language model
is built by its verified adapter (qwen2 -- the class default --, qwen3, qwen3_moe, llama).

vLLM serves this architecture with ``InternS1ForConditionalGeneration`` (registry:
``"InternVLForConditionalGeneration": ("interns1", "InternS1ForConditionalGeneration")``), read at
``interns1.py`` @9dd1d31d and ``interns1_vit.py`` @6bcb25f7:

* the tower is built whole (``num_hidden_layers_override = num_hidden_layers``, no dummy heads):
  every checkpoint parameter is loaded, whatever ``vision_feature_layer`` says (vLLM always takes the
  last layer's output -- a config with another feature layer is served with different features;
  noted, the weights are the same);
* ``InternSdpaAttention``: q/k/v and ``projection_layer`` are plain ``nn.Linear`` -- whole on every
  rank, never quantized; q/k norms replicated;
* ``InternS1VisionMLP``: ``fc1`` ColumnParallelLinear, ``fc2`` RowParallelLinear; the encoder is
  built without ``quant_config`` (``InternS1VisionModel`` does not pass it on), so never quantized;
* embeddings, norms and layer scales replicated;
* ``InternS1MultiModalProjector``: LayerNorm + two plain ``nn.Linear``: replicated, never quantized;
* ``self.llm_arch_name = config.text_config.architectures[0]``: a text config without
  ``architectures`` cannot be served (refused, as is an architecture that does not match the text
  model_type).

Largest item (encoder budget, ``ModelSpec.mm_item_tokens``), ``interns1.py`` @01dc2879
(``InternS1ProcessingInfo``; it defines no ``get_mm_max_tokens_per_item``, so vLLM counts the dummy
inputs' placeholders): ``get_image_size_with_most_features`` walks the tilings of up to ``max_patches + 1``
tiles (``resolve_interns1_min_max_num``: +1 for the thumbnail when ``crop_to_patches``) and
``get_num_image_tokens`` = ``image_seq_length x get_number_of_image_patches`` (transformers 5.24
``GotOcr2ImageProcessor``: ``max_patches`` tiles + 1 thumbnail at most).  The published InternVL3 ``-hf``
processors ship ``crop_to_patches: true``, ``max_patches: 12`` and ``image_seq_length`` 256 =
``(image_size / patch_size)**2 * downsample_ratio**2`` (processing_internvl.py's own formula, computed here from
the config): 13 x 256 = 3,328 tokens.  The processor files are not read, so 12 tiles is an assumption (the
published value, like the Qwen-VL ``max_pixels``).  The dummy *video* (same file,
``get_num_frames_with_most_features``: ``max((max_model_len - 3,328) // image_seq_length, 1)`` frames of
``image_seq_length`` tokens, ``mm_video.internvl_video_frames``) makes vLLM's largest item about ``max_model_len``
when videos are allowed: priced per length (``mm_video.set_internvl_video``, ``exprs.encoder_lens``) through the
per-token encoder term only -- InternViT's own peak over those frames is not modelled, so the encoder profile
here is a lower bound for such runs (docs/architecture.md "Encoder budget").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch import mm_video
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families import llama, llava, moe, multimodal
from reportgen.arch.fields import LIMITS, Fields, check_int
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor

V = C.VISION
# text model_type -> (builder, the vLLM architecture its text_config must name)
TEXT = {"qwen2": (llama.build, "Qwen2ForCausalLM"), "qwen3": (llama.build, "Qwen3ForCausalLM"),
        "llama": (llama.build, "LlamaForCausalLM"), "qwen3_moe": (moe.build, "Qwen3MoeForCausalLM")}
TOWER = "internvl_vision"
MAX_PATCHES = 12       # published InternVL3 -hf preprocessor_config.json (GotOcr2ImageProcessor's default too)
P = "vision_tower"


def prepare(config: Mapping[str, Any]) -> Mapping[str, Any]:
    vis = config.get("vision_config")
    if isinstance(vis, Mapping):
        # image_size / patch_size may be (h, w) pairs: each side checked like a single value, then
        # the rest of the config through the shared checks
        vis = dict(vis)
        for name in ("image_size", "patch_size"):
            val = vis.pop(name, None)
            for x in (val if isinstance(val, (list, tuple)) and len(val) == 2 else [val] if val is not None else []):
                check_int(f"vision_config.{name}", x, *LIMITS[name])
        config = {**config, "vision_config": vis}
    text = llava.prepare(config, default_text="qwen2", towers=(TOWER,), default_tower=TOWER, text_types=TEXT)
    arch = text.get("architectures")
    mt = text.get("model_type", "qwen2")
    if not arch:
        raise Unsupported("internvl without text_config.architectures: vLLM's InternS1ForConditionalGeneration "
                          "reads text_config.architectures[0] to build the language model")
    if not isinstance(arch, (list, tuple)) or arch[0] != TEXT[mt][1]:
        raise Unsupported(f"internvl text_config.architectures {arch!r} does not name {TEXT[mt][1]} "
                          f"(the vLLM model for a {mt!r} text config); not modelled")
    return text


def _pair(v: Fields, name: str) -> tuple[int, int]:
    val = getattr(v.obj, name)
    pair = tuple(val) if isinstance(val, (list, tuple)) else (val, val)
    if len(pair) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in pair):
        raise ConfigError(f"vision_config.{name}", f"must be a positive integer or a pair of them, got {val!r}")
    return pair


def _rep(ts: list[Tensor], name: str, shape: tuple[int, ...]) -> None:
    ts.append(Tensor(name, shape, S.REPLICATED, V, None))


def tower(ts: list[Tensor], v: Fields) -> int:
    """InternVLVisionModel as vLLM's InternS1VisionModel holds it; returns the tower width."""
    h, inter = v.int("hidden_size"), v.int("intermediate_size")
    heads = v.int("num_attention_heads")
    if h % heads:
        raise v.err("num_attention_heads", f"{heads} does not divide hidden_size {h}")
    (i0, i1), (p0, p1) = _pair(v, "image_size"), _pair(v, "patch_size")
    if i0 < p0 or i1 < p1:
        raise v.err("image_size", f"{(i0, i1)} is smaller than patch_size {(p0, p1)}")
    norm_type = v.get("norm_type", "layer_norm")
    if norm_type not in ("layer_norm", "rms_norm"):
        raise v.err("norm_type", f"must be layer_norm or rms_norm, got {norm_type!r}")
    ln = norm_type == "layer_norm"
    e = f"{P}.embeddings"
    _rep(ts, f"{e}.cls_token", (1, 1, h))
    if v.flag("use_mask_token"):
        _rep(ts, f"{e}.mask_token", (1, 1, h))
    _rep(ts, f"{e}.patch_embeddings.projection.weight", (h, v.int("num_channels"), p0, p1))
    _rep(ts, f"{e}.patch_embeddings.projection.bias", (h,))
    if v.flag("use_absolute_position_embeddings", True):
        _rep(ts, f"{e}.position_embeddings", (1, (i0 // p0) * (i1 // p1) + 1, h))
    qkv_bias, qk_norm = v.flag("attention_bias"), v.flag("use_qk_norm")
    for i in range(v.int("num_hidden_layers")):
        p = f"{P}.encoder.layer.{i}"
        for name in ("q_proj", "k_proj", "v_proj"):
            B.linear(ts, f"{p}.attention.{name}", h, h, S.REPLICATED, V, None, bias=qkv_bias, quantizable=False)
        B.linear(ts, f"{p}.attention.projection_layer", h, h, S.REPLICATED, V, None, bias=True, quantizable=False)
        if qk_norm:
            B.norm(ts, f"{p}.attention.q_norm", h, None, comp=V)
            B.norm(ts, f"{p}.attention.k_norm", h, None, comp=V)
        B.norm(ts, f"{p}.layernorm_before", h, None, comp=V, bias=ln)
        B.norm(ts, f"{p}.layernorm_after", h, None, comp=V, bias=ln)
        _rep(ts, f"{p}.lambda_1", (h,))
        _rep(ts, f"{p}.lambda_2", (h,))
        B.linear(ts, f"{p}.mlp.fc1", h, inter, S.COLUMN, V, None, bias=True, quantizable=False)
        B.linear(ts, f"{p}.mlp.fc2", inter, h, S.ROW, V, None, bias=True, quantizable=False)
    if not v.flag("use_mean_pooling", True):
        B.norm(ts, f"{P}.layernorm", h, None, comp=V, bias=True)
    return h


def build(f: Fields, spec: ModelSpec) -> None:
    text = Fields(f.obj.text_config, f.raw.get("text_config") or {}, "text_config.")
    vis = Fields(f.obj.vision_config, f.raw.get("vision_config") or {}, "vision_config.")
    if f.raw.get("vision_config") is None:
        spec.notes.append("config has no vision_config: the vision tower is transformers' class default")
    TEXT[text.model_type][0](text, spec)
    multimodal.note_tie(f, spec)
    if "tie_word_embeddings" not in f.raw and f.obj.tie_word_embeddings != spec.tie_word_embeddings:
        spec.notes.append(f"InternVLConfig's default tie_word_embeddings={f.obj.tie_word_embeddings} differs from the "
                          f"language model's {spec.tie_word_embeddings}; vLLM follows the language model")
    ts = spec.tensors
    h_v = tower(ts, vis)
    ratio = f.obj.downsample_ratio
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 < ratio <= 1:
        raise ConfigError("downsample_ratio", f"must be a number in (0, 1], got {ratio!r}")
    wide = h_v * int(1 / ratio) ** 2
    h_t = spec.hidden_size
    B.norm(ts, "multi_modal_projector.layer_norm", wide, None, comp=V, bias=True)
    B.linear(ts, "multi_modal_projector.linear_1", wide, h_t, S.REPLICATED, V, None, bias=True, quantizable=False)
    B.linear(ts, "multi_modal_projector.linear_2", h_t, h_t, S.REPLICATED, V, None, bias=True, quantizable=False)
    (i0, i1), (p0, p1) = _pair(vis, "image_size"), _pair(vis, "patch_size")
    per_tile = int((i0 // p0) * (i1 // p1) * ratio * ratio)
    spec.mm_item_tokens = (MAX_PATCHES + 1) * per_tile
    spec.notes.append(f"largest image: {spec.mm_item_tokens:,} tokens ({MAX_PATCHES} tiles + thumbnail x {per_tile}: "
                      "the published processors' max_patches)")
    mm_video.set_internvl_video(spec, per_tile)
    layer = f.get("vision_feature_layer", -1)
    if layer != -1:
        spec.notes.append(f"vision_feature_layer={layer!r}: vLLM (interns1.py) always feeds the projector the last "
                          "layer's output; the weights are the same")
    spec.multimodal = True
