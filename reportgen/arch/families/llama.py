"""Llama-shaped dense decoders: llama, mistral, qwen2, qwen3, granite.

One layer = GQA attention (q/k/v/o) + SwiGLU MLP + two RMSNorms; the families
differ only in biases and q/k norms, read from the modeling code of
transformers 5.24:

* llama, granite: q/k/v/o bias = ``attention_bias``; gate/up/down bias = ``mlp_bias``
* mistral: no biases at all (the model code ignores ``attention_bias``)
* qwen2: q/k/v bias always, o without
* qwen3: q/k/v/o bias = ``attention_bias``; per-head RMSNorm ``q_norm`` / ``k_norm`` (head_dim)

Granite's multipliers and Llama-3's rope scaling add no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import Geometry, geometry, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.spec import Component as C, ModelSpec, Tensor


@dataclass(frozen=True, slots=True)
class Biases:
    qkv: bool
    o: bool
    mlp: bool
    qk_norm: bool = False


def biases(model_type: str, f: Fields) -> Biases:
    if model_type in ("llama", "granite"):
        ab = f.flag("attention_bias")
        return Biases(ab, ab, f.flag("mlp_bias"))
    if model_type == "mistral":
        for name in ("attention_bias", "mlp_bias", "bias"):
            if f.raw.get(name):
                raise Unsupported(f"mistral with {name}=true: transformers ignores it, vLLM loads a bias")
        return Biases(False, False, False)
    if model_type == "qwen2":
        return Biases(True, False, False)
    if model_type == "qwen3":
        ab = f.flag("attention_bias")
        return Biases(ab, ab, False, qk_norm=True)
    raise Unsupported(f"model_type {model_type} is not a llama-shaped family")


def attention_block(ts: list[Tensor], i: int, g: Geometry, b: Biases) -> None:
    """Attention of layer ``i`` with the family's biases and optional q/k norms."""
    p = f"model.layers.{i}.self_attn"
    B.attention(ts, i, p, g.hidden, g.n_heads, g.n_kv, g.head_dim, qkv_bias=b.qkv, o_bias=b.o)
    if b.qk_norm:
        B.norm(ts, f"{p}.q_norm", g.head_dim, i, comp=C.ATTENTION)
        B.norm(ts, f"{p}.k_norm", g.head_dim, i, comp=C.ATTENTION)


def build(f: Fields, spec: ModelSpec) -> None:
    model_type = f.model_type
    if model_type == "llama" and f.raw.get("bias"):
        raise Unsupported("llama with bias=true: transformers ignores it, vLLM loads attention biases")
    g = geometry(f)
    b = biases(model_type, f)
    inter = f.int("intermediate_size")
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        B.norm(ts, f"model.layers.{i}.input_layernorm", g.hidden, i)
        attention_block(ts, i, g, b)
        B.norm(ts, f"model.layers.{i}.post_attention_layernorm", g.hidden, i)
        B.gated_mlp(ts, i, f"model.layers.{i}.mlp", g.hidden, inter, C.DENSE_MLP, bias=b.mlp)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
