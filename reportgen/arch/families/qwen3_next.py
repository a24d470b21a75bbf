"""Qwen Gated-DeltaNet hybrids: qwen3_next, qwen3_5_text, qwen3_5_moe_text.

Follows vLLM's ``vllm/model_executor/models/qwen3_next.py`` (commit
002d6073aa034d4f5545d45021b0e56d1f3c3593) and ``qwen3_5.py`` (commit
00def4f8421153e037ff6270c0a8c31912a00206), the GDN layer in arch/gdn.py, and
transformers 5 ``modeling_qwen3_next.py`` / ``modeling_qwen3_5(_moe).py`` for the counts.

Each decoder layer is ``input_layernorm``, a token mixer chosen by ``layer_types[i]``, then
``post_attention_layernorm`` and an MLP:

* ``linear_attention`` -> a Gated DeltaNet (arch/gdn.py): tensors of kind linear_attention,
  a per-sequence recurrent state (``StateGeometry("gdn")``), no KV tokens;
* ``full_attention`` -> gated attention: ``q_proj`` has ``2 * heads * head_dim`` rows (query and
  output gate, vLLM ``QKVParallelLinear(total_num_heads * (1 + attn_output_gate))``), k/v/o, and
  per-head ``q_norm`` / ``k_norm``.  vLLM reads ``attn_output_gate`` (default true) and ``qkv_bias``
  while transformers always doubles q and follows ``attention_bias`` on q/k/v/o: configs where the two
  disagree (``attn_output_gate: false``, ``attention_bias: true``) are refused.
* MLP: qwen3_next -> a sparse MoE block on ``i not in mlp_only_layers and E > 0 and
  (i + 1) % decoder_sparse_step == 0``, else a dense SwiGLU of ``intermediate_size``;
  qwen3_5_moe_text -> the MoE block on every layer (vLLM and transformers both ignore
  ``mlp_only_layers`` there); qwen3_5_text -> dense on every layer.  The MoE block: router
  ``E x H``, ``E`` experts of ``moe_intermediate_size``, one shared expert of
  ``shared_expert_intermediate_size`` and its sigmoid ``shared_expert_gate`` ``1 x H`` (router).

Tie: vLLM's Qwen3NextForCausalLM always allocates its own ``lm_head`` (tied qwen3_next configs are
refused); Qwen3.5 ties when ``tie_word_embeddings`` is true.  ``layer_scale`` (vLLM-only per-layer
scales) is refused.  Multi-token-prediction layers (``mtp_num_hidden_layers``) are not loaded by
vLLM's serving model (``skip_prefixes=["mtp."]``; they load only as a speculative draft) and are
not counted; transformers does not instantiate them either.

State dtype: the conv state in the model dtype; the delta-rule state in ``mamba_ssm_dtype`` when the
config sets it (Qwen3.5 ships float32; vLLM copies it into ``mamba_ssm_cache_dtype`` -- the logged
block size 1056 of Qwen3.5-9B at fp8 KV is only reachable with a float32 state), else the model dtype.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import geometry, set_moe, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.gdn import gdn_dims, gdn_layer, gdn_state
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec
from reportgen.arch.state import DTYPE_BYTES

LAYER_KINDS = ("linear_attention", "full_attention")
# config fields this family models (features.scan would otherwise refuse them as unknown hybrids)
MODELLED_FIELDS = ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
                   "linear_conv_kernel_dim", "full_attention_interval")


def layer_kinds(f: Fields, n_layers: int) -> list[str]:
    """``layer_types`` (the class derives it from ``full_attention_interval`` when absent), checked.

    Read from the raw config: transformers 5.24 silently re-derives a list with an unknown kind."""
    lt = Fields(None, f.raw, f.prefix).str_list("layer_types")
    if lt is None:
        interval = f.int("full_attention_interval", 4)
        return ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(n_layers)]
    if len(lt) != n_layers:
        raise f.err("layer_types", f"has {len(lt)} entries for num_hidden_layers {n_layers} "
                    "(one token-mixer kind per decoder layer)")
    for i, t in enumerate(lt):
        if t not in LAYER_KINDS:
            raise f.err(f"layer_types[{i}]", f"unknown layer kind {t!r}: must be one of {', '.join(LAYER_KINDS)}")
    return lt


def _ssm_dtype(f: Fields) -> str | None:
    value = f.raw.get("mamba_ssm_dtype")
    if value is None:
        return None
    name = value.removeprefix("torch.") if isinstance(value, str) else value
    if name not in DTYPE_BYTES:
        raise f.err("mamba_ssm_dtype", f"must be one of {', '.join(DTYPE_BYTES)}, got {value!r}")
    return name


def build(f: Fields, spec: ModelSpec) -> None:
    family = f.model_type
    g = geometry(f)
    if f.get("attn_output_gate", True) is False:
        raise Unsupported(f"{family} with attn_output_gate=false: vLLM then builds an ungated q_proj, "
                          "transformers always a gated one")
    if f.flag("attention_bias"):
        raise Unsupported(f"{family} with attention_bias=true: vLLM's gated attention has no o_proj bias and "
                          "reads qkv_bias instead")
    if f.raw.get("layer_scale"):
        raise Unsupported(f"{family} with layer_scale: vLLM's per-layer scales are not in transformers")
    if family == "qwen3_next" and g.tie:
        raise Unsupported("qwen3_next with tie_word_embeddings=true: vLLM's Qwen3NextForCausalLM always "
                          "allocates its own lm_head")
    kinds = layer_kinds(f, g.n_layers)
    d = gdn_dims(f)
    ssm_dtype = _ssm_dtype(f)

    if family == "qwen3_5_text":
        sparse = [False] * g.n_layers
        n_exp = 0
    else:
        n_exp = f.int("num_experts", lo=0)
        if family == "qwen3_5_moe_text":
            if n_exp < 1:
                raise f.err("num_experts", "must be at least 1 (every qwen3_5_moe layer is sparse)")
            sparse = [True] * g.n_layers
        else:
            step = f.int("decoder_sparse_step", 1)
            mlp_only = set(f.int_list("mlp_only_layers"))
            sparse = [i not in mlp_only and n_exp > 0 and (i + 1) % step == 0 for i in range(g.n_layers)]
    if any(sparse):
        set_moe(spec, f, n_exp, shared=1)
        # vLLM's Qwen3NextSparseMoeBlock (Qwen3.5 MoE too): softmax top-k, ``renormalize=getattr(config,
        # "norm_topk_prob", True)`` (vllm 0.29.0 sdist qwen3_next.py:224, 0.34.0 :240) -> RenormalizeNaive
        # (``get_routing_method_type``), Default without renormalisation
        spec.moe_routing = "RenormalizeNaive" if f.flag("norm_topk_prob", True) else "Default"
        expert_inter = f.int("moe_intermediate_size")
        shared_inter = f.int("shared_expert_intermediate_size", lo=0)
    dense_inter = f.int("intermediate_size") if not all(sparse) else 0

    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    layers: list[LayerKV] = []
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
        if kinds[i] == "linear_attention":
            gdn_layer(ts, i, f"{p}.linear_attn", g.hidden, d)
            layers.append(gdn_state(d, ssm_dtype))
        else:
            a = f"{p}.self_attn"
            B.linear(ts, f"{a}.q_proj", g.hidden, 2 * g.n_heads * g.head_dim, B.S.COLUMN, C.ATTENTION, i)
            B.linear(ts, f"{a}.k_proj", g.hidden, g.n_kv * g.head_dim, B.S.KV, C.ATTENTION, i)
            B.linear(ts, f"{a}.v_proj", g.hidden, g.n_kv * g.head_dim, B.S.KV, C.ATTENTION, i)
            B.linear(ts, f"{a}.o_proj", g.n_heads * g.head_dim, g.hidden, B.S.ROW, C.ATTENTION, i)
            B.norm(ts, f"{a}.q_norm", g.head_dim, i, comp=C.ATTENTION)
            B.norm(ts, f"{a}.k_norm", g.head_dim, i, comp=C.ATTENTION)
            layers.append(LayerKV(AttentionKind.FULL, g.n_kv, g.head_dim, g.head_dim))
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
        if sparse[i]:
            B.router(ts, i, f"{p}.mlp.gate", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.mlp.experts", g.hidden, expert_inter, n_exp)
            if shared_inter:
                B.gated_mlp(ts, i, f"{p}.mlp.shared_expert", g.hidden, shared_inter, C.SHARED_EXPERTS)
            B.router(ts, i, f"{p}.mlp.shared_expert_gate", g.hidden, 1)
        else:
            B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, dense_inter, C.DENSE_MLP)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = layers
    n_lin = kinds.count("linear_attention")
    spec.notes.append(f"{n_lin} Gated DeltaNet layers hold a recurrent state per sequence (delta-rule state in "
                      f"{ssm_dtype or 'the model dtype'}), {g.n_layers - n_lin} gated full-attention layers hold KV")
    mtp = f.raw.get("mtp_num_hidden_layers") or f.raw.get("num_nextn_predict_layers")
    if isinstance(mtp, int) and mtp > 0:
        spec.notes.append(f"{mtp} MTP layer(s) in the checkpoint are not counted: vLLM's serving model skips "
                          "'mtp.' weights (loaded only as a speculative-decoding draft)")
