"""``build_spec``: a config dict in, a ModelSpec out (or a ConfigError naming the bad field).

The steps, each in its own module: validate the raw fields (fields.py), refuse
unmodelled features (features.py, registry.UNSUPPORTED), parse with the native
transformers class (parse.py), let the family adapter lay out the tensors and
the per-layer KV geometry (families/).  Storage details -- checkpoint dtype and
quantization -- are recorded on the spec but never change the counts: counts
are logical parameters, bytes are estimate.quant's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportgen.arch import features, rope
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families import multimodal
from reportgen.arch.fields import Fields, prevalidate
from reportgen.arch.parse import native_model_type, parse_config
from reportgen.arch.registry import ADAPTERS, UNSUPPORTED
from reportgen.arch.spec import ModelSpec

_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def build_spec(config: Mapping[str, Any], model_id: str | None = None, extra: Mapping[str, Any] | None = None) -> ModelSpec:
    """Normalized architecture of one model.

    ``config``: the parsed config.json.  ``model_id`` is only used in messages.
    ``extra``: side files from the source (``hf_quant_config`` for ModelOpt
    checkpoints).  Raises ConfigError for invalid configs; returns a spec with
    ``unsupported_reason`` for valid configs we do not model.
    """
    if not isinstance(config, Mapping):
        raise ConfigError("config", f"must be a JSON object, got {type(config).__name__}")
    model_type = config.get("model_type")
    if model_type is None:
        raise ConfigError("model_type", "is missing")
    if not isinstance(model_type, str) or not model_type:
        raise ConfigError("model_type", f"must be a non-empty string, got {model_type!r}")
    archs = config.get("architectures") or ()
    if not isinstance(archs, (list, tuple)) or not all(isinstance(a, str) for a in archs):
        raise ConfigError("architectures", "must be a list of class names")
    archs = tuple(archs)

    spec = ModelSpec(model_type=model_type, architectures=archs)
    spec.dtype = _dtype(config)
    spec.quantization_config = _quantization(config, extra)
    if spec.quantization_config is None:
        spec.quantization_by_name = quantized_by_name(model_id)

    reason = UNSUPPORTED.get(model_type)
    if reason is not None:
        spec.unsupported_reason = reason
        return spec
    native, note = native_model_type(model_type, archs)
    adapter = ADAPTERS.get(native)
    if adapter is None:
        spec.unsupported_reason = f"model_type {model_type} is not supported"
        return spec
    if note:
        spec.notes.append(note)
    spec.family = native
    try:
        if adapter.multimodal:
            text_raw = (adapter.prepare or multimodal.prepare)(config)
            # an MLA language model in a composite (mistral3 with a mistral4 text_config) carries kv_lora_rank
            text_adapter = ADAPTERS.get(text_raw.get("model_type")) if text_raw is not config else None
            features.scan(text_raw, mla=adapter.mla or bool(text_adapter and text_adapter.mla), allow=adapter.allow)
        else:
            prevalidate(config, required=adapter.required, skip=adapter.handles)
            if adapter.precheck is not None:
                adapter.precheck(config)
            features.scan(config, mla=adapter.mla, allow=adapter.allow + adapter.handles + adapter.modelled)
        if adapter.multimodal:
            parsed = (adapter.parse or multimodal.parse)(config, native)
        else:
            parsed = parse_config(config, native)
        adapter.build(Fields(parsed, config), spec)
        if adapter.multimodal:
            text = Fields(parsed.text_config, text_raw, "text_config." if text_raw is not config else "")
        else:
            text = Fields(parsed, config)
        rope.apply(spec, text)
        spec.mm_prefix_lm = spec.multimodal and mm_prefix_lm(config)
    except Unsupported as u:
        return ModelSpec(model_type=model_type, architectures=archs, family=native, dtype=spec.dtype,
                         quantization_config=spec.quantization_config,
                         quantization_by_name=spec.quantization_by_name, unsupported_reason=u.reason,
                         notes=spec.notes)
    return spec


# vLLM transformers_utils/model_arch_config_convertor.py @00bb6f59: ``ModelArchConfigConvertorBase.is_mm_prefix_lm``
# (an ``is_mm_prefix_lm`` config attribute, else these model_types) and the convertor registered for a model_type
# (``Gemma4ModelArchConfigConvertor``: text_config.use_bidirectional_attention == "vision")
MM_PREFIX_LM_MODELS = ("bagel", "gemma3", "molmo2", "moondream3", "paligemma", "umm")
_GEMMA4_CONVERTOR = ("diffusion_gemma_text", "gemma4", "gemma4_text", "gemma4_unified", "gemma4_unified_text")


def mm_prefix_lm(config: Mapping[str, Any]) -> bool:
    """vLLM's ``is_mm_prefix_lm`` for a multimodal model (image / video spans attended bidirectionally): Gemma 4
    26B-A4B / 31B (``use_bidirectional_attention`` "vision"), not E2B / E4B (null); Gemma 3 and PaliGemma by
    model_type."""
    model_type = config.get("model_type")
    if model_type in _GEMMA4_CONVERTOR:
        text = config.get("text_config")
        text = text if isinstance(text, Mapping) else config
        return text.get("use_bidirectional_attention") == "vision"
    if "is_mm_prefix_lm" in config:
        return bool(config["is_mm_prefix_lm"])
    return model_type in MM_PREFIX_LM_MODELS


def _first_set(config: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    """The first of ``keys`` set at the top level, else in text_config (multimodal configs)."""
    sources = [config]
    if isinstance(config.get("text_config"), Mapping):
        sources.append(config["text_config"])
    for src in sources:
        for key in keys:
            if src.get(key) is not None:
                return key, src[key]
    return None


def _dtype(config: Mapping[str, Any]) -> str:
    """Checkpoint dtype: ``torch_dtype`` / ``dtype`` at the top, else in text_config; default bfloat16."""
    found = _first_set(config, ("torch_dtype", "dtype"))
    if found is None:
        return "bfloat16"
    key, value = found
    if not isinstance(value, str) or not value:
        raise ConfigError(key, f"must be a dtype name, got {value!r}")
    name = value.lower().removeprefix("torch.")
    return _DTYPE_ALIASES.get(name, name)


# Name tokens of a pre-quantized checkpoint (the repo-name conventions of NVIDIA ModelOpt, RedHatAI / Neural
# Magic, unsloth, the AWQ / GPTQ / bitsandbytes uploaders): "-NVFP4", "-FP8-dynamic", "-AWQ", "-GPTQ-Int4",
# "quantized.w4a16", "-bnb-4bit", llama.cpp's "-GGUF" repos.  Compared token by token (split at - _ .),
# case-insensitively.
_QUANT_NAME_TOKENS = ("nvfp4", "mxfp4", "fp4", "fp8", "int4", "int8", "awq", "gptq", "w4a16", "w8a8", "w4a8",
                      "w8a16", "nf4", "bnb", "4bit", "8bit", "gguf")


def quantized_by_name(model_id: str | None) -> str | None:
    """The quantization a model id's last component names ("nvidia/X-NVFP4" -> "NVFP4"), or None.

    Only a hint: what decides the bytes is the checkpoint's quantization config.  It is used when that config
    is missing (``estimate.tables.scheme_for``): an id that says NVFP4 with a config that says nothing is a
    checkpoint whose layout we were not given, not a bf16 model.  A local path's last component (``/`` or ``\\``)
    counts, and a path to a ``config.json`` names its directory: ``ckpt/X-NVFP4/config.json`` is the checkout
    ``ckpt/X-NVFP4`` (``sources/local.py`` reads the same files for both), so both get the same hint."""
    parts = str(model_id or "").replace("\\", "/").rstrip("/").split("/")
    last = parts[-2] if len(parts) > 1 and parts[-1] == "config.json" else parts[-1]
    for token in last.replace("_", "-").replace(".", "-").split("-"):
        if token.lower() in _QUANT_NAME_TOKENS:
            return token
    return None


def _quantization(config: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict | None:
    """The checkpoint's quantization description, as stored (never applied to counts).

    ``quantization_config`` or ``compression_config`` (top level or text_config);
    else a ModelOpt ``hf_quant_config.json`` side file, normalised to
    ``{"quant_method": "modelopt", **its "quantization" block}`` as vLLM reads it.
    """
    found = _first_set(config, ("quantization_config", "compression_config"))
    if found is not None:
        key, value = found
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"must be an object, got {type(value).__name__}")
        return dict(value)
    hf_quant = (extra or {}).get("hf_quant_config")
    if isinstance(hf_quant, Mapping) and isinstance(hf_quant.get("quantization"), Mapping):
        return {"quant_method": "modelopt", **hf_quant["quantization"], "source": "hf_quant_config.json"}
    return None

