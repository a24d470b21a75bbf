"""StableLM decoders: stablelm (StableLM-3B-4E1T, StableLM-2-1.6B / Zephyr, StableCode-3B).

From transformers 5.24 ``modeling_stablelm.py`` and vLLM ``vllm/model_executor/models/stablelm.py``
@4819ff71 (``StablelmForCausalLM``, registered for ``StableLmForCausalLM`` and
``StableLMEpochForCausalLM`` in vLLM ``registry.py`` @bf8e7624; @055e47c2 keeps ``StableLmForCausalLM`` and
lists ``StableLMEpochForCausalLM`` as served until v0.28.0 -- estimate/served.py refuses that spelling after):

* ``head_dim = hidden_size // num_attention_heads`` in both codes (vLLM raises unless it divides);
  a config ``head_dim`` other than that is refused (transformers' rotary module would read it);
* q/k/v bias = ``use_qkv_bias`` (class default false; StableLM-2 true), ``o_proj`` without bias (both);
* SwiGLU MLP without biases: checkpoint ``gate_proj`` / ``up_proj`` (vLLM stacks them into one
  ``MergedColumnParallelLinear`` -- two COLUMN halves), ``down_proj`` ROW;
* LayerNorms with weight AND bias: ``input_layernorm``, ``post_attention_layernorm``, final ``norm``;
* partial rotary: transformers' config class puts ``partial_rotary_factor`` (default 0.25) into
  ``rope_parameters``; vLLM's ``get_rope`` (``rotary_embedding/__init__.py`` @926c71f6) builds the
  cache ``int(head_dim * rope_parameters["partial_rotary_factor"])`` wide -- the shared
  ``common.rotary_dim``.  A legacy ``rope_pct`` field that disagrees with that factor is refused:
  vLLM's stablelm.py @4819ff71 prefers ``rope_pct`` (``getattr(config, "rope_pct", ...)``),
  transformers ignores it;
* every layer full attention (vLLM passes no window).

Priced from vLLM 0.34 only (``served_from``; refused on 0.33 and older): ``qk_layernorm`` (StableLM-2-12B) --
vLLM's native ``StablelmAttention`` has no q/k LayerNorm, its ``load_weights`` has no parameter for the
checkpoint's ``q_layernorm`` / ``k_layernorm`` weights; ``use_parallel_residual`` -- the native
``StablelmDecoderLayer`` always builds the sequential block with a ``post_attention_layernorm`` that a
parallel-residual checkpoint does not have.  0.34's Transformers backend builds transformers' class: per-head
bias-free LayerNorms (``StableLmLayerNormPerHead``, one ``head_dim`` weight per query / KV head, replicated) and
no ``post_attention_layernorm`` with parallel residual -- at tp 1 only, like every stablelm there.

Per vLLM release: ``stablelm.py`` in 0.10 - 0.33; the Transformers backend from 0.34 (vllm 0.34.0 sdist
registry.py:804; StableLmConfig has no tp plan: q/k/v and gate/up fuse, o_proj / down_proj rowwise) -- at TP 1
only: its attention views q/k/v with the full ``self.num_heads`` (``BACKEND_TP``,
``ModelSpec.backend_changes``). From that release vLLM instantiates the transformers class itself (vllm sdist
``model_executor/models/transformers/``): the same per-rank shards (fused QKV with a rowwise output projection,
GLU-fused or ``base_model_tp_plan`` MLPs, replicated norms) and KV geometry, but no ``get_rope`` cos_sin_cache
-- ``estimate/served.py`` ``spec_for_version`` replaces ``rope_caches`` by the rotary module's fp32 ``inv_freq``
buffers for those releases (``estimate/tf_backend.py``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention, rotary_dim
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor


BACKEND_TP = ("stablelm at tp > 1 on vLLM 0.34 or newer: its Transformers backend (registry.py StableLmForCausalLM -> "
              "TransformersForCausalLM) gives each rank num_attention_heads / tp query heads from the fused "
              "QKVParallelLinear, but transformers' StableLmAttention reshapes them with view(bsz, q_len, "
              "self.num_heads, head_dim) over all heads -- the start-up's profile run fails; tp 1 (or vLLM 0.33 "
              "and older, native stablelm.py) is priced")


def build(f: Fields, spec: ModelSpec) -> None:
    native_only = [f"stablelm with {name}=true: vLLM's native stablelm.py (@4819ff71) has no "
                   + ("q/k LayerNorm (the checkpoint's q_layernorm / k_layernorm weights have no vLLM parameter)"
                      if name == "qk_layernorm" else
                      "parallel-residual block (it always builds post_attention_layernorm)")
                   for name in ("qk_layernorm", "use_parallel_residual") if f.flag(name)]
    g = geometry(f)
    per_head = g.hidden // g.n_heads
    if per_head * g.n_heads != g.hidden:
        raise f.err("num_attention_heads", f"{g.n_heads} does not divide hidden_size {g.hidden}")
    if g.head_dim != per_head:
        raise Unsupported(f"stablelm with head_dim {g.head_dim} != hidden_size / num_attention_heads: "
                          "vLLM and transformers' attention ignore it, transformers' rotary module reads it")
    pct = f.raw.get("rope_pct")
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, (int, float))
                            or int(per_head * pct) != rotary_dim(f, per_head)):
        raise Unsupported(f"stablelm with rope_pct {pct!r}: vLLM's stablelm.py reads it, transformers uses "
                          "rope_parameters.partial_rotary_factor")
    inter = f.int("intermediate_size")

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)

    plain = gqa_attention(g, qkv_bias=f.flag("use_qkv_bias"))
    qk_norm = f.flag("qk_layernorm")

    def attention(ts: list[Tensor], i: int, p: str) -> None:
        plain(ts, i, p)
        if qk_norm:   # StableLmLayerNormPerHead: one bias-free LayerNorm(head_dim) per query / KV head (replicated)
            ts.append(Tensor(f"{p}.self_attn.q_layernorm.norms.weight", (g.head_dim,), S.REPLICATED, C.ATTENTION,
                             i, count=g.n_heads))
            ts.append(Tensor(f"{p}.self_attn.k_layernorm.norms.weight", (g.head_dim,), S.REPLICATED, C.ATTENTION,
                             i, count=g.n_kv))

    decoder_stack(spec, f, g, attention=attention, mlp=mlp, norm_bias=True)
    if f.flag("use_parallel_residual"):   # StableLmDecoderLayer: no post_attention_layernorm
        spec.tensors[:] = [t for t in spec.tensors if ".post_attention_layernorm." not in t.name]
    if native_only:
        # transformers' class, which vLLM builds from 0.34 on (Transformers backend; registry.py:804)
        spec.served_from = ((0, 34), "; ".join(native_only))
    # vLLM 0.34 on: the Transformers backend fuses q/k/v into one QKVParallelLinear whose split gives a rank
    # heads / tp heads, but StableLmAttention.forward views them as view(bsz, q_len, self.num_heads, head_dim)
    # (transformers 5.25 modeling_stablelm.py:271-273) and the fuser rewrites only the projection calls (vllm
    # 0.34.0 sdist transformers/fusers/qkv.py:100-149): at tp > 1 the view fails in the profile run
    spec.backend_changes = {"tp_unsupported": (1, BACKEND_TP)}
