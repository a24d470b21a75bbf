"""Shape a results table into what the HTML/PDF templates show.

Why a separate module: templates should only lay things out.  Every decision
about *what* a reader sees — which cell is "the cheapest layout that fits",
how a matrix is keyed and paged, how numbers are rounded, which row stands for
a GPU in a model's memory bar — is made here, once, with polars expressions
(no per-row Python beyond the final walk that hands cells to Jinja), so the
HTML and the PDF agree and a 100-model report renders in well under the
2-second target.

Matrix aggregation (PRODUCT.md §2, issue 6): one matrix per context length ×
weight dtype (× KV dtype, gpu_memory_utilization or vLLM profile when the run
varies them).  Rows are models; columns are GPU × layout (TP × PP, plus DP/EP
when they vary), grouped under a GPU header and ordered by GPU count so the
cheapest layouts come first.  Two axes deliberately do not multiply matrices:
  * concurrency targets fold into the cell (``_fold_concurrency``): the number
    shown, max concurrency, does not depend on the target; the colour is the
    status at the largest target and the tooltip lists every target;
  * settings that take one value per GPU (vLLM's default max_num_batched_tokens
    / max_num_seqs depend on device size) are GPU properties, shown in the GPU
    table, not scenarios (``split_axes``).
For the default job (20 models × 8 GPUs × 8 layouts × 2 dtypes × 3 contexts ×
2 targets) that is 6 matrices of 20 × 64 cells.  The HTML shows them whole
(with a matrix selector, GPU column toggles and a model filter); the PDF splits
each into tables of whole GPUs that fit the page width (``max_columns``)
rather than shrinking them, and leaves them out — saying so — when the PDF
would exceed its page budget.

The "cheapest layout that fits" summary is a pivot (model × context/scenario);
the same rows, flat and sortable, are the XLSX "Cheapest fit" sheet.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, NamedTuple

import polars as pl

from reportgen import results as R

# Above these sizes the matrices are left out (the summary, model sections and
# errors remain) and the report says so: a browser page or a PDF of that size is
# not something a reader can use, and rendering it would blow the time targets
# (HTML 2 s, PDF 30 s for 100 models).  The CSV/XLSX/Parquet keep every cell.
HTML_MATRIX_CELL_LIMIT = 300_000
# WeasyPrint lays out ~3 pages/s on the 2-core target, so the PDF is budgeted in pages
# (30 s target ≈ 90 pages; 80 keeps a margin).  Page costs measured on our own output
# (A4 landscape): ~290 matrix cells, ~7 cheapest-fit table rows (12 columns), ~0.08
# page per model × GPU memory bar.  The default job (20 models) estimates 45 pages and
# renders 45.
PDF_PAGE_BUDGET = 80
PDF_CELLS_PER_PAGE = 290
PDF_SUMMARY_ROWS_PER_PAGE = 7
PDF_PAGES_PER_BAR = 0.08
SUMMARY_MAX_COLUMNS = 12            # context × scenario columns per cheapest-fit table in the PDF

# status -> (symbol, label, legend text); the symbol makes cells readable in greyscale.
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    "fits": ("✓", "fits", f"fits, with at least {R.TIGHT_HEADROOM_PCT:g} % of the KV budget to spare"),
    "tight": ("◐", "tight", f"fits, but with less than {R.TIGHT_HEADROOM_PCT:g} % headroom"),
    "no_fit": ("✗", "no fit", "does not fit: weights, activations or the KV cache for the target exceed memory"),
    "invalid_layout": ("⊘", "invalid layout", "the layout breaks a validity rule (heads % tp, GPUs per node, ...)"),
    "unsupported": ("?", "unsupported", "an architecture feature the estimator does not model"),
    "error": ("!", "error", "the estimator failed on this cell"),
}
MISSING_CELL = ("s-none", "", "", "", "not evaluated in this run")

LAYOUT_AXES = ("tp", "pp", "dp", "ep")
# axes that split matrices when they take more than one value (context and weight dtype always do)
SCENARIO_AXES = ("kv_cache_dtype", "concurrency", "gpu_memory_utilization",
                 "max_num_batched_tokens", "max_num_seqs", "vllm_version")
AXIS_LABEL = {
    "max_model_len": "context", "weight_dtype": "weights", "kv_cache_dtype": "KV dtype",
    "concurrency": "concurrency", "gpu_memory_utilization": "util",
    "max_num_batched_tokens": "batched tokens", "max_num_seqs": "max seqs", "vllm_version": "vLLM",
    "tp": "TP", "pp": "PP", "dp": "DP", "ep": "EP",
}
BAR_TERMS = (
    ("weights_gib", "weights", "w"),
    ("activation_gib", "activation peak", "a"),
    ("non_torch_gib", "non-torch", "n"),
    ("cuda_graph_gib", "CUDA graphs", "g"),
    ("kv_cache_gib", "KV cache", "k"),
)


# the keys the templates read from meta["models"] / meta["gpus"] entries (missing ones become None)
MODEL_KEYS = ("model_type", "params_total", "params_active", "kv_bytes_per_token", "config_source",
              "revision", "unsupported_reason", "architecture")
GPU_KEYS = ("name", "usable_memory_gib", "price_usd_hr", "gpus_per_node")


class Cell(NamedTuple):
    """One matrix cell as the template needs it (pre-formatted, pre-escaped by Jinja)."""

    cls: str      # CSS class: s-<status>
    sym: str      # status symbol (greyscale legend)
    txt: str      # max concurrency
    head: str     # headroom %
    tip: str      # tooltip: memory breakdown and reason


# --- small formatters (used in templates through the context too) -----------------------------

def fmt_ctx(n: int | None) -> str:
    """8192 -> '8k', 131072 -> '128k', 1_048_576 -> '1M'; other values as digits.

    'k' is 1024 tokens, as people say "128k context" for 131072; a decimal value
    such as 128000 would read as "125k", so it is shown in digits instead.
    """
    if n is None:
        return "—"
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    kib = n >> 10
    if n >= 1024 and n % 1024 == 0 and (kib & (kib - 1) == 0 or kib % 8 == 0):
        return f"{kib}k"
    return f"{n:,}"


def fmt_params(n: int | float | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "—"
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return str(int(n))


def fmt_bytes(n: float | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "—"
    for div, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= div:
            return f"{n / div:.4g} {unit}"
    return f"{n:.0f} B"


def fmt_num(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:,.{digits}f}"


def fmt_conc(v: float | None) -> str:
    """Max concurrency: one decimal below 10, integers above, 'k' from 10 000."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if v < 10:
        return f"{v:.1f}"
    if v < 10_000:
        return f"{v:.0f}"
    return f"{v / 1000:.0f}k"


