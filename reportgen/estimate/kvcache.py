"""KV-cache geometry: bytes per token, vLLM's layer groups, pages, blocks per request.

Why not ``bytes / bytes_per_token``: vLLM V1 pages the cache in blocks and, for
hybrid models (sliding-window or chunked-local layers beside full attention),
splits the layers into *groups* of equal size that share one block pool.  Its
printed "GPU KV cache size" and "Maximum concurrency" follow that block
arithmetic, not a per-token division (vllm#51041).  This module reproduces
``vllm/v1/core/kv_cache_utils.py`` and ``vllm/v1/kv_cache_interface.py``:

- page of a layer = ``block_size x bytes_per_token`` (MLA: latent, not / tp;
  ``fp8_ds_mla``: 656 B per token);
- uniform models: one group; bytes per block on a stage = sum of the pages of
  its layers; ``tokens = num_blocks x block_size``;
- hybrid models: layers grouped by spec, ``group_size = min`` layers per type
  (``max`` when max < 1.5 x min), ``cdiv(n, group_size)`` groups per type, group
  ``i`` of a type = ``layers[i::num_groups]``; a stage's bytes per block is
  ``max over groups of its layers in that group x page``; tokens printed =
  ``num_blocks // n_groups x min_block_size``;
- blocks one request of length M needs (``max_memory_usage_bytes``):
  full ``cdiv(M, bs)``; sliding ``cdiv(min(W - 1 + F, M), bs) + 1``; chunked
  ``cdiv(min(C + F, M), bs)``, with ``F = max_num_batched_tokens``;
- the engine keeps ``min`` over workers (PP stages) of ``avail // bytes_per_block``;
- MiniMax-M3 (``LayerKV.index_dim``): a sparse layer's GQA ``FullAttentionSpec`` and its indexer's
  ``MLAAttentionSpec`` side cache are two cache layers of the same "full attention" type (vLLM registers
  ``MLAAttentionSpec`` with ``uniform_type_base_spec=FullAttentionSpec``), so the model is one
  ``UniformTypeKVCacheSpecs`` group: a block holds one page of every cache layer, per-token bytes add up
  (index keys in ``--attention-config indexer_kv_dtype``: ``indexer_kv_dtype`` below);
- state layers (Mamba, Gated DeltaNet, ...: ``AttentionKind.STATE``) form their own groups in the same
  pool; the attention block size is raised so the pages unify (estimate/hybrid.py) and each state
  group costs a fixed ``state_blocks`` blocks per request (1, or 2 with prefix caching's align mode; 3 there when
  vLLM 0.33+'s Qwen GDN layers export FlashInfer prefill checkpoints -- ``kv_groups(gdn_checkpoint=True)``,
  ``hybrid.gdn_checkpoints`` says on which GPUs -- whose float32 buffer, ``ck_b`` bytes a row, joins the
  workspace).

The per-model part (groups, pages per stage) is plain Python done once per
(model, tp, pp, kv dtype); the per-cell part (M, F, available bytes) is in
``reportgen.estimate.exprs`` as polars expressions.
"""

from __future__ import annotations

import math

from collections import defaultdict
from dataclasses import dataclass, replace

from reportgen.arch.spec import AttentionKind, LayerKV, ModelSpec

from . import hybrid
from .layout import pp_partition

FP8_DS_MLA_BYTES = 656       # per token per MLA layer (vllm flashmla_sparse layout)
SPARSE_MLA_REFUSED = ("fp8_e5m2", "fp8_inc", "float16", "fp16", "half")   # not in FlashMLASparse's dtype list


# --attention-config indexer_kv_dtype -> bytes of one MiniMax-M3 index key element: MiniMaxM3IndexerCache
# (vllm/models/minimax_m3/common/indexer.py @0484480b) stores bf16, or float8_e4m3fn for "fp8" / "fp8_e4m3",
# and raises NotImplementedError for any other value; vLLM's default (AttentionConfig) is "bf16"
INDEXER_KV_BYTES = {"bf16": 2, "fp8": 1, "fp8_e4m3": 1}


class UnsupportedKvDtype(ValueError):
    """A KV-cache dtype we do not model (never silently treated as bf16)."""


def indexer_bytes(indexer_kv_dtype: str) -> int:
    """Bytes of one MiniMax-M3 index-cache element for ``--attention-config indexer_kv_dtype``."""
    key = str(indexer_kv_dtype).strip().lower()
    if key not in INDEXER_KV_BYTES:
        raise UnsupportedKvDtype(f"indexer_kv_dtype {indexer_kv_dtype!r}: vLLM's MiniMax-M3 indexer cache takes "
                                 f"{', '.join(INDEXER_KV_BYTES)} only (MiniMaxM3IndexerCache raises otherwise)")
    return INDEXER_KV_BYTES[key]


def kv_element_bytes(kv_dtype: str, act_bytes: float, spec: ModelSpec | None = None) -> float:
    """Bytes of one KV element (``reportgen.estimate.quant`` owns the dtype table).

    ``auto`` follows the serving dtype (fp32 models cache in fp32: Llama-3.1-8B in
    fp32 shows 262,144 B/token in vLLM's log).
    """
    from reportgen.estimate import quant

    model_dtype = {4: "float32", 2: "bfloat16", 1: "bfloat16"}.get(int(act_bytes), "bfloat16")
    try:
        return float(quant.kv_cache_bytes(kv_dtype, model_dtype, spec))
    except quant.UnsupportedQuantization as e:
        raise UnsupportedKvDtype(str(e)) from None


