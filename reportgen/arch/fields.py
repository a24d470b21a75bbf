"""Validated access to config fields.

Why a layer of its own: configs come from the internet and from fuzzers.  A
zero head count would divide by zero deep inside a formula, a string
``"4096"`` would multiply into nonsense and ``2**62`` layers would report a
yottabyte model.  Every numeric field the adapters read goes through here, and
any violation raises :class:`ConfigError` naming the field -- before
transformers sees the dict (its config classes divide by head counts in
``__post_init__``) and again on the parsed object (class defaults included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportgen.arch.errors import ConfigError

# (minimum, maximum, None allowed).  Maxima are far above any real model but low
# enough that a fuzzed value cannot produce a meaningless total.
_DIM = 1 << 18          # hidden sizes, head dims, ranks
_WIDE = 1 << 21         # MLP widths
_LAYERS = 4096
_HEADS = 1 << 13
_EXPERTS = 1 << 14
_TOKENS = 1 << 40       # context lengths, windows

LIMITS: dict[str, tuple[int, int, bool]] = {
    "hidden_size": (1, _DIM, False),
    "intermediate_size": (1, _WIDE, False),
    "intermediate_size_mlp": (1, _WIDE, False),
    "moe_intermediate_size": (1, _WIDE, True),   # null in dense Gemma-4 configs
    "shared_expert_intermediate_size": (0, _WIDE, False),
    "num_hidden_layers": (1, _LAYERS, False),
    "num_attention_heads": (1, _HEADS, False),
    "num_key_value_heads": (1, _HEADS, True),
    "head_dim": (1, _DIM, True),
    "vocab_size": (1, 1 << 24, False),
    "max_position_embeddings": (1, _TOKENS, True),
    "num_local_experts": (1, _EXPERTS, False),
    "num_experts": (1, _EXPERTS, True),
    "n_routed_experts": (1, _EXPERTS, True),
    "num_experts_per_tok": (1, _EXPERTS, True),
    "n_shared_experts": (0, _EXPERTS, True),
    "first_k_dense_replace": (0, _LAYERS, True),
    "moe_layer_freq": (1, _LAYERS, True),
    "decoder_sparse_step": (1, _LAYERS, True),
    "interleave_moe_layer_step": (1, _LAYERS, True),
    "num_nextn_predict_layers": (0, 64, True),
    "kv_lora_rank": (1, _DIM, True),
    "q_lora_rank": (1, _DIM, True),
    "qk_rope_head_dim": (1, _DIM, True),
    "qk_nope_head_dim": (0, _DIM, True),
    "v_head_dim": (1, _DIM, True),
    "sliding_window": (0, _TOKENS, True),
    "attention_chunk_size": (1, _TOKENS, True),
    "max_window_layers": (0, _LAYERS, True),
    # vision towers
    "image_size": (1, 1 << 16, False),
    "patch_size": (1, 1 << 12, False),
    "num_channels": (1, 64, False),
    "projector_input_dim": (1, _WIDE, False),
    "projector_output_dim": (1, _WIDE, False),
    "vision_output_dim": (1, _WIDE, False),
    "spatial_merge_size": (1, 64, False),
    "mm_tokens_per_image": (1, 1 << 20, True),
}

# Boolean switches that change which tensors exist: a string "false" is truthy in Python.
FLAGS = (
    "tie_word_embeddings", "attention_bias", "mlp_bias", "qkv_bias", "use_qk_norm", "qk_layernorm",
    "use_sliding_window", "vision_use_head", "multimodal_projector_bias", "use_bias",
    "lm_head_bias", "attention_out_bias",
)

# Fields a text config must state itself: transformers' class defaults would
# silently turn a truncated file into a 7B llama.
REQUIRED_TEXT = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")

# legacy names a config class maps onto a required field (its ``attribute_map``): EXAONE-3 says num_layers
REQUIRED_ALIASES = {"num_hidden_layers": ("num_layers",)}

SUBCONFIGS = ("text_config", "vision_config")

# Fields some architectures give per layer as a list.  A non-empty list there is
# a feature (judged by features.scan -> unsupported), not a type error.
PER_LAYER_LISTS = ("num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size",
                   "num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size",
                   "sliding_window")


def check_int(name: str, value: Any, lo: int, hi: int, nullable: bool) -> int | None:
    """One integer field: right type, in range.  Returns the value."""
    if value is None:
        if nullable:
            return None
        raise ConfigError(name, "is null; an integer is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer, got {type(value).__name__} {value!r}")
    if value < lo:
        raise ConfigError(name, f"must be >= {lo}, got {value}")
    if value > hi:
        raise ConfigError(name, f"is absurdly large ({value} > {hi})")
    return value


def prevalidate(raw: Mapping[str, Any], prefix: str = "", *, required: tuple[str, ...] = (),
                skip: tuple[str, ...] = ()) -> None:
    """Check every known numeric / boolean field present in a raw config dict (and its sub-configs).

    ``skip``: top-level fields the family adapter validates itself with its own rule (granite-4.0-h's
    ``num_local_experts`` may be 0: a dense hybrid)."""
    for name in required:
        if name not in raw and not any(a in raw for a in REQUIRED_ALIASES.get(name, ())):
            raise ConfigError(prefix + name, "is missing")
    for name, value in raw.items():
        if name in skip:
            continue
        lim = LIMITS.get(name)
        if lim is not None:
            if isinstance(value, list) and value and name in PER_LAYER_LISTS:
                continue  # per-layer geometry: a feature, judged by features.scan
            check_int(prefix + name, value, *lim)
        elif name in FLAGS and value is not None and not isinstance(value, bool):
            raise ConfigError(prefix + name, f"must be true or false, got {value!r}")
    lt, n = raw.get("layer_types"), raw.get("num_hidden_layers")
    if lt is not None:
        if not isinstance(lt, list) or not all(isinstance(x, str) for x in lt):
            raise ConfigError(prefix + "layer_types", "must be a list of layer-type names")
        if isinstance(n, int) and len(lt) != n:
            raise ConfigError(prefix + "layer_types", f"has {len(lt)} entries for num_hidden_layers {n}")
    for sub in SUBCONFIGS:
        if sub in raw and raw[sub] is not None:
            if not isinstance(raw[sub], Mapping):
                raise ConfigError(prefix + sub, f"must be an object, got {type(raw[sub]).__name__}")
            prevalidate(raw[sub], f"{prefix}{sub}.")


_MISSING = object()


class Fields:
    """Read fields of one parsed (sub-)config, validated, with transformers' defaults applied.

    ``obj`` is the parsed config (a transformers config object; a namespace
    of them for composite configs, see parse.parse_composite); fields it lacks
    are read from ``raw``, the dict it came from.  ``prefix`` goes in front of
    field names in errors (``text_config.``).
    """

    __slots__ = ("obj", "raw", "prefix")

    def __init__(self, obj: Any, raw: Mapping[str, Any], prefix: str = "") -> None:
        self.obj = obj
        self.raw = raw
        self.prefix = prefix

    def get(self, name: str, default: Any = None) -> Any:
        if self.obj is not None:
            value = getattr(self.obj, name, _MISSING)
            if value is not _MISSING:
                return value
        return self.raw.get(name, default)

    @property
    def model_type(self) -> str:
        """The model_type this config was parsed as (the native one for architecture fallbacks)."""
        mt = getattr(self.obj, "model_type", None) if self.obj is not None else None
        return mt or self.raw.get("model_type", "")

    def has(self, name: str) -> bool:
        return self.get(name, _MISSING) is not _MISSING

    def int(self, name: str, default: Any = _MISSING, *, lo: int | None = None) -> int:
        """A required integer (class default allowed); ``default`` when the field is absent or null."""
        value = self.get(name, None)
        if value is None:
            if default is _MISSING:
                raise ConfigError(self.prefix + name, "is missing")
            return default
        mn, mx, _ = LIMITS.get(name, (1, _WIDE, False))
        return check_int(self.prefix + name, value, mn if lo is None else lo, mx, False)

    def opt_int(self, name: str) -> int | None:
        """An integer that may be absent / null (e.g. ``q_lora_rank``)."""
        value = self.get(name, None)
        if value is None:
            return None
        return self.int(name)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name, None)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(self.prefix + name, f"must be true or false, got {value!r}")
        return value

    def int_list(self, name: str, *, lo: int = 0, hi: int = _LAYERS) -> list[int]:
        value = self.get(name, None)
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(self.prefix + name, f"must be a list of integers, got {type(value).__name__}")
        return [check_int(f"{self.prefix}{name}[{i}]", v, lo, hi, False) for i, v in enumerate(value)]

    def str_list(self, name: str) -> list[str] | None:
        value = self.get(name, None)
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.prefix + name, "must be a list of strings")
        return list(value)

    def err(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.prefix + name, message)
