"""GLM-4.7-Flash (``glm4_moe_lite``): DeepSeek-V3 multi-head latent attention + GLM-4.5 MoE.

Follows vLLM ``vllm/model_executor/models/glm4_moe_lite.py`` @055e47c28003156421365af985d676fc921cb075:
``Glm4MoeLiteAttention`` / ``Glm4MoeLiteMLAAttention`` are vLLM's DeepseekV2 (MLA) attention
classes, the MoE block is ``Glm4MoE`` (router ``E x H``, fused experts of
``moe_intermediate_size``, shared experts fused into one MLP of ``moe_intermediate_size *
n_shared_experts``), the dense MLP ``intermediate_size``.  The tensors are therefore DeepSeek-V3's
(``families/deepseek.py``), sharded the same way: ``q_a_proj`` / ``kv_a_proj_with_mqa`` replicated
(vLLM fuses them into ``fused_qkv_a_proj``, ``disable_tp``), ``q_b_proj`` / ``kv_b_proj`` column,
``o_proj`` row.  The KV cache is vLLM's MLAAttentionSpec: one ``kv_lora_rank + qk_rope_head_dim``
latent per token and layer, not split by TP.

Dense vs MoE layers: ``mla_moe.dense_layers`` (vLLM's first_k_dense_replace rule, checked against
transformers' ``mlp_layer_types``).  MTP layers (``num_nextn_predict_layers``; transformers skips
``model.layers.47.*`` of the shipped checkpoint) are not loaded for serving: ``mtp_params`` only,
as for DeepSeek-V3.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import set_moe
from reportgen.arch.families.deepseek import _layer, mtp_extras, set_mla_facts
from reportgen.arch.families.mla_moe import dense_layers, refuse_attention_bias
from reportgen.arch.fields import Fields
from reportgen.arch.kv import mla_layers
from reportgen.arch.spec import ModelSpec, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    refuse_attention_bias(f)
    hidden = f.int("hidden_size")
    n_layers = f.int("num_hidden_layers")
    n_heads = f.int("num_attention_heads")
    vocab = f.int("vocab_size")
    tie = f.flag("tie_word_embeddings")
    q_lora = f.opt_int("q_lora_rank")
    kv_lora = f.int("kv_lora_rank")
    rope = f.int("qk_rope_head_dim")
    nope = f.int("qk_nope_head_dim", lo=0)
    v_dim = f.int("v_head_dim")
    n_exp = f.int("n_routed_experts")
    n_shared = f.int("n_shared_experts", 0, lo=0)
    moe_inter = f.int("moe_intermediate_size")
    inter = f.int("intermediate_size")
    dense = dense_layers(f, n_layers)
    k = set_moe(spec, f, n_exp, shared=n_shared)

    ts = spec.tensors
    B.embedding(ts, vocab, hidden)
    for i in range(n_layers):
        _layer(ts, i, hidden, n_heads, q_lora, kv_lora, rope, nope, v_dim, False, False, dense=dense[i],
               inter=inter, n_exp=n_exp, moe_inter=moe_inter, n_shared=n_shared)
    B.norm(ts, "model.norm", hidden, None)
    B.lm_head(ts, vocab, hidden, tied=tie)

    n_mtp = f.raw.get("num_nextn_predict_layers") or 0
    if n_mtp:
        mtp: list[Tensor] = []
        k_dense = f.raw.get("first_k_dense_replace") or 0
        _layer(mtp, n_layers, hidden, n_heads, q_lora, kv_lora, rope, nope, v_dim, False, False,
               dense=n_layers < k_dense, inter=inter, n_exp=n_exp, moe_inter=moe_inter, n_shared=n_shared)
        spec.mtp_params = n_mtp * (sum(t.numel for t in mtp) + mtp_extras(hidden, vocab))

    set_mla_facts(spec, f, hidden, vocab, n_layers, n_heads, nope, rope, tie, k)
    spec.layers_kv = mla_layers(n_layers, kv_lora, rope)
