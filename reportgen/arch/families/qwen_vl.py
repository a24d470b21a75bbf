"""Qwen vision-language composites: qwen2_vl, qwen2_5_vl, qwen3_vl, qwen3_vl_moe, qwen3_5, qwen3_5_moe.

The language model is built by the existing text adapters under the text family it
is (transformers 5.24 ``modeling_qwen2_vl.py`` / ``modeling_qwen2_5_vl.py``: Qwen2
decoder layers; ``modeling_qwen3_vl.py``: Qwen3 layers with q/k norms;
``modeling_qwen3_vl_moe.py``: Qwen3-MoE layers), the tower by ``towers_qwen.py``.
vLLM serves them natively (``qwen2_vl.py``, ``qwen2_5_vl.py``, ``qwen3_vl.py``,
``qwen3_vl_moe.py`` @ 055e47c28003156421365af985d676fc921cb075: the language model is
``Qwen3MoeForCausalLM`` on ``config.text_config``; the tower ``Qwen3_VisionTransformer``).

Qwen3.5 / Qwen3.5-MoE (vLLM ``qwen3_5.py`` @ 00def4f8421153e037ff6270c0a8c31912a00206):
``Qwen3_5(Moe)ForConditionalGeneration`` builds ``Qwen3_VisionTransformer`` (qwen3_vl.py, sharded as
there) on ``config.vision_config`` and ``Qwen3_5(Moe)ForCausalLM`` on ``hf_text_config`` -- the
Gated-DeltaNet hybrid stack of ``qwen3_next.py`` (``qwen3_5_text`` / ``qwen3_5_moe_text``); it
skips ``mtp.`` weights and allocates no deepstack buffers.  transformers' ``Qwen3_5VisionModel``
has no deepstack mergers, so the tower is ``towers_qwen.qwen3_5_tower`` (refuses a non-empty
``deepstack_visual_indexes``, which every shipped checkpoint leaves empty).

Encoder budget: the largest image from the published processors' pixel limits (``ITEM_PIXELS``); the dummy video
vLLM profiles is sized by max_model_len for Qwen2-VL / Qwen2.5-VL (``mm_video.set_qwen2_vl_video``, qwen2_vl.py
@002d181a) and by the video processor's pixel budget for Qwen3-VL / Qwen3.5 (``mm_video.set_qwen3_vl_video``,
vLLM ``qwen3_vl.py`` @ 4f5768c74b6f87eedb592dac8a7fe39f2aecb1ab: never more tokens than the image).

Config shapes: Qwen2-VL and Qwen2.5-VL checkpoints are *flat* (text fields at the top
level, ``vision_config`` nested) -- transformers' composite class lifts them into
``text_config``, and so does the parse here (``parse.parse_composite_lenient``).  A config
without ``vision_config`` (a trimmed checkpoint) gets the class-default tower, as
transformers builds it, and the spec says so.

Tie flag: transformers ties by the top-level ``tie_word_embeddings`` (the text configs of
these classes do not carry one, except Qwen3-VL-MoE's, whose class default True disagrees
with its checkpoints); the top-level flag is used, and a differing ``text_config`` flag is
noted (vLLM's language model reads ``text_config.tie_word_embeddings``; the shipped
checkpoints never disagree).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from reportgen.arch import mm_video
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families import llama, moe, qwen3_next, towers_qwen
from reportgen.arch.fields import Fields, prevalidate
from reportgen.arch.parse import parse_composite_lenient
from reportgen.arch.spec import ModelSpec

# composite -> (text model_type, text family the existing adapter knows it as, text builder, tower)
PARTS = {
    "qwen2_vl": ("qwen2_vl_text", "qwen2", llama.build, towers_qwen.qwen2_vl_tower),
    "qwen2_5_vl": ("qwen2_5_vl_text", "qwen2", llama.build, towers_qwen.qwen2_5_vl_tower),
    "qwen3_vl": ("qwen3_vl_text", "qwen3", llama.build, towers_qwen.qwen3_vl_tower),
    "qwen3_vl_moe": ("qwen3_vl_moe_text", "qwen3_moe", moe.build, towers_qwen.qwen3_vl_tower),
    # Qwen3.5: the Gated-DeltaNet hybrid text stacks (qwen3_next.py) + the Qwen3-VL tower without deepstack
    "qwen3_5": ("qwen3_5_text", "qwen3_5_text", qwen3_next.build, towers_qwen.qwen3_5_tower),
    "qwen3_5_moe": ("qwen3_5_moe_text", "qwen3_5_moe_text", qwen3_next.build, towers_qwen.qwen3_5_tower),
}
# text-config fields the hybrid text builders model themselves (features.scan would refuse them)
ALLOW = {"qwen3_5": qwen3_next.MODELLED_FIELDS, "qwen3_5_moe": qwen3_next.MODELLED_FIELDS}
TOWER_DEFAULTS_NOTE = "config has no vision_config: the vision tower is transformers' class default"


class As(Fields):
    """Fields of a sub-config read under the text family whose adapter builds it."""

    __slots__ = ("as_type",)

    def __init__(self, obj: Any, raw: Mapping[str, Any], prefix: str, as_type: str) -> None:
        super().__init__(obj, raw, prefix)
        self.as_type = as_type

    @property
    def model_type(self) -> str:
        return self.as_type


def text_raw(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The text model's own fields: ``text_config`` when nested, else the flat top level."""
    sub = config.get("text_config")
    if sub is None:
        return config
    if not isinstance(sub, Mapping):
        raise ConfigError("text_config", f"must be an object, got {type(sub).__name__}")
    return sub


