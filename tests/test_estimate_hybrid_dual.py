"""Decoder layers holding both an attention KV cache and a recurrent state (falcon_h1's parallel
attention + Mamba-2 mixers): vLLM registers two cache layers per decoder layer (``self_attn`` and
``mamba``), so the pool holds one attention group and one state group over all layers -- the state
must be priced, never dropped because the layer's kind says "full"."""

from __future__ import annotations

import transformers

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind
from reportgen.estimate import hybrid
from reportgen.estimate.kvcache import kv_groups


def _falcon_h1():
    cfg = transformers.AutoConfig.for_model("falcon_h1").to_dict()
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    return spec


def test_falcon_h1_layers_carry_attention_and_state():
    spec = _falcon_h1()
    assert all(l.kind is AttentionKind.FULL and l.state is not None for l in spec.layers_kv)


def test_dual_layers_are_priced_with_their_state():
    spec = _falcon_h1()
    n = len(spec.layers_kv)
    g = kv_groups(spec, tp=1, pp=1, kv_dtype="auto", elem_bytes=2, block_size=16, state_conv_bytes=2)
    assert g.n_state == 1 and g.n_full == 1 and g.n_groups == 2
    # state per sequence on the one stage: every decoder layer's state page x the blocks per request
    page = g.token_block * spec.layers_kv[0].bytes_per_token(2, 1)
    assert g.stage_state_bytes[0] == n * page * g.state_blocks
    state_one = hybrid.state_layer_bytes(spec.layers_kv[0].__class__(AttentionKind.STATE,
                                                                     state=spec.layers_kv[0].state), 1, 2)
    assert page >= state_one > 0          # the attention page was raised to hold a state page
    # and the KV bytes per token are the attention layers' alone
    assert g.stage_token_bytes[0] == sum(l.bytes_per_token(2, 1) for l in spec.layers_kv)


def test_dual_layers_split_across_pipeline_stages_together():
    spec = _falcon_h1()
    n = len(spec.layers_kv)
    g = kv_groups(spec, tp=1, pp=2, kv_dtype="auto", elem_bytes=2, block_size=16, state_conv_bytes=2)
    page = g.token_block * spec.layers_kv[0].bytes_per_token(2, 1)
    first = (n + 1) // 2 if n % 2 else n // 2
    assert sum(g.stage_state_bytes) == n * page * g.state_blocks
    assert g.stage_state_bytes[0] in (first * page * g.state_blocks, (n - first) * page * g.state_blocks)
