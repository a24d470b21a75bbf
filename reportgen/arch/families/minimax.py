"""minimax (MiniMax-Text-01 / MiniMax-M1, transformers' native ``MiniMaxConfig``): lightning (linear) attention
layers, softmax GQA layers, a routed MoE on every layer.

Follows vLLM ``vllm/model_executor/models/minimax_text_01.py`` (read at commit
98370df70c1813f5f9c9c127e8baed660cd09280: the one V1 version the search index stores; its date relative to the
v0.23.0 tag could not be read, but the file was removed after v0.23.0 and this version already has the V1 hooks
-- ``get_mamba_state_shape_from_config`` etc. -- and ``rope_parameters``; vLLM's registry lists
MiniMaxText01ForCausalLM / MiniMaxM1ForCausalLM / MiniMaxForCausalLM among ``_PREVIOUSLY_SUPPORTED_MODELS``
"0.23.0" @055e47c2, so ``estimate/served.py`` refuses the model on vLLM 0.24
and later), the lightning layer ``vllm/model_executor/layers/mamba/linear_attn.py`` (commit
038f589aefa4be8a5fd572a1e83167c041f5c4a5), its state helpers in ``layers/mamba/mamba_utils.py`` (commit
2afe1e8573cf51b73569ae1d35f59078a2032a91) and transformers 5.24 ``modeling_minimax.py``.

Layers (``model.layers.{i}``): ``input_layernorm``, the mixer, ``post_attention_layernorm``, the MoE.

* lightning layer (``layer_types[i] == "linear_attention"``, vLLM ``MiniMaxText01LinearAttention``),
  ``P = num_attention_heads * head_dim``: ``qkv_proj`` ``(3P, hidden)`` ColumnParallel (COLUMN),
  ``output_gate`` ``(P, hidden)`` ColumnParallel (COLUMN), ``out_proj`` ``(hidden, P)`` RowParallel (ROW),
  ``norm`` ``(P,)`` -- ``MiniMaxText01RMSNormTP``, whose loader keeps ``P / tp`` rows per rank (COLUMN).  The
  ALiBi-style decay slopes are buffers (not parameters).  vLLM asserts ``heads % tp == 0``.  State per
  sequence: ``MambaStateShapeCalculator.linear_attention_state_shape`` = ``(heads // tp, head_dim, head_dim)``
  in ``linear_attention_state_dtype`` = the ``mamba_cache_dtype`` (auto: the model dtype; vLLM raises for
  float32) -- ``arch/state.py`` kind ``linear_attention``.  No conv state.
* softmax layer (``"full_attention"``, ``MiniMaxText01Attention``): ``qkv_proj`` (QKVParallel: q COLUMN,
  k / v KV), ``o_proj`` ROW, no biases, no q/k norms; NeoX rotary over ``rotary_dim`` (config field, default
  ``head_dim``) dims, built with ``get_rope(..., dtype=torch.float32)``: a float32 ``cos_sin_cache``.  vLLM
  passes ``sliding_window`` to nobody (its ``Attention`` gets none): every softmax layer caches the full
  context (a ``FullAttentionSpec``).
* MoE (``MiniMaxText01MoE``): router ``gate`` ``(E, hidden)`` ReplicatedLinear in float32
  (``params_dtype=torch.float32``: ``Tensor.dtype_bytes`` 4), ``FusedMoE`` experts of ``intermediate_size``
  (the config's ``intermediate_size`` IS the expert width; there is no dense MLP).

``lm_head`` is a ``ParallelLMHead`` that vLLM casts to float32 (``self.lm_head.float()``): 4 bytes per element
whatever ``--dtype`` says; never tied (vLLM has no tying code for this model).

Refused where vLLM and transformers build different models (transformers' count is the oracle): a config
without ``head_dim`` (transformers derives ``hidden // heads``; vLLM's ``get_mamba_state_shape_from_config``
reads ``hf_config.head_dim`` as is, so the state shape has no size), ``num_local_experts`` 1 (vLLM builds a
dense ``MiniMaxText01MLP`` without a router; transformers a one-expert MoE with one),
``shared_intermediate_size`` > 0 (vLLM adds ``shared_mlp`` and a float32 ``coefficient``; transformers has
neither), ``tie_word_embeddings`` true (a list of expert counts, which vLLM reads per layer, is refused by
``features.scan`` as every per-layer list is), and an ``attn_type_list`` (what vLLM reads first) that disagrees
with ``layer_types`` (what transformers builds).  A layer kind other than ``linear_attention`` /
``full_attention`` is a config error (vLLM raises ``Unsupported layer type``).

Rotary cache per ``--max-model-len`` (``spec.rope_length_mode`` "min"): ``MiniMaxText01ForCausalLM`` copies
``model_config.max_model_len`` into the config and ``MiniMaxText01DecoderLayer`` passes ``min(max_position_embeddings,
max_model_len)`` to ``get_rope`` as ``max_position``, so the float32 cache has that many rows x ``rotary_dim`` x 4 B
(MiniMax-Text-01 at 8,192: 8,192 x 64 x 4 = 2 MiB instead of 10,240,000 x 64 x 4 = 2.44 GiB).  The entry carries a
``rope.LengthRows``; the estimate prices the weights at each cell's own length (estimate/weights.py
``rotary_cache_bytes``, matrix/inputs.py ``_weights_follow_length``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, set_moe
from reportgen.arch.fields import Fields, check_int
from reportgen.arch.mixers import state_layer
from reportgen.arch.rope import cache_entry, rope_parameters
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor
from reportgen.arch.state import StateGeometry

LAYER_KINDS = ("linear_attention", "full_attention")
# vLLM's numeric layer kinds (attn_type_list): 0 lightning, 1 softmax
_VLLM_KIND = {0: "linear_attention", 1: "full_attention"}


def lightning_mixer(ts: list[Tensor], layer: int, prefix: str, hidden: int, *, heads: int,
                    head_dim: int) -> StateGeometry:
    """vLLM ``MiniMaxText01LinearAttention``'s tensors (module docstring); its ``linear_attention`` state."""
    comp, inner = C.LINEAR_ATTENTION, heads * head_dim
    B.linear(ts, f"{prefix}.qkv_proj", hidden, 3 * inner, S.COLUMN, comp, layer)
    B.linear(ts, f"{prefix}.output_gate", hidden, inner, S.COLUMN, comp, layer)
    B.linear(ts, f"{prefix}.out_proj", inner, hidden, S.ROW, comp, layer)
    ts.append(Tensor(f"{prefix}.norm.weight", (inner,), S.COLUMN, comp, layer))
    return StateGeometry("linear_attention", (heads, head_dim))