def fmt_price(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"${v:,.2f}"


def fmt_time(iso: str | None) -> str:
    """'2026-11-26T02:00:00Z' -> '2026-11-26 02:00 UTC' (the input as-is when not ISO)."""
    if not iso:
        return "—"
    try:
        t = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def layout_label(tp: int, pp: int, dp: int = 1, ep: bool = False) -> str:
    parts = [f"TP{tp}", f"PP{pp}"]
    if dp and dp > 1:
        parts.append(f"DP{dp}")
    if ep:
        parts.append("EP")
    return "·".join(parts)


# --- expressions -------------------------------------------------------------------------------

def _str_num(expr: pl.Expr, digits: int) -> pl.Expr:
    return expr.round(digits).cast(pl.String)


def _conc_expr(col: str = "max_concurrency") -> pl.Expr:
    c = pl.col(col)
    return (
        pl.when(c.is_null()).then(pl.lit(""))
        .when(c < 10).then(_str_num(c, 1))
        .when(c < 10_000).then(c.round(0).cast(pl.Int64).cast(pl.String))
        .otherwise((c / 1000).round(0).cast(pl.Int64).cast(pl.String) + pl.lit("k"))
    )


def _cell_exprs() -> list[pl.Expr]:
    """cls / sym / txt / head / tip for every row, vectorised."""
    st = pl.col("status")
    sym = st.replace_strict({k: v[0] for k, v in STATUS_STYLE.items()}, default="")
    show_conc = st.is_in(["fits", "tight"]) | ((st == "no_fit") & (pl.col("kv_cache_gib") > 0))
    head = pl.col("headroom_pct")
    gib = lambda c: pl.col(c).round(2).cast(pl.String).fill_null("—")  # noqa: E731
    memory = pl.concat_str(
        [
            pl.lit("\nweights "), gib("weights_gib"),
            pl.lit(" GiB\nactivation peak "), gib("activation_gib"),
            pl.lit(" GiB\nnon-torch "), gib("non_torch_gib"),
            pl.lit(" GiB\nCUDA graphs "), gib("cuda_graph_gib"),
            pl.lit(" GiB\nKV cache "), gib("kv_cache_gib"),
            pl.lit(" GiB (needed "), gib("kv_needed_gib"),
            pl.lit(" GiB)\nheadroom "), _str_num(head, 1).fill_null("—"),
            pl.lit(" %\nKV tokens "), pl.col("kv_cache_tokens").cast(pl.String).fill_null("—"),
            pl.lit(" · max concurrency "), _conc_expr().replace("", "—"),
            pl.lit(" · worst rank "), pl.col("worst_rank").fill_null("—"),
        ]
    )
    has_memory = pl.col("weights_gib").is_not_null()
    tip = pl.concat_str(
        [
            pl.col("model"), pl.lit("\n"), pl.col("gpu_name").fill_null(pl.col("gpu")),
            pl.lit(" · "), pl.col("_layout"), pl.lit(" · "), pl.col("gpus").cast(pl.String),
            pl.lit(" GPU(s) · "), pl.col("weight_scheme").fill_null(pl.col("weight_dtype")),
            pl.lit("\nstatus: "), st,
            pl.when(pl.col("reason").fill_null("") != "")
            .then(pl.lit(" — ") + pl.col("reason")).otherwise(pl.lit("")),
            pl.when(has_memory).then(memory).otherwise(pl.lit("")),
            pl.when(pl.col("price_usd_hr").is_not_null())
            .then(pl.lit("\n$") + pl.col("price_usd_hr").round(2).cast(pl.String) + pl.lit(" per hour"))
            .otherwise(pl.lit("")),
        ]
    )
    return [
        (pl.lit("s-") + st).alias("_cls"),
        sym.alias("_sym"),
        pl.when(show_conc).then(_conc_expr()).otherwise(pl.lit("")).alias("_txt"),
        pl.when(head.is_not_null()).then(_str_num(head, 0).str.replace(r"\.0$", "") + pl.lit("%"))
        .otherwise(pl.lit("")).alias("_head"),
        tip.alias("_tip"),
    ]


def _layout_expr(show_dp: bool, show_ep: bool) -> pl.Expr:
    parts = [pl.lit("TP"), pl.col("tp").cast(pl.String), pl.lit("·PP"), pl.col("pp").cast(pl.String)]
    if show_dp:
        parts += [pl.lit("·DP"), pl.col("dp").cast(pl.String)]
    if show_ep:
        parts += [pl.when(pl.col("ep")).then(pl.lit("·EP")).otherwise(pl.lit(""))]
    return pl.concat_str(parts)


# --- the report --------------------------------------------------------------------------------

def _ordered_unique(series: pl.Series) -> list:
    """Distinct non-null values in order of first appearance."""
    return series.drop_nulls().unique(maintain_order=True).to_list()


def _varying(df: pl.DataFrame, cols: tuple[str, ...]) -> list[str]:
    return [c for c in cols if c in df.columns and df[c].drop_nulls().n_unique() > 1]


def split_axes(df: pl.DataFrame) -> tuple[list[str], list[str]]:
    """(scenario axes, per-GPU settings) among SCENARIO_AXES that vary in ``df``.

    A setting that takes one value per GPU (vLLM's max_num_batched_tokens and
    max_num_seqs defaults depend on the device size) is a property of the GPU
    column, not a scenario: splitting matrices by it would give each matrix only
    some of the GPUs.  Those are shown beside the GPU instead.
    """
    scenario, per_gpu = [], []
    for c in _varying(df, SCENARIO_AXES):
        within = df.filter(pl.col("gpu").is_not_null()).group_by("gpu").agg(pl.col(c).drop_nulls().n_unique())
        (per_gpu if within[c].max() <= 1 else scenario).append(c)
    return scenario, per_gpu


def _scenario_label(key: dict[str, Any]) -> str:
    bits = []
    for k, v in key.items():
        if k == "max_model_len":
            bits.append(f"{fmt_ctx(v)} context")
        elif k == "weight_dtype":
            bits.append(f"{v} weights")
        else:
            bits.append(f"{AXIS_LABEL.get(k, k)} {v}")
    return " · ".join(bits)


def build_report(
    results: pl.DataFrame,
    errors: pl.DataFrame | None,
    meta: dict | None,
    *,
    medium: str = "html",
    max_columns: int = 16,
) -> dict[str, Any]:
    """Everything the templates render, as plain Python values.

    ``medium`` is "html" (matrices whole) or "pdf" (matrices split into tables
    of at most ``max_columns`` GPU × layout columns, whole GPUs per table).
    """
    meta = dict(meta or {})
    res = R.conform(results) if results.columns != R.COLUMN_NAMES else results
    res = res.filter(pl.col("model").is_not_null())       # a row without a model cannot be placed anywhere
    errs = errors if errors is not None else pl.DataFrame(schema=R.ERROR_SCHEMA)

    models = _model_order(res, meta)
    gpus = _gpu_order(res, meta)
    notes: list[str] = [str(n) for n in meta.get("notes") or []]
    for s in meta.get("skipped_outputs") or []:
        notes.append(f"{s.get('output', '?')} was not written: {s.get('reason', '')}"
                     if isinstance(s, dict) else str(s))

    scenario, per_gpu = split_axes(res)
    scen_axes = ["max_model_len", "weight_dtype", *scenario]
    if per_gpu:
        values = res.filter(pl.col("gpu").is_not_null()).group_by("gpu").agg(pl.col(per_gpu).drop_nulls().first())
        by_gpu = {r["gpu"]: r for r in values.iter_rows(named=True)}
        for g in gpus:
            g["settings"] = [by_gpu.get(g["id"], {}).get(a) for a in per_gpu]
    layout_axes = ["tp", "pp", *_varying(res, ("dp", "ep"))]

    summary = _summary(res, models, scen_axes)
    summary_tables = _summary_tables(summary, models, scen_axes, medium, SUMMARY_MAX_COLUMNS)
    # concurrency targets do not get matrices of their own: see _fold_concurrency
    matrix_axes = [a for a in scen_axes if a != "concurrency"]
    targets = sorted(res["concurrency"].drop_nulls().unique().to_list())
    # rows of models that never reached the matrix (no layout / context) belong to the errors table
    placed = res.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in ("gpu", *LAYOUT_AXES, *scen_axes)))
    n_matrix_cells = placed.select("model", "gpu", *LAYOUT_AXES, *matrix_axes).n_unique() if placed.height else 0
    matrices: list[dict] = []
    too_big = None
    if medium == "html" and n_matrix_cells > HTML_MATRIX_CELL_LIMIT:
        too_big = f"{n_matrix_cells:,} matrix cells exceed its limit of {HTML_MATRIX_CELL_LIMIT:,}. "
    elif medium == "pdf":
        pages = estimate_pdf_pages(n_matrix_cells, sum(len(t["rows"]) for t in summary_tables),
                                   len(models), len(gpus))
        if pages > PDF_PAGE_BUDGET:
            too_big = (f"its {n_matrix_cells:,} matrix cells would take it to about {pages:,} pages, over the "
                       f"budget of {PDF_PAGE_BUDGET} pages. The HTML report has them; ")
    if too_big:
        notes.append(f"The fit matrices are left out of this {medium.upper()} report: {too_big}"
                     "results.parquet and results.csv hold every cell; the summary and model sections "
                     "cover all models.")
    elif n_matrix_cells:
        matrices = _matrices(placed, models, gpus, matrix_axes, layout_axes, medium, max_columns)

    status_counts = {s: 0 for s in R.STATUSES}
    for s, n in res.group_by("status").len().iter_rows():
        if s in status_counts:
            status_counts[s] = n

    return {
        "medium": medium,
        "title": _title(res, meta),
        "assumptions": _assumptions(res, meta),
        "gpus": gpus,
        "n_models": len(models),
        "n_cells": res.height,
        "status_counts": status_counts,
        "legend": [(s, *STATUS_STYLE[s]) for s in R.STATUSES],
        "scenario_axes": [AXIS_LABEL.get(a, a) for a in matrix_axes],
        "concurrency_targets": targets,
        "gpu_settings": [AXIS_LABEL.get(a, a) for a in per_gpu],
        "matrices": matrices,
        "summary": summary,
        "summary_tables": summary_tables,
        "summary_axes": [a for a in scen_axes if a not in ("max_model_len",)],
        "models": _model_sections(res, models, gpus, scen_axes),
        "errors": _error_rows(errs),
        "cell_errors": _cell_errors(res),
        "notes": notes,
        "axis_label": AXIS_LABEL,
    }


