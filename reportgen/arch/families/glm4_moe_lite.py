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

from reportgen.arch.families.common import set_moe
from reportgen.arch.families.mla_moe import (deepseek_moe_part, dense_layers, mla_dims, mla_moe_stack, mla_part,
                                             refuse_attention_bias)
from reportgen.arch.fields import Fields
from reportgen.arch.spec import ModelSpec


def build(f: Fields, spec: ModelSpec) -> None:
    refuse_attention_bias(f)
    d = mla_dims(f)
    n_exp = f.int("n_routed_experts")
    n_shared = f.int("n_shared_experts", 0, lo=0)
    moe_inter = f.int("moe_intermediate_size")
    inter = f.int("intermediate_size")
    dense = dense_layers(f, d.n_layers) + [d.n_layers < (f.raw.get("first_k_dense_replace") or 0)]   # + MTP
    k = set_moe(spec, f, n_exp, shared=n_shared)
    mlp = deepseek_moe_part(d.hidden, dense, inter=inter, n_exp=n_exp, moe_inter=moe_inter, n_shared=n_shared)
    mla_moe_stack(spec, f, d, attention=mla_part(d), mlp=mlp, k=k)