def prepare(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Validate before parsing; returns the raw text fields (for features.scan and rope)."""
    kind = config["model_type"]
    prevalidate(config)
    vis = config.get("vision_config")
    if vis is not None and not isinstance(vis, Mapping):
        raise ConfigError("vision_config", f"must be an object, got {type(vis).__name__}")
    text = text_raw(config)
    want = PARTS[kind][0]
    mt = text.get("model_type") if text is not config else None
    if mt is not None and mt != want:
        raise Unsupported(f"{kind} with a {mt!r} language model is not supported")
    return text


# largest image the published checkpoints' preprocessor_config.json allows (vLLM sizes its profiling image by it:
# ``get_image_size_with_most_features``): Qwen2-VL / Qwen2.5-VL ``max_pixels`` 12,845,056 (patch 14 x merge 2 ->
# 16,384 tokens), Qwen3-VL ``size.longest_edge`` 16,777,216 (patch 16 x merge 2 -> 16,384 tokens)
ITEM_PIXELS = {"qwen2_vl": 12_845_056, "qwen2_5_vl": 12_845_056, "qwen3_vl": 16_777_216, "qwen3_vl_moe": 16_777_216}
# composites whose dummy video vLLM sizes with ``Qwen3VLProcessingInfo`` (qwen3_vl.py; qwen3_5.py subclasses it)
QWEN3_VIDEO = ("qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe")


def parse(config: Mapping[str, Any], model_type: str) -> Any:
    """Flat or nested, trimmed or not: sub-configs parsed with their own classes (parse.py)."""
    return parse_composite_lenient(config, model_type)


def build(f: Fields, spec: ModelSpec) -> None:
    kind = f.model_type
    _, family, text_build, tower = PARTS[kind]
    raw_text = text_raw(f.raw)
    nested = raw_text is not f.raw
    text = As(f.obj.text_config, raw_text, "text_config." if nested else "", family)
    raw_vis = f.raw.get("vision_config")
    vis = Fields(f.obj.vision_config, raw_vis or {}, "vision_config.")
    if raw_vis is None:
        spec.notes.append(TOWER_DEFAULTS_NOTE)
    tie = f.flag("tie_word_embeddings", False)
    text_tie = raw_text.get("tie_word_embeddings") if nested else None
    if text_tie is not None and text_tie != tie:
        spec.notes.append(f"text_config.tie_word_embeddings={text_tie} differs from the top-level {tie}; the "
                          "top-level flag is used (transformers ties by it; vLLM reads text_config's)")
    text_build(Tied(text, tie), spec)
    note_tower_width(spec, tower(spec.tensors, vis))
    spec.multimodal = True
    if kind in ITEM_PIXELS:
        merged = (vis.int("patch_size") * vis.int("spatial_merge_size")) ** 2
        spec.mm_item_tokens = ITEM_PIXELS[kind] // merged
        spec.notes.append(f"largest image: {spec.mm_item_tokens:,} tokens (the published checkpoints' image "
                          f"processor max of {ITEM_PIXELS[kind]:,} pixels; preprocessor_config.json is not read)")
    if kind in QWEN3_VIDEO:
        # vLLM qwen3_vl.py @4f5768c7: the video processor spreads one pixel budget over the frames (arch/mm_video.py)
        factor = vis.int("patch_size") * vis.int("spatial_merge_size")
        # get_image_size_with_most_features: smart_resize of a 9,999,999 square to the image pixel limit (>= factor)
        side = max(factor, int(math.sqrt(ITEM_PIXELS["qwen3_vl"]) // factor) * factor)
        mm_video.set_qwen3_vl_video(spec, side, vis.int("patch_size"), vis.int("spatial_merge_size"),
                                    vis.int("temporal_patch_size"))
    if kind in mm_video.QWEN2_VL_VIDEO:
        # vLLM's profile: a max_model_len-sized dummy video, and the ViT's own peak over its patches (arch/mm_video.py)
        mm_video.set_qwen2_vl_video(spec, vis.int("temporal_patch_size"))
        hidden = vis.int("embed_dim" if kind == "qwen2_vl" else "hidden_size")
        inter = hidden * vis.int("mlp_ratio") if kind == "qwen2_vl" else vis.int("intermediate_size")
        spec.mm_tower_peak = mm_video.qwen_vl_tower_peak(kind, hidden, inter, vis.int("num_heads"),
                                                        towers_qwen.patch_volume(vis), vis.int("spatial_merge_size"))


def note_tower_width(spec: ModelSpec, h_out: int) -> None:
    """A tower whose output width differs from the language model's hidden size: transformers builds
    it (the class defaults of Qwen2-VL do this) and it is counted as configured, but it cannot run."""
    if h_out != spec.hidden_size:
        spec.notes.append(f"the tower's output width {h_out} differs from the language model's hidden_size "
                          f"{spec.hidden_size}: counted as configured, the model cannot run")


class Tied(As):
    """The text Fields with the composite's resolved tie flag (transformers ties these composites
    by the top-level flag)."""

    __slots__ = ("tie",)

    def __init__(self, base: As, tie: bool) -> None:
        super().__init__(base.obj, base.raw, base.prefix, base.as_type)
        self.tie = tie

    def get(self, name: str, default: Any = None) -> Any:
        if name == "tie_word_embeddings":
            return self.tie
        return super().get(name, default)
