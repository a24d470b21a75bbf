"""Idefics3 and SmolVLM: a SigLIP-shaped tower, a pixel-shuffle connector and a llama-shaped text model.

Shapes: transformers 5.24 ``modeling_idefics3.py`` / ``modeling_smolvlm.py`` (identical layouts):
``vision_model`` = patch Conv2d (with bias), position embedding of ``(image_size // patch)**2``
rows, encoder layers (LayerNorms with biases, q/k/v/out and fc1/fc2 with biases),
``post_layernorm``; ``connector.modality_projection.proj`` ``vision_hidden * scale_factor**2 ->
text_hidden`` without bias.  The language model is built by its verified adapter (llama,
mistral, qwen2, granite; the class default is llama).

vLLM (``vllm/model_executor/models/idefics3.py``, ``smolvlm.py``; tower
``idefics2_vision_model.py``): every encoder layer and the post-norm are built; attention
``qkv_proj`` a multi-head QKVParallelLinear (COLUMN), ``out_proj`` row, ``fc1`` column,
``fc2`` row; embeddings and norms replicated; the connector's ``proj`` a ReplicatedLinear
(read at the excerpt of idefics3.py returned for ``class Idefics3SimpleMLP``: vLLM commit not
pinned by the search tool, the class is unchanged across the versions it returned).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families import llava, multimodal, vision
from reportgen.arch.fields import Fields
from reportgen.arch.parse import parse_composite_lenient
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor

V = C.VISION
TOWERS = {"idefics3": "idefics3_vision", "smolvlm": "smolvlm_vision"}


def prepare(config: Mapping[str, Any]) -> Mapping[str, Any]:
    kind = config["model_type"]
    multimodal.check_subconfigs(config)
    text = config.get("text_config") or {}
    mt = text.get("model_type", llava.DEFAULT_TEXT)
    if mt not in llava.TEXT:
        raise Unsupported(f"{kind} with a {mt!r} language model is not supported")
    vt = (config.get("vision_config") or {}).get("model_type", TOWERS[kind])
    if vt != TOWERS[kind]:
        raise Unsupported(f"{kind} with a {vt!r} vision tower is not supported")
    return text


def parse(config: Mapping[str, Any], model_type: str) -> Any:
    return parse_composite_lenient(config, model_type)


def tower(ts: list[Tensor], v: Fields, prefix: str = "model.vision_model") -> int:
    """The Idefics2/3 vision transformer; returns its hidden size."""
    return vision.siglip(ts, v, prefix, head=False)       # a SigLIP tower without the pooling head


def build(f: Fields, spec: ModelSpec) -> None:
    raw_text = f.raw.get("text_config") or {}
    text = Fields(f.obj.text_config, raw_text, "text_config.")
    vis = Fields(f.obj.vision_config, f.raw.get("vision_config") or {}, "vision_config.")
    if f.raw.get("vision_config") is None:
        spec.notes.append("config has no vision_config: the vision tower is transformers' class default")
    llava.TEXT[text.model_type](text, spec)
    multimodal.note_tie(f, spec)
    ts = spec.tensors
    h_v = tower(ts, vis)
    scale = f.int("scale_factor")
    B.linear(ts, "model.connector.modality_projection.proj", h_v * scale * scale, spec.hidden_size,
             S.REPLICATED, V, None)
    spec.multimodal = True
