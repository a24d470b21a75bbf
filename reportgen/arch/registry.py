"""model_type -> adapter, and the model types we refuse with a reason.

Why an explicit list: a family is supported only when its adapter has been
checked parameter-for-parameter against the model code (and the meta-device
oracle where a reference config exists).  Everything else is ``unsupported``
-- never a number from a look-alike formula.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reportgen.arch.families import (deepseek, exaone4, gemma, glm4, glm4_moe, gpt_oss, glm4v, idefics3, llama, llama4,
                                     moe, multimodal, llava, olmo, phi, qwen_vl, starcoder2)
from reportgen.arch.fields import Fields
from reportgen.arch.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class Adapter:
    build: Callable[[Fields, ModelSpec], None]
    mla: bool = False          # family uses multi-head latent attention (kv_lora_rank is expected)
    multimodal: bool = False   # composite config: text_config + vision_config
    # composites whose config shape differs from gemma3/mistral3/llama4 (flat text fields, optional
    # vision_config): config -> raw text fields (validates), and the parser; None = multimodal.py's
    prepare: Callable | None = None
    parse: Callable | None = None


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
    # text + vision
    "gemma3": Adapter(multimodal.build, multimodal=True),
    "mistral3": Adapter(multimodal.build, multimodal=True),
    "llama4": Adapter(multimodal.build, multimodal=True),
    # Qwen vision-language composites (families/qwen_vl.py, towers_qwen.py)
    **{kind: Adapter(qwen_vl.build, multimodal=True, prepare=qwen_vl.prepare, parse=qwen_vl.parse)
       for kind in qwen_vl.PARTS},
    # LLaVA with a CLIP tower (families/llava.py)
    "llava": Adapter(llava.build, multimodal=True, prepare=llava.prepare, parse=llava.parse),
    "llava_next": Adapter(llava.build, multimodal=True, prepare=llava.prepare, parse=llava.parse),
    # Idefics3 / SmolVLM (families/idefics3.py)
    "idefics3": Adapter(idefics3.build, multimodal=True, prepare=idefics3.prepare, parse=idefics3.parse),
    "smolvlm": Adapter(idefics3.build, multimodal=True, prepare=idefics3.prepare, parse=idefics3.parse),
    # GLM-4.1V / GLM-4.5V (families/glm4v.py)
    "glm4v": Adapter(glm4v.build, multimodal=True, prepare=glm4v.prepare, parse=glm4v.parse),
    "glm4v_moe": Adapter(glm4v.build, multimodal=True, prepare=glm4v.prepare, parse=glm4v.parse),
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
    # vLLM PR #24907 (merged 2025-09-15) removed V0 encoder-decoder support and with it Mllama; PR #24961 lists
    # MllamaForConditionalGeneration among _PREVIOUSLY_SUPPORTED_MODELS (last served by v0.10.2, V0 engine)
    "mllama": "mllama: vLLM V1 does not serve Llama-3.2-Vision (its cross-attention encoder-decoder model was "
              "removed with the V0 engine after v0.10.2, vLLM PR #24907); not modelled",
    # multimodal composites examined for issue 13 and not modelled yet (docs/architecture.md)
    "kimi_k25": "kimi_k25: the MoonViT tower is built by vLLM from its own config fields (kimi_k25_vit.py: vt_* "
                "sizes, a head-count rule for data-parallel ViT) that transformers' class does not read; not modelled",
    "kimi_vl": "kimi_vl: no transformers config class (remote code only) and the MoonViT tower is not modelled",
    "phi4_multimodal": "phi4_multimodal: image and conformer audio towers with per-modality LoRA adapters "
                       "(vLLM phi4mm.py) are not modelled",
    "internvl": "internvl: vLLM's sharding of the HF-format InternVL tower and projector was not verified; "
                "not modelled",
    "llava_onevision": "llava_onevision: SigLIP tower (vLLM builds it up to the feature layer; head and post-norm "
                       "rules for SigLIP not verified); not modelled",
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