def estimate_pdf_pages(matrix_cells: int, summary_rows: int, n_models: int, n_gpus: int) -> int:
    """Rough page count of the PDF with its matrices (the title page and errors count as 2).

    ``summary_rows`` counts rows over all cheapest-fit tables (a model appears once per table).
    """
    return math.ceil(matrix_cells / PDF_CELLS_PER_PAGE + summary_rows / PDF_SUMMARY_ROWS_PER_PAGE
                     + n_models * n_gpus * PDF_PAGES_PER_BAR + 2)


def _model_order(res: pl.DataFrame, meta: dict) -> list[dict]:
    """Models in the job's order (meta), then any others found in the results."""
    out: list[dict] = []
    seen: set[str] = set()
    for m in meta.get("models") or []:
        if isinstance(m, dict) and m.get("id") is not None and m["id"] not in seen:
            out.append(dict(m))
            seen.add(m["id"])
    if res.height:
        extra = (
            res.filter(~pl.col("model").is_in(list(seen)))
            .group_by("model", maintain_order=True)
            .agg(pl.col("model_type", "params_total", "params_active", "config_source", "revision")
                 .drop_nulls().first(),
                 pl.col("kv_bytes_per_token").max(),
                 pl.col("reason").filter(pl.col("status") == "unsupported").first().alias("unsupported_reason"))
        )
        for r in extra.iter_rows(named=True):
            out.append({"id": r.pop("model"), **r})
    for i, m in enumerate(out):
        for k in MODEL_KEYS:
            m.setdefault(k, None)
        m["anchor"] = f"model-{i}"
    return out


