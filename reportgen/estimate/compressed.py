"""DeepSeek-V4's KV cache as vLLM allocates it: five cache kinds, block groups, one padded pool.

Why its own module: vLLM gives DeepSeek-V4 its own grouping and pool planner (the other models go
through ``kv_cache_utils``' uniform-page path that ``estimate/kvcache.py`` reproduces).  Every
decoder layer registers up to five cache layers, each with its own block size and window, and
one block of the shared pool holds a fixed "layer tuple" layout, padded to FlashMLA's 576-byte
alignment.  Read in vLLM (``read_file`` on vllm-project/vllm at the commits named):

- ``model_executor/layers/deepseek_v4_attention.py`` @0a291a2e (the spec code is the same
  @b92a330e): the compressed latent of a ratio-4 / ratio-128 layer is
  ``MLAAttentionSpec(block_size=cache block size, head_size=head_dim, uint8, compress_ratio,
  cache_dtype_str="fp8_ds_mla", alignment=576, model_version="deepseek_v4")``; a ratio-0 layer has
  none (``get_kv_cache_spec`` returns None).  The lightning indexer (ratio 4 only) keeps
  ``DeepseekV4IndexerCache``: ``MLAAttentionSpec(head_size=index_head_dim + index_head_dim // 128 * 4,
  uint8, compress_ratio=4, alignment=576)`` (132 bytes an entry at index_head_dim 128).  The layer
  asserts ``kv_cache_dtype.startswith("fp8")`` ("DeepseekV4 only supports fp8 kv-cache format for
  now") and turns any fp8 dtype into ``fp8_ds_mla``.
- ``v1/attention/backends/mla/sparse_swa.py`` @72ecd68b: ``DeepseekV4SWACache`` (every layer) is
  ``SlidingWindowMLASpec(block_size=64, head_size=head_dim, uint8, sliding_window=config
  sliding_window, cache_dtype_str=cache dtype, alignment=576, model_version="deepseek_v4")``;
  ``DeepseekSparseSWABackend.get_preferred_block_size`` returns 256 (vLLM's default cache block
  size for this model).
- ``model_executor/layers/deepseek_compressor.py`` @bbd10241: each compressor (ratio 4: one for the
  latent, one for the indexer; ratio 128: one) keeps ``CompressorStateCache``:
  ``SlidingWindowMLASpec(block_size=4 (ratio 4) / 8 (ratio 128), head_size=2 * coff * head_dim,
  float32, sliding_window=coff * ratio, alignment=576)``, coff = 2 at ratio 4 else 1.
- ``v1/kv_cache_interface.py`` @7a24fbb3: ``storage_block_size = block_size // compress_ratio``;
  page = ``storage_block_size x 584`` for a deepseek_v4 ``fp8_ds_mla`` latent, else
  ``storage_block_size x heads x head_size x element size``; ``_apply_alignment_padding`` rounds
  the page up to a multiple of ``alignment``.  ``SlidingWindowSpec.max_memory_usage_bytes``:
  ``cdiv(min(window - 1 + max_num_batched_tokens, max_model_len), block_size) + 1`` pages;
  ``FullAttentionSpec``: ``cdiv(max_model_len, block_size)``.
- ``v1/core/kv_cache_planning.py`` @fc23e695: ``group_and_unify_kv_cache_specs`` (all
  ``MLAAttentionSpec`` layers in one group; the ``SlidingWindowMLASpec`` layers grouped by
  (block_size, sliding_window)), ``_get_kv_cache_groups_uniform_groups`` (layer tuples:
  ``num_layer_tuples = _approximate_gcd(most-common page-size count per group, lower_bound=the
  MLA group's)``, each sliding group's pages padded up to the nearest MLA page size, split into
  ``cdiv(layers per page size, num_layer_tuples)`` sub-groups ``tuples[i::n]``),
  ``_get_kv_cache_config_deepseek_v4`` (bytes per block = sum of the MLA group's page sizes x the
  longest page-size bucket of any group), ``_max_memory_usage_bytes_from_groups`` and
  ``_report_kv_cache_config`` ("GPU KV cache size" = max_concurrency x max_model_len).  The
  concurrency sums each group's ``cdiv(max_memory_usage_bytes, page_size_bytes)``
  (``get_max_concurrency_for_kv_cache_config``, quoted in vllm#51041; the stored kv_cache_utils.py
  at a named commit predates it).

Checked against a real vLLM log (vllm#44376, DeepSeek-V4-Flash TP2, max_model_len 30,000, fp8, block
256): "6.66 GiB KV cache is needed" and "the estimated maximum model length is 13528" with 5.44 GiB
available -- both reproduced exactly (tests/test_compressed_kv.py).

The matrix uses ``plan`` through ``kvcache.kv_groups`` (``_compressed_groups``: the groups as three sliding
kinds) and ``exprs.compressed_lens`` (the max_model_len-dependent profile-run workspaces, ``profile_workspace_bytes``:
the FlashMLA prefill gather ``PREFILL_CHUNK x (cdiv(M, ratio) + window + T) x head_dim`` bf16,
deepseek_v4_attention.py @0a291a2e, not on SM 12.x where FlashInfer's SM120 sparse MLA reserves its own 128 MiB
instead (flashinfer_sparse.py); the lightning indexer's K gather ``40 x M // 4`` rows, sparse_attn_indexer.py
@006475fe / mla/indexer.py @0023368d; all in vLLM's one shared workspace buffer with the fused-MoE workspaces, the
largest wins; tokens = concurrency x M, vLLM <= 0.26's concurrency by ``Plan.legacy_pages_per_request``
(vllm#48317); the fit by binary search).  Row 156 (SM 12.0, 0.25.0) and what is left of its gap:
docs/decisions.md "Row 156's KV gap read from vLLM".

The MTP layer vLLM adds under MTP speculative decoding is one more sliding-window latent at the end of
``layers`` (``ModelSpec.mtp_layers_kv``, appended by ``ModelTables.kv_spec``): it joins the sliding groups
like the target's (V4-Flash: 44 sliding latents split 22 + 22 instead of 22 + 21, the same bytes per block).
Not modelled: the MXFP4 indexer cache option (same bytes: vLLM allocates the fp8 size), DCP.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from reportgen.arch.spec import LayerKV

LATENT_ENTRY = 584        # kv_cache_interface @7a24fbb3: 448 B fp8 NoPE + 128 B bf16 RoPE + 8 B scales
ALIGN = 576               # alignment=576 ("FlashMLA requires 576B alignment") on every DeepseekV4 spec
SWA_BLOCK = 64            # DeepseekV4SWACache.block_size (sparse_swa.py @72ecd68b)
STATE_BLOCK = {4: 4, 128: 8}   # CompressorStateCache.block_size (deepseek_compressor.py @bbd10241)
PREFERRED_BLOCK = 256     # DeepseekSparseSWABackend.get_preferred_block_size
STATE_BYTES = 4           # compressor state dtype: float32
FP8_ALIASES = ("fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla")


class UnsupportedLayout(ValueError):
    """A DeepSeek-V4 configuration vLLM's planner cannot lay out (it asserts), or we do not model."""


