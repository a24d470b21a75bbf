"""Weight bytes on each rank of a layout, following vLLM V1's sharding.

Why per tensor class and per layer: vLLM divides each weight by its role, and
pipeline stages take whole decoder layers, so the worst rank is only knowable
from per-layer sums split by sharding class.  We sum the unsharded bytes once
per (model, scheme) -- ``scheme.tensor_bytes`` includes scales and zero
points -- and every layout then costs ``O(layers)``.

Rules (PRODUCT.md §3, research-peers.md C2/C3):

- COLUMN / ROW: ``/ tp``.
- KV (K/V projections): ``max(1, n_kv // tp) / n_kv`` of it (replicated heads when tp > n_kv); a layer
  whose K/V projections have another head count (``spec.kv_heads_by_layer``, Gemma-4's
  ``num_global_key_value_heads``) is summed apart (``kv_alt``) and split by its own count.
- VOCAB (embedding, lm_head): rows padded to a multiple of 64, then ``/ tp``.
- REPLICATED: whole on every rank.
- EXPERT: ``/ (tp * dp)`` without EP; with EP whole experts, ``E // ep`` plus one
  for the first ``E % ep`` ranks -> rank 0 is the worst.
- Placement: decoder layer ``i`` on the stage owning it (vLLM get_pp_indices);
  embedding and vision tower on the first stage; lm_head and final norm on the
  last; a tied embedding is also on the last stage when ``pp > 1``.  A model whose vLLM
  class builds everything outside the decoder layers on every rank (``spec.pp_every_stage``:
  Gemma-4) has the first- and last-stage tensors on every stage (a tied head is the embedding).
- Each stage also holds the rotary ``cos_sin_cache`` buffers (``spec.rope_caches``, see
  ``rotary_cache_bytes``); vLLM's "Model loading took" figure includes them (Llama-3.1-8B:
  32 MiB of its 14.99 GiB; Gemma-3: 576 MiB).  Where the model code sizes them by ``--max-model-len``
  (MiniMax-Text-01, MiniMax-M2: ``spec.rope_length_mode``) the table is built for one length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from math import ceil

import numpy as np

from reportgen.arch.rope import cache_rows_at
from reportgen.arch.spec import Component, ModelSpec, Shard

from .layout import Layout, experts_on_rank, pp_partition
from .quant.layouts import Fp8, Int8, IntGroup, Mxfp4, Nvfp4, Plain

VOCAB_PAD = 64


@dataclass(frozen=True, slots=True)
class ClassBytes:
    """Unsharded bytes of one group of tensors, split by sharding class."""

    tp_split: float = 0.0      # COLUMN + ROW
    kv: float = 0.0
    replicated: float = 0.0
    vocab: float = 0.0         # already multiplied by the 64-row padding factor
    expert: float = 0.0
    kv_alt: float = 0.0        # K/V projections built with the other head count (WeightTable.n_kv_alt)

    def __add__(self, o: "ClassBytes") -> "ClassBytes":
        return ClassBytes(self.tp_split + o.tp_split, self.kv + o.kv, self.replicated + o.replicated,
                          self.vocab + o.vocab, self.expert + o.expert, self.kv_alt + o.kv_alt)

    def __sub__(self, o: "ClassBytes") -> "ClassBytes":
        return ClassBytes(self.tp_split - o.tp_split, self.kv - o.kv, self.replicated - o.replicated,
                          self.vocab - o.vocab, self.expert - o.expert, self.kv_alt - o.kv_alt)

    def on_rank(self, tp: int, n_kv: int, expert_fraction: float, n_kv_alt: int = 0) -> float:
        """Bytes on one rank, given the TP size and the share of experts this rank holds."""
        return (self.tp_split / tp + self.kv * _kv_frac(n_kv, tp) + self.replicated
                + self.vocab / tp + self.expert * expert_fraction + self.kv_alt * _kv_frac(n_kv_alt, tp))


def _kv_frac(n_kv: int, tp: int) -> float:
    """The share of a QKVParallelLinear's K/V part one rank holds: ``max(1, n_kv // tp)`` of ``n_kv`` heads."""
    return (max(1, n_kv // tp) / n_kv) if n_kv else 1.0 / tp


ZERO = ClassBytes()


@dataclass(frozen=True, slots=True)
class WeightTable:
    """Per-layer and end-of-stack byte sums for one (model, scheme).

    ``prefix[i]`` is the sum of layers ``[0, i)`` so a stage costs O(1).
    """

    per_layer: tuple[ClassBytes, ...]   # index = decoder layer
    prefix: tuple[ClassBytes, ...]      # len = layers + 1
    first: ClassBytes                   # embedding, vision tower, other off-stack tensors
    last: ClassBytes                    # lm_head, final norm
    tied_copy: ClassBytes               # the embedding again, on the last stage when tied and pp > 1
    buffer_bytes: float                 # per-stage GPU buffers (rotary cache)
    n_kv: int
    num_experts: int
    n_kv_alt: int = 0                   # head count of the ``kv_alt`` class (0 = none)
    every_stage: bool = False           # first and last on every stage (spec.pp_every_stage)
    scheme: object = None               # kept when routed experts need per-rank costing (MXFP4 padding)
    expert_tensors: tuple = ()          # ((layer, Tensor), ...) routed experts, only in that case
    _expert_prefix: dict = field(default_factory=dict, compare=False, repr=False)
    _stage_sums: dict = field(default_factory=dict, compare=False, repr=False)

    def stage_sums(self, pp: int) -> list[tuple[tuple[int, int], ClassBytes]]:
        """Per pipeline stage: its decoder-layer range and unsharded class sums (layers, plus the first /
        last stage's tensors), memoised per ``pp`` -- the layouts of one ``pp`` differ only in the split."""
        out = self._stage_sums.get(pp)
        if out is None:
            out = self._stage_sums[pp] = []
            for s, (a, b) in enumerate(pp_partition(len(self.per_layer), pp)):
                acc = self.layers_sum(a, b)
                if self.every_stage:
                    acc = acc + self.first + self.last
                elif s == 0:
                    acc = acc + self.first
                if s == pp - 1 and not self.every_stage:
                    acc = acc + self.last
                    if pp > 1:
                        acc = acc + self.tied_copy
                out.append(((a, b), acc))
        return out

    def expert_prefix(self, moe_tp: int, experts: int | None) -> list[float]:
        """Prefix sums over layers of routed-expert bytes on one rank (scheme-specific padding)."""
        key = (moe_tp, experts)
        if key not in self._expert_prefix:
            per = [0.0] * (len(self.per_layer) + 1)
            # the layers' expert tensors repeat: once per key when the scheme cannot single out a layer
            memo: dict | None = {} if _layer_agnostic(self.scheme) else None
            for layer, t in self.expert_tensors:
                if memo is None:
                    b = float(self.scheme.expert_rank_bytes(t, moe_tp, experts))
                else:
                    k = _tensor_key(t)
                    b = memo.get(k)
                    if b is None:
                        b = memo[k] = float(self.scheme.expert_rank_bytes(t, moe_tp, experts))
                per[layer + 1] += b
            for i in range(1, len(per)):
                per[i] += per[i - 1]
            self._expert_prefix[key] = per
        return self._expert_prefix[key]

    def layers_sum(self, a: int, b: int) -> ClassBytes:
        return self.prefix[b] - self.prefix[a]


def rotary_cache_bytes(spec: ModelSpec, act_bytes: float, max_model_len: int | None = None) -> float:
    """vLLM's rotary ``cos_sin_cache`` buffers on a rank: ``rows x rotary_dim`` each.

    ``spec.rope_caches`` (``((rows, rotary_dim[, element bytes]), ...)``) is filled exactly per
    family by ``reportgen.arch.rope`` from vLLM's ``get_rope`` (memoised: one module per distinct
    parameters) and each class's cache size -- e.g. Gemma-3: a local default cache plus a linear x8
    global one, 131072 x 8 x 256 x 2 B = 512 MiB; gpt-oss: a float32 YaRN cache.  Element bytes 0
    or absent = the model (serving) dtype ``act_bytes``; ``()`` = no rotary module.  A spec whose
    ``rope_caches`` is None (built by hand) gets one cache of ``max_position_embeddings x
    rotary_dim`` (Llama-3.1-8B: 32 MiB of its 14.99 GiB); ``rotary_dim`` is the spec's, else the
    head dim (64 for MLA).

    ``max_model_len``: vLLM's ``--max-model-len`` (None: its default).  An entry whose model code sizes
    ``get_rope``'s ``max_position`` by it (a fourth item, ``rope.LengthRows``: MiniMax-Text-01's
    ``min(max_position_embeddings, max_model_len)``, MiniMax-M2's ``max``) has that length's rows; every other
    entry is the same at every length.
    """
    caches = getattr(spec, "rope_caches", None)
    if caches is not None:
        return float(sum(cache_rows_at(c, max_model_len) * int(c[1]) * ((c[2] if len(c) > 2 else 0) or act_bytes)
                         for c in caches))
    max_pos = spec.max_position_embeddings or 0
    rot = getattr(spec, "rotary_dim", 0) or (64 if spec.is_mla else spec.head_dim)
    return float(max_pos * (rot or 0) * act_bytes)


_LAYER_INDEX = re.compile(r"\.\d+\.")


def _layer_agnostic(scheme) -> bool:
    """True when a scheme cannot treat two layers' same-named tensors differently: neither its ignore
    list nor the names its rules select by (``Rule.names``: ModelOpt MIXED_PRECISION's per-layer
    algorithms, compressed-tensors name targets) name a numbered module (``model.layers.3.mlp`` would)."""
    entries = getattr(getattr(scheme, "exclude", None), "entries", ()) or ()
    names = [n for r in getattr(scheme, "rules", ()) or () for n in getattr(r, "names", ())]
    return not any(_names_layer(e) for e in (*entries, *names))


def _names_layer(entry: str) -> bool:
    """An ignore-list / rule entry that may name some layers only: a digit, or a regex (``re:``) with a
    digit class or a character set (``layers\\.\\d\\.`` is layers 0-9)."""
    return any(ch.isdigit() for ch in entry) or (entry.startswith("re:") and ("\\d" in entry or "[" in entry))


_CLASS_INDEX = {Shard.COLUMN: 0, Shard.ROW: 0, Shard.KV: 1, Shard.REPLICATED: 2, Shard.VOCAB: 3, Shard.EXPERT: 4}
_KV_ALT = 5


def kv_head_counts(spec: ModelSpec) -> tuple[int, int]:
    """(main, alternate) K/V-projection head counts; alternate 0 when every layer has ``num_kv_heads``."""
    alt = {k for k in getattr(spec, "kv_heads_by_layer", ()) if k != spec.num_kv_heads}
    if len(alt) > 1:
        raise ValueError(f"K/V projections with head counts {sorted(alt | {spec.num_kv_heads})}: "
                         "at most two are modelled")
    return spec.num_kv_heads, (alt.pop() if alt else 0)


@lru_cache(maxsize=1 << 16)
def _layer_free(name: str) -> str:
    """A tensor name with its numbered components replaced (``layers.3.mlp`` -> ``layers.#.mlp``)."""
    return _LAYER_INDEX.sub(".#.", name)


def _tensor_key(t) -> tuple:
    """What a layer-agnostic scheme's bytes of ``t`` depend on (``_layer_agnostic``)."""
    return (_layer_free(t.name), t.shape, t.count, t.shard, t.component, t.quantizable, t.dtype_bytes)


_FIRST, _LAST = -1, -2


class TensorPlan:
    """The scheme-independent half of ``build_weight_table`` for one spec: every tensor's sharding class,
    vocabulary padding and place (a decoder layer, the first / last stage, the tied copy), and the decoder
    layers grouped by their run of (class, tensor key, padding).  Under a scheme that cannot single out a
    layer (``_layer_agnostic``) or stores everything at the model dtype, layers alike in that (most of a
    decoder stack) hold the same bytes, so each group is summed once per scheme -- in the tensors' order,
    so the sums are the per-tensor loop's to the bit.  ``ModelTables`` builds one per model and uses it
    for every weight dtype; the spec must not change meanwhile."""

    __slots__ = ("spec", "reps", "groups", "group_of", "off")

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        n = spec.num_layers
        n_kv, n_kv_alt = kv_head_counts(spec)
        kv_by_layer = getattr(spec, "kv_heads_by_layer", ())
        tensors = spec.tensors
        tie = spec.tie_word_embeddings and not any(t.component is Component.LM_HEAD for t in tensors)
        kid: dict = {}
        reps: list = []                     # the first tensor of each key, in spec order
        per_layer: list[list] = [[] for _ in range(n)]
        off: list = []                      # (slot, class, padding, key id, tied copy too) off the layers
        layer_free, class_index, last_c, norm_c, emb_c = (_layer_free, _CLASS_INDEX, Component.LM_HEAD,
                                                          Component.NORM, Component.EMBEDDING)
        for t in tensors:           # _tensor_key inlined: this loop is a pass over every tensor of the model
            shape, shard, comp, layer = t.shape, t.shard, t.component, t.layer
            key = (layer_free(t.name), shape, t.count, shard, comp, t.quantizable, t.dtype_bytes)
            k = kid.get(key)
            if k is None:
                k = kid[key] = len(reps)
                reps.append(t)
            ci = class_index.get(shard, 2)
            if ci == 1 and n_kv_alt and layer is not None and kv_by_layer[layer] == n_kv_alt:
                ci = _KV_ALT
            pad = None
            if ci == 3 and shape and shape[0]:
                rows = shape[0]
                pad = ceil(rows / VOCAB_PAD) * VOCAB_PAD / rows
            if layer is not None and 0 <= layer < n:
                per_layer[layer].append((ci, k, pad))
            elif comp is last_c or (comp is norm_c and layer is None):
                off.append((_LAST, ci, pad, k, False))
            else:
                off.append((_FIRST, ci, pad, k, tie and comp is emb_c))
        gid: dict = {}
        self.group_of = [gid.setdefault(tuple(e), len(gid)) for e in per_layer]
        self.groups = list(gid)
        self.reps = reps
        self.off = off


def loaded_bytes(scheme, t) -> float:
    """Unsharded bytes vLLM holds for tensor ``t`` after loading: the stored bytes plus what it derives and
    keeps beside them (``quant.Scheme.load_copy_bytes``: the model-dtype copy of a quantized MLA
    ``kv_b_proj``); split across ranks by ``t``'s sharding class like the tensor."""
    copy = getattr(scheme, "load_copy_bytes", None)
    return float(scheme.tensor_bytes(t)) + (copy(t) if copy else 0)


def build_weight_table(spec: ModelSpec, scheme, act_bytes: float, plan: TensorPlan | None = None,
                       max_model_len: int | None = None) -> WeightTable:
    """Sum every tensor's unsharded bytes by layer and class (once per model and scheme); ``plan``: the
    spec's ``TensorPlan`` when the caller keeps one across schemes; ``max_model_len``: the length the
    rotary caches are sized for (``rotary_cache_bytes``; None = vLLM's default)."""
    n = spec.num_layers
    n_kv, n_kv_alt = kv_head_counts(spec)
    # a scheme without rules stores every tensor at its model dtype (quant.Scheme.layout_for):
    # skip the per-tensor dispatch, which dominates the per-model precompute
    plain = getattr(scheme, "rules", None) == () and hasattr(scheme, "model_dtype_bytes")
    mdb = float(getattr(scheme, "model_dtype_bytes", 0))
    if plain or _layer_agnostic(scheme):
        # decoder layers repeat: bytes per key once, then per group of alike layers (TensorPlan)
        if plan is None or plan.spec is not spec:
            plan = TensorPlan(spec)
        if plain:
            kb = [t.numel * (t.dtype_bytes or mdb) for t in plan.reps]
        else:
            kb = [loaded_bytes(scheme, t) for t in plan.reps]
        sums = []
        for group in plan.groups:
            a = [0.0] * 6
            for ci, k, pad in group:
                b = kb[k]
                if pad is not None:
                    b *= pad
                a[ci] += b
            sums.append(a)
        acc = [sums[g] for g in plan.group_of] + [[0.0] * 6 for _ in range(3)]
        shared = [ClassBytes(*a) for a in sums]      # alike layers share one ClassBytes
        first, last, tied = n, n + 1, n + 2
        for slot, ci, pad, k, tied_copy in plan.off:
            b = kb[k]
            if pad is not None:
                b *= pad
            if slot == _LAST:
                acc[last][ci] += b
            else:
                acc[first][ci] += b
                if tied_copy:
                    acc[tied][ci] += b
        per_layer = tuple(shared[g] for g in plan.group_of)
    else:
        acc = _tensor_sums(spec, scheme, n, n_kv_alt)
        per_layer = tuple(ClassBytes(*a) for a in acc[:n])
    return _table(spec, scheme, act_bytes, acc, per_layer, n, n_kv, n_kv_alt, max_model_len)


def _tensor_sums(spec: ModelSpec, scheme, n: int, n_kv_alt: int) -> list[list[float]]:
    """Per-tensor sums (a scheme whose ignore list names numbered modules): layers, then first / last / tied."""
    acc = [[0.0] * 6 for _ in range(n + 3)]        # layers, then first / last / tied copy
    kv_by_layer = getattr(spec, "kv_heads_by_layer", ())
    first, last, tied = n, n + 1, n + 2
    has_lm_head = any(t.component is Component.LM_HEAD for t in spec.tensors)
    tie = spec.tie_word_embeddings and not has_lm_head
    for t in spec.tensors:
        b = loaded_bytes(scheme, t)
        ci = _CLASS_INDEX.get(t.shard, 2)
        if ci == 1 and n_kv_alt and t.layer is not None and kv_by_layer[t.layer] == n_kv_alt:
            ci = _KV_ALT
        if ci == 3 and t.shape and t.shape[0]:
            rows = t.shape[0]
            b *= ceil(rows / VOCAB_PAD) * VOCAB_PAD / rows
        if t.layer is not None and 0 <= t.layer < n:
            acc[t.layer][ci] += b
        elif t.component is Component.LM_HEAD or (t.component is Component.NORM and t.layer is None):
            acc[last][ci] += b
        else:
            acc[first][ci] += b
            if tie and t.component is Component.EMBEDDING:
                acc[tied][ci] += b
    return acc


def _table(spec: ModelSpec, scheme, act_bytes: float, acc: list[list[float]], per_layer: tuple, n: int,
           n_kv: int, n_kv_alt: int, max_model_len: int | None = None) -> WeightTable:
    first, last, tied = n, n + 1, n + 2
    run = [0.0] * 6
    prefix = [ZERO]
    for a in acc[:n]:
        run = [x + y for x, y in zip(run, a)]
        prefix.append(ClassBytes(*run))
    experts = ()
    if getattr(scheme, "moe_padding", None) and hasattr(scheme, "expert_rank_bytes"):
        experts = tuple((t.layer, t) for t in spec.tensors
                        if t.shard is Shard.EXPERT and t.layer is not None and 0 <= t.layer < n)
    return WeightTable(per_layer, tuple(prefix), ClassBytes(*acc[first]), ClassBytes(*acc[last]),
                       ClassBytes(*acc[tied]), rotary_cache_bytes(spec, act_bytes, max_model_len), n_kv,
                       spec.num_experts, n_kv_alt, bool(getattr(spec, "pp_every_stage", False)),
                       scheme if experts else None, experts)


@dataclass(frozen=True, slots=True)
class StageWeights:
    stage: int
    layers: tuple[int, int]       # [start, end) decoder layers
    bytes: float                  # on the worst rank of this stage
    ep_rank: int | None           # which EP rank that is (None without EP)


def stage_weights(table: WeightTable, layout: Layout) -> list[StageWeights]:
    """Bytes on the worst rank of every pipeline stage of ``layout``."""
    tp, pp = layout.tp, layout.pp
    if layout.ep and table.num_experts:
        ep_rank = 0   # the first E % ep ranks hold one extra expert
        local = experts_on_rank(table.num_experts, layout.ep_size, 0)
        frac = local / table.num_experts
        moe_tp = 1
    else:
        ep_rank = 0 if layout.ep else None
        local, moe_tp = None, tp * layout.dp
        frac = 1.0 / moe_tp
    padded = table.expert_prefix(moe_tp, local) if table.expert_tensors else None
    if padded is not None:
        frac = 0.0    # experts costed per rank by the scheme (padding), added below
    out = []
    for s, ((a, b), acc) in enumerate(table.stage_sums(pp)):
        extra = (padded[b] - padded[a]) if padded is not None else 0.0
        out.append(StageWeights(s, (a, b), acc.on_rank(tp, table.n_kv, frac, table.n_kv_alt) + extra + table.buffer_bytes,
                                ep_rank))
    return out


# --- the caching allocator's unsplit blocks inside vLLM's load window ------------------------------------------
#
# "Model loading took" is ``torch.cuda.max_memory_allocated`` right after ``reset_peak_memory_stats`` (vllm 0.29.0
# sdist platforms/cuda.py:355-360, the same in 0.11.0 :206-211; diffed around ``load_model`` by
# ``DeviceMemoryProfiler``, utils/mem_utils.py:86-105) -- i.e. ``memory_allocated``, which counts allocator *blocks*
# (c10 CUDACachingAllocator ``alloc_found_block``: ``allocated_bytes.increase(block->size)``), not tensor bytes.
# A request over 1 MiB (``kSmallSize``) of 10 MiB (``kMinLargeAlloc``) or more gets a new segment rounded to 2 MiB
# (``get_allocation_size``: ``kRoundLarge``), and the block is split only when ``size < max_split_size()`` and the
# remainder is over 1 MiB (``should_split``).  So a weight parameter allocated in a new segment holds the whole
# rounded block -- memory nothing else can use while it lives, charged to the KV budget with the weights
# (``model_memory_usage``) -- when (a) the 2 MiB rounding leaves at most 1 MiB, in every release, or (b) the
# request is >= ``max_split_size``: vLLM 0.21.0+ wraps ``load_model`` in
# ``Worker._scoped_allocator_max_split(max_split_size_mb=20)`` (0.29.0 v1/worker/gpu_worker.py:488-495 / :324-345;
# 0.21.0 is the first sdist with it, 0.20.2 has none), so from 0.21 every parameter of >= 20 MiB keeps its whole
# 2 MiB-rounded block.  Requests of 1-10 MiB take a 20 MiB segment and are split: not counted here.
ALLOC_SMALL = 1 << 20            # c10 kSmallSize
ALLOC_MIN_LARGE = 10 << 20       # c10 kMinLargeAlloc
ALLOC_MAX_SPLIT = 20 << 20       # gpu_worker.py: max_split_size_mb=20 ("the minimum PyTorch allows")
ALLOC_ROUND = 2 << 20            # c10 kRoundLarge
ALLOC_MIN_BLOCK = 512            # c10 kMinBlockSize: every request is rounded to 512 B
ALLOC_UNSPLIT_FROM = (0, 21)     # first vLLM release whose load window sets max_split_size_mb

# vLLM's merged linear layers: the checkpoint's q / k / v (gate / up) projections are one parameter
# (QKVParallelLinear / MergedColumnParallelLinear), so one block each
_FUSED_LEAF = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj",
               "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}


def _unsplit_extra(n: np.ndarray, max_split: bool) -> np.ndarray:
    """Bytes the allocator's block holds beyond each parameter of ``n`` bytes (int64) allocated in a new segment:
    ``round_up(bytes, 2 MiB) - bytes`` when the request is >= 10 MiB and either >= 20 MiB with ``max_split``
    (vLLM 0.21+) or the rounding leaves <= 1 MiB (no split); else 0."""
    req = -(-n // ALLOC_MIN_BLOCK) * ALLOC_MIN_BLOCK
    seg = -(-req // ALLOC_ROUND) * ALLOC_ROUND
    keep = (n > 0) & (req >= ALLOC_MIN_LARGE) & (((req >= ALLOC_MAX_SPLIT) & max_split) | (seg - req <= ALLOC_SMALL))
    return np.where(keep, seg - n, 0).astype(np.float64)


def unsplit_block_extra(nbytes: float, max_split: bool = True) -> float:
    """``_unsplit_extra`` of one parameter of ``nbytes``."""
    return float(_unsplit_extra(np.array([int(round(nbytes))], dtype=np.int64), max_split)[0])


def _param_key(t) -> tuple:
    """The vLLM parameter ``t`` lands in: q/k/v and gate/up merged per module (``qkv_proj[q]``-style names are
    parts of one checkpoint tensor: one parameter), every other tensor its own."""
    parts = t.name.split(".")
    if len(parts) >= 2 and t.count == 1:
        leaf = parts[-2].split("[", 1)[0]
        fused = _FUSED_LEAF.get(leaf, leaf if leaf != parts[-2] else None)
        if fused is not None:
            return (t.layer, ".".join(parts[:-2]), fused, parts[-1])
    return (t.layer, t.name)


# Quantized layers: what each holds after ``process_weights_after_loading`` (read in the release sdists; docs/
# decisions.md "Allocator rounding for quantized weights").  Every part below is its own allocation, so the block
# rule applies to each part's request separately -- the packed / fp8 / int8 weight is the only part >= 10 MiB in
# practice.  Final sizes equal the checkpoint parts' (``Scheme.breakdown``) in every read path:
#   * fp8 per-channel / per-tensor (compressed-tensors W8A8Fp8, Fp8LinearMethod on an fp8 checkpoint): the loaded
#     (N, K) fp8 weight is kept and transposed as a view (0.30.0 compressed_tensors_w8a8_fp8.py:148-195,
#     fp8_utils.py:1395-1410; per-tensor requantizes in place, w8a8_utils.py:95-104); online fp8 (bf16
#     checkpoint) replaces the weight with a fresh (N, K) fp8 tensor (0.25.0 online/fp8.py:154-163).
#   * fp8 block-128: ``process_fp8_weight_block_strategy`` returns the same weight on CUDA (0.30.0
#     fp8_utils.py:1413-1447; ``_maybe_pad_fp8_weight`` pads on ROCm only, :1192-1206).
#   * int8 W8A8 (compressed-tensors): the loaded int8 weight, transposed as a view (0.19.0
#     kernels/linear/scaled_mm/cutlass.py:36-45).
#   * AWQ / GPTQ / wNa16 via Marlin: the packed weight is replaced by fresh tensors of the same bytes -- AWQ's
#     standard-order repack ``(K / 8, N)`` int32 then ``gptq_marlin_repack`` ``(K / 16, 2N)`` (0.29.0
#     auto_awq.py:93-168, kernels/linear/mixed_precision/marlin.py:127-140, _custom_ops.py:1167-1181): K x N / 2
#     bytes at 4 bits; scales permuted (G, N) at the model dtype (marlin.py:142-172), zero points re-packed
#     (:188-213) -- under 10 MiB.
#   * NVFP4 (ModelOpt / compressed-tensors) linear: (N, K / 2) uint8 kept or padded to 32 rows / columns
#     (0.20.2 kernels/linear/nvfp4/cutlass.py:36-44: nil for usual dims); block scales swizzled (small).
#   * the MLA ``kv_b_proj`` dequantized model-dtype copy (``Scheme.load_copy_bytes``): a fresh (out, in) tensor.
#   * MXFP4 / NVFP4 routed experts only under the "none" MoE backend (DeepSeek-V4's DeepGemmFP4Experts runs the
#     loaded (E, N, K / 2) weights as they are, layouts.mxfp4_moe_backend).
# Not priced (no part): bitsandbytes layouts; fp4 routed experts under any other MoE backend, or none known (the
# GPU not given: vLLM converts them with whichever it picks), and any routed experts under a ``moe_padding``
# backend: their final per-rank shapes are not the checkpoint's split (swizzled scales, padded rows), and the
# layout-independent columns here cannot hold them.
_PRICED_LAYOUTS = (Fp8, Int8, IntGroup, Nvfp4, Mxfp4)


def quantized_final_parts(scheme, t, mdb: float) -> dict[str, float]:
    """Unsharded bytes (all ``count`` copies) of each final vLLM parameter tensor ``t`` becomes under
    ``scheme``, by part name ("weight", "scale", ...); {} when not priced (above)."""
    layout = scheme.layout_for(t)
    if isinstance(layout, Plain):
        return {"weight": t.numel * (t.dtype_bytes or mdb)}
    if not isinstance(layout, _PRICED_LAYOUTS):
        return {}
    if t.component is Component.ROUTED_EXPERTS:
        backend = getattr(scheme, "moe_padding", None)
        if isinstance(layout, (Nvfp4, Mxfp4)) or backend is not None:
            # fp4 experts: the MoE backend vLLM picks on the GPU re-tiles them (no backend known: still converted)
            if getattr(backend, "name", None) != "none":
                return {}
    parts = {k: float(v) for k, v in scheme.breakdown(t).items()}
    copy = scheme.load_copy_bytes(t)
    if copy:
        parts["dequant_copy"] = float(copy)
    return parts


class AllocatorPlan:
    """The layout-independent half of ``allocator_unsplit_bytes`` for one spec at one element size: every vLLM
    parameter (``_param_key``: q/k/v and gate/up merged) as its unsharded bytes per sharding class, its place (a
    decoder layer, the first / last stage) and whether it is the tied embedding.  ``extra`` then prices a layout with
    numpy over the parameters -- a Python pass over every tensor per layout cost the estimator benchmark half its
    speed (DeepSeek-V3: ~1,000 parameters x 48 layouts x every model)."""

    __slots__ = ("n_layers", "every", "cols", "slot", "tied", "n_kv", "n_kv_alt", "n_experts", "memo", "mdb",
                 "t_param", "t_cls", "t_pad", "spec")

    # columns of ``cols``: bytes divided by tp (COLUMN / ROW / padded VOCAB), K/V main, K/V alternate, experts, whole
    _TP, _KV, _KV_ALT, _EXP, _REP = range(5)

    def __init__(self, spec: ModelSpec, mdb: float):
        self.spec = spec
        self.mdb = mdb
        self.n_layers = spec.num_layers
        self.every = bool(getattr(spec, "pp_every_stage", False))
        self.n_kv, self.n_kv_alt = kv_head_counts(spec)
        self.n_experts = spec.num_experts
        kv_by_layer = getattr(spec, "kv_heads_by_layer", ())
        tie = spec.tie_word_embeddings and not any(t.component is Component.LM_HEAD for t in spec.tensors)
        index: dict = {}
        cols: list[list[float]] = []
        slot: list[int] = []
        tied: list[bool] = []
        # per tensor (for ``quantized``): its parameter row, sharding column and vocabulary padding
        t_param: list[int] = []
        t_cls: list[int] = []
        t_pad: list[float] = []
        for t in spec.tensors:
            b = t.numel * (t.dtype_bytes or mdb)
            sh = t.shard
            pad = 1.0
            if sh is Shard.VOCAB:
                rows = t.shape[0] if t.shape else 0
                if rows:
                    pad = ceil(rows / VOCAB_PAD) * VOCAB_PAD / rows
                    b = b * ceil(rows / VOCAB_PAD) * VOCAB_PAD / rows     # (the load29 expression, to the bit)
                c = self._TP
            elif sh in (Shard.COLUMN, Shard.ROW):
                c = self._TP
            elif sh is Shard.KV:
                alt = self.n_kv_alt and t.layer is not None and kv_by_layer[t.layer] == self.n_kv_alt
                c = self._KV_ALT if alt else self._KV
            elif sh is Shard.EXPERT:
                c = self._EXP
            else:
                c = self._REP
            k = _param_key(t)
            i = index.get(k)
            if i is None:
                i = index[k] = len(cols)
                cols.append([0.0] * 5)
                if t.layer is not None and 0 <= t.layer < spec.num_layers:
                    slot.append(t.layer)
                elif t.component is Component.LM_HEAD or (t.component is Component.NORM and t.layer is None):
                    slot.append(_LAST)
                else:
                    slot.append(_FIRST)
                tied.append(tie and t.component is Component.EMBEDDING)
            cols[i][c] += b
            t_param.append(i)
            t_cls.append(c)
            t_pad.append(pad)
        self.cols = np.array(cols, dtype=np.float64).reshape(-1, 5)
        self.slot = np.array(slot, dtype=np.int64)
        self.tied = np.array(tied, dtype=bool)
        self.t_param = np.array(t_param, dtype=np.int64)
        self.t_cls = np.array(t_cls, dtype=np.int64)
        self.t_pad = np.array(t_pad, dtype=np.float64)
        self.memo: dict = {}

    def quantized(self, scheme) -> "AllocatorPlan":
        """The plan of ``scheme`` (a quantized ``quant.Scheme`` of this plan's spec and model dtype): every final
        parameter a quantized layer holds after ``process_weights_after_loading`` (``quantized_final_parts``:
        packed weight, scales, zero points, g_idx and the MLA dequantized copy, each its own allocation) in the
        place, sharding class and vLLM module of its tensor; unquantized tensors as in this plan.  Vectorised per
        part name over the tensors (a scheme whose rules / ignore list cannot single out a layer prices each
        distinct tensor key once)."""
        tensors = self.spec.tensors
        # header bytes are per tensor name: a HeaderScheme is priced tensor by tensor
        if _layer_agnostic(scheme) and not hasattr(scheme, "parts_by_name"):
            kid: dict = {}
            reps: list = []
            ids: list[int] = []
            for t in tensors:
                k = _tensor_key(t)
                j = kid.get(k)
                if j is None:
                    j = kid[k] = len(reps)
                    reps.append(t)
                ids.append(j)
            t_key = np.array(ids, dtype=np.int64)
            per = [quantized_final_parts(scheme, t, self.mdb) for t in reps]
        else:
            t_key = np.arange(len(tensors), dtype=np.int64)
            per = [quantized_final_parts(scheme, t, self.mdb) for t in tensors]
        names = sorted({n for d in per for n in d})
        n_params = len(self.slot)
        cols, slot, tied = [], [], []
        for name in names:
            b = np.array([d.get(name, 0.0) for d in per], dtype=np.float64)[t_key]
            m = np.zeros((n_params, 5), dtype=np.float64)
            np.add.at(m, (self.t_param, self.t_cls), b * self.t_pad)
            keep = m.any(axis=1)
            cols.append(m[keep])
            slot.append(self.slot[keep])
            tied.append(self.tied[keep])
        q = object.__new__(AllocatorPlan)
        for a in ("n_layers", "every", "n_kv", "n_kv_alt", "n_experts", "mdb", "spec"):
            setattr(q, a, getattr(self, a))
        q.cols = np.concatenate(cols) if cols else np.zeros((0, 5))
        q.slot = np.concatenate(slot) if slot else np.zeros(0, dtype=np.int64)
        q.tied = np.concatenate(tied) if tied else np.zeros(0, dtype=bool)
        q.t_param = q.t_cls = q.t_pad = None
        q.memo = {}
        return q

    def extra(self, layout: Layout, max_split: bool) -> list[float]:
        """Per pipeline stage, the worst rank's unsplit-block bytes (``unsplit_block_extra`` over its parameters)."""
        key = (layout.tp, layout.pp, layout.dp, bool(layout.ep), max_split)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        tp, pp = layout.tp, layout.pp
        if layout.ep and self.n_experts:
            frac = experts_on_rank(self.n_experts, layout.ep_size, 0) / self.n_experts
        else:
            frac = 1.0 / (tp * layout.dp)
        w = np.array([1.0 / tp, _kv_frac(self.n_kv, tp), _kv_frac(self.n_kv_alt, tp) if self.n_kv_alt else 0.0,
                      frac, 1.0])
        ext = _unsplit_extra(np.rint(self.cols @ w).astype(np.int64), max_split)
        first = self.slot == _FIRST
        last = self.slot == _LAST
        out = []
        for s, (a, z) in enumerate(pp_partition(self.n_layers, pp)):
            here = (self.slot >= a) & (self.slot < z)
            if self.every or s == 0:
                here |= first
            elif s == pp - 1:
                here |= first & self.tied     # a tied head on the last stage: a copy
            if self.every or s == pp - 1:
                here |= last
            out.append(float(ext[here].sum()))
        self.memo[key] = out
        return out


def scheme_rules(scheme):
    """``scheme.rules`` -- a ``quant.HeaderScheme`` (bytes from the checkpoint's safetensors headers) has none of
    its own: its ``base`` scheme's; None for anything else (not priced)."""
    rules = getattr(scheme, "rules", None)
    if rules is None and hasattr(scheme, "parts_by_name"):
        rules = getattr(getattr(scheme, "base", None), "rules", None)
    return rules


def allocator_unsplit_bytes(spec: ModelSpec, scheme, layout: Layout, version: tuple | None,
                            plan: AllocatorPlan | None = None, expandable_segments: bool = False) -> list[float]:
    """Per pipeline stage, the worst rank's ``unsplit_block_extra`` summed over its parameters (``version``: the
    vLLM release, which decides ``max_split``; None = before 0.21); ``plan``: the ``AllocatorPlan`` of ``spec``
    under ``scheme`` kept across layouts (built here when None: the model-dtype plan, ``.quantized(scheme)`` for
    a quantized scheme).

    A scheme that stores every tensor at one element size (``rules == ()``) has the tensors as its parameters; a
    quantized one has each quantized layer's final parts (``quantized_final_parts``: the packed / fp8 / int8
    weight, scales, zero points as separate allocations, e.g. AWQ's Marlin repack), priced by the same rule.

    ``expandable_segments``: ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True`` -- c10's ``should_split`` then
    splits every large block down to ``kMinBlockSize`` (``if (block->pool->is_small ||
    CachingAllocatorConfig::expandable_segments()) return remaining >= kMinBlockSize;``): no rounded block is
    kept whole, whatever vLLM's ``max_split_size_mb`` scope says (row 170's command sets it)."""
    max_split = version is not None and tuple(version)[:2] >= ALLOC_UNSPLIT_FROM
    rules = scheme_rules(scheme)
    if expandable_segments or rules is None or not hasattr(scheme, "model_dtype_bytes"):
        return [0.0] * layout.pp
    if plan is None:
        plan = AllocatorPlan(spec, float(scheme.model_dtype_bytes))
        if rules != ():
            plan = plan.quantized(scheme)
    return plan.extra(layout, max_split)
