"""State-layer mixers (Mamba-1, Mamba-2, LFM2 short conv): their tensors, shard classes and state geometry.

Why a module next to ``blocks.py``: every Mamba-style hybrid (nemotron_h, bamba, granitemoehybrid,
falcon_h1, zamba2, jamba, lfm2) loads the same vLLM mixer layer, so the per-tensor sharding is a fact
about the mixer, not the family.  A mixer returns the ``StateGeometry`` its layer's state has
(``arch/state.py``), so tensors and state are read from the same config fields once.

Mamba-2 follows vLLM ``vllm/model_executor/layers/mamba/mamba_mixer2.py`` (read at commit
bb435dbd5899c5374d29f6383bb49fe8a6a814ef, the one version stored):

* ``in_proj`` ``(2I + 2GN + H, hidden)`` is ONE ColumnParallelLinear whose loader
  (``mamba_v2_sharded_weight_loader``) shards z and x by heads, B and C by groups and dt by heads.
  When ``G == 1`` and tp > 1, vLLM pads the groups to tp (``extra_groups_for_head_shards``) and
  every rank holds the WHOLE B and C rows.  ``Shard`` cannot say "column, but these rows
  replicated", so the checkpoint tensor is split here into ``in_proj[zx]`` (COLUMN),
  ``in_proj[BC]`` (COLUMN when ``G > 1``, REPLICATED when ``G == 1``: exactly ``2N`` rows on every
  rank at any tp) and ``in_proj[dt]`` (COLUMN).  vLLM rejects ``G % tp != 0`` unless ``G == 1``
  (assert), and ``heads % tp != 0`` (assert): ``state.state_tp_rule`` says so for the layout check.
* ``conv1d`` (weight ``(I + 2GN, 1, k)``, bias ``(I + 2GN,)``): same split, ``[x]`` COLUMN, ``[BC]``
  as above; never quantized (``quant_config=None``).
* ``A``, ``D``, ``dt_bias`` ``(H,)``: sharded by heads (COLUMN).  vLLM keeps ``A`` in float32 (the
  ``Tensor`` has no per-tensor dtype: its 4 bytes per head are priced at the model dtype -- at most
  a few KiB per model).
* ``norm.weight`` ``(I,)`` (gated RMSNorm): sharded by TP (COLUMN).  ``out_proj``: ROW.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, Shard as S, Tensor
from reportgen.arch.state import StateGeometry


def mamba2_mixer(ts: list[Tensor], layer: int, prefix: str, hidden: int, *, heads: int, head_dim: int,
                 groups: int, state: int, conv_kernel: int, conv_bias: bool, proj_bias: bool,
                 norm: bool = True, intermediate: int | None = None) -> StateGeometry:
    """vLLM ``MambaMixer2``; returns its ``mamba2`` state geometry.

    ``intermediate`` defaults to ``heads * head_dim`` (what every family passes but falcon_h1,
    whose ``mamba_d_ssm`` is checked equal to it by the caller).
    """
    inter = heads * head_dim if intermediate is None else intermediate
    comp = C.LINEAR_ATTENTION
    bc_shard = S.REPLICATED if groups == 1 else S.COLUMN
    bc = 2 * groups * state
    B.linear(ts, f"{prefix}.in_proj[zx]", hidden, 2 * inter, S.COLUMN, comp, layer, bias=proj_bias)
    B.linear(ts, f"{prefix}.in_proj[BC]", hidden, bc, bc_shard, comp, layer, bias=proj_bias)
    B.linear(ts, f"{prefix}.in_proj[dt]", hidden, heads, S.COLUMN, comp, layer, bias=proj_bias)
    ts.append(Tensor(f"{prefix}.conv1d[x].weight", (inter, 1, conv_kernel), S.COLUMN, comp, layer))
    ts.append(Tensor(f"{prefix}.conv1d[BC].weight", (bc, 1, conv_kernel), bc_shard, comp, layer))
    if conv_bias:
        ts.append(Tensor(f"{prefix}.conv1d[x].bias", (inter,), S.COLUMN, comp, layer))
        ts.append(Tensor(f"{prefix}.conv1d[BC].bias", (bc,), bc_shard, comp, layer))
    for name in ("A", "D", "dt_bias"):
        ts.append(Tensor(f"{prefix}.{name}", (heads,), S.COLUMN, comp, layer))
    if norm:
        ts.append(Tensor(f"{prefix}.norm.weight", (inter,), S.COLUMN, comp, layer))
    B.linear(ts, f"{prefix}.out_proj", inter, hidden, S.ROW, comp, layer, bias=proj_bias)
    return StateGeometry("mamba2", (inter, groups, heads, head_dim, state, conv_kernel))


def mamba1_mixer(ts: list[Tensor], layer: int, prefix: str, hidden: int, *, intermediate: int, state: int,
                 conv_kernel: int, dt_rank: int, conv_bias: bool, proj_bias: bool,
                 dt_bc_norms: bool) -> StateGeometry:
    """vLLM ``MambaMixer`` (``vllm/model_executor/layers/mamba/mamba_mixer.py``, commit
    00f8d4456f506c4885a122c993796a6abc319af8): ``in_proj`` MergedColumn ``[I, I]`` (COLUMN),
    depthwise ``conv1d`` ``(I, 1, k)`` COLUMN, ``x_proj`` RowParallel ``(dt_rank + 2N, I)`` (ROW, no bias),
    ``dt_proj`` Column ``(I, dt_rank)`` with bias (COLUMN), ``A`` ``(I, N)`` (float32 in vLLM) and ``D``
    ``(I,)`` split by rows (COLUMN), ``out_proj`` ROW; with ``dt_bc_norms`` (Jamba) the replicated RMSNorms
    ``dt_layernorm`` (dt_rank), ``b_layernorm`` / ``c_layernorm`` (N).  State: ``mamba1``."""
    comp, inter = C.LINEAR_ATTENTION, intermediate
    B.linear(ts, f"{prefix}.in_proj", hidden, 2 * inter, S.COLUMN, comp, layer, bias=proj_bias)
    ts.append(Tensor(f"{prefix}.conv1d.weight", (inter, 1, conv_kernel), S.COLUMN, comp, layer))
    if conv_bias:
        ts.append(Tensor(f"{prefix}.conv1d.bias", (inter,), S.COLUMN, comp, layer))
    B.linear(ts, f"{prefix}.x_proj", inter, dt_rank + 2 * state, S.ROW, comp, layer)
    B.linear(ts, f"{prefix}.dt_proj", dt_rank, inter, S.COLUMN, comp, layer, bias=True)
    ts.append(Tensor(f"{prefix}.A", (inter, state), S.COLUMN, comp, layer))
    ts.append(Tensor(f"{prefix}.D", (inter,), S.COLUMN, comp, layer))
    B.linear(ts, f"{prefix}.out_proj", inter, hidden, S.ROW, comp, layer, bias=proj_bias)
    if dt_bc_norms:
        B.norm(ts, f"{prefix}.dt_layernorm", dt_rank, layer, comp=comp)
        B.norm(ts, f"{prefix}.b_layernorm", state, layer, comp=comp)
        B.norm(ts, f"{prefix}.c_layernorm", state, layer, comp=comp)
    return StateGeometry("mamba1", (inter, state, conv_kernel))


def kda_mixer(ts: list[Tensor], layer: int, prefix: str, hidden: int, *, heads: int, head_dim: int,
              conv_kernel: int, low_rank: bool = True, fp32_bytes: int = 0) -> StateGeometry:
    """vLLM ``KimiDeltaAttention`` (``vllm/model_executor/layers/kda.py``, commit
    01a7e5d91d42e6232d746d12f898a590f1ee77f9), ``P = heads * head_dim``: ``q/k/v_proj`` COLUMN;
    ``q/k/v_conv1d`` ``(P, 1, k)`` COLUMN (float32 in vLLM, never quantized; transformers 5 stores them as one
    ``conv1d`` of ``3P`` -- the same count); ``f_a_proj`` / ``g_a_proj`` (hidden -> head_dim) REPLICATED;
    ``f_b_proj`` / ``g_b_proj`` (head_dim -> P) COLUMN; ``dt_bias`` (P, float32) and ``A_log``
    (1, 1, heads, 1, float32) split by heads (COLUMN); ``b_proj`` (hidden -> heads) COLUMN; gated
    ``o_norm`` (head_dim) REPLICATED; ``o_proj`` ROW.  vLLM asserts ``heads % tp == 0``.

    ``low_rank=False``: the gates without the low-rank pair -- ``f_proj`` / ``g_proj`` (hidden -> P) COLUMN --
    as vLLM's ``BailingMoeV3KimiDeltaAttention`` (``no_kda_lora``) builds them; its ``qkvb_proj`` is the
    same rows as q/k/v/b here.  ``fp32_bytes`` (4): mark the float32 tensors (conv1d, ``dt_bias``,
    ``A_log``) with ``Tensor.dtype_bytes``; 0 leaves them to the weight scheme (Kimi-Linear's pricing).
    State: ``kda`` with q, k and v of the same width."""
    comp, proj = C.LINEAR_ATTENTION, heads * head_dim
    for name in ("q_proj", "k_proj", "v_proj"):
        B.linear(ts, f"{prefix}.{name}", hidden, proj, S.COLUMN, comp, layer)
    for name in ("q_conv1d", "k_conv1d", "v_conv1d"):
        ts.append(Tensor(f"{prefix}.{name}.weight", (proj, 1, conv_kernel), S.COLUMN, comp, layer,
                         dtype_bytes=fp32_bytes))
    if low_rank:
        B.linear(ts, f"{prefix}.f_a_proj", hidden, head_dim, S.REPLICATED, comp, layer)
        B.linear(ts, f"{prefix}.f_b_proj", head_dim, proj, S.COLUMN, comp, layer)
    else:
        B.linear(ts, f"{prefix}.f_proj", hidden, proj, S.COLUMN, comp, layer)
    ts.append(Tensor(f"{prefix}.dt_bias", (proj,), S.COLUMN, comp, layer, dtype_bytes=fp32_bytes))
    ts.append(Tensor(f"{prefix}.A_log", (1, 1, heads, 1), S.COLUMN, comp, layer, dtype_bytes=fp32_bytes))
    B.linear(ts, f"{prefix}.b_proj", hidden, heads, S.COLUMN, comp, layer)
    if low_rank:
        B.linear(ts, f"{prefix}.g_a_proj", hidden, head_dim, S.REPLICATED, comp, layer)
        B.linear(ts, f"{prefix}.g_b_proj", head_dim, proj, S.COLUMN, comp, layer)
    else:
        B.linear(ts, f"{prefix}.g_proj", hidden, proj, S.COLUMN, comp, layer)
    B.norm(ts, f"{prefix}.o_norm", head_dim, layer, comp=comp)
    B.linear(ts, f"{prefix}.o_proj", proj, hidden, S.ROW, comp, layer)
    return StateGeometry("kda", (heads, head_dim, heads, head_dim, conv_kernel))


def short_conv_mixer(ts: list[Tensor], layer: int, prefix: str, dim: int, *, kernel: int,
                     bias: bool) -> StateGeometry:
    """vLLM ``ShortConv`` (``vllm/model_executor/layers/mamba/short_conv.py``, commit
    0123e1dc5c65f01d34ae4e405f2204e79aa68f09): ``in_proj`` MergedColumn ``[dim] * 3`` (COLUMN), depthwise
    ``conv`` ``(dim, 1, L)`` ColumnParallel (COLUMN, not quantized), ``out_proj`` ROW; ``conv_bias`` on all
    three.  State: ``short_conv`` ``(dim, L)``."""
    comp = C.LINEAR_ATTENTION
    B.linear(ts, f"{prefix}.in_proj", dim, 3 * dim, S.COLUMN, comp, layer, bias=bias)
    ts.append(Tensor(f"{prefix}.conv.weight", (dim, 1, kernel), S.COLUMN, comp, layer))
    if bias:
        ts.append(Tensor(f"{prefix}.conv.bias", (dim,), S.COLUMN, comp, layer))
    B.linear(ts, f"{prefix}.out_proj", dim, dim, S.ROW, comp, layer, bias=bias)
    return StateGeometry("short_conv", (dim, kernel))


def state_layer(geometry: StateGeometry) -> LayerKV:
    return LayerKV(AttentionKind.STATE, state=geometry)
