"""The verdict codes and the strings they stand for: the (status, reason) table a matrix's cells index, the
model-maximum length refusals, the reasons that carry their row's numbers, and the thresholds of the tight bands.

Why a module of its own: the passes (``exprs``) compute integer codes per cell; turning codes into strings is a
separate step done once per table (``reason_ids`` / ``reason_table``, never per cell), and the codes, their
meanings and the band widths are what a reader of a verdict looks up.  Split out of ``exprs.py`` unchanged;
``exprs`` re-exports every name.
"""

from __future__ import annotations

import numpy as np
import polars as pl

TIGHT_PCT = 10.0


def row_reasons() -> list[pl.Expr]:
    """The reasons that carry a number of their (layout, GPU, utilization) row (``util_pass``'s
    columns): built by ``reason_table`` only on the rows some cell picks them for."""
    return [
        pl.format("one request of max_model_len does not fit in the KV cache: vLLM refuses to start; "
                  "the largest max_model_len that fits is {}", pl.col("max_model_len_fit"))
        .alias("_r_len"),
        # codes 3 (out of memory) and 6 (tight) depend on this row only: one string for either
        pl.when(pl.col("_outside_fail")).then(
            pl.format("memory outside the budget (allocated after profiling: CUDA context, graphs not reserved "
                      "in the budget, sampler warm-up) {} GiB > (1 - util) x total {} GiB, short by {} GiB: out "
                      "of memory at start-up", pl.col("_outside").round(2),
                      ((1 - pl.col("gpu_memory_utilization")) * pl.col("gpu_memory_gib")).round(2),
                      (-pl.col("_outside_margin")).round(2)))
        .otherwise(
            pl.format("memory outside the budget (allocated after profiling) {} GiB vs (1 - util) x total {} GiB: "
                      "margin {} GiB, near the out-of-memory boundary", pl.col("_outside").round(2),
                      ((1 - pl.col("gpu_memory_utilization")) * pl.col("gpu_memory_gib")).round(2),
                      pl.col("_outside_margin").round(2)))
        .alias("_r_out"),
    ]


# concurrency_limited_by values, by code: a request's blocks are mostly KV tokens (attention groups) or
# mostly recurrent-state blocks (hybrids' state groups); or the scheduler's max_num_seqs caps first
LIMITS = ("kv_tokens", "state_slots", "max_num_seqs")

# verdict codes -> (status, reason); 0 = fits.  Numeric codes then one lookup: a when-chain of
# string literals costs ~10x more per cell than this (measured on 2.6 M cells).
VERDICTS = (
    ("fits", ""),
    ("no_fit", "no memory left for the KV cache: weights + activation + non-torch (+ graphs) exceed the budget"),
    ("no_fit", "one request of max_model_len does not fit in the KV cache"),
    ("no_fit", "memory outside the budget: CUDA context + graphs + sampler warm-up exceed (1 - util) x total"),
    ("no_fit", "the target concurrency does not fit in the KV cache"),
    ("tight", "KV headroom under 10 %"),
    ("tight", "memory allocated after profiling is near (1 - util) x total"),
    ("no_fit", "kv_cache_memory_bytes + weights + activation + non-torch + graphs + CUDA context exceed the GPU "
               "(a fixed KV size skips vLLM's utilization budget)"),
    ("no_fit", "no memory left for the KV cache: the multimodal encoder profile takes it -- vLLM runs the vision "
               "tower on its largest dummy item (for a video-capable Qwen-VL, a video sized by max_model_len) in "
               "one forward and fails at start-up (\"No available memory for the cache blocks\"); a smaller "
               "max_model_len or limit_mm_per_prompt video=0 shrinks the item"),
)
FIXED_KV_FAIL = 7
ENCODER_FAIL = 8
# codes whose reason carries a number of their row (built in util_pass, picked per cell)
DYNAMIC_REASONS = {2: "_r_len", 3: "_r_out", 6: "_r_out"}
# band around (1 - util) x total in which a start is called tight rather than fits / no_fit: the
# outside terms are estimates (start-up snapshot, graphs, warm-up buffers, allocator slack).  0.5 GiB =
# the model's error on the one logged start it cannot place: gpt-oss-20b on one H100 at util 0.95
# failed in the sampler warm-up short by 0.23 GiB (row G01: 786 MiB asked, 552 MiB free) where the
# model leaves +0.22 GiB.  Every logged successful start sits at >= 0 (worst: row 87, Llama-3.3-70B
# fp8 TP 2, +0.04) and the TP 2 failure G02 at -0.73 (overheads.py, "Memory outside the budget")
TIGHT_OUTSIDE_GIB = 0.5
# ``_outside_margin`` of a job whose KV cache vLLM sizes from measured memory (0.34+): no allocation follows the
# sizing, so the out-of-memory-after-profiling verdicts (codes 3 / 6) never apply
NO_OUTSIDE_MARGIN = 1e9


