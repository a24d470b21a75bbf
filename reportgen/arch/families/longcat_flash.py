"""LongCat-Flash (``longcat_flash``): two MLA attentions and two dense MLPs per decoder layer + a shortcut MoE
with zero-computation experts.

Follows vLLM ``vllm/model_executor/models/longcat_flash.py`` @055e47c28003156421365af985d676fc921cb075:

* ``FlashConfig(**hf_config.__dict__)``: ``num_hidden_layers = num_layers`` (transformers' ``num_hidden_layers``
  is a property, 2 x ``num_layers``, not in ``__dict__``), ``intermediate_size = ffn_hidden_size``,
  ``moe_intermediate_size = expert_ffn_hidden_size``, top-k from ``moe_topk``.
* ``FlashDecoderLayer``: ``self_attn = ModuleList([DeepseekV2MLAAttention(...) for i in range(2)])`` -- DeepSeek
  MLA tensors (``families/mla_moe.mla_attention``, same shards; no biases, so ``attention_bias`` is refused),
  ``input_layernorm`` / ``post_attention_layernorm`` two RMSNorms each, ``mlps`` two ``FlashMLP`` (fused
  gate_up column, down row) of ``intermediate_size``, and ``mlp = LongcatMoe``.
* ``LongcatRouter``: ``classifier = ReplicatedLinear(hidden, n_routed_experts + zero_expert_num,
  bias=router_bias, params_dtype=router_params_dtype)`` and ``e_score_correction_bias = nn.Parameter((E + Z,),
  router_params_dtype)``; ``router_params_dtype`` is float32 when ``router_dtype == "float32"`` (FlashConfig's
  default) -- priced at 4 bytes (``Tensor.dtype_bytes``).  transformers keeps the correction bias as a buffer, so
  vLLM's copy is ``allocated_only``.
* Experts: ``FusedMoE(num_experts=n_routed_experts, intermediate_size=moe_intermediate_size)`` -- routed experts
  only; the zero-computation (identity) experts hold no weights.  ``assert config.zero_expert_type is not None``:
  a config without it is refused.
* ``lm_head = ParallelLMHead`` always (never tied): ``tie_word_embeddings`` true is refused.  ``.mtp.`` weights
  are skipped.

KV cache: each ``DeepseekV2MLAAttention`` owns an MLA cache (``MLAAttentionSpec``, ``kv_lora_rank +
qk_rope_head_dim``, not split by TP), two per decoder layer.  They are one ``LayerKV`` per decoder layer with
``num_kv_heads = 2`` latents: the same bytes per token and per block as vLLM's two same-shaped MLA layers in one
KV-cache group, and pipeline stages keep whole decoder layers (vLLM's ``make_layers`` splits ``num_layers``).

Parameter count vs transformers: before 5.25, ``LongcatFlashExperts`` allocated ``gate_up_proj`` for
``n_routed_experts + zero_expert_num`` experts but ``down_proj`` for the routed ones only, so the meta-device model
had ``num_layers x zero_expert_num x 2 x expert_ffn_hidden_size x hidden`` parameters no checkpoint has and vLLM
never allocates: they are ``spec.unloaded_params`` when the installed transformers is older than 5.25.  From 5.25
the class allocates routed experts only (``num_experts = n_routed_experts``, the same count as vLLM), so nothing is
unloaded (tensors + unloaded = the meta count under either, asserted exactly in tests/test_oracle_longcat_flash.py).
The priced figure is the same under every transformers version.
"""

from __future__ import annotations

import functools
from importlib import metadata

