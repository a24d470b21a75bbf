"""Config dict -> transformers config object, never with remote code.

Why through transformers at all: its config classes hold the defaults the
model code (and the meta-device oracle, and vLLM) use when a config.json omits
a field -- e.g. Gemma ties embeddings, Qwen2-MoE has qkv bias, Llama-4 derives
``moe_layers`` / ``layer_types``.  Reading the raw dict alone would get those
silently wrong.

Why ``CONFIG_MAPPING[model_type](**config)`` (what ``from_dict`` does) and not ``AutoConfig``: it takes
a dict (no temp files), never consults ``auto_map`` and so can never run remote
code, and costs about a millisecond.  transformers is imported lazily: the
package must import fast for callers that never build a spec.

Model types the installed transformers lacks (e.g. ``kimi_k2``) fall back to
the native class of a known ``architectures`` entry (Kimi-K2 declares
``DeepseekV3ForCausalLM``: DeepSeek-V3 math), as the oracle does.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import os
import re
import typing
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from reportgen.arch.errors import ConfigError

# Storage details, never architecture; dropped before parsing (read separately).
DROP_KEYS = ("quantization_config", "compression_config", "auto_map")

# architectures class name -> native model_type, for model types transformers lacks.
ARCHITECTURE_FALLBACK = {
    "DeepseekV3ForCausalLM": "deepseek_v3",
    "DeepseekV2ForCausalLM": "deepseek_v2",
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "MixtralForCausalLM": "mixtral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen2MoeForCausalLM": "qwen2_moe",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    # MiniMax-M3 (model_type minimax_m3, not in transformers 5.24): the minimax_m3_vl composite's text model.  vLLM
    # parses no minimax_m3 config and lists no MiniMaxM3ForCausalLM: estimate/served.py refuses that pair per release
    "MiniMaxM3ForCausalLM": "minimax_m3_vl_text",
    "MiniMaxM3SparseForCausalLM": "minimax_m3_vl_text",
}


def config_class(model_type: str) -> Any | None:
    """The transformers config class for a model_type, or None if this transformers lacks it."""
    # torch is never a dependency: transformers' import-time "PyTorch was not found" advice is noise here
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    try:
        return CONFIG_MAPPING[model_type]
    except (KeyError, ValueError):
        return None


def native_model_type(model_type: str, architectures: tuple[str, ...]) -> tuple[str, str | None]:
    """(model_type to parse with, note) -- the config's own type when native, else an architecture fallback."""
    if config_class(model_type) is not None:
        return model_type, None
    for arch in architectures:
        native = ARCHITECTURE_FALLBACK.get(arch)
        if native is not None and config_class(native) is not None:
            return native, f"model_type {model_type!r} is not in transformers; parsed as {native!r} (architectures {arch})"
    return model_type, None


def _copy(raw: Mapping[str, Any], model_type: str) -> dict[str, Any]:
    """Shallow copy without storage keys; sub-config dicts copied too (from_dict may mutate them)."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items() if k not in DROP_KEYS}
    out["model_type"] = model_type
    return out


_FLOAT_ONLY: dict[type, frozenset[str]] = {}


def _float_only_fields(cls: type) -> frozenset[str]:
    """The fields of a (strict dataclass) config class typed ``float`` / ``float | None`` but not ``int``."""
    if cls not in _FLOAT_ONLY:
        names = set()
        for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
            t = f.type
            parts = ({p.strip() for p in t.split("|")} if isinstance(t, str)
                     else {getattr(a, "__name__", str(a)) for a in (typing.get_args(t) or (t,))})
            if "float" in parts and "int" not in parts:
                names.add(f.name)
        _FLOAT_ONLY[cls] = frozenset(names)
    return _FLOAT_ONLY[cls]


def _json_numbers(d: dict[str, Any], cls: type) -> dict[str, Any]:
    """JSON does not tell ``-5`` from ``-5.0``: an integer written for a float field is that float.

    Why: transformers 5.x's strict config classes reject ``"kda_lower_bound": -5`` (an int) in the
    published Ling-3 checkpoints' configs, and ``"rms_norm_eps": 1`` the same way; the checkpoints
    mean the number.  Booleans stay as they are (a bool is an int in Python)."""
    for name in _float_only_fields(cls):
        v = d.get(name)
        if isinstance(v, int) and not isinstance(v, bool):
            d[name] = float(v)
    return d


class _Quiet:
    """Silence transformers' config warnings (legacy field names) during one parse, then restore."""

    def __enter__(self):
        self.log = logging.getLogger("transformers")
        self.level = self.log.level
        self.log.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.log.setLevel(self.level)


def parse_config(raw: Mapping[str, Any], model_type: str) -> Any:
    """Parse with the native class of ``model_type``; any failure becomes a ConfigError naming a field."""
    cls = config_class(model_type)
    if cls is None:  # caller checks first; kept for safety
        raise ConfigError("model_type", f"{model_type!r} has no transformers config class")
    try:
        with _Quiet():
            # cls(**d) is what from_dict does, minus a log line that reprs the whole config eagerly (~40 % of the time)
            return cls(**_json_numbers(_copy(raw, model_type), cls))
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - transformers raises many types on bad input
        raise (_unknown_layer_kind(str(e), raw, "")
               or ConfigError(_guess_field(str(e), raw), f"transformers rejected the config: {type(e).__name__}: {e}")) from None


_ALLOWED_KINDS = re.compile(r"The `(\w+)` entries must be in \(([^)]*)\) but got (\[[^\]]*\])")


