"""The fit matrix: models x GPUs x layouts x dtypes x contexts x concurrency x utilization.

Why this shape: per-model facts (stage weights, KV groups, overhead
coefficients) are computed once per layout in Python (``estimate.tables``);
everything per cell is a polars expression (``estimate.exprs``), each term
computed at the narrowest level it depends on, and no Python runs per cell:
(layout x GPU) and x utilization are evaluated first (small frames; the
terms that read no per-GPU column other than the scheduler limits once per
(layout, GPU class): ``_GpuClasses``); the per-length terms run on those rows once per context length (a constant, so
nothing is copied; the DeepSeek-V4 / encoder per-length terms only on the rows they change, ``_special_rows``); then one eager gather copies the output columns into the
cells (a column with one value in the chunk is repeated instead), beside the
per-length terms gathered into the same order, and only the few per-target
terms run per cell (one integer index picks status and reason).  Every cross
join keeps job order (``maintain_order``: polars 2.1's streaming engine does
not by default); the gathers build job order by construction.  A row of an
MXFP4 checkpoint whose GPUs pick different MXFP4 MoE backends has one layout
row per backend, and each GPU gets its own (``layout_table``'s ``pick``: a
filtered cross, the same order).

Entry points:

- ``evaluate_matrix`` -> DataFrame in ``reportgen.results`` order and types;
- ``iter_cell_batches`` -> the same rows, in the same order and to the bit, as
  successive DataFrames of <= 262,144 cells (by default), each evaluated from the
  (layout, GPU, util) rows and the small axes: the whole matrix never exists and
  each batch reuses the pages the previous one freed (cheaper than faulting in a
  2.8 GB frame: docs/decisions.md "Estimator speed").  Streamed jobs write their
  Parquet parts from it (``run._write_streamed``);
- ``iter_matrix_batches`` -> one DataFrame per chunk of models (then GPUs) of
  <= ``batch_cells`` cells (a GPU split changes the row order; kept for callers);
- ``evaluate_matrix_lazy`` -> a LazyFrame (a vertical concat of batches); note
  that polars 2.1's streaming sink does not bound memory across these cross
  joins (6.5 M cells peaked at 2.8 GB), so prefer the batches for huge jobs.

``estimate_one`` is the one-model ``reportgen estimate`` path: a 1-cell matrix
through exactly the same code.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import polars as pl

from reportgen import ahead
from reportgen.arch.spec import ModelSpec
from reportgen.estimate import exprs as ex
from reportgen.estimate import overheads as oh
from reportgen.estimate.compressed import PER_GROUP_CONCURRENCY_FROM
from reportgen.estimate.encoder import batched_tokens_floor, unchunked_item, unchunked_items
from reportgen.estimate.hybrid import is_attention_free, state_cache_mode
from reportgen.estimate.overheads import comm_terms
from reportgen.estimate.layout import Layout
from reportgen.estimate.profiles import (OVERRIDE_CAPTURE, REFERENCE_CAPTURE_SIZES, VllmProfile, capture_sizes,
                                         parse_version, profile_for)
from reportgen.estimate.served import spec_for_version
from reportgen.estimate.specdecode import parse_speculative_config
from reportgen.estimate.weights import rotary_cache_bytes
from reportgen.estimate.tables import (BODY_FIELDS, COEFF_FIELDS, GIB, GROUP_FIELDS, HEAD_FIELDS, SLOT_FIELDS,
                                       EngineOptions, ModelTables, flashmla_q_concat_on, spec_axes)
from reportgen.job import Matrix, extensible_kv_cache, resolved_utilizations


@dataclass
class ModelEntry:
    """One model row of the job: its id, revision, where the config came from, and its spec."""

    model: str
    spec: ModelSpec
    revision: str | None = None
    config_source: str | None = None
    # the model's own KV dtype axis (a job ``models`` table entry, ``job.ModelRef.kv_cache_dtype``): replaces
    # ``Matrix.kv_cache_dtype`` for this model's rows; None = the matrix's axis
    kv_cache_dtype: tuple[str, ...] | None = None
    # "safetensors" when spec.checkpoint_tensors holds the checkpoint's header listing
    # (`--weights checkpoint`): as-shipped cells are then costed at true stored bytes

    @property
    def weights_from_headers(self) -> bool:
        return bool(getattr(self.spec, "checkpoint_tensors", None))


@dataclass(frozen=True)
class GpuLike:
    """The GPU fields the matrix needs (a catalog ``GpuSku`` has them all)."""

    id: str
    name: str
    usable_memory_gib: float
    gpus_per_node: int = 8
    price_usd_hr: float | None = None
    interconnect: str = ""      # catalog ``interconnect`` ("" = not known: the fitted NVSwitch terms)
    # CUDA compute capability (major, minor), catalog ``compute_capability``: picks vLLM's MXFP4 MoE backend
    # and so an MXFP4 checkpoint's expert layout (``mxfp4_gpus``); None = not known: the H100 (Triton) layout
    compute_capability: tuple[int, int] | None = None


_SLOT_DTYPES = {"w": pl.Float64, "bpb": pl.Float64, "g": pl.Float64, "last": pl.Boolean,
                "label": pl.String, "tokb": pl.Float64, "stb": pl.Float64, "wsr": pl.Int64}
_ROW_DTYPES = {"tp": pl.Int32, "pp": pl.Int32, "dp": pl.Int32, "ep": pl.Boolean,
               "weights_as": pl.String, "kv_cache_dtype": pl.String,
               "pre_status": pl.String, "pre_reason": pl.String,
               "weight_scheme": pl.String, "kv_cache_dtype_used": pl.String, "kv_note": pl.String,
               "nt": pl.Float64, "ctx": pl.Float64, "nt_nvls": pl.Float64, "ca": pl.Float64, "g_max": pl.Float64, "g_big": pl.Float64, "g_bf": pl.Float64,
               "gdn_t": pl.Float64,
               **{f: pl.Float64 for f in COEFF_FIELDS}, **{f: pl.Int64 for f in GROUP_FIELDS},
               "spec_decode": pl.String, "draft_w": pl.Float64}
assert tuple(_ROW_DTYPES) == HEAD_FIELDS + BODY_FIELDS
_MODEL_DTYPES = {"_m": pl.Int32, "model": pl.String, "revision": pl.String, "config_source": pl.String,
                 "headers": pl.Boolean,
                 "model_type": pl.String, "params_total": pl.Int64, "params_active": pl.Int64,
                 "max_pos": pl.Int64, "mm_t_floor": pl.Int64,
                 "mm_unchunked": pl.Int64, "mm_items": pl.String}


def _layouts(m: Matrix) -> list[Layout]:
    return [Layout(tp, pp, dp, ep) for tp in m.tp for pp in m.pp for dp in m.dp for ep in m.ep]


def kv_axis(e: ModelEntry, matrix: Matrix) -> list[str]:
    """The KV dtypes one model is evaluated at: its own axis (job ``models`` table entry) or the matrix's."""
    return list(getattr(e, "kv_cache_dtype", None) or matrix.kv_cache_dtype)


def cells_per_model_gpu(e: ModelEntry, matrix: Matrix) -> int:
    """Cells of one model on one GPU (``Matrix.n_cells_per_model_gpu`` with the model's own KV axis)."""
    return matrix.n_cells_per_model_gpu(getattr(e, "kv_cache_dtype", None))


def matrix_profile(matrix: Matrix) -> tuple[VllmProfile, str]:
    """The vLLM version profile of a job (``profiles.profile_for``) and its note."""
    return profile_for(matrix.vllm_version)


def kv_block_size(matrix: Matrix, profile: VllmProfile | None = None) -> int:
    """The job's ``--block-size``, or its release's ``CacheConfig.DEFAULT_BLOCK_SIZE`` (16; 64 from 0.34) --
    which the backends may still raise (kvcache.auto_block_size, hybrids: hybrid.hybrid_block_size)."""
    if matrix.block_size:
        return matrix.block_size
    return (profile or matrix_profile(matrix)[0]).default_block_size


def mxfp4_gpus(gpus: Iterable[Any], matrix: Matrix) -> list[tuple]:
    """Per GPU, what picks vLLM's MXFP4 MoE backend on it: (compute capability, vLLM (major, minor))
    (``tables.mxfp4_backend_for``).  A capability of None -- a GPU given by its memory only, AMD, TPU, a user
    catalog row without the column -- gets the H100 (Triton) layout, the reference logs' GPU."""
    version = parse_version(matrix.vllm_version)
    return [(getattr(g, "compute_capability", None), version) for g in gpus]


