"""Step-3.7-Flash (``step3p7``): the Step-3.5 language model behind a PerceptionEncoder vision tower.

Follows vLLM (read through the search index; the repository is too big to fetch):

* ``vllm/model_executor/models/step3p7.py`` @22c552fa74819bee9b18f938ef5f5706ad430ec7 --
  ``Step3p7ForConditionalGeneration``: ``PerceptionEncoder(config.vision_config, quant_config=...)``,
  ``vit_large_projector = ColumnParallelLinear(vision width * 4, text hidden, bias=projector_bias,
  gather_output=True)`` and the language model ``init_vllm_registered_model(hf_config=config.text_config)``
  (``Step3p5ForCausalLM``);
* ``vllm/model_executor/models/step3p5.py`` @01b50b9e8fbe085cdba0ace33dfb6e862ab9b627 -- the language model;
* ``vllm/model_executor/models/step_vl.py`` @055e47c28003156421365af985d676fc921cb075 -- ``PerceptionEncoder``;
* vLLM's ``Step3p5Config`` (``vllm/transformers_utils/configs/step3p5.py``): the defaults of the text fields
  vLLM reads when a config omits them (``_VLLM_TEXT_DEFAULTS``).

vLLM reads the checkpoint's remote-code field names; transformers 5.24's native ``Step3p7Config`` (the meta-device
oracle) renames or consumes several of them.  A config is priced only where both build the same tensors, field by
field; else it is refused naming the field (``_refuse``):

=========================================  =========================================  =====================
vLLM (``Step3p5DecoderLayer`` / ...)        transformers 5.24                          must agree on
=========================================  =========================================  =====================
``num_attention_groups``                   ``num_key_value_heads`` (alias)            K/V heads
``moe_num_experts`` / ``moe_top_k``         ``n_routed_experts`` / ``num_experts_per_tok``  experts
``moe_layers_enum`` (string; absent:        ``mlp_layer_types`` (from ``moe_layers_enum``;  MoE layers
  layers 1..n-1)                              absent: layers 3..n-1)
``attention_other_setting`` on layers of    ``num_sliding_attention_heads`` on          sliding-layer heads
  its ``attention_type``                      ``sliding_attention`` layers
``use_head_wise_attn_gate`` (default off)   ``g_proj`` (hidden -> heads) always         true
``share_expert_dim`` (default moe_inter*k)  ``share_expert_dim``                        shared expert width
vision ``width`` / ``layers`` / ``heads``   ``hidden_size`` / ``num_hidden_layers`` /  tower dims
                                              ``num_attention_heads``
vision ``use_ln_pre``, ``use_abs_posemb``   pre-LayerNorm, learned positions, layer    true
  ``use_rope2d``, ``ls_init_value``           scale always
vision ``use_ln_post``, ``use_cls_token``   neither                                     false
=========================================  =========================================  =====================

Tensors and shards (vLLM): ``qkv_proj = QKVParallelLinear`` -> q COLUMN, k / v KV; ``o_proj`` ROW; per-head
``q_norm`` / ``k_norm`` GemmaRMSNorm(head_dim) replicated; ``g_proj = ColumnParallelLinear(hidden, heads)``
COLUMN; sliding layers take ``attention_other_setting.num_attention_heads`` query heads.  Dense layers
``Step3p5MLP`` (MergedColumn gate_up / Row down, ``intermediate_size``); MoE layers ``FusedMoEBlock``: ``gate =
FP32ReplicatedLinear(hidden, E)`` (float32: ``Tensor.dtype_bytes`` 4), ``router_bias`` float32 ``(E,)`` (a buffer in
transformers: ``allocated_only``), FusedMoE experts, ``share_expert`` Step3p5MLP of ``share_expert_dim``; vLLM raises
for ``tp > moe_num_experts`` (``spec.max_tp``).  ``lm_head`` is always its own ParallelLMHead (a tied config is
refused).  Tower (``mm_encoder_tp_mode="weights"``): conv1 (no bias), ``ln_pre``, learned ``positional_embedding``
replicated; per block ``qkv_proj`` (QKVParallelLinear, K/V heads = heads: all COLUMN), ``out_proj`` ROW, ``fc1``
COLUMN / ``fc2`` ROW with biases, ``ln_1`` / ``ln_2``, layer scales ``ls_1`` / ``ls_2``; the two stride-2
``vit_downsampler`` convolutions replicated.  The tower is built with ``quant_config``.  In vLLM's
``mm_encoder_tp_mode="data"`` the tower and projector are replicated instead (``disable_tp``; not modelled).

KV cache: ``Attention(num_kv_heads, head_dim, per_layer_sliding_window=...)``: layers whose ``layer_types`` entry is
``sliding_attention`` keep a ``sliding_window`` window (SlidingWindowSpec), the rest full; every layer has
``num_attention_groups`` K/V heads.  The decoder layer sets ``cache_config.sliding_window = None``, so no model-wide
window applies.

MTP: ``num_nextn_predict_layers`` layers are skipped by the main model's loader
(``get_spec_layer_idx_from_weight_name``) and not built by transformers' model either; they are not priced.  Their
size (``spec.mtp_params``, reported) follows ``vllm/model_executor/models/step3p5_mtp.py`` @12c9ac28: one shared
``embed_tokens``, then per layer ``enorm`` / ``hnorm`` / ``eh_proj`` (2 hidden -> hidden) / ``shared_head`` (norm +
ParallelLMHead) and a Step3p5DecoderLayer at index ``num_hidden_layers + j`` (its ``layer_types`` entry and
``moe_layers_enum`` membership); sized only when ``layer_types`` has those trailing entries.

Rotary caches (``_rope`` / ``_scaling``; read in the release sdists /work/vllm_src/vllm-X.Y.Z, where
``step3p5.py`` first appears in 0.15.1 and ``step3p7.py`` in 0.23.0): ``vllm/model_executor/models/step3p5.py``
(0.23.0 ``Step3p5Attention`` lines 163-164 / 174-175 / 213-226, ``Step3p5DecoderLayer`` line 452; 0.34.0
``_get_rope_parameters`` lines 86-109, ``Step3p5DecoderLayer`` line 442), vLLM's ``Step3p5Config``
(``vllm/transformers_utils/configs/step3p5.py``, 0.15.1 .. 0.32.0: ``rope_theta`` / ``rope_scaling`` /
``yarn_only_types`` / ``max_position_embeddings`` stored as given; gone in 0.33.0, where
``transformers_utils/config.py`` registers transformers' ``Step3p7TextConfig`` for ``step3p5``),
``rotary_embedding/__init__.py`` ``get_rope`` and its classes.  Every layer builds ``get_rope(head_dim,
max_position=config.max_position_embeddings, rope_parameters)`` with its own ``rope_theta`` (per-layer list) and
``partial_rotary_factor``; ``rope_scaling`` joins the parameters on the layers whose ``layer_types`` entry is in
``yarn_only_types`` (every layer without the list) -- the same in every release 0.23-0.34 (0.34.0 takes a
per-layer-type ``rope_parameters`` first, which transformers' ``Step3p7TextConfig`` builds with the scaling on
``full_attention`` only).  ``get_rope`` memoises on the parameters, so one cos/sin buffer per distinct set
(``rope_caches``, counted in "Model loading took"); rows ``max_position_embeddings`` (default, llama3 -- the type
Step checkpoints state -- and dynamic), x factor (linear), ``original_max_position_embeddings x factor`` (yarn);
the longest ``--max-model-len`` is ``rope.derived_max_model_len`` (llama3: ``max_position_embeddings``, no
factor).  The rope never changes a parameter (the meta-device count stays exact) nor the KV cache.

Refused with a concrete reason: a flat config without ``text_config`` (transformers' ``Step3p7Config`` ignores
top-level text fields and builds its default language model, e.g. vocab 128,815 where the shipped flat config says
128,896; vLLM's ``Step3p7ForConditionalGeneration`` reads ``config.text_config``) -- for the shipped flat file
(``Step3p7FlashForCausalLM``, a name no vLLM release lists) the per-release view gives vLLM's own error first
(estimate/served.py ``NEVER_LISTED``; tests/test_step3p7_load.py); a ``rope_scaling`` that the
vLLM releases serve differently: ``yarn_only_types`` selecting other layers than the ``full_attention`` ones
(vLLM's step3p5.py scaling vs transformers' ``Step3p7TextConfig``, which vLLM 0.33 on uses), a legacy ``type``
key (transformers leaves the layers ``default``), a ``type`` / ``rope_type`` conflict (vLLM's
``patch_legacy_rope_type`` raises); a rope type outside default / linear / dynamic / yarn / llama3 (not checked
here).  A yarn config whose length is not ``original_max_position_embeddings x factor`` is priced: vLLM up to 0.29
caps ``max_model_len`` at the latter, 0.30 on at the former, and ``rope.apply`` lists both (``ModelSpec.from_release``,
resolved per job release -- rope.py "Per release").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families import multimodal, vision
from reportgen.arch.families.common import Geometry, decoder_stack, gqa_attention
from reportgen.arch.families.mla_moe import mtp_extras
from reportgen.arch.fields import Fields
from reportgen.arch.rope import _param_key as rope_param_key, cache_rows
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

V = C.VISION
# vLLM Step3p5Config defaults for the text fields step3p5.py reads (a field the config omits gets these)
_VLLM_TEXT_DEFAULTS: dict[str, Any] = {
    "hidden_size": 5120, "intermediate_size": 13312, "num_attention_heads": 40, "num_attention_groups": 8,
    "num_hidden_layers": 48, "vocab_size": 65536, "moe_intermediate_size": 10240, "moe_num_experts": 16,
    "moe_top_k": 4, "head_dim": None, "share_expert_dim": None, "use_head_wise_attn_gate": False,
    "att_impl_type": "GQA", "use_moe_router_bias": True, "need_fp32_gate": True,
}
# (vLLM text field, transformers attribute)
_TEXT_DIMS = (("hidden_size", "hidden_size"), ("intermediate_size", "intermediate_size"),
              ("num_attention_heads", "num_attention_heads"), ("num_attention_groups", "num_key_value_heads"),
              ("num_hidden_layers", "num_hidden_layers"), ("vocab_size", "vocab_size"),
              ("moe_intermediate_size", "moe_intermediate_size"), ("moe_num_experts", "n_routed_experts"),
              ("moe_top_k", "num_experts_per_tok"))
# (vLLM PerceptionEncoder field, transformers attribute); vLLM reads these with plain attribute access
_VISION_DIMS = (("width", "hidden_size"), ("layers", "num_hidden_layers"), ("heads", "num_attention_heads"),
                ("patch_size", "patch_size"), ("image_size", "image_size"), ("mlp_ratio", "mlp_ratio"))
# PerceptionEncoder switches and the value transformers' Step3p7VisionModel is built with
_VISION_FLAGS = {"use_ln_pre": True, "use_ln_post": False, "use_abs_posemb": True, "use_cls_token": False,
                 "use_rope2d": True}


def _refuse(field: str, why: str) -> Unsupported:
    return Unsupported(f"step3p7: {field} {why}; vLLM (step3p7.py / step3p5.py / step_vl.py) and transformers "
                       "would build different models; not modelled")


def prepare(config: dict) -> dict:
    """Before parsing: the nested form vLLM's ``Step3p7ForConditionalGeneration`` reads; returns ``text_config``."""
    if not isinstance(config.get("text_config"), Mapping):
        raise Unsupported("step3p7 without text_config: transformers 5.24's Step3p7Config ignores top-level text "
                          "fields and builds its default language model (vocab_size 128815, 45 full-attention "
                          "layers) while vLLM's Step3p7ForConditionalGeneration (step3p7.py @22c552fa) reads "
                          "config.text_config, and no vLLM registry entry serves the flat "
                          f"{(config.get('architectures') or ['?'])[0]!r} form; not modelled")
    if not isinstance(config.get("vision_config"), Mapping):
        raise _refuse("vision_config", "is missing (vLLM's PerceptionEncoder reads its width / layers / heads)")
    # hub configs pad layer_types with one entry per MTP layer (transformers splits them off as mtp_layer_types)
    text = config["text_config"]
    lt, n, m = text.get("layer_types"), text.get("num_hidden_layers"), text.get("num_nextn_predict_layers")
    view = config
    if isinstance(lt, list) and isinstance(n, int) and isinstance(m, int) and m > 0 and len(lt) == n + m:
        view = dict(config, text_config=dict(text, layer_types=lt[:n]))
    multimodal.check_subconfigs(view)
    return text


