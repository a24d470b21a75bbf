"""GLM-4.1V / GLM-4.5V composites: glm4v (GLM-4 text stack) and glm4v_moe (GLM-4.5 MoE text stack).

Shapes: transformers 5.24 ``modeling_glm4v.py`` / ``modeling_glm4v_moe.py``.  Text: glm4v's
decoder is GLM-4-0414's (four RMSNorms, fused gate_up, q/k/v always with biases -- the text
config has no ``attention_bias``), built by ``glm4.build``; glm4v_moe's is GLM-4.5's (q/k/v bias =
``attention_bias``, no q/k norms, DeepSeek-style MoE with shared experts), built by
``glm4_moe.build``.  The tower (``Glm4vVisionModel``): position embedding
``(image_size // patch)**2 x h``, a 3-D patch Conv with bias, blocks of two RMSNorms, fused
``qkv`` (bias = ``attention_bias``) + ``proj`` (no bias) and a SwiGLU MLP of width
``out_hidden_size`` (no biases), then ``post_layernorm``, ``downsample`` (Conv2d ``h ->
out_hidden_size``, kernel = ``spatial_merge_size``, with bias), ``post_conv_layernorm`` and the
``merger`` (``proj`` out x out, LayerNorm, SwiGLU of width ``intermediate_size``; no biases).

vLLM (``vllm/model_executor/models/glm4_1v.py``, the vllm-project version returned for
``class Glm4vPatchMerger``): ``qkv`` a multi-head QKVParallelLinear (COLUMN), ``proj`` row; the MLP
gate/up merged column, down row; the merger's ``proj`` a ColumnParallelLinear (gather_output),
``gate_up_proj`` merged column, ``down_proj`` row; patch embedding, position embedding,
downsample and norms replicated.  vLLM's tower attention takes no ``attention_bias`` switch
that we could verify, so a tower with ``attention_bias=true`` is refused; so is a glm4v text
config that switches its (always present) q/k/v biases off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families import glm4, glm4_moe, multimodal
from reportgen.arch.families.qwen_vl import As, Tied, note_tower_width
from reportgen.arch.fields import Fields
from reportgen.arch.parse import parse_composite_lenient
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor

V = C.VISION
PARTS = {"glm4v": ("glm4v_text", "glm4", glm4.build), "glm4v_moe": ("glm4v_moe_text", "glm4_moe", glm4_moe.build)}


def prepare(config: Mapping[str, Any]) -> Mapping[str, Any]:
    kind = config["model_type"]
    multimodal.check_subconfigs(config)
    text = config.get("text_config") or {}
    mt = text.get("model_type")
    if mt is not None and mt != PARTS[kind][0]:
        raise Unsupported(f"{kind} with a {mt!r} language model is not supported")
    if (config.get("vision_config") or {}).get("attention_bias"):
        raise Unsupported(f"{kind} with vision attention_bias=true: vLLM's tower attention bias is not verified")
    if kind == "glm4v" and text.get("attention_bias") is False:
        raise Unsupported("glm4v with attention_bias=false: transformers keeps the q/k/v biases, vLLM would not")
    return text


def parse(config: Mapping[str, Any], model_type: str) -> Any:
    return parse_composite_lenient(config, model_type)


def tower(ts: list[Tensor], v: Fields, prefix: str = "model.visual") -> int:
    """The GLM-4V vision model and its merger; returns ``out_hidden_size``."""
    h = v.int("hidden_size")
    heads = v.int("num_heads")
    if h % heads:
        raise v.err("num_heads", f"{heads} does not divide hidden_size {h}")
    out, inter, merge = v.int("out_hidden_size"), v.int("intermediate_size"), v.int("spatial_merge_size")
    ch, patch, image, t = v.int("in_channels"), v.int("patch_size"), v.int("image_size"), v.int("temporal_patch_size")
    if image < patch:
        raise v.err("image_size", f"{image} is smaller than patch_size {patch}")
    rep = lambda name, shape: ts.append(Tensor(name, shape, S.REPLICATED, V, None))  # noqa: E731
    rep(f"{prefix}.embeddings.position_embedding.weight", ((image // patch) ** 2, h))
    rep(f"{prefix}.patch_embed.proj.weight", (h, ch, t, patch, patch))
    rep(f"{prefix}.patch_embed.proj.bias", (h,))
    for i in range(v.int("depth")):
        p = f"{prefix}.blocks.{i}"
        B.norm(ts, f"{p}.norm1", h, None, comp=V)
        B.norm(ts, f"{p}.norm2", h, None, comp=V)
        for part in ("q", "k", "v"):
            B.linear(ts, f"{p}.attn.qkv[{part}]", h, h, S.COLUMN, V, None)
        B.linear(ts, f"{p}.attn.proj", h, h, S.ROW, V, None)
        B.gated_mlp(ts, None, f"{p}.mlp", h, out, V)
    B.norm(ts, f"{prefix}.post_layernorm", h, None, comp=V)
    rep(f"{prefix}.downsample.weight", (out, h, merge, merge))
    rep(f"{prefix}.downsample.bias", (out,))
    B.norm(ts, f"{prefix}.post_conv_layernorm", h, None, comp=V)
    m = f"{prefix}.merger"
    B.linear(ts, f"{m}.proj", out, out, S.COLUMN, V, None)
    B.norm(ts, f"{m}.post_projection_norm", out, None, comp=V, bias=True)
    B.gated_mlp(ts, None, m, out, inter, V)
    return out


def build(f: Fields, spec: ModelSpec) -> None:
    kind = f.model_type
    _, family, text_build = PARTS[kind]
    raw_text = f.raw.get("text_config") or {}
    text = As(f.obj.text_config, raw_text, "text_config.", family)
    vis = Fields(f.obj.vision_config, f.raw.get("vision_config") or {}, "vision_config.")
    if f.raw.get("vision_config") is None:
        spec.notes.append("config has no vision_config: the vision tower is transformers' class default")
    text_build(Tied(text, f.flag("tie_word_embeddings", False)), spec)
    note_tower_width(spec, tower(spec.tensors, vis))
    spec.multimodal = True