def _gpu_order(res: pl.DataFrame, meta: dict) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    in_results = set(res["gpu"].unique().to_list()) if res.height else set()
    for g in meta.get("gpus") or []:
        if isinstance(g, dict) and g.get("id") is not None and g["id"] not in seen:
            out.append(dict(g))
            seen.add(g["id"])
    if res.height:
        extra = (res.filter(~pl.col("gpu").is_in(list(seen)))
                 .group_by("gpu", maintain_order=True)
                 .agg(pl.col("gpu_name").first(), pl.col("gpu_memory_gib").first(),
                      (pl.col("price_usd_hr") / pl.col("gpus")).first().alias("price_usd_hr")))
        for r in extra.iter_rows(named=True):
            out.append({"id": r["gpu"], "name": r["gpu_name"], "usable_memory_gib": r["gpu_memory_gib"],
                        "price_usd_hr": r["price_usd_hr"]})
    for g in out:
        for k in GPU_KEYS:
            g.setdefault(k, None)
        g["name"] = g.get("name") or g["id"]
        g["in_results"] = g["id"] in in_results
    return out


def _title(res: pl.DataFrame, meta: dict) -> dict:
    vllm = meta.get("vllm_version")
    if not vllm and res.height:
        vllm = ", ".join(str(v) for v in _ordered_unique(res["vllm_version"].drop_nulls()))
    return {
        "job_name": meta.get("job_name") or "reportgen run",
        "run_started": fmt_time(meta.get("run_started")),
        "run_started_iso": meta.get("run_started") or "",
        "tool_version": meta.get("tool_version") or "—",
        "catalog_version": meta.get("catalog_version") or "—",
        "vllm_version": vllm or "—",
        "inputs_hash": meta.get("inputs_hash") or "—",
    }


def _assumptions(res: pl.DataFrame, meta: dict) -> list[tuple[str, str]]:
    """The run's assumptions: meta's dict first, then the axes as the results show them."""
    rows: list[tuple[str, str]] = []
    given = meta.get("assumptions") or {}
    for k, v in given.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        rows.append((str(k), "—" if v is None else str(v)))
    if res.height:
        def vals(col: str, fmt=str) -> str:
            return ", ".join(fmt(v) for v in sorted(res[col].drop_nulls().unique().to_list()))
        derived = [
            ("context lengths (max_model_len)", vals("max_model_len", fmt_ctx)),
            ("weight dtypes", ", ".join(str(v) for v in _ordered_unique(res["weight_dtype"].drop_nulls()))),
            ("concurrency targets", vals("concurrency")),
            ("tensor parallel", vals("tp")),
            ("pipeline parallel", vals("pp")),
        ]
        if res["dp"].drop_nulls().n_unique() > 1:
            derived.append(("data parallel", vals("dp")))
        if bool(res["ep"].any()):
            derived.append(("expert parallel", vals("ep")))
        have = {k for k, _ in rows}
        rows += [d for d in derived if d[0] not in have]
    return rows