def _global(obj: Any, name: str) -> Any:
    """A text-config attribute's model-wide value: transformers raises on reading ``num_attention_heads`` once the
    sliding layers' ``per_layer_config`` differs (the value stays on the instance)."""
    values = vars(obj)
    return values[name] if name in values else getattr(obj, name)


def _vllm_text(raw: Mapping, name: str) -> Any:
    v = raw.get(name)
    return _VLLM_TEXT_DEFAULTS.get(name) if v is None else v


def _moe_layers(text: Fields, n_layers: int, n_total: int) -> list[bool]:
    """vLLM's MoE layers (``moe_layers_enum`` string, else 1..n-1) against transformers' ``mlp_layer_types``; one
    flag per layer of ``n_total`` (the decoder layers, then the MTP layers vLLM's Step3p5MTP builds)."""
    enum = text.raw.get("moe_layers_enum")
    if enum is None:
        vllm = set(range(1, n_layers))
    elif isinstance(enum, str):
        try:
            vllm = {int(x) for x in enum.strip().split(",")}
        except ValueError:
            raise text.err("moe_layers_enum", f"is not a comma-separated list of layer indices: {enum!r}") from None
    else:
        raise _refuse("text_config.moe_layers_enum", f"is a {type(enum).__name__} (vLLM calls .strip().split(','))")
    hf = text.str_list("mlp_layer_types") or []
    if len(hf) != n_layers:
        raise text.err("mlp_layer_types", f"has {len(hf)} entries for {n_layers} layers")
    moe = [i in vllm for i in range(n_total)]
    if moe[:n_layers] != [t == "sparse" for t in hf]:
        raise _refuse("text_config.moe_layers_enum", "and transformers' mlp_layer_types place the MoE layers "
                      "differently (vLLM without moe_layers_enum: every layer but the first)")
    if not any(moe[:n_layers]):
        raise _refuse("text_config.moe_layers_enum", "gives no MoE layer (vLLM asserts at least one)")
    return moe


