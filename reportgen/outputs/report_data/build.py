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
  * concurrency targets fold into the cell (``fold_concurrency``): the number
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
from typing import Any

import polars as pl

from reportgen import results as R
from reportgen.outputs.report_data.axes import ordered_unique, varying_axes, split_axes
from reportgen.outputs.report_data.errors import cell_error_rows, model_error_rows
from reportgen.outputs.report_data.fmt import fmt_ctx, fmt_time
from reportgen.outputs.report_data.matrices import fit_matrices
from reportgen.outputs.report_data.models import model_sections
from reportgen.outputs.report_data import style  # budgets read at call time (tests and callers may lower them)
from reportgen.outputs.report_data.style import (AXIS_LABEL, GPU_KEYS, LAYOUT_AXES, MODEL_KEYS, STATUS_STYLE,
                                                 SUMMARY_MAX_COLUMNS)
from reportgen.outputs.report_data.summary import cheapest_fit_rows, cheapest_fit_tables


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
    res, errs, meta = shorten_for_display(res, errs, meta)

    models = _model_order(res, meta)
    gpus = _gpu_order(res, meta)
    notes: list[str] = [str(n) for n in meta.get("notes") or []]
    for s in meta.get("skipped_outputs") or []:
        notes.append(f"{s.get('output', '?')} was not written: {s.get('reason', '')}"
                     if isinstance(s, dict) else str(s))

    scenario, per_gpu = split_axes(res)
    scen_axes = ["max_model_len", "weights_as", *scenario]
    if per_gpu:
        values = res.filter(pl.col("gpu").is_not_null()).group_by("gpu").agg(pl.col(per_gpu).drop_nulls().first())
        by_gpu = {r["gpu"]: r for r in values.iter_rows(named=True)}
        for g in gpus:
            g["settings"] = [by_gpu.get(g["id"], {}).get(a) for a in per_gpu]
    layout_axes = ["tp", "pp", *varying_axes(res, ("dp", "ep"))]

    summary = cheapest_fit_rows(res, models, scen_axes)
    summary_tables = cheapest_fit_tables(summary, models, scen_axes, medium, SUMMARY_MAX_COLUMNS)
    # concurrency targets do not get matrices of their own: see fold_concurrency
    matrix_axes = [a for a in scen_axes if a != "concurrency"]
    targets = sorted(res["concurrency"].drop_nulls().unique().to_list())
    # rows of models that never reached the matrix (no layout / context) belong to the errors table
    placed = res.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in ("gpu", *LAYOUT_AXES, *scen_axes)))
    n_matrix_cells = placed.select("model", "gpu", *LAYOUT_AXES, *matrix_axes).n_unique() if placed.height else 0
    matrices: list[dict] = []
    too_big = None
    if medium == "html" and n_matrix_cells > style.HTML_MATRIX_CELL_LIMIT:
        too_big = f"{n_matrix_cells:,} matrix cells exceed its limit of {style.HTML_MATRIX_CELL_LIMIT:,}. "
    elif medium == "pdf":
        pages = estimate_pdf_pages(n_matrix_cells, sum(len(t["rows"]) for t in summary_tables),
                                   len(models), len(gpus))
        if pages > style.PDF_PAGE_BUDGET:
            too_big = (f"its {n_matrix_cells:,} matrix cells would take it to about {pages:,} pages, over the "
                       f"budget of {style.PDF_PAGE_BUDGET} pages. The HTML report has them; ")
    if too_big:
        notes.append(f"The fit matrices are left out of this {medium.upper()} report: {too_big}"
                     "results.parquet and results.csv hold every cell; the summary and model sections "
                     "cover all models.")
    elif n_matrix_cells:
        matrices = fit_matrices(placed, models, gpus, matrix_axes, layout_axes, medium, max_columns)

    error_rows = model_error_rows(errs)
    sections = model_sections(res, models, gpus, scen_axes)
    if medium == "pdf":
        error_rows, sections = _pdf_caps(error_rows, sections, notes)

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
        "models": sections,
        "errors": error_rows,
        "cell_errors": cell_error_rows(res),
        "notes": notes,
        "axis_label": AXIS_LABEL,
    }


