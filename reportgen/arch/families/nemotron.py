"""Nemotron-4 / Minitron dense decoders: nemotron (Nemotron-4-15B / 340B, Minitron-4B / 8B, Mistral-NeMo-Minitron).

From transformers 5.24 ``modeling_nemotron.py`` and vLLM ``vllm/model_executor/models/nemotron.py``
@ccf9c9bc (``NemotronForCausalLM``, vLLM ``registry.py`` @bf8e7624):

* ``head_dim``: the config's, else ``hidden_size // num_attention_heads`` (both codes; vLLM's own
  ``NemotronConfig`` also reads ``kv_channels``, transformers does not -- a ``kv_channels`` that
  disagrees is refused);
* q/k/v AND o biases follow ``attention_bias`` (both codes); vLLM also turns them on for a ``bias``
  field that transformers ignores -- refused when it would add biases;
* MLP without a gate: ``up_proj`` COLUMN, ``down_proj`` ROW (squared ReLU), biases = ``mlp_bias``;
* ``NemotronLayerNorm1P`` (a LayerNorm with weight and bias, ``weight + 1`` applied) for
  ``input_layernorm``, ``post_attention_layernorm`` and the final ``norm``;
* partial rotary: vLLM ``get_rope(head_dim, ..., partial_rotary_factor=config.partial_rotary_factor)``
  -- a cache ``int(head_dim * factor)`` wide; transformers' config class defaults the factor to 0.5
  and keeps it in ``rope_parameters`` (``common.rotary_dim``).  A legacy ``rope_percent`` /
  ``rope_percentage`` that disagrees with it is refused (vLLM's old ``NemotronConfig`` read them);
* every layer full attention (vLLM passes no window); tie flag honoured (vLLM ties ``lm_head``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention, rotary_dim
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    kv_channels = f.raw.get("kv_channels")
    if kv_channels is not None and f.raw.get("head_dim") is None and kv_channels != g.head_dim:
        raise Unsupported(f"nemotron with kv_channels {kv_channels!r} and no head_dim: vLLM's NemotronConfig "
                          "takes it as head_dim, transformers ignores it")
    bias = f.flag("attention_bias")
    if f.raw.get("bias") and not bias:
        raise Unsupported("nemotron with bias=true: vLLM loads q/k/v/o biases (attention_bias or bias), "
                          "transformers ignores it")
    rot = rotary_dim(f, g.head_dim)
    for name in ("rope_percent", "rope_percentage"):
        pct = f.raw.get(name)
        if pct is not None and (isinstance(pct, bool) or not isinstance(pct, (int, float))
                                or int(g.head_dim * pct) != rot):
            raise Unsupported(f"nemotron with {name} {pct!r}: vLLM's NemotronConfig reads it, transformers uses "
                              "rope_parameters.partial_rotary_factor")
    inter = f.int("intermediate_size")
    mlp_bias = f.flag("mlp_bias")

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.plain_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP, bias=mlp_bias, names=("up_proj", "down_proj"))

    decoder_stack(spec, f, g, attention=gqa_attention(g, qkv_bias=bias, o_bias=bias), mlp=mlp, norm_bias=True)
