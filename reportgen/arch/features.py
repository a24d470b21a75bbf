"""Conservative detection of architecture features we do not model.

Why: an unseen config of a known family may carry a feature its family
adapter knows nothing about (KV shared across layers, a DSA indexer, per-layer
head counts, Mamba mixers).  Counting it with the family formula would give a
confident wrong number; PRODUCT §3 says unknown is not zero.  So any such
field, when set, makes the whole model ``unsupported`` with the feature named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportgen.arch.errors import Unsupported
from reportgen.arch.fields import PER_LAYER_LISTS

# field -> feature, when the field is present and truthy
_FEATURE_FIELDS = {
    "num_kv_shared_layers": "KV cache shared across layers (num_kv_shared_layers)",
    "index_head_dim": "DSA lightning-indexer sparse attention (index_head_dim)",
    "index_n_heads": "DSA lightning-indexer sparse attention (index_n_heads)",
    "index_topk": "DSA lightning-indexer sparse attention (index_topk)",
    "hybrid_override_pattern": "hybrid Mamba/attention layer pattern (hybrid_override_pattern)",
    "layers_block_type": "hybrid layer block types (layers_block_type)",
    "attn_layer_indices": "hybrid attention/state layers (attn_layer_indices)",
    "attn_layer_period": "hybrid attention/state layers (attn_layer_period)",
    "mamba_d_state": "Mamba state layers (mamba_d_state)",
    "mamba_expand": "Mamba state layers (mamba_expand)",
    "ssm_state_size": "state-space layers (ssm_state_size)",
    "linear_num_key_heads": "linear-attention layers (linear_num_key_heads)",
    "linear_num_value_heads": "linear-attention layers (linear_num_value_heads)",
    "linear_key_head_dim": "linear-attention layers (linear_key_head_dim)",
    "linear_conv_kernel_dim": "linear-attention layers (linear_conv_kernel_dim)",
    "full_attention_interval": "hybrid linear/full attention (full_attention_interval)",
    "cross_attention_layers": "cross-attention layers (cross_attention_layers)",
    "altup_num_inputs": "AltUp / per-layer inputs (Gemma-3n)",
    "hidden_size_per_layer_input": "per-layer input embeddings (hidden_size_per_layer_input)",
    "laurel_rank": "LAuReL blocks (laurel_rank)",
    "zero_expert_num": "zero-computation experts (zero_expert_num)",
    "block_types": "heterogeneous block types (block_types)",
    "block_configs": "per-layer block configs (block_configs)",
}


# MLA fields in a family whose attention is not MLA
_MLA_FIELDS = ("kv_lora_rank", "q_lora_rank")


def scan(raw: Mapping[str, Any], *, mla: bool = False, allow: tuple[str, ...] = ()) -> None:
    """Raise Unsupported if the (text) config uses a feature outside the family formula.

    ``allow``: feature fields (or per-layer lists) the family adapter models itself (DSA: the
    ``index_*`` fields; Gemma-4: KV sharing, per-layer inputs; Hunyuan: uniform per-layer expert widths).
    """
    for name, feature in _FEATURE_FIELDS.items():
        if name in allow:
            continue
        value = raw.get(name)
        if value not in (None, False, 0, [], "", {}):
            raise Unsupported(f"{feature} is not modelled")
    for name in PER_LAYER_LISTS:
        if name not in allow and isinstance(raw.get(name), (list, tuple)):
            raise Unsupported(f"per-layer {name} (a list) is not modelled")
    if not mla:
        for name in _MLA_FIELDS:
            if raw.get(name):
                raise Unsupported(f"{name} (multi-head latent attention) in a family without MLA is not modelled")
