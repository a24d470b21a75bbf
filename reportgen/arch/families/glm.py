"""GLM-4 in Hugging Face format: glm (THUDM/glm-4-9b-hf, glm-4-9b-chat-hf, glm-edge).

vLLM ``vllm/model_executor/models/glm.py`` @466716c2: ``GlmForCausalLM(LlamaForCausalLM)`` (registry
``"GlmForCausalLM": ("glm", "GlmForCausalLM")``, ``registry.py`` @bf8e7624) sets
``hf_config.partial_rotary_factor = 0.5``, builds the Llama model (``llama.py`` @e06c9ba2) and then, per
layer, turns rotary NeoX style off and sets ``o_proj.bias = None`` -- the o_proj bias Llama created from
``attention_bias`` is dropped (the parameter leaves the module before the weights load, so nothing of it
stays allocated).  So vLLM holds exactly what transformers 5.24 ``modeling_glm.py`` has:

* q/k/v bias = ``attention_bias`` (class default true), ``o_proj`` without bias;
* ``head_dim``: the config's (class default 128), else ``hidden_size // num_attention_heads``;
* fused ``gate_up_proj`` ``(2I, H)`` in the checkpoint (Llama's ``load_weights`` finds neither
  ``.gate_proj`` nor ``.up_proj`` in the name and loads it whole into its MergedColumnParallelLinear):
  two COLUMN halves; ``down_proj`` ROW; no MLP biases;
* RMSNorms ``input_layernorm``, ``post_attention_layernorm``, final ``norm``; tie flag honoured;
* rotary: ``head_dim * 0.5`` wide (transformers' config class defaults ``partial_rotary_factor`` to 0.5 in
  ``rope_parameters``; vLLM's glm.py forces 0.5) -- another factor: 0.32 on only (below);
* KV as Llama: every layer full unless the config has a ``sliding_window`` (``kv.attention_layers``).

Refused on vLLM 0.31 and older, priced from 0.32 as transformers' class (``served_from``), where the Llama
code of the native glm.py reads a field transformers' GLM ignores: ``bias`` (turns q/k/v
biases on), ``qkv_bias`` (replaces ``attention_bias`` for q/k/v), ``mlp_bias`` (MLP biases), and a
``hidden_act`` other than silu (``LlamaMLP`` raises).

Per vLLM release: ``glm.py`` in 0.10 - 0.31; the Transformers backend from 0.32 (vllm 0.32.0 sdist
registry.py:714; GlmConfig's plan: gate_up_proj colwise_gather_output, down_proj rowwise_split_input -- a
column / row split of the same bytes a rank).  From that release vLLM instantiates the transformers class
itself (vllm sdist ``model_executor/models/transformers/``): the same per-rank shards (fused QKV with a
rowwise output projection, GLU-fused or ``base_model_tp_plan`` MLPs, replicated norms) and KV geometry, but no
``get_rope`` cos_sin_cache -- ``estimate/served.py`` ``spec_for_version`` replaces ``rope_caches`` by the
rotary module's fp32 ``inv_freq`` buffers for those releases (``estimate/tf_backend.py``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention, rotary_dim
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    bias = f.flag("attention_bias", True)
    native_only = []     # what vLLM's native glm.py (0.10 - 0.31) builds differently from transformers' class
    if f.raw.get("bias") and not bias:
        native_only.append("glm with bias=true: vLLM's Llama code loads q/k/v biases, transformers' GLM ignores it")
    if "qkv_bias" in f.raw and f.raw["qkv_bias"] != bias:
        native_only.append("glm with qkv_bias: vLLM's Llama code uses it for q/k/v, transformers' GLM ignores it")
    if f.raw.get("mlp_bias"):
        native_only.append("glm with mlp_bias=true: vLLM's LlamaMLP loads MLP biases, transformers' GLM has none")
    act = f.get("hidden_act")
    if act != "silu":
        native_only.append(f"glm with hidden_act {act!r}: vLLM's LlamaMLP accepts silu only")
    if rotary_dim(f, g.head_dim) != int(g.head_dim * 0.5):
        native_only.append("glm with a partial_rotary_factor other than 0.5: vLLM's glm.py forces 0.5")
    inter = f.int("intermediate_size")

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP, fused=True)

    decoder_stack(spec, f, g, attention=gqa_attention(g, qkv_bias=bias), mlp=mlp)
    if native_only:
        # transformers' class, which vLLM builds from 0.32 on (Transformers backend; vllm 0.32.0 sdist registry.py:714)
        spec.served_from = ((0, 32), "; ".join(native_only))
