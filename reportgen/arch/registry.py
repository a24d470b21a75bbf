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

from reportgen.arch.families import (apertus, bamba, cohere, deepseek, deepseek_dsa, deepseek_v4, dots1, ernie,
                                     exaone4, falcon_h1, gemma, gemma3n, gemma4, glm, glm4, glm4_moe, glm4_moe_lite, glm4v,
                                     gpt_oss, hunyuan, idefics3, internvl, jamba, kimi_k25, kimi_linear, lfm2, llama,
                                     llama4, llava, llava_onevision, longcat_flash, mimo_v2_flash, minimax, minimax_m2,
                                     minimax_m3, minimax_m3_vl, mistral4,
                                     moe, multimodal, nemotron, nemotron_h, olmo, olmo_hybrid, phi, qwen3_next, qwen_vl,
                                     stablelm, starcoder2, step3p7, transformers_backend, zamba2)
from reportgen.arch.families import bailing_hybrid, exaone_moe, kimi_vl, mamba, mllama, phi4_multimodal
from reportgen.arch.fields import REQUIRED_TEXT, Fields
from reportgen.arch.spec import ModelSpec


@dataclass(frozen=True, slots=True)
class Adapter:
    build: Callable[[Fields, ModelSpec], None]
    mla: bool = False          # family uses multi-head latent attention (kv_lora_rank is expected)
    multimodal: bool = False   # composite config: text_config + vision_config
    allow: tuple[str, ...] = ()  # feature fields (features.py) this adapter models itself
    # hybrids: fields the family models and validates itself (skipped by features.scan and
    # fields.prevalidate's generic limits), the fields a config must
    # state (nemotron_h derives the layer count from its pattern), a raw-config check run before
    # transformers parses it (which only warns about a pattern / layer-count mismatch)
    handles: tuple[str, ...] = ()
    required: tuple[str, ...] = REQUIRED_TEXT
    precheck: Callable[[Mapping[str, Any]], None] | None = None
    modelled: tuple[str, ...] = ()  # hybrid-layer config fields the adapter models (features.scan skips them)
    # composites whose config shape differs from gemma3/mistral3/llama4 (flat text fields, optional
    # vision_config): config -> raw text fields (validates), and the parser; None = multimodal.py's
    prepare: Callable | None = None
    parse: Callable | None = None


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
    # Gemma 3n: AltUp, LAuReL, per-layer embeddings, KV-shared layers (vLLM gemma3n.py)
    "gemma3n_text": Adapter(gemma3n.build_text, allow=gemma3n.FEATURES),
    "gemma4": Adapter(gemma4.build, multimodal=True, allow=gemma4.FEATURES, prepare=gemma4.prepare),
    # Gemma 3n composite: timm vision tower (from reportgen/arch/timm_towers.json), audio conformer (vLLM gemma3n_mm.py)
    "gemma3n": Adapter(gemma3n.build, multimodal=True, allow=gemma3n.FEATURES, prepare=gemma3n.prepare,
                       parse=gemma3n.parse),
    # post-norm, whole-projection q/k norms (vLLM olmo2.py)
    "olmo2": Adapter(olmo.build),
    "olmo3": Adapter(olmo.build),
    "exaone4": Adapter(exaone4.build),
    # GLM-4 (HF format): vLLM's glm.py = its Llama code with the o_proj bias dropped, half rotary
    "glm": Adapter(glm.build),
    # GLM-4-0414: four norms, fused gate_up, partial rotary (vLLM glm4.py)
    "glm4": Adapter(glm4.build),
    # phi: LayerNorm + biases (phi), fused qkv / gate_up (phi3)
    "phi": Adapter(phi.build),
    "phi3": Adapter(phi.build),
    "starcoder2": Adapter(starcoder2.build),
    # LayerNorm decoders with partial rotary: stablelm (vLLM stablelm.py), nemotron (vLLM nemotron.py, squared ReLU)
    "stablelm": Adapter(stablelm.build),
    "nemotron": Adapter(nemotron.build),
    # served by vLLM's Transformers backend only (registry.py @055e47c2)
    "smollm3": Adapter(transformers_backend.build),
    "helium": Adapter(transformers_backend.build),
    "ministral": Adapter(transformers_backend.build),
    "olmo": Adapter(transformers_backend.build),
    # Command-R / Command-A: parallel blocks, always-tied head; cohere2 per-layer windows (vLLM commandr.py)
    "cohere": Adapter(cohere.build),
    "cohere2": Adapter(cohere.build_cohere2),
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
    "cohere2_moe": Adapter(cohere.build_moe),
    "exaone_moe": Adapter(exaone_moe.build),
    # sliding / full layers of different K/V head counts, sinks, sigmoid MoE (vLLM mimo_v2.py)
    "mimo_v2_flash": Adapter(mimo_v2_flash.build, handles=("moe_layer_freq",)),
    "llama4_text": Adapter(llama4.build_text),
    # MLA
    "deepseek_v2": Adapter(deepseek.build, mla=True),
    "deepseek_v3": Adapter(deepseek.build, mla=True),
    "glm4_moe_lite": Adapter(glm4_moe_lite.build, mla=True),
    # Mistral Small 4: vLLM's Mistral-format path builds DeepseekV3ForCausalLM (mistral_large_3.py)
    "mistral4": Adapter(mistral4.build, mla=True),
    # two MLA attentions + two MLPs + a zero-expert MoE per layer (vLLM longcat_flash.py)
    "longcat_flash": Adapter(longcat_flash.build, mla=True, allow=("zero_expert_num",)),
    # MLA + DSA lightning indexer (vLLM deepseek_v2.py)
    "deepseek_v32": Adapter(deepseek_dsa.build, mla=True, allow=deepseek_dsa.DSA_FIELDS),
    "glm_moe_dsa": Adapter(deepseek_dsa.build, mla=True, allow=deepseek_dsa.DSA_FIELDS),
    # compressed / sliding MLA, mHC, hash MoE (vLLM deepseek_v4.py); KV pool in estimate/compressed.py
    "deepseek_v4": Adapter(deepseek_v4.build, mla=True, allow=deepseek_v4.FIELDS),
    # MiniMax-M3 (model_type minimax_m3 parsed as transformers' minimax_m3_vl_text): GQA + lightning-indexer cache
    "minimax_m3_vl_text": Adapter(minimax_m3.build, handles=("moe_layer_freq",),
                                  allow=("index_head_dim", "index_n_heads")),
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
    # pure state-space models, attention-free (vLLM mamba.py / mamba2.py; families/mamba.py)
    "mamba": Adapter(mamba.build_mamba, handles=mamba.HANDLES, required=mamba.REQUIRED),
    "falcon_mamba": Adapter(mamba.build_mamba, handles=mamba.HANDLES, required=mamba.REQUIRED),
    "mamba2": Adapter(mamba.build_mamba2, handles=mamba.HANDLES, required=mamba.REQUIRED),
    # MiniMax-Text-01 / MiniMax-M1: lightning (linear) attention + softmax GQA + MoE (vLLM minimax_text_01.py,
    # served until v0.23.0: estimate/served.py refuses it on later releases)
    "minimax": Adapter(minimax.build),
    "kimi_linear": Adapter(kimi_linear.build, mla=True, handles=kimi_linear.HANDLES, precheck=kimi_linear.precheck),
    # Ling-3 / Ring-3: KDA (no LoRA gates) + gated MLA + Bailing MoE, as vLLM bailing_moe_v3.py builds it
    "bailing_hybrid": Adapter(bailing_hybrid.build, mla=True, handles=bailing_hybrid.HANDLES,
                              precheck=bailing_hybrid.precheck),
    # hybrids: Gated DeltaNet state layers + gated full attention (vLLM qwen3_next.py / qwen3_5.py)
    "qwen3_next": Adapter(qwen3_next.build, modelled=qwen3_next.MODELLED_FIELDS),
    "qwen3_5_text": Adapter(qwen3_next.build, modelled=qwen3_next.MODELLED_FIELDS),
    "qwen3_5_moe_text": Adapter(qwen3_next.build, modelled=qwen3_next.MODELLED_FIELDS),
    # Gated DeltaNet + OLMo-3 attention (vLLM olmo_hybrid.py)
    "olmo_hybrid": Adapter(olmo_hybrid.build, modelled=olmo_hybrid.MODELLED_FIELDS, precheck=olmo_hybrid.precheck),
    # text + vision
    "gemma3": Adapter(multimodal.build, multimodal=True),
    "mistral3": Adapter(multimodal.build, multimodal=True),
    "llama4": Adapter(multimodal.build, multimodal=True),
    "kimi_k25": Adapter(kimi_k25.build, mla=True, multimodal=True),
    # MiniMax-M3 as published: the minimax_m3 text stack + its vision tower (families/minimax_m3_vl.py)
    "minimax_m3_vl": Adapter(minimax_m3_vl.build, multimodal=True, prepare=minimax_m3_vl.prepare,
                             allow=("index_head_dim", "index_n_heads") + minimax_m3_vl.TEXT_HANDLES),
    "step3p7": Adapter(step3p7.build, multimodal=True, prepare=step3p7.prepare),
    # no transformers class: vLLM's own KimiVLConfig reading (DeepseekV2Config text, MoonViT) (families/kimi_vl.py)
    "kimi_vl": Adapter(kimi_vl.build, mla=True, multimodal=True, prepare=kimi_vl.prepare, parse=kimi_vl.parse),
    # Qwen vision-language composites (families/qwen_vl.py, towers_qwen.py)
    **{kind: Adapter(qwen_vl.build, multimodal=True, prepare=qwen_vl.prepare, parse=qwen_vl.parse,
                     allow=qwen_vl.ALLOW.get(kind, ()))
       for kind in qwen_vl.PARTS},
    # LLaVA with a CLIP tower (families/llava.py)
    "llava": Adapter(llava.build, multimodal=True, prepare=llava.prepare, parse=llava.parse),
    "llava_next": Adapter(llava.build, multimodal=True, prepare=llava.prepare, parse=llava.parse),
    # LLaVA-OneVision: SigLIP tower cut at the feature layer (families/llava_onevision.py)
    "llava_onevision": Adapter(llava_onevision.build, multimodal=True, prepare=llava_onevision.prepare,
                               parse=llava.parse),
    # InternVL, Hugging Face format (families/internvl.py; vLLM serves it as InternS1)
    "internvl": Adapter(internvl.build, multimodal=True, prepare=internvl.prepare, parse=llava.parse),
    # Idefics3 / SmolVLM (families/idefics3.py)
    "idefics3": Adapter(idefics3.build, multimodal=True, prepare=idefics3.prepare, parse=idefics3.parse),
    "smolvlm": Adapter(idefics3.build, multimodal=True, prepare=idefics3.prepare, parse=idefics3.parse),
    # GLM-4.1V / GLM-4.5V (families/glm4v.py)
    "glm4v": Adapter(glm4v.build, multimodal=True, prepare=glm4v.prepare, parse=glm4v.parse),
    "glm4v_moe": Adapter(glm4v.build, multimodal=True, prepare=glm4v.prepare, parse=glm4v.parse),
    # Llama-3.2-Vision: weights exact, KV refused (cross-attention layers cache image tokens; families/mllama.py)
    "mllama": Adapter(mllama.build, multimodal=True, prepare=mllama.prepare, allow=("cross_attention_layers",)),
    # Phi-4-multimodal, HF format (families/phi4_multimodal.py): a flat config (text fields at the top level)
    # parsed by its own class; phi3 stack + Idefics2 image tower + conformer audio tower + three projectors
    "phi4_multimodal": Adapter(phi4_multimodal.build, precheck=phi4_multimodal.precheck),
}