def layer_token_bytes(layer: LayerKV, kv_dtype: str, elem_bytes: float, tp: int, index_bytes: float = 2) -> float:
    """Bytes one token occupies in one layer on one TP rank (MLA: latent, not / tp).

    A DSA layer (``layer.sparse``) adds its indexer key cache (``layer.index_token_bytes``, fixed
    uint8 layout) and stores an fp8 latent as the 656-byte ``fp8_ds_mla`` entry: vLLM's
    FlashMLASparseBackend lists ``fp8`` as an alias of ``fp8_ds_mla`` (flashmla_sparse.py @008a0c3),
    so any 1-byte element size here -- ``fp8``, or ``auto`` resolved to fp8 by the checkpoint --
    means 656 bytes.

    A MiniMax-M3 sparse layer (``layer.index_dim``) adds its indexer's keys at ``index_bytes`` each
    (``indexer_bytes``; vLLM's default bf16 = 2) and takes only the KV dtypes of ``layer.kv_dtypes``.
    """
    if layer.kv_dtypes and kv_dtype.lower() not in layer.kv_dtypes:
        raise UnsupportedKvDtype(f"kv_cache_dtype {kv_dtype!r}: vLLM's MiniMax-M3 sparse attention backend "
                                 f"(MiniMaxM3SparseBackend.supported_kv_cache_dtypes) takes "
                                 f"{', '.join(layer.kv_dtypes)} only")
    if layer.sparse and kv_dtype.lower() in SPARSE_MLA_REFUSED:
        raise UnsupportedKvDtype(f"kv_cache_dtype {kv_dtype!r}: vLLM's sparse MLA backend (FlashMLASparse) takes "
                                 "auto, bfloat16 or fp8 (= fp8_ds_mla) only")
    if layer.kind is AttentionKind.MLA and (kv_dtype.lower() == "fp8_ds_mla" or (layer.sparse and elem_bytes == 1)):
        return float(max(1, layer.num_kv_heads) * FP8_DS_MLA_BYTES + layer.index_token_bytes)
    return float(layer.bytes_per_token(elem_bytes, tp, index_bytes))