def _pdf_caps(error_rows: list[dict], sections: list[dict], notes: list[str]) -> tuple[list[dict], list[dict]]:
    """Keep the PDF within its page budget however many models fail (see style.PDF_ERROR_ROWS)."""
    if len(error_rows) > style.PDF_ERROR_ROWS:
        notes.append(f"The errors table of this PDF shows the first {style.PDF_ERROR_ROWS} of {len(error_rows):,} "
                     "model errors; errors.csv and the HTML report list them all.")
        error_rows = error_rows[:style.PDF_ERROR_ROWS]
    failed = [i for i, m in enumerate(sections) if not m.get("bars")]
    if len(failed) > style.PDF_FAILED_SECTIONS:
        drop = set(failed[style.PDF_FAILED_SECTIONS:])
        notes.append(f"{len(drop):,} models that could not be estimated at all have no section in this PDF "
                     "(they are in the errors table and errors.csv).")
        sections = [m for i, m in enumerate(sections) if i not in drop]
    return error_rows, sections


def display_id(text: str | None, limit: int | None = None) -> str | None:
    """``text`` as a report shows it: whole up to ``limit`` chars, else a prefix, "…" and a hash
    of the full text (distinct ids stay distinct; the tables keep the full id)."""
    import hashlib

    limit = limit or style.MAX_ID_CHARS
    if text is None or len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{text[:limit - 10]}…{digest}"


def shorten_for_display(res: pl.DataFrame, errs: pl.DataFrame, meta: dict):
    """Ids, revisions and long texts shortened consistently in results, errors and meta."""
    def fix_col(df: pl.DataFrame, col: str, limit: int) -> pl.DataFrame:
        if col not in df.columns or df.height == 0:
            return df
        long = df.filter(pl.col(col).str.len_chars() > limit)[col].unique().to_list()
        if not long:
            return df
        mapping = {v: display_id(v, limit) for v in long}
        return df.with_columns(pl.col(col).replace(mapping))

    for col, limit in (("model", style.MAX_ID_CHARS), ("revision", style.MAX_ID_CHARS),
                       ("reason", style.MAX_TEXT_CHARS)):
        res = fix_col(res, col, limit)
    for col, limit in (("model", style.MAX_ID_CHARS), ("revision", style.MAX_ID_CHARS),
                       ("message", style.MAX_TEXT_CHARS)):
        errs = fix_col(errs, col, limit)
    if isinstance(meta.get("models"), list):
        meta["models"] = [{**m, "id": display_id(str(m["id"])),
                           "revision": display_id(m.get("revision")) if isinstance(m.get("revision"), str) else m.get("revision"),
                           "error": display_id(m["error"], style.MAX_TEXT_CHARS) if isinstance(m.get("error"), str) else m.get("error")}
                          if isinstance(m, dict) and m.get("id") is not None else m for m in meta["models"]]
    return res, errs, meta


def estimate_pdf_pages(matrix_cells: int, summary_rows: int, n_models: int, n_gpus: int) -> int:
    """Rough page count of the PDF with its matrices (the title page and errors count as 2).

    ``summary_rows`` counts rows over all cheapest-fit tables (a model appears once per table).
    """
    return math.ceil(matrix_cells / style.PDF_CELLS_PER_PAGE + summary_rows / style.PDF_SUMMARY_ROWS_PER_PAGE
                     + n_models * n_gpus * style.PDF_PAGES_PER_BAR + 2)


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
        vllm = ", ".join(str(v) for v in ordered_unique(res["vllm_version"].drop_nulls()))
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
            ("weight dtypes", ", ".join(str(v) for v in ordered_unique(res["weights_as"].drop_nulls()))),
            ("concurrency targets", vals("concurrency")),
            ("tensor parallel", vals("tp")),
            ("pipeline parallel", vals("pp")),
        ]
        if res["dp"].drop_nulls().n_unique() > 1:
            derived.append(("data parallel", vals("dp")))
        if bool(res["ep"].any()):
            derived.append(("expert parallel", vals("ep")))
        if "speculative" in res.columns and res["speculative"].drop_nulls().len():
            # --speculative-config: the method, K and the draft priced (results column `speculative`)
            spec = res["speculative"].drop_nulls().str.split(" (").list.first()
            derived.append(("speculative decoding", ", ".join(str(v) for v in ordered_unique(spec))))
        have = {k for k, _ in rows}
        rows += [d for d in derived if d[0] not in have]
    return rows
