"""RoPE facts vLLM derives from a config: the longest ``--max-model-len`` it accepts and the
rotary ``cos_sin_cache`` buffers it allocates.

Why here (the arch layer) and exact: both are pure functions of the config, vLLM refuses to
start above the first, and the second is counted in vLLM's "Model loading took X GiB" (Gemma-3
carries 576 MiB of them).  Source: vLLM v0.19 -- ``vllm/config/model.py``
``_get_and_verify_max_len`` with ``ModelArchConfigConvertorBase.derive_max_model_len_and_key``
(``vllm/transformers_utils/model_arch_config_convertor.py``), ``patch_rope_parameters``
(``vllm/transformers_utils/config.py``), ``get_rope`` and the classes of
``vllm/model_executor/layers/rotary_embedding/``, and each model's ``get_rope`` call.

Derived maximum (read off the *text* config, ``hf_text_config``):

1. the smallest of ``max_position_embeddings``, ``n_positions``, ``max_seq_len``, ``seq_length``,
   ``model_max_length``, ``max_target_positions``, ``max_sequence_length``, ``max_seq_length``,
   ``seq_len`` (class defaults included); a truthy ``model_max_length`` then replaces it;
   none present -> no limit (vLLM takes the user's value unchecked);
2. RoPE scaling, unless the text model_type contains ``gemma3`` (its 128K is already scaled):
   over the rope parameter sets (one, or one per layer type), every type other than
   ``su`` / ``longrope`` / ``llama3`` sets the factor (``factor``, default 1) and ``yarn`` also
   resets the length to its ``original_max_position_embeddings``; length x factor (up to 0.29: from
   0.30 the yarn types add no factor and keep the length -- "Per release" below);
3. the user value is refused when above that and above ``model_max_length`` (when set),
   unless ``VLLM_ALLOW_LONG_MAX_MODEL_LEN``.  So the limit is
   ``max(floor(derived), model_max_length or 0)``.

(``tokenizer_config.model_max_length`` only counts for pooling models with absolute position
embeddings, and a sentence-transformers ``max_seq_length`` only for those too: neither applies
to the generative models we estimate.)

Rotary caches (``get_rope``; one module per distinct (head size, rotary dim, max position,
parameters, dtype) -- memoised, so layers with the same rope share one cache), rows x rotary_dim
(``cat(cos, sin)``), in the model dtype unless the model asks otherwise:

=====================  ================================================================
rope_type              cache rows
=====================  ================================================================
default                ``max_position``
mrope (``default`` or  ``4 x`` the row count of its type (``MRotaryEmbedding``: ``max_position x 4``;
``yarn`` with          yarn: ``ceil(original_max_position_embeddings x 4 x factor)``); from 0.32
``mrope_section``)     ``x 1`` for Qwen3-VL / Qwen3.5 (``MROPE_POSITIONS_1``)
llama3, ntk, dynamic   ``max_position`` (dynamic with ``factor``: ``max_position x factor`` up to 0.21,
(alpha)                ``max_position`` from 0.22; with ``alpha``: ``max_position``)
linear                 ``max_position x factor`` (``ceil``)
yarn                   ``ceil(original_max_position_embeddings x factor)``
deepseek_yarn          ``ceil(original_max_position_embeddings x factor)`` (DeepSeek MLA maps
                       every non-default type to it)
longrope / su          ``original_max_position_embeddings + max_position`` (short + long)
=====================  ================================================================

``max_position`` is the config's ``max_position_embeddings`` except where the model code ties it to
``--max-model-len`` (``ModelSpec.rope_length_mode``: MiniMax-Text-01 ``min``, MiniMax-M2 ``max`` of the two, after
its ``*ForCausalLM`` copied ``model_config.max_model_len`` into the config): those entries carry a ``LengthRows``
(``cache_entry``), which ``estimate/weights.rotary_cache_bytes`` evaluates at each cell's length.

Per family: one cache from the config's parameters (partial rotary through ``rotary_dim``);
per layer type when the parameters are nested (Gemma-3: sliding layers ``default`` with the
local base, full layers ``linear`` x8 -> two caches); DeepSeek V2/V3 ``qk_rope_head_dim`` wide;
gpt-oss a float32 YaRN cache; Llama-4 none when every layer is NoPE.  Vision towers' 2-D ropes
(Llama-4's ~0.2 MB complex cache, Pixtral's frequencies) are not counted.

Per release (read in the release sdists 0.10.0 .. 0.34.0 under /work/vllm_src; the rules above are those of the
oldest releases, 0.10 .. 0.21).  Three rules changed; ``RULE_CHANGES`` lists the first release of each (and of
the longrope default below):

* 0.22.0 -- ``dynamic`` with ``factor``: ``DynamicNTKScalingRotaryEmbedding._compute_cos_sin_cache`` builds
  ``arange(max_position_embeddings)`` rows (0.22.0 sdist ``model_executor/layers/rotary_embedding/
  dynamic_ntk_scaling_rope.py`` line 67); up to 0.21.0 ``arange(max_position_embeddings x scaling_factor)``
  (0.21.0 same file, ``max_len = self.max_position_embeddings * self.scaling_factor``).  The derived maximum
  still multiplies by its factor.
* 0.30.0 -- derived maximum: ``yarn``, ``deepseek_yarn`` and ``deepseek_llama_scaling`` join su / longrope /
  llama3 in the types that add no factor, and yarn no longer resets the length to its
  ``original_max_position_embeddings`` ("YaRN variants leave max_position_embeddings already scaled": 0.30.0
  sdist ``vllm/config/model.py`` lines 2468-2481; 0.29.0 lines 2452-2458 still ``factor`` for every other type and
  ``derived = rp["original_max_position_embeddings"]`` for yarn).  A yarn config whose length is not
  ``original x factor`` (Qwen3 with the model card's factor 4 / original 32768 over max_position_embeddings
  40960) is capped at 131072 up to 0.29, at 40960 from 0.30.  Same release: layer types whose parameters are
  None drop out of the rule (lines 2451-2457; 0.32.0 ``transformers_utils/config.py`` ``iter_rope_parameters``,
  lines 644-653, also skips empty dicts) -- ``rope_parameters`` drops the None ones for every release (0.29 and
  older would raise on them).
* 0.32.0 -- MRoPE cache rows: ``MRotaryEmbedding(positions_factor=4)`` (0.32.0 sdist
  ``rotary_embedding/mrope.py`` line 351, ``max_position_embeddings * positions_factor``; up to 0.31 a fixed
  ``* 4``), and the Qwen3-VL / Qwen3-VL-MoE / Qwen3.5 decoder layers pass ``mrope_positions_factor(vllm_config)``,
  which is 1 unless video pruning is on (0.32.0 ``models/qwen3_vl.py`` lines 1818-1831, ``qwen3_vl_moe.py`` line
  77, ``qwen3_5.py`` line 165; the same in 0.33 / 0.34): ``max_position`` rows for those text model types
  (``MROPE_POSITIONS_1``), still ``x 4`` for Qwen2-VL / Qwen2.5-VL and the rest.  reportgen does not model
  ``--video-pruning-rate`` (off by default).

Unchanged 0.10 .. 0.34 (diffed): the length keys and ``model_max_length`` rule (moved into
``ModelArchConfigConvertorBase.derive_max_model_len_and_key`` in 0.14.0, only MossAudio overrides it), the gemma3
exception, ``encoder_config.max_seq_length`` (pooling models), the rows of linear / llama3 / ntk / dynamic-alpha /
yarn / deepseek_yarn / longrope caches, ``patch_rope_parameters``' ``su`` -> longrope and ``mrope`` -> default.
Also versioned: vLLM's *default* ``--max-model-len`` for a longrope config is its top-level
``original_max_position_embeddings`` from 0.11.1 (``default_max_model_len``, ``ModelSpec.max_model_len_default``;
only ``reportgen estimate --from-vllm-args`` without ``--max-model-len`` reads it -- jobs state their lengths).
Changed but not priced differently: a null ``factor`` counts 1.0 from 0.18.0 (earlier releases raise).

How the versions reach the estimate: ``apply`` gives the spec the oldest releases' values
(``max_model_len_limit``, ``max_model_len_default``, ``rope_caches``) and lists in ``ModelSpec.from_release``
the values that hold from a later release on; ``estimate/served.release_values`` (through
``spec_for_version``, which the matrix and so ``reportgen estimate`` call) picks the job's.  Caches a family
builds itself (``rope_caches`` set before ``apply``: cohere, gemma4, deepseek_v4, step3p7, ...) carry one value
for every release; ``cache_rows`` without a ``release`` applies the oldest rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reportgen.arch.errors import ConfigError
from reportgen.arch.fields import Fields
from reportgen.arch.spec import ModelSpec

LEN_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
            "max_target_positions", "max_sequence_length", "max_seq_length", "seq_len")
_NO_FACTOR = ("su", "longrope", "llama3")
# 0.30.0 on (config/model.py lines 2471-2478): the YaRN variants add no factor either
_NO_FACTOR_030 = _NO_FACTOR + ("yarn", "deepseek_yarn", "deepseek_llama_scaling")
Release = tuple[int, int]
FIRST_RELEASE: Release = (0, 10)       # the oldest release reportgen prices: the rules of the module doc's table
LONGROPE_DEFAULT_FROM: Release = (0, 11)  # vLLM's default --max-model-len of a longrope config (0.11.1 on)
DYNAMIC_ROWS_FROM: Release = (0, 22)   # DynamicNTKScalingRotaryEmbedding: max_position rows, no longer x factor
YARN_LENGTH_FROM: Release = (0, 30)    # _get_and_verify_max_len: yarn variants leave the length as it is
MROPE_POSITIONS_FROM: Release = (0, 32)  # MRotaryEmbedding positions_factor (1 for MROPE_POSITIONS_1)
RULE_CHANGES: tuple[Release, ...] = (LONGROPE_DEFAULT_FROM, DYNAMIC_ROWS_FROM, YARN_LENGTH_FROM,
                                     MROPE_POSITIONS_FROM)
# text model types whose vLLM decoder layers pass mrope_positions_factor(vllm_config) (1 without video pruning)
MROPE_POSITIONS_1 = frozenset(("qwen3_vl_text", "qwen3_vl_moe_text", "qwen3_5_text", "qwen3_5_moe_text"))
# transformers.configuration_utils.ALLOWED_LAYER_TYPES (5.x), used when it cannot be imported
_LAYER_TYPES = frozenset(("full_attention", "sliding_attention", "chunked_attention", "window_attention",
                          "indexed_attention", "compressed_sparse_attention", "heavily_compressed_attention",
                          "conv", "moe", "hybrid", "hybrid_sliding", "linear_attention", "sparse", "dense"))


def _num(v: Any) -> float | None:
    """A positive finite number, else None (bools are not numbers here)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) and v > 0 else None


