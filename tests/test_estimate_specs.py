"""Hand-built ModelSpecs for the estimator tests (no dependence on the arch adapters).

Why hand-built: the estimator's rules must be pinned independently of how a
config is parsed; these builders write the tensors the way vLLM loads them
(fused or not does not matter for bytes).  The checks below pin the builders'
own parameter counts against published figures, so the estimator tests stand
on known ground.
"""

from __future__ import annotations

from reportgen.arch.spec import AttentionKind, Component, LayerKV, ModelSpec, Shard, Tensor

C, R, KV, REP, VOC, EXP = Shard.COLUMN, Shard.ROW, Shard.KV, Shard.REPLICATED, Shard.VOCAB, Shard.EXPERT


def dense_spec(*, layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128, inter=14336, vocab=128256,
               tied=False, max_pos=131072, dtype="bfloat16", window=None, window_every=0,
               model_type="llama", qkv_bias=False) -> ModelSpec:
    """A Llama-style decoder (defaults: Llama-3.1-8B).  ``window_every=n``: every n-th layer
    (0-based ``i % n != n-1``) is sliding with ``window`` tokens, the rest full (gemma-style)."""
    t: list[Tensor] = [Tensor("embed_tokens", (vocab, hidden), VOC, Component.EMBEDDING)]
    kvs = []
    for i in range(layers):
        t += [
            Tensor(f"l{i}.q", (heads * head_dim, hidden), C, Component.ATTENTION, i, quantizable=True),
            Tensor(f"l{i}.k", (kv_heads * head_dim, hidden), KV, Component.ATTENTION, i, quantizable=True),
            Tensor(f"l{i}.v", (kv_heads * head_dim, hidden), KV, Component.ATTENTION, i, quantizable=True),
            Tensor(f"l{i}.o", (hidden, heads * head_dim), R, Component.ATTENTION, i, quantizable=True),
            Tensor(f"l{i}.gate_up", (2 * inter, hidden), C, Component.DENSE_MLP, i, quantizable=True),
            Tensor(f"l{i}.down", (hidden, inter), R, Component.DENSE_MLP, i, quantizable=True),
            Tensor(f"l{i}.norms", (hidden,), REP, Component.NORM, i, count=2),
        ]
        if qkv_bias:
            t += [Tensor(f"l{i}.q_bias", (heads * head_dim,), C, Component.ATTENTION, i),
                  Tensor(f"l{i}.kv_bias", (2 * kv_heads * head_dim,), KV, Component.ATTENTION, i)]
        sliding = window_every and (i % window_every != window_every - 1)
        kvs.append(LayerKV(AttentionKind.SLIDING if sliding else AttentionKind.FULL, kv_heads, head_dim,
                           head_dim, window if sliding else None))
    t.append(Tensor("norm", (hidden,), REP, Component.NORM))
    if not tied:
        t.append(Tensor("lm_head", (vocab, hidden), VOC, Component.LM_HEAD))
    return ModelSpec(model_type=model_type, family=model_type, dtype=dtype, hidden_size=hidden,
                     vocab_size=vocab, num_layers=layers, num_attention_heads=heads, num_kv_heads=kv_heads,
                     head_dim=head_dim, tie_word_embeddings=tied, max_position_embeddings=max_pos,
                     tensors=t, layers_kv=kvs)


def moe_spec(*, layers=4, hidden=1024, heads=8, kv_heads=4, head_dim=128, experts=10, topk=2, inter_e=512,
             vocab=32000) -> ModelSpec:
    """A small Mixtral-style MoE: every layer routed experts (one tensor entry per expert kind)."""
    s = dense_spec(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
                   inter=1, vocab=vocab, max_pos=0, model_type="mixtral")
    keep = [x for x in s.tensors if x.component is not Component.DENSE_MLP]
    for i in range(layers):
        keep += [
            Tensor(f"l{i}.router", (experts, hidden), REP, Component.ROUTER, i),
            Tensor(f"l{i}.experts.w13", (2 * inter_e, hidden), EXP, Component.ROUTED_EXPERTS, i,
                   count=experts, quantizable=True),
            Tensor(f"l{i}.experts.w2", (hidden, inter_e), EXP, Component.ROUTED_EXPERTS, i,
                   count=experts, quantizable=True),
        ]
    s.tensors = keep
    s.num_experts, s.experts_per_token = experts, topk
    return s


def mla_spec(*, layers=27, kv_lora=512, rope=64, heads=16, hidden=2048, vocab=102400) -> ModelSpec:
    """DeepSeek-V2-Lite-shaped attention only (KV geometry is what the MLA tests need)."""
    s = dense_spec(layers=layers, hidden=hidden, heads=heads, kv_heads=heads, head_dim=128, inter=10944,
                   vocab=vocab, max_pos=163840, model_type="deepseek_v2")
    s.is_mla, s.num_kv_heads = True, 0
    s.layers_kv = [LayerKV(AttentionKind.MLA, 1, kv_lora + rope, 0) for _ in range(layers)]
    return s


def test_llama_8b_builder_counts_8_03b_params():
    # published: Llama-3.1-8B has 8,030,261,248 parameters
    assert dense_spec().params_total == 8_030_261_248


def test_builder_sliding_pattern():
    s = dense_spec(layers=6, window=1024, window_every=6)
    kinds = [l.kind for l in s.layers_kv]
    assert kinds.count(AttentionKind.SLIDING) == 5 and kinds[5] is AttentionKind.FULL