def _sliding_heads(text: Fields, types: list[str], heads: int, kv: int, hd: int) -> int:
    """Query heads of the sliding layers: vLLM's ``attention_other_setting`` vs ``num_sliding_attention_heads``."""
    other = text.raw.get("attention_other_setting")
    hf = text.obj.num_sliding_attention_heads
    if other is None:
        vllm = heads
    else:
        if not isinstance(other, Mapping):
            raise text.err("attention_other_setting", f"must be an object, got {other!r}")
        if "sliding_attention" in types and other.get("attention_type") != "sliding_attention":
            raise _refuse("text_config.attention_other_setting.attention_type",
                          f"{other.get('attention_type')!r} is not 'sliding_attention'")
        for key, want in (("num_attention_groups", kv), ("head_dim", hd)):
            if other.get(key) != want:
                raise _refuse(f"text_config.attention_other_setting.{key}", f"{other.get(key)!r} differs from "
                              f"the {want} transformers gives every layer")
        vllm = other.get("num_attention_heads")
    if vllm != hf:
        raise _refuse("text_config.attention_other_setting", f"gives sliding layers {vllm!r} query heads, "
                      f"transformers {hf}")
    if not isinstance(hf, int) or hf < 1 or hf % kv:
        raise text.err("num_sliding_attention_heads", f"{hf!r} is not a positive multiple of the {kv} K/V heads")
    return hf


