"""Hybrid attention + state models in vLLM V1's KV-cache manager: page unification and state blocks.

Why its own module: a state layer (Mamba, Gated DeltaNet, short conv, lightning attention) holds a
fixed state per *sequence*, but vLLM V1 puts it in the same block pool as the attention KV cache.
To share one pool every group's page must have the same size, so vLLM raises the attention block
size until an attention page is at least a state page and pads the state page up to it.  Read in
vLLM (read_file commits):

- ``vllm/model_executor/models/config.py`` ``HybridAttentionMambaModelConfig.verify_and_update_config``
  (commit of the stored version: see docs/accuracy.md "Hybrid models"): without ``mamba_cache_mode
  == "all"``, ``attn_block_size = align * cdiv(mamba_page, align * attn_page_1_token)`` with
  ``align`` = 16 (64 for MLA; 32 on Blackwell for head size 256 with FlashInfer -- not modelled, the
  estimate is per model, not per GPU), never below the user's ``--block-size``; from 0.20 ``align`` is
  ``max(that, block_size)``, so 0.34's default block size 64 aligns hybrids to 64 (``hybrid_block_size``); then
  ``mamba_page_size_padded = block_size * attn_page_1_token``.  Row 71 (Qwen3-Next TP2, bf16)
  logs 544, M01 (Qwen3.5-9B, fp8 KV, float32 delta-rule state) 1056 and "padded 0.76 %": both
  follow from this formula.
- ``vllm/v1/kv_cache_interface.py`` ``MambaSpec.max_memory_usage_bytes`` (commit
  001cabc1be16a59a70d720ed61a13b678c060a18): one page per request in mode ``none``, two in
  ``align`` (the running state plus the last block-aligned one kept for prefix caching), plus
  ``num_speculative_blocks``, plus ``num_prefill_checkpoint_blocks`` in align mode (one for Mamba-2 layers from
  0.32, ``mamba2_checkpoints``; one for the Qwen GDN layers from 0.33 on GPUs running FlashInfer's GDN prefill,
  ``gdn_checkpoints``, which also aligns the block to 64 and takes a checkpoint buffer); mode ``all`` (a state per
  block, Mamba-2 chunk-aligned blocks) is not modelled and is refused.
- ``vllm/v1/core/kv_cache_utils.py``: layers grouped by spec type, ``min`` layers per type per group,
  one pool of ``num_blocks`` blocks shared by all groups, "GPU KV cache size" = ``num_blocks //
  n_groups * min block size``, "Maximum concurrency" = ``num_blocks / blocks one request needs
  summed over the groups`` (reproduced in estimate/kvcache.py).
- Prefix caching for hybrids (``engine/arg_utils.py``): opt-in before v0.28 ("Hybrid models support
  prefix caching but keep it opt-in for now", ``default_prefix_caching = supported and not
  is_hybrid``); on by default with ``mamba_cache_mode = "align"`` from v0.28.0 (vLLM #50991, commit
  f9c74b4b).  With prefix caching on, Gated DeltaNet (no ``all`` support) runs ``align``; so do
  the others from v0.28.  A job's ``matrix.enable_prefix_caching`` overrides the default.
"""

from __future__ import annotations

import math

from reportgen.arch.spec import AttentionKind, LayerKV
from reportgen.estimate import overheads as oh

# vLLM #50991: hybrids get prefix caching (align) by default.  Release sdists (branch versionaudit): vllm 0.27.1 sdist
# engine/arg_utils.py:2604-2606 ``default_prefix_caching = supported and not is_hybrid``; vllm 0.28.0 sdist
# arg_utils.py:2650 ``= is_prefix_caching_supported`` with config/model.py:2073 answering True for a generative
# hybrid.  Off in every earlier sdist: 0.12.0-0.25.0 ``is_prefix_caching_supported`` False for hybrids, 0.11.1 ``not
# is_hybrid``, 0.10.x-0.11.0 forced off for any hybrid / mamba model even when asked for
# (model_executor/models/config.py:309 in 0.10.2, :296 in 0.11.0 -- a job's explicit True is not honoured there).
PREFIX_CACHING_DEFAULT_FROM = (0, 28)
# MambaSpec.max_memory_usage_bytes, no speculative decoding, no prefill checkpoint block (``state_blocks`` adds it)
STATE_BLOCKS = {"none": 1, "align": 2}