@dataclass(frozen=True, slots=True)
class KvGroups:
    """The block-pool layout of one (model, tp, pp, kv dtype), as vLLM builds it.

    Per-request block counts are ``n_full x cdiv(M, bs_full)`` +
    ``n_slide x (cdiv(min(window - 1 + F, M), bs_slide) + 1)`` +
    ``n_chunk x cdiv(min(chunk + F, M), bs_chunk)``.
    """

    n_groups: int
    n_full: int
    bs_full: int
    n_slide: int
    window: int
    bs_slide: int
    n_chunk: int
    chunk: int
    bs_chunk: int
    token_block: int                    # min block size: "GPU KV cache size" = blocks // n_groups * this
    stage_bytes_per_block: tuple[float, ...]   # per PP stage; 0 = stage holds no KV
    stage_token_bytes: tuple[float, ...]       # KV bytes per token on each stage (all its layers)
    note: str = ""
    n_state: int = 0                    # state groups (Mamba / GDN / ... layers), each ``state_blocks`` per request
    state_blocks: int = 0
    # per PP stage: state bytes one sequence holds (padded pages x state layers on the stage x state_blocks)
    stage_state_bytes: tuple[float, ...] = ()
    # DeepSeek-V4 (estimate/compressed.py): two more sliding kinds (window, block) beside ``n_slide``'s,
    # "GPU KV cache size" = max_concurrency x max_model_len (``tok_conc`` 1), and the prefill gather
    # workspace PREFILL_CHUNK x (cdiv(M, ratio) + ws_w + F) x head_dim bf16 (``ws_b`` bytes per row;
    # ``stage_ws_ratio``: the ratio sizing each stage's N, 0 = sliding-only stage)
    n_slide2: int = 0
    window2: int = 0
    bs_slide2: int = 16
    n_slide3: int = 0
    window3: int = 0
    bs_slide3: int = 16
    tok_conc: int = 0
    ws_b: int = 0
    ws_w: int = 0
    stage_ws_ratio: tuple[int, ...] = ()
    # the lightning indexer's K-gather reservation (``compressed.indexer_workspace_bytes``: ``ix_d`` = its
    # index_head_dim, 0 without a ratio-4 layer; it shares the gather's workspace buffer, the larger wins) and
    # the SM 12.x FlashInfer sparse-MLA workspace (``ws_fi`` bytes; ``ws_b`` 0 there: no bf16 gather)
    ix_d: int = 0
    ws_fi: int = 0
    # DSA (DeepSeek-V3.2 / GLM-5): the indexer's index_head_dim when its profile-run K gather (max_model_len x 40
    # rows, ``compressed.DSA_INDEXER_WORKSPACE_FROM``) is priced -- per length, ``exprs.encoder_lens``; 0 = none
    dsa_ix: int = 0
    # DSA on FlashMLA-sparse with a bf16 cache: bytes per batched token of the q-concat buffer its
    # ``FlashMLASparseImpl.__init__`` reserves at model construction and keeps (heads per rank x 576 x 2;
    # ``tables.flashmla_sparse_q_concat``) -- load-time memory, per GPU and version in ``exprs.gpu_pass``; 0 = none
    fm_qc: int = 0
    fm_h: int = 0     # its heads a rank (vLLM's backend choice on SM 10.x and 0.29-0.30's padding read them)
    # vLLM <= 0.26's logged concurrency (``compressed.Plan.legacy_pages_per_request``): the aggregated page
    # bytes of the compressed group (``cw0``) and, summed over their groups, of each sliding kind (1-3)
    cw0: int = 0
    cw1: int = 0
    cw2: int = 0
    cw3: int = 0
    # vLLM 0.33+ FlashInfer GDN prefill checkpoints (estimate/hybrid.py ``gdn_checkpoints``): bytes of one row of the
    # float32 checkpoint buffer on a rank (num_v_heads / tp x head_v_dim x head_k_dim x 4); the buffer holds
    # cdiv(max_num_batched_tokens, token_block) rows (``checkpoint_workspace_bytes``); 0 = no checkpoints
    ck_b: int = 0

    def checkpoint_workspace_bytes(self, batched_tokens: int) -> float:
        """The GDN checkpoint buffer at ``batched_tokens`` (0 without checkpoints): grid = the Mamba block size =
        ``token_block`` in align mode (``hybrid.gdn_checkpoint_workspace_bytes``)."""
        return hybrid.gdn_checkpoint_workspace_bytes(self.ck_b, batched_tokens, self.token_block)

    @property
    def attention_free(self) -> bool:
        """State layers only (mamba, mamba2): the block is max_model_len tokens (``ATTENTION_FREE_BLOCK``)."""
        return self.token_block == ATTENTION_FREE_BLOCK and self.n_state > 0

    def block_tokens(self, max_model_len: int) -> int:
        """The block size vLLM logs the cache in: ``token_block``, or max_model_len when attention-free."""
        return max_model_len if self.attention_free else self.token_block

    def kv_cache_tokens(self, num_blocks: int, max_model_len: int) -> int:
        """vLLM's "GPU KV cache size": ``num_blocks // n_groups x min block size`` (scalar twin)."""
        return num_blocks // max(self.n_groups, 1) * self.block_tokens(max_model_len)

    def blocks_per_request(self, max_model_len: int, batched_tokens: int) -> int:
        """Scalar twin of the polars expression (tests, seed API)."""
        m, f = max_model_len, batched_tokens
        n = self.n_full * _cdiv(m, self.bs_full)
        if self.n_slide:
            n += self.n_slide * (_cdiv(min(self.window - 1 + f, m), self.bs_slide) + 1)
        if self.n_chunk:
            n += self.n_chunk * _cdiv(min(self.chunk + f, m), self.bs_chunk)
        for ns, w, bs in ((self.n_slide2, self.window2, self.bs_slide2), (self.n_slide3, self.window3, self.bs_slide3)):
            if ns:
                n += ns * (_cdiv(min(w - 1 + f, m), bs) + 1)
        return n + self.n_state * self.state_blocks


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _kind_key(layer: LayerKV, page: float) -> tuple:
    kind = layer.kind
    if kind is AttentionKind.MLA:
        kind = AttentionKind.FULL   # an MLA group behaves as full attention for block counts
    return (kind.value, layer.window if kind in (AttentionKind.SLIDING, AttentionKind.CHUNKED) else None, page)


class KvScan:
    """What ``kv_groups`` reads off a layer list whatever the (tp, pp, kv dtype): which paths apply, the
    kernel block sizes, the dual layers split (``_split_dual_layers``), and the per-layer token bytes per
    (kv dtype, element bytes, tp, index bytes) -- so a model's ~24 (tp, pp, kv dtype) calls scan its layers
    once (``tables.ModelTables`` keeps one per model).  The list must not change while the scan is used."""

    __slots__ = ("layers", "index", "compressed", "dual", "state", "uniform", "kernel_need", "_split", "_tok", "memo")

    def __init__(self, layers: list[LayerKV]):
        self.layers = layers
        self.index = any(l.index_dim for l in layers)
        self.compressed = any(getattr(l, "compressed", None) is not None for l in layers)
        self.dual = any(l.state is not None and not hybrid.is_state(l) for l in layers)
        self.state = any(hybrid.is_state(l) for l in layers)
        first = layers[0] if layers else None
        self.uniform = first is not None and first.kind is not AttentionKind.NONE and all(l == first for l in layers)
        self.kernel_need = sorted({l.kernel_block for l in layers if l.kernel_block})
        self._split = None
        self._tok: dict = {}
        self.memo: dict = {}     # kv_groups' other per-model parts (block size, kinds per dtype, state bytes per tp)

    def split(self, parts) -> tuple[list[LayerKV], list[tuple[int, int]]]:
        """``_split_dual_layers(self.layers, parts)``, the split list built once."""
        if self._split is None:
            self._split = _split_dual_layers(self.layers, [(0, 0)])[0], _dual_starts(self.layers)
        out, start = self._split
        return out, [(start[a], start[b]) for a, b in parts]

    def token_bytes(self, split: bool, kv_dtype: str, elem_bytes: float, tp: int, ib: float) -> list[float]:
        """``layer_token_bytes`` of every layer (of the split list when ``split``), memoised."""
        key = (split, kv_dtype, elem_bytes, tp, ib)
        tok = self._tok.get(key)
        if tok is None:
            layers = self._split[0] if split else self.layers
            tok = self._tok[key] = [layer_token_bytes(l, kv_dtype, elem_bytes, tp, ib) for l in layers]
        return tok