def _text(text: Fields, spec: ModelSpec) -> tuple[int, int]:
    """The Step-3.5 language model; returns (hidden, vocab)."""
    raw, obj = text.raw, text.obj
    archs = raw.get("architectures")
    if archs and list(archs) != ["Step3p5ForCausalLM"]:
        # step3p7.py: init_vllm_registered_model(hf_config=config.text_config) resolves the text config's architectures
        raise _refuse("text_config.architectures", f"{archs!r} is not ['Step3p5ForCausalLM'] (vLLM would build that "
                      "class as the language model)")
    for vname, hname in _TEXT_DIMS:
        v, h = _vllm_text(raw, vname), _global(obj, hname)
        if v != h:
            raise _refuse(f"text_config.{vname}", f"{v!r} (vLLM's reading) differs from transformers' {hname}={h!r}")
    for name, want in (("att_impl_type", "GQA"), ("use_moe_router_bias", True), ("need_fp32_gate", True),
                       ("use_head_wise_attn_gate", True)):
        if _vllm_text(raw, name) != want:
            raise _refuse(f"text_config.{name}", f"is {_vllm_text(raw, name)!r}, not {want!r} (transformers "
                          "always builds the per-head g_proj and a sigmoid router with a correction bias)"
                          if name == "use_head_wise_attn_gate" else f"is {_vllm_text(raw, name)!r}, not {want!r}")
    if obj.tie_word_embeddings:
        raise _refuse("text_config.tie_word_embeddings", "is true (vLLM's Step3p5ForCausalLM never ties lm_head)")
    if obj.mlp_bias:
        raise _refuse("text_config.mlp_bias", "is true (vLLM's Step3p5MLP has no biases)")
    if obj.gating is not True and obj.gating != "per-head":
        raise _refuse("text_config.gating", f"{obj.gating!r} is not per-head")
    if raw.get("max_position_embeddings") is None:
        raise _refuse("text_config.max_position_embeddings", "is missing (vLLM's Step3p5Config default is None, "
                      f"transformers' {obj.max_position_embeddings})")
    hidden, n_layers, heads = obj.hidden_size, obj.num_hidden_layers, _global(obj, "num_attention_heads")
    kv, vocab = obj.num_key_value_heads, obj.vocab_size
    hd = _vllm_text(raw, "head_dim") or hidden // heads
    if hd != obj.head_dim:
        raise _refuse("text_config.head_dim", f"vLLM {hd} vs transformers {obj.head_dim}")
    if heads % kv:
        raise text.err("num_key_value_heads", f"{kv} does not divide num_attention_heads {heads}")
    inter, moe_inter, n_exp = obj.intermediate_size, obj.moe_intermediate_size, obj.n_routed_experts
    shared_v = _vllm_text(raw, "share_expert_dim") or moe_inter * obj.num_experts_per_tok
    if shared_v != obj.share_expert_dim:
        raise _refuse("text_config.share_expert_dim", f"vLLM {shared_v} vs transformers {obj.share_expert_dim}")
    shared = obj.share_expert_dim
    types = list(obj.layer_types)
    raw_types = raw.get("layer_types")
    if not isinstance(raw_types, list) or list(raw_types[:n_layers]) != types:
        raise _refuse("text_config.layer_types", "is not stated for every layer (vLLM then makes every even layer "
                      "sliding, transformers none)")
    swa_heads = _sliding_heads(text, types, heads, kv, hd)
    n_mtp = raw.get("num_nextn_predict_layers") or 0
    moe = _moe_layers(text, n_layers, n_layers + n_mtp)
    window = obj.sliding_window
    if window is not None and (not isinstance(window, int) or isinstance(window, bool) or window < 1):
        raise text.err("sliding_window", f"must be a positive integer, got {window!r}")
    k = obj.num_experts_per_tok
    if k > n_exp:
        raise text.err("num_experts_per_tok", f"{k} exceeds the {n_exp} routed experts")

    g = Geometry(hidden, n_layers, heads, kv, hd, vocab, False)
    attn = {False: gqa_attention(g, qkv_bias=obj.attention_bias, o_bias=obj.attention_bias, qk_norm="head"),
            True: gqa_attention(replace(g, n_heads=swa_heads), qkv_bias=obj.attention_bias,
                                o_bias=obj.attention_bias, qk_norm="head")}

    # the decoder layers' types, then those of the MTP layers (vLLM indexes layer_types past num_hidden_layers)
    types_ext = types + [str(t) for t in raw_types[n_layers:n_layers + n_mtp]]

    def attention(ts: list[Tensor], i: int, p: str) -> None:
        sliding = types_ext[i] == "sliding_attention"
        attn[sliding](ts, i, p)
        B.linear(ts, f"{p}.self_attn.g_proj", hidden, swa_heads if sliding else heads, S.COLUMN, C.ATTENTION, i)

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if not moe[i]:
            B.gated_mlp(ts, i, f"{p}.mlp", hidden, inter, C.DENSE_MLP)
            return
        ts.append(Tensor(f"{p}.mlp.gate.weight", (n_exp, hidden), S.REPLICATED, C.ROUTER, i,
                         quantizable=False, dtype_bytes=4))
        ts.append(Tensor(f"{p}.mlp.gate.e_score_correction_bias", (n_exp,), S.REPLICATED, C.ROUTER, i,
                         quantizable=False, allocated_only=True, dtype_bytes=4))
        B.experts(ts, i, f"{p}.mlp.experts", hidden, moe_inter, n_exp)
        B.gated_mlp(ts, i, f"{p}.mlp.shared_experts", hidden, shared, C.SHARED_EXPERTS)

    decoder_stack(spec, text, g, attention=attention, mlp=mlp, tied=False, layers_kv=[
        LayerKV(AttentionKind.SLIDING, kv, hd, hd, window=window) if t == "sliding_attention" and window
        else LayerKV(AttentionKind.FULL, kv, hd, hd) for t in types])
    spec.num_experts, spec.experts_per_token, spec.num_shared_experts = n_exp, k, 1
    spec.max_tp = n_exp
    if n_mtp and len(types_ext) == n_layers + n_mtp:
        # step3p5_mtp.py Step3p5AMultiTokenPredictor: one embed_tokens, then per MTP layer enorm / hnorm /
        # eh_proj / shared_head (norm + head) and a Step3p5DecoderLayer at index n + j (layer_types[n + j])
        mtp: list[Tensor] = []
        for j in range(n_layers, n_layers + n_mtp):
            B.norm(mtp, f"mtp.{j}.input_layernorm", hidden, j)
            attention(mtp, j, f"mtp.{j}")
            B.norm(mtp, f"mtp.{j}.post_attention_layernorm", hidden, j)
            mlp(mtp, j, f"mtp.{j}")
        spec.mtp_params = (n_mtp * mtp_extras(hidden, vocab) - (n_mtp - 1) * vocab * hidden
                           + sum(t.numel for t in mtp))
    elif n_mtp:
        spec.notes.append(f"{n_mtp} MTP layers not sized: layer_types has no entries for them (vLLM's "
                          "Step3p5MTP indexes layer_types[layer_idx])")
    if swa_heads != heads and any(t == "sliding_attention" for t in types):
        spec.notes.append(f"sliding layers have {swa_heads} query heads, full layers {heads}; vLLM asserts tp "
                          "divides both")
    _rope(text, spec, types, hd)
    return hidden, vocab


