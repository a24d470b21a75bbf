"""DeepSeek-V2 / V3 (and Kimi-K2, parsed as V3): multi-head latent attention + DeepSeekMoE.

Attention (MLA), per the transformers 5.24 model code:

* ``q_lora_rank`` null (V2-Lite): ``q_proj`` H -> heads*(nope+rope), column-parallel;
  else ``q_a_proj`` H -> q_lora (bias = attention_bias, replicated), ``q_a_layernorm``,
  ``q_b_proj`` q_lora -> heads*(nope+rope) (column).
* ``kv_a_proj_with_mqa`` H -> kv_lora + rope (bias = attention_bias, replicated),
  ``kv_a_layernorm`` (kv_lora), ``kv_b_proj`` kv_lora -> heads*(nope+v) (column),
  ``o_proj`` heads*v -> H (bias = attention_bias, row).
* KV cache: one latent of kv_lora + rope per token per layer (MLA spec).

MLP: the first ``first_k_dense_replace`` layers dense (``intermediate_size``),
the rest MoE: router ``E x H`` (V3's ``e_score_correction_bias`` is a buffer,
not a parameter), routed experts of ``moe_intermediate_size``, and shared
experts fused into one MLP of ``moe_intermediate_size * n_shared_experts``.
V2 MLPs carry ``mlp_bias``; V3's never do.

Multi-token-prediction layers (``num_nextn_predict_layers``) are not built by
transformers nor loaded by vLLM for plain serving: counted in ``mtp_params`` only.
"""

from __future__ import annotations

from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import set_moe
from reportgen.arch.families.mla_moe import deepseek_moe_part, mla_dims, mla_moe_stack, mla_part
from reportgen.arch.fields import Fields
from reportgen.arch.spec import ModelSpec


def build(f: Fields, spec: ModelSpec, *, vllm_reading: bool = False) -> None:
    """``vllm_reading``: ``f`` is the config as vLLM's DeepseekV2ForCausalLM reads it with no transformers model
    to match (Kimi-VL's text_config, a DeepseekV2Config): MLPs never biased (the caller refuses ``mlp_bias``) and
    MoE layers where ``i >= first_k_dense_replace and i % moe_layer_freq == 0`` (vLLM deepseek_v2.py @002d6073)."""
    v2 = f.model_type == "deepseek_v2" and not vllm_reading
    d = mla_dims(f)
    att_bias = f.flag("attention_bias")
    mlp_bias = f.flag("mlp_bias") if v2 else False
    if v2 and f.raw.get("moe_layer_freq", 1) != 1:
        raise Unsupported("deepseek_v2 with moe_layer_freq != 1: transformers ignores it, vLLM does not")
    n_exp = f.int("n_routed_experts")
    k_dense = f.int("first_k_dense_replace", 0, lo=0)
    n_shared = f.int("n_shared_experts", lo=0)
    moe_inter = f.int("moe_intermediate_size")
    freq = f.int("moe_layer_freq", 1) if vllm_reading else 1
    dense = [not (i >= k_dense and i % freq == 0) for i in range(d.n_layers + 1)]        # + the MTP layer
    inter = f.int("intermediate_size") if any(dense[:d.n_layers]) else 0
    k = set_moe(spec, f, n_exp, shared=n_shared)
    mlp = deepseek_moe_part(d.hidden, dense, inter=inter, n_exp=n_exp, moe_inter=moe_inter, n_shared=n_shared,
                            bias=mlp_bias)
    mla_moe_stack(spec, f, d, attention=mla_part(d, bias=att_bias), mlp=mlp, k=k)