def kv_groups(spec: ModelSpec, tp: int, pp: int, kv_dtype: str, elem_bytes: float,
              block_size: int = 16, *, state_conv_bytes: float = 2, state_mode: str = "none",
              indexer_kv_dtype: str = "bf16", scan: KvScan | None = None, default_block: int = 16,
              version: tuple[int, int] | None = None, gdn_checkpoint: bool = False) -> KvGroups:
    """Group the layers as vLLM's ``get_kv_cache_groups`` and cost each PP stage's block.

    ``state_conv_bytes``: element size of the state layers' conv state (the model dtype);
    ``state_mode``: vLLM's ``mamba_cache_mode`` (``none`` | ``align``; estimate/hybrid.py);
    ``indexer_kv_dtype``: vLLM's ``--attention-config indexer_kv_dtype`` (MiniMax-M3's index cache);
    ``scan``: a ``KvScan`` of ``spec.layers_kv`` kept across calls (built here when None); ``default_block``: the
    release's ``CacheConfig.DEFAULT_BLOCK_SIZE`` (a ``block_size`` equal to it stands for "no --block-size");
    ``version``: the job's vLLM (major, minor), for the release's block-size rules (None: the newest);
    ``gdn_checkpoint``: the Qwen GDN layers export FlashInfer prefill checkpoints (``hybrid.gdn_checkpoints`` of the
    spec, version, mode and GPU: vLLM 0.33+ in align mode on SM 9.0 / 10.x / 12.x) -- a third state block a
    request, the attention block aligned to 64 and the checkpoint buffer's row bytes ``ck_b``."""
    layers = spec.layers_kv
    if scan is None or scan.layers is not layers:
        scan = KvScan(layers)
    bs_key = ("block", block_size, default_block, version)
    block_size = scan.memo.get(bs_key) or scan.memo.setdefault(
        bs_key, auto_block_size(layers, block_size, default_block, version))
    _check_kernel_block(layers, block_size, scan.kernel_need)
    ib = indexer_bytes(indexer_kv_dtype) if scan.index else 2
    parts = pp_partition(len(layers), pp) if layers else [(0, 0)] * pp
    if scan.compressed:
        return _compressed_groups(layers, parts, kv_dtype, block_size, default_block)
    if scan.dual:
        layers, parts = scan.split(parts)
    if scan.dual or scan.state:
        return _state_groups(layers, parts, tp, kv_dtype, elem_bytes, block_size, state_conv_bytes, state_mode, version,
                             tok=lambda: scan.token_bytes(scan.dual, kv_dtype, elem_bytes, tp, 2), memo=scan.memo,
                             checkpoint=gdn_checkpoint)
    if scan.uniform:
        # fast path: every layer identical (most models) -> one group, pages add up per stage
        t0 = layer_token_bytes(layers[0], kv_dtype, elem_bytes, tp, ib)
        if t0 > 0:
            kind = layers[0].kind
            w = layers[0].window or 0
            sizes = [b - a for a, b in parts]
            return _summary(1 if kind in (AttentionKind.FULL, AttentionKind.MLA) else 0, block_size,
                            1 if kind is AttentionKind.SLIDING else 0, w, block_size,
                            1 if kind is AttentionKind.CHUNKED else 0, w, block_size, 1, block_size,
                            tuple(n * t0 * block_size for n in sizes), tuple(n * t0 for n in sizes), "")
    tok = scan.token_bytes(False, kv_dtype, elem_bytes, tp, ib)
    stage_of = {}
    for s, (a, b) in enumerate(parts):
        for i in range(a, b):
            stage_of[i] = s
    stage_tok = tuple(sum(tok[a:b]) for a, b in parts)

    k_key = ("kinds", kv_dtype, elem_bytes, tp, ib, block_size)     # the same for every pp
    kv_layers, keys, kinds, windows = scan.memo.get(k_key) or scan.memo.setdefault(k_key, _kinds(layers, tok, block_size))
    if not kv_layers:
        return KvGroups(0, 0, block_size, 0, 0, block_size, 0, 0, block_size, block_size,
                        tuple(0.0 for _ in parts), stage_tok, "attention-free")

    if len(kinds) == 1 and len(windows) == 1:
        # uniform spec or uniform type (same token slots, pages may differ): one group,
        # a block holds one page of every layer on the stage.
        kind, window, _ = next(iter(keys.values()))
        bpb = [0.0] * pp
        for i in kv_layers:
            bpb[stage_of[i]] += tok[i] * block_size
        return _summary(1 if kind in ("full",) else 0, block_size,
                        1 if kind == "sliding" else 0, window or 0, block_size,
                        1 if kind == "chunked" else 0, window or 0, block_size,
                        1, block_size, tuple(bpb), stage_tok, "")

    # hybrid: unify pages by growing the block size of smaller-page layers
    max_page = max(k[2] for k in keys.values())
    by_type: dict[tuple, list[int]] = defaultdict(list)
    bs_of: dict[tuple, int] = {}
    for i in kv_layers:
        kind, window, page = keys[i]
        ratio = max_page / page
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError("hybrid KV page sizes cannot be unified (vLLM raises NotImplementedError)")
        t = (kind, window, int(round(ratio)))
        by_type[t].append(i)
        bs_of[t] = block_size * int(round(ratio))
    groups = _group_by_type(by_type)
    bpb = []
    for s in range(pp):
        per_group = [sum(1 for i in members if stage_of[i] == s) for _, members in groups]
        bpb.append(max(per_group) * max_page if per_group else 0.0)
    n_full = sum(1 for t, _ in groups if t[0] == "full")
    slide = [t for t, _ in groups if t[0] == "sliding"]
    chunk = [t for t, _ in groups if t[0] == "chunked"]
    note = ""
    if len({t[1] for t in slide}) > 1 or len({t[1] for t in chunk}) > 1:
        note = "several window sizes: the largest is used for every window group"
    full_bs = min((bs_of[t] for t, _ in groups if t[0] == "full"), default=block_size)
    return _summary(n_full, full_bs,
                    len(slide), max((t[1] for t in slide), default=0),
                    max((bs_of[t] for t in slide), default=block_size),
                    len(chunk), max((t[1] for t in chunk), default=0),
                    max((bs_of[t] for t in chunk), default=block_size),
                    len(groups), min(bs_of.values()), tuple(bpb), stage_tok, note)


