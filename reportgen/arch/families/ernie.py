"""ERNIE-4.5 MoE (ernie4_5_moe): Llama-like GQA attention + MoE layers with shared experts.

Follows vLLM ``vllm/model_executor/models/ernie45_moe.py`` (read at commit
0028a75108fd7d31d4eab9f0ef786239c1734cdb), checked parameter-for-parameter against transformers 5.24
``modeling_ernie4_5_moe.py``.  (The dense ernie4_5 is vLLM's LlamaForCausalLM: families/llama.py.)

* attention: q/k/v (bias = ``use_bias`` in both) and o -- vLLM's o_proj, shared experts and lm_head never
  have a bias while transformers' follow ``use_bias``: ``use_bias`` configs are refused;
  ``head_dim`` from the config, else hidden / heads (both);
* a layer is MoE when ``moe_layer_start_index <= i <= moe_layer_end_index`` and
  ``(i + 1) % moe_layer_interval == 0`` (same rule in both; transformers turns an end index of -1 into the
  last layer), else a dense MLP of ``intermediate_size``; vLLM raises without any MoE layer (refused);
* MoE: router ``gate`` ``E x H`` and ``e_score_correction_bias`` (E; transformers ``moe_statics``, a
  parameter of shape (1, E); vLLM a parameter on the gate) -- both replicated; ``moe_num_experts`` FusedMoE
  experts of ``moe_intermediate_size``; shared MLP of ``moe_intermediate_size * moe_num_shared_experts``
  when that count is positive;
* lm_head tied per ``tie_word_embeddings`` (vLLM shares the embedding then); KV: full attention everywhere.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor


def build_moe(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    if f.flag("use_bias"):
        raise Unsupported("ernie4_5_moe with use_bias=true: vLLM's o_proj, shared experts and lm_head have no bias")
    if f.get("hidden_act") != "silu":
        raise Unsupported(f"ernie4_5_moe with hidden_act {f.get('hidden_act')!r}: vLLM accepts silu only")
    n_exp = f.int("moe_num_experts")
    k = f.int("moe_k")
    if k > n_exp:
        raise f.err("moe_k", f"{k} exceeds the {n_exp} experts")
    n_shared = f.int("moe_num_shared_experts", 0, lo=0)
    start = f.int("moe_layer_start_index", 0, lo=0)
    end = f.get("moe_layer_end_index")
    end = g.n_layers - 1 if end is None or end == -1 else f.int("moe_layer_end_index", lo=0)
    step = f.int("moe_layer_interval", 1)
    sparse = [start <= i <= end and (i + 1) % step == 0 for i in range(g.n_layers)]
    if not any(sparse):
        raise Unsupported("ernie4_5_moe without a MoE layer: vLLM's Ernie4_5_MoeForCausalLM raises")
    moe_inter = f.int("moe_intermediate_size")
    inter = f.int("intermediate_size") if not all(sparse) else 0
    spec.num_experts, spec.experts_per_token, spec.num_shared_experts = n_exp, k, n_shared
    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if sparse[i]:
            B.router(ts, i, f"{p}.mlp.gate", g.hidden, n_exp)
            ts.append(Tensor(f"{p}.mlp.gate.e_score_correction_bias", (n_exp,), S.REPLICATED, C.ROUTER, i))
            B.experts(ts, i, f"{p}.mlp.experts", g.hidden, moe_inter, n_exp)
            if n_shared:
                B.gated_mlp(ts, i, f"{p}.mlp.shared_experts", g.hidden, moe_inter * n_shared, C.SHARED_EXPERTS)
        else:
            B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)

    decoder_stack(spec, f, g, attention=gqa_attention(g), mlp=mlp)
