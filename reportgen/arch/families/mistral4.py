"""Mistral Small 4 (``mistral4``, alone or as the ``text_config`` of a ``mistral3`` composite): DeepSeek-V3 MLA + MoE.

What vLLM builds.  vLLM has no ``Mistral4ForCausalLM`` (its model registry has ``MistralLarge3ForCausalLM`` and
no Mistral-4 entry).  Mistral's repositories ship ``params.json`` + ``consolidated*.safetensors`` beside the
Hugging Face files, and ``get_config`` picks the Mistral format first when both are there ("First check for
Mistral to avoid defaulting to Transformers implementation", vLLM ``vllm/transformers_utils/config.py``
@0036026e).  ``adapt_config_dict`` (``vllm/transformers_utils/configs/mistral.py`` @01da88c5) turns an MLA
(``qk_nope_head_dim``) MoE params.json with shared experts into ``model_type deepseek_v3`` /
``MistralLarge3ForCausalLM``, and ``vllm/model_executor/models/mistral_large_3.py`` @0bb55d60 is
``DeepseekV3ForCausalLM`` with a checkpoint-name remapping only.  The tensors are therefore DeepSeek-V3's
(``families/deepseek.py``), sharded the same way, and the KV cache is one MLA latent of ``kv_lora_rank +
qk_rope_head_dim`` per token and layer (MLAAttentionSpec, not split by TP).

The config.json fields describe the same model: transformers 5.24's ``Mistral4ForCausalLM`` is DeepSeek-V3's
layer (``q_a_proj`` / ``q_a_layernorm`` / ``q_b_proj``, ``kv_a_proj_with_mqa`` / ``kv_a_layernorm`` /
``kv_b_proj``, ``o_proj``), a router ``E x H`` without correction bias (vLLM: ``_remap_moe_args`` sets
``topk_method`` None, so no ``e_score_correction_bias``), routed experts of ``moe_intermediate_size``, shared
experts fused into one MLP of ``moe_intermediate_size * n_shared_experts``, dense layers
(``layer_idx < first_k_dense_replace``) of ``intermediate_size``.  The per-layer rule is vLLM's
``first_k_dense_replace`` / ``moe_layer_freq`` (``mla_moe.dense_layers``); transformers' class has no
``moe_layer_freq``, so a config.json that sets it to anything but 1 is refused (the two would differ).  The
llama-4 attention temperature (``llama_4_scaling_beta``) changes no memory.

Not modelled: a repository with Hugging Face-format weights only (no ``consolidated*.safetensors``) would be
served by vLLM's Transformers backend, whose attention keeps full K/V rather than the latent; reportgen prices
the Mistral-format path every Mistral release takes.  ``attention_bias`` is refused (vLLM's MLA has no biases).
"""

from __future__ import annotations

from reportgen.arch.errors import Unsupported
from reportgen.arch.families import glm4_moe_lite
from reportgen.arch.fields import Fields
from reportgen.arch.spec import ModelSpec


def build(f: Fields, spec: ModelSpec) -> None:
    freq = f.raw.get("moe_layer_freq", 1)
    if freq != 1:
        raise Unsupported(f"{f.model_type} with moe_layer_freq {freq!r}: transformers' Mistral4 class ignores it "
                          "(every layer from first_k_dense_replace on is MoE), vLLM's DeepSeek-V3 path does not")
    if f.int("n_shared_experts", lo=0) == 0:
        # adapt_config_dict maps an MoE params.json without shared experts to MixtralForCausalLM, not to the
        # DeepSeek-V3 (MLA) model
        raise Unsupported(f"{f.model_type} without shared experts: vLLM's Mistral-format path would build "
                          "MixtralForCausalLM (no MLA) from it; not modelled")
    # transformers' rule is ``layer_idx >= first_k_dense_replace`` (class default 0): hand the value to the
    # shared DeepSeek-V3 stack, which places dense layers by vLLM's first_k_dense_replace rule
    raw = dict(f.raw, first_k_dense_replace=f.int("first_k_dense_replace", lo=0))
    glm4_moe_lite.build(Fields(f.obj, raw, f.prefix), spec)