@lru_cache(maxsize=1)
def _layer_types() -> frozenset[str]:
    try:
        from transformers.configuration_utils import ALLOWED_LAYER_TYPES
        return frozenset(ALLOWED_LAYER_TYPES) | _LAYER_TYPES
    except Exception:  # noqa: BLE001 - older transformers: the built-in list
        return _LAYER_TYPES


def _normalise(rp: Mapping[str, Any]) -> dict[str, Any]:
    """One parameter set as vLLM's ``patch_rope_parameters_dict`` leaves it."""
    out = dict(rp)
    rope_type = out.get("rope_type") or out.get("type") or "default"
    if rope_type == "su":
        rope_type = "longrope"
    elif rope_type == "mrope":
        rope_type = "default"
    out["rope_type"] = rope_type
    return out


def rope_parameters(f: Fields) -> dict[str, dict[str, Any]] | None:
    """``{layer_type: parameters}`` (a flat config under the key ``""``), or None without RoPE parameters.

    transformers 5 standardises ``rope_scaling`` into ``rope_parameters`` (nested per layer type for
    Gemma-3 and the like); a config parsed elsewhere may still carry only ``rope_scaling``.
    """
    rp = f.get("rope_parameters")
    if not isinstance(rp, Mapping) or not rp:
        rs = f.get("rope_scaling")
        rp = rs if isinstance(rs, Mapping) and rs else None
        if rp is None:
            return None
    if all(isinstance(v, Mapping) or v is None for v in rp.values()) and set(rp) <= _layer_types():
        # nested; a layer type with None parameters has no RoPE (vLLM 0.30+ drops it from the length rule; 0.29
        # and older raise on it)
        return {k: _normalise(v) for k, v in rp.items() if v is not None} or None
    return {"": _normalise(rp)}


