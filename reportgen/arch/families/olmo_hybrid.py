"""olmo_hybrid (AI2 OLMo-Hybrid): Gated DeltaNet layers and OLMo-3 attention layers.

Follows vLLM ``vllm/model_executor/models/olmo_hybrid.py`` (read at commit
055e47c28003156421365af985d676fc921cb075; registry entry ``OlmoHybridForCausalLM`` at the same commit),
its mixer ``vllm/model_executor/layers/mamba/gdn/olmo_gdn_linear_attn.py`` (commit
0290a15b5afc1726f1cc2d36f2179a753d5c92ec) and transformers 5.24 ``modeling_olmo_hybrid.py`` for the counts.

Each decoder layer is chosen by ``layer_types[i]`` (both codes: ``linear_attention`` -> GDN layer,
anything else -> attention layer; this module accepts only the two names):

* ``linear_attention``: pre-norm (``input_layernorm``, ``post_attention_layernorm``), a Gated DeltaNet
  (arch/gdn.py, ``olmo=True``: ``q/k/v/g_proj`` -> vLLM's MergedColumn ``in_proj_qkvg``; ``a_proj`` /
  ``b_proj`` ColumnParallel; ``conv1d`` ``(2Kd + Vd, 1, k)`` ColumnParallel without bias; ``A_log`` /
  ``dt_bias`` split by value heads; gated ``o_norm`` over one value head, replicated; ``o_proj`` Row),
  then the SwiGLU MLP.  State: ``StateGeometry("gdn")`` -- vLLM's
  ``MambaStateShapeCalculator.gated_delta_net_state_shape(tp, nk, nv, hk, hv, kernel, num_spec)``, the
  same call as Qwen3-Next; dtypes from ``gated_delta_net_state_dtype(model dtype, mamba_cache_dtype,
  mamba_ssm_cache_dtype)``: the model dtype for both under ``auto`` (the config has no ``mamba_ssm_dtype``).
* ``full_attention``: OLMo-3's post-norm layer (no input norm; ``post_attention_layernorm``,
  ``post_feedforward_layernorm``), q/k/v/o without bias and whole-projection ``q_norm`` (hidden) /
  ``k_norm`` (kv_heads * head_dim), replicated (vLLM all-gathers q and k before them) -- the shapes of
  ``olmo.attention``.  vLLM takes ``head_dim = hidden_size // num_attention_heads`` and asserts
  ``hidden_size % num_attention_heads == 0``; transformers honours a config ``head_dim``: configs where the
  two differ are refused, as are ``attention_bias`` (vLLM has none), ``sliding_window`` (vLLM would apply
  it through the cache config; transformers' layer has none) and ``linear_use_gate: false`` (vLLM asserts).

RoPE: vLLM parses the config with its OWN ``OlmoHybridConfig`` (``transformers_utils/configs/olmo_hybrid.py``
@05a44e18, registered for ``olmo_hybrid``), which keeps ``rope_parameters`` as given -- same defaults as
transformers' class otherwise -- and builds a rotary module only when ``rope_parameters["rope_theta"]``
is set.  transformers 5.24's class always fills ``rope_theta`` (10000; only a buffer, no parameters), so the
rotary cache follows the raw config: a ``rope_parameters`` with a ``rope_theta`` (or a legacy top-level
``rope_theta``) -> rope.py's cache; absent / null (the released OLMo-Hybrid-7B, NoPE) -> no cache.  Its
later form ``{"rope_type": null}`` is taken as NoPE too: the commit read indexes ``rope_theta`` directly
(a KeyError there); a release note found by search names the fix (#43846) without the code being read.  The
lm_head is tied when ``tie_word_embeddings`` (both codes).  GDN heads split by TP: ``linear_num_key_heads`` and
``linear_num_value_heads`` must divide (arch/state.py ``state_tp_rule``).  The estimator's GDN activation
terms (fitted on Qwen GDN start-ups) apply to these layers unchecked: no OLMo-Hybrid start-up log exists.
TP above ``num_key_value_heads``: ``invalid_layout`` on every release, as olmo2's (``olmo.k_norm_tp_rule``:
``OlmoHybridAttention._apply_qk_norm`` all-gathers k into the ``num_key_value_heads x head_dim`` k_norm).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families.common import set_scalars
from reportgen.arch.families.olmo import attention as olmo_attention, check as olmo_check, k_norm_tp_rule
from reportgen.arch.families.qwen3_next import LAYER_KINDS, layer_kinds
from reportgen.arch.fields import Fields
from reportgen.arch.gdn import gdn_dims, gdn_layer, gdn_state
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec

MODELLED_FIELDS = ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
                   "linear_conv_kernel_dim")


def precheck(raw: Mapping[str, Any]) -> None:
    """``layer_types`` named before transformers parses it (its length error names num_hidden_layers):
    the Qwen GDN rule (one known kind per layer), and both kinds present (transformers' validator)."""
    if raw.get("layer_types") is None:
        return
    kinds = layer_kinds(Fields(None, raw), raw["num_hidden_layers"])
    for kind in LAYER_KINDS:
        if kind not in kinds:
            raise ConfigError("layer_types", f"has no {kind!r} layer (OLMo-Hybrid needs both kinds)")


def _vllm_uses_rope(raw: Mapping[str, Any]) -> bool:
    """vLLM ``OlmoHybridAttention._use_rope`` on its own config class: a ``rope_theta`` in the raw
    ``rope_parameters`` (or a legacy top-level one, which vLLM's ``patch_rope_parameters`` moves in)."""
    rp = raw.get("rope_parameters")
    if isinstance(rp, Mapping) and rp.get("rope_theta") is not None:
        return True
    return raw.get("rope_theta") is not None


def build(f: Fields, spec: ModelSpec) -> None:
    raw = f.raw
    hidden, heads = f.int("hidden_size"), f.int("num_attention_heads")
    if hidden % heads:
        raise Unsupported(f"olmo_hybrid with hidden_size {hidden} not a multiple of num_attention_heads {heads}: "
                          "vLLM's OlmoHybridAttention asserts it")
    native_only: list[str] = []
    g = olmo_check(f, native_only)
    if native_only:     # vLLM serves olmo_hybrid natively in every release: refused outright
        raise Unsupported(native_only[0])
    if raw.get("sliding_window"):
        raise Unsupported("olmo_hybrid with sliding_window: vLLM would window its attention layers through the "
                          "cache config, transformers' OLMo-Hybrid attention has no window")
    if raw.get("linear_use_gate", True) is not True:
        raise Unsupported("olmo_hybrid with linear_use_gate other than true: vLLM's "
                          "OlmoHybridGatedDeltaNetAttention asserts the output gate")
    kinds = f.str_list("layer_types")
    if kinds is None or len(kinds) != g.n_layers or set(kinds) - set(LAYER_KINDS):
        raise f.err("layer_types", f"must list {g.n_layers} kinds from {', '.join(LAYER_KINDS)}")
    d = gdn_dims(f)
    inter = f.int("intermediate_size")

    ts = spec.tensors
    layers: list[LayerKV] = []
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        if kinds[i] == "linear_attention":
            B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
            gdn_layer(ts, i, f"{p}.linear_attn", g.hidden, d, olmo=True)
            B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
            B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)
            layers.append(gdn_state(d, None))
        else:
            olmo_attention(ts, i, g)
            B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
            B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)
            B.norm(ts, f"{p}.post_feedforward_layernorm", g.hidden, i)
            layers.append(LayerKV(AttentionKind.FULL, g.n_kv, g.head_dim, g.head_dim))
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = layers
    # the attention layers' whole-projection k_norm: tp > num_key_value_heads fails on every release (olmo.py)
    k_norm_tp_rule(spec, "olmo_hybrid", g.n_kv, g.head_dim)
    if not _vllm_uses_rope(raw):
        spec.rope_caches = ()
        spec.notes.append("no rotary embedding: vLLM's OlmoHybridConfig keeps rope_parameters without a "
                          "rope_theta, so its attention layers are NoPE (no cos/sin cache)")
    n_lin = kinds.count("linear_attention")
    spec.notes.append(f"{n_lin} Gated DeltaNet layers hold a recurrent state per sequence (in the model dtype), "
                      f"{g.n_layers - n_lin} OLMo-3 attention layers hold KV")