def layout_table(models: list[ModelEntry], matrix: Matrix, gpus: list[tuple] | None = None
                 ) -> tuple[pl.DataFrame, pl.DataFrame, int, np.ndarray | None]:
    """Per-(model, layout, dtype, kv dtype) rows with flattened stage slots; returns (layouts, models, K, pick).

    ``gpus``: ``mxfp4_gpus`` of the chunk's GPUs (None: one GPU of unknown capability).  A row whose weights
    hold MXFP4 experts as shipped (gpt-oss, DeepSeek-V4) is priced in each GPU's MXFP4 MoE backend layout:
    when the GPUs' backends differ, the row has one table row per backend, consecutive, and ``pick[r, g]``
    is the table row of logical row ``r`` on GPU ``g``; ``pick`` is None when no row has more than one
    (every other model, and any job whose GPUs share a backend): then logical row = table row."""
    profile, _ = matrix_profile(matrix)
    heads: list[tuple] = []
    mrows: list[dict] = []
    parts: list[tuple] = []        # distinct (err, body, slots, n) objects, first-seen order
    part_ix: dict[int, int] = {}   # id(part) -> index in parts (parts keeps them alive: ids stay unique)
    idx: list[int] = []
    gpus = gpus if gpus else [(None, parse_version(matrix.vllm_version))]
    # logical rows with more than one table row -> (extra table rows, per GPU the offset of its table row)
    split: dict[int, tuple[int, list[int]]] = {}
    n_extra = 0
    layouts = _layouts(matrix)
    engine = EngineOptions.from_matrix(matrix)
    prefix_caching = getattr(matrix, "enable_prefix_caching", None)
    for mi, e in enumerate(models):
        spec = spec_for_version(e.spec, matrix.vllm_version)     # architectures vLLM has since removed
        state_mode = state_cache_mode(matrix.vllm_version, prefix_caching, is_attention_free(spec))
        mt = ModelTables(spec, kv_block_size(matrix, profile), engine, profile, state_mode)
        # per weights_as: the distinct MXFP4 variants over the GPUs (first-seen order) and each GPU's index
        variants = {wd: mt.mxfp4_variants(wd, gpus) for wd in matrix.weights_as}
        mrows.append({"_m": mi, "model": e.model, "revision": e.revision, "config_source": e.config_source,
                      "headers": e.weights_from_headers, **spec_axes(spec),
                      "mm_t_floor": batched_tokens_floor(spec, matrix.vllm_version, matrix.max_num_batched_tokens),
                      # a prefix LM's item above max_num_batched_tokens: vLLM refuses the start (ex.gpu_pass)
                      "mm_unchunked": unchunked_item(spec, matrix.vllm_version),
                      "mm_items": unchunked_items(spec, matrix.vllm_version)})
        kds = kv_axis(e, matrix)
        for lay in layouts:
            for wd in matrix.weights_as:
                distinct, of_gpu = variants[wd]
                for kd in kds:
                    if of_gpu is None:          # one variant on every GPU (all but MXFP4 rows of a mixed job)
                        rows = (mt.row_parts(lay, wd, kd, distinct[0]),)
                    else:
                        rows = [mt.row_parts(lay, wd, kd, v) for v in distinct]
                        if len({id(r[2]) for r in rows}) > 1:      # the backends' bodies differ: a row each
                            split[len(heads) - n_extra] = (len(rows) - 1, of_gpu)
                            n_extra += len(rows) - 1
                        else:
                            rows = rows[:1]
                    for status, reason, part in rows:
                        heads.append((mi, lay.tp, lay.pp, lay.dp, lay.ep, wd, kd, status, reason))
                        j = part_ix.get(id(part))
                        if j is None:
                            j = part_ix[id(part)] = len(parts)
                            parts.append(part)
                        idx.append(j)
    pick = None
    if split:
        # logical row r starts at table row r + the extra rows of the split rows before it
        n_logical = len(heads) - n_extra
        more = np.zeros(n_logical, dtype=np.int64)
        for r, (n_more, _) in split.items():
            more[r] = n_more
        start = np.arange(n_logical, dtype=np.int64) + np.cumsum(more) - more
        pick = np.repeat(start[:, None], len(gpus), axis=1)
        for r, (_, off) in split.items():
            pick[r] += np.asarray(off, dtype=np.int64)
    k = max((p[3] for p in parts), default=1) or 1
    width = k * len(SLOT_FIELDS)
    schema = {"_m": pl.Int32, **_ROW_DTYPES}
    for i in range(k):
        schema.update({f"{f}{i}": _SLOT_DTYPES[f] for f in SLOT_FIELDS})
    # built column by column: the per-row head columns, and each distinct body + slots once, gathered
    # per row (polars' row-wise constructor over every row is ~3x slower)
    names = list(schema)
    n_head = 1 + len(HEAD_FIELDS)
    hcols = list(zip(*heads)) if heads else [()] * n_head
    bcols = list(zip(*(p[1] + p[2] + (None,) * (width - len(p[2])) for p in parts))) if parts \
        else [()] * (len(names) - n_head)
    body = pl.DataFrame([pl.Series(nm, col, dtype=schema[nm]) for nm, col in zip(names[n_head:], bcols)])
    lt = pl.concat([pl.DataFrame([pl.Series(nm, col, dtype=schema[nm]) for nm, col in zip(names, hcols)]),
                    body[pl.Series(idx, dtype=pl.UInt32)]], how="horizontal")
    mt_df = pl.DataFrame(mrows, schema=_MODEL_DTYPES) if mrows else pl.DataFrame(schema=_MODEL_DTYPES)
    return lt, mt_df, k, pick


def gpu_table(gpus: Iterable[Any], matrix: Matrix) -> pl.DataFrame:
    """One row per GPU with the scheduler limits vLLM would pick on it (unless the job sets them)."""
    rows = []
    profile, _ = matrix_profile(matrix)
    eager = bool(getattr(matrix, "enforce_eager", False))   # --enforce-eager: no graphs (flags branch)
    # --speculative-config: capture sizes rounded to multiples of 1 + num_speculative_tokens (specdecode.py;
    # an MTP draft left at vLLM's default n_predict is 1 token: other defaults are refused per model)
    sd = parse_speculative_config(getattr(matrix, "speculative_config", None))
    k_spec = (sd.num_speculative_tokens or 1) if sd is not None else 0
    version = parse_version(matrix.vllm_version) or tuple(profile.first)
    for g in gpus:
        mem = float(g.usable_memory_gib)
        # catalog interconnect: NVLS-fitted TP-group non-torch or not; custom all-reduce above TP 2 or not
        nvls, nvl_group = comm_terms(getattr(g, "interconnect", "") or "")
        large = getattr(g, "large_gpu", mem >= 70)
        t_def, s_def = oh.default_scheduler_limits(mem, large, version)   # 16384 on >= 160 GiB from 0.28
        t, s = int(matrix.max_num_batched_tokens or t_def), int(matrix.max_num_seqs or s_def)
        n_graphs = capture_sizes(profile, s, t, eager, num_spec=k_spec)
        n_big = capture_sizes(profile, s, t, eager, max_capture=OVERRIDE_CAPTURE,   # gpt-oss's own maximum
                              num_spec=k_spec)
        rows.append({
            "gpu": g.id, "gpu_name": g.name, "gpu_memory_gib": mem,
            "gpus_per_node": int(matrix.gpus_per_node or getattr(g, "gpus_per_node", 8) or 8),
            "price_gpu_hr": getattr(g, "price_usd_hr", None),
            "max_num_batched_tokens": t,
            "max_num_seqs": s,
            "g_n": n_graphs / REFERENCE_CAPTURE_SIZES, "g_on": 1.0 if n_graphs else 0.0,
            "g_n_big": n_big / REFERENCE_CAPTURE_SIZES,
            "nt_fit": 1.0 if nvls else 0.0, "nvl_group": nvl_group,
            # vLLM 0.34+'s extensible KV cache margin floor: 3 GiB on ROCm (AMD), 1 GiB on CUDA (exprs.util_pass)
            "ext_floor": oh.extensible_margin_floor_gib(getattr(g, "vendor", "")),
        })
        rows[-1]["fmq_on"], rows[-1]["fmq_min_h"], rows[-1]["fmq_pad"] = flashmla_q_concat_on(
            getattr(g, "compute_capability", None), version)
    return pl.DataFrame(rows, schema={"gpu": pl.String, "gpu_name": pl.String, "gpu_memory_gib": pl.Float64,
                                      "gpus_per_node": pl.Int32, "price_gpu_hr": pl.Float64,
                                      "max_num_batched_tokens": pl.Int64, "max_num_seqs": pl.Int64,
                                      "g_n": pl.Float64, "g_on": pl.Float64, "g_n_big": pl.Float64,
                                      "nt_fit": pl.Float64, "nvl_group": pl.Int64, "fmq_on": pl.Float64,
                                      "fmq_min_h": pl.Int64, "fmq_pad": pl.Int64, "ext_floor": pl.Float64})