def derived_max_model_len(f: Fields, release: Release = FIRST_RELEASE) -> int | None:
    """The largest ``--max-model-len`` vLLM ``release`` (major, minor) accepts for this (text) config, None when
    unbounded (module doc; the yarn rule changed in 0.30)."""
    derived = math.inf
    for key in LEN_KEYS:
        v = _num(f.get(key))
        if v is not None:
            derived = min(derived, v)
    model_max_length = _num(f.get("model_max_length"))
    if model_max_length is not None:
        derived = model_max_length
    if derived == math.inf:
        return None
    params = rope_parameters(f)
    if params and "gemma3" not in (f.model_type or ""):
        factor = 1.0
        old = release < YARN_LENGTH_FROM
        for rp in params.values():
            if rp["rope_type"] in (_NO_FACTOR if old else _NO_FACTOR_030):
                continue
            factor = _num(rp.get("factor")) or factor
            if old and rp["rope_type"] == "yarn":
                derived = _num(rp.get("original_max_position_embeddings")) or derived
        derived = _positions(derived * factor, f.prefix + "rope_parameters.factor")
    limit = math.floor(derived)
    if model_max_length is not None:
        limit = max(limit, math.floor(model_max_length))
    return int(limit)


def default_max_model_len(f: Fields, release: Release = FIRST_RELEASE) -> int | None:
    """vLLM ``release``'s ``--max-model-len`` when none is given, where it is not the derived maximum: from 0.11.1 a
    config with a ``longrope`` parameter set defaults to its (top-level) ``original_max_position_embeddings``
    (0.11.1 sdist ``vllm/config/model.py`` lines 2112-2119, 0.30.0 lines 2501-2510: "to avoid performance
    degradation for shorter sequences"); None = the derived maximum.  Releases are told apart by (major, minor):
    0.11.0, which still took the derived maximum, counts as 0.11.1."""
    if release < LONGROPE_DEFAULT_FROM or not any(rp["rope_type"] == "longrope"
                                                  for rp in (rope_parameters(f) or {}).values()):
        return None
    ompe = _num(f.get("original_max_position_embeddings"))
    return int(ompe) if ompe is not None else None