def _version(v: str) -> tuple[int, int]:
    parts = [int(p) for p in str(v).split(".")[:2] if p.isdigit()]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def state_cache_mode(vllm_version: str, enable_prefix_caching: bool | None, attention_free: bool = False) -> str:
    """vLLM's ``mamba_cache_mode`` for a hybrid model: ``align`` when prefix caching is on, else ``none``.

    ``enable_prefix_caching`` None = the version's default (off before 0.28, on from 0.28) -- off in every
    version for an ``attention_free`` model (mamba, mamba2): vLLM's ``ModelConfig.is_prefix_caching_supported``
    answers False for attention type ``attention_free`` and #50991 made the default that property."""
    on = enable_prefix_caching
    if on is None:
        on = not attention_free and _version(vllm_version) >= PREFIX_CACHING_DEFAULT_FROM
    return "align" if on else "none"


def _cdiv(a: float, b: float) -> int:
    return int(-(-a // b))


# from vLLM 0.20 the hybrid alignment is ``max(the backend's smallest kernel block, block_size)`` (vllm 0.20.0 sdist
# platforms/interface.py:577-583; 0.19.0 model_executor/models/config.py:210-218 used a fixed 16 / 64 (MLA)); from
# 0.27 an MLA hybrid's is at least 128 (0.27.0 platforms/interface.py:888, "TRTLLM/FlashInfer MLA decode kernels")
ALIGN_WITH_BLOCK_FROM = (0, 20)
MLA_ALIGN_128_FROM = (0, 27)


def hybrid_block_size(state_page: float, attn_page_1_token: float, user_block_size: int, mla: bool,
                      version: tuple[int, int] | None = None, checkpoint_align: int = 1) -> int:
    """The attention block size vLLM picks so one attention page holds at least one state page.

    ``user_block_size``: the block size before alignment (the user's, or the release's default -- 64 from 0.34,
    so 0.34 aligns hybrids to 64); ``version``: the job's vLLM (major, minor), None = the newest rules.  The smallest
    kernel block is taken as 16 (FlashAttention) or 64 (MLA); a GPU whose backend lists another (FlashInfer on
    Blackwell for head size 256) is not modelled -- the estimate is per model, not per GPU.
    ``checkpoint_align``: the Mamba layers' prefill checkpoint alignment in align mode (``GDN_CHECKPOINT_ALIGN``
    when the Qwen GDN layers export FlashInfer checkpoints, ``gdn_checkpoints``; 1 = none): "Internal prefill
    checkpoints land on block boundaries", ``kernel_block_alignment_size = lcm(kernel_block_alignment_size,
    get_mamba_prefill_checkpoint_alignment(vllm_config) or 1)`` after the MLA floor (vllm 0.33.0 sdist,
    platforms/interface.py:1089-1094; vllm 0.34.0 sdist, platforms/interface.py:1101-1106); the backends'
    ``backend_block_alignment`` rounding after it (16 for FlashAttention) divides any multiple of 64."""
    base = 64 if mla else 16
    if version is None or tuple(version) >= ALIGN_WITH_BLOCK_FROM:
        align = max(base, user_block_size)
        if mla and (version is None or tuple(version) >= MLA_ALIGN_128_FROM):
            align = max(align, 128)
        align = math.lcm(align, int(checkpoint_align))
        return int(align * _cdiv(state_page, align * attn_page_1_token))
    bs = base * _cdiv(state_page, base * attn_page_1_token)
    bs = max(bs, user_block_size)
    if bs * attn_page_1_token < state_page:      # a user block size that is not a multiple of align
        bs = _cdiv(state_page, attn_page_1_token)
    return int(bs)


# ---- FlashInfer GDN prefill checkpoints (vLLM 0.33+) ----
# With prefix caching on (a hybrid then runs ``mamba_cache_mode = "align"``, vllm 0.34.0 sdist
# model_executor/models/config.py:1094-1096) and the FlashInfer GDN prefill kernel, vLLM's Qwen GDN layer
# (``QwenGatedDeltaNetAttention``) exports the block-boundary states from inside a prefill instead of splitting it
# (vllm 0.33.0 sdist, model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py:690-703; 0.34.0 :846-860).  Three
# costs follow, none in the 0.32.0 sdist (no FLASHINFER_GDN_CHECKPOINT_ALIGNMENT, qwen_gdn_linear_attn.py never
# sets num_prefill_checkpoint_blocks):
# (1) its MambaSpec gets ``num_prefill_checkpoint_blocks = 1`` (0.33.0 :739-750, 0.34.0 :901-912), so a request
#     holds ``2 + num_speculative_blocks + num_prefill_checkpoint_blocks`` = 3 state blocks in align mode
#     (``MambaSpec.max_memory_usage_bytes``, vllm 0.33.0 sdist v1/kv_cache_interface.py:1135-1141; 0.34.0
#     :1167-1173);
# (2) the attention block is aligned to lcm(kernel alignment, 64) (``FLASHINFER_GDN_CHECKPOINT_ALIGNMENT``,
#     0.33.0 v1/attention/backends/gdn_attn.py:34, 0.34.0 :35; ``hybrid_block_size``'s ``checkpoint_align``);
# (3) a float32 buffer ``(cdiv(max_num_batched_tokens, grid), num_v_heads / tp, head_v_dim, head_k_dim)`` is taken
#     from the WorkspaceManager in the profile run ("Size the workspace while profiling; it is locked afterwards",
#     0.33.0 :1336-1338 / :762-777, 0.34.0 :1545-1547 / :924-938) -- the buffer the fused-MoE workspaces share
#     (``get_simultaneous`` grows one buffer to the largest request: vllm 0.33.0 sdist
#     v1/worker/workspace.py:181-207, 0.34.0 :190-216), kept after the profile run.  ``grid`` =
#     ``get_mamba_prefill_checkpoint_grid``: the Mamba block size (= the attention block in align mode,
#     platforms/interface.py:1126-1127 in 0.34) unless ``--prefix-match-unit`` is set
#     (model_executor/layers/mamba/abstract.py:124-137 in 0.34; default None, config/cache.py:204).
# Only layers built on qwen_gdn_linear_attn.py's ``QwenGatedDeltaNetAttention`` do this: Qwen3-Next
# (model_executor/models/qwen3_next.py:526), Qwen3.5 / Qwen3.5-MoE (model_executor/models/qwen3_5.py:148, both
# classes) and InternS2-Mobius (model_executor/models/interns2_mobius.py:195, not a reportgen family); OLMo-Hybrid's
# ``OlmoHybridGatedDeltaNetAttention`` (gdn/olmo_gdn_linear_attn.py, no ``get_kv_cache_spec`` override) keeps
# MambaBase's spec.  KDA layers have their own rule, not priced here: Kimi-Linear is served by vllm.models.kimi_k3
# (registry.py:147-150 in 0.34.0, from 0.30), whose KDA declares a checkpoint block only on the FlashKDA backend
# (alignment 16, model_executor/layers/mamba/kda_checkpoint.py:9-10), which needs SM 9 / 10 / 12, head_dim 128,
# bf16 and a bounded gate ``gate_lower_bound`` in the config (models/kimi_k3/nvidia/kda.py:370-386, :625).  The
# scheduler takes checkpoints only when every Mamba layer declares an alignment (abstract.py:106-121), which
# holds for these models (every state layer is a Qwen GDN layer).
GDN_CHECKPOINT_FROM = (0, 33)
GDN_CHECKPOINT_ALIGN = 64          # FLASHINFER_GDN_CHECKPOINT_ALIGNMENT: FlashInfer emits states every N x 64 tokens
GDN_CHECKPOINT_BLOCKS = 1          # num_prefill_checkpoint_blocks
GDN_CHECKPOINT_ELEM_BYTES = 4      # torch.float32
# model types reportgen builds with vLLM's QwenGatedDeltaNetAttention (arch/families/qwen3_next.py; the composite
# qwen3_5 / qwen3_5_moe wrap the *_text ones)
QWEN_GDN_MODEL_TYPES = frozenset({"qwen3_next", "qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text"})
# The CUDA runtime of vLLM's release builds: 0.33.0 and 0.34.0 build on CUDA 13.0.3 (docker/Dockerfile:25,
# ``ARG CUDA_VERSION=13.0.3``) and pin cu13 wheels (requirements/cuda.txt:26 ``nvidia-cutlass-dsl[cu13]``; PKG-INFO
# ``humming-kernels[cu13]``), so ``current_platform.get_cuda_runtime_major()`` is 13 on the default install;
# a CUDA 12 build (built from source) would keep SM 10.x / 12.x on Triton -- not modelled.
RELEASE_CUDA_MAJOR = 13


def flashinfer_gdn_prefill(capability: tuple[int, int] | None, head_k_dim: int,
                           cuda_major: int = RELEASE_CUDA_MAJOR) -> bool:
    """vLLM's ``_resolve_gdn_prefill_backend("auto")`` picks FlashInfer on this CUDA GPU: SM 9.0
    (``is_device_capability(90)``, no further constraint), or SM 10.x / 12.x with ``head_k_dim == 128`` and a CUDA 13
    runtime (vllm 0.33.0 sdist, model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py:246-267; 0.34.0
    :318-345).  SM 8.x (A100, L40S), SM 11.x (CuteDSL on request only) and ROCm (AITER FlyDSL / HIP / Triton:
    no checkpoint export) do not.  ``capability`` None (a GPU given by its memory only) counts as the H100, the
    reference logs' GPU, as everywhere else in reportgen (``matrix.mxfp4_gpus``)."""
    if capability is None:
        return True
    major, minor = int(capability[0]), int(capability[1])
    if (major, minor) == (9, 0):
        return True
    return major in (10, 12) and int(head_k_dim) == 128 and cuda_major >= 13


def gdn_checkpoints(spec, version: tuple[int, int] | None, mode: str, capability: tuple[int, int] | None,
                    cuda_major: int = RELEASE_CUDA_MAJOR) -> bool:
    """The model's Qwen GDN layers export FlashInfer prefill checkpoints under vLLM ``version`` on a GPU of
    ``capability`` with ``mamba_cache_mode`` ``mode`` (see the block above): 0.33+, align mode, a
    ``QWEN_GDN_MODEL_TYPES`` model whose state layers are all GDN, and ``flashinfer_gdn_prefill``."""
    if version is None or tuple(version)[:2] < GDN_CHECKPOINT_FROM or mode != "align":
        return False
    if getattr(spec, "model_type", None) not in QWEN_GDN_MODEL_TYPES:
        return False
    geoms = [l.state for l in getattr(spec, "layers_kv", ()) if is_state(l) and l.state is not None]
    if not geoms or any(g.kind != "gdn" for g in geoms):
        return False
    return all(flashinfer_gdn_prefill(capability, g.dims[2], cuda_major) for g in geoms)


# Mamba-2 layers (vLLM ``MambaMixer2``: nemotron_h, granitemoehybrid, falcon_h1, zamba2, mamba2 -- the models whose
# state reportgen builds with ``arch/mixers.mamba2_mixer``) declare a prefill checkpoint block too, from 0.32 and on
# every GPU: "The block-boundary state can be exported from inside one forward pass, so the scheduler need not
# split the prefill; every reader acts on this only in align mode" -- ``replace(spec,
# num_prefill_checkpoint_blocks=1, prefill_checkpoint_alignment=1)`` (vllm 0.32.0 sdist,
# model_executor/layers/mamba/mamba_mixer2.py:1098-1108; 0.34.0 :1089-1099; absent from the 0.31.0 sdist's
# mamba_mixer2.py), so a request holds 3 state blocks in align mode; alignment 1 leaves the block size, and no
# buffer is taken ("The metadata builder puts a chunk end exactly on the checkpoint").
MAMBA2_CHECKPOINT_FROM = (0, 32)


def mamba2_checkpoints(kinds, version: tuple[int, int] | None, mode: str) -> bool:
    """Every state layer is Mamba-2 (``kinds``: their ``StateGeometry.kind``), vLLM ``version`` (None = the newest
    rules) >= 0.32 and align mode: one more state block a request (the block above)."""
    kinds = set(kinds)
    return (mode == "align" and kinds == {"mamba2"}
            and (version is None or tuple(version)[:2] >= MAMBA2_CHECKPOINT_FROM))


def state_blocks(mode: str, checkpoint: bool = False) -> int:
    """State blocks one request holds per state group (``MambaSpec.max_memory_usage_bytes`` over the page, no
    speculative decoding): 1 in mode none, 2 in align, 3 in align with a prefill checkpoint block."""
    return STATE_BLOCKS[mode] + (GDN_CHECKPOINT_BLOCKS if checkpoint and mode == "align" else 0)


def gdn_checkpoint_row_bytes(state, tp: int) -> int:
    """Bytes of one row of the checkpoint buffer on one TP rank: ``num_v_heads // tp x head_v_dim x head_k_dim``
    float32 (``_checkpoint_buffer_spec``)."""
    nk, nv, hk, hv, _ = state.dims
    return (nv // tp) * hv * hk * GDN_CHECKPOINT_ELEM_BYTES


def gdn_checkpoint_workspace_bytes(row_bytes: float, max_num_batched_tokens: int, grid: int) -> float:
    """The checkpoint buffer: ``cdiv(max_num_batched_tokens, grid)`` rows (``grid``: the Mamba block size)."""
    if not row_bytes or not grid:
        return 0.0
    return float(_cdiv(max_num_batched_tokens, grid) * row_bytes)


def state_layer_bytes(layer: LayerKV, tp: int, conv_bytes: float) -> float:
    """Unpadded state bytes one sequence holds in one state layer on one TP rank."""
    if layer.state is None:
        raise ValueError("a state layer without a state geometry cannot be priced (not modelled)")
    return float(layer.state.bytes_per_seq(tp, conv_bytes))


def is_state(layer: LayerKV) -> bool:
    return layer.kind is AttentionKind.STATE


def is_attention_free(spec) -> bool:
    """Every layer is a state layer (mamba, mamba2): vLLM's ``IsAttentionFree`` models."""
    layers = getattr(spec, "layers_kv", None) or ()
    return bool(layers) and all(is_state(l) for l in layers)


# ---- the profile run's Mamba mixer width (activation peak) ----
# vLLM V1's profile run (``gpu_model_runner.profile_run`` -> ``_dummy_run(is_profile=True)``) builds no
# attention metadata, so a Mamba-2 mixer runs ``in_proj`` (output ``(2I + 2G'N + H)/tp``), allocates
# ``ssm_output`` (``I/tp``, ``torch.empty`` in ``MambaMixer2.forward``) and, inside the ``mamba_mixer2``
# custom op (``conv_ssm_forward``), takes the ``attn_metadata is None`` branch: the x|B|C slice is copied
# once (``transpose(0, 1).clone().transpose(0, 1).contiguous()``: the clone keeps the transposed layout,
# so the trailing ``.contiguous()`` is a no-op) and returned -- no conv, no chunked scan, no per-chunk
# states.  After the op the gated RMSNorm (compiled: fused, one ``I/tp`` output) and ``out_proj`` run with
# ``in_proj``'s output and ``ssm_output`` still alive, a smaller set (``3I + 2G'N + H`` + h).  So the
# layer's peak is ``(4I + 4G'N + H)/tp`` elements per batched token (``overheads.mamba_profile_cols``),
# read in vllm-project/vllm ``vllm/model_executor/layers/mamba/mamba2/mamba_mixer2.py`` @2e0714af (the
# only V1 ``mamba_mixer2.py`` of vllm-project/vllm the search index stores; the profile branch has the
# same three lines in every V1 copy of the file the index holds, from the pre-custom-op
# ``forward_cuda`` to the 0.2x ``conv_ssm_forward``; nemotron_h.py's Mamba decoder layer is
# norm -> mixer, nothing wider).  The dense forward term already prices ``ALPHA_MLP x mlp_cols / tp``
# per token at the widest MLP layer; the Mamba layer is another layer, so the forward peak is the wider of
# the two: ``max(ALPHA_MLP x mlp_cols / tp, mixer)``.  Factor 1 on the mixer width, no fitted constant.
# Checked on row 166 (Nemotron-Cascade-2-30B-A3B NVFP4, T = 32,768): +0.89 GiB, the log leaving 1.24 GiB
# more than the estimate without it (docs/decisions.md "Mamba-2 mixer width in the profile peak").
MIXER_KINDS = ("mamba2", "mamba1")


def widest_mixer_state(layers) -> object:
    """The Mamba-1 / Mamba-2 state geometry with the widest profile-run mixer (None without one)."""
    geoms = [l.state for l in layers if l.state is not None and l.state.kind in MIXER_KINDS]
    return max(geoms, key=lambda g: oh.mamba_profile_cols(g, 1)) if geoms else None


def mixer_excess_cols(state, mlp_cols_rank: float, tp: int) -> float:
    """Elements per batched token the Mamba layer's profile peak adds over the priced MLP width
    (``mlp_cols_rank`` = ``ALPHA_MLP x mlp_cols / tp``): ``max(0, mixer - mlp)``; the whole mixer width
    for an attention-free model (no MLP)."""
    return max(0.0, oh.mamba_profile_cols(state, tp) - mlp_cols_rank)
