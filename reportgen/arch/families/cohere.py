"""Cohere decoders: Command-R (cohere), Command-R7B / Command-A (cohere2) and Cohere2-MoE (cohere2_moe).

Follows vLLM ``vllm/model_executor/models/commandr.py`` (serves ``CohereForCausalLM`` and
``Cohere2ForCausalLM``) and ``cohere2_moe.py``, both read at commit
055e47c28003156421365af985d676fc921cb075 (registry.py at the same commit maps both Cohere dense
architectures to ``commandr`` and ``Cohere2MoeForCausalLM`` to ``cohere2_moe``), checked
parameter-for-parameter against transformers 5.24 ``modeling_cohere.py``, ``modeling_cohere2.py`` and
``modeling_cohere2_moe.py``.  (The first version of this module followed commandr.py @1f7c5555, an older
file that took ``head_dim = hidden // heads`` and knew no Cohere2.)

Every layer is one parallel block: a single ``input_layernorm`` feeds attention and MLP, whose outputs
are added to the residual.

* Norms: ``LayerNorm`` with a weight only, or ``RMSNorm`` (a weight too) when the config states
  ``rms_norm_eps`` -- vLLM ``select_norm_impl``; the parameter count is the same either way.
* q/k/v/o without bias: vLLM hard-codes ``bias=False``; a config with ``attention_bias`` (which
  transformers honours) is refused.
* ``head_dim``: vLLM takes ``config.head_dim`` when the config object has it, else ``hidden // heads``
  -- the rule of transformers' attention (``getattr(config, "head_dim", hidden // heads)``); both read
  the same transformers config object, so any ``head_dim`` is priced as stated.
* cohere ``use_qk_norm``: per-head LayerNorm weights of shape ``(heads, head_dim)``; vLLM builds them
  with the rank's heads (``(num_heads / tp, head_dim)`` -> COLUMN, ``(max(1, kv / tp), head_dim)`` -> KV).
  transformers' Cohere2 / Cohere2-MoE attention has no q/k norms, while vLLM's commandr.py builds them
  whenever the config carries ``use_qk_norm: true``: refused for those two.  Past ``num_key_value_heads`` a rank
  holds one replicated KV head and a ``(1, head_dim)`` k_norm that ``row_parallel_weight_loader`` fills with row
  ``tp_rank`` of the checkpoint's ``(kv, head_dim)``: the ranks from ``kv`` on raise torch's narrow error while
  loading -- ``invalid_layout`` on every release (``QK_NORM_TP``, ``ModelSpec.tp_invalid``).
* The head is ALWAYS tied in vLLM (logits from ``embed_tokens``; ``lm_head.`` weights are dropped by
  the loader): ``tie_word_embeddings=false`` (transformers builds a separate head) is refused.
* Rotary cache: ``get_rope(head_dim, max_position=model_max_length or max_position_embeddings)`` on
  every layer -- one cache (Cohere2's full layers skip RoPE at run time, NoPE, but build the module).
* cohere2_moe MLP per ``mlp_layer_types``: ``dense`` -> SwiGLU of ``prefix_dense_intermediate_size``
  (null -> ``intermediate_size``); otherwise router ``E x H`` (vLLM ``ReplicatedLinear``, unquantized),
  ``num_experts`` experts of ``intermediate_size`` (FusedMoE) and, for ``num_shared_experts > 0``, one
  shared SwiGLU of ``intermediate_size * num_shared_experts``.  vLLM raises for
  ``tp > num_experts`` (``spec.max_tp``: such layouts are ``invalid_layout``).

KV cache: cohere (v1) never gets a per-layer window (a model-level ``sliding_window`` applies to every
layer, vLLM's ``cache_config`` fallback); a v1 config mixing layer types in ``layer_types`` gets no model-level
window either (vLLM's ``is_interleaved``): every layer full.  cohere2 / cohere2_moe: ``layer_types[i] ==
"sliding_attention"`` -> a SlidingWindowSpec of ``sliding_window + 1`` tokens (commandr.py and
cohere2_moe.py pass ``sliding_window + 1``: the Cohere window covers ``[pos - sliding_window, pos]``),
``"full_attention"`` -> full.  Refused: another layer-type name (vLLM compares the literal string), a
sliding layer with ``sliding_window`` null (vLLM computes ``None + 1``).  No sliding layer while a window is
set: every layer in the config's window (vLLM's model-level fallback, see ``kv.model_window_fallback``).
"""

from __future__ import annotations

from collections.abc import Callable

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import (Geometry, dense_or_moe_mlp, geometry, mlp_layer_types, set_moe,
                                            set_scalars)
from reportgen.arch.fields import Fields
from reportgen.arch.kv import layer_types, model_level_window_layers, model_window_fallback
from reportgen.arch.rope import cache_rows, rope_parameters
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

_V2_TYPES = ("sliding_attention", "full_attention")


# cohere with use_qk_norm at tp > num_key_value_heads ({tp} filled in per layout): vLLM 0.10 - 0.34, commandr.py
QK_NORM_TP = ("num_key_value_heads ({n_kv}) with use_qk_norm on vLLM 0.10+ (commandr.py): each rank holds one "
              "replicated KV head and a k_norm of param_shape (1, {hd}) that row_parallel_weight_loader fills with "
              "row tp_rank of the checkpoint's ({n_kv}, {hd}) weight -- at weight loading rank {n_kv} raises "
              "RuntimeError(\"start ({n_kv}) + length (1) exceeds dimension size ({n_kv}).\"), the ranks above it "
              "IndexError(\"start out of range ...\") (torch narrow; vllm 0.10.0 sdist commandr.py:79,213-215, "
              "model_loader/weight_utils.py:642-644; 0.34.0 commandr.py:83,109,261-263, weight_utils.py:1617-1619)")