# MRotaryEmbedding (``get_rope``'s ``default`` and ``yarn`` branches when the parameters carry ``mrope_section``)
# builds its cache over ``max_position x 4`` positions: "In Qwen2.5-VL, the maximum index value is related to
# the duration of the input video" -- vLLM mrope.py ``self.cache_max_position_num = max_position_embeddings * 4``
# @055e47c28003156421365af985d676fc921cb075 (vllm/model_executor/layers/rotary_embedding/)
MROPE_CACHE_FACTOR = 4


def cache_rows(rp: Mapping[str, Any], max_position: int, release: Release = FIRST_RELEASE,
               mrope_positions: int = MROPE_CACHE_FACTOR) -> int:
    """Rows of the cos/sin cache ``get_rope`` of vLLM ``release`` builds for one parameter set (table in the
    module doc; ``dynamic`` changed in 0.22).  ``mrope_positions``: ``MRotaryEmbedding``'s positions factor (4;
    ``rope_caches`` passes 1 for ``MROPE_POSITIONS_1`` from 0.32)."""
    kind = rp.get("rope_type", "default")
    if rp.get("mrope_section") and kind in ("default", "yarn"):
        # MRotaryEmbedding: base length x positions (yarn: original_max_position_embeddings x positions, x factor)
        if kind == "yarn":
            rp = dict(rp)
            ompe = _num(rp.get("original_max_position_embeddings"))
            rp["original_max_position_embeddings"] = (ompe or max_position) * mrope_positions
        else:
            return max_position * mrope_positions
    factor = _num(rp.get("factor"))
    ompe = _num(rp.get("original_max_position_embeddings"))
    field = "rope_parameters.factor"
    if kind == "linear" and factor:
        return math.ceil(_positions(max_position * factor, field))
    if kind == "dynamic" and factor and "alpha" not in rp and release < DYNAMIC_ROWS_FROM:
        return math.ceil(_positions(max_position * factor, field))
    if kind in ("yarn", "deepseek_yarn", "deepseek_llama_scaling") and factor:
        return math.ceil(_positions((ompe or max_position) * factor, field))
    if kind == "longrope":
        return int(_positions(ompe or max_position, "rope_parameters.original_max_position_embeddings")) + max_position
    return max_position


