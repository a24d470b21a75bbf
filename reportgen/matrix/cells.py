"""How one chunk of models x GPUs is evaluated into cells, as polars expressions (``estimate.exprs``).

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

Why a module of its own: this is the estimator's engine -- ``_prepare`` evaluates a chunk up to its (layout, GPU,
utilization) rows and their per-length terms, and ``_cell_frame`` copies those rows into any run of cells and runs
the per-cell terms; ``_plan`` / ``_length_frame`` give a whole chunk (one table, or one per max_model_len when
weights follow the length: ``_length_matrices``).  How the chunks are cut and streamed is
``reportgen.matrix.batches``; the tables it reads are ``reportgen.matrix.inputs``.  (A test that replaces
``_special_rows`` or ``_conform_exprs`` patches it here, where ``_prepare`` / ``_cell_frame`` look it up.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from reportgen.estimate import exprs as ex
from reportgen.estimate.compressed import PER_GROUP_CONCURRENCY_FROM
from reportgen.estimate.profiles import parse_version
from reportgen.estimate.tables import GIB
from reportgen.job import Matrix, extensible_kv_cache, resolved_utilizations, utilization_without_extensible_cache
from reportgen.matrix.inputs import (ModelEntry, _weights_follow_length, allow_long_max_model_len, gpu_table,
                                     layout_table, matrix_profile, mxfp4_gpus)


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
    # vLLM turns the extensible cache off off CUDA / ROCm: an unset utilization is the non-extensible default on a Gaudi
    hpu_util = utilization_without_extensible_cache(matrix) if extensible and not matrix.gpu_memory_utilization else None
    batches = ex.util_pass(k, kv_fixed, gathered, extensible, hpu_util)
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