@dataclass
class _Rows:
    """One chunk of models x GPUs evaluated up to the cells: the (layout, GPU, util) rows ``u``, their
    per-length terms ``per_len`` (row ``length * n_u + u``), the verdict codes and reason table, and
    the small axes the cells cross them with (``lc``: max_model_len x concurrency, in job order)."""

    u: pl.DataFrame
    per_len: pl.DataFrame
    codes: list
    reasons: tuple[pl.Series, pl.Series]   # (status, reason) by the cells' ``_rid`` (``ex.reason_table``)
    lc: pl.DataFrame
    n_len: int
    n_conc: int
    vllm_version: str
    stage0: list[str]
    carry: list[str]           # the columns copied from ``u`` into every cell
    const: dict[str, pl.Series]   # the carried columns with one value in all of ``u``: that value
    cu: pl.DataFrame              # the other carried columns of ``u``, in one chunk

    @property
    def n_cells(self) -> int:
        return self.u.height * self.n_len * self.n_conc


# GPU columns that differ between GPUs of one scheduler class (memory, price, node size, name, the extensible
# cache's margin floor -- read only by the utilization pass): terms that read none of them are the same for every
# GPU of a class
_PER_GPU = ("gpu", "gpu_name", "gpu_memory_gib", "gpus_per_node", "price_gpu_hr", "ext_floor")


def _raise_batched(df):
    """A GPU's default max_num_batched_tokens raised to the model's ``mm_t_floor`` (a multimodal prefix LM's largest
    item, ``encoder.batched_tokens_floor``; 0 = none): per (layout row, GPU), as vLLM raises it per start."""
    if "mm_t_floor" not in df.collect_schema().names():
        return df
    return df.with_columns(pl.max_horizontal("max_num_batched_tokens", pl.col("mm_t_floor").fill_null(0))
                           .alias("max_num_batched_tokens"))


class _GpuClasses:
    """The (layout row x GPU) rows ``lt x gt`` of a chunk, and its narrower twin: ``lt x`` the distinct
    GPU *classes* (the GPU columns other than ``_PER_GPU``: scheduler limits and graph-capture scaling,
    2 distinct values over the benchmark's 25 GPUs).  A term that reads no ``_PER_GPU`` column (the
    per-slot activation / graph / fixed memory, blocks per request) is evaluated once per
    (layout row, class) and gathered into the rows: the same inputs through the same arithmetic, so the
    same bits, for a gather instead of the ~20 operations each term costs per row.

    ``pick`` (``layout_table``): the table row of each (logical row, GPU) when an MXFP4 row has one table
    row per backend; the rows are then the logical rows x GPUs, each GPU with its own backend's table row
    (the filtered cross), in the same order; ``small`` keeps every table row x class."""

    def __init__(self, lt: pl.DataFrame, gt: pl.DataFrame, pick: np.ndarray | None = None):
        self.lt, self.gt, self.pick = lt, gt, pick
        keys = [c for c in gt.columns if c not in _PER_GPU]
        seen: dict = {}
        # repr: -0.0 and 0.0 (equal as keys) stay apart, so a class's values are every member's bits
        self.of_gpu = np.array([seen.setdefault(tuple(map(repr, r)), i) for i, r in
                                enumerate(gt.select(keys).iter_rows())], dtype=np.int64)
        firsts = sorted(set(seen.values()))
        self.cls_of_gpu = np.searchsorted(firsts, self.of_gpu)
        self.classes = gt.select(keys)[firsts] if gt.height else gt.select(keys)
        n_cls = max(self.classes.height, 1)
        # row (i, g) of lt x gt -> row (i, class of g) of lt x classes (i: the table row picked for g)
        rows = np.arange(lt.height, dtype=np.int64)[:, None] if pick is None else pick
        self.take = (rows * n_cls + self.cls_of_gpu[None, :]).ravel()

    def small(self) -> pl.LazyFrame:
        return _raise_batched(self.lt.lazy().join(self.classes.lazy(), how="cross", maintain_order="left_right"))

    def narrow(self, e: pl.Expr, extra: tuple[str, ...] = ()) -> bool:
        """``e`` reads only the layout row, the GPU class (and ``extra`` columns), and there are fewer
        classes than GPUs."""
        return (self.classes.height < self.gt.height
                and set(e.meta.root_names()) <= set(self.lt.columns) | set(self.classes.columns) | set(extra))

    def cross(self, cols: list[pl.Expr]) -> pl.DataFrame:
        """``lt x gt`` with ``cols`` (independent columns), as ``.with_columns(cols)`` gives it."""
        if self.pick is None:
            a = self.lt.join(self.gt, how="cross", maintain_order="left_right")
        else:       # the filtered cross: each GPU with its backend's table row
            n_r, n_g = self.pick.shape
            a = pl.concat([self.lt[pl.Series(self.pick.ravel(), dtype=pl.UInt32)],
                           self.gt[pl.Series(np.tile(np.arange(n_g, dtype=np.uint32), n_r), dtype=pl.UInt32)]],
                          how="horizontal")
        a = _raise_batched(a)
        narrow = [e for e in cols if self.narrow(e)]
        if not narrow or not a.height:
            return a.with_columns(cols)
        # with_columns' order: a replaced column keeps its place, new ones follow in ``cols`` order
        order = list(dict.fromkeys(a.columns + [e.meta.output_name() for e in cols]))
        small = self.small().select(narrow).collect()       # from the input columns, as with_columns
        a = a.with_columns([e for e in cols if not self.narrow(e)]).drop(small.columns, strict=False)
        return a.hstack(small[pl.Series(self.take, dtype=pl.UInt32)]).select(order)