@dataclass(frozen=True)
class LengthRows:
    """Rows of a cache whose ``max_position`` follows ``--max-model-len``: the model code passes ``get_rope``
    ``min`` (``mode`` "min": vLLM ``minimax_text_01.py`` @98370df7, ``MiniMaxText01DecoderLayer``) or ``max``
    (``mode`` "max": ``minimax_m2.py`` @01d99586, ``MiniMaxM2DecoderLayer``) of ``max_position_embeddings`` and
    the ``config.max_model_len`` its ``*ForCausalLM`` copied from ``model_config.max_model_len``; the cache then
    has ``cache_rows(params, max_position)`` rows.  The fourth item of a ``ModelSpec.rope_caches`` entry."""

    mode: str                           # "min" | "max"
    max_position_embeddings: int
    params: tuple                       # the rope parameter set, as items (lists made tuples)

    def rows(self, max_model_len: int) -> int:
        pick = min if self.mode == "min" else max
        return cache_rows(dict(self.params), pick(self.max_position_embeddings, int(max_model_len)))


def cache_entry(rp: Mapping[str, Any], max_pos: int, rot: int, element_bytes: int = 0,
                length_mode: str = "", release: Release = FIRST_RELEASE, mrope_positions: int = MROPE_CACHE_FACTOR
                ) -> tuple:
    """One ``rope_caches`` entry ``(rows, rotary_dim, element bytes[, LengthRows])``: rows at
    ``max_position_embeddings`` (vLLM's default ``--max-model-len`` for a ``min`` rule: the derived maximum is
    never below it without rope scaling), plus the length rule when ``length_mode`` is set and the rope type's
    rows depend on ``max_position`` at all (YaRN / DeepSeek-YaRN size by ``original_max_position_embeddings``)."""
    rows = cache_rows(rp, max_pos, release, mrope_positions)
    if length_mode and cache_rows(rp, 2 * max_pos, release, mrope_positions) != rows:
        params = tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in rp.items()))
        return (rows, rot, element_bytes, LengthRows(length_mode, max_pos, params))
    return (rows, rot, element_bytes)


def cache_rows_at(cache: tuple, max_model_len: int | None) -> int:
    """Rows of one ``rope_caches`` entry when vLLM runs with ``max_model_len`` (None: its default)."""
    rule = cache[3] if len(cache) > 3 else None
    return int(cache[0]) if rule is None or max_model_len is None else rule.rows(max_model_len)


