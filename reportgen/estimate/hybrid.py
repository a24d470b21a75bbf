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
  ``num_speculative_blocks``; mode ``all`` (a state per block, Mamba-2 chunk-aligned blocks) is not
  modelled and is refused.
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

from reportgen.arch.spec import AttentionKind, LayerKV
from reportgen.estimate import overheads as oh

# vLLM #50991: hybrids get prefix caching (align) by default.  Release sdists (branch versionaudit): vllm 0.27.1 sdist
# engine/arg_utils.py:2604-2606 ``default_prefix_caching = supported and not is_hybrid``; vllm 0.28.0 sdist
# arg_utils.py:2650 ``= is_prefix_caching_supported`` with config/model.py:2073 answering True for a generative
# hybrid.  Off in every earlier sdist: 0.12.0-0.25.0 ``is_prefix_caching_supported`` False for hybrids, 0.11.1 ``not
# is_hybrid``, 0.10.x-0.11.0 forced off for any hybrid / mamba model even when asked for
# (model_executor/models/config.py:309 in 0.10.2, :296 in 0.11.0 -- a job's explicit True is not honoured there).
PREFIX_CACHING_DEFAULT_FROM = (0, 28)
STATE_BLOCKS = {"none": 1, "align": 2}   # MambaSpec.max_memory_usage_bytes, no speculative decoding


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
                      version: tuple[int, int] | None = None) -> int:
    """The attention block size vLLM picks so one attention page holds at least one state page.

    ``user_block_size``: the block size before alignment (the user's, or the release's default -- 64 from 0.34,
    so 0.34 aligns hybrids to 64); ``version``: the job's vLLM (major, minor), None = the newest rules.  The smallest
    kernel block is taken as 16 (FlashAttention) or 64 (MLA); a GPU whose backend lists another (FlashInfer on
    Blackwell for head size 256) is not modelled -- the estimate is per model, not per GPU."""
    base = 64 if mla else 16
    if version is None or tuple(version) >= ALIGN_WITH_BLOCK_FROM:
        align = max(base, user_block_size)
        if mla and (version is None or tuple(version) >= MLA_ALIGN_128_FROM):
            align = max(align, 128)
        return int(align * _cdiv(state_page, align * attn_page_1_token))
    bs = base * _cdiv(state_page, base * attn_page_1_token)
    bs = max(bs, user_block_size)
    if bs * attn_page_1_token < state_page:      # a user block size that is not a multiple of align
        bs = _cdiv(state_page, attn_page_1_token)
    return int(bs)


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