def verdict_codes(pre: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """All (status, reason) pairs of a matrix: the verdicts, then its layouts' own pairs
    (invalid_layout / unsupported with their reasons), indexed by ``_pcode``."""
    return list(VERDICTS) + [(s, r or "") for s, r in pre]


def length_reason(max_model_len: int, limit: int) -> str:
    return (f"max_model_len {max_model_len} exceeds the model's maximum {limit} "
            f"(vLLM refuses to start unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1)")


def length_codes(limits: list[int], lens: list[int], first: int) -> tuple[list[tuple[str, str]], pl.DataFrame]:
    """The (status, reason) pairs of every (model limit, max_model_len) pair vLLM refuses, numbered
    from ``first``, and the table ``(max_pos, max_model_len) -> _lcode`` the matrix joins per cell
    (a few rows: distinct limits x context axis values; no string is built per cell)."""
    pairs = sorted({(int(lim), int(m)) for lim in limits if lim for m in lens if m > lim})
    codes = [("invalid_layout", length_reason(m, lim)) for lim, m in pairs]
    table = pl.DataFrame({"max_pos": [p[0] for p in pairs], "max_model_len": [p[1] for p in pairs],
                          "_lcode": list(range(first, first + len(pairs)))},
                         schema={"max_pos": pl.Int64, "max_model_len": pl.Int64, "_lcode": pl.UInt16})
    return codes, table


NO_ROW_CODE = 2**32 - 1      # ``_rpre`` of a length row without a row verdict (``_pre`` null)


def reason_ids(codes: list[tuple[str, str]], pre: np.ndarray, n_rows: int, per_len_rows: bool,
               need_len: np.ndarray, need_out: np.ndarray) -> np.ndarray:
    """The reason / status table index (``reason_table``) of per-length row verdict codes ``pre`` (one per
    length row, ``length * n_rows + u``; a code ``NO_ROW_CODE`` stays so): a static code is its own index;
    2 (one request does not fit) the row's ``_r_len`` -- per (length, row) with ``per_len_rows``, else per
    row --; 3 (out of memory outside the budget) and 6 (tight there) the row's ``_r_out``, in a segment of
    their own each (their statuses differ).  The segments hold only the rows ``need_len`` (code 2) /
    ``need_out`` (codes 3, 6) -- sorted, every row with the code among them -- in that order."""
    out = np.array(pre, dtype=np.uint32)
    first = len(codes)
    for code, base, need in ((2, first, need_len), (3, first + need_len.size, need_out),
                             (6, first + need_len.size + need_out.size, need_out)):
        at = np.flatnonzero(out == code)      # few rows: index them, not the whole array
        out[at] = base + np.searchsorted(need, at if code == 2 and per_len_rows else at % max(n_rows, 1))
    return out



def reason_table(codes: list[tuple[str, str]], rows: pl.DataFrame, need_len: pl.Series,
                 need_out: pl.Series, len_rows: pl.DataFrame | None = None) -> tuple[pl.Series, pl.Series]:
    """The (status, reason) strings ``cell_pass``'s index picks: every code's static pair, then the rows'
    ``_r_len`` (code 2: no_fit) and ``_r_out`` twice (code 3: no_fit, then code 6: tight) -- codes 2 and
    3 / 6 carry their row's numbers --, formatted only for the rows ``need_len`` / ``need_out`` (the rows
    some cell has that code for), one entry each in that order (``reason_ids``): a few thousand strings,
    not a null-padded entry per row (that table was ~1.4 M entries on the benchmark, and ~0.07 s to build)."""
    static = pl.Series([r for _, r in codes], dtype=pl.String)
    r_len, r_out = row_reasons()
    parts = [static]
    for need, expr, frame in ((need_len, r_len, rows if len_rows is None else len_rows), (need_out, r_out, rows)):
        sub = frame.select(list(dict.fromkeys(expr.meta.root_names())))[need]
        parts.append(sub.select(expr).to_series().cast(pl.String))
    parts.append(parts[-1])
    n_len, n_out = parts[1].len(), parts[2].len()
    statuses = pl.concat([pl.Series([s for s, _ in codes], dtype=pl.String),
                          pl.repeat(VERDICTS[2][0], n_len, dtype=pl.String, eager=True),
                          pl.repeat(VERDICTS[3][0], n_out, dtype=pl.String, eager=True),
                          pl.repeat(VERDICTS[6][0], n_out, dtype=pl.String, eager=True)]).rechunk()
    return statuses.rename("status"), pl.concat(parts).rechunk().rename("reason")