def _kinds(layers: list[LayerKV], tok: list[float], block_size: int) -> tuple:
    """(cache layers, their ``_kind_key`` by index, the kinds, the windows) at one page size per layer."""
    kv_layers = [i for i, l in enumerate(layers) if l.kind is not AttentionKind.NONE and tok[i] > 0]
    keys = {i: _kind_key(layers[i], tok[i] * block_size) for i in kv_layers}
    return kv_layers, keys, {k[0] for k in keys.values()}, {k[1] for k in keys.values()}


DEFAULT_BLOCK = 16     # vLLM's CacheConfig.DEFAULT_BLOCK_SIZE before 0.34 (64 from 0.34: VllmProfile.default_block_size)
# from vLLM 0.31 the default block size is the smallest every attention backend of the model accepts, not the first
# backend's preference (vllm 0.31.0 sdist platforms/interface.py ``_preferred_block_size_for_backends``, absent from
# the 0.30.0 sdist, whose Phase 1 asks ``backend_cls.get_preferred_block_size`` of the first backend only,
# interface.py:628-640)
ALL_BACKENDS_BLOCK_FROM = (0, 31)


def auto_block_size(layers: list[LayerKV], block_size: int, default_block: int = DEFAULT_BLOCK,
                    version: tuple[int, int] | None = None) -> int:
    """The KV block size vLLM settles on when the job gives the release's default (``default_block``: no
    ``--block-size``); a size the user gives is kept.

    ``Platform.update_block_size_for_backend`` (vllm/platforms/interface.py, Phase 1).  Before 0.31 it asks only
    the *first* non-SSM attention layer's backend for ``get_preferred_block_size(default)``, which is the default
    when the backend takes it and otherwise the smallest size it lists (``AttentionBackend.get_preferred_block_size``,
    vllm/v1/attention/backend.py @0014ca6b; 0.34.0 sdist v1/attention/backend.py:158-166).  So a model whose first
    attention layer runs on a kernel-block-restricted backend (``LayerKV.kernel_block``: a MiniMax-M3 config whose
    layer 0 is sparse) is served at that block size; one whose first layer is a plain attention layer (MiniMax-M3 as
    shipped: three dense layers first, FlashAttention) keeps the default, and vLLM then fails with "No common block
    size for 16" (``_check_kernel_block``).  From 0.31 (``ALL_BACKENDS_BLOCK_FROM``) the size is the smallest every
    backend accepts (``_preferred_block_size_for_backends``, 0.34.0 sdist platforms/interface.py:710-757: the
    default when all take it, else the smallest LCM of one supported size per backend): the restricted backends'
    sizes' LCM -- MiniMax-M3 as shipped runs at 128 there."""
    if block_size != default_block:
        return block_size
    attn = [l for l in layers if l.kind is not AttentionKind.NONE and not hybrid.is_state(l)]
    if version is None or tuple(version) >= ALL_BACKENDS_BLOCK_FROM:
        need = sorted({l.kernel_block for l in attn if getattr(l, "kernel_block", 0)})
        if all(block_size % k == 0 for k in need):
            return block_size
        return math.lcm(*need)
    first = attn[0] if attn else None
    k = getattr(first, "kernel_block", 0) if first is not None else 0
    return k if k and block_size % k else block_size