def _matrices(res, models, gpus, scen_axes, layout_axes, medium, max_columns) -> list[dict]:
    model_idx = {m["id"]: i for i, m in enumerate(models)}
    gpu_idx = {g["id"]: i for i, g in enumerate(gpus)}
    show_dp, show_ep = "dp" in layout_axes, "ep" in layout_axes
    df = res.with_columns(_layout_expr(show_dp, show_ep).alias("_layout")).with_columns(_cell_exprs())
    df = _fold_concurrency(df, scen_axes)

    # columns: per GPU (job order), its layouts ordered by GPU count, then fewer pipeline stages
    cols = (df.select("gpu", *LAYOUT_AXES, "gpus", "_layout").unique()
            .with_columns(pl.col("gpu").replace_strict(gpu_idx, return_dtype=pl.Int64).alias("_g"))
            .sort("_g", "gpus", "pp", "dp", "tp", "ep"))
    columns = cols.select("_g", "gpu", *LAYOUT_AXES, "_layout").rows(named=True)
    col_idx = {(c["gpu"], c["_layout"]): i for i, c in enumerate(columns)}

    keyed = df.with_columns(
        pl.col("model").replace_strict(model_idx, return_dtype=pl.Int64).alias("_m"),
        pl.concat_str(["gpu", "_layout"], separator="\x1f")
        .replace_strict({f"{g}\x1f{l}": i for (g, l), i in col_idx.items()}, return_dtype=pl.Int64).alias("_c"),
    )
    keys = keyed.select(scen_axes).unique().sort(scen_axes, nulls_last=True)
    # stable scenario order: contexts ascending, weight dtypes as they appear in the run
    wd_order = {v: i for i, v in enumerate(_ordered_unique(res["weight_dtype"]))}
    key_rows = sorted(keys.rows(named=True),
                      key=lambda k: (k["max_model_len"] is None, k["max_model_len"] or 0,
                                     wd_order.get(k["weight_dtype"], 0), *[str(k[a]) for a in scen_axes[2:]]))
    key_id = {tuple(k.values()): i for i, k in enumerate(key_rows)}

    n_cols, n_models = len(columns), len(models)
    grids = [[[None] * n_cols for _ in range(n_models)] for _ in key_rows]
    it = keyed.select(*scen_axes, "_m", "_c", "_cls", "_sym", "_txt", "_head", "_tip").iter_rows()
    na = len(scen_axes)
    for row in it:
        grids[key_id[row[:na]]][row[na]][row[na + 1]] = Cell(*row[na + 2:])
    missing = Cell(*MISSING_CELL)

    # GPU header spans and chunk boundaries (whole GPUs per chunk unless a GPU alone is too wide)
    spans: list[tuple[int, int, int]] = []   # (gpu index, start col, end col)
    start = 0
    for i in range(1, n_cols + 1):
        if i == n_cols or columns[i]["_g"] != columns[start]["_g"]:
            spans.append((columns[start]["_g"], start, i))
            start = i
    if medium == "html":
        chunks = [(0, n_cols)]
    else:
        chunks, a, b = [], 0, 0
        for _, s, e in spans:
            if e - s > max_columns:                       # one GPU wider than a page: split it
                if b > a:
                    chunks.append((a, b))
                for x in range(s, e, max_columns):
                    chunks.append((x, min(e, x + max_columns)))
                a = b = e
            elif e - a > max_columns:
                chunks.append((a, b))
                a, b = s, e
            else:
                b = e
        if b > a:
            chunks.append((a, b))

    out = []
    for key, grid in zip(key_rows, grids):
        # rows with no cell at all in this scenario (e.g. a model evaluated only at some contexts) are dropped
        rows = [(models[mi], [c or missing for c in cells]) for mi, cells in enumerate(grid)
                if any(c is not None for c in cells)]
        parts = []
        for ci, (a, b) in enumerate(chunks):
            head_gpus = []
            for g, s, e in spans:
                lo, hi = max(s, a), min(e, b)
                if lo < hi:
                    head_gpus.append((gpus[g], hi - lo, gpus[g]["id"]))
            layout_rows = []
            for ax in layout_axes:
                vals = [columns[j][ax] for j in range(a, b)]
                if ax == "ep":
                    vals = ["EP" if v else "—" for v in vals]
                layout_rows.append((AXIS_LABEL[ax], vals))
            parts.append({
                "index": ci + 1,
                "of": len(chunks),
                "gpus": head_gpus,
                "layout_rows": layout_rows,
                "col_gpus": [columns[j]["gpu"] for j in range(a, b)],
                # first column of each GPU group (drawn with a heavier left rule)
                "starts": frozenset(j - a for j in range(a, b)
                                    if j == a or columns[j]["_g"] != columns[j - 1]["_g"]),
                "rows": [(m, cells[a:b]) for m, cells in rows],
            })
        ident = "m-" + "-".join(str(v) for v in key.values())
        out.append({
            "id": "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in ident),
            "key": key,
            "context": fmt_ctx(key["max_model_len"]),
            "label": _scenario_label(key),
            "parts": parts,
            "n_cells": sum(len(r[1]) for r in rows),
        })
    return out


