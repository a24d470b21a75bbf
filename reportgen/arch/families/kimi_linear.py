"""kimi_linear (Moonshot Kimi-Linear): Kimi Delta Attention (KDA) layers, NoPE MLA layers, DeepSeek-style MoE.

Follows vLLM ``vllm/model_executor/models/kimi_linear.py`` (read at commit
01d995867291dd13119ea66cd18e3c9c9b51c50e), ``layers/kda.py`` (commit 01a7e5d9) and transformers 5.24
``modeling_kimi_linear.py``.

vLLM reads the config with its OWN ``KimiLinearConfig``; transformers maps the same keys onto its own
fields (``num_experts`` -> ``num_local_experts``, ``num_shared_experts`` -> ``n_shared_experts``,
``num_experts_per_token`` -> ``num_experts_per_tok``).  Both build the same model only when the
config.json states what each side would otherwise default differently, so this module demands it:

* ``linear_attn_config`` with ``kda_layers`` / ``full_attn_layers`` (1-based, together every layer once),
  ``num_heads``, ``head_dim`` and ``short_conv_kernel_size`` (vLLM reads them by key);
* ``num_experts`` and ``num_shared_experts`` stated (vLLM's defaults: none / 0; transformers': 256 / 1);
* the MoE placement: vLLM's ``i >= first_k_dense_replace and i % moe_layer_freq == 0`` (defaults 0 / 1)
  must equal transformers' ``mlp_layer_types`` (from ``first_k_dense_replace``, default 1);
* MLA as vLLM asserts it: ``q_lora_rank`` null and ``mla_use_nope`` true (no rotary module at all),
  no ``attention_bias`` (vLLM's projections have none).

Layers: ``input_layernorm``, KDA (``arch/mixers.py``, a ``kda`` state) or MLA (``q_proj`` COLUMN,
``kv_a_proj_with_mqa`` and ``kv_a_layernorm`` REPLICATED, ``kv_b_proj`` COLUMN, ``o_proj`` ROW; an MLA
latent of ``kv_lora_rank + qk_rope_head_dim`` per token), ``post_attention_layernorm``, then a SwiGLU of
``intermediate_size`` or the MoE (router ``E x H`` -- its ``e_score_correction_bias`` is a transformers
buffer, not counted, as for DeepSeek-V3 --, experts of ``moe_intermediate_size``, one shared MLP of
``moe_intermediate_size * num_shared_experts``).  The lm_head is never tied (neither code ties it).
MTP layers (``num_nextn_predict_layers``) are skipped by vLLM's loader: not counted.
"""

from __future__ import annotations

from collections.abc import Mapping

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families.common import set_moe
from reportgen.arch.fields import Fields, check_int
from reportgen.arch.mixers import kda_mixer, state_layer
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S

HANDLES = ("linear_conv_kernel_dim",)
_KDA_KEYS = ("num_heads", "head_dim", "short_conv_kernel_size")


def _kda_config(raw: Mapping, n_layers: int) -> tuple[list[bool], int, int, int]:
    """(is_kda per layer, heads, head_dim, conv kernel) from ``linear_attn_config``."""
    lac = raw.get("linear_attn_config")
    if not isinstance(lac, Mapping):
        raise Unsupported("kimi_linear without linear_attn_config: vLLM reads the KDA layers and sizes from it")
    dims = []
    for key in _KDA_KEYS:
        if key not in lac:
            raise Unsupported(f"kimi_linear without linear_attn_config.{key}: vLLM reads it by key")
        dims.append(check_int(f"linear_attn_config.{key}", lac[key], 1, 1 << 16, False))
    kinds: list[str | None] = [None] * n_layers
    for key, kind in (("kda_layers", "kda"), ("full_attn_layers", "mla")):
        ids = lac.get(key)
        if not isinstance(ids, list):
            raise ConfigError(f"linear_attn_config.{key}", "must be a list of 1-based layer numbers")
        for j, n in enumerate(ids):
            check_int(f"linear_attn_config.{key}[{j}]", n, 1, n_layers, False)
            if kinds[n - 1] is not None:
                raise ConfigError(f"linear_attn_config.{key}", f"layer {n} is listed twice")
            kinds[n - 1] = kind
    if None in kinds:
        raise ConfigError("linear_attn_config", f"layer {kinds.index(None) + 1} is in neither kda_layers nor "
                          "full_attn_layers")
    return [k == "kda" for k in kinds], dims[0], dims[1], dims[2]


def precheck(raw: Mapping) -> None:
    """``linear_attn_config`` before transformers parses it (which fails on a bad one without naming it)."""
    _kda_config(raw, raw["num_hidden_layers"])