def _check_kernel_block(layers: list[LayerKV], block_size: int, need: list[int] | None = None) -> None:
    """vLLM picks each group's kernel block size with ``select_common_block_size_from_constraints``
    (``vllm/v1/attention/backend.py``): the KV block size itself if every backend takes it, else the largest
    exact size a backend lists that divides it -- and raises "No common block size" when none does.
    MiniMax-M3's sparse and indexer backends list only 128, so the block size must be a multiple of 128."""
    if need is None:
        need = sorted({l.kernel_block for l in layers if l.kernel_block})
    for k in need:
        if block_size % k:
            raise ValueError(f"block_size {block_size}: vLLM's MiniMax-M3 sparse-attention and indexer backends take "
                             f"only {k}-token kernel blocks (get_supported_kernel_block_sizes), so a {block_size}-token "
                             f"KV block has no common kernel block size (vLLM raises 'No common block size for "
                             f"{block_size}'); serve with --block-size {k} or a multiple")


def _group_by_type(by_type: dict) -> list[tuple[tuple, list[int]]]:
    """vLLM's grouping: ``min`` layers per type per group (``max`` when max < 1.5 x min),
    ``cdiv(n, group_size)`` groups per type, group ``g`` of a type = ``layers[g::n_groups]``."""
    counts = [len(v) for v in by_type.values()]
    gsize = min(counts)
    if max(counts) < gsize * 1.5:
        gsize = max(counts)
    groups: list[tuple[tuple, list[int]]] = []
    for t, idx in by_type.items():
        ng = _cdiv(len(idx), gsize)
        for g in range(ng):
            groups.append((t, idx[g::ng]))
    return groups


def _split_dual_layers(layers: list[LayerKV], parts) -> tuple[list[LayerKV], list[tuple[int, int]]]:
    """Decoder layers that hold an attention KV cache *and* a recurrent state (falcon_h1's parallel
    attention + Mamba-2 mixers, zamba2's hybrid layers: ``LayerKV(FULL, state=...)``) as the two
    cache layers vLLM registers for them (``self_attn`` and ``mamba``), on the same PP stage."""
    out: list[LayerKV] = []
    start: list[int] = []
    for l in layers:
        start.append(len(out))
        if l.state is not None and not hybrid.is_state(l):
            out.append(replace(l, state=None))
            out.append(LayerKV(AttentionKind.STATE, state=l.state))
        else:
            out.append(l)
    start.append(len(out))
    return out, [(start[a], start[b]) for a, b in parts]


def _dual_starts(layers: list[LayerKV]) -> list[int]:
    """Index in ``_split_dual_layers``' list of each decoder layer's first cache layer (and the end)."""
    start, n = [], 0
    for l in layers:
        start.append(n)
        n += 2 if l.state is not None and not hybrid.is_state(l) else 1
    start.append(n)
    return start


