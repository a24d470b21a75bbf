"""Hunyuan v1 (hunyuan_v1_dense, hunyuan_v1_moe): GQA attention with per-head q/k norms, optional MoE.

Follows vLLM ``vllm/model_executor/models/hunyuan_v1.py`` (read at commit
00f8d4456f506c4885a122c993796a6abc319af8), checked parameter-for-parameter against transformers 5.24
``modeling_hunyuan_v1_dense.py`` / ``modeling_hunyuan_v1_moe.py``.  Only the configs on which the two build
the same model are priced; the rest are refused with the difference named:

* q/k/v/o bias = ``attention_bias`` (vLLM also reads ``bias``; its dense MLP reads ``mlp_bias``, which
  transformers ignores); per-head ``query_layernorm`` / ``key_layernorm`` exist in transformers always and in
  vLLM only with ``use_qk_norm`` -> ``use_qk_norm`` must be true;
* ``head_dim``: transformers needs it stated (it does not derive one); vLLM takes it when set;
* cross-layer attention (``use_cla``) exists in vLLM only -> refused;
* MoE (transformers: every layer; vLLM: when ``num_experts > 1``): router ``gate.wg`` ``E x H`` (replicated),
  ``num_experts`` experts and one shared MLP, all of ``intermediate_size`` in transformers; vLLM sizes the
  experts by ``moe_intermediate_size`` when set and the shared MLP by ``intermediate_size *
  num_shared_expert`` only with ``use_mixed_mlp_moe`` -> accepted when those agree (Hunyuan-A13B's do);
* lm_head tied per ``tie_word_embeddings``; KV: full attention everywhere.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Tensor


def _check(f: Fields, family: str) -> None:
    for name in ("bias", "mlp_bias"):
        if f.raw.get(name):
            raise Unsupported(f"{family} with {name}=true: vLLM loads that bias, transformers does not")
    if not f.flag("use_qk_norm"):
        raise Unsupported(f"{family} without use_qk_norm: transformers always builds the per-head q/k norms, "
                          "vLLM only with use_qk_norm")
    if f.flag("use_cla"):
        raise Unsupported(f"{family} with use_cla: vLLM's cross-layer attention is not in transformers")
    if f.get("head_dim") is None:
        raise Unsupported(f"{family} without head_dim: transformers 5.24 cannot build it (no meta-device count)")
    if f.get("hidden_act") != "silu":
        raise Unsupported(f"{family} with hidden_act {f.get('hidden_act')!r}: vLLM accepts silu only")


def _moe_widths(f: Fields, inter: int) -> int:
    """Experts and shared MLP width agreed by both, else refused."""
    n_exp = f.int("num_experts")
    if n_exp <= 1:
        raise Unsupported("hunyuan_v1_moe with num_experts <= 1: vLLM builds a dense MLP, transformers a MoE block")
    moe_inter = f.get("moe_intermediate_size")
    if isinstance(moe_inter, list) and moe_inter and all(v == inter for v in moe_inter):
        moe_inter = inter
    if moe_inter is not None and moe_inter != inter:
        raise Unsupported("hunyuan_v1_moe with moe_intermediate_size != intermediate_size: vLLM sizes the experts "
                          "by it, transformers by intermediate_size")
    shared = f.get("num_shared_expert", 1)
    if isinstance(shared, list) and shared and all(v == shared[0] for v in shared):
        shared = shared[0]
    if not f.raw.get("use_mixed_mlp_moe") or shared != 1:
        raise Unsupported("hunyuan_v1_moe: transformers always adds one shared MLP of intermediate_size, vLLM "
                          "one of intermediate_size * num_shared_expert with use_mixed_mlp_moe only; these differ")
    topk = f.get("moe_topk")
    if isinstance(topk, list):
        if not topk or any(t != topk[0] for t in topk):
            raise Unsupported("hunyuan_v1_moe with per-layer moe_topk is not modelled")
        topk = topk[0]
    if not isinstance(topk, int) or isinstance(topk, bool) or not 1 <= topk <= n_exp:
        raise f.err("moe_topk", f"must be an integer in 1..{n_exp}, got {topk!r}")
    return topk


def build(f: Fields, spec: ModelSpec) -> None:
    family = f.model_type
    _check(f, family)
    g = geometry(f)
    inter = f.int("intermediate_size")
    bias = f.flag("attention_bias")
    moe = family == "hunyuan_v1_moe"
    if moe:
        spec.num_experts = n_exp = f.int("num_experts")
        spec.experts_per_token = _moe_widths(f, inter)
        spec.num_shared_experts = 1
    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if moe:
            B.router(ts, i, f"{p}.mlp.gate.wg", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.mlp.experts", g.hidden, inter, n_exp)
            B.gated_mlp(ts, i, f"{p}.mlp.shared_mlp", g.hidden, inter, C.SHARED_EXPERTS)
        else:
            B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)

    attention = gqa_attention(g, qkv_bias=bias, o_bias=bias, qk_norm="head",
                              qk_names=("query_layernorm", "key_layernorm"))
    decoder_stack(spec, f, g, attention=attention, mlp=mlp)