def _fold_concurrency(df: pl.DataFrame, matrix_axes: list[str]) -> pl.DataFrame:
    """One cell per GPU × layout × scenario, whatever the number of concurrency targets.

    The cell's number (max concurrency: how many full-context requests fit) does
    not depend on the target; only the status does.  So rather than a matrix per
    target, the cell is coloured by its status at the *largest* target and the
    tooltip lists the status and headroom at every target — a smaller target is
    met exactly when the number reaches it.  This halves the default job's
    matrices (targets 1 and 32) without hiding anything.
    """
    if df["concurrency"].drop_nulls().n_unique() <= 1:
        return df
    keys = ["model", "gpu", "_layout", *matrix_axes]
    line = pl.concat_str([
        pl.lit("concurrency "), pl.col("concurrency").cast(pl.String), pl.lit(": "), pl.col("status"),
        pl.when(pl.col("headroom_pct").is_not_null())
        .then(pl.lit(" (headroom ") + _str_num(pl.col("headroom_pct"), 1) + pl.lit(" %)"))
        .otherwise(pl.lit("")),
    ])
    folded = (df.with_columns(line.alias("_tline"))
              .sort("concurrency", nulls_last=False)
              .group_by(keys, maintain_order=True)
              .agg(pl.all().exclude("_tline").last(), pl.col("_tline").str.join("\n")))
    return folded.with_columns(
        (pl.col("_tip") + pl.lit("\n— status by concurrency target —\n") + pl.col("_tline")).alias("_tip"))


def _summary(res: pl.DataFrame, models: list[dict], scen_axes: list[str]) -> list[dict]:
    """Cheapest fitting layout per model × context × scenario.

    "Cheapest" = lowest $/hour among fits/tight cells whose GPU has a price;
    cells on unpriced GPUs rank after every priced one, by GPU count; ties go
    to more headroom.  A group with no fitting cell gets the reason why.
    """
    if not res.height:
        return []
    keys = ["model", *scen_axes]
    ok = res.filter(pl.col("status").is_in(["fits", "tight"]))
    best = (ok.sort(["price_usd_hr", "gpus", "headroom_pct"], descending=[False, False, True], nulls_last=True)
            .group_by(keys, maintain_order=True).first())
    groups = res.group_by(keys).agg(
        pl.col("status").is_in(["no_fit"]).any().alias("_any_nofit"),
        pl.col("status").is_in(["invalid_layout"]).all().alias("_all_invalid"),
        pl.col("reason").filter(pl.col("status") == "unsupported").first().alias("_unsup"),
        pl.col("reason").filter(pl.col("status") == "error").first().alias("_err"),
        pl.col("weights_gib").min().alias("_min_w"),
    )
    table = groups.join(best, on=keys, how="left", nulls_equal=True)
    order = {m["id"]: i for i, m in enumerate(models)}
    wd_order = {v: i for i, v in enumerate(_ordered_unique(res["weight_dtype"]))}
    rows = []
    for r in table.iter_rows(named=True):
        fit = r["status"] is not None
        status = r["status"]
        if fit:
            why = ""
        elif r["_unsup"]:
            why, status = r["_unsup"], "unsupported"
        elif r["_any_nofit"]:
            why, status = "no GPU × layout in this run fits", "no_fit"
        elif r["_err"]:
            why, status = r["_err"], "error"
        elif r["_all_invalid"]:
            why, status = "every layout is invalid for this model", "invalid_layout"
        else:
            why, status = "nothing fits", "no_fit"
        rows.append({
            "model": r["model"],
            "_order": (order.get(r["model"], 1 << 30), r["max_model_len"] or 0, wd_order.get(r["weight_dtype"], 0),
                       *[str(r[a]) for a in scen_axes[2:]]),
            "context": fmt_ctx(r["max_model_len"]),
            "context_n": r["max_model_len"],
            "axes": [r[a] for a in scen_axes[1:]],
            "fit": fit,
            "status": status,
            "sym": STATUS_STYLE[status][0],
            "status_label": STATUS_STYLE[status][1],
            "gpu": r["gpu_name"] or r["gpu"] or "",
            "layout": layout_label(r["tp"], r["pp"], r["dp"] or 1, bool(r["ep"])) if fit else "",
            "gpus": r["gpus"] if fit else None,
            "nodes": r["nodes"] if fit else None,
            "headroom": fmt_num(r["headroom_pct"], 1) if fit else "",
            "headroom_n": r["headroom_pct"] if fit else None,
            "max_concurrency": fmt_conc(r["max_concurrency"]) if fit else "",
            "max_concurrency_n": r["max_concurrency"] if fit else None,
            "kv_tokens": r["kv_cache_tokens"] if fit else None,
            "price": fmt_price(r["price_usd_hr"]) if fit else "",
            "price_n": r["price_usd_hr"] if fit else None,
            "why": why,
        })
    rows.sort(key=lambda x: x["_order"])
    return rows