def build(f: Fields, spec: ModelSpec) -> None:
    """cohere (Command-R v1)."""
    g = _refuse_common(f)
    inter = f.int("intermediate_size")
    qk_norm = f.flag("use_qk_norm")

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)

    _stack(f, spec, g, mlp, qk_norm=qk_norm)
    if qk_norm:
        spec.tp_invalid = (g.n_kv, QK_NORM_TP.format(n_kv=g.n_kv, hd=g.head_dim), g.head_dim)
    # commandr.py gives v1 layers no window of their own: the model-level one, none when layer_types mix
    spec.layers_kv = model_level_window_layers(f, g.n_layers, g.n_kv, g.head_dim)


def build_cohere2(f: Fields, spec: ModelSpec) -> None:
    """cohere2 (Command-R7B, Command-A): cohere v1 layers without q/k norms, interleaved windows."""
    g = _refuse_common(f)
    _refuse_qk_norm(f)
    inter = f.int("intermediate_size")

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)

    _stack(f, spec, g, mlp)
    spec.layers_kv = _v2_layers(f, g)


def build_moe(f: Fields, spec: ModelSpec) -> None:
    """cohere2_moe: cohere2 attention, dense-prefix / MoE MLPs from ``mlp_layer_types``."""
    g = _refuse_common(f)
    _refuse_qk_norm(f)
    inter = f.int("intermediate_size")
    dense_inter = f.opt_int("prefix_dense_intermediate_size") or inter
    n_exp = f.int("num_experts")
    n_shared = f.int("num_shared_experts", 0, lo=0)
    kinds = mlp_layer_types(f, g.n_layers)
    set_moe(spec, f, n_exp, shared=1 if n_shared else 0)

    mlp = dense_or_moe_mlp(g.hidden, [k != "dense" for k in kinds], dense_inter=dense_inter, moe_inter=inter,
                           n_exp=n_exp, shared_inter=inter * n_shared)
    _stack(f, spec, g, mlp)
    spec.layers_kv = _v2_layers(f, g)
    spec.max_tp = n_exp                         # vLLM: ValueError for tp > num_experts


def _refuse_common(f: Fields) -> Geometry:
    """The config variants transformers and vLLM's Cohere files would build differently."""
    if f.flag("attention_bias"):
        raise Unsupported(f"{f.model_type} with attention_bias=true: vLLM builds q/k/v/o without bias")
    g = geometry(f)
    if not f.flag("tie_word_embeddings", True):
        raise Unsupported(f"{f.model_type} with tie_word_embeddings=false: vLLM always computes the logits "
                          "with the input embedding (lm_head.weight is skipped)")
    return g


def _refuse_qk_norm(f: Fields) -> None:
    if f.raw.get("use_qk_norm"):
        raise Unsupported(f"{f.model_type} with use_qk_norm=true: vLLM's commandr.py builds per-head q/k norms, "
                          "transformers' model has none")


def _stack(f: Fields, spec: ModelSpec, g: Geometry, mlp: Callable[[list[Tensor], int, str], None], *,
           qk_norm: bool = False) -> None:
    """Embedding, parallel-block layers (``mlp`` adds each layer's MLP), final norm, tied head, scalars,
    and the one rotary cache of ``model_max_length or max_position_embeddings`` rows."""
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim)
        if qk_norm:
            ts.append(Tensor(f"{p}.self_attn.q_norm.weight", (g.n_heads, g.head_dim), S.COLUMN, C.ATTENTION, i))
            ts.append(Tensor(f"{p}.self_attn.k_norm.weight", (g.n_kv, g.head_dim), S.KV, C.ATTENTION, i))
        mlp(ts, i, p)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=True)
    set_scalars(spec, f, g)
    spec.tie_word_embeddings = True
    spec.rotary_dim = g.head_dim
    rows = f.opt_int("model_max_length") or spec.max_position_embeddings or 8192
    rp = (rope_parameters(f) or {}).get("") or {"rope_type": "default"}
    spec.rope_caches = ((cache_rows(rp, rows), g.head_dim, 0),)


def _v2_layers(f: Fields, g: Geometry) -> list[LayerKV]:
    """cohere2 / cohere2_moe KV: ``sliding_window + 1`` on sliding layers, full elsewhere."""
    lt = layer_types(f, g.n_layers) or ["full_attention"] * g.n_layers
    odd = sorted(set(lt) - set(_V2_TYPES))
    if odd:
        raise Unsupported(f"{f.model_type} layer type {odd[0]!r}: vLLM treats every layer type other than "
                          "'sliding_attention' as full attention, transformers may not")
    window = f.opt_int("sliding_window")
    if window is None and "sliding_attention" in lt:
        raise Unsupported(f"{f.model_type} with sliding layers and sliding_window null: vLLM computes "
                          "sliding_window + 1 for them (fails)")
    layers = [LayerKV(AttentionKind.SLIDING, g.n_kv, g.head_dim, g.head_dim, window + 1) if t == "sliding_attention"
              else LayerKV(AttentionKind.FULL, g.n_kv, g.head_dim, g.head_dim) for t in lt]
    return model_window_fallback(f, layers)
