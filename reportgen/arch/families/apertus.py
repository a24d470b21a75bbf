"""Apertus (apertus): Llama-like attention with per-head q/k norms, an xIELU up/down MLP.

Follows vLLM ``vllm/model_executor/models/apertus.py`` (read at commit
055e47c28003156421365af985d676fc921cb075), checked parameter-for-parameter against transformers 5.24
``modeling_apertus.py``:

* q/k/v/o bias = ``attention_bias`` in both; vLLM also reads ``bias`` / ``qkv_bias`` / ``mlp_bias``, which
  transformers ignores -> configs carrying them are refused;
* per-head ``q_norm`` / ``k_norm`` (head_dim, replicated); ``head_dim`` from the config, else hidden / heads;
* MLP: ``up_proj`` (COLUMN) -> xIELU -> ``down_proj`` (ROW), no gate; the xIELU activation has two learned
  scalars per layer (``act_fn.alpha_p`` / ``alpha_n``, shape (1,), replicated) in both; vLLM accepts
  ``hidden_act == xielu`` only;
* norms ``attention_layernorm`` / ``feedforward_layernorm``; lm_head tied per ``tie_word_embeddings``;
* KV: vLLM sets a per-layer window only from ``layer_types`` (the transformers config has none): every
  layer full; a config carrying ``sliding_window`` is refused (transformers has no window at all).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    for name in ("bias", "qkv_bias", "mlp_bias"):
        if name in f.raw and f.raw[name] is not None:
            raise Unsupported(f"apertus with {name}: vLLM reads it, transformers does not")
    if f.raw.get("sliding_window"):
        raise Unsupported("apertus with sliding_window: transformers has no window, vLLM's cache would use it")
    if f.get("hidden_act") != "xielu":
        raise Unsupported(f"apertus with hidden_act {f.get('hidden_act')!r}: vLLM's ApertusMLP accepts xielu only")
    bias = f.flag("attention_bias")
    inter = f.int("intermediate_size")
    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.plain_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP, bias=False, names=("up_proj", "down_proj"))
        for name in ("alpha_p", "alpha_n"):
            ts.append(Tensor(f"{p}.mlp.act_fn.{name}", (1,), S.REPLICATED, C.DENSE_MLP, i))

    decoder_stack(spec, f, g, attention=gqa_attention(g, qkv_bias=bias, o_bias=bias, qk_norm="head"), mlp=mlp,
                  norms=("attention_layernorm", "feedforward_layernorm"))