class InvalidKvDtype(UnsupportedLayout):
    """A KV cache dtype vLLM's DeepseekV4 attention refuses (its assert): the start fails, an invalid config."""


PREFILL_CHUNK = 4         # PREFILL_CHUNK_SIZE (deepseek_v4_attention.py @0a291a2e)
# The lightning indexer's K-gather workspace, reserved in the profile run (sparse_attn_indexer.py @006475fe,
# ``sparse_attn_indexer``'s dummy-run branch): ``total_seq_lens = get_max_prefill_buffer_size // compress_ratio``
# rows, ``get_max_prefill_buffer_size = max_model_len * 40`` (mla/indexer.py @0023368d), fp8 values
# (index_head_dim bytes) + 4 scale bytes a row + RADIX_TOPK_WORKSPACE_SIZE, each rounded up to 256 B
# (workspace.py ``get_simultaneous``).
INDEXER_BUFFER_FACTOR = 40
INDEXER_SCALE_BYTES = 4
RADIX_TOPK_WORKSPACE = 1024 * 1024
WORKSPACE_ALIGN = 256
# DeepSeek-V4's FlashInfer sparse-MLA workspace on SM 12.x (flashinfer_sparse.py: ``_FLASHINFER_DSV4_WORKSPACE_
# BUFFER_SIZE = 128 * 1024 * 1024``, a ``torch.zeros`` kept per device, allocated by the dummy run's
# ``_reserve_empty_forward_workspace``); that path reserves no bf16 prefill gather workspace.
FLASHINFER_SM120_WORKSPACE = 128 * 1024 * 1024
# DeepSeek-V3.2 / GLM-5 (DSA: ``deepseek_v32`` / ``glm_moe_dsa``, families/deepseek_dsa.py) reserve the same
# K gather uncompressed: their ``Indexer`` passes ``total_seq_lens = get_max_prefill_buffer_size(vllm_config)`` =
# max_model_len x 40 rows (deepseek_v2.py, search file id 1709496; mla/indexer.py @0023368d), whatever the TP
# (the indexer is replicated) -- ``indexer_workspace_bytes(M, index_head_dim, ratio=1)``, kept in the shared
# WorkspaceManager buffer with the fused-MoE workspaces (the larger wins; ``exprs.encoder_lens``).  The
# WorkspaceManager came with vllm#27532; before it the profile branch (``sparse_attn_indexer_fake``) allocated
# the same rows as transient tensors, freed at once.  Release sdists (branch versionaudit): vllm 0.12.0 sdist,
# model_executor/models/deepseek_v2.py:767-786 (the fake op's ``torch.empty([total_seq_lens, head_dim + 4])``,
# no workspace); vllm 0.13.0 sdist, model_executor/models/deepseek_v2.py:622-627 (profile run: ``current_workspace_
# manager().get_simultaneous(((total_seq_lens, head_dim), fp8), ((total_seq_lens, 4), uint8))``, kept) -- the first
# release with it; the RADIX_TOPK scratch joins at 0.20.0 (layers/sparse_attn_indexer.py:37).  Compared with the
# job's vLLM version (``EngineOptions.vllm_version``), not the 0.11-0.16 profile's first release (was (0, 17)).
DSA_INDEXER_WORKSPACE_FROM = (0, 13)
# the first vLLM release whose logged concurrency sums each group's blocks (vllm#48317; Plan.legacy_pages_per_request):
# vllm 0.26.0 sdist, v1/core/kv_cache_utils.py:937-955 still divides the summed per-request bytes once by group 0's
# page (the legacy form); vllm 0.27.0 sdist, v1/core/kv_cache_utils.py:937-959 sums ``cdiv(max_memory_usage_bytes,
# page_size_bytes)`` per group.  Compared with the job's version (matrix/cells.py), not the 0.26-0.28 profile (was (0, 26)).
PER_GROUP_CONCURRENCY_FROM = (0, 27)