# rope types whose get_rope module and cache rows are the same in every vLLM release serving step3p7 (0.23.0 ..
# 0.34.0 sdists, vllm/model_executor/layers/rotary_embedding/__init__.py get_rope): RotaryEmbedding (default),
# LinearScalingRotaryEmbedding, DynamicNTKScalingRotaryEmbedding / DynamicNTKAlphaRotaryEmbedding,
# YaRNScalingRotaryEmbedding, Llama3RotaryEmbedding -- with the keys get_rope indexes for each
_SCALING_KEYS = {"default": (), "linear": ("factor",), "dynamic": (), "yarn": ("factor",
                 "original_max_position_embeddings"), "llama3": ("factor", "low_freq_factor", "high_freq_factor",
                                                             "original_max_position_embeddings")}


def _scaling(text: Fields, types: list[str]) -> tuple[dict | None, list[bool]]:
    """``rope_scaling`` as vLLM's ``Step3p5Attention`` hands it to ``get_rope``, and which layers get it.

    vLLM (step3p5.py, 0.23.0 sdist lines 163-164 and 213-221; 0.34.0 ``_get_rope_parameters`` lines 95-109, the
    remote-code branch): ``rope_scaling = None`` on a layer whose ``layer_types`` entry is not in
    ``yarn_only_types`` (every layer keeps it when ``yarn_only_types`` is absent or empty); the layer's parameters
    are then ``dict(rope_scaling)`` with ``rope_type`` defaulted to "default" and its own ``rope_theta`` /
    ``partial_rotary_factor``.  transformers' ``Step3p7TextConfig`` (which vLLM 0.33.0 / 0.34.0 register for
    ``step3p5``, ``transformers_utils/config.py`` line 171 of 0.34.0; 0.34.0 step3p5.py lines 89-93 take its
    per-layer-type ``rope_parameters`` first) merges ``rope_scaling`` into the ``full_attention`` layers only.
    Priced where the two pick the same layers, else refused."""
    rs = text.raw.get("rope_scaling")
    n = len(types)
    if rs is None:
        return None, [False] * n
    if not isinstance(rs, Mapping):
        # step3p5.py 0.23.0 line 214: raise ValueError("rope_scaling must be a dict for Step3p5Attention.")
        raise text.err("rope_scaling", f"must be an object (vLLM's Step3p5Attention raises otherwise), got {rs!r}")
    rp = dict(rs)
    if rp.get("rope_type") is None and rp.get("type") is not None:
        raise Unsupported(f"step3p7: text_config.rope_scaling names its type with the legacy 'type' key "
                          f"({rp['type']!r}): transformers' Step3p7TextConfig merges rope_scaling over "
                          "{'rope_type': 'default'}, so its full_attention layers (and vLLM 0.33 on, which "
                          "registers that class for step3p5) stay 'default' while vLLM's remote-code path "
                          "renames 'type' to rope_type (patch_rope_parameters); not modelled")
    kind = rp.get("rope_type") or "default"
    if rp.get("type") is not None and rp["type"] != kind:
        # vllm 0.31.0 sdist, transformers_utils/config.py lines 605-617 (patch_legacy_rope_type)
        raise Unsupported(f"step3p7: text_config.rope_scaling has rope_type {kind!r} and type {rp['type']!r}: "
                          "vLLM refuses the config (patch_legacy_rope_type: \"Found conflicts between "
                          "'rope_type=...' (modern field) and 'type=...' (legacy field)\")")
    rp["rope_type"] = kind
    if kind not in _SCALING_KEYS:
        raise Unsupported(f"step3p7: text_config.rope_scaling rope_type {kind!r} is not priced: of the types "
                          "vLLM's get_rope builds, only default / linear / dynamic / yarn / llama3 are checked for "
                          "step3p7 (same module and cache rows in every release 0.23-0.34); not modelled")
    for key in _SCALING_KEYS[kind] + (("factor",) if kind == "dynamic" and "alpha" not in rp else ()):
        v = rp.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise text.err("rope_scaling", f"rope_type {kind!r} needs a positive number {key!r} (vLLM's get_rope "
                           f"reads rope_parameters[{key!r}]), got {v!r}")
    only = text.raw.get("yarn_only_types")
    if only is not None and not (isinstance(only, list) and all(isinstance(t, str) for t in only)):
        raise text.err("yarn_only_types", f"must be a list of layer types, got {only!r}")
    vllm = [not only or t in only for t in types]
    hf = [t == "full_attention" for t in types]
    if vllm != hf:
        raise Unsupported(f"step3p7: text_config.rope_scaling reaches {sum(vllm)} of {n} layers in vLLM "
                          f"(yarn_only_types {only!r}: step3p5.py keeps rope_scaling on the layers whose "
                          "layer_types entry is listed, on every layer when the list is absent) but the "
                          f"{sum(hf)} full_attention layers in transformers' Step3p7TextConfig, which vLLM 0.33 "
                          "on registers for step3p5: the rotary caches depend on the vLLM release; not modelled")
    return rp, vllm


