"""Shared rules of the DeepSeek-shaped MLA + MoE stacks served by vLLM's DeepseekV2DecoderLayer logic.

Why a module of its own: GLM-4.7-Flash (``glm4_moe_lite``), DeepSeek-V3.2 (``deepseek_v32``) and
GLM-5 (``glm_moe_dsa``) are DeepSeek-V3 layers (``families/deepseek.py``) whose transformers
classes pick the dense layers from ``mlp_layer_types`` while vLLM picks them from
``first_k_dense_replace`` / ``moe_layer_freq`` (``is_moe_layer = layer_idx >= first_k_dense_replace
and layer_idx % moe_layer_freq == 0`` in vllm deepseek_v2.py @002d6073 and glm4_moe_lite.py
@055e47c2).  When the two disagree the meta-device count and what vLLM loads differ, so the model
is refused rather than priced with one of them.

vLLM's MLA projections (``fused_qkv_a_proj``, ``kv_b_proj``, ``o_proj``) are built with
``bias=False`` whatever ``attention_bias`` says, while transformers gives them biases: such a
config is refused too.
"""

from __future__ import annotations

from reportgen.arch.errors import Unsupported
from reportgen.arch.fields import Fields


def dense_layers(f: Fields, n_layers: int) -> list[bool]:
    """Per layer: True = dense MLP.  vLLM's rule, checked against transformers' ``mlp_layer_types``."""
    freq = f.int("moe_layer_freq", 1)
    k_dense = f.raw.get("first_k_dense_replace")
    hf_types = f.str_list("mlp_layer_types")
    if k_dense is None and hf_types is None:
        raise f.err("first_k_dense_replace", "is missing (vLLM reads it to place the dense layers)")
    if k_dense is None:
        # a config written from the transformers class (no first_k_dense_replace): vLLM's attribute
        # lookup would fail; take the class's own mlp_layer_types, which is what the checkpoint has
        return [t != "sparse" for t in hf_types]
    k_dense = f.int("first_k_dense_replace", lo=0)
    vllm = [not (i >= k_dense and i % freq == 0) for i in range(n_layers)]
    if hf_types is not None:
        if len(hf_types) != n_layers:
            raise f.err("mlp_layer_types", f"has {len(hf_types)} entries for {n_layers} layers")
        hf = [t != "sparse" for t in hf_types]
        if hf != vllm:
            raise Unsupported(f"{f.model_type}: mlp_layer_types and vLLM's first_k_dense_replace / moe_layer_freq "
                              "place the dense layers differently")
    return vllm


def refuse_attention_bias(f: Fields) -> None:
    if f.flag("attention_bias"):
        raise Unsupported(f"{f.model_type} with attention_bias: vLLM's MLA projections have no biases "
                          "(transformers' have); not modelled")