def _state_groups(layers: list[LayerKV], parts, tp: int, kv_dtype: str, elem_bytes: float, block_size: int,
                  conv_bytes: float, mode: str, version: tuple[int, int] | None = None, tok=None,
                  memo: dict | None = None, checkpoint: bool = False) -> KvGroups:
    """Attention + state layers in one pool (estimate/hybrid.py has the vLLM rules and sources); ``tok``: a
    callable giving the layers' token bytes (``KvScan.token_bytes``), None to compute them here; ``memo``:
    ``KvScan.memo`` (the state layers' bytes per (tp, conv bytes) kept across calls); ``checkpoint``: FlashInfer
    GDN prefill checkpoints (align mode only; hybrid.py "FlashInfer GDN prefill checkpoints")."""
    if mode not in hybrid.STATE_BLOCKS:
        raise ValueError(f"mamba_cache_mode {mode!r} is not modelled (only none and align)")
    pp = len(parts)
    stage_of = {i: s for s, (a, b) in enumerate(parts) for i in range(a, b)}
    state_idx = [i for i, l in enumerate(layers) if hybrid.is_state(l)]
    sb_key = ("state", tp, conv_bytes)
    state_bytes = memo.get(sb_key) if memo is not None else None
    if state_bytes is None:
        state_bytes = {i: hybrid.state_layer_bytes(layers[i], tp, conv_bytes) for i in state_idx}
        if memo is not None:
            memo[sb_key] = state_bytes
    if len(set(state_bytes.values())) > 1:
        raise ValueError("state layers with different state sizes: vLLM cannot unify their pages (not modelled)")
    state_page = next(iter(state_bytes.values()))
    tok = tok() if tok is not None else [layer_token_bytes(l, kv_dtype, elem_bytes, tp) for l in layers]
    attn_idx = [i for i, l in enumerate(layers) if not hybrid.is_state(l) and l.kind is not AttentionKind.NONE
                and tok[i] > 0]
    if not attn_idx:
        return _attention_free_groups(parts, stage_of, state_idx, state_page, block_size, mode)
    if len({tok[i] for i in attn_idx}) > 1:
        raise ValueError("attention layers with different KV page sizes beside state layers are not modelled")
    attn_1tok = tok[attn_idx[0]]
    mla = any(layers[i].kind is AttentionKind.MLA for i in attn_idx)
    checkpoint = checkpoint and mode == "align" and all(layers[i].state.kind == "gdn" for i in state_idx)
    bs = hybrid.hybrid_block_size(state_page, attn_1tok, block_size, mla, version,
                                  hybrid.GDN_CHECKPOINT_ALIGN if checkpoint else 1)
    page = bs * attn_1tok
    by_type: dict[tuple, list[int]] = defaultdict(list)
    for i in sorted(attn_idx + state_idx):
        l = layers[i]
        if hybrid.is_state(l):
            by_type[("state", None)].append(i)
        else:
            kind = "full" if l.kind in (AttentionKind.FULL, AttentionKind.MLA) else l.kind.value
            by_type[(kind, l.window if kind != "full" else None)].append(i)
    groups = _group_by_type(by_type)
    bpb = []
    for s in range(pp):
        per_group = [sum(1 for i in members if stage_of[i] == s) for _, members in groups]
        bpb.append(max(per_group) * page)
    kinds = [t for t, _ in groups]
    slide = [t for t in kinds if t[0] == "sliding"]
    chunk = [t for t in kinds if t[0] == "chunked"]
    if len({t[1] for t in slide}) > 1 or len({t[1] for t in chunk}) > 1:
        raise ValueError("several window sizes beside state layers are not modelled")
    n_blocks = hybrid.state_blocks(mode, checkpoint or hybrid.mamba2_checkpoints(
        (layers[i].state.kind for i in state_idx), version, mode))
    stage_tok = tuple(float(sum(tok[a:b])) for a, b in parts)
    stage_state = tuple(float(sum(1 for i in state_idx if stage_of[i] == s) * page * n_blocks) for s in range(pp))
    return KvGroups(n_groups=len(groups), n_full=sum(1 for t in kinds if t[0] == "full"), bs_full=bs,
                    n_slide=len(slide), window=max((t[1] for t in slide), default=0), bs_slide=bs,
                    n_chunk=len(chunk), chunk=max((t[1] for t in chunk), default=0), bs_chunk=bs,
                    token_block=bs, stage_bytes_per_block=tuple(float(x) for x in bpb),
                    stage_token_bytes=stage_tok, note="",
                    n_state=sum(1 for t in kinds if t[0] == "state"), state_blocks=n_blocks,
                    stage_state_bytes=stage_state,
                    ck_b=hybrid.gdn_checkpoint_row_bytes(layers[state_idx[0]].state, tp) if checkpoint else 0)


def _compressed_groups(layers: list[LayerKV], parts, kv_dtype: str, block_size: int,
                       default_block: int = DEFAULT_BLOCK) -> KvGroups:
    """DeepSeek-V4's pool (estimate/compressed.py) in the matrix's terms: the compressed group as the full
    group, the sliding groups as up to three (window, block) kinds, one block = the plan's bytes per block."""
    from . import compressed as cm

    cm.resolve_kv_dtype(kv_dtype)          # InvalidKvDtype: vLLM asserts fp8
    # the release's default block size (16; 64 from 0.34) means no --block-size: DeepSeek-V4's backends then give 256
    # (DeepseekSparseSWABackend.get_preferred_block_size; from 0.31 the smallest size every backend takes, which the
    # V4 indexer's exact [256] decides -- vllm 0.34.0 sdist v1/attention/backends/mla/indexer.py:306-308)
    p = cm.plan(layers, list(parts), cm.PREFERRED_BLOCK if block_size == default_block else block_size)
    if p.stage_bytes_per_block != p.stage_check_bytes_per_block:
        raise cm.UnsupportedLayout(
            "a pipeline stage without every compressed cache kind: vLLM's start-up check charges its blocks at "
            "the whole model's layer tuples, not at the pool's block size (kv_cache_planning.py @fc23e695) -- "
            "not modelled")
    kinds: dict[tuple[int, int], int] = {}
    weights: dict[tuple[int, int], int] = {}
    for g in p.groups[1:]:
        kinds[(g.window, g.block_size)] = kinds.get((g.window, g.block_size), 0) + 1
        weights[(g.window, g.block_size)] = weights.get((g.window, g.block_size), 0) + sum(g.pages)
    if len(kinds) > 3:
        raise cm.UnsupportedLayout(f"{len(kinds)} sliding cache kinds: the matrix models at most three")
    sl = [(n, w, b) for (w, b), n in kinds.items()] + [(0, 0, 16)] * (3 - len(kinds))
    cw = list(weights.values()) + [0] * (3 - len(weights))
    full = p.groups[0]
    head = layers[0].compressed.head_dim
    return KvGroups(n_groups=len(p.groups), n_full=1, bs_full=full.block_size,
                    n_slide=sl[0][0], window=sl[0][1], bs_slide=sl[0][2], n_chunk=0, chunk=0, bs_chunk=16,
                    token_block=full.block_size, stage_bytes_per_block=tuple(float(x) for x in p.stage_bytes_per_block),
                    stage_token_bytes=tuple(float(x) for x in p.stage_token_bytes), note="",
                    n_slide2=sl[1][0], window2=sl[1][1], bs_slide2=sl[1][2],
                    n_slide3=sl[2][0], window3=sl[2][1], bs_slide3=sl[2][2], tok_conc=1,
                    ws_b=cm.PREFILL_CHUNK * head * 2, ws_w=max(l.window or 0 for l in layers),
                    stage_ws_ratio=tuple(cm.workspace_ratio(layers, a, b) for a, b in parts),
                    ix_d=max((l.compressed.index_head_dim for l in layers
                              if l.compressed is not None and l.compressed.ratio == 4), default=0),
                    cw0=sum(p.groups[0].pages), cw1=cw[0], cw2=cw[1], cw3=cw[2])