def _rope(text: Fields, spec: ModelSpec, types: list[str], hd: int) -> None:
    """One ``get_rope`` cache per distinct parameter set over the layers (``get_rope`` memoises on them:
    ``rotary_embedding/__init__.py`` ``_ROPE_DICT``, 0.34.0 lines 74-85): the layer's ``rope_theta`` (per-layer
    list) and ``partial_rotary_factor``, plus ``rope_scaling`` on the layers it reaches (``_scaling``).  Rows:
    ``rope.cache_rows`` at ``max_position = config.max_position_embeddings`` (Step3p5DecoderLayer, 0.23.0
    line 452, 0.34.0 line 442); default / llama3 / dynamic: ``max_position_embeddings``; linear: x factor;
    yarn: ``original_max_position_embeddings x factor``."""
    raw, n = text.raw, len(types)
    theta = raw.get("rope_theta", 10000.0)
    thetas = theta[:n] if isinstance(theta, list) else [theta] * n
    factors = raw.get("partial_rotary_factors") or [1.0] * n
    if len(thetas) < n or len(factors) < n:
        raise text.err("rope_theta", f"per-layer lists need {n} entries")
    for x in factors[:n]:
        if x not in (1, 0.5):
            raise _refuse("text_config.partial_rotary_factors", f"entry {x!r} (vLLM asserts 1 or 0.5)")
    scaling, scaled = _scaling(text, types)
    rows = spec.max_position_embeddings
    spec.rotary_dim = int(hd * factors[0])
    if not rows:
        spec.rope_caches = ()
        return
    caches: dict[str, tuple] = {}
    for t, x, s in sorted(zip(thetas[:n], factors[:n], scaled), key=lambda k: (float(k[0]), float(k[1]), k[2])):
        rp = dict(scaling) if s else {"rope_type": "default"}
        rp.update(rope_theta=t, partial_rotary_factor=x)
        # DynamicNTKScalingRotaryEmbedding: max_position rows from vLLM 0.22 on (0.23.0 sdist,
        # dynamic_ntk_scaling_rope.py line 67), where rope.cache_rows counts the x factor of 0.21 and before
        n_rows = rows if rp["rope_type"] == "dynamic" else cache_rows(rp, rows)
        caches.setdefault(rope_param_key(rp), (n_rows, int(hd * x), 0))
    spec.rope_caches = tuple(caches.values())