def _summary_tables(rows: list[dict], models: list[dict], scen_axes: list[str], medium: str,
                    max_columns: int) -> list[dict]:
    """The cheapest-fit rows pivoted: one row per model, one column per context × scenario.

    A reader scans a model across contexts; the flat, sortable version is the
    XLSX "Cheapest fit" sheet.  The PDF splits the columns into tables of whole
    contexts no wider than ``max_columns``.
    """
    cols: list[tuple] = []
    cells: dict[tuple, dict] = {}
    failed: dict[str, str] = {}
    for r in rows:
        key = (r["context_n"], *r["axes"])
        if r["context_n"] is None:
            failed.setdefault(r["model"], r["why"])
            continue
        if key not in cols:
            cols.append(key)
        cells[(r["model"], key)] = r
    if not cols and not failed:
        return []
    cols.sort(key=lambda k: next(r["_order"][1:] for r in rows if (r["context_n"], *r["axes"]) == k))
    axis_names = [AXIS_LABEL.get(a, a) for a in scen_axes[1:]]
    # PDF: whole contexts per table
    chunks: list[list[tuple]] = []
    for k in cols:
        if chunks and chunks[-1][-1][0] == k[0]:
            chunks[-1].append(k)
        elif medium == "pdf" and chunks and len(chunks[-1]) + sum(1 for c in cols if c[0] == k[0]) <= max_columns:
            chunks[-1].append(k)
        else:
            chunks.append([k])
    if medium == "html":
        chunks = [cols]
    tables = []
    for part in chunks:
        groups: list[list] = []
        for k in part:
            if groups and groups[-1][0] == k[0]:
                groups[-1][1] += 1
            else:
                groups.append([k[0], 1])
        body = []
        for m in models:
            mid = m["id"]
            if mid in failed and not any((mid, k) in cells for k in cols):
                body.append({"model": m, "cells": None, "why": failed[mid]})
            elif any((mid, k) in cells for k in cols):
                body.append({"model": m, "cells": [cells.get((mid, k)) for k in part], "why": ""})
        tables.append({
            "groups": [(fmt_ctx(c), n) for c, n in groups],
            "axes": [(name, [k[i + 1] for k in part]) for i, name in enumerate(axis_names)],
            "n_cols": len(part),
            "starts": frozenset(i for i, k in enumerate(part) if i == 0 or part[i - 1][0] != k[0]),
            "rows": body,
        })
    return tables


def _model_sections(res: pl.DataFrame, models: list[dict], gpus: list[dict], scen_axes: list[str]) -> list[dict]:
    """Per model: its facts and one memory bar per GPU.

    The bar shows the reference scenario (smallest context, first weight dtype,
    largest concurrency target, first value of every other axis) on the layout a planner would pick: the
    fitting layout with the fewest GPUs (then most headroom); if none fits, the
    largest layout tried (the closest to fitting); otherwise the status alone.
    Beside it: the fewest GPUs that fit at each context.
    """
    sections = []
    if not res.height:
        return [{**m, "params_total_h": fmt_params(m.get("params_total")),
                 "params_active_h": fmt_params(m.get("params_active")), "moe": False,
                 "kv_per_token_h": fmt_bytes(m.get("kv_bytes_per_token") or None),
                 "architecture": _architecture(m), "components": _components(m), "error": m.get("error"),
                 "bars": [], "ref_label": ""}
                for m in models]
    def first(a: str):
        if a == "weight_dtype":
            return _ordered_unique(res[a])[0]
        vals = res[a].drop_nulls().sort()
        return vals[-1] if a == "concurrency" else vals[0]      # the largest target, as in the matrices

    ref = res
    for a in scen_axes[1:]:
        if res[a].drop_nulls().len():
            ref = ref.filter(pl.col(a) == first(a))
    ref_ctx = res["max_model_len"].min()
    ref_label = f"{fmt_ctx(ref_ctx)} context, {first('weight_dtype')} weights"
    if res["concurrency"].drop_nulls().len():
        ref_label += f", concurrency {first('concurrency')}"
    at_ref = ref.filter(pl.col("max_model_len") == ref_ctx)
    rank = (pl.when(pl.col("status").is_in(["fits", "tight"])).then(0)
            .when(pl.col("status") == "no_fit").then(1).otherwise(2))
    pick = (at_ref.with_columns(rank.alias("_rank"),
                                pl.when(pl.col("status").is_in(["fits", "tight"])).then(pl.col("gpus"))
                                .otherwise(-pl.col("gpus")).alias("_g"))
            .sort(["_rank", "_g", "headroom_pct"], descending=[False, False, True], nulls_last=True)
            .group_by(["model", "gpu"], maintain_order=True).first())
    picked = {(r["model"], r["gpu"]): r for r in pick.iter_rows(named=True)}
    smallest = (ref.filter(pl.col("status").is_in(["fits", "tight"]))
                .group_by(["model", "gpu", "max_model_len"]).agg(pl.col("gpus").min()))
    fewest: dict[tuple[str, str], dict[int, int]] = {}
    for m, g, ctx, n in smallest.iter_rows():
        fewest.setdefault((m, g), {})[ctx] = n
    contexts = sorted(res["max_model_len"].drop_nulls().unique().to_list())
    # what each weight-axis value costed for each model: "as shipped" names the checkpoint's scheme
    schemes: dict[str, list[str]] = {}
    for mid, wd, sch in (res.filter(pl.col("weight_scheme").is_not_null())
                         .select("model", "weight_dtype", "weight_scheme").unique(maintain_order=True).iter_rows()):
        label = f"as shipped: {sch}" if wd in ("checkpoint", "auto") else f"{wd} (what-if): {sch}"
        schemes.setdefault(mid, []).append(label)
    # the KV dtype each kv-axis value really allocated ("auto" resolved; fp8 on DSA = fp8_ds_mla)
    kv_used: dict[str, list[str]] = {}
    if "kv_cache_dtype_used" in res.columns:
        for mid, kd, used in (res.filter(pl.col("kv_cache_dtype_used").is_not_null())
                              .select("model", "kv_cache_dtype", "kv_cache_dtype_used")
                              .unique(maintain_order=True).iter_rows()):
            kv_used.setdefault(mid, []).append(used if kd == used else f"{kd} → {used}")

    for m in models:
        bars = []
        for g in gpus:
            r = picked.get((m["id"], g["id"]))
            if r is None:
                continue
            fit_by_ctx = [(fmt_ctx(c), fewest.get((m["id"], g["id"]), {}).get(c)) for c in contexts]
            bars.append(_bar(r, g, fit_by_ctx))
        sections.append({
            **m,
            "params_total_h": fmt_params(m.get("params_total")),
            "params_active_h": fmt_params(m.get("params_active")),
            "moe": bool(m.get("params_active") and m.get("params_total")
                        and m["params_active"] < m["params_total"]),
            # unknown is not zero: an unsupported model's KV size is not known
            "kv_per_token_h": fmt_bytes(m.get("kv_bytes_per_token") or None),
            "architecture": _architecture(m),
            "components": _components(m),
            "error": m.get("error"),
            "bars": bars,
            "ref_label": ref_label,
            "weight_schemes": schemes.get(m["id"], []),
            "kv_dtypes_used": kv_used.get(m["id"], []),
        })
    return sections