from packaging.version import Version

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.mla_moe import mla_attention, set_mla_facts
from reportgen.arch.fields import Fields
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    if f.flag("attention_bias"):
        raise Unsupported("longcat_flash with attention_bias: vLLM's DeepseekV2MLAAttention has no biases "
                          "(transformers' q_a / kv_a / o projections have); not modelled")
    if f.flag("tie_word_embeddings"):
        raise Unsupported("longcat_flash with tie_word_embeddings: vLLM always builds its own lm_head "
                          "(ParallelLMHead); not modelled")
    if f.get("zero_expert_type") is None:
        raise Unsupported("longcat_flash without zero_expert_type: vLLM's LongcatMoe asserts it is set")
    hidden = f.int("hidden_size")
    n_layers = f.int("num_layers")
    n_heads = f.int("num_attention_heads")
    vocab = f.int("vocab_size")
    q_lora = f.int("q_lora_rank")          # transformers' LongcatFlashMLA always builds q_a_proj
    kv_lora = f.int("kv_lora_rank")
    rope = f.int("qk_rope_head_dim")
    nope = f.int("qk_nope_head_dim", lo=0)
    v_dim = f.int("v_head_dim")
    inter = f.int("ffn_hidden_size")
    moe_inter = f.int("expert_ffn_hidden_size")
    n_exp = f.int("n_routed_experts")
    n_zero = f.int("zero_expert_num", 0, lo=0)
    router_bias = f.flag("router_bias")
    router_bytes = 4 if f.get("router_dtype", "float32") == "float32" else 0
    k = f.int("moe_topk")
    if k > n_exp + n_zero:
        raise f.err("moe_topk", f"{k} exceeds the {n_exp} + {n_zero} experts")
    spec.num_experts, spec.experts_per_token, spec.num_shared_experts = n_exp, k, 0

    ts = spec.tensors
    B.embedding(ts, vocab, hidden)
    for i in range(n_layers):
        p = f"model.layers.{i}"
        for j in (0, 1):
            B.norm(ts, f"{p}.input_layernorm.{j}", hidden, i)
            mla_attention(ts, f"{p}.self_attn.{j}", i, hidden, n_heads, q_lora, kv_lora, rope, nope, v_dim, False)
            B.norm(ts, f"{p}.post_attention_layernorm.{j}", hidden, i)
            B.gated_mlp(ts, i, f"{p}.mlps.{j}", hidden, inter, C.DENSE_MLP)
        r = f"{p}.mlp.router"
        ts.append(Tensor(f"{r}.classifier.weight", (n_exp + n_zero, hidden), S.REPLICATED, C.ROUTER, i,
                         dtype_bytes=router_bytes))
        if router_bias:
            ts.append(Tensor(f"{r}.classifier.bias", (n_exp + n_zero,), S.REPLICATED, C.ROUTER, i,
                             dtype_bytes=router_bytes))
        ts.append(Tensor(f"{r}.e_score_correction_bias", (n_exp + n_zero,), S.REPLICATED, C.ROUTER, i,
                         allocated_only=True, dtype_bytes=router_bytes))
        B.experts(ts, i, f"{p}.mlp.experts", hidden, moe_inter, n_exp)
    B.norm(ts, "model.norm", hidden, None)
    B.lm_head(ts, vocab, hidden, tied=False)

    if _transformers_allocates_zero_experts():
        spec.unloaded_params = n_layers * n_zero * 2 * moe_inter * hidden
    if spec.unloaded_params:
        spec.notes.append(f"transformers < 5.25 allocates gate_up_proj for the {n_zero} zero-computation experts "
                          f"too ({spec.unloaded_params:,} parameters no checkpoint has); vLLM allocates the "
                          f"{n_exp} routed experts only, which is what is priced")
    set_mla_facts(spec, f, hidden, vocab, n_layers, n_heads, nope, rope, False, k)
    spec.layers_kv = [LayerKV(AttentionKind.MLA, 2, kv_lora + rope, 0) for _ in range(n_layers)]


@functools.cache
def _transformers_allocates_zero_experts() -> bool:
    """transformers 5.25 dropped the zero experts' ``gate_up_proj`` rows (``LongcatFlashExperts.num_experts =
    n_routed_experts``); earlier 5.x releases allocate them.  Read from the installed distribution's metadata, not
    by importing the model module."""
    return Version(metadata.version("transformers")) < Version("5.25.0")
