"""Models vLLM serves only through its Transformers backend: smollm3, helium, ministral, olmo (OLMo-1).

vLLM ``vllm/model_executor/models/registry.py`` @055e47c2 has no native model file for
``SmolLM3ForCausalLM`` or ``OlmoForCausalLM`` (``_TRANSFORMERS_SUPPORTED_MODELS`` ->
``TransformersForCausalLM``);
``HeliumForCausalLM`` / ``MinistralForCausalLM`` are in no list at all and reach the same backend through
``_ModelRegistry._try_resolve_transformers`` (``model_impl="auto"``: the class exists in transformers and
``is_backend_compatible()`` -- true for all three in transformers 5.24).  vLLM builds the transformers
class itself and swaps its layers.  Read from vLLM ``vllm/model_executor/models/transformers/base.py`` and
``utils.py`` @055e47c2, ``fusers/qkv.py`` @05cce93f and ``causal.py`` @0564ab2e (the stored versions
nearest that commit):

* ``Base.recursive_replace``: an attention module whose ``q(x), k(x), v(x)`` fuse (``QKVFuser``)
  becomes one ``QKVParallelLinear`` (query heads split by TP, KV heads split or replicated when TP
  exceeds them -- the native layout) and its output projection ``RowParallelLinear`` ("we know it
  must be rowwise"); the gated MLP fuses into ``MergedColumnParallelLinear`` gate/up; any other
  ``nn.Linear`` takes its style from the config class's ``base_model_tp_plan`` (``colwise`` ->
  ``ColumnParallelLinear``, ``rowwise`` -> ``RowParallelLinear``, anything else incl. ``*_rep`` ->
  ``ReplicatedLinear``, ``utils.replace_linear_class``).  For the three classes here the plan is
  the llama one (q/k/v/gate/up ``colwise``, o/down ``rowwise``), so per-rank weights are a native
  Llama's: ``common.gqa_attention`` + ``blocks.gated_mlp``.  Fusion is attempted per class
  (``fuser.py`` @13206c6c ``get_fuser``: FX trace + source rewrite; any failure leaves the class
  unfused, ``fusers/glu.py`` @19bde6fe).  Unfused, the plan gives the same per-rank shapes wherever
  ``num_key_value_heads`` divides by TP; above that a ``colwise`` k/v would split head_dim while the
  attention expects ``max(1, kv // tp)`` whole heads, so vLLM only runs there with the QKV fusion --
  whose replicated KV heads (``Shard.KV``) are what we count.
* embeddings: ``replace_embedding_class`` -> ``VocabParallelEmbedding``; ``CausalMixin`` adds a
  ``ParallelLMHead`` tied to it when ``tie_word_embeddings``.  RMSNorms stay full-width on every
  rank (vLLM ``RMSNorm``, replicated); OLMo-1's ``OlmoLayerNorm`` has no weight or bias at all
  (``F.layer_norm(..., None, None)``), so its layers list no norm tensor.
* KV (``create_attention_instances``): one ``Attention`` per layer with the model's head size and
  ``get_num_kv_heads`` (``max(1, kv // tp)``); ``per_layer_sliding_window = sliding_window`` where
  ``layer_types[i] == "sliding_attention"``, otherwise the model-level window -- ``kv.attention_layers``
  and a window that no layer type uses applied to every layer, as vLLM's model-level fallback does
  (``model_window_fallback``).
* pipeline parallel is supported (``SupportsPP``, ``Base.pipeline_parallel`` over the class's
  ``base_model_pp_plan``: embedding on the first stage, lm_head / norm on the last).
* rotary: no vLLM ``get_rope`` cache.  The transformers ``*RotaryEmbedding`` module of the decoder
  stays, parameter-free, on every stage with its two fp32 buffers ``inv_freq`` and
  ``original_inv_freq`` of ``ceil(rotary_dim / 2)`` each (``init_on_device_without_buffers`` puts
  only parameters on meta; buffers land on the device): ``rope_caches = ((2, ceil(rot/2), 4),)``.
  SmolLM3's ``no_rope_layers`` only skip applying it in some layers -- no parameter or buffer.

Per release (estimate/tf_backend.py): SmolLM3 is in the backend from vLLM 0.10.1 on (its first release);
OLMo-1 only from 0.26 (vllm 0.26.0 sdist registry.py:659) -- 0.10 - 0.25 build it with the native ``olmo.py``
(vllm 0.25.0 sdist olmo.py:86-110: fused QKV / gate_up, parameter-free LayerNorms, the same shards) whose
``get_rope`` keeps a ``max_position_embeddings x head_dim`` cos_sin_cache in the model dtype:
``ModelSpec.native_changes``; that file has MHA only, so a GQA config (or a ``head_dim`` other than
hidden / heads) is priced from 0.26 on only (``served_from``).  ``backend_built`` keeps
``tf_backend.spec_for_release`` from replacing these rotary buffers again.

Refused (the transformers class vLLM instantiates would fail): a config whose ``head_dim`` is
present but null (``getattr(config, "head_dim", hidden // heads)`` returns None -- the ministral class
default); helium whose ``num_attention_heads * head_dim != hidden_size`` (``HeliumAttention.o_proj``
is ``hidden x hidden``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers, model_window_fallback
from reportgen.arch.rope import rope_caches
from reportgen.arch.spec import Component as C, ModelSpec, Tensor

# what vLLM's native olmo.py (0.10 - 0.25) builds instead of a config with GQA or its own head_dim
OLMO1_NATIVE = ("its native olmo.py builds q/k/v with num_attention_heads K/V heads of hidden_size / "
                "num_attention_heads (QKVParallelLinear(hidden_size, hidden_size // heads, heads), vllm 0.25.0 "
                "sdist olmo.py:86-99), not this config's num_key_value_heads / head_dim; the Transformers backend "
                "(0.26 on) builds the transformers class")

# transformers 5.24 modeling_<type>.py: (q/k/v bias flag, o_proj bias flag, MLP bias flag); None = no bias
_BIASES = {
    "smollm3": ("attention_bias", "attention_bias", "mlp_bias"),
    "helium": ("attention_bias", None, "mlp_bias"),
    "ministral": (None, None, None),
    "olmo": ("attention_bias", "attention_bias", None),
}


def build(f: Fields, spec: ModelSpec) -> None:
    model_type = f.model_type
    qkv_name, o_name, mlp_name = _BIASES[model_type]
    if f.has("head_dim") and f.get("head_dim") is None:
        raise Unsupported(f"{model_type} with head_dim null: the transformers attention reads "
                          "getattr(config, 'head_dim', ...) and gets None, so the class vLLM's Transformers "
                          "backend instantiates cannot be built")
    g = geometry(f)
    if model_type == "helium" and g.n_heads * g.head_dim != g.hidden:
        raise Unsupported(f"helium with num_attention_heads * head_dim = {g.n_heads * g.head_dim} != hidden_size "
                          f"{g.hidden}: HeliumAttention's o_proj is hidden x hidden, the model cannot run")
    inter = f.int("intermediate_size")
    flag = (lambda name: bool(name) and f.flag(name))
    mlp_bias = flag(mlp_name)

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP, bias=mlp_bias)

    layers = model_window_fallback(f, attention_layers(f, g.n_layers, g.n_kv, g.head_dim))
    decoder_stack(spec, f, g, attention=gqa_attention(g, qkv_bias=flag(qkv_name), o_bias=flag(o_name)),
                  mlp=mlp, layers_kv=layers)
    if model_type == "olmo":   # parameter-free LayerNorms (transformers modeling_olmo.py OlmoLayerNorm)
        spec.tensors[:] = [t for t in spec.tensors if t.component is not C.NORM]
    rot = spec.rotary_dim or g.head_dim
    if model_type == "olmo":
        # vLLM 0.10 - 0.25 serve OlmoForCausalLM natively (olmo.py); the backend from 0.26 (tf_backend.BACKEND_FROM)
        spec.native_changes = {"rope_caches": rope_caches(f, spec)}
        if g.n_kv != g.n_heads or g.head_dim * g.n_heads != g.hidden:
            spec.served_from = ((0, 26), OLMO1_NATIVE)
    spec.rope_caches = ((2, (rot + 1) // 2, 4),)   # inv_freq + original_inv_freq, fp32, every stage
    spec.backend_built = True
