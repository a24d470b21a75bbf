"""MiniMax-M2 / M2.1 / M2.5 (minimax_m2): GQA attention with whole-projection q/k norms + sigmoid MoE.

Follows vLLM ``vllm/model_executor/models/minimax_m2.py`` (read at commit
01d995867291dd13119ea66cd18e3c9c9b51c50e) and ``MiniMaxText01RMSNormTP`` in
``vllm/model_executor/layers/mamba/linear_attn.py`` (commit 038f589aefa4be8a5fd572a1e83167c041f5c4a5),
checked parameter-for-parameter against transformers 5.24 ``modeling_minimax_m2.py``:

* attention: q/k/v/o without bias (``QKVParallelLinear`` + ``RowParallelLinear``), every layer
  full attention (``per_layer_sliding_window=None``), ``head_dim`` from the config;
* ``q_norm`` over the WHOLE query projection (``num_heads * head_dim``) and ``k_norm`` over the whole
  key projection (``num_kv_heads * head_dim``).  vLLM builds them as ``MiniMaxText01RMSNormTP``:
  ``weight = ones(hidden_size / tp)`` loaded with the rank's contiguous slice -> COLUMN (numel / tp),
  the variance all-reduced across ranks.  With tp > num_key_value_heads (each rank then holds one replicated
  KV head): vLLM 0.11 - 0.20 still give k_norm ``int(kv * head_dim / tp)`` weights a rank, narrower than that
  head, and ``x * self.weight`` raises a broadcast RuntimeError -- ``invalid_layout`` (``ModelSpec.tp_invalid``,
  ``TP_ABOVE_KV``); 0.21 on shard k_norm by ``num_key_value_heads`` (a rank holds its head's ``head_dim``
  weights: ``Shard.KV``, common.gqa_attention) and start -- priced, one replicated KV head a rank.
* partial rotary: ``rotary_dim`` (a legacy field transformers turns into
  ``rope_parameters.partial_rotary_factor = rotary_dim / head_dim``); vLLM reads ``config.rotary_dim``
  unconditionally, so a config without it (the transformers class defaults) cannot be built by vLLM
  and is refused;
* every layer sparse: router ``gate`` ``E x H`` (vLLM: ``ReplicatedLinear`` / ``GateLinear``, fp32 params -- priced
  at 4 bytes), ``num_local_experts``
  FusedMoE experts of ``intermediate_size``; no shared expert (``shared_intermediate_size`` is ignored by
  both).  ``e_score_correction_bias`` (``use_routing_bias``) is a transformers buffer: not counted, as for
  DeepSeek-V3;
* lm_head: vLLM always allocates its own ``ParallelLMHead`` -> a tied config is refused; q/k/v bias follows
  ``attention_bias`` in vLLM but not in transformers -> refused when set;
* MTP modules (``num_mtp_modules``) are skipped by vLLM's loader and not built by transformers: not counted;
* rotary cache: ``MiniMaxM2ForCausalLM`` copies ``model_config.max_model_len`` into the config and
  ``MiniMaxM2DecoderLayer`` passes ``max(max_position_embeddings, max_model_len)`` to ``get_rope`` as
  ``max_position`` (model dtype): ``spec.rope_length_mode`` "max" -- the cache grows past
  ``max_position_embeddings`` only when a longer ``--max-model-len`` is allowed (``VLLM_ALLOW_LONG_MAX_MODEL_LEN``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention, set_moe
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor


# tp > num_key_value_heads on vLLM 0.11.1 (MiniMaxM2ForCausalLM's first release) - 0.20; {tp} / {share} per layout
TP_ABOVE_KV = ("num_key_value_heads ({n_kv}) on vLLM 0.11 - 0.20 (minimax_m2.py: vllm 0.11.1 sdist minimax_m2.py:225 "
               ".. 0.20.2 minimax_m2.py:223): k_norm = MiniMaxText01RMSNormTP(num_key_value_heads x head_dim = {w}) "
               "keeps int({w} / {{tp}}) = {{share}} weights a rank (layers/mamba/linear_attn.py:51 .. :43) while the "
               "rank's k is one replicated KV head ({hd} wide): its k * k_norm.weight raises RuntimeError(\"The size "
               "of tensor a ({hd}) must match the size of tensor b ({{share}}) at non-singleton dimension 1\") in "
               "the start-up's profile run (0.11.1 linear_attn.py:80, 0.20.2 forward_qk linear_attn.py:98); vLLM "
               "0.21 shards k_norm by num_key_value_heads (0.21.0 minimax_m2.py:224-238) and starts")


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    if g.tie:
        raise Unsupported("minimax_m2 with tie_word_embeddings=true: vLLM's MiniMaxM2ForCausalLM always "
                          "allocates its own lm_head")
    if f.flag("attention_bias"):
        raise Unsupported("minimax_m2 with attention_bias=true: vLLM loads q/k/v biases, transformers has none")
    if f.get("rotary_dim") is None:
        raise Unsupported("minimax_m2 without rotary_dim: vLLM's minimax_m2.py reads config.rotary_dim "
                          "and cannot build the model")
    n_exp = f.int("num_local_experts")
    inter = f.int("intermediate_size")
    set_moe(spec, f, n_exp)
    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        # router in fp32 whatever the model dtype: vllm 0.11.1 - 0.22.1 sdist minimax_m2.py ReplicatedLinear(...,
        # params_dtype=torch.float32) (0.20.0 l.115-120), 0.23 on GateLinear(params_dtype=torch.float32) (0.34.0 l.110-117)
        ts.append(Tensor(f"{p}.block_sparse_moe.gate.weight", (n_exp, g.hidden), S.REPLICATED, C.ROUTER, i,
                         dtype_bytes=4))
        B.experts(ts, i, f"{p}.block_sparse_moe.experts", g.hidden, inter, n_exp)

    # MiniMaxText01RMSNormTP: a rank holds 1/tp of the whole-projection q_norm, k_norm split as the KV heads
    decoder_stack(spec, f, g, attention=gqa_attention(g, qk_norm="whole"), mlp=mlp, tied=False)
    spec.rope_length_mode = "max"     # get_rope(max_position=max(max_position_embeddings, max_model_len))
    w = g.n_kv * g.head_dim
    spec.tp_invalid = (g.n_kv, TP_ABOVE_KV.format(n_kv=g.n_kv, w=w, hd=g.head_dim), w)
    spec.from_release = tuple(spec.from_release) + (((0, 21), "tp_invalid", None),)
