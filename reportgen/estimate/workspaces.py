"""Per-GPU attention kernel workspaces a layout row carries in its KV groups: DeepSeek-V4's attention backend
on SM 12.x, the DSA (DeepSeek-V3.2 / GLM-5) lightning indexer's K gather, and FlashMLA-sparse's kept q-concat
buffer, with the vLLM releases and GPU capabilities each applies to.

Why a module of its own: these depend on the GPU (capability) and the vLLM release, not on the model's
layout alone, so ``tables.ModelTables`` applies them per GPU variant and ``exprs.gpu_pass`` prices them per
GPU.  Split out of ``tables.py`` unchanged; ``tables`` re-exports every name.
"""

from __future__ import annotations

# the third item of ``ModelTables.mxfp4_variant`` on SM 12.x (DeepSeek-V4's FlashInfer sparse MLA)
SM12_ATTENTION = "sm12"


def dsv4_attention_for(gpu: tuple | None) -> str | None:
    """DeepSeek-V4's attention backend on ``gpu`` = (compute capability, vLLM version) as far as the profile
    run differs: SM12_ATTENTION on SM 12.x (FlashInfer sparse MLA), else None (FlashMLA; a GPU of unknown
    capability keeps the H100 default)."""
    cc = gpu[0] if gpu is not None else None
    return SM12_ATTENTION if cc is not None and cc[0] == 12 else None


def dsa_indexer_workspace(g, spec, profile, version=None):
    """``g`` with ``dsa_ix`` set for a DSA model (DeepSeek-V3.2 / GLM-5: sparse MLA layers with an indexer key
    cache) under vLLM ``version`` ((major, minor); None: the profile's first release) from
    ``compressed.DSA_INDEXER_WORKSPACE_FROM`` (0.13, inside the 0.11-0.16 profile): the lightning indexer reserves
    its K gather, max_model_len x 40 rows of index_head_dim fp8 + 4 scale bytes (+ 1 MiB radix top-k scratch),
    in the profile run (sparse_attn_indexer.py @006475fe) -- priced per length by ``exprs.encoder_lens``.
    index_head_dim is the layers' ``LayerKV.index_head_dim`` (set from the config by ``families/deepseek_dsa``;
    DeepSeek-V4 layers leave it 0 and carry theirs on ``compressed``)."""
    from dataclasses import replace
    from . import compressed as cm
    d = max((l.index_head_dim for l in getattr(spec, "layers_kv", ()) if getattr(l, "sparse", False)), default=0)
    v = tuple(version[:2]) if version is not None else tuple(profile.first)
    if not d or g.tok_conc or v < cm.DSA_INDEXER_WORKSPACE_FROM:
        return g
    return replace(g, dsa_ix=d)


# FlashMLA-sparse's q-concat buffer: (max_num_batched_tokens, heads per rank, 576) bf16
FLASHMLA_SPARSE_Q_BYTES = 2


def flashmla_sparse_q_concat(g, spec, tp: int, kv_elem_bytes: float):
    """``g`` with ``fm_qc`` set for a DSA model (DeepSeek-V3.2 / GLM-5) with a bf16 (not quantized) KV cache: the
    bytes per batched token of the q-concat buffer FlashMLA-sparse reserves in ``FlashMLASparseImpl.__init__``
    -- ``q_concat_shape = (max_num_batched_tokens, num_heads, head_size)`` bf16 through
    ``current_workspace_manager().get_simultaneous`` and kept as ``self.q_concat_buffer``
    (vllm/v1/attention/backends/mla/flashmla_sparse.py of the v0.18.0 .. v0.28.0 sdists; v0.20.0 lines 750-776;
    v0.29.0 / v0.30.0 pad a bf16 cache's heads to 64 / 128 (``exprs.gpu_pass``'s ``fmq_pad``); from v0.31.0 and at
    main @008a0c31 the view is no longer kept).  ``num_heads`` is the
    rank's (TP-split) heads, ``head_size`` the 576-wide latent (``LayerKV.head_size_k``).  The buffer is made at
    model construction, inside "Model loading took": load-time memory, added per GPU in ``exprs.gpu_pass`` only
    where FlashMLA-sparse is the backend that runs and keeps it (``flashmla_q_concat_on``).  An fp8
    (``fp8_ds_mla``) cache is left at 0: there the same call also reserves the (5 x max_model_len, 576) bf16
    gather, and the profile run's MoE / indexer workspaces then fit inside that kept buffer -- not modelled."""
    from dataclasses import replace
    if g.tok_conc or kv_elem_bytes < 2:
        return g
    hs = max((l.head_size_k for l in getattr(spec, "layers_kv", ()) if getattr(l, "sparse", False)
              and getattr(l, "index_head_dim", 0)), default=0)
    heads = spec.num_attention_heads // tp if spec.num_attention_heads else 0
    if not hs or not heads:
        return g
    return replace(g, fm_qc=heads * hs * FLASHMLA_SPARSE_Q_BYTES, fm_h=heads)