def indexer_workspace_bytes(max_model_len: int, index_head_dim: int, ratio: int = 4) -> int:
    """The indexer's profile-run K-gather reservation (values + scales + radix top-k scratch), bytes."""
    rows = max_model_len * INDEXER_BUFFER_FACTOR // ratio
    return (_round_up(rows * index_head_dim, WORKSPACE_ALIGN) + _round_up(rows * INDEXER_SCALE_BYTES, WORKSPACE_ALIGN)
            + RADIX_TOPK_WORKSPACE)


def profile_workspace_bytes(max_model_len: int, batched_tokens: int, ratio: int, window: int, head_dim: int,
                            index_head_dim: int, sm12: bool, moe_workspace: float = 0) -> int:
    """What the profile run's workspaces hold on one rank with DeepSeek-V4's attention (scalar twin of ``exprs``).

    ``ratio``: the smallest compress ratio of the rank's layers (0: sliding-only).  One shared
    ``WorkspaceManager`` buffer holds every ``get_simultaneous`` request, grown to the largest
    (workspace.py ``_ensure_workspace_size``): the fused-MoE workspaces (``moe_workspace``: the modular kernel
    takes them from it since vLLM 0.14), on the FlashMLA path (SM 9.x / 10.x) the bf16 prefill gather
    ``PREFILL_CHUNK x (cdiv(M, ratio) + window + T) x head_dim x 2``, and the indexer's K gather (a ratio-4
    layer only); on SM 12.x (FlashInfer sparse MLA) no gather, and FlashInfer's own 128 MiB beside the buffer."""
    idx = indexer_workspace_bytes(max_model_len, index_head_dim) if ratio == 4 and index_head_dim else 0
    if sm12:
        return max(idx, moe_workspace) + FLASHINFER_SM120_WORKSPACE
    n = _cdiv(max_model_len, ratio) if ratio else 0
    return max(PREFILL_CHUNK * (n + window + batched_tokens) * head_dim * 2, idx, moe_workspace)