def _prepare(models: list[ModelEntry], gpus: list[Any], matrix: Matrix, stage0_columns: bool) -> _Rows:
    """Everything before the cells for one chunk of models x GPUs (see the module docstring)."""
    lt, mt, k, pick = layout_table(models, matrix, mxfp4_gpus(gpus, matrix))
    gt = gpu_table(gpus, matrix)
    kv_fixed = (matrix.kv_cache_memory_bytes / GIB) if getattr(matrix, "kv_cache_memory_bytes", None) else None
    # the worst slot's figures are gathered by slot index (below), not picked by a when-chain per row
    gathered = k > 1
    extensible = extensible_kv_cache(matrix)
    batches = ex.util_pass(k, kv_fixed, gathered, extensible)
    util = pl.DataFrame({"gpu_memory_utilization": pl.Series(resolved_utilizations(matrix), dtype=pl.Float64)})
    lens = pl.DataFrame({"max_model_len": pl.Series(matrix.max_model_len, dtype=pl.Int64)})
    conc = pl.DataFrame({"concurrency": pl.Series(matrix.concurrency, dtype=pl.Int64)})
    # true checkpoint bytes only where the costed scheme is the header scheme (as shipped, no online
    # --quantization, no --dtype cast of an unquantized checkpoint)
    lt = lt.join(mt, on="_m", how="left").with_columns(
        pl.when(pl.col("headers") & pl.col("weight_scheme").str.ends_with("+headers").fill_null(False))
        .then(pl.lit("safetensors")).otherwise(pl.lit("config")).alias("weights_source"))
    # (layout x GPU) is small: evaluate it now, so the few distinct (status, reason) pairs of
    # invalid / unsupported rows become integer codes and no string is carried per cell
    cols, reasons = ex.gpu_pass(k, matrix.max_nodes, matrix.allow_cross_node_tp, extensible)
    gc = _GpuClasses(lt, gt, pick)
    a = gc.cross(cols)
    codes, pcode = _pre_codes(a, *reasons)
    a = a.drop("pre_status", "pre_reason").rename({"_status": "pre_status"}).with_columns(pcode)
    # vLLM refuses a max_model_len above the model's derived maximum (``max_pos``, arch/rope.py):
    # those cells are invalid_layout, and max_model_len_fit is capped at it -- unless
    # VLLM_ALLOW_LONG_MAX_MODEL_LEN lifts the check
    if allow_long_max_model_len(matrix):
        a = a.with_columns(pl.lit(None, pl.Int64).alias("max_pos"))
        lcodes, ltable = [], None
    else:
        lcodes, ltable = ex.length_codes(mt["max_pos"].drop_nulls().unique().to_list(),
                                         list(matrix.max_model_len), len(codes))
    codes = codes + lcodes
    # x utilization: the budget pass, evaluated now (470 k rows for 7.5 M cells) -- its row strings
    # (reasons that carry a number) go into one reason table the cells index (``ex.reason_ids``)
    stage0 = ["w0", "act0", "av0"] if stage0_columns else []
    # DeepSeek-V4 rows (kvcache.KvGroups.tok_conc): their KV blocks, tokens and fit depend on max_model_len
    # (exprs.compressed_lens); a chunk without them keeps the per-row figures
    dsv4 = bool(lt["tok_conc"].fill_null(0).max() or 0) if lt.height else False
    lens_in = _LENS_IN + (list(ex.COMPRESSED_IN) + ["kv_cache_tokens_total"]
                          + [f"{f}{i}" for i in range(k) for f in ("av", "bpb", "wsr")] if dsv4 else [])
    lens_out = list(dict.fromkeys(_LENS_OUT + (list(ex.COMPRESSED_OUT) if dsv4 else [])))
    # multimodal rows whose encoder profile depends on max_model_len (a dummy video, the tower's own peak:
    # exprs.encoder_lens): their KV memory, blocks, tokens and fit are per length too
    # (and DSA models' indexer K gather, max_model_len x 40 rows: ``dsa_ix``, the same per-length path)
    enc = bool(lt.height) and bool((lt["vid_f"].fill_null(0).max() or 0) or (lt["tow_t"].fill_null(0).max() or 0)
                                   or (lt["dsa_ix"].fill_null(0).max() or 0))
    if enc:
        lens_in = lens_in + list(ex.ENCODER_IN) + [f"{f}{i}" for i in range(k) for f in ("av", "bpb")]
        if extensible and kv_fixed is None:     # the margin grows with the encoder term (ex.encoder_lens)
            lens_in = lens_in + [f"am{i}" for i in range(k)] + ["_kvm"]
        lens_out = list(dict.fromkeys(lens_out + list(ex.ENCODER_OUT)))
    per_len_rows = dsv4 or enc
    if per_len_rows and stage0_columns:   # the first stage's activation / KV GiB follow the length too
        lens_in, lens_out = lens_in + ["act0"], list(dict.fromkeys(lens_out + ["act0", "av0"]))
        stage0 = ["w0"]
    # the largest window threshold (window - 1 + T) of the chunk: it bounds the fit's binary search
    max_th = (int(max(lt[c].fill_null(0).max() or 0 for c in ("window", "window2", "window3")))
              + int(gt["max_num_batched_tokens"].max() or 0)) if dsv4 else 0
    carry = [c for c in _CARRY if not ((dsv4 and c in ex.COMPRESSED_OUT) or (enc and c in ex.ENCODER_OUT))]
    keep = list(dict.fromkeys(_CARRY + lens_in + ["_outside", "_fb"] + stage0))
    # x utilization as two gathers of the columns the pass reads or keeps: unlike the cross join's
    # pieces, the rows come out in one chunk, which the cells' gathers need (``_Rows.cu``)
    read = {n for b in batches for e in b for n in e.meta.root_names()} | set(keep) | {"dp", "token_block"}
    n_util = util.height
    x = pl.concat([a.select([c for c in a.columns if c in read])[
                       pl.Series(np.repeat(np.arange(a.height, dtype=np.uint32), n_util), dtype=pl.UInt32)],
                   util[pl.Series(np.tile(np.arange(n_util, dtype=np.uint32), a.height), dtype=pl.UInt32)]],
                  how="horizontal")
    for b in batches[:-1]:
        x = x.with_columns(b)
    if gathered:
        # the worst slot's columns (``ex.PICKED``) as one gather from the (layout x GPU) rows' slot columns stacked
        # slot by slot (row ``slot * n_a + layout x GPU row``): the when-chain over the slots per row, and copying
        # every slot's columns into the utilization rows to run it, cost ~2x more (docs/decisions.md, speedprep2)
        n_a = a.height
        at = x["_w"].cast(pl.Int64).to_numpy() * n_a + np.repeat(np.arange(n_a, dtype=np.int64), n_util)
        # not rechunked: one gather from the k chunks is cheaper than copying them into one first
        slots = pl.concat([a.select([pl.col(f"{nm}{i}").alias(f"_g_{nm}") for nm in ex.PICKED]) for i in range(k)],
                          how="vertical", rechunk=False)
        x = x.hstack(slots[pl.Series(at, dtype=pl.UInt32)])
    x = x.with_columns(batches[-1])
    u = x.with_columns((pl.col("kv_cache_tokens") * pl.col("dp")).alias("kv_cache_tokens_total"),
                       pl.col("token_block").alias("block_size"), ex.fallback_code()).select(keep)
    # x max_model_len: the per-length terms (blocks per request, what limits concurrency, the verdict
    # codes that do not depend on the concurrency target) on the (layout, GPU, util) rows, once per
    # context length as a constant -- nothing is copied to compute them
    conc_tokens = matrix_profile(matrix)[0].tokens_from_concurrency   # the version's "GPU KV cache size" rule
    # DeepSeek-V4's logged concurrency before vllm#48317 (estimate/compressed.Plan.legacy_pages_per_request)
    legacy_conc = ((parse_version(matrix.vllm_version) or tuple(matrix_profile(matrix)[0].first))
                   < PER_GROUP_CONCURRENCY_FROM)
    passes = ex.lens_pass(codes, fixed_kv=kv_fixed is not None, conc_tokens=conc_tokens)
    before, after = (ex.compressed_lens(k, kv_fixed is not None, max_th, stage0_columns, legacy_conc)
                     if dsv4 else ([], []))
    if enc:
        enc_before, enc_after = ex.encoder_lens(k, kv_fixed is not None, stage0_columns, extensible)
        before, after = enc_before + before, after + enc_after
    # the rows the DeepSeek-V4 / encoder terms change run them apart (a few thousand of the chunk's rows); the
    # others take ``lens_pass`` alone, with what those terms leave them (``off``: the same values), and the
    # special rows' results put in their places
    on = _special_rows(u, dsv4, enc)
    off = ex.encoder_lens_off(stage0_columns) if enc else []
    take_u = pl.Series(np.repeat(gc.take, util.height), dtype=pl.UInt32) if u.height else None
    src = u.select(list(dict.fromkeys(lens_in)))
    lens_rows, on_rows = [], []
    # what lens_pass's first batch reads, per (layout row, GPU class): the cross join once for every length
    small_in = None
    if take_u is not None and all(gc.narrow(e, ("max_model_len",)) for e in passes[0]):
        small_in = gc.small().select(sorted({n for e in passes[0] for n in e.meta.root_names()}
                                            - {"max_model_len"})).collect()
    if on.size:
        on_ix = pl.Series(on, dtype=pl.UInt32)
        src_on, take_on = src[on_ix], take_u[on_ix]
    for m in matrix.max_model_len:
        pairs = ltable.filter(pl.col("max_model_len") == m) if ltable is not None else None
        small = None if small_in is None else \
            small_in.with_columns(pl.lit(m, pl.Int64).alias("max_model_len")).select(passes[0])
        lens_rows.append(_lens_out(_lens_in(src, m, pairs, small, take_u).lazy(), off, passes, [], lens_out))
        if on.size:     # the special rows at every length in one frame: one (long) plan, not one per length
            on_rows.append(_lens_in(src_on, m, pairs, small, take_on))
    n_plain = len(lens_rows)
    if on_rows:
        lens_rows.append(_lens_out(pl.concat(on_rows, how="vertical").lazy(), before, passes, after, lens_out))
    parts = pl.collect_all(lens_rows)
    per_len = pl.concat(parts[:n_plain], how="vertical", rechunk=True)   # row = length * n + u
    if on_rows:     # the special rows' results in their places: scattered into the fresh (unshared) columns
        at = pl.Series((np.arange(len(on_rows), dtype=np.int64)[:, None] * u.height + on[None, :]).ravel(),
                       dtype=pl.UInt32)
        cols = [per_len.drop_in_place(c) for c in list(per_len.columns)]
        per_len = pl.DataFrame([c.scatter(at, parts[-1][c.name]) for c in cols])
    # the row reasons some cell picks (codes 2, 3 / 6 -- a superset: per cell a code 4 / 5 may win)
    n_len, n_conc = len(matrix.max_model_len), len(matrix.concurrency)
    pre_code = per_len["_pre"].fill_null(0).to_numpy().reshape(n_len, u.height)
    need_len = np.flatnonzero((pre_code == 2).ravel() if per_len_rows else (pre_code == 2).any(axis=0))
    fb = u["_fb"].to_numpy()
    need_out = np.flatnonzero((pre_code == 3).any(axis=0) | (fb == 6))
    reasons = ex.reason_table(codes, u, pl.Series(need_len, dtype=pl.UInt32), pl.Series(need_out, dtype=pl.UInt32),
                              per_len if per_len_rows else None)
    # the cells read the verdict's table indices (``ex.reason_ids``), not the codes
    pre_ids = ex.reason_ids(codes, per_len["_pre"].cast(pl.UInt32).fill_null(ex.NO_ROW_CODE).to_numpy(), u.height,
                            per_len_rows, need_len, need_out)
    per_len = per_len.select(pl.exclude("_pre")).with_columns(pl.Series("_rpre", pre_ids, dtype=pl.UInt32))
    # the fallback's index is the row's: carried into the cells with the row's other columns
    u = u.with_columns(pl.Series("_rfb", ex.reason_ids(codes, fb, u.height, per_len_rows, need_len, need_out),
                                 dtype=pl.UInt32))
    carry = carry + ["_rfb"]
    lc = lens.join(conc, how="cross", maintain_order="left_right")
    # carried columns with one value in the whole chunk (no revision, one config source, no speculative
    # decoding ...): the cells repeat it rather than gather it (all nulls, or one non-float value: floats
    # only when all null, so -0.0 / 0.0 / NaN bits never merge)
    const = {c: u[c][:1] for c in carry + stage0 if _one_value(u[c])}
    # the cells gather these from one chunk: a gather from the util pass's several chunks costs up to
    # twice as much (strings most)
    cu = u.select([c for c in carry + stage0 if c not in const])
    return _Rows(u, per_len, codes, reasons, lc, n_len, n_conc, matrix.vllm_version, stage0, carry, const, cu)