def _tower(vis: Fields, ts: list[Tensor]) -> int:
    """The PerceptionEncoder; returns its width."""
    raw, obj = vis.raw, vis.obj
    for vname, hname in _VISION_DIMS:
        v, h = raw.get(vname), getattr(obj, hname)
        if v is None:
            raise _refuse(f"vision_config.{vname}", "is missing (vLLM's PerceptionEncoder reads it)")
        if v != h:
            raise _refuse(f"vision_config.{vname}", f"{v!r} (vLLM) differs from transformers' {hname}={h!r}")
    for key, want in _VISION_FLAGS.items():
        if raw.get(key) is not want:
            raise _refuse(f"vision_config.{key}", f"is {raw.get(key)!r}; transformers builds the tower with "
                          f"{key}={want}")
    ls = raw.get("ls_init_value")
    if ls is None or ls != obj.layer_scale_init_value:
        raise _refuse("vision_config.ls_init_value", f"{ls!r}: vLLM builds layer scales only when it is set, "
                      "transformers always")
    if obj.num_channels != 3:
        raise _refuse("vision_config.num_channels", f"{obj.num_channels} (vLLM's conv1 takes 3 channels)")
    h, inter, n_layers, ch, patch, image = vision.tower_dims(vis)
    if inter != int(h * obj.mlp_ratio):
        raise vis.err("mlp_ratio", "does not give transformers' intermediate_size")
    p = "model.vision_model"
    ts.append(Tensor(f"{p}.embeddings.patch_embedding.weight", (h, ch, patch, patch), S.REPLICATED, V, None))
    ts.append(Tensor(f"{p}.embeddings.position_embedding.weight", ((image // patch) ** 2, h), S.REPLICATED, V, None))
    B.norm(ts, f"{p}.pre_layernorm", h, None, comp=V, bias=True)
    for i in range(n_layers):
        q = f"{p}.layers.{i}"
        vision.encoder_layer(ts, q, h, inter, norms=("layernorm_before", "layernorm_after"))
        ts.append(Tensor(f"{q}.lambda_1", (h,), S.REPLICATED, V, None))
        ts.append(Tensor(f"{q}.lambda_2", (h,), S.REPLICATED, V, None))
    for name, c_in, c_out in (("downsampler1", h, 2 * h), ("downsampler2", 2 * h, 4 * h)):
        ts.append(Tensor(f"{p}.{name}.weight", (c_out, c_in, 3, 3), S.REPLICATED, V, None))
        ts.append(Tensor(f"{p}.{name}.bias", (c_out,), S.REPLICATED, V, None))
    return h


def build(f: Fields, spec: ModelSpec) -> None:
    text = Fields(f.obj.text_config, f.raw["text_config"], "text_config.")
    vis = Fields(f.obj.vision_config, f.raw["vision_config"], "vision_config.")
    if f.raw.get("tie_word_embeddings"):
        raise _refuse("tie_word_embeddings", "is true (vLLM never ties lm_head)")
    h_t, _ = _text(text, spec)
    h_v = _tower(vis, spec.tensors)
    bias = f.raw.get("projector_bias", False)
    if not isinstance(bias, bool):
        raise ConfigError("projector_bias", f"must be a boolean, got {bias!r}")
    B.linear(spec.tensors, "model.multi_modal_projector", 4 * h_v, h_t, S.COLUMN, V, None, bias=bias)
    spec.multimodal = True