def resolve_kv_dtype(kv_dtype: str) -> str:
    """vLLM's DeepseekV4MLAAttention: any fp8 dtype becomes ``fp8_ds_mla``; anything else fails its assert."""
    if kv_dtype.lower() in FP8_ALIASES:
        return "fp8_ds_mla"
    raise InvalidKvDtype(f"kv_cache_dtype {kv_dtype!r}: vLLM's DeepseekV4 attention asserts an fp8 KV cache "
                            "(\"DeepseekV4 only supports fp8 kv-cache format for now\", deepseek_v4_attention.py "
                            "@0a291a2e); pass --kv-cache-dtype fp8")


def _round_up(x: int, a: int) -> int:
    return -(-x // a) * a


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, slots=True)
class Cache:
    """One vLLM cache layer (one KVCacheSpec) of a decoder layer."""

    layer: int
    kind: str               # c4a, c4i, c128a (MLAAttentionSpec) | swa, c4a_state, c4i_state, c128a_state
    block_size: int         # logical tokens per block
    window: int | None      # SlidingWindowMLASpec window; None for the compressed (full) caches
    raw_page: int           # real_page_size_bytes
    page: int               # after the 576-byte alignment padding

    @property
    def token_bytes(self) -> float:
        """Page bytes per logical token (a compressed cache: per token of context, padding included)."""
        return self.page / self.block_size