# Where a DSA model's bf16 cache runs on FlashMLA-sparse, which keeps its q-concat buffer from model construction
# (``flashmla_sparse_q_concat``; vLLM release sdists): v0.18.0 is the buffer's first release (v0.17.0 reserves
# the fp8 gather only); from v0.31.0 the view is no longer kept (the profile run's growth frees it: no net KV change).
# SM 9.x: FLASHMLA_SPARSE is the only sparse MLA backend up to v0.24.x; v0.25.0's cuda.py ``_get_backend_priorities``
# puts FLASH_ATTN_MLA_SPARSE (SM 9.x, bf16 caches, no workspace) ahead.  SM 10.x: FLASHINFER_MLA_SPARSE comes first
# at <= 16 heads a rank (the rank's heads, deepseek_v2.py ``num_local_heads``), FLASHMLA_SPARSE above; v0.29.0 /
# v0.30.0 pad a bf16 cache's q-concat heads to ``prefill_padding`` (128 on SM 10.x).
FLASHMLA_Q_CONCAT_SM9 = ((0, 18), (0, 25))
FLASHMLA_Q_CONCAT_SM10 = ((0, 18), (0, 29))
FLASHMLA_Q_CONCAT_SM10_PADDED = ((0, 29), (0, 31))
FLASHINFER_SPARSE_MAX_HEADS = 16


def flashmla_q_concat_on(capability, version) -> tuple[float, int, int]:
    """(on, fewest heads a rank, head padding) of FlashMLA-sparse's kept q-concat buffer for a DSA model's bf16 cache
    on one GPU under one vLLM (major, minor): an SM 9.x GPU (or one of unknown capability: the H100 default) under
    0.18-0.24, any heads; SM 10.x above 16 heads a rank under 0.18-0.28 (unpadded) and 0.29-0.30 (heads padded to 128).
    (0.0, 0, 0) elsewhere: SM 12.x / 8.x do not run FlashMLA-sparse's kept buffer in these versions."""
    if version is None:
        return 0.0, 0, 0
    v = tuple(version)
    major = 9 if capability is None else capability[0]
    if major == 9 and FLASHMLA_Q_CONCAT_SM9[0] <= v < FLASHMLA_Q_CONCAT_SM9[1]:
        return 1.0, 0, 0
    if major == 10 and FLASHMLA_Q_CONCAT_SM10[0] <= v < FLASHMLA_Q_CONCAT_SM10[1]:
        return 1.0, FLASHINFER_SPARSE_MAX_HEADS + 1, 0
    if major == 10 and FLASHMLA_Q_CONCAT_SM10_PADDED[0] <= v < FLASHMLA_Q_CONCAT_SM10_PADDED[1]:
        return 1.0, FLASHINFER_SPARSE_MAX_HEADS + 1, 128
    return 0.0, 0, 0


def sm12_attention_workspace(g):
    """DeepSeek-V4 on SM 12.x: vLLM runs FlashInfer's SM120 sparse MLA (FLASHINFER_MLA_SPARSE_DSV4, the only
    DeepSeek-V4 backend for capability 12; FlashMLA needs SM 9.x / 10.x), whose dummy run reserves FlashInfer's
    128 MiB workspace and not the bf16 prefill gather (``compressed.profile_workspace_bytes``)."""
    from dataclasses import replace

    from . import compressed as cm
    return replace(g, ws_b=0, ws_fi=cm.FLASHINFER_SM120_WORKSPACE)
