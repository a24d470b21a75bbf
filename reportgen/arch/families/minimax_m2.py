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
  the variance all-reduced across ranks.  (With tp > num_kv_heads the k slice is narrower than the
  one replicated KV head a rank holds; vLLM's forward then cannot broadcast -- such layouts are not
  refused here: the layout rules are shared, see docs/architecture.md.)
* partial rotary: ``rotary_dim`` (a legacy field transformers turns into
  ``rope_parameters.partial_rotary_factor = rotary_dim / head_dim``); vLLM reads ``config.rotary_dim``
  unconditionally, so a config without it (the transformers class defaults) cannot be built by vLLM
  and is refused;
* every layer sparse: router ``gate`` ``E x H`` (vLLM: ``ReplicatedLinear``, fp32 params), ``num_local_experts``
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
from reportgen.arch.spec import ModelSpec, Tensor


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
        B.router(ts, i, f"{p}.block_sparse_moe.gate", g.hidden, n_exp)
        B.experts(ts, i, f"{p}.block_sparse_moe.experts", g.hidden, inter, n_exp)

    # MiniMaxText01RMSNormTP: each rank holds 1/tp of the whole-projection q / k norm weights
    decoder_stack(spec, f, g, attention=gqa_attention(g, qk_norm="whole"), mlp=mlp, tied=False)
    spec.rope_length_mode = "max"     # get_rope(max_position=max(max_position_embeddings, max_model_len))
