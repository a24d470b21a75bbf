"""Step-3.7-Flash configs for the tests (not collected): the shipped flat config in the nested form vLLM's
``Step3p7ForConditionalGeneration`` reads, and the helper that adds vLLM's remote-code field names."""

from __future__ import annotations

import copy
import json
from pathlib import Path

DATA = Path(__file__).parent / "data"


def vllm_fields(cfg: dict) -> dict:
    """``cfg`` (a nested step3p7 config in transformers' names) plus the remote-code names vLLM reads, written to
    agree with transformers: text ``num_attention_groups`` / ``moe_num_experts`` / ``moe_top_k`` /
    ``use_head_wise_attn_gate`` / ``moe_layers_enum``; vision ``width`` / ``layers`` / ``heads`` / ``ls_init_value``
    and the PerceptionEncoder switches."""
    cfg = copy.deepcopy(cfg)
    t, v = cfg["text_config"], cfg["vision_config"]
    t.update(num_attention_groups=t["num_key_value_heads"], moe_num_experts=t["n_routed_experts"],
             moe_top_k=t["num_experts_per_tok"], use_head_wise_attn_gate=True,
             moe_layers_enum=",".join(str(i) for i, k in enumerate(t["mlp_layer_types"]) if k == "sparse"))
    v.update(width=v["hidden_size"], layers=v["num_hidden_layers"], heads=v["num_attention_heads"],
             ls_init_value=v.get("layer_scale_init_value", 0.1), use_ln_pre=True, use_ln_post=False,
             use_abs_posemb=True, use_cls_token=False, use_rope2d=True)
    return cfg


def shipped_flat() -> dict:
    return json.loads((DATA / "configs_2026" / "stepfun-ai--Step-3.7-Flash.json").read_text())


def shipped_nested() -> dict:
    """The shipped flat config's text fields as a ``text_config`` (vLLM's names), with the class-default tower."""
    flat = shipped_flat()
    n = flat["num_hidden_layers"]
    moe = [i >= flat["first_k_dense_replace"] for i in range(n)]
    text = {
        "hidden_size": flat["hidden_size"], "intermediate_size": flat["intermediate_size"],
        "num_hidden_layers": n, "num_attention_heads": flat["num_attention_heads"],
        "num_key_value_heads": flat["num_key_value_heads"], "head_dim": flat["head_dim"],
        "vocab_size": flat["vocab_size"], "max_position_embeddings": flat["max_position_embeddings"],
        "sliding_window": flat["sliding_window"], "layer_types": flat["layer_types"],
        "n_routed_experts": flat["num_experts"], "num_experts_per_tok": flat["num_experts_per_tok"],
        "moe_intermediate_size": flat["moe_intermediate_size"], "share_expert_dim": flat["share_expert_dim"],
        "mlp_layer_types": ["sparse" if m else "dense" for m in moe],
        "moe_router_scaling_factor": flat["moe_router_scaling_factor"], "tie_word_embeddings": False,
    }
    vision = {"hidden_size": 1536, "num_hidden_layers": 47, "num_attention_heads": 16, "patch_size": 14,
              "image_size": 728, "mlp_ratio": 8960 / 1536, "layer_scale_init_value": 0.1}
    return vllm_fields({"model_type": "step3p7", "architectures": ["Step3p7ForConditionalGeneration"],
                        "text_config": text, "vision_config": vision})
