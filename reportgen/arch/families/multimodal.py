"""Composite text + vision models: gemma3, mistral3, llama4.

The language model comes from ``text_config`` through its own family adapter;
the vision tower from ``vision_config`` (vision.py); the projector between
them is built here because it reads both sub-configs.

Tie flag: the language model's own (``text_config.tie_word_embeddings`` with
its class default).  A composite's top-level flag can differ (Mistral3's class
default ties, its checkpoints do not); vLLM and the checkpoints follow the text
model, and the oracle's corrected count does too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reportgen.arch import blocks as B
from reportgen.arch import mm_video
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families import gemma, gemma4, llama, llama4, mistral4, vision
from reportgen.arch.fields import Fields, prevalidate
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor

# composite model_type -> (text model_types we have verified, vision model_type, tower builder)
_PARTS: dict[str, tuple[dict[str, Callable], str, Callable]] = {
    "gemma3": ({"gemma3_text": gemma.build}, "siglip_vision_model", vision.gemma3_siglip),
    "mistral3": ({"mistral": llama.build, "ministral3": llama.build, "mistral4": mistral4.build}, "pixtral",
                 vision.pixtral),
    "llama4": ({"llama4_text": llama4.build_text}, "llama4_vision_model", vision.llama4_vision),
    # built by gemma4.build (its audio tower and embedders); listed for check_parts
    "gemma4": ({"gemma4_text": gemma4.build_text}, "gemma4_vision", gemma4.vision_tower),
}


def prepare(config: dict) -> dict:
    """Before parsing: ``text_config`` present, fields in range, parts verified; returns ``text_config``.

    A trimmed checkpoint without ``vision_config`` gets transformers' class-default tower (``parse``).
    """
    if not isinstance(config.get("text_config"), Mapping):
        raise ConfigError("text_config", "is missing (a multimodal config needs its text sub-config)")
    vis = config.get("vision_config")
    if vis is not None and not isinstance(vis, Mapping):
        raise ConfigError("vision_config", f"must be an object, got {type(vis).__name__}")
    prevalidate(config)
    check_parts(config)
    return config["text_config"]


def check_subconfigs(config: Mapping) -> None:
    """``text_config`` and ``vision_config`` are objects where present (absent = the class default), then the
    shared field checks (LLaVA, Idefics3 / SmolVLM, GLM-4.xV)."""
    for sub in ("text_config", "vision_config"):
        if config.get(sub) is not None and not isinstance(config[sub], Mapping):
            raise ConfigError(sub, f"must be an object, got {type(config[sub]).__name__}")
    prevalidate(config)


def parse(config: dict, model_type: str):
    """Part by part (``parse_composite``); a config without ``vision_config`` through the composite class."""
    from reportgen.arch.parse import parse_composite, parse_config

    if config.get("vision_config") is None:
        return parse_config(config, model_type)
    return parse_composite(config, model_type)


def check_parts(raw: dict) -> None:
    """Before parsing: the sub-configs name a language model and a tower we have verified.

    An unknown sub-config model_type would otherwise fail deep inside transformers.
    """
    kind = raw["model_type"]
    if kind not in _PARTS:
        return  # a composite family with a module of its own (kimi_k25) checks its parts itself
    text_builders, vision_type, _ = _PARTS[kind]
    for sub, allowed in (("text_config", tuple(text_builders)), ("vision_config", (vision_type,))):
        mt = (raw.get(sub) or {}).get("model_type")
        if mt is None:
            continue  # the composite class supplies its default sub-config type
        if not isinstance(mt, str):
            raise ConfigError(f"{sub}.model_type", f"must be a string, got {mt!r}")
        if mt not in allowed:
            part = "language model" if sub == "text_config" else "vision tower"
            raise Unsupported(f"{kind} with a {mt!r} {part} is not supported")


def sub_fields(f: Fields, spec: ModelSpec, *keys: str) -> list[Fields]:
    """The composite's sub-configs (``text_config``, ``vision_config``, ``audio_config`` ...) as ``Fields``, in
    ``keys`` order; a part the checkpoint trims (no such dict) is transformers' class default, and the spec
    says so (the count then follows the class, as the meta device does)."""
    out = []
    for key in keys:
        if f.raw.get(key) is None:
            spec.notes.append(f"config has no {key}: that part is transformers' class default")
        out.append(Fields(getattr(f.obj, key), f.raw.get(key) or {}, f"{key}."))
    return out


def note_tie(f: Fields, spec: ModelSpec) -> None:
    """A top-level tie flag that differs from the language model's (which was used) goes in the notes."""
    top_tie = f.raw.get("tie_word_embeddings")
    if isinstance(top_tie, bool) and top_tie != spec.tie_word_embeddings:
        spec.notes.append(f"top-level tie_word_embeddings={top_tie} differs from the language model's "
                          f"{spec.tie_word_embeddings}; the language model's flag is used (as vLLM does)")