def _architecture(m: dict) -> str | None:
    """One line a reader can check against the model card, from the pipeline's model facts."""
    if m.get("architecture"):
        return str(m["architecture"])
    bits = []
    if m.get("num_layers"):
        bits.append(f"{m['num_layers']} layers")
    if m.get("hidden_size"):
        bits.append(f"hidden {m['hidden_size']:,}")
    heads, kv = m.get("num_attention_heads"), m.get("num_kv_heads")
    if heads:
        if m.get("is_mla"):
            bits.append(f"{heads} heads, MLA (latent KV)")
        elif kv:
            kind = "MHA" if kv == heads else "MQA" if kv == 1 else "GQA"
            bits.append(f"{heads} heads / {kv} KV heads ({kind})")
        else:
            bits.append(f"{heads} heads")
    if m.get("num_experts"):
        bits.append(f"{m['num_experts']} experts, {m.get('experts_per_token') or '?'} active")
    if m.get("vocab_size"):
        bits.append(f"vocab {m['vocab_size']:,}")
    if m.get("dtype"):
        bits.append(str(m["dtype"]))
    if m.get("multimodal"):
        bits.append("multimodal")
    return " · ".join(bits) or None


def _components(m: dict) -> list[tuple[str, str]]:
    comps = m.get("components")
    if not isinstance(comps, dict):
        return []
    return [(str(k).replace("_", " "), fmt_params(v)) for k, v in comps.items() if v]


def _bar(r: dict, gpu: dict, fit_by_ctx: list) -> dict:
    """Bar segments as % of the GPU's usable memory (or of the total when it overflows)."""
    mem = r["gpu_memory_gib"] or gpu.get("usable_memory_gib") or 0.0
    status = r["status"]
    segments = []
    if r["weights_gib"] is not None and mem:
        terms = [(label, cls, max(float(r[col] or 0.0), 0.0)) for col, label, cls in BAR_TERMS]
        util = r["gpu_memory_utilization"] or 0.0
        used = sum(t[2] for t in terms)
        reserved = max(mem - max(used, mem * util), 0.0)
        scale = max(mem, used)
        left = 0.0
        for label, cls, v in [*terms, (f"outside the budget (1 − util {util:g})", "r", reserved)]:
            if v > 0:
                pct = 100 * v / scale
                segments.append({"cls": cls, "label": label, "gib": v, "pct": pct, "left": left})
                left += pct
        overflow = used > mem * util + 1e-9
        need = sum(t[2] for t in terms[:4]) + float(r["kv_needed_gib"] or 0.0)
        need_pct = min(100 * need / scale, 100) if r["kv_needed_gib"] is not None else None
        limit_pct = 100 * mem * util / scale
    else:
        overflow, need_pct, limit_pct = False, None, None
    return {
        "gpu": gpu.get("name") or gpu["id"],
        "gpu_id": gpu["id"],
        "mem": mem,
        "layout": layout_label(r["tp"], r["pp"], r["dp"] or 1, bool(r["ep"])),
        "gpus": r["gpus"],
        "status": status,
        "sym": STATUS_STYLE.get(status, ("", status, ""))[0],
        "status_label": STATUS_STYLE.get(status, ("", status, ""))[1],
        "reason": r["reason"] or "",
        "headroom": fmt_num(r["headroom_pct"], 1),
        "max_concurrency": fmt_conc(r["max_concurrency"]),
        "segments": segments,
        "overflow": overflow,
        "need_pct": need_pct,
        "limit_pct": limit_pct,
        "fit_by_ctx": fit_by_ctx,
    }


def _error_rows(errs: pl.DataFrame) -> list[dict]:
    if errs is None or not errs.height:
        return []
    cols = [c for c, _, _ in R.ERROR_COLUMNS]
    e = errs.select([(pl.col(c) if c in errs.columns else pl.lit(None)).cast(pl.String).alias(c) for c in cols])
    return e.rows(named=True)


def _cell_errors(res: pl.DataFrame) -> list[dict]:
    """Cells with status 'error', grouped by model and reason (one line per distinct failure)."""
    if not res.height:
        return []
    e = (res.filter(pl.col("status") == "error")
         .group_by(["model", "reason"], maintain_order=True)
         .agg(pl.len().alias("cells"), pl.col("gpu").unique(maintain_order=True).alias("gpus")))
    return [{"model": m, "reason": r or "", "cells": n, "gpus": ", ".join(g)} for m, r, n, g in e.iter_rows()]
