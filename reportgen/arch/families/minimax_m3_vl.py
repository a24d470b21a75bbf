"""MiniMax-M3 as published (``minimax_m3_vl``): the MiniMax-M3 text stack + its CLIP-style 3-D-RoPE vision tower.

Follows vLLM ``vllm/models/minimax_m3/nvidia/model.py`` (``MiniMaxM3SparseForConditionalGeneration``; vllm 0.34.0 sdist
:1830-1903, 0.24.0 sdist :982-1044) and ``vllm/models/minimax_m3/common/vision_tower.py`` (0.34.0 sdist, cited
below as ``vt:LINE``; 0.24.0 - 0.33.0 hold the same modules and shapes, differences listed):

* language model: ``init_vllm_registered_model(hf_config=config.text_config, architectures=
  ["MiniMaxM3SparseForCausalLM"])`` (model.py 0.34.0:1895-1900) -- ``families/minimax_m3.py`` on the text_config
  (weights, the GQA + lightning-indexer KV cache, the topk buffer), ``lm_head`` its own weight;
* ``MiniMaxVLVisionModel`` (vt:611-661), built with the checkpoint's ``quant_config`` (model.py 0.34.0:1886-1893:
  ``quant_config=self.quant_config``; unlike Kimi-K2.5 a checkpoint scheme may quantize the tower's linears):
  ``MiniMaxVLPatchEmbed`` a Conv3d(C -> hidden, temporal x patch x patch, no bias) (vt:54-60), ``pre_layrnorm``
  LayerNorm (vt:359), ``num_hidden_layers`` x ``MiniMaxVLEncoderLayer`` (vt:185-221: ``layer_norm1`` /
  ``layer_norm2`` LayerNorms, ``qkv_proj`` QKVParallelLinear with as many K/V heads as Q heads -- all three split
  by heads: COLUMN --, ``out_proj`` RowParallelLinear, ``fc1`` ColumnParallelLinear, ``fc2`` RowParallelLinear, all
  with biases), no ``post_layernorm`` (``require_post_norm=False``, vt:632-637);
* ``multi_modal_projector`` (vt:527-559): ``linear_1`` (vision hidden -> mid, column), ``linear_2`` (mid -> text
  hidden, row); ``patch_merge_mlp`` (vt:568-599): ``linear_1`` (text hidden x spatial_merge_size**2 -> mid, column),
  ``linear_2`` (mid -> text hidden, row); ``mid = projector_hidden_size or text hidden``; biases from
  ``vision_config.multimodal_projector_bias`` / ``patch_merge_bias`` (default true).

Sharding assumes vLLM's default ``mm_encoder_tp_mode="weights"`` (``"data"`` replicates the tower,
``supports_encoder_tp_data``; not modelled).  Tensor names are transformers 5.25's
``MiniMaxM3SparseForConditionalGeneration`` (``model.vision_tower`` / ``model.multi_modal_projector``, whose
``merge_linear_1`` / ``_2`` are vLLM's ``patch_merge_mlp``), the meta-device oracle.

Which config vLLM reads: 0.24 - 0.33 parse ``minimax_m3_vl`` with vLLM's own ``MiniMaxM3Config`` (0.24.0
transformers_utils/config.py:106, configs/minimax_m3.py:123-149: ``vision_config`` kept as the raw dict, no
``projector_hidden_size`` default) and build the tower from ``PretrainedConfig.from_dict(vision_config)`` (model.py
0.24.0:1030-1032); 0.34 parses it with transformers' ``MiniMaxM3VLConfig`` (0.34.0 config.py:159, class defaults for
every vision field, ``projector_hidden_size`` 6144).  So a config priced on 0.24 - 0.33 must state what those
releases read without a default (``ModelSpec.served_from`` = 0.34 otherwise, with vLLM's failure or difference):
the vision dims, ``img_token_compression_config`` (its ``temporal_patch_size``, default 2, is the conv's temporal
kernel there: 0.24.0 vt:48-49; 0.34 reads ``vision_config.temporal_patch_size``, vt:45) and
``projector_hidden_size`` (absent: vLLM 0.24 - 0.33 make the projector text-hidden wide, transformers 6144).

Refused outright (vLLM and transformers build different towers on every release): a projector / patch-merge
bias switched off (transformers' projector always has biases), ``projector_hidden_size`` 0 / null (vLLM falls
back to the text width, transformers builds a 0-wide layer), a text model other than MiniMax-M3's, a tied head.

Per release: the patch-embedding conv is fp32 from vLLM 0.34 (vt:61-63, ``.to(torch.float32)``, "the vision tower's
only fp32 tensor"; 0.24 - 0.33 build ``nn.Conv3d`` in the model dtype and cast it to the input's, 0.24.0 vt:58-70):
``ModelSpec.from_release`` swaps in the tensor list with that tensor at 4 bytes (+2.9 MiB for the defaults).

Encoder profile items, from 0.34 (``from_release``; ``profile_items``): vLLM 0.34 ``common/mm_preprocess.py``
profiles a 3584 px square image (``_IMAGE_MAX_LONG_SIDE_PIXEL``, :52: 256 x 256 patches / 4 = 16,384 tokens) and a
video of up to 63 frames (``_MAX_FRAMES_PER_VIDEO``, :63) at 2184 px (:53, floored to 28): up to 32 temporal steps x
6,084 = 194,688 tokens, fewer when max_model_len caps the frames (``_get_max_video_frames``) -- the Qwen2-VL form
``encoder.video_item_tokens`` prices; the tower serves both modalities (``encoder.TOWER_MODALITIES``).  0.24 - 0.33
size both by the checkpoint image / video processor's ``max_pixels`` (up to 500 frames, :60), which config.json does
not carry: the generic ``max_num_batched_tokens`` budget there, a lower bound.

Not modelled: the tower's own activation peak in the profile run (``mm_tower_peak``: the encoder term is a lower
bound on every release, as for Kimi-K2.5); a tp that does not divide the vision heads (vLLM's ``divide`` asserts,
vt:100).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families import minimax_m3
from reportgen.arch.fields import Fields, prevalidate
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor

V = C.VISION
TOWER = "model.vision_tower"
PROJECTOR = "model.multi_modal_projector"
TEXT_TYPES = ("minimax_m3_vl_text",)
# vision fields vLLM 0.24 - 0.33 read off the raw vision_config dict without a default (vision_tower.py
# MiniMaxVLPatchEmbed / EncoderLayer / VisionTransformer / VisionModel attribute reads)
RAW_REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_channels",
                "patch_size", "spatial_merge_size", "layer_norm_eps", "img_token_compression_config")
TRANSFORMERS_PROJECTOR_HIDDEN = 6144   # MiniMaxM3VLConfig.projector_hidden_size default (transformers 5.25)
CONV_FP32_FROM, FP32 = (0, 34), 4       # MiniMaxVLPatchEmbed: .to(torch.float32) from vLLM 0.34 (vt:61-63)
# vLLM 0.34 common/mm_preprocess.py :52, :53, :63 (0.24 - 0.33 size the items by the processor's max_pixels instead)
ITEMS_FROM, IMAGE_MAX_SIDE, VIDEO_MAX_SIDE, MAX_FRAMES = (0, 34), 3584, 2188, 63


# text_config fields the text family validates itself (a per-layer list, not the generic integer)
TEXT_HANDLES = ("moe_layer_freq",)


def prepare(config: dict) -> dict:
    """Before parsing: ``text_config`` an object, ``vision_config`` an object or absent, fields in range (the text
    config's ``moe_layer_freq`` list left to ``minimax_m3``); returns ``text_config``."""
    text, vis = config.get("text_config"), config.get("vision_config")
    if not isinstance(text, Mapping):
        raise ConfigError("text_config", "is missing (a multimodal config needs its text sub-config)")
    if vis is not None and not isinstance(vis, Mapping):
        raise ConfigError("vision_config", f"must be an object, got {type(vis).__name__}")
    prevalidate({k: v for k, v in config.items() if k != "text_config"})
    prevalidate(text, "text_config.", skip=TEXT_HANDLES)
    return text


def _refuse(why: str) -> Unsupported:
    return Unsupported(f"minimax_m3_vl: {why}; vLLM (vllm/models/minimax_m3/common/vision_tower.py) and "
                       "transformers would build different towers; not modelled")


def _old_release_problem(raw: dict, vis_raw: dict, temporal: int, text_hidden: int) -> str | None:
    """Why vLLM 0.24 - 0.33 (vLLM's own MiniMaxM3Config, raw vision dict) fail or build another tower, else None."""
    missing = [k for k in RAW_REQUIRED if vis_raw.get(k) is None]
    if missing:
        return (f"vLLM 0.24 - 0.33 build the vision tower from the raw vision_config dict "
                f"(PretrainedConfig.from_dict, vllm/models/minimax_m3/nvidia/model.py), which lacks {missing[0]}: "
                f"AttributeError: 'PretrainedConfig' object has no attribute '{missing[0]}'")
    comp = vis_raw["img_token_compression_config"]
    old_t = comp.get("temporal_patch_size", 2) if isinstance(comp, dict) else None
    if old_t != temporal:
        return (f"vLLM 0.24 - 0.33 take the patch conv's temporal kernel from "
                f"vision_config.img_token_compression_config.temporal_patch_size ({old_t!r}), not "
                f"vision_config.temporal_patch_size ({temporal}) as transformers and vLLM 0.34 do")
    if raw.get("projector_hidden_size") is None and text_hidden != TRANSFORMERS_PROJECTOR_HIDDEN:
        return (f"vLLM 0.24 - 0.33's MiniMaxM3Config has no projector_hidden_size default, so the projector is "
                f"text hidden_size ({text_hidden}) wide, not transformers' {TRANSFORMERS_PROJECTOR_HIDDEN}")
    return None


def build(f: Fields, spec: ModelSpec) -> None:
    raw = f.raw
    text = Fields(f.obj.text_config, raw["text_config"], "text_config.")
    vis_raw = raw.get("vision_config") or {}
    vis = Fields(f.obj.vision_config, vis_raw, "vision_config.")
    if text.model_type not in TEXT_TYPES:
        raise Unsupported(f"minimax_m3_vl with a {text.model_type!r} language model is not supported "
                          "(vLLM builds MiniMaxM3SparseForCausalLM from text_config)")
    for key in ("multimodal_projector_bias", "patch_merge_bias"):
        if vis_raw.get(key, True) is not True:
            raise _refuse(f"vision_config.{key} is {vis_raw[key]!r} (vLLM builds the projector without biases, "
                          "transformers' MiniMaxM3VLMultiModalProjector always with)")
    if "projector_hidden_size" in raw and not raw["projector_hidden_size"]:
        raise _refuse(f"projector_hidden_size is {raw['projector_hidden_size']!r} (vLLM falls back to the text "
                      "hidden size, transformers builds it as given)")
    h, inter, layers = vis.int("hidden_size"), vis.int("intermediate_size"), vis.int("num_hidden_layers")
    heads = vis.int("num_attention_heads")
    if h % heads:
        raise vis.err("num_attention_heads", f"{heads} does not divide hidden_size {h}")
    chans, patch, temporal = vis.int("num_channels"), vis.int("patch_size"), vis.int("temporal_patch_size")
    merge = vis.int("spatial_merge_size")

    minimax_m3.build(text, spec)     # text stack (raises on a tied head: vLLM's ParallelLMHead is its own)
    h_t = spec.hidden_size
    mid = int(f.obj.projector_hidden_size)
    old = _old_release_problem(raw, vis_raw, temporal, h_t)
    if old:
        spec.served_from = ((0, 34), old)
    top_tie = raw.get("tie_word_embeddings")
    if top_tie is not None and top_tie is not spec.tie_word_embeddings:
        spec.notes.append(f"top-level tie_word_embeddings={top_tie} differs from the language model's "
                          f"{spec.tie_word_embeddings}; the language model's flag is used (as vLLM does)")

    ts = spec.tensors
    ts.append(Tensor(f"{TOWER}.embeddings.proj.weight", (h, chans, temporal, patch, patch), S.REPLICATED, V, None))
    B.norm(ts, f"{TOWER}.pre_layrnorm", h, None, comp=V, bias=True)
    for i in range(layers):
        p = f"{TOWER}.layers.{i}"
        B.norm(ts, f"{p}.layer_norm1", h, None, comp=V, bias=True)
        for part in ("q_proj", "k_proj", "v_proj"):
            B.linear(ts, f"{p}.self_attn.{part}", h, h, S.COLUMN, V, None, bias=True)
        B.linear(ts, f"{p}.self_attn.out_proj", h, h, S.ROW, V, None, bias=True)
        B.norm(ts, f"{p}.layer_norm2", h, None, comp=V, bias=True)
        B.linear(ts, f"{p}.mlp.fc1", h, inter, S.COLUMN, V, None, bias=True)
        B.linear(ts, f"{p}.mlp.fc2", inter, h, S.ROW, V, None, bias=True)
    B.linear(ts, f"{PROJECTOR}.linear_1", h, mid, S.COLUMN, V, None, bias=True)
    B.linear(ts, f"{PROJECTOR}.linear_2", mid, h_t, S.ROW, V, None, bias=True)
    B.linear(ts, f"{PROJECTOR}.merge_linear_1", h_t * merge * merge, mid, S.COLUMN, V, None, bias=True)
    B.linear(ts, f"{PROJECTOR}.merge_linear_2", mid, h_t, S.ROW, V, None, bias=True)
    spec.multimodal = True
    # vLLM 0.34 keeps the patch conv in fp32 (vt:61-63); 0.24 - 0.33 hold it in the model dtype
    conv = f"{TOWER}.embeddings.proj.weight"
    fp32 = [replace(t, dtype_bytes=FP32) if t.name == conv else t for t in spec.tensors]
    spec.from_release = tuple(spec.from_release) + ((CONV_FP32_FROM, "tensors", fp32),)
    image, step, steps = profile_items(patch, merge, temporal)
    spec.from_release = tuple(spec.from_release) + (
        (ITEMS_FROM, "mm_item_tokens", image), (ITEMS_FROM, "mm_video_patch_tokens", step),
        (ITEMS_FROM, "mm_video_max_patches", steps))
    spec.notes.append(f"minimax_m3_vl: encoder items from vLLM 0.34 only (a {image:,}-token image, a video of up to "
                      f"{steps} x {step:,} tokens within max_model_len); 0.24 - 0.33 size them by the checkpoint "
                      "processor's max_pixels (not in config.json: the generic max_num_batched_tokens budget, a lower "
                      "bound); the tower's own activation peak is not modelled on any release")


def profile_items(patch: int, merge: int, temporal: int) -> tuple[int, int, int]:
    """vLLM 0.34 ``common/mm_preprocess.py`` ``MiniMaxM3VLProcessingInfo`` (patch / merge / temporal sizes taken
    from vision_config, the processor's defaults): the profiled image is a square of ``_IMAGE_MAX_LONG_SIDE_PIXEL``
    floored to ``patch x merge`` (``get_image_size_with_most_features``), its tokens ``(side / patch)**2 /
    merge**2``; a video step is ``temporal`` frames of the ``_VIDEO_MAX_LONG_SIDE_PIXEL`` square (n frames padded to
    ``ceil(n / temporal)`` steps, ``_get_vision_info``), at most ``_MAX_FRAMES_PER_VIDEO`` frames, and vLLM takes the
    largest n whose tokens stay <= max_model_len (``_get_max_video_frames``, at least one frame), i.e.
    ``clamp(max_model_len // step, 1, ceil(63 / temporal))`` steps (``mm_video.video_patches``).
    Returns (image tokens, tokens of one video step, most steps)."""
    factor = patch * merge

    def tokens(side_cap: int) -> int:
        side = side_cap // factor * factor
        return (side // patch) ** 2 // merge ** 2

    return tokens(IMAGE_MAX_SIDE), tokens(VIDEO_MAX_SIDE), -(-MAX_FRAMES // temporal)