def build(f: Fields, spec: ModelSpec) -> None:
    kind = f.model_type
    text_builders, vision_type, tower = _PARTS[kind]
    text = Fields(f.obj.text_config, f.raw["text_config"], "text_config.")
    vis = Fields(f.obj.vision_config, f.raw.get("vision_config") or {}, "vision_config.")
    if f.raw.get("vision_config") is None:
        spec.notes.append("config has no vision_config: the vision tower is transformers' class default")
    text_type = text.model_type
    if text_type not in text_builders:
        raise Unsupported(f"{kind} with a {text_type!r} language model is not supported")
    if vis.model_type != vision_type:
        raise Unsupported(f"{kind} with a {vis.model_type!r} vision tower is not supported")

    text_builders[text_type](text, spec)
    note_tie(f, spec)
    ts: list[Tensor] = spec.tensors
    h_v = tower(ts, vis)
    h_t = spec.hidden_size
    if kind == "gemma3":
        # a bare Parameter used in a matmul, not a Linear: no scheme quantizes it
        ts.append(Tensor("multi_modal_projector.mm_input_projection_weight", (h_v, h_t), S.REPLICATED, C.VISION, None))
        B.norm(ts, "multi_modal_projector.mm_soft_emb_norm", h_v, None, comp=C.VISION)
        # largest item: vLLM gemma3_mm.py @e5fa9450 Gemma3ProcessingInfo (no get_mm_max_tokens_per_item: the dummy
        # 50 x 200 image is counted) = (num_crops + 1) x image_seq_length; without pan-and-scan (the processor's
        # default; --mm-processor-kwargs are not read) one crop of mm_tokens_per_image tokens (the projector's pool)
        spec.mm_item_tokens = f.int("mm_tokens_per_image", 256)
        # the SigLIP tower's own profile peak (the tower phase of vLLM's profile_run; arch/mm_video.py)
        _, inter_v, _, ch, patch, image = vision.tower_dims(vis)
        per_token = (image // patch) ** 2 // max(spec.mm_item_tokens, 1)
        if per_token >= 1:
            spec.mm_tower_peak = mm_video.siglip_tower_peak(h_v, inter_v, ch, patch, per_token)
    elif kind == "mistral3":
        merge = f.int("spatial_merge_size")
        feature_layer = f.get("vision_feature_layer", -1)
        n_feat = len(feature_layer) if isinstance(feature_layer, (list, tuple)) else 1
        bias = f.flag("multimodal_projector_bias")
        B.norm(ts, "multi_modal_projector.norm", h_v, None, comp=C.VISION)
        B.linear(ts, "multi_modal_projector.patch_merger.merging_layer", h_v * merge * merge, h_v,
                 S.REPLICATED, C.VISION, None)
        B.linear(ts, "multi_modal_projector.linear_1", h_v * n_feat, h_t, S.COLUMN, C.VISION, None, bias=bias)
        B.linear(ts, "multi_modal_projector.linear_2", h_t, h_t, S.ROW, C.VISION, None, bias=bias)
    else:  # llama4
        B.linear(ts, "multi_modal_projector.linear_1", h_v, h_t, S.REPLICATED, C.VISION, None)
    spec.multimodal = True
