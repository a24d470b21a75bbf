"""model_type -> adapter, and the model types we refuse with a reason.

Why an explicit list: a family is supported only when its adapter has been
checked parameter-for-parameter against the model code (and the meta-device
oracle where a reference config exists).  Everything else is ``unsupported``
-- never a number from a look-alike formula.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reportgen.arch.families import apertus, cohere, deepseek, dots1, ernie, hunyuan, exaone4, gemma, gemma4, glm4, glm4_moe, gpt_oss, llama, llama4, minimax_m2, moe, multimodal, olmo, phi, starcoder2
from reportgen.arch.fields import Fields
from reportgen.arch.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class Adapter:
    build: Callable[[Fields, ModelSpec], None]
    mla: bool = False          # family uses multi-head latent attention (kv_lora_rank is expected)
    multimodal: bool = False   # composite config: text_config + vision_config
    allow: tuple[str, ...] = ()  # feature fields (features.py) this family models itself


ADAPTERS: dict[str, Adapter] = {
    # dense, llama-shaped
    "llama": Adapter(llama.build),
    "mistral": Adapter(llama.build),
    "ministral3": Adapter(llama.build),
    "ernie4_5": Adapter(llama.build),
    "exaone": Adapter(llama.build),
    "qwen2": Adapter(llama.build),
    "qwen3": Adapter(llama.build),
    "granite": Adapter(llama.build),
    "seed_oss": Adapter(llama.build),
    "arcee": Adapter(llama.build),
    "apertus": Adapter(apertus.build),
    # gemma norms / sliding windows
    "gemma": Adapter(gemma.build),
    "gemma2": Adapter(gemma.build),
    "gemma3_text": Adapter(gemma.build),
    # Gemma 4: per-layer head sizes, KV-shared layers, per-layer embeddings (vLLM gemma4.py)
    "gemma4_text": Adapter(gemma4.build_text, allow=gemma4.FEATURES),
    "gemma4": Adapter(gemma4.build, multimodal=True, allow=gemma4.FEATURES),
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
    # Command-R: parallel blocks, always-tied head (vLLM commandr.py)
    "cohere": Adapter(cohere.build),
    # mixture of experts with GQA attention
    "mixtral": Adapter(moe.build),
    "qwen2_moe": Adapter(moe.build),
    "qwen3_moe": Adapter(moe.build),
    "glm4_moe": Adapter(glm4_moe.build),
    "olmoe": Adapter(olmo.build_olmoe),
    "granitemoe": Adapter(moe.build_granitemoe),
    "phimoe": Adapter(moe.build_phimoe),
    "gpt_oss": Adapter(gpt_oss.build),
    "dots1": Adapter(dots1.build),
    "ernie4_5_moe": Adapter(ernie.build_moe),
    "hunyuan_v1_dense": Adapter(hunyuan.build),
    "hunyuan_v1_moe": Adapter(hunyuan.build, allow=("moe_intermediate_size",)),
    "minimax_m2": Adapter(minimax_m2.build),
    "llama4_text": Adapter(llama4.build_text),
    # MLA
    "deepseek_v2": Adapter(deepseek.build, mla=True),
    "deepseek_v3": Adapter(deepseek.build, mla=True),
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
    "nemotron_h": "nemotron_h: hybrid Mamba-2 state layers (and MLP-only layers) are not modelled",
    "jamba": "jamba: Mamba state layers are not modelled",
    "bamba": "bamba: Mamba-2 state layers are not modelled",
    "falcon_h1": "falcon_h1: parallel Mamba-2 state mixers are not modelled",
    "granitemoehybrid": "granitemoehybrid: Mamba-2 state layers are not modelled",
    "zamba": "zamba: Mamba state layers are not modelled",
    "zamba2": "zamba2: Mamba-2 state layers are not modelled",
    "mamba": "mamba: state-space layers are not modelled",
    "mamba2": "mamba2: state-space layers are not modelled",
    "kimi_linear": "kimi_linear: Kimi Delta Attention linear layers are not modelled",
    "mistral4": "mistral4: a multi-head-latent-attention MoE (kv_lora_rank); its vLLM model file was not "
                "verified in this work; not modelled",
    "mistral_large4": "mistral_large4: a multi-head-latent-attention MoE (kv_lora_rank); its vLLM model file "
                      "was not verified in this work; not modelled",
    "step3p7": "step3p7: vLLM's step3p7.py builds a PerceptionEncoder vision tower (step_vl.py, its own config "
               "fields) and the step3p5 language model (per-layer sliding-window head counts, head-wise attention "
               "gates, shared + routed experts, MTP layers); neither is modelled in this work",
    "minimax_m3": "minimax_m3: not in transformers 5.24 (only the minimax_m3_vl composite), and its "
                  "block-sparse indexed attention (sparse_attention_config), dense first layers and shared "
                  "expert do not map onto vLLM's minimax_m2 maths; not modelled",
    "minimax": "minimax: lightning (linear) attention layers are not modelled",
    "lfm2": "lfm2: short-convolution state layers are not modelled",
    "lfm2_moe": "lfm2_moe: short-convolution state layers are not modelled",
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
    "cohere2": "cohere2: the vLLM commandr.py versions readable in this work predate Cohere2 (per-layer sliding "
               "windows, NoPE full layers); not modelled",
    "stablelm": "stablelm: vLLM's partial-rotary rule (rope_pct / partial_rotary_factor) could not be verified "
                "for transformers-5 configs, and qk_layernorm / parallel residual are not in vLLM; not modelled",
    "nemotron": "nemotron: only an early vLLM nemotron.py (rotary_percent) could be read; the partial-rotary "
                "cache of the current one is not verified; not modelled",
    "glm": "glm: vLLM serves GlmForCausalLM through its Llama code, whose o_proj bias follows attention_bias "
           "(transformers has none); not modelled",
}