def _latent(layer: int, kind: str, block: int, ratio: int) -> Cache:
    raw = (block // ratio) * LATENT_ENTRY
    return Cache(layer, kind, block, None, raw, _round_up(raw, ALIGN))


def _state(layer: int, kind: str, ratio: int, head_dim: int) -> Cache:
    coff = 2 if ratio == 4 else 1
    block = STATE_BLOCK[ratio]
    raw = block * 2 * coff * head_dim * STATE_BYTES      # kv_state + score_state, float32
    return Cache(layer, kind, block, coff * ratio, raw, _round_up(raw, ALIGN))


def layer_caches(layers: list[LayerKV], block_size: int = PREFERRED_BLOCK) -> list[Cache]:
    """Every cache layer vLLM registers, in model order (indexer, sliding window, latent, compressor)."""
    if block_size % 128 or block_size <= 0:
        raise UnsupportedLayout(f"block_size {block_size}: a ratio-128 layer stores block_size // 128 entries "
                                "a block, so DeepSeek-V4 needs a multiple of 128 (vLLM's default is 256)")
    out: list[Cache] = []
    for i, l in enumerate(layers):
        c = l.compressed
        if c is None:
            raise UnsupportedLayout("a DeepSeek-V4 layout needs every layer's compressed-cache geometry")
        if c.head_dim != 512:
            raise UnsupportedLayout(f"head_dim {c.head_dim}: vLLM's DeepseekSparseSWABackend supports head size 512 "
                                    "only (its 584-byte entry is 448 fp8 NoPE + 64 bf16 RoPE + scales)")
        if c.ratio == 4:
            raw = (block_size // 4) * (c.index_head_dim + c.index_head_dim // 128 * 4)
            out.append(Cache(i, "c4i", block_size, None, raw, _round_up(raw, ALIGN)))
            out.append(_state(i, "c4i_state", 4, c.index_head_dim))
        raw = SWA_BLOCK * LATENT_ENTRY
        out.append(Cache(i, "swa", SWA_BLOCK, l.window, raw, _round_up(raw, ALIGN)))
        if c.ratio:
            out.append(_latent(i, f"c{c.ratio}a", block_size, c.ratio))
            out.append(_state(i, f"c{c.ratio}a_state", c.ratio, c.head_dim))
    return out


def approximate_gcd(values: list[int], lower_bound: int) -> int:
    """vLLM's ``_approximate_gcd``: the d in [lower_bound, max] with the least upward padding (ties: larger d)."""
    lo, hi = max(1, lower_bound), max(values)
    if lo > hi:
        return lo
    best, best_pad = lo, None
    for d in range(lo, hi + 1):
        pad = sum((d - x % d) % d for x in values)
        if best_pad is None or pad < best_pad or (pad == best_pad and d > best):
            best, best_pad = d, pad
    return best


@dataclass(frozen=True, slots=True)
class Group:
    """One KV cache group: its caches (registration order) with their pages after padding."""

    block_size: int
    window: int | None
    caches: tuple[Cache, ...]
    pages: tuple[int, ...]          # per cache: page_size_bytes after the planner's padding

    def pages_per_request(self, max_model_len: int, batched_tokens: int) -> int:
        """``cdiv(max_memory_usage_bytes, page_size_bytes)`` of the group (all its caches alike)."""
        if self.window is None:
            return _cdiv(max_model_len, self.block_size)
        return _cdiv(min(self.window - 1 + batched_tokens, max_model_len), self.block_size) + 1

    def tuple_count(self, caches: tuple[int, ...] | None = None) -> int:
        """``get_num_layer_tuples``: the most common page size's count (over the given cache indices)."""
        idx = range(len(self.caches)) if caches is None else caches
        cnt = Counter(self.pages[i] for i in idx)
        return cnt.most_common(1)[0][1] if cnt else 0


def kv_groups(caches: list[Cache]) -> list[Group]:
    """vLLM's ``group_and_unify_kv_cache_specs`` + ``_get_kv_cache_groups_uniform_groups``."""
    mla = [c for c in caches if c.window is None]
    if not mla:
        raise UnsupportedLayout("a DeepSeek-V4 model without a compressed layer: vLLM's planner asserts one")
    swa: dict[tuple[int, int], list[Cache]] = defaultdict(list)
    for c in caches:
        if c.window is not None:
            swa[(c.block_size, c.window)].append(c)
    full = Group(mla[0].block_size, None, tuple(mla), tuple(c.page for c in mla))
    sliding = [Group(b, w, tuple(cs), tuple(c.page for c in cs)) for (b, w), cs in swa.items()]
    counts = [full.tuple_count()] + [g.tuple_count() for g in sliding]
    n_tuples = approximate_gcd(counts, counts[0])
    all_pages = set(full.pages)
    out = [full]
    for g in sliding:
        if max(g.pages) > max(all_pages):
            raise UnsupportedLayout("a sliding cache page larger than every compressed page: vLLM's planner asserts")
        cand = {p: min(x for x in all_pages if x >= p) for p in set(g.pages)}
        by_size: dict[int, list[int]] = defaultdict(list)
        for i, p in enumerate(g.pages):
            by_size[cand[p]].append(i)
        if len({len(v) for v in by_size.values()}) != 1:
            raise UnsupportedLayout("sliding caches whose padded page sizes have different layer counts: vLLM's "
                                    "planner asserts (not modelled)")
        n_per_size = len(next(iter(by_size.values())))
        n_sub = _cdiv(n_per_size, n_tuples)
        tuples = list(zip(*by_size.values()))
        for s in range(n_sub):
            members = [i for t in tuples[s::n_sub] for i in t]
            out.append(Group(g.block_size, g.window, tuple(g.caches[i] for i in members),
                             tuple(cand[g.pages[i]] for i in members)))
    return out


@dataclass(frozen=True, slots=True)
class Plan:
    """The pool layout of one (model, pp): groups, and per PP stage the bytes one block costs.

    ``stage_bytes_per_block``: ``_get_kv_cache_config_deepseek_v4`` (num_blocks = available //
    this); ``stage_check_bytes_per_block``: what ``_max_memory_usage_bytes_from_groups`` charges a
    request page (the start-up check and the auto-fit), which differs only under PP (a group with no
    layer on a stage keeps its whole-model tuple count there)."""

    groups: tuple[Group, ...]
    stage_bytes_per_block: tuple[int, ...]
    stage_check_bytes_per_block: tuple[int, ...]
    stage_token_bytes: tuple[float, ...]       # compressed caches' page bytes per token on each stage

    def pages_per_request(self, max_model_len: int, batched_tokens: int) -> int:
        return sum(g.pages_per_request(max_model_len, batched_tokens) for g in self.groups)

    def memory_needed(self, stage: int, max_model_len: int, batched_tokens: int) -> int:
        """``_max_memory_usage_bytes_from_groups`` on one stage, bytes."""
        return self.pages_per_request(max_model_len, batched_tokens) * self.stage_check_bytes_per_block[stage]

    def num_blocks(self, available: list[int]) -> int:
        """Blocks the engine keeps: the smallest stage's ``available // bytes per block``."""
        return min(a // b for a, b in zip(available, self.stage_bytes_per_block))

    def max_concurrency(self, num_blocks: int, max_model_len: int, batched_tokens: int) -> float:
        return num_blocks / self.pages_per_request(max_model_len, batched_tokens)

    def legacy_pages_per_request(self, max_model_len: int, batched_tokens: int) -> int:
        """The per-request block count of vLLM <= 0.26's ``get_max_concurrency_for_kv_cache_config``: every
        group's ``max_memory_usage_bytes`` (its pages x its aggregated page bytes, ``UniformTypeKVCacheSpecs``)
        summed, divided once by group 0's aggregated ``page_size_bytes`` (cdiv) -- vllm#48317 ("sums every
        group's per-request memory and divides once by group 0's page_size_bytes"), opened 2026-07-11 against
        main 425c4eaf, replaced it by the per-group sum (``pages_per_request``).  Only the logged concurrency
        and "GPU KV cache size" use it; the start-up check and the pool do not."""
        total = sum(g.pages_per_request(max_model_len, batched_tokens) * sum(g.pages) for g in self.groups)
        return _cdiv(total, sum(self.groups[0].pages))

    def kv_cache_tokens(self, num_blocks: int, max_model_len: int, batched_tokens: int) -> int:
        """The logged "GPU KV cache size": max_concurrency x max_model_len."""
        return int(self.max_concurrency(num_blocks, max_model_len, batched_tokens) * max_model_len)

    def max_model_len_fit(self, available: list[int], batched_tokens: int, cap: int) -> int:
        """vLLM's ``_estimate_max_model_len_from_groups`` (binary search), smallest over stages; 0 if none."""
        best = cap
        for s, a in enumerate(available):
            if self.memory_needed(s, 1, batched_tokens) > a:
                return 0
            lo, hi = 1, cap
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.memory_needed(s, mid, batched_tokens) <= a:
                    lo = mid
                else:
                    hi = mid - 1
            best = min(best, lo)
        return best


def plan(layers: list[LayerKV], parts: list[tuple[int, int]], block_size: int = PREFERRED_BLOCK) -> Plan:
    """Group the whole model's caches, then project the groups on each PP stage (``parts``: layer ranges)."""
    caches = layer_caches(layers, block_size)
    groups = kv_groups(caches)
    full = groups[0]
    bpb, check, tok = [], [], []
    for a, b in parts:
        on = [tuple(i for i, c in enumerate(g.caches) if a <= c.layer < b) for g in groups]
        # the MLA group's page sizes on this stage (the whole model's if the stage holds none of it)
        full_idx = on[0] or tuple(range(len(full.caches)))
        tuple_bytes = sum({full.pages[i] for i in full_idx})
        # _get_kv_cache_config_deepseek_v4: the longest page-size bucket of the stage's layers
        longest = max((n for g, idx in zip(groups, on) for n in Counter(g.pages[i] for i in idx).values()),
                      default=0)
        bpb.append(tuple_bytes * longest)
        # _max_memory_usage_bytes_from_groups: get_num_layer_tuples of each projected group
        # (an empty projection keeps the whole-model spec)
        check.append(tuple_bytes * max(g.tuple_count(idx or None) for g, idx in zip(groups, on)))
        tok.append(sum(c.token_bytes for c in caches if c.window is None and a <= c.layer < b))
    return Plan(tuple(groups), tuple(bpb), tuple(check), tuple(tok))


def workspace_ratio(layers: list[LayerKV], a: int, b: int) -> int:
    """The compress ratio that sizes a stage's prefill gather workspace: the smallest ratio of its compressed
    layers (largest ``N = cdiv(max_model_len, ratio)``), 0 when the stage holds only sliding-window layers."""
    ratios = [l.compressed.ratio for l in layers[a:b] if l.compressed is not None and l.compressed.ratio]
    return min(ratios) if ratios else 0


__all__ = ["Cache", "Group", "Plan", "UnsupportedLayout", "InvalidKvDtype", "workspace_ratio", "PREFILL_CHUNK", "approximate_gcd", "kv_groups", "layer_caches", "plan",
           "indexer_workspace_bytes", "profile_workspace_bytes", "FLASHINFER_SM120_WORKSPACE",
           "DSA_INDEXER_WORKSPACE_FROM",
           "resolve_kv_dtype", "LATENT_ENTRY", "ALIGN", "PREFERRED_BLOCK"]
