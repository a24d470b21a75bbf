"""The matrix's input tables: what one model, one GPU and one parallel layout bring to the cells.

Why a module of its own: these are computed once per (model, layout, dtype, KV dtype) row and once per GPU, in
Python, before any cell exists (``layout_table``: the per-model facts of ``estimate.tables`` flattened into stage
slots; ``gpu_table``: the scheduler limits and graph-capture scaling vLLM would pick on each GPU), and the rest of
the package only reads them.  Also here: the job-level inputs the tables and the cells share -- the vLLM profile
and block size of a job (``matrix_profile``, ``kv_block_size``), each GPU's MXFP4 MoE backend (``mxfp4_gpus``),
whether ``VLLM_ALLOW_LONG_MAX_MODEL_LEN`` lifts the derived-maximum check (``allow_long_max_model_len``) and whether
a model's weights follow max_model_len (``_weights_follow_length``; both read by ``cells`` and ``batches``, so they
live below both).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import polars as pl

from reportgen.arch.spec import ModelSpec
from reportgen.estimate import overheads as oh
from reportgen.estimate.encoder import batched_tokens_floor, unchunked_item, unchunked_items
from reportgen.estimate.hybrid import is_attention_free, state_cache_mode
from reportgen.estimate.overheads import comm_terms
from reportgen.estimate.layout import Layout
from reportgen.estimate.profiles import (OVERRIDE_CAPTURE, REFERENCE_CAPTURE_SIZES, VllmProfile, capture_ceiling,
                                         capture_sizes, graphs_off, parse_version, profile_for, wide_sm100)
from reportgen.estimate.served import spec_for_version
from reportgen.estimate.specdecode import parse_speculative_config
from reportgen.estimate.weights import rotary_cache_bytes
from reportgen.estimate.tables import (BODY_FIELDS, COEFF_FIELDS, GROUP_FIELDS, HEAD_FIELDS, SLOT_FIELDS,
                                       EngineOptions, ModelTables, flashmla_q_concat_on, spec_axes)
from reportgen.job import Matrix


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
               "gdn_t": pl.Float64, "g_r": pl.Float64,
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
    eager = graphs_off(matrix)      # --enforce-eager or compilation_config cudagraph_mode NONE: no graphs
    # --max-cudagraph-capture-size / --cudagraph-capture-sizes: the user's capture range replaces vLLM's default (and
    # a model's own maximum, which vLLM sets only when the user gives neither)
    user_max = getattr(matrix, "max_cudagraph_capture_size", None)
    user_sizes = getattr(matrix, "cudagraph_capture_sizes", None)
    user_sizes = tuple(user_sizes) if user_sizes else None
    # --speculative-config: capture sizes rounded to multiples of 1 + num_speculative_tokens on MRV1 (specdecode.py;
    # an MTP draft left at vLLM's default n_predict is 1 token: other defaults are refused per model)
    sd = parse_speculative_config(getattr(matrix, "speculative_config", None))
    k_spec = (sd.num_speculative_tokens or 1) if sd is not None else 0
    version = parse_version(matrix.vllm_version) or tuple(profile.first)
    for g in gpus:
        mem = float(g.usable_memory_gib)
        # catalog interconnect: NVLS-fitted TP-group non-torch or not; custom all-reduce above TP 2 or not
        nvls, nvl_group = comm_terms(getattr(g, "interconnect", "") or "")
        large = getattr(g, "large_gpu", mem >= 70)
        hpu = oh.is_hpu(getattr(g, "vendor", ""), f"{getattr(g, 'name', '')} {getattr(g, 'id', '')}")
        # vllm-gaudi's get_device_total_memory returns 0 (platform.py:122-137): vLLM takes its small-GPU defaults
        t_def, s_def = (oh.default_scheduler_limits(0.0, False, version) if hpu else
                        oh.default_scheduler_limits(mem, large, version))   # 16384 on >= 160 GiB from 0.28
        t, s = int(matrix.max_num_batched_tokens or t_def), int(matrix.max_num_seqs or s_def)
        # vLLM's default capture ceiling on this GPU (1024 on SM 10.x from 0.28)
        cap = getattr(g, "compute_capability", None)
        ceiling = capture_ceiling(cap, version)
        # 0.34+ on SM 10.x: the wide prefill / decode grids, unless the user set a capture range
        wide = wide_sm100(cap, version, bool(user_max or user_sizes))
        n_graphs = capture_sizes(profile, s, t, eager, max_capture=user_max, num_spec=k_spec, ceiling=ceiling,
                                 version=version, sizes_given=user_sizes, wide=wide)
        # gpt-oss's own maximum: vLLM sets it only when the user gives no range, and from 0.34 not on SM 10.x
        # (vllm 0.34.0 sdist model_executor/models/config.py:848-860), whose wide grids already cover it
        n_big = (n_graphs if (user_max or user_sizes or wide) else
                 capture_sizes(profile, s, t, eager, max_capture=OVERRIDE_CAPTURE,   # gpt-oss's own maximum
                               num_spec=k_spec, ceiling=ceiling, version=version))
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
            # Intel Gaudi: the vllm-gaudi plugin's budget (exprs.util_pass), no profile-run terms
            "hpu": 1.0 if hpu else 0.0,
            # 0 where vLLM takes no CUDA-graph estimate from the budget on this GPU's platform (ROCm before 0.26)
            "g_est_ok": 1.0 if oh.graph_estimate_on_platform(getattr(g, "vendor", ""), version) else 0.0,
        })
        rows[-1]["fmq_on"], rows[-1]["fmq_min_h"], rows[-1]["fmq_pad"] = flashmla_q_concat_on(
            getattr(g, "compute_capability", None), version)
    return pl.DataFrame(rows, schema={"gpu": pl.String, "gpu_name": pl.String, "gpu_memory_gib": pl.Float64,
                                      "gpus_per_node": pl.Int32, "price_gpu_hr": pl.Float64,
                                      "max_num_batched_tokens": pl.Int64, "max_num_seqs": pl.Int64,
                                      "g_n": pl.Float64, "g_on": pl.Float64, "g_n_big": pl.Float64,
                                      "nt_fit": pl.Float64, "nvl_group": pl.Int64, "fmq_on": pl.Float64,
                                      "fmq_min_h": pl.Int64, "fmq_pad": pl.Int64, "ext_floor": pl.Float64,
                                      "hpu": pl.Float64, "g_est_ok": pl.Float64})


ALLOW_LONG_ENV = "VLLM_ALLOW_LONG_MAX_MODEL_LEN"


def allow_long_max_model_len(matrix: Matrix) -> bool:
    """vLLM's ``VLLM_ALLOW_LONG_MAX_MODEL_LEN``: a job field ``allow_long_max_model_len`` when the
    job has one, else the environment variable (vLLM's truthiness: ``1`` / ``true``)."""
    value = getattr(matrix, "allow_long_max_model_len", None)
    if value is None:
        value = os.environ.get(ALLOW_LONG_ENV, "").strip().lower() in ("1", "true")
    return bool(value)


def _weights_follow_length(m: ModelEntry, matrix: Matrix) -> bool:
    """The model code sizes a rotary cache by max_model_len (``spec.rope_length_mode``: MiniMax-Text-01, MiniMax-M2)
    and some length of the job gives it other bytes than vLLM's default length does (MiniMax-M2's ``max`` only
    above max_position_embeddings): a model without such a cache stays on the one-table path."""
    spec = spec_for_version(m.spec, matrix.vllm_version)     # the release's rotary caches (rope.RULE_CHANGES)
    if not getattr(spec, "rope_length_mode", "") or spec.unsupported_reason:
        return False
    base = rotary_cache_bytes(spec, 1.0)
    return any(rotary_cache_bytes(spec, 1.0, v) != base for v in set(matrix.max_model_len))