def layer_kinds(f: Fields, n_layers: int) -> list[str]:
    """The per-layer mixer kinds both sides build (validated; ``attn_type_list`` must agree)."""
    kinds = f.str_list("layer_types")
    if kinds is None:
        raise f.err("layer_types", "is missing")
    if len(kinds) != n_layers:
        raise f.err("layer_types", f"has {len(kinds)} entries for num_hidden_layers {n_layers}")
    for i, k in enumerate(kinds):
        if k not in LAYER_KINDS:
            raise f.err("layer_types", f"unknown layer kind {k!r} at layer {i} (linear_attention or "
                                       "full_attention; vLLM raises 'Unsupported layer type')")
    for key in ("attn_type_list", "decoder_attention_types"):
        listed = f.raw.get(key)
        if not listed:
            continue
        if not isinstance(listed, list) or any(v not in _VLLM_KIND for v in listed) or len(listed) != n_layers:
            raise f.err(key, f"must be a list of {n_layers} layer kinds, 0 (lightning) or 1 (softmax)")
        if [_VLLM_KIND[v] for v in listed] != kinds:
            raise Unsupported(f"minimax {key} disagrees with layer_types: vLLM builds its layers from {key}, "
                              "transformers from layer_types")
        break
    return kinds


def build(f: Fields, spec: ModelSpec) -> None:
    raw = f.raw
    g = geometry(f)
    if f.opt_int("head_dim") is None:
        raise Unsupported("minimax without head_dim: vLLM's get_mamba_state_shape_from_config reads "
                          "hf_config.head_dim as is (transformers derives hidden_size / num_attention_heads)")
    if g.tie:
        raise Unsupported("minimax with tie_word_embeddings=true: vLLM's MiniMaxText01ForCausalLM never ties "
                          "its float32 lm_head")
    n_exp = f.int("num_local_experts")
    if n_exp < 2:
        raise Unsupported("minimax with num_local_experts 1: vLLM builds a dense MLP without a router, "
                          "transformers a one-expert MoE with one")
    shared = raw.get("shared_intermediate_size") or 0
    if shared:
        raise Unsupported("minimax with shared_intermediate_size: vLLM adds a shared MLP and its coefficient, "
                          "transformers' MiniMax has neither")
    kinds = layer_kinds(f, g.n_layers)
    rot = raw.get("rotary_dim")
    rot = g.head_dim if rot is None else check_int("rotary_dim", rot, 1, 1 << 16, False)
    if rot > g.head_dim:
        raise f.err("rotary_dim", f"{rot} exceeds head_dim {g.head_dim}")
    set_moe(spec, f, n_exp)
    inter = f.int("intermediate_size")

    def mixer(ts: list[Tensor], i: int, p: str) -> LayerKV:
        a = f"{p}.self_attn"
        if kinds[i] == "linear_attention":
            return state_layer(lightning_mixer(ts, i, a, g.hidden, heads=g.n_heads, head_dim=g.head_dim))
        B.attention(ts, i, a, g.hidden, g.n_heads, g.n_kv, g.head_dim)
        return LayerKV(AttentionKind.FULL, g.n_kv, g.head_dim, g.head_dim)

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        ts.append(Tensor(f"{p}.mlp.gate.weight", (n_exp, g.hidden), S.REPLICATED, C.ROUTER, i, dtype_bytes=4))
        B.experts(ts, i, f"{p}.mlp.experts", g.hidden, inter, n_exp)

    decoder_stack(spec, f, g, attention=mixer, mlp=mlp, tied=False)
    # vLLM: self.lm_head.float() -- the head is float32 on the GPU whatever the checkpoint / --dtype
    spec.tensors[:] = [Tensor(t.name, t.shape, t.shard, t.component, t.layer, t.count, t.quantizable,
                              t.allocated_only, 4) if t.component is C.LM_HEAD else t for t in spec.tensors]
    spec.rotary_dim = rot
    max_pos = spec.max_position_embeddings
    if "full_attention" in kinds and max_pos:
        params = rope_parameters(f) or {"": {"rope_type": "default"}}
        rp = params.get("", next(iter(params.values())))
        # get_rope(..., max_position=min(max_position_embeddings, max_model_len), dtype=torch.float32)
        spec.rope_length_mode = "min"
        spec.rope_caches = (cache_entry(rp, max_pos, rot, 4, "min"),)
        spec.notes.append("minimax: vLLM's float32 rotary cache has min(max_position_embeddings, max_model_len) "
                          f"rows (max_position_embeddings {max_pos}): the weights follow max_model_len")
    else:
        spec.rope_caches = ()
    if f.get("sliding_window"):
        spec.notes.append("minimax: vLLM ignores sliding_window (every softmax layer caches the full context)")