def build(f: Fields, spec: ModelSpec) -> None:
    raw = f.raw
    hidden, n_layers = f.int("hidden_size"), f.int("num_hidden_layers")
    n_heads, vocab = f.int("num_attention_heads"), f.int("vocab_size")
    is_kda, k_heads, k_dim, k_conv = _kda_config(raw, n_layers)
    if raw.get("layer_types") is not None and f.str_list("layer_types") != [
            "linear_attention" if k else "full_attention" for k in is_kda]:
        raise ConfigError("layer_types", "disagrees with linear_attn_config")
    if f.opt_int("q_lora_rank") is not None:
        raise Unsupported("kimi_linear with q_lora_rank: vLLM's KimiMLAAttention asserts q_lora_rank is null")
    if raw.get("mla_use_nope") is not True:
        raise Unsupported("kimi_linear without mla_use_nope: true: vLLM's KimiMLAAttention asserts NoPE MLA")
    if f.flag("attention_bias"):
        raise Unsupported("kimi_linear with attention_bias: vLLM's MLA projections have no bias")
    for key in ("num_experts", "num_shared_experts"):
        if raw.get(key) is None:
            raise Unsupported(f"kimi_linear without {key}: vLLM's and transformers' defaults differ")
    k_dense = raw.get("first_k_dense_replace", 0)
    freq = raw.get("moe_layer_freq", 1)
    check_int("first_k_dense_replace", k_dense, 0, 1 << 12, False)
    check_int("moe_layer_freq", freq, 1, 1 << 12, False)
    vllm_moe = [i >= k_dense and i % freq == 0 for i in range(n_layers)]
    hf_moe = [t == "sparse" for t in (f.get("mlp_layer_types") or [])]
    if hf_moe != vllm_moe:
        raise Unsupported("kimi_linear MoE layers: vLLM places them by first_k_dense_replace / moe_layer_freq "
                          f"({sum(vllm_moe)} layers), transformers by mlp_layer_types ({sum(hf_moe)})")
    kv_lora, rope = f.int("kv_lora_rank"), f.int("qk_rope_head_dim")
    nope, v_dim = f.int("qk_nope_head_dim", lo=0), f.int("v_head_dim")
    n_exp = f.int("num_experts")
    n_shared = f.int("num_shared_experts", lo=0)
    inter, moe_inter = f.int("intermediate_size"), f.int("moe_intermediate_size")
    if any(vllm_moe):
        set_moe(spec, f, n_exp, shared=n_shared)

    ts = spec.tensors
    layers: list[LayerKV] = []
    B.embedding(ts, vocab, hidden)
    for i in range(n_layers):
        p = f"model.layers.{i}"
        a = f"{p}.self_attn"
        B.norm(ts, f"{p}.input_layernorm", hidden, i)
        if is_kda[i]:
            layers.append(state_layer(kda_mixer(ts, i, a, hidden, heads=k_heads, head_dim=k_dim, conv_kernel=k_conv)))
        else:
            B.linear(ts, f"{a}.q_proj", hidden, n_heads * (nope + rope), S.COLUMN, C.ATTENTION, i)
            B.linear(ts, f"{a}.kv_a_proj_with_mqa", hidden, kv_lora + rope, S.REPLICATED, C.ATTENTION, i)
            B.norm(ts, f"{a}.kv_a_layernorm", kv_lora, i, comp=C.ATTENTION)
            B.linear(ts, f"{a}.kv_b_proj", kv_lora, n_heads * (nope + v_dim), S.COLUMN, C.ATTENTION, i)
            B.linear(ts, f"{a}.o_proj", n_heads * v_dim, hidden, S.ROW, C.ATTENTION, i)
            layers.append(LayerKV(AttentionKind.MLA, 1, kv_lora + rope, 0))
        B.norm(ts, f"{p}.post_attention_layernorm", hidden, i)
        if vllm_moe[i]:
            B.router(ts, i, f"{p}.mlp.gate", hidden, n_exp)
            B.experts(ts, i, f"{p}.mlp.experts", hidden, moe_inter, n_exp)
            if n_shared:
                B.gated_mlp(ts, i, f"{p}.mlp.shared_experts", hidden, moe_inter * n_shared, C.SHARED_EXPERTS)
        else:
            B.gated_mlp(ts, i, f"{p}.mlp", hidden, inter, C.DENSE_MLP)
    B.norm(ts, "model.norm", hidden, None)
    B.lm_head(ts, vocab, hidden, tied=False)
    spec.hidden_size, spec.vocab_size, spec.num_layers = hidden, vocab, n_layers
    spec.num_attention_heads, spec.num_kv_heads, spec.head_dim = n_heads, 0, nope + rope
    spec.is_mla = True
    spec.tie_word_embeddings = False
    spec.max_position_embeddings = f.opt_int("max_position_embeddings")
    spec.rotary_dim = 0
    spec.rope_caches = ()
    spec.layers_kv = layers
    n_mtp = raw.get("num_nextn_predict_layers") or 0
    if n_mtp:
        spec.notes.append(f"{n_mtp} MTP layer(s) are skipped by vLLM's KimiLinearForCausalLM loader: not counted")