# The vLLM model file each supported model_type is priced from -- README's supported-architecture table
# (scripts/readme_tables.py).  A bare name is vllm/model_executor/models/<name>; the family module named in
# ADAPTERS cites the commit it was read at.  "transformers/" = vLLM's Transformers backend
# (vllm/model_executor/models/transformers/), which builds the transformers class itself.
_BACKEND = "transformers/ (Transformers backend)"
VLLM_FILES: dict[str, str] = {
    "apertus": "apertus.py", "arcee": "arcee.py", "bailing_hybrid": "bailing_moe_v3.py", "bamba": "bamba.py",
    "cohere": "commandr.py", "cohere2": "commandr.py", "cohere2_moe": "cohere2_moe.py",
    "deepseek_v2": "deepseek_v2.py", "deepseek_v3": "deepseek_v2.py", "deepseek_v32": "deepseek_v2.py",
    "deepseek_v4": "deepseek_v4.py", "dots1": "dots1.py", "ernie4_5": "ernie45.py", "ernie4_5_moe": "ernie45_moe.py",
    "exaone": "exaone.py", "exaone4": "exaone4.py", "exaone_moe": "exaone_moe.py", "falcon_h1": "falcon_h1.py",
    "falcon_mamba": "mamba.py", "gemma": "gemma.py", "gemma2": "gemma2.py", "gemma3": "gemma3_mm.py",
    "gemma3_text": "gemma3.py", "gemma3n": "gemma3n_mm.py", "gemma3n_text": "gemma3n.py", "gemma4": "gemma4_mm.py",
    "gemma4_text": "gemma4.py", "glm": "glm.py", "glm4": "glm4.py", "glm4_moe": "glm4_moe.py",
    "glm4_moe_lite": "glm4_moe_lite.py", "glm4v": "glm4_1v.py", "glm4v_moe": "glm4_1v.py",
    "glm_moe_dsa": "deepseek_v2.py", "gpt_oss": "gpt_oss.py", "granite": "granite.py", "granitemoe": "granitemoe.py",
    "granitemoehybrid": "granitemoehybrid.py", "helium": _BACKEND, "hunyuan_v1_dense": "hunyuan_v1.py",
    "hunyuan_v1_moe": "hunyuan_v1.py", "idefics3": "idefics3.py", "internvl": "interns1.py", "jamba": "jamba.py",
    "kimi_k25": "kimi_k25.py", "kimi_linear": "kimi_linear.py", "kimi_vl": "kimi_vl.py", "lfm2": "lfm2.py",
    "lfm2_moe": "lfm2_moe.py", "llama": "llama.py", "llama4": "mllama4.py", "llama4_text": "llama4.py",
    "llava": "llava.py", "llava_next": "llava_next.py", "llava_onevision": "llava_onevision.py",
    "longcat_flash": "longcat_flash.py", "mamba": "mamba.py", "mamba2": "mamba2.py", "mimo_v2_flash": "mimo_v2.py",
    "minimax": "minimax_text_01.py", "minimax_m2": "minimax_m2.py",
    "minimax_m3_vl": "vllm/models/minimax_m3/nvidia/model.py + common/vision_tower.py",
    "minimax_m3_vl_text": "vllm/models/minimax_m3/nvidia/model.py", "ministral": _BACKEND,
    "ministral3": "mistral.py", "mistral": "mistral.py", "mistral3": "mistral3.py",
    "mistral4": "mistral_large_3.py (Mistral-format path)", "mixtral": "mixtral.py", "mllama": "mllama.py",
    "nemotron": "nemotron.py", "nemotron_h": "nemotron_h.py", "olmo": _BACKEND, "olmo2": "olmo2.py",
    "olmo3": "olmo2.py", "olmo_hybrid": "olmo_hybrid.py", "olmoe": "olmoe.py", "phi": "phi.py", "phi3": "phi3.py",
    "phi4_multimodal": "phi4_multimodal.py", "phimoe": "phimoe.py", "qwen2": "qwen2.py", "qwen2_5_vl": "qwen2_5_vl.py",
    "qwen2_moe": "qwen2_moe.py", "qwen2_vl": "qwen2_vl.py", "qwen3": "qwen3.py", "qwen3_5": "qwen3_5.py",
    "qwen3_5_moe": "qwen3_5.py", "qwen3_5_moe_text": "qwen3_5.py", "qwen3_5_text": "qwen3_5.py",
    "qwen3_moe": "qwen3_moe.py", "qwen3_next": "qwen3_next.py", "qwen3_vl": "qwen3_vl.py",
    "qwen3_vl_moe": "qwen3_vl_moe.py", "seed_oss": "seed_oss.py", "smollm3": _BACKEND, "smolvlm": "smolvlm.py",
    "stablelm": "stablelm.py", "starcoder2": "starcoder2.py", "step3p7": "step3p7.py", "zamba2": "zamba2.py",
}

