"""model_type -> adapter, and the model types we refuse with a reason.

Why an explicit list: a family is supported only when its adapter has been
checked parameter-for-parameter against the model code (and the meta-device
oracle where a reference config exists).  Everything else is ``unsupported``
-- never a number from a look-alike formula.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reportgen.arch.families import bamba, deepseek, exaone4, falcon_h1, gemma, glm4, glm4_moe, gpt_oss, jamba, kimi_linear, lfm2, llama, llama4, moe, multimodal, nemotron_h, olmo, phi, starcoder2, zamba2
from reportgen.arch.fields import REQUIRED_TEXT, Fields
from reportgen.arch.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class Adapter:
    build: Callable[[Fields, ModelSpec], None]
    mla: bool = False          # family uses multi-head latent attention (kv_lora_rank is expected)
    multimodal: bool = False   # composite config: text_config + vision_config
    # hybrids: fields the family models and validates itself (skipped by features.scan and
    # fields.prevalidate's generic limits), the fields a config must
    # state (nemotron_h derives the layer count from its pattern), a raw-config check run before
    # transformers parses it (which only warns about a pattern / layer-count mismatch)
    handles: tuple[str, ...] = ()
    required: tuple[str, ...] = REQUIRED_TEXT
    precheck: Callable[[Mapping[str, Any]], None] | None = None


ADAPTERS: dict[str, Adapter] = {
    # dense, llama-shaped
    "llama": Adapter(llama.build),
    "mistral": Adapter(llama.build),
    "qwen2": Adapter(llama.build),
    "qwen3": Adapter(llama.build),
    "granite": Adapter(llama.build),
    "seed_oss": Adapter(llama.build),
    "arcee": Adapter(llama.build),
    # gemma norms / sliding windows
    "gemma": Adapter(gemma.build),
    "gemma2": Adapter(gemma.build),
    "gemma3_text": Adapter(gemma.build),
    # post-norm, whole-projection q/k norms (vLLM olmo2.py)
    "olmo2": Adapter(olmo.build),
    "olmo3": Adapter(olmo.build),
    "exaone4": Adapter(exaone4.build),
    # GLM-4-0414: four norms, fused gate_up, partial rotary (vLLM glm4.py)
    "glm4": Adapter(glm4.build),
    # phi: LayerNorm + biases (phi), fused qkv / gate_up (phi3)
    "phi": Adapter(phi.build),
    "phi3": Adapter(phi.build),
    "starcoder2": Adapter(starcoder2.build),
    # mixture of experts with GQA attention
    "mixtral": Adapter(moe.build),
    "qwen2_moe": Adapter(moe.build),
    "qwen3_moe": Adapter(moe.build),
    "glm4_moe": Adapter(glm4_moe.build),
    "olmoe": Adapter(olmo.build_olmoe),
    "granitemoe": Adapter(moe.build_granitemoe),
    "phimoe": Adapter(moe.build_phimoe),
    "gpt_oss": Adapter(gpt_oss.build),
    "llama4_text": Adapter(llama4.build_text),
    # MLA
    "deepseek_v2": Adapter(deepseek.build, mla=True),
    "deepseek_v3": Adapter(deepseek.build, mla=True),
    # hybrids with Mamba-style state layers (arch/mixers.py)
    "nemotron_h": Adapter(nemotron_h.build, handles=("hybrid_override_pattern", "layers_block_type", "ssm_state_size"),
                          required=("hidden_size", "num_attention_heads", "vocab_size"),
                          precheck=nemotron_h.precheck),
    "bamba": Adapter(bamba.build_bamba, handles=bamba.HANDLES),
    "granitemoehybrid": Adapter(bamba.build_granitemoehybrid, handles=bamba.HANDLES + ("num_local_experts",)),
    "lfm2": Adapter(lfm2.build),
    "lfm2_moe": Adapter(lfm2.build_moe),
    "jamba": Adapter(jamba.build, handles=jamba.HANDLES, precheck=jamba.precheck),
    "falcon_h1": Adapter(falcon_h1.build, handles=falcon_h1.HANDLES),
    "zamba2": Adapter(zamba2.build, handles=zamba2.HANDLES, precheck=zamba2.precheck),
    "kimi_linear": Adapter(kimi_linear.build, mla=True, handles=kimi_linear.HANDLES, precheck=kimi_linear.precheck),
    # text + vision
    "gemma3": Adapter(multimodal.build, multimodal=True),
    "mistral3": Adapter(multimodal.build, multimodal=True),
    "llama4": Adapter(multimodal.build, multimodal=True),
}

_LINEAR = "linear-attention (Gated DeltaNet) layers"
UNSUPPORTED: dict[str, str] = {
    "qwen3_next": f"qwen3_next: hybrid {_LINEAR} interleaved with gated full attention are not modelled",
    "qwen3_5": f"qwen3_5: hybrid {_LINEAR} interleaved with full attention are not modelled",
    "qwen3_5_text": f"qwen3_5: hybrid {_LINEAR} interleaved with full attention are not modelled",
    "qwen3_5_moe": f"qwen3_5_moe: hybrid {_LINEAR} interleaved with full attention are not modelled",
    "qwen3_5_moe_text": f"qwen3_5_moe: hybrid {_LINEAR} interleaved with full attention are not modelled",
    "zamba": "zamba: Mamba state layers are not modelled",
    "mamba": "mamba: state-space layers are not modelled",
    "mamba2": "mamba2: state-space layers are not modelled",
    "olmo_hybrid": "olmo_hybrid: Gated DeltaNet linear-attention layers (OlmoHybridGatedDeltaNet) are not modelled",
    "bailing_hybrid": "bailing_hybrid: delta-attention linear layers (BailingHybridDeltaAttention) are not modelled",
    "minimax": "minimax: lightning (linear) attention layers are not modelled",
    "deepseek_v32": "deepseek_v32: DSA lightning-indexer sparse attention is not modelled",
    "glm_moe_dsa": "glm_moe_dsa: DSA lightning-indexer sparse attention is not modelled",
    "gemma3n": "gemma3n: KV sharing across layers, AltUp and per-layer embeddings are not modelled",
    "gemma3n_text": "gemma3n: KV sharing across layers, AltUp and per-layer embeddings are not modelled",
    "longcat_flash": "longcat_flash: zero-computation experts and dual attention blocks are not modelled",
    "recurrent_gemma": "recurrent_gemma: RG-LRU recurrent layers are not modelled",
    "rwkv": "rwkv: recurrent (linear attention) layers are not modelled",
    "mllama": "mllama: cross-attention vision layers are not modelled",
    # examined for exact support and refused (docs/architecture.md, "Examined and left unsupported")
    "smollm3": "smollm3: vLLM serves it through its Transformers backend (no native model file); that "
               "backend's sharding and rotary buffers are not modelled",
    "ministral": "ministral: MinistralForCausalLM has no native vLLM model (Transformers backend) and is not "
                 "modelled; Ministral-8B's own config (model_type mistral) is supported",
    "helium": "helium: HeliumForCausalLM has no native vLLM model (Transformers backend) and is not modelled",
    "cohere": "cohere: vLLM's commandr.py (always-tied head, TP-sharded per-head qk norms, rotary cache sized by "
              "model_max_length) could not be verified against the current vLLM source; not modelled",
    "cohere2": "cohere2: per-layer sliding windows and NoPE full layers in vLLM's commandr.py could not be "
               "verified against the current vLLM source; not modelled",
    "stablelm": "stablelm: vLLM's partial-rotary rule (rope_pct / partial_rotary_factor) could not be verified "
                "for transformers-5 configs, and qk_layernorm / parallel residual are not in vLLM; not modelled",
    "nemotron": "nemotron: only an early vLLM nemotron.py (rotary_percent) could be read; the partial-rotary "
                "cache of the current one is not verified; not modelled",
    "glm": "glm: vLLM serves GlmForCausalLM through its Llama code, whose o_proj bias follows attention_bias "
           "(transformers has none); not modelled",
}
