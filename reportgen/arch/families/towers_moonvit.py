"""MoonViT towers and their patch-merger projector: Kimi-VL's 2-D MoonViT and Kimi-K2.5's MoonViT-3D.

The two towers hold the same parameters (vLLM ``moonvit.py`` @055e47c2 for Kimi-VL, ``kimi_k25_vit.py``
@055e47c2 for Kimi-K2.5; the 3-D tower adds only a time table that is a buffer):

* patch embedding: Conv2d(3 -> hidden, patch x patch, bias) and a learned ``height x width x hidden``
  position grid (interpolated per image), replicated;
* per layer: two LayerNorms, the attention's fused q/k/v (``QKVParallelLinear`` with as many K/V heads
  as query heads, so all three parts split by heads: COLUMN) and output (ROW), the MLP's two linears
  (column / row), every linear with a bias; the 2-D RoPE has no parameters;
* a final LayerNorm;
* projector: ``pre_norm`` LayerNorm(hidden) and two ``ReplicatedLinear`` with biases,
  ``hidden * kh * kw`` -> ``hidden * kh * kw`` -> the language model's hidden size.

vLLM builds tower and projector without ``quant_config``: no checkpoint scheme quantizes them.  Only the
tensor names differ between the families (``Names``): Kimi-VL's are vLLM's / the checkpoint's, Kimi-K2.5's
transformers 5.24's (its meta-device count is taken from transformers).
"""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.arch import blocks as B
from reportgen.arch.spec import Component as C, Shard as S, Tensor

V = C.VISION


@dataclass(frozen=True, slots=True)
class Names:
    tower: str                       # prefix of the tower
    layers: str                      # the encoder layers' list, under ``tower``
    pos: str                         # the learned position grid, under ``tower``
    norms: tuple[str, str]           # pre-attention / pre-MLP LayerNorms, under a layer
    qkv: tuple[str, str, str]        # the q / k / v parts, under a layer
    out: str                         # attention output, under a layer
    mlp: tuple[str, str]             # MLP in / out, under a layer
    final_norm: str                  # under ``tower``
    projector: tuple[str, str, str]  # pre_norm, first and second linear (full names)


def tower(ts: list[Tensor], n: Names, *, hidden: int, inter: int, layers: int, patch: tuple[int, int],
          pos_hw: tuple[int, int]) -> None:
    """The MoonViT tower's tensors (``hidden`` a multiple of the head count: q/k/v are ``hidden`` wide)."""
    p, h = n.tower, hidden
    ts.append(Tensor(f"{p}.patch_embed.proj.weight", (h, 3, *patch), S.REPLICATED, V, None))
    ts.append(Tensor(f"{p}.patch_embed.proj.bias", (h,), S.REPLICATED, V, None))
    ts.append(Tensor(f"{p}.{n.pos}", (*pos_hw, h), S.REPLICATED, V, None))
    for i in range(layers):
        q = f"{p}.{n.layers}.{i}"
        B.norm(ts, f"{q}.{n.norms[0]}", h, None, comp=V, bias=True)
        for name in n.qkv:
            B.linear(ts, f"{q}.{name}", h, h, S.COLUMN, V, None, bias=True, quantizable=False)
        B.linear(ts, f"{q}.{n.out}", h, h, S.ROW, V, None, bias=True, quantizable=False)
        B.norm(ts, f"{q}.{n.norms[1]}", h, None, comp=V, bias=True)
        B.linear(ts, f"{q}.{n.mlp[0]}", h, inter, S.COLUMN, V, None, bias=True, quantizable=False)
        B.linear(ts, f"{q}.{n.mlp[1]}", inter, h, S.ROW, V, None, bias=True, quantizable=False)
    B.norm(ts, f"{p}.{n.final_norm}", h, None, comp=V, bias=True)


def projector(ts: list[Tensor], n: Names, *, hidden: int, merge: int, text_hidden: int) -> None:
    """The patch-merger projector: ``merge`` = kh * kw patches concatenated, then two replicated linears."""
    merged = hidden * merge
    B.norm(ts, n.projector[0], hidden, None, comp=V, bias=True)
    B.linear(ts, n.projector[1], merged, merged, S.REPLICATED, V, None, bias=True, quantizable=False)
    B.linear(ts, n.projector[2], merged, text_hidden, S.REPLICATED, V, None, bias=True, quantizable=False)