# model types whose weights are modelled exactly (the spec keeps its tensors and counts) but whose KV cache is
# not: the adapter sets this reason as ``unsupported_reason``, so no KV or serving figure is ever produced
WEIGHTS_ONLY: dict[str, str] = {"mllama": mllama.KV_REASON}

UNSUPPORTED: dict[str, str] = {
    # transformers 5.24's MistralLarge4 text model: DSA indexer, NoPE layers, cross-layer latent sharing
    "mistral_large4": "mistral_large4: no vLLM model serves it (vLLM's registry has MistralLarge3ForCausalLM = "
                      "DeepseekV3ForCausalLM, mistral_large_3.py @0bb55d60, and no Mistral-Large-4 class; "
                      "configs/mistral.py @01da88c5 maps no DSA indexer, NoPE layers or KV-source layers), while "
                      "transformers' model has a lightning indexer per layer (indexer_types), NoPE layers "
                      "(no_rope_layers), layers that reuse an earlier layer's latent cache (kv_source_layers) and "
                      "learned rotary / softmax-scaling parameters; not modelled",
    # issue 12 asks for Kimi K3 "when transformers can build it": the pinned transformers cannot
    "kimi_k3": "kimi_k3: transformers 5.25.0 (constraints.txt) has no kimi_k3 config or model class, so no native "
               "class builds the model on the meta device and reportgen counts no parameters through a "
               "checkpoint's own (trust_remote_code) modeling code; not modelled until transformers ships the class",
    # not served by vLLM: no native model in vLLM's registry (registry.py @055e47c2 _TEXT_GENERATION_MODELS,
    # _TRANSFORMERS_SUPPORTED_MODELS, and never listed in _PREVIOUSLY_SUPPORTED_MODELS) -- tests/test_arch_families.py
    "zamba": "zamba: vLLM does not serve Zamba (v1): its registry (registry.py @055e47c2) has Zamba2ForCausalLM "
             "only; ZambaForCausalLM is not Transformers-backend compatible before transformers 5.25 "
             "(is_backend_compatible() false in 5.24), so vLLM refuses the architecture, and from 5.25 it claims "
             "compatibility, but that backend (transformers/base.py @810fb5d6 create_attention_instances) "
             "allocates a KV-cache Attention for every decoder layer and keeps no per-sequence state for the "
             "Mamba blocks -- vLLM lacks recurrent-state support for it, so no serving setup to price",
    "rwkv": "rwkv: vLLM does not serve RWKV: no RwkvForCausalLM in its registry (registry.py @055e47c2) and "
            "the transformers class is not Transformers-backend compatible (is_backend_compatible() false in "
            "transformers 5.24), so vLLM refuses the architecture",
    "recurrent_gemma": "recurrent_gemma: vLLM has no RecurrentGemma model (registry.py @055e47c2); the "
                       "transformers class claims Transformers-backend compatibility, but that backend "
                       "(transformers/base.py @810fb5d6 create_attention_instances) allocates a KV-cache "
                       "Attention for every decoder layer and keeps no per-sequence state for the RG-LRU / "
                       "conv1d blocks (transformers holds it on the modules) -- vLLM lacks recurrent-state "
                       "support for it, so no serving setup to price",
}
