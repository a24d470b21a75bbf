"""MiMo-V2-Flash (``mimo_v2_flash``): GQA with sliding-window and full layers of different head counts, attention
sinks on the sliding layers, V heads narrower than K heads, sigmoid-routed MoE without shared experts.

Follows vLLM ``vllm/model_executor/models/mimo_v2.py`` @055e47c28003156421365af985d676fc921cb075 (the registry maps
``MiMoV2FlashForCausalLM`` there; older trees call the file ``mimo_v2_flash.py``).  vLLM reads the checkpoint's
remote-code fields; transformers 5.24's ``MiMoV2FlashConfig`` uses fixed rules.  A config is priced only where the two
agree, field by field (else refused naming the field):

=================================  ===================================  ==========================================
vLLM (``MiMoV2FlashDecoderLayer``)  transformers 5.24                     must agree on
=================================  ===================================  ==========================================
``hybrid_layer_pattern[i] == 1``    ``layer_types`` (default: full on     which layers are sliding
  -> sliding layer                  layer 0 and every 6th)
``swa_num_attention_heads``         ``num_attention_heads``               query heads of sliding layers
``swa_num_key_value_heads``         ``2 x num_key_value_heads``           K/V heads of sliding layers
``swa_head_dim`` / ``swa_v_head_dim``  ``head_dim`` / ``v_head_dim``      head sizes of sliding layers
``add_swa_attention_sink_bias``     sinks on every sliding layer          true
``moe_layer_freq`` (a list)         ``mlp_layer_types`` (default: dense   which layers are MoE
                                    layer 0, MoE after)
``sliding_window_size`` (window)    ``sliding_window = size + 1``         (read from vLLM's field)
=================================  ===================================  ==========================================

Tensors and shards: ``QKVParallelLinear(head_dim, heads, kv_heads, v_head_size=v_head_dim, bias=attention_bias)``
-> q COLUMN, k / v KV; ``o_proj`` RowParallel without bias; ``attention_sink_bias`` ``(num_heads // tp,)`` per
sliding layer (COLUMN); ``MiMoV2MoE``: ``gate = nn.Linear(hidden, E, dtype=float32)`` (``moe_router_dtype``,
default float32: ``Tensor.dtype_bytes`` 4), ``gate.e_score_correction_bias = nn.Parameter((E,), float32)`` (a buffer
in transformers: ``allocated_only``), FusedMoE experts; dense layers ``MiMoV2MLP`` of ``intermediate_size``;
``lm_head = ParallelLMHead`` always (a tied config is refused); ``mtp`` weights are skipped.

KV cache: ``Attention(..., per_layer_sliding_window=sliding_window_size, head_size_v=v_head_dim)`` -- sliding layers
keep ``swa_num_key_value_heads`` heads of ``swa_head_dim + swa_v_head_dim`` over ``sliding_window_size`` tokens, full
layers ``num_key_value_heads`` heads.  ``MiMoV2Attention`` never passes ``cache_config`` to ``Attention``, so
(attention.py @0014ca6b, ``Attention.__init__``: ``if cache_config is not None: kv_cache_dtype =
cache_config.cache_dtype ... else: kv_cache_dtype = "auto"``) ``--kv-cache-dtype`` does not reach these layers: the
cache is the model dtype unless the checkpoint declares a ``kv_cache_scheme`` (``spec.kv_cache_dtype_fixed``).

Rotary: one ``get_rope`` per layer kind (``rope_theta`` / ``swa_rope_theta``, ``partial_rotary_factor`` of
``head_dim``), ``max_position_embeddings`` rows each.

Tensor parallelism beyond the full layers' ``num_key_value_heads`` (4 in the release): each layer's
``QKVParallelLinear`` replicates its own K/V heads once tp exceeds them (``num_kv_head_replicas = tp //
total_num_kv_heads``; vllm 0.34.0 sdist model_executor/layers/linear.py:1116) -- at tp 8 the full layers' 4 heads are
replicated, the sliding layers' 8 split, one K/V head a rank either way.  The two counts are
``spec.kv_heads_by_layer`` (a second K/V sharding class, estimate/weights.py), as for Gemma 4.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import set_moe
from reportgen.arch.fields import Fields
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor


def _refuse(field: str, why: str) -> Unsupported:
    return Unsupported(f"mimo_v2_flash: {field} {why}; vLLM (mimo_v2.py) and transformers would build different "
                       "models; not modelled")


def _vllm_field(f: Fields, name: str):
    """A remote-code field vLLM reads with plain attribute access (AttributeError if absent)."""
    value = f.raw.get(name)
    if value is None:
        raise _refuse(name, "is missing (vLLM reads it; transformers does not)")
    return value


def build(f: Fields, spec: ModelSpec) -> None:
    if f.flag("tie_word_embeddings"):
        raise Unsupported("mimo_v2_flash with tie_word_embeddings: vLLM always builds its own lm_head; not modelled")
    hidden = f.int("hidden_size")
    n_layers = f.int("num_hidden_layers")
    heads = f.int("num_attention_heads")
    kv = f.int("num_key_value_heads")
    hd = f.int("head_dim")
    vd = f.int("v_head_dim")
    vocab = f.int("vocab_size")
    inter = f.int("intermediate_size")
    moe_inter = f.int("moe_intermediate_size")
    n_exp = f.int("n_routed_experts")
    bias = f.flag("attention_bias")
    if heads % kv:
        raise f.err("num_key_value_heads", f"{kv} does not divide num_attention_heads {heads}")

    # which layers slide: vLLM's hybrid_layer_pattern against transformers' layer_types
    pattern = _vllm_field(f, "hybrid_layer_pattern")
    hf_types = f.str_list("layer_types")
    if not isinstance(pattern, list) or len(pattern) != n_layers or hf_types is None or len(hf_types) != n_layers:
        raise _refuse("hybrid_layer_pattern", f"does not give one entry for each of the {n_layers} layers")
    sliding = [p == 1 for p in pattern]
    if sliding != [t == "sliding_attention" for t in hf_types]:
        raise _refuse("hybrid_layer_pattern", "and transformers' layer_types place the sliding layers differently")
    # sliding-layer geometry (vLLM reads the swa_* fields for sliding layers only) against transformers' rules
    swa_kv, window = kv, None
    if any(sliding):
        swa_heads = _vllm_field(f, "swa_num_attention_heads")
        swa_kv = _vllm_field(f, "swa_num_key_value_heads")
        swa_hd = _vllm_field(f, "swa_head_dim")
        swa_vd = f.raw.get("swa_v_head_dim") or swa_hd
        window = _vllm_field(f, "sliding_window_size")
        for name, vllm, hf in (("swa_num_attention_heads", swa_heads, heads),
                               ("swa_num_key_value_heads", swa_kv, 2 * kv),
                               ("swa_head_dim", swa_hd, hd), ("swa_v_head_dim", swa_vd, vd)):
            if vllm != hf:
                raise _refuse(name, f"{vllm!r} differs from transformers' {hf} for the sliding layers")
        if f.raw.get("add_swa_attention_sink_bias") is not True:
            raise _refuse("add_swa_attention_sink_bias", "is not true (transformers gives every sliding layer sinks)")
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise f.err("sliding_window_size", f"must be a positive integer, got {window!r}")
    # which layers are MoE: vLLM's moe_layer_freq list against transformers' mlp_layer_types
    freq = f.raw.get("moe_layer_freq")
    vllm_moe = [bool(x) for x in freq] if isinstance(freq, list) else [False] * n_layers
    hf_mlp = f.str_list("mlp_layer_types")
    if len(vllm_moe) != n_layers or hf_mlp is None or vllm_moe != [t == "sparse" for t in hf_mlp]:
        raise _refuse("moe_layer_freq", "and transformers' mlp_layer_types place the MoE layers differently")
    router_bytes = 4 if f.raw.get("moe_router_dtype", "float32") == "float32" else 0
    k = set_moe(spec, f, n_exp) if any(vllm_moe) else 0

    ts = spec.tensors
    B.embedding(ts, vocab, hidden)
    layers_kv: list[LayerKV] = []
    for i in range(n_layers):
        p, a = f"model.layers.{i}", f"model.layers.{i}.self_attn"
        n_kv = swa_kv if sliding[i] else kv
        B.norm(ts, f"{p}.input_layernorm", hidden, i)
        B.linear(ts, f"{a}.q_proj", hidden, heads * hd, S.COLUMN, C.ATTENTION, i, bias=bias)
        B.linear(ts, f"{a}.k_proj", hidden, n_kv * hd, S.KV, C.ATTENTION, i, bias=bias)
        B.linear(ts, f"{a}.v_proj", hidden, n_kv * vd, S.KV, C.ATTENTION, i, bias=bias)
        B.linear(ts, f"{a}.o_proj", heads * vd, hidden, S.ROW, C.ATTENTION, i)
        if sliding[i]:
            ts.append(Tensor(f"{a}.attention_sink_bias", (heads,), S.COLUMN, C.ATTENTION, i))
        B.norm(ts, f"{p}.post_attention_layernorm", hidden, i)
        if vllm_moe[i]:
            ts.append(Tensor(f"{p}.mlp.gate.weight", (n_exp, hidden), S.REPLICATED, C.ROUTER, i,
                             dtype_bytes=router_bytes))
            ts.append(Tensor(f"{p}.mlp.gate.e_score_correction_bias", (n_exp,), S.REPLICATED, C.ROUTER, i,
                             allocated_only=True, dtype_bytes=router_bytes))
            B.experts(ts, i, f"{p}.mlp.experts", hidden, moe_inter, n_exp)
        else:
            B.gated_mlp(ts, i, f"{p}.mlp", hidden, inter, C.DENSE_MLP)
        layers_kv.append(LayerKV(AttentionKind.SLIDING, swa_kv, hd, vd, window=window) if sliding[i]
                         else LayerKV(AttentionKind.FULL, kv, hd, vd))
    B.norm(ts, "model.norm", hidden, None)
    B.lm_head(ts, vocab, hidden, tied=False)

    spec.hidden_size, spec.vocab_size, spec.num_layers = hidden, vocab, n_layers
    spec.num_attention_heads, spec.num_kv_heads, spec.head_dim = heads, kv, hd
    spec.tie_word_embeddings = False
    spec.max_position_embeddings = f.opt_int("max_position_embeddings")
    spec.experts_per_token = k
    spec.layers_kv = layers_kv
    spec.kv_cache_dtype_fixed = "auto"
    if any(sliding) and swa_kv != kv:
        # each layer's K/V projections shard (or replicate) by its own head count
        spec.kv_heads_by_layer = tuple(swa_kv if s else kv for s in sliding)
    _rope(f, spec, hd, sliding)


def _rope(f: Fields, spec: ModelSpec, hd: int, sliding: list[bool]) -> None:
    """One ``get_rope`` per (theta, rotary dim): full layers ``rope_theta``, sliding ones ``swa_rope_theta``."""
    max_pos = spec.max_position_embeddings
    factor = f.raw.get("partial_rotary_factor", 1.0)
    rot = int(hd * factor) if isinstance(factor, (int, float)) and not isinstance(factor, bool) else hd
    spec.rotary_dim = rot
    if not max_pos:
        spec.rope_caches = ()
        return
    theta = f.raw.get("rope_theta", 1000000)
    thetas = {float(f.raw.get("swa_rope_theta", theta)) if s else float(theta) for s in sliding}
    spec.rope_caches = tuple((max_pos, rot, 0) for _ in sorted(thetas))