ATTENTION_FREE_BLOCK = 0   # ``token_block`` of an attention-free model: its block is max_model_len tokens


def _attention_free_groups(parts, stage_of: dict, state_idx: list[int], page: float, block_size: int,
                           mode: str) -> KvGroups:
    """A model with state layers only (mamba, mamba2: vLLM ``IsAttentionFree``).

    vLLM (``MambaModelConfig.verify_and_update_config``, models/config.py @1936cf38) sets
    ``mamba_block_size = max_model_len`` when unset; every layer has the same ``MambaSpec``, so the
    layers form ONE group (``_get_kv_cache_groups_uniform_spec``) whose page is the unpadded state
    (nothing to unify with); ``num_blocks = avail // (page x layers)`` per worker; a request holds one
    block (mode ``none``).  "GPU KV cache size" = ``num_blocks x max_model_len`` (the group's block
    size), so ``token_block`` is ``ATTENTION_FREE_BLOCK`` here and the matrix multiplies by each
    max_model_len.  Prefix caching: vLLM's ``ModelConfig.is_prefix_caching_supported`` is False for
    attention-free models (off by default in every version); turned on by hand, the Mamba block size
    follows other rules (``all`` / ``align``) -- not modelled."""
    if mode != "none":
        raise ValueError("prefix caching on an attention-free (pure state-space) model: vLLM's mamba_cache_mode "
                         "all / align block sizes without attention layers are not modelled")
    pp = len(parts)
    per_stage = [sum(1 for i in state_idx if stage_of[i] == s) for s in range(pp)]
    return KvGroups(n_groups=1, n_full=0, bs_full=block_size, n_slide=0, window=0, bs_slide=block_size,
                    n_chunk=0, chunk=0, bs_chunk=block_size, token_block=ATTENTION_FREE_BLOCK,
                    stage_bytes_per_block=tuple(float(n * page) for n in per_stage),
                    stage_token_bytes=tuple(0.0 for _ in parts), note="attention-free",
                    n_state=1, state_blocks=1, stage_state_bytes=tuple(float(n * page) for n in per_stage))


def _summary(n_full, bs_full, n_slide, window, bs_slide, n_chunk, chunk, bs_chunk,
             n_groups, token_block, bpb, stage_tok, note) -> KvGroups:
    return KvGroups(n_groups, n_full, bs_full, n_slide, window, bs_slide, n_chunk, chunk, bs_chunk,
                    token_block, tuple(float(x) for x in bpb), tuple(float(x) for x in stage_tok), note)


def kv_bytes_per_token(spec: ModelSpec, kv_dtype: str = "auto", act_bytes: float = 2, tp: int = 1,
                       indexer_kv_dtype: str = "bf16") -> float:
    """All layers, one token, one TP rank, before any window cap (MLA is not / tp).  DeepSeek-V4: the
    compressed caches' page bytes per token of context at vLLM's block 256 (padding included; the sliding-window
    caches are a fixed number of pages a request, not per token), fp8 only as vLLM asserts."""
    if any(getattr(l, "compressed", None) is not None for l in spec.layers_kv):
        from . import compressed as cm
        try:
            cm.resolve_kv_dtype(kv_dtype)
        except cm.InvalidKvDtype as e:
            raise UnsupportedKvDtype(str(e)) from None
        return sum(c.token_bytes for c in cm.layer_caches(spec.layers_kv) if c.window is None)
    eb = kv_element_bytes(kv_dtype, act_bytes, spec)
    ib = indexer_bytes(indexer_kv_dtype) if any(l.index_dim for l in spec.layers_kv) else 2
    return sum(layer_token_bytes(l, kv_dtype, eb, tp, ib) for l in spec.layers_kv)


def max_model_len_fit_scalar(g: KvGroups, num_blocks: int, batched_tokens: int, cap: int) -> int:
    """Largest M <= cap with blocks_per_request(M) <= num_blocks (binary search; scalar reference)."""
    if num_blocks <= 0 or g.blocks_per_request(1, batched_tokens) > num_blocks:
        return 0
    lo, hi = 1, cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if g.blocks_per_request(mid, batched_tokens) <= num_blocks:
            lo = mid
        else:
            hi = mid - 1
    return lo


__all__ = ["ATTENTION_FREE_BLOCK", "KvGroups", "KvScan", "kv_groups", "kv_element_bytes", "kv_bytes_per_token",
           "layer_token_bytes", "max_model_len_fit_scalar", "UnsupportedKvDtype", "FP8_DS_MLA_BYTES",
           "INDEXER_KV_BYTES", "indexer_bytes"]
