"""LLaVA-OneVision: a SigLIP (or CLIP) tower cut at the feature layer, a two-layer projector, a Qwen2 text model.

Shapes: transformers 5.24 ``modeling_llava_onevision.py``: ``vision_tower`` =
``AutoModel.from_config(vision_config)`` (SigLIP by default: patch Conv2d with bias, position
embedding of ``(image_size // patch)**2`` rows, encoder layers with LayerNorms and q/k/v/out,
fc1/fc2 all with biases, ``post_layernorm``, the attention-pooling ``head`` when
``vision_use_head``); ``multi_modal_projector.linear_1`` ``vision_hidden * n_feature_layers ->
text_hidden`` and ``linear_2`` ``text_hidden -> text_hidden`` (biases =
``multimodal_projector_bias``); ``image_newline`` of the text width.  The class defaults are a
26-layer SigLIP-so400m without head and a Qwen2 text config.  The language model is built by its
verified adapter (``llava.TEXT``).

What vLLM builds and loads (read at these sources):

* ``llava_onevision.py``, the current model class (with ``_mark_tower_model(vllm_config, {"image",
  "video"})``; the stored copy the search index returned under id 68745602020, upstream commit not
  pinned by the index; the projector class is unchanged from vllm-project/vllm @07a6441b except the
  bias flag): ``init_vision_tower_for_llava(config, quant_config, require_post_norm=False)``;
  ``LlavaOnevisionMultiModalProjector`` is two plain ``nn.Linear`` (``linear_1`` is
  ``vision_hidden -> text_hidden``, not multiplied by the number of feature layers) -- replicated on
  every rank and never quantized; ``image_newline`` a plain parameter (replicated).
* ``llava.py`` @35d3c24b (``_get_num_hidden_layers`` / ``init_vision_tower_for_llava``): the tower is
  built up to the deepest ``vision_feature_layer`` (``n + idx + 1`` for a negative index, ``idx``
  otherwise) and ``require_post_norm=False`` is passed through.
* ``siglip.py`` @0c028ba4 (``SiglipVisionTransformer``): encoder layers past the override are
  skipped when loading; ``post_layernorm`` is built only when ``require_post_norm`` (False here, so
  never); the ``head`` is built when ``vision_use_head`` and applied to the encoder output in
  ``forward``.  ``SiglipAttention``: ``qkv_proj`` a multi-head ``QKVParallelLinear`` (COLUMN),
  ``out_proj`` row; ``SiglipMLP``: ``fc1`` column, ``fc2`` row, and quantized only when
  ``hidden_size`` and ``intermediate_size`` are multiples of 64 (so400m: 4304 is not, its MLPs
  stay in the model dtype under an fp8 / int4 checkpoint).  Embeddings and norms replicated.

Left out of ``spec.tensors`` and counted in ``spec.unloaded_params`` (checkpoint parameters vLLM
never puts on the GPU): encoder layers past the feature layer and ``post_layernorm``.

Refused: a list ``vision_feature_layer`` of more than one layer (transformers widens
``linear_1`` to ``vision_hidden * n``, vLLM's projector stays ``vision_hidden`` wide, so the
checkpoint does not load); a SigLIP tower with ``vision_use_head`` (vLLM would run the pooling
head on the features it hands to the projector: one token per tile, not a LLaVA image).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch import mm_video
from reportgen.arch.errors import Unsupported
from reportgen.arch.families import llava, multimodal, vision
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor

V = C.VISION
SIGLIP, CLIP = "siglip_vision_model", "clip_vision_model"
TOWER_PREFIX = "vision_tower.vision_model"
_LAYER = re.compile(r"\.encoder\.layers\.(\d+)\.")
_SIGLIP_MLP = re.compile(r"\.mlp\.fc[12]\.weight$")


def prepare(config: Mapping[str, Any]) -> Mapping[str, Any]:
    text = llava.prepare(config, default_text="qwen2", towers=(SIGLIP, CLIP), default_tower=SIGLIP)
    layer = config.get("vision_feature_layer")
    if isinstance(layer, (list, tuple)) and len(layer) > 1:
        raise Unsupported("llava_onevision with several vision_feature_layer entries: transformers widens the "
                          "projector's linear_1 to vision_hidden x layers, vLLM's LlavaOnevisionMultiModalProjector "
                          "keeps it vision_hidden wide (the checkpoint would not load)")
    return text


def tower(v: Fields, keep: int) -> tuple[list[Tensor], int, int]:
    """(tensors vLLM loads, checkpoint parameters it skips, tower hidden size).

    The whole transformers tower is laid out, then split: layers ``>= keep`` and ``post_layernorm``
    are not loaded (``require_post_norm=False``).
    """
    full: list[Tensor] = []
    unloaded = 0
    if v.model_type == SIGLIP:
        if v.flag("vision_use_head", True):
            raise Unsupported("llava_onevision with vision_use_head=true: vLLM's SiglipVisionTransformer applies "
                              "the attention-pooling head to the features it hands to the projector (one token per "
                              "tile); not servable as LLaVA-OneVision, not modelled")
        h = vision.siglip(full, v, TOWER_PREFIX)
        # vLLM SiglipMLP: quant_config only when hidden and intermediate are multiples of 64
        mlp_q = vision.siglip_mlp_quantizable(h, v.int("intermediate_size"))
    else:
        # every layer laid out; clip_tower leaves post_layernorm out and reports it as not loaded
        h, unloaded = llava.clip_tower(full, v, v.int("num_hidden_layers"), TOWER_PREFIX)
        mlp_q = True
    kept = []
    for t in full:
        m = _LAYER.search(t.name)
        if (m and int(m.group(1)) >= keep) or ".post_layernorm." in t.name:
            unloaded += t.numel
        elif not mlp_q and _SIGLIP_MLP.search(t.name):
            kept.append(dataclasses.replace(t, quantizable=False))
        else:
            kept.append(t)
    return kept, unloaded, h


def build(f: Fields, spec: ModelSpec) -> None:
    text = Fields(f.obj.text_config, f.raw.get("text_config") or {}, "text_config.")
    vis = Fields(f.obj.vision_config, f.raw.get("vision_config") or {}, "vision_config.")
    if f.raw.get("vision_config") is None:
        spec.notes.append("config has no vision_config: the vision tower is transformers' class default")
    llava.TEXT[text.model_type](text, spec)
    multimodal.note_tie(f, spec)
    feature_layer = f.get("vision_feature_layer", -1)
    n_layers = vis.int("num_hidden_layers")
    keep = llava.layers_loaded(feature_layer, n_layers, f)
    kept, unloaded, h_v = tower(vis, keep)
    ts = spec.tensors
    ts.extend(kept)
    h_t = spec.hidden_size
    bias = f.flag("multimodal_projector_bias", True)
    # plain nn.Linear in vLLM: whole on every rank, built without quant_config
    B.linear(ts, "multi_modal_projector.linear_1", h_v, h_t, S.REPLICATED, V, None, bias=bias, quantizable=False)
    B.linear(ts, "multi_modal_projector.linear_2", h_t, h_t, S.REPLICATED, V, None, bias=bias, quantizable=False)
    ts.append(Tensor("image_newline", (h_t,), S.REPLICATED, V, None))
    # largest image (vLLM profiles a 1153 x 944 one); SigLIP has no CLS, CLIP's is kept by "full" only
    grid = vis.int("image_size") // vis.int("patch_size")
    base = grid ** 2 + (vis.model_type == CLIP and f.get("vision_feature_select_strategy", "full") == "full")
    spec.mm_item_tokens = llava.anyres_item_tokens(f, vis.int("image_size"), grid, base, sizes=[(944, 1153)],
                                                   onevision=True)
    # vLLM: getattr(hf_config, "spatial_pool_stride", 2) (transformers' config has no such field)
    stride = f.get("spatial_pool_stride", 2)
    if isinstance(stride, int) and not isinstance(stride, bool) and stride > 0:
        mm_video.llava_onevision_video_note(spec, (-(-grid // stride)) ** 2)
    spec.unloaded_params += unloaded
    spec.notes.append(f"vLLM builds the vision tower up to vision_feature_layer={feature_layer!r} ({keep} of "
                      f"{n_layers} layers) without post_layernorm: {unloaded:,} checkpoint parameters are not loaded")
    spec.multimodal = True