def _pre_codes(a: pl.DataFrame, rules: pl.Expr, load: pl.Expr) -> tuple[list[tuple[str, str]], pl.Series]:
    """The verdict codes of a chunk (``ex.verdict_codes``: its distinct (status, reason) pairs of the (layout x
    GPU) rows ``a`` whose status ``_status`` is set, in first-seen row order) and each row's code ``_pcode``
    (null where no status is set, or the reason is null).  Each reason is built only on the rows it is the
    reason of (``ex.gpu_pass``): a layout's own status keeps its ``pre_reason``; an ``invalid_layout`` row
    gets ``rules`` -- evaluated once per distinct tuple of its inputs (integers and strings, compared
    exactly), a few hundred of ~130 k rows on the benchmark --; a ``no_fit`` row ``load``.  Evaluating the
    combined when-chain formatted every branch's string on every flagged row, ~2x the CPU."""
    rr, lr = list(dict.fromkeys(rules.meta.root_names())), list(dict.fromkeys(load.meta.root_names()))
    # rechunk: after the filter the columns' chunks do not line up, and polars 2.1's string ternary then
    # panics ("assertion failed: i < self.len()"; a one-layout job over 10 bundled models x 6 GPUs)
    f = (a.select(list(dict.fromkeys(["_status", "pre_status", "pre_reason"] + rr + lr))).with_row_index("_i")
         .filter(pl.col("_status").is_not_null()).rechunk())
    own = f["pre_status"].is_not_null()
    reason = f["pre_reason"]        # a layout's own status: its own reason (``rules``' first branch)
    on = (~own & (f["_status"] == "invalid_layout")).arg_true()
    if on.len():
        keys = f[on].select(rr)
        exact = not any(d.is_float() for d in keys.schema.values())   # -0.0 / 0.0 would merge as keys
        uk = keys.unique(maintain_order=True).with_columns(rules.alias("_r")) if exact else None
        got = (keys.join(uk, on=rr, how="left", nulls_equal=True, maintain_order="left")["_r"] if exact
               else keys.select(rules).to_series())
        reason = reason.scatter(on, got)
    on = (~own & (f["_status"] == "no_fit")).arg_true()
    if on.len():
        reason = reason.scatter(on, f[on].select(load).to_series())
    flagged = pl.DataFrame([f["_i"], f["_status"].alias("pre_status"), reason.alias("pre_reason")])
    pre = flagged.select("pre_status", "pre_reason").unique(maintain_order=True)
    codes = ex.verdict_codes(list(pre.iter_rows()))
    pre = pre.with_columns(pl.Series("_pcode", range(len(ex.VERDICTS), len(codes)), dtype=pl.UInt16))
    flagged = flagged.join(pre, on=["pre_status", "pre_reason"], how="left", nulls_equal=False,
                           maintain_order="left").drop_nulls("_pcode")
    return codes, (pl.repeat(None, a.height, dtype=pl.UInt16, eager=True).alias("_pcode")
                   .scatter(flagged["_i"], flagged["_pcode"]))


def _special_rows(u: pl.DataFrame, dsv4: bool, enc: bool) -> np.ndarray:
    """Indices of the (layout, GPU, util) rows whose per-length figures the DeepSeek-V4 (``ex.compressed_lens``)
    or encoder (``ex.encoder_lens``) terms change: the rows those terms' own ``on`` selects."""
    if not (dsv4 or enc) or not u.height:
        return np.zeros(0, dtype=np.int64)
    sel = pl.lit(False)
    if dsv4:
        sel = sel | (pl.col("tok_conc") == 1).fill_null(False)
    if enc:
        sel = (sel | (pl.col("vid_f").fill_null(0).cast(pl.Int64) > 0) | (pl.col("tow_t").fill_null(0.0) > 0)
               | (pl.col("dsa_ix").fill_null(0) > 0))
    return np.flatnonzero(u.select((sel & pl.col("_nbv").is_not_null()).fill_null(False)).to_series().to_numpy())


def _lens_in(src: pl.DataFrame, m: int, pairs: pl.DataFrame | None, small: pl.DataFrame | None,
             take: pl.Series | None) -> pl.DataFrame:
    """The rows ``src`` at max_model_len ``m`` with the length's own inputs: ``_lcode`` (``pairs``: the
    (max_pos -> _lcode) refusals at ``m``) and, when ``small`` is given, ``lens_pass``'s first batch
    (blocks per request: it reads the layout row, the GPU class and the length only) evaluated per
    (layout row, GPU class) and gathered into the rows by ``take``."""
    f = src.with_columns(pl.lit(m, pl.Int64).alias("max_model_len"))
    if pairs is not None and pairs.height:
        f = f.with_columns(pl.col("max_pos").replace_strict(pairs["max_pos"], pairs["_lcode"], default=None,
                                                            return_dtype=pl.UInt16).alias("_lcode"))
    else:
        f = f.with_columns(pl.lit(None, pl.UInt16).alias("_lcode"))
    return f.hstack(small[take]) if small is not None else f


def _lens_out(f: pl.LazyFrame, before: list, passes: list, after: list, out: list[str]) -> pl.LazyFrame:
    """The per-length terms on ``f`` (``_lens_in``'s rows): ``before``, ``lens_pass`` (without its first batch
    when ``f`` has it already -- unless ``before`` writes a column it reads), ``after``."""
    names = set(f.collect_schema().names())
    first = passes[0]
    if {e.meta.output_name() for e in first} <= names:
        written = {e.meta.output_name() for b in before for e in b}
        if any(set(e.meta.root_names()) & written for e in first):
            f = f.drop([e.meta.output_name() for e in first])
        else:
            passes = passes[1:]
    for b in before + passes + after:
        f = f.with_columns(b)
    return f.select(out)


