"""LLaVA composites: llava (LLaVA-1.5) and llava_next (LLaVA-1.6 / granite-vision shape) with a CLIP tower.

Shapes: transformers 5.24 ``modeling_llava.py`` / ``modeling_llava_next.py`` (a CLIP
vision model from ``vision_config``, ``multi_modal_projector.linear_1`` of
``vision_hidden * n_feature_layers -> text_hidden`` and ``linear_2`` ``text_hidden ->
text_hidden``, biases = ``multimodal_projector_bias``; llava_next adds the
``image_newline`` vector of the text width).  The language model is built by its own
verified adapter (llama, mistral, qwen2, granite).

What vLLM loads (``vllm/model_executor/models/llava.py``: the model class read @
0004c540861d3e59a7c1b3860f594aa8b24293db; ``init_vision_tower_for_llava`` / ``_get_num_hidden_layers``
from search excerpts of the same file, unchanged across the versions returned; ``clip.py``): the CLIP encoder is
built only up to the deepest ``vision_feature_layer`` (``-2`` of 24 -> 23 layers), and never with its
``post_layernorm``: ``LlavaForConditionalGeneration`` (@35d3c24b) and LLaVA-NeXT pass
``require_post_norm=False`` to ``init_vision_tower_for_llava``.  The layers it skips are in the checkpoint and
in transformers' model but never on the GPU: they are left out of ``spec.tensors`` and counted
in ``spec.unloaded_params`` (so tensors + unloaded == the meta-device count).  Sharding: CLIP
``qkv_proj`` a multi-head QKVParallelLinear (COLUMN), ``out_proj`` row, ``fc1`` column, ``fc2``
row; embeddings and norms replicated; projector ``linear_1`` column, ``linear_2`` row;
``image_newline`` replicated.

Towers other than CLIP (SigLIP in some llava_next checkpoints) are refused here; llava_onevision's
SigLIP tower is ``llava_onevision.py`` (which reuses ``prepare``, ``layers_loaded`` and ``clip_tower``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families import llama, multimodal, vision
from reportgen.arch.fields import Fields
from reportgen.arch.parse import parse_composite_lenient
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor

V = C.VISION
# language-model types whose adapter is verified (text builder)
TEXT = {"llama": llama.build, "mistral": llama.build, "qwen2": llama.build, "granite": llama.build}
TOWERS = ("clip_vision_model",)
DEFAULT_TEXT = "llama"       # LlavaConfig / LlavaNextConfig sub-config defaults
DEFAULT_TOWER = "clip_vision_model"


def prepare(config: Mapping[str, Any], *, default_text: str = DEFAULT_TEXT, towers: tuple[str, ...] = TOWERS,
            default_tower: str = DEFAULT_TOWER, text_types: Mapping[str, Any] = TEXT) -> Mapping[str, Any]:
    """Both sub-configs are objects (absent = class default); parts verified; returns the text fields."""
    kind = config["model_type"]
    multimodal.check_subconfigs(config)
    text = config.get("text_config") or {}
    mt = text.get("model_type", default_text)
    if mt not in text_types:
        raise Unsupported(f"{kind} with a {mt!r} language model is not supported")
    vt = (config.get("vision_config") or {}).get("model_type", default_tower)
    if vt not in towers:
        raise Unsupported(f"{kind} with a {vt!r} vision tower is not supported (modelled: {', '.join(towers)})")
    return text


def parse(config: Mapping[str, Any], model_type: str) -> Any:
    """Absent sub-configs take the class defaults (parse.py)."""
    return parse_composite_lenient(config, model_type)


def layers_loaded(feature_layer: Any, n_layers: int, f: Fields) -> int:
    """vLLM's ``_get_num_hidden_layers``: encoder layers up to the deepest feature layer."""
    idx = feature_layer if isinstance(feature_layer, (list, tuple)) else [feature_layer]
    if not idx or not all(isinstance(i, int) and not isinstance(i, bool) for i in idx):
        raise f.err("vision_feature_layer", f"must be an integer or a list of integers, got {feature_layer!r}")
    need = max(n_layers + i + 1 if i < 0 else i for i in idx)
    if not 0 <= need <= n_layers:
        raise f.err("vision_feature_layer", f"{feature_layer!r} is outside the tower's {n_layers} layers")
    return need


