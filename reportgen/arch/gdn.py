"""Gated DeltaNet (linear-attention) layers: their tensors, as vLLM shards them, and their state.

Why a module of its own: the GDN layer is a block like attention or an MLP,
shared by Qwen3-Next, Qwen3.5 and Qwen3.5-MoE (and the shape every future
Qwen GDN family reuses); its sharding is a vLLM fact about the layer, read in
``vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py``
(``QwenGatedDeltaNetAttention``, commit 00545a8acc220f4c5fa47afad739e3d2baac7310):

* ``in_proj_qkvz`` ``(2*Kd + 2*Vd, H)``: MergedColumnParallelLinear -> COLUMN.  Qwen3-Next ships it
  fused (one interleaved shard), Qwen3.5 as ``in_proj_qkv`` + ``in_proj_z``; same rows, same split.
* ``in_proj_ba`` ``(2*nv, H)``: MergedColumnParallelLinear -> COLUMN (Qwen3.5: ``in_proj_b`` +
  ``in_proj_a``).  vLLM replicates it for Qwen3.5 AWQ/GPTQ/INC (Marlin) checkpoints at TP > 1
  (``maybe_disable_tp``): 2*nv*H elements per layer, noted, not modelled.
* ``conv1d.weight`` ``(2*Kd + Vd, 1, kernel)``: ColumnParallelLinear with vLLM's
  ``mamba_v2_sharded_weight_loader`` (q, k, v parts each / tp) -> COLUMN, never quantized.
* ``A_log``, ``dt_bias`` ``(nv,)``: ``divide(nv, tp)`` per rank -> COLUMN (A_log is float32 in vLLM:
  2 bytes per value per layer more than costed; < 0.001 % of any Qwen GDN model).
* ``norm.weight`` ``(hv,)``: RMSNormGated over one head -> REPLICATED.
* ``out_proj`` ``(H, Vd)``: RowParallelLinear -> ROW.

Kd = ``linear_num_key_heads * linear_key_head_dim``, Vd = ``linear_num_value_heads *
linear_value_head_dim``.  The recurrent state is ``StateGeometry("gdn", ...)`` (arch/state.py).
vLLM divides key and value heads by TP (``divide(num_v_heads, tp)``, ``num_k_heads // tp`` views),
so both must divide: ``state_tp_rule`` in arch/state.py names the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.arch import blocks as B
from reportgen.arch.fields import Fields
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, Shard as S, Tensor
from reportgen.arch.state import StateGeometry


@dataclass(frozen=True, slots=True)
class GdnDims:
    num_k_heads: int
    num_v_heads: int
    head_k_dim: int
    head_v_dim: int
    conv_kernel: int

    @property
    def key_dim(self) -> int:
        return self.num_k_heads * self.head_k_dim

    @property
    def value_dim(self) -> int:
        return self.num_v_heads * self.head_v_dim


def gdn_dims(f: Fields) -> GdnDims:
    """The ``linear_*`` fields of a Qwen GDN config (class defaults allowed)."""
    d = GdnDims(f.int("linear_num_key_heads"), f.int("linear_num_value_heads"), f.int("linear_key_head_dim"),
                f.int("linear_value_head_dim"), f.int("linear_conv_kernel_dim"))
    if d.num_v_heads % d.num_k_heads:
        raise f.err("linear_num_value_heads", f"{d.num_v_heads} is not a multiple of linear_num_key_heads "
                    f"{d.num_k_heads} (each key head serves a group of value heads)")
    return d


def gdn_layer(ts: list[Tensor], layer: int, prefix: str, hidden: int, d: GdnDims, *, olmo: bool = False) -> None:
    """The tensors of one Gated DeltaNet token mixer (see the module docstring for the sharding).

    ``olmo``: OLMo-Hybrid's checkpoint names (vLLM ``olmo_gdn_linear_attn.py``): ``q/k/v/g_proj`` (vLLM's
    MergedColumn ``in_proj_qkvg``, the same rows as Qwen's ``in_proj_qkvz``), ``a_proj`` / ``b_proj`` (two
    ColumnParallel, Qwen's ``in_proj_ba``), ``o_norm`` / ``o_proj``; same shapes and shard classes."""
    kd, vd = d.key_dim, d.value_dim
    comp = C.LINEAR_ATTENTION
    if olmo:
        for name, rows in (("q_proj", kd), ("k_proj", kd), ("v_proj", vd), ("g_proj", vd),
                           ("a_proj", d.num_v_heads), ("b_proj", d.num_v_heads)):
            B.linear(ts, f"{prefix}.{name}", hidden, rows, S.COLUMN, comp, layer)
    else:
        B.linear(ts, f"{prefix}.in_proj_qkvz", hidden, 2 * kd + 2 * vd, S.COLUMN, comp, layer)
        B.linear(ts, f"{prefix}.in_proj_ba", hidden, 2 * d.num_v_heads, S.COLUMN, comp, layer)
    ts.append(Tensor(f"{prefix}.conv1d.weight", (2 * kd + vd, 1, d.conv_kernel), S.COLUMN, comp, layer))
    ts.append(Tensor(f"{prefix}.A_log", (d.num_v_heads,), S.COLUMN, comp, layer))
    ts.append(Tensor(f"{prefix}.dt_bias", (d.num_v_heads,), S.COLUMN, comp, layer))
    out = "o" if olmo else "out"
    B.norm(ts, f"{prefix}.{'o_norm' if olmo else 'norm'}", d.head_v_dim, layer, comp=comp)
    B.linear(ts, f"{prefix}.{out}_proj", vd, hidden, S.ROW, comp, layer)


def gdn_state(d: GdnDims, ssm_dtype: str | None) -> LayerKV:
    """The cache entry of a GDN layer: a per-sequence state, no tokens."""
    geom = StateGeometry("gdn", (d.num_k_heads, d.num_v_heads, d.head_k_dim, d.head_v_dim, d.conv_kernel),
                         ssm_dtype=ssm_dtype)
    return LayerKV(AttentionKind.STATE, state=geom)