def _unknown_layer_kind(message: str, raw: Mapping[str, Any], prefix: str) -> ConfigError | None:
    """transformers' ``validate_layer_type`` error ("The `layer_types` entries must be in (...) but got [the whole,
    normalised list]") as reportgen's own: the first unknown entry named by index (as the config writes it), the
    allowed kinds listed once.  None for any other error."""
    m = _ALLOWED_KINDS.search(message)
    if m is None:
        return None
    name, allowed = m.group(1), [k.strip().strip("'\"") for k in m.group(2).split(",") if k.strip()]
    try:
        got = ast.literal_eval(m.group(3))
    except (ValueError, SyntaxError):
        return None
    field = next((f for f in (name, "layers_block_type") if isinstance(raw.get(f), (list, tuple))), None)
    bad = next((i for i, kind in enumerate(got) if kind not in allowed), None)
    if field is None or bad is None:
        return None
    written = raw[field][bad] if bad < len(raw[field]) else got[bad]
    return ConfigError(f"{prefix}{field}[{bad}]", f"unknown layer kind {written!r}: transformers' config validator "
                                                   f"(its own kind names) allows only {', '.join(allowed)}")


def _guess_field(message: str, raw: Mapping[str, Any]) -> str:
    """The config key a transformers error message mentions (longest match), else 'config'."""
    names = [k for k in raw if isinstance(k, str) and k in message]
    for sub in ("text_config", "vision_config", "audio_config"):
        if isinstance(raw.get(sub), Mapping):
            names += [f"{sub}.{k}" for k in raw[sub] if isinstance(k, str) and k in message]
    return max(names, key=len) if names else "config"


def parse_composite(raw: Mapping[str, Any], model_type: str) -> Any:
    """A text + vision config: each sub-config parsed with its own class, top-level fields with class defaults.

    Why not the composite class: given sub-config dicts it does exactly this
    (``create_subconfig``: the sub-class called on the dict), plus a strict
    validation pass that reprs whole configs -- 3 ms of the 5 ms budget for
    Llama-4.  The result exposes what the adapters read: ``model_type``,
    ``text_config``, ``vision_config`` and the composite's own fields (raw
    value, else the class default).  Falls back to the composite class when
    this transformers has no ``sub_configs_defaults`` (4.x).
    """
    cls = config_class(model_type)
    specs = getattr(cls, "sub_configs_defaults", None)
    if cls is None or not isinstance(specs, Mapping) or not dataclasses.is_dataclass(cls):
        return parse_config(raw, model_type)
    from transformers import PretrainedConfig

    parts: dict[str, Any] = {}
    for key in ("text_config", "vision_config"):
        spec, sub = specs[key], dict(raw[key])
        if isinstance(spec.config_class, type) and issubclass(spec.config_class, PretrainedConfig):
            sub_cls = spec.config_class  # the composite ignores the dict's model_type then
        else:
            sub_type = sub.get("model_type") or spec.model_type
            if config_class(sub_type) is None:
                # e.g. Kimi-K2.5's text_config model_type "kimi_k2" (DeepseekV3ForCausalLM): as parse_config
                sub_type, _ = native_model_type(sub_type, tuple(a for a in sub.get("architectures") or ()
                                                                if isinstance(a, str)))
                sub["model_type"] = sub_type
            sub_cls = config_class(sub_type)
            if sub_cls is None:
                raise ConfigError(f"{key}.model_type", f"{sub.get('model_type')!r} has no transformers config class")
        try:
            with _Quiet():
                parts[key] = sub_cls(**_json_numbers(sub, sub_cls))
        except Exception as e:  # noqa: BLE001 - transformers raises many types on bad input
            field = _guess_field(str(e), sub)
            raise (_unknown_layer_kind(str(e), sub, f"{key}.")
                   or ConfigError(key if field == "config" else f"{key}.{field}",
                                  f"transformers rejected the config: {type(e).__name__}: {e}")) from None
    top = {f.name: f.default for f in dataclasses.fields(cls)
           if f.default is not dataclasses.MISSING and f.name not in parts}
    top.update({k: v for k, v in raw.items() if k not in parts and k not in DROP_KEYS})
    top.update(parts, model_type=model_type)
    return SimpleNamespace(**top)


def parse_composite_lenient(raw: Mapping[str, Any], model_type: str) -> Any:
    """``parse_composite`` for composites whose checkpoints may be flat or trimmed.

    A flat config (Qwen2-VL / Qwen2.5-VL: text fields at the top level) gets its text fields
    lifted into ``text_config`` exactly as the composite class's ``__post_init__`` does (the
    text class's parameters plus the rope keys, and the dtype), then the fast part-by-part parse
    (the composite class validates by repr-ing whole configs: ~40 ms).  A trimmed config (no
    ``vision_config``) goes through the composite class itself: its defaults for an absent part
    are its own (LLaVA: a CLIP-L/336 tower), not the sub-config class's.
    """
    import inspect

    if raw.get("vision_config") is None:
        return parse_config(raw, model_type)
    cls = config_class(model_type)
    specs = getattr(cls, "sub_configs_defaults", None)
    cfg = dict(raw)
    if isinstance(specs, Mapping) and cfg.get("text_config") is None and "text_config" in specs:
        text_cls = getattr(specs["text_config"], "config_class", None)
        if isinstance(text_cls, type) and text_cls.__name__ != "AutoConfig":
            keys = set(inspect.signature(text_cls.__init__).parameters) | {"rope_parameters", "rope_scaling",
                                                                           "rope_theta"}
            keys -= {"self", "kwargs", "model_type"}
            lifted = {k: cfg.pop(k) for k in list(cfg) if k in keys}
            lifted["dtype"] = raw.get("torch_dtype", raw.get("dtype"))
            cfg["text_config"] = lifted
    if cfg.get("text_config") is None:
        return parse_config(raw, model_type)
    return parse_composite(cfg, model_type)
