"""gpt-oss: GQA attention with biases and per-head sinks, MoE with biased experts.

From the transformers 5.24 model code:

* q/k/v/o biases (``attention_bias``, default true); ``sinks`` = one learned
  logit per query head (column-parallel: each rank keeps its heads' sinks);
* router ``E x H`` with a bias ``E``;
* experts stored fused and transposed: ``gate_up_proj (E, H, 2I)`` + bias
  ``(E, 2I)``, ``down_proj (E, I, H)`` + bias ``(E, H)``.  Listed here per
  expert in ``(out, in)`` order: gate_up ``(2I, H)`` + ``(2I,)``, down ``(H, I)`` + ``(H,)``;
* alternating sliding (128) / full layers from ``layer_types``.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention, set_moe
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    bias = f.flag("attention_bias", True)
    n_exp = f.int("num_local_experts")
    inter = f.int("intermediate_size")
    set_moe(spec, f, n_exp)
    plain = gqa_attention(g, qkv_bias=bias, o_bias=bias)

    def attention(ts: list[Tensor], i: int, p: str) -> None:
        plain(ts, i, p)
        ts.append(Tensor(f"{p}.self_attn.sinks", (g.n_heads,), S.COLUMN, C.ATTENTION, i))

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.router(ts, i, f"{p}.mlp.router", g.hidden, n_exp, bias=True)
        B.experts(ts, i, f"{p}.mlp.experts", g.hidden, inter, n_exp, bias=True)

    decoder_stack(spec, f, g, attention=attention, mlp=mlp)
