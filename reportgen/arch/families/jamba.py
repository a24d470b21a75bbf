"""jamba (AI21 Jamba, Jamba-1.5 / 1.7): Mamba-1 and attention layers, MoE on a period.

Follows vLLM ``vllm/model_executor/models/jamba.py`` (the stored version, commit
002b4cf80b730f384dbc7d5f85db8a10b14af56a) and transformers 5.24 ``modeling_jamba.py``.

Layer ``i`` is attention when ``i % attn_layer_period == attn_layer_offset``, else a Mamba-1 mixer
(``arch/mixers.py``: intermediate ``mamba_expand * hidden``, ``mamba_d_state``, ``mamba_d_conv``,
``mamba_dt_rank`` (auto = ceil(hidden / 16), resolved by transformers), ``mamba_conv_bias``,
``mamba_proj_bias``, with the dt / B / C RMSNorms); its feed-forward is MoE (router ``E x H``,
``num_experts`` SwiGLU experts of ``intermediate_size``) when ``i % expert_layer_period ==
expert_layer_offset`` and ``num_experts > 1``, else a SwiGLU MLP.  Norms ``input_layernorm`` /
``pre_ff_layernorm``, final ``final_layernorm``.  No RoPE, no biases in attention or MLPs (both codes).

vLLM takes ``head_dim = hidden // heads`` and never ties the lm_head (ParallelLMHead); configs where
transformers would build another model (a different ``head_dim`` field, ``tie_word_embeddings``) are
refused.  State dtype: vLLM's auto (model dtype).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, set_moe
from reportgen.arch.fields import Fields, check_int
from reportgen.arch.mixers import mamba1_mixer, state_layer
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Tensor

HANDLES = ("mamba_d_state", "mamba_expand", "attn_layer_period")
# transformers' class defaults, for a config that states only one of a period / offset pair
_PERIODS = (("attn_layer_offset", 4, "attn_layer_period", 8), ("expert_layer_offset", 1, "expert_layer_period", 2))


def precheck(raw: Mapping[str, Any]) -> None:
    """Offset < period, named, before transformers rejects it in a message that names neither field."""
    for off_name, off_default, per_name, per_default in _PERIODS:
        off, per = raw.get(off_name, off_default), raw.get(per_name, per_default)
        for name, v in ((off_name, off), (per_name, per)):
            check_int(name, v, 0 if name == off_name else 1, 1 << 12, False)
        if off >= per:
            raise ConfigError(off_name, f"{off} must be smaller than {per_name} {per}")


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    if g.tie:
        raise Unsupported("jamba with tie_word_embeddings=true: vLLM's jamba.py always allocates its own lm_head")
    hd = g.hidden // g.n_heads
    if f.raw.get("head_dim") not in (None, hd):
        raise Unsupported("jamba with head_dim != hidden_size / num_attention_heads: vLLM ignores head_dim")
    a_period, a_off = f.int("attn_layer_period"), f.int("attn_layer_offset", lo=0)
    e_period, e_off = f.int("expert_layer_period"), f.int("expert_layer_offset", lo=0)
    if a_off >= a_period:
        raise f.err("attn_layer_offset", f"{a_off} must be smaller than attn_layer_period {a_period}")
    if e_off >= e_period:
        raise f.err("expert_layer_offset", f"{e_off} must be smaller than expert_layer_period {e_period}")
    n_exp = f.int("num_experts")
    inter = f.int("intermediate_size")
    m_inter = f.int("mamba_expand") * g.hidden
    dt_rank = f.int("mamba_dt_rank")
    moe_layers = [n_exp > 1 and i % e_period == e_off for i in range(g.n_layers)]
    if any(moe_layers):
        set_moe(spec, f, n_exp)
    def mixer(ts: list[Tensor], i: int, p: str) -> LayerKV:
        if i % a_period == a_off:
            B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, hd)
            return LayerKV(AttentionKind.FULL, g.n_kv, hd, hd)
        return state_layer(mamba1_mixer(ts, i, f"{p}.mamba", g.hidden, intermediate=m_inter,
                                        state=f.int("mamba_d_state"), conv_kernel=f.int("mamba_d_conv"),
                                        dt_rank=dt_rank, conv_bias=f.flag("mamba_conv_bias", True),
                                        proj_bias=f.flag("mamba_proj_bias"), dt_bc_norms=True))

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if moe_layers[i]:
            B.router(ts, i, f"{p}.feed_forward.router", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.feed_forward.experts", g.hidden, inter, n_exp)
        else:
            B.gated_mlp(ts, i, f"{p}.feed_forward", g.hidden, inter, C.DENSE_MLP)

    decoder_stack(spec, f, g, attention=mixer, mlp=mlp, norms=("input_layernorm", "pre_ff_layernorm"),
                  final_norm="model.final_layernorm", tied=False)
    spec.head_dim = hd
    spec.rotary_dim = 0
    spec.rope_caches = ()