def _param_key(rp: Mapping[str, Any]) -> str:
    """What ``get_rope`` memoises on (the parameter items), as a string: values may be lists.

    Numbers compare by value, as in vLLM's dict-key memo (``500000 == 500000.0``): transformers
    5 gives Olmo-3's sliding layers a float theta and its full layers the config's int.
    """
    def norm(v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return v

    return repr(sorted(((str(k), norm(v)) for k, v in rp.items()), key=lambda kv: kv[0]))


_MAX_POSITIONS = float(1 << 48)


def _positions(x: float, field: str) -> float:
    """A position count from a scaled length; an absurd factor is a config error, not an overflow."""
    if not math.isfinite(x) or x > _MAX_POSITIONS:
        raise ConfigError(field, f"scales the context to {x:g} positions")
    return x


MLA_ROPE_FAMILIES = ("deepseek_v2", "deepseek_v3", "glm4_moe_lite", "deepseek_v32", "glm_moe_dsa", "mistral4",
                     "longcat_flash")


def rope_caches(f: Fields, spec: ModelSpec, release: Release = FIRST_RELEASE) -> tuple[tuple, ...]:
    """``((rows, rotary_dim, element_bytes[, LengthRows]), ...)`` -- one per distinct ``get_rope`` module on a
    rank of vLLM ``release``; ``element_bytes`` 0 = the model (serving) dtype; a ``LengthRows`` (``cache_entry``)
    when ``spec.rope_length_mode`` ties the rows to ``--max-model-len``."""
    max_pos = spec.max_position_embeddings
    rot = spec.rotary_dim or spec.head_dim
    if not max_pos or not rot:
        return ()
    family = f.model_type
    params = rope_parameters(f) or {"": {"rope_type": "default"}}
    if family == "llama4_text":
        nope = f.get("no_rope_layers")
        if isinstance(nope, (list, tuple)) and nope and not any(nope):
            return ()                           # every layer NoPE: no rotary module at all
    if family in MLA_ROPE_FAMILIES:
        # MLA: every non-default type becomes deepseek_yarn (or deepseek_llama_scaling, same size)
        rp = dict(params.get("", next(iter(params.values()))))
        if rp["rope_type"] != "default":
            rp["rope_type"] = "deepseek_yarn"
        cache = (cache_rows(rp, max_pos, release), rot, 0)
        if (family in ("deepseek_v32", "glm_moe_dsa") and any(l.index_token_bytes for l in spec.layers_kv)
                and not f.get("indexer_rope_interleave", False)):
            # the DSA indexer's own get_rope is NeoX-style unless indexer_rope_interleave: a second
            # module (get_rope memoises on is_neox_style) -- vllm deepseek_v2.py DeepseekV2MLAAttention
            return (cache, cache)
        return (cache,)
    if family == "gpt_oss":
        rp = dict(params.get("", next(iter(params.values()))), rope_type="yarn")
        return ((cache_rows(rp, max_pos, release), rot, 4),)   # get_rope(..., dtype=torch.float32)
    if set(params) != {""}:
        # per layer type (transformers 5 nesting): the layer types the model actually has
        used = f.get("layer_types")
        kinds = [k for k in params if not isinstance(used, (list, tuple)) or k in used] or list(params)
        sets = [params[k] for k in kinds]
    elif family == "gemma3_text" and _num(f.get("rope_local_base_freq")):
        # transformers 4 layout: global layers use the config's rope, sliding ones the local base
        sets = [params[""], {"rope_type": "default", "rope_theta": f.get("rope_local_base_freq")}]
    else:
        sets = [params[""]]
    seen: dict[tuple, tuple] = {}
    mode = getattr(spec, "rope_length_mode", "")
    positions = 1 if release >= MROPE_POSITIONS_FROM and family in MROPE_POSITIONS_1 else MROPE_CACHE_FACTOR
    for rp in sets:
        seen.setdefault(_param_key(rp), cache_entry(rp, max_pos, rot, 0, mode, release, positions))
    return tuple(seen.values())


def apply(spec: ModelSpec, text: Fields) -> None:
    """Fill ``spec.max_model_len_limit``, ``spec.max_model_len_default`` and ``spec.rope_caches`` from the (text)
    config with the oldest releases' rules, and ``spec.from_release`` with the values that differ from a
    ``RULE_CHANGES`` release on (module doc "Per release"; ``estimate/served.release_values`` picks a job's).

    A family that has already set ``rope_caches`` (its own caches: gemma4, ...; ``()`` = no rotary module at
    all: nemotron_h, jamba, granitemoehybrid with ``position_embedding_type`` nope) keeps it, for every release."""
    own = spec.rope_caches is not None  # an adapter that works out its own caches (gemma4) or has none (nope)
    releases = (FIRST_RELEASE,) + RULE_CHANGES
    values = {"max_model_len_limit": [derived_max_model_len(text, r) for r in releases],
              "max_model_len_default": [default_max_model_len(text, r) for r in releases]}
    if not own:
        values["rope_caches"] = [rope_caches(text, spec, r) for r in releases]
    for name, per_release in values.items():
        setattr(spec, name, per_release[0])
    spec.from_release = tuple(spec.from_release) + tuple(
        (r, name, per_release[i]) for name, per_release in values.items()
        for i, r in enumerate(releases) if i and per_release[i] != per_release[i - 1])