def _one_value(s: pl.Series) -> bool:
    """Every value of ``s`` is its first (nulls: all null; floats only all null, so no -0.0 / 0.0 / NaN
    merge): cheap probes first, the full comparison only for likely constants."""
    n = s.len()
    if not n or s.null_count() not in (0, n):
        return False
    if s.null_count() == n:
        return True
    if s.dtype.is_float() or s[0] != s[n - 1] or s[0] != s[n // 2]:
        return False
    return bool((s == s[0]).all())


def _cells(r: _Rows, lo: int = 0, hi: int | None = None) -> pl.LazyFrame:
    """``_cell_frame`` deferred to the collect (``evaluate_matrix_lazy``'s plans hold no cells)."""
    from reportgen.results import SCHEMA

    schema = {**SCHEMA, **{c: pl.Float64 for c in _STAGE0_OUT[:len(r.stage0) and 3]}}
    return pl.defer(lambda: _cell_frame(r, lo, hi), schema=schema)


_STAGE0_OUT = ("stage0_weights_gib", "stage0_activation_gib", "stage0_kv_cache_gib")


def _cell_frame(r: _Rows, lo: int = 0, hi: int | None = None) -> pl.DataFrame:
    """The cells of the (layout, GPU, util) rows ``lo:hi`` of ``r`` (all by default), in job order.

    x concurrency: the output columns are copied once from the (layout, GPU, util) rows (x lens x
    concurrency) and once from the per-length rows, side by side in the cells' order; the per-cell
    terms then run on the copies.  Rows ``lo:hi`` give exactly the cells ``lo * n_len * n_conc``
    onwards of the whole chunk.  Eager: a DataFrame gather costs half what the same ``gather``
    expression does in polars 2.1."""
    n_u = r.u.height
    hi = n_u if hi is None else min(hi, n_u)
    lo = min(lo, hi)
    per_row = r.n_len * r.n_conc
    n = (hi - lo) * per_row
    rows = np.arange(lo, hi, dtype=np.uint32)
    # cell (u, length, target) -> per-length row length * n_u + u
    take = np.broadcast_to((np.arange(r.n_len, dtype=np.uint32)[None, :, None] * n_u
                            + rows[:, None, None]), (hi - lo, r.n_len, r.n_conc))
    # plain gathers from single-chunk frames (``r.cu``, ``per_len``): a cross join, or a
    # gather from a multi-chunk column, copies the same values for up to twice the CPU (strings most);
    # a column with one value in the whole chunk is repeated instead (``_Rows.const``)
    cells = pl.concat([
        r.cu[pl.Series(np.repeat(rows, per_row), dtype=pl.UInt32)],
        r.lc[pl.Series(np.tile(np.arange(per_row, dtype=np.uint32), hi - lo), dtype=pl.UInt32)],
        r.per_len[pl.Series(take.ravel(), dtype=pl.UInt32)],
    ], how="horizontal").with_columns([v.new_from_index(0, n) for v in r.const.values()])
    # headroom_pct divides by ``_budget``: in a one-GPU, one-utilization job it is a product of two one-row
    # cross joins, and a gather from one (layout, GPU, util) row repeats it -- a column polars holds as one
    # repeated value and divides by with a reciprocal multiply (x * (1/b) != x / b in the last 1-2 bits).
    # Taken out as a Series it is a full column (no copy when it is one already; put back in place), so
    # every job divides element-wise, as a many-GPU job always did (docs/decisions.md "headroom_pct bit for bit")
    cells.replace_column(cells.get_column_index("_budget"), cells.get_column("_budget"))
    for b in ex.cell_pass():
        cells = cells.with_columns(b)
    statuses, reasons = r.reasons
    cells = cells.with_columns(pl.lit(statuses).gather(pl.col("_rid")).alias("status"),
                               pl.lit(reasons).gather(pl.col("_rid")).alias("reason"))
    # vLLM logs tokens and concurrency per DP engine (CacheConfig.kv_cache_size_tokens: "Per-DP-engine");
    # the deployment serves dp such engines side by side (docs/decisions.md "Engine-wide vs per-GPU")
    cells = cells.with_columns(pl.lit(r.vllm_version).alias("vllm_version"),
                               pl.col("spec_decode").alias("speculative"), pl.col("draft_w").alias("draft_weights_gib"))
    extra = []
    if r.stage0:
        extra = [pl.col("w0").alias(_STAGE0_OUT[0]), pl.col("act0").alias(_STAGE0_OUT[1]),
                 pl.col("av0").alias(_STAGE0_OUT[2])]
    return cells.select(_conform_exprs() + extra)


def _plan(models: list[ModelEntry], gpus: list[Any], matrix: Matrix, stage0_columns: bool) -> pl.LazyFrame:
    """The lazy pipeline for one chunk of models x GPUs: all its cells at once."""
    mats = _length_matrices(models, matrix)
    if mats is not None:
        rs = [_prepare(models, gpus, mx, stage0_columns) for mx in mats]
        return pl.defer(lambda: _length_frame(rs), schema=_cells(rs[0]).collect_schema())
    return _cells(_prepare(models, gpus, matrix, stage0_columns))


def _length_matrices(models: list[ModelEntry], matrix: Matrix) -> list[Matrix] | None:
    """One-length copies of ``matrix`` (job order) when a model of the chunk has weights that follow max_model_len
    (``_weights_follow_length``) and the job has several lengths, else None: each length is then its own table
    (``EngineOptions.max_model_len``), so its weights, load verdict, KV memory and fit are that length's."""
    if len(matrix.max_model_len) < 2 or not any(_weights_follow_length(m, matrix) for m in models):
        return None
    out = []
    for v in matrix.max_model_len:
        mx = copy.copy(matrix)          # keeps the attributes set on the instance (draft_spec, ...)
        mx.max_model_len = [v]
        out.append(mx)
    return out


def _length_frame(rs: list[_Rows], lo: int = 0, hi: int | None = None) -> pl.DataFrame:
    """The cells of rows ``lo:hi`` of the one-length chunks ``rs`` (``_length_matrices``: the same rows, one
    max_model_len each), in the job's cell order (row, length, concurrency)."""
    frames = [_cell_frame(r, lo, hi) for r in rs]
    n_conc = rs[0].n_conc
    n_rows = frames[0].height // max(n_conc, 1)
    idx = (np.arange(len(rs), dtype=np.int64)[None, :, None] * (n_rows * n_conc)
           + np.arange(n_rows, dtype=np.int64)[:, None, None] * n_conc
           + np.arange(n_conc, dtype=np.int64)[None, None, :]).ravel()
    return pl.concat(frames, how="vertical")[pl.Series(idx, dtype=pl.UInt32)]


DEFAULT_BATCH_CELLS = 1_000_000
ALLOW_LONG_ENV = "VLLM_ALLOW_LONG_MAX_MODEL_LEN"


def allow_long_max_model_len(matrix: Matrix) -> bool:
    """vLLM's ``VLLM_ALLOW_LONG_MAX_MODEL_LEN``: a job field ``allow_long_max_model_len`` when the
    job has one, else the environment variable (vLLM's truthiness: ``1`` / ``true``)."""
    value = getattr(matrix, "allow_long_max_model_len", None)
    if value is None:
        value = os.environ.get(ALLOW_LONG_ENV, "").strip().lower() in ("1", "true")
    return bool(value)


def _chunks(models: list[ModelEntry], gpus: list[Any], matrix: Matrix,
            batch_cells: int) -> Iterator[tuple[list[ModelEntry], list[Any]]]:
    """Split models (then GPUs, for a model bigger than a batch) so each chunk has <= batch_cells cells."""
    per_mg = max([cells_per_model_gpu(m, matrix) for m in models] or [matrix.n_cells_per_model_gpu()])
    per_mg = max(per_mg, 1)
    if per_mg * len(gpus) > batch_cells:
        step = max(1, batch_cells // per_mg)
        for m in models:
            for i in range(0, len(gpus), step):
                yield [m], gpus[i:i + step]
        return
    per_model = per_mg * max(len(gpus), 1)
    step = max(1, batch_cells // per_model)
    for run in _kind_runs(models, step, matrix):
        yield run, gpus


def _kind_runs(models: list[ModelEntry], step: int | None = None, matrix: Matrix | None = None) -> list[list[ModelEntry]]:
    """Consecutive runs of at most ``step`` models: a model whose figures depend on max_model_len beyond the
    blocks (DeepSeek-V4: exprs.compressed_lens; weights sized by it: ``_weights_follow_length``) shares a run
    only with its own kind, so the per-length work runs on those rows alone; job order is kept."""
    runs: list[list[ModelEntry]] = []
    kinds: list[int] = []
    for m in models:
        kind = _per_length(m, matrix)
        if runs and (step is None or len(runs[-1]) < step) and kinds[-1] == kind:
            runs[-1].append(m)
        else:
            runs.append([m])
            kinds.append(kind)
    return runs


def _per_length(m: ModelEntry, matrix: Matrix | None = None) -> int:
    """1: the model's KV figures are re-priced per max_model_len (compressed DeepSeek-V4 caches); 2: its weights
    follow the job's max_model_len (``_weights_follow_length``); 0: neither."""
    if any(getattr(l, "compressed", None) is not None for l in getattr(m.spec, "layers_kv", ()) or ()):
        return 1
    return 2 if matrix is not None and _weights_follow_length(m, matrix) else 0


def _weights_follow_length(m: ModelEntry, matrix: Matrix) -> bool:
    """The model code sizes a rotary cache by max_model_len (``spec.rope_length_mode``: MiniMax-Text-01, MiniMax-M2)
    and some length of the job gives it other bytes than vLLM's default length does (MiniMax-M2's ``max`` only
    above max_position_embeddings): a model without such a cache stays on the one-table path."""
    spec = spec_for_version(m.spec, matrix.vllm_version)     # the release's rotary caches (rope.RULE_CHANGES)
    if not getattr(spec, "rope_length_mode", "") or spec.unsupported_reason:
        return False
    base = rotary_cache_bytes(spec, 1.0)
    return any(rotary_cache_bytes(spec, 1.0, v) != base for v in set(matrix.max_model_len))


def evaluate_matrix_lazy(models: list[ModelEntry], gpus: Iterable[Any], matrix: Matrix,
                         stage0_columns: bool = False, batch_cells: int = DEFAULT_BATCH_CELLS) -> pl.LazyFrame:
    """The whole matrix as a LazyFrame conforming to ``reportgen.results``.

    Large matrices are a vertical concatenation of chunks of at most ``batch_cells``
    cells (models, then GPUs), so a sink processes one chunk at a time.  For the
    tightest memory bound and the best speed on huge jobs, write the chunks of
    ``iter_matrix_batches`` one by one instead (e.g. one Parquet file per chunk).

    ``stage0_columns`` appends the first PP stage's figures (``stage0_weights_gib``,
    ``stage0_activation_gib``, ``stage0_kv_cache_gib``): vLLM logs rank 0, so the
    validation script compares like with like.

    The (layout x GPU x util) rows and the per-cell terms are evaluated when the plan is built
    (small frames: 1/16 of the cells and a few columns); the collect copies them into the cells.
    """
    gpus = list(gpus)
    plans = [_plan(m, g, matrix, stage0_columns) for m, g in _chunks(models, gpus, matrix, batch_cells)]
    if not plans:
        return _plan([], gpus, matrix, stage0_columns)
    return plans[0] if len(plans) == 1 else pl.concat(plans, how="vertical")


DELIVER_CELLS = 262_144
PREP_CELLS = 8_000_000


def iter_cell_batches(models: list[ModelEntry], gpus: Iterable[Any], matrix: Matrix,
                      batch_cells: int = DELIVER_CELLS, prep_cells: int = PREP_CELLS,
                      stage0_columns: bool = False) -> Iterator[pl.DataFrame]:
    """The cells as successive DataFrames of about ``batch_cells`` cells, never one big frame.

    Concatenated, the batches are exactly ``evaluate_matrix`` (same values to the bit, nulls and
    order).  Each chunk of models (about ``prep_cells`` cells, see ``_chunks``) is evaluated up to
    its (layout, GPU, utilization) rows once (``_prepare``); the batches are then runs of those rows,
    each crossed with the small axes (contexts x targets) and its per-cell terms evaluated on its
    own.  A batch is at most ``batch_cells`` cells unless one row alone has more (contexts x
    targets > batch_cells: then one row per batch).  Why: a consumer that writes and drops each
    batch (Parquet parts, a socket) never holds the whole matrix, and each batch is built in the
    pages the previous one freed -- faulting in fresh pages for a materialised 7.5 M-cell frame
    costs as much CPU as the estimate itself (docs/decisions.md "Estimator speed")."""
    gpus = list(gpus)
    # chunks of whole models (never split by GPU as ``_chunks`` does: that would change the order),
    # DeepSeek-V4 apart from the others as in ``_kind_runs``;
    # one model's (layout, GPU, util) rows are few (9,600 for 48 layouts x 4 dtypes x 25 GPUs x 2)
    per_mg = max([cells_per_model_gpu(m, matrix) for m in models] or [matrix.n_cells_per_model_gpu()])
    per_chunk = max(1, max(prep_cells, batch_cells) // max(per_mg * len(gpus), 1))
    runs = _kind_runs(models, per_chunk, matrix)
    if ahead.workers() >= 2 and runs:
        # two cores: the batches and the next run's ``_prepare`` computed in worker threads, delivered in order
        # (``_runs_ahead``; docs/decisions.md "Estimator on both cores")
        yield from _runs_ahead(runs, gpus, matrix, batch_cells, prep_cells, stage0_columns)
        return
    for run in runs:
        # ``del`` after each run: the next chunk is prepared with this one released, so a job of several chunks
        # peaks at one prepared chunk (held, two 8 M-cell chunks peaked at 2,043 MiB RSS instead of 1,584, and
        # 3,959 instead of 2,517 on the per-length path: benchmark in tests/test_arch_minimax.py, branch review21)
        mats = _length_matrices(run, matrix)
        if mats is not None:        # weights per max_model_len: one chunk per length, cells interleaved
            rs = [_prepare(run, gpus, mx, stage0_columns) for mx in mats]
            if rs[0].n_cells:
                rows = max(1, batch_cells // (len(rs) * rs[0].n_conc))
                for lo in range(0, rs[0].u.height, rows):
                    yield _length_frame(rs, lo, lo + rows)
            del rs
            continue
        r = _prepare(run, gpus, matrix, stage0_columns)
        if r.n_cells:
            rows = max(1, batch_cells // (r.n_len * r.n_conc))
            for lo in range(0, r.u.height, rows):
                yield _cell_frame(r, lo, lo + rows)
        del r


# work ahead of the consumer on two cores (``_runs_ahead``): cells in batches computed or queued but not yet
# delivered, and the cells the prepared chunks alive may hold together (runs prepared ahead beside the batches of
# earlier runs), besides ``prep_cells``
AHEAD_CELLS = 786_432
PAIR_PREP_CELLS = 2_000_000


def _batch_of(rs: list[_Rows], one_length: bool, lo: int, hi: int) -> pl.DataFrame:
    return _cell_frame(rs[0], lo, hi) if one_length else _length_frame(rs, lo, hi)


def _runs_ahead(runs: list[list[ModelEntry]], gpus: list[Any], matrix: Matrix, batch_cells: int, prep_cells: int,
                stage0_columns: bool) -> Iterator[pl.DataFrame]:
    """``iter_cell_batches``' loop on two worker threads (``reportgen.ahead``): the same batches, in the same order,
    from the same calls.  polars releases the GIL inside its operations, so batch *k+1* is built while batch *k* is,
    and the next runs' ``_prepare`` (a per-length run's one-length chunks side by side) while this run's batches are.
    Bounded: at most ``AHEAD_CELLS // batch_cells`` (>= 1) batches not yet delivered; the runs alive (from the oldest
    whose batches are not all delivered to the last one prepared) hold <= max(``prep_cells``, ``PAIR_PREP_CELLS``)
    cells together, so a run is prepared ahead only within that budget, else after every earlier run's last batch was
    delivered and dropped (one prepared chunk at a time, as the serial loop).  An exception is raised at its turn
    (after the batches before it); closing the generator cancels the queued work."""
    plan = [(run, _length_matrices(run, matrix)) for run in runs]
    cells = [sum(cells_per_model_gpu(m, matrix) for m in run) * len(gpus) for run in runs]
    budget = max(prep_cells, PAIR_PREP_CELLS)
    with ahead.Ordered(workers=2, depth=max(1, AHEAD_CELLS // max(batch_cells, 1))) as q:
        preps: dict[int, list] = {}
        nxt = 0                 # the next run to prepare

        def prepare(j: int) -> list:
            run, mats = plan[j]
            return [q.side(_prepare, run, gpus, mx, stage0_columns) for mx in (mats or [matrix])]

        def ahead_of(i: int) -> None:
            # the runs alive -- from the oldest with batches not yet delivered (or run i) to the last one prepared
            # -- and the next together hold <= budget cells: prepare the next beside them
            nonlocal nxt
            lo = min(q.oldest(i), i)
            while nxt < len(plan) and sum(cells[lo:nxt + 1]) <= budget:
                preps[nxt] = prepare(nxt)
                nxt += 1

        for i, (run, mats) in enumerate(plan):
            if i not in preps:
                # too big beside the runs before it: prepared once their batches are delivered (and their chunks gone)
                yield from q.drain()
                preps[i] = prepare(i)
                nxt = i + 1
            ahead_of(i)
            futs = preps.pop(i)
            yield from q.until_done(futs)       # the earlier runs' batches, delivered while this run is prepared
            rs = [f.result() for f in futs]
            del futs
            if rs[0].n_cells:
                n_conc = rs[0].n_conc
                rows = max(1, batch_cells // ((len(rs) if mats else rs[0].n_len) * n_conc))
                for lo in range(0, rs[0].u.height, rows):
                    yield from q.room()
                    q.submit(i, _batch_of, rs, mats is None, lo, lo + rows)
                    ahead_of(i)
            del rs
        yield from q.drain()


def iter_matrix_batches(models: list[ModelEntry], gpus: Iterable[Any], matrix: Matrix,
                        batch_cells: int = DEFAULT_BATCH_CELLS) -> Iterator[pl.DataFrame]:
    """The matrix as successive DataFrames of at most ``batch_cells`` cells (models in job order).

    Peak memory is one batch (~0.4 GB per million cells), whatever the job size.
    """
    gpus = list(gpus)
    for m, g in _chunks(models, gpus, matrix, batch_cells):
        yield _plan(m, g, matrix, False).collect()


# columns of the (layout, GPU, utilization) rows copied into every cell (the outputs, the per-cell
# terms' inputs and ``_u``, the row's index into the reason table)
_CARRY = ["model", "revision", "config_source", "weights_source", "model_type", "gpu", "gpu_name", "gpu_memory_gib",
          "tp", "pp", "dp", "ep", "gpus", "nodes", "weights_as", "weight_scheme", "kv_cache_dtype",
          "kv_cache_dtype_used", "gpu_memory_utilization", "max_num_batched_tokens", "max_num_seqs", "weights_gib",
          "activation_gib", "non_torch_gib", "cuda_graph_gib", "kv_cache_gib", "max_model_len_fit",
          "worst_rank", "kv_bytes_per_token", "params_total", "params_active", "price_usd_hr", "_budget", "_nbv",
          "_bpb", "state_bytes_per_seq", "spec_decode", "draft_w"]
# what the per-length pass reads, and what it hands to the cells
_LENS_IN = ["max_num_batched_tokens", "max_num_seqs", "dp", "_pcode", "_nbv", "kv_cache_gib", "_outside_fail",
            "_outside_margin", "max_pos", "n_full", "bs_full", "n_slide", "window", "bs_slide", "n_chunk", "chunk",
            "bs_chunk", "n_state", "state_blocks", "token_block", "kv_cache_tokens", "kv_cache_tokens_total",
            "block_size", "n_slide2", "window2", "bs_slide2", "n_slide3", "window3", "bs_slide3"]
# kv_cache_tokens / block_size come from the length rows: an attention-free model's block is max_model_len
_LENS_OUT = ["_bpr", "_pre", "concurrency_limited_by", "max_concurrency", "max_concurrency_total",
             "kv_cache_tokens", "kv_cache_tokens_total", "block_size"]


def _conform_exprs() -> list[pl.Expr]:
    from reportgen.results import COLUMNS
    return [pl.col(name).cast(dtype) for name, dtype, _ in COLUMNS]


def evaluate_matrix(models: list[ModelEntry], gpus: Iterable[Any], matrix: Matrix) -> pl.DataFrame:
    """Evaluate every cell; one row per cell in ``reportgen.results`` order and types (in memory:
    about 0.4 GB per million cells; use ``iter_matrix_batches`` beyond a few million)."""
    gpus = list(gpus)
    runs = _kind_runs(models, matrix=matrix)
    if len(runs) <= 1:
        return _plan(models, gpus, matrix, False).collect()
    return pl.concat([_plan(r, gpus, matrix, False).collect() for r in runs], how="vertical")


def estimate_one(spec: ModelSpec, gpu_or_memory_gib: Any, *, model: str | None = None,
                 tp: int = 1, pp: int = 1, dp: int = 1, ep: bool = False,
                 weights_as: str = "checkpoint", kv_cache_dtype: str = "auto",
                 max_model_len: int = 8192, concurrency: int = 1, gpu_memory_utilization: float | None = None,
                 max_num_batched_tokens: int | None = None, max_num_seqs: int | None = None,
                 block_size: int | None = None, vllm_version: str | None = None, gpus_per_node: int | None = None,
                 max_nodes: int | None = None, allow_cross_node_tp: bool = False,
                 allow_long_max_model_len: bool | None = None, dtype: str = "auto",
                 quantization: str | None = None, enforce_eager: bool = False,
                 enable_prefix_caching: bool | None = None, kv_cache_memory_bytes: int | None = None,
                 weight_dtype: str | None = None, flashinfer_sampler: bool | None = None,
                 speculative_config: dict | str | None = None, draft_spec: ModelSpec | None = None,
                 indexer_kv_dtype: str = "bf16", disable_custom_all_reduce: bool = False, moe_backend: str = "auto",
                 interconnect: str | None = None, enable_extensible_kv_cache: bool | None = None,
                 expandable_segments: bool = False) -> dict:
    """One model, one GPU, one layout: the JSON fields of ``reportgen estimate`` (a 1-cell matrix).

    ``gpu_or_memory_gib``: a catalog ``GpuSku`` or a plain number (usable GiB, for GPUs
    not in the catalog).  ``max_nodes`` None: as many nodes as the layout needs (a one-off
    question about a layout is not a question about the fleet); TP still stays in one node
    unless ``allow_cross_node_tp``.  A ``max_model_len`` above the model's derived maximum is
    ``invalid_layout`` (vLLM refuses to start) unless ``allow_long_max_model_len`` (None: the
    ``VLLM_ALLOW_LONG_MAX_MODEL_LEN`` environment variable).  ``dtype`` ... ``kv_cache_memory_bytes``
    are vLLM's engine flags of those names (``Matrix``); ``weight_dtype`` is the pre-split name of
    ``weights_as``; ``gpu_memory_utilization`` / ``block_size`` / ``enable_extensible_kv_cache`` None: vLLM's
    default for the version.  ``interconnect``: for a plain number, the GPUs' link (a catalog ``interconnect``
    value; None = not known, the fitted NVSwitch terms).
    """
    from reportgen.job import DEFAULT_VLLM_VERSION

    if isinstance(gpu_or_memory_gib, (int, float)):
        mem = float(gpu_or_memory_gib)
        gpu = GpuLike(id=f"custom-{mem:g}gib", name=f"custom GPU ({mem:g} GiB)", usable_memory_gib=mem,
                      gpus_per_node=gpus_per_node or 8, interconnect=interconnect or "")
    else:
        gpu = gpu_or_memory_gib
    if max_nodes is None:
        per_node = gpus_per_node or getattr(gpu, "gpus_per_node", None) or 8
        max_nodes = max(1, -(-(tp * pp * dp) // per_node))
    if weight_dtype is not None:
        weights_as = weight_dtype
    mx = Matrix(tp=[tp], pp=[pp], dp=[dp], ep=[ep], weights_as=[weights_as],
                kv_cache_dtype=[kv_cache_dtype], max_model_len=[max_model_len], concurrency=[concurrency],
                gpu_memory_utilization=None if gpu_memory_utilization is None else [gpu_memory_utilization],
                enable_extensible_kv_cache=enable_extensible_kv_cache,
                max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
                block_size=block_size, vllm_version=vllm_version or DEFAULT_VLLM_VERSION,
                gpus_per_node=gpus_per_node, max_nodes=max_nodes, allow_cross_node_tp=allow_cross_node_tp,
                dtype=dtype, quantization=quantization, enforce_eager=enforce_eager,
                enable_prefix_caching=enable_prefix_caching, kv_cache_memory_bytes=kv_cache_memory_bytes,
                flashinfer_sampler=flashinfer_sampler, speculative_config=speculative_config,
                indexer_kv_dtype=indexer_kv_dtype, disable_custom_all_reduce=disable_custom_all_reduce,
                moe_backend=moe_backend, expandable_segments=expandable_segments)
    mx.draft_spec = draft_spec      # --speculative-config method draft_model: the draft's spec (EngineOptions)
    if allow_long_max_model_len is not None:
        mx.allow_long_max_model_len = allow_long_max_model_len   # read by allow_long_max_model_len()
    df = evaluate_matrix([ModelEntry(model or spec.model_type, spec)], [gpu], mx)
    return df.row(0, named=True)


__all__ = ["ModelEntry", "GpuLike", "evaluate_matrix", "evaluate_matrix_lazy", "iter_matrix_batches", "iter_cell_batches",
           "estimate_one", "layout_table", "gpu_table"]