def _best_resolution(height: int, width: int, pinpoints: list) -> tuple[int, int]:
    """transformers' ``select_best_resolution`` (image_processing_utils): the pinpoint that keeps the most
    pixels of the image, then wastes the fewest."""
    best, most, least = pinpoints[0], 0, float("inf")
    for ph, pw in pinpoints:
        scale = min(pw / width, ph / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        if effective > most or (effective == most and ph * pw - effective < least):
            best, most, least = (ph, pw), effective, ph * pw - effective
    return best


@functools.lru_cache(maxsize=None)
def _default_pinpoints(model_type: str) -> list:
    from reportgen.arch.parse import config_class
    return config_class(model_type)().image_grid_pinpoints


def anyres_item_tokens(f: Fields, image_size: int, grid: int, base: int, sizes: list | None = None,
                       onevision: bool = False) -> int:
    """Tokens of the largest LLaVA-NeXT / OneVision image as vLLM sizes its profiling item.

    vLLM llava_next.py @92c504dd ``LlavaNextProcessingInfo``: ``get_num_image_tokens`` = unpadded grid
    features + one newline per row + the base tile (``base``: the tower's tokens after the feature-select
    strategy), the grid from ``get_anyres_image_grid_shape`` (best pinpoint // image_size);
    ``get_image_size_with_most_features`` = the pinpoint giving the most.  LLaVA-OneVision (its
    ``_get_num_unpadded_features``: ``round(..., 7)`` and the 9-tile cap on ``ratio > 1.1``) profiles
    ``sizes`` = the hard-coded 1153 x 944 image instead.
    """
    pins = f.get("image_grid_pinpoints")
    if pins is None:        # the composite class's default list (set in its __post_init__)
        pins = _default_pinpoints(f.model_type)
    if not isinstance(pins, list) or not pins or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, int) and x > 0 for x in p)
            for p in pins):
        raise f.err("image_grid_pinpoints", f"must be a list of [height, width] pairs, got {pins!r}")
    best = 0
    for h, w in (sizes or pins):
        ph, pw = _best_resolution(h, w, pins)
        cur_h, cur_w = grid * (ph // image_size), grid * (pw // image_size)
        if cur_h == 0 or cur_w == 0:
            continue
        if w / h > cur_w / cur_h:
            new_h = int(round(h * (cur_w / w), 7)) if onevision else (h * cur_w) // w
            cur_h -= 2 * ((cur_h - new_h) // 2)
        else:
            new_w = int(round(w * (cur_h / h), 7)) if onevision else (w * cur_h) // h
            cur_w -= 2 * ((cur_w - new_w) // 2)
        unpadded, newline = cur_h * cur_w, cur_h
        if onevision and (ratio := (cur_h * cur_w / (9 * grid ** 2)) ** 0.5) > 1.1:
            unpadded, newline = int(cur_h // ratio) * int(cur_w // ratio), int(cur_h // ratio)
        best = max(best, unpadded + newline + base)
    return best


def clip_tower(ts: list[Tensor], v: Fields, keep: int, prefix: str = "vision_tower.vision_model") -> tuple[int, int]:
    """CLIP vision transformer with its first ``keep`` layers; returns (hidden, parameters not loaded)."""
    h, inter, n_layers, ch, patch, image = vision.tower_dims(v)
    ts.append(Tensor(f"{prefix}.embeddings.class_embedding", (h,), S.REPLICATED, V, None))
    ts.append(Tensor(f"{prefix}.embeddings.patch_embedding.weight", (h, ch, patch, patch), S.REPLICATED, V, None))
    ts.append(Tensor(f"{prefix}.embeddings.position_embedding.weight", ((image // patch) ** 2 + 1, h),
                     S.REPLICATED, V, None))
    B.norm(ts, f"{prefix}.pre_layrnorm", h, None, comp=V, bias=True)
    per_layer = 4 * h + 4 * (h * h + h) + 2 * h * inter + inter + h   # 2 LayerNorms, q/k/v/out, fc1/fc2
    for i in range(keep):
        vision.encoder_layer(ts, f"{prefix}.encoder.layers.{i}", h, inter)
    # post_layernorm (weight + bias) is never built: vLLM's LLaVA models pass require_post_norm=False
    return h, (n_layers - keep) * per_layer + 2 * h


def build(f: Fields, spec: ModelSpec) -> None:
    kind = f.model_type
    raw_text = f.raw.get("text_config") or {}
    text = Fields(f.obj.text_config, raw_text, "text_config.")
    vis = Fields(f.obj.vision_config, f.raw.get("vision_config") or {}, "vision_config.")
    if f.raw.get("vision_config") is None:
        spec.notes.append("config has no vision_config: the vision tower is transformers' class default")
    TEXT[text.model_type](text, spec)
    multimodal.note_tie(f, spec)
    feature_layer = f.get("vision_feature_layer", -2)
    n_feat = len(feature_layer) if isinstance(feature_layer, (list, tuple)) else 1
    if kind == "llava" and n_feat > 1:
        raise Unsupported("llava with several vision_feature_layer entries: transformers widens the projector's "
                          "linear_1 to vision_hidden x layers, vLLM's LlavaForConditionalGeneration (llava.py "
                          "@35d3c24b) builds it vision_hidden wide (the checkpoint would not load)")
    keep = layers_loaded(feature_layer, vis.int("num_hidden_layers"), f)
    ts = spec.tensors
    h_v, unloaded = clip_tower(ts, vis, keep)
    h_t = spec.hidden_size
    bias = f.flag("multimodal_projector_bias", True)
    B.linear(ts, "multi_modal_projector.linear_1", h_v * n_feat, h_t, S.COLUMN, V, None, bias=bias)
    B.linear(ts, "multi_modal_projector.linear_2", h_t, h_t, S.ROW, V, None, bias=bias)
    # LLaVA-1.5: one fixed-size image, (image // patch)**2 patches (+ CLS with the "full" strategy)
    # (vLLM llava.py @35d3c24b get_max_image_tokens -> get_num_selected_vision_tokens); NeXT: anyres tiles
    image, grid = vis.int("image_size"), vis.int("image_size") // vis.int("patch_size")
    base = grid ** 2 + (f.get("vision_feature_select_strategy", "default") == "full")
    if kind == "llava_next":
        ts.append(Tensor("image_newline", (h_t,), S.REPLICATED, V, None))
        spec.mm_item_tokens = anyres_item_tokens(f, image, grid, base)
    else:
        spec.mm_item_tokens = base
    spec.unloaded_params += unloaded
    spec.notes.append(f"vLLM builds the vision tower up to vision_feature_layer={feature_layer!r} "
                      f"({keep} of {vis.int('num_hidden_layers')} layers) without post_layernorm: {unloaded:,} "
                      "checkpoint parameters are not loaded")
    spec.multimodal = True
