"""results.xlsx: the results for spreadsheet users — filter, sort, colour by status.

Sheets:
  * ``About``      — run facts, the status legend, what every column means, and
                     any sheet left out because of size.
  * ``Cheapest fit`` — per model × context × scenario, the cheapest fitting cell
                     (the HTML summary, as data).
  * one sheet per context length (``ctx 8k`` ...) — the planner's columns for
                     that context, each row coloured by status, frozen header
                     and model column, autofilter, number formats.
  * ``results``    — every column of every row, as in results.csv.

Why these choices: planners filter and pivot, so every sheet is a real Excel
table (autofilter, typed numbers with formats) rather than a picture of the
HTML matrix.  Text is neutralised (``safety.neutralise_formula``) and the
workbook is opened with ``strings_to_formulas`` / ``strings_to_urls`` off, so
no model id or reason can become a formula or a link.

Size: xlsxwriter writes ~150-250 k cells/s on our 2-core target machine, and
Excel holds at most 1,048,575 data rows per sheet.  Above ``XLSX_MAX_ROWS``
result rows the per-context and ``results`` sheets are left out (the About
sheet and the report say so; results.csv / results.parquet hold every row);
the About and Cheapest-fit sheets are always written.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from reportgen import results as R
from reportgen.outputs import report_data as RD
from reportgen.outputs.html import write_atomic
from reportgen.outputs.safety import neutralise_formula

XLSX_MAX_ROWS = 100_000

CONTEXT_COLUMNS = [
    "model", "gpu", "gpu_name", "tp", "pp", "dp", "ep", "gpus", "nodes", "weights_as", "weight_scheme",
    "kv_cache_dtype", "concurrency", "status", "headroom_pct", "max_concurrency", "kv_cache_tokens",
    "max_model_len_fit", "weights_gib", "kv_cache_gib", "kv_needed_gib", "price_usd_hr", "reason",
    "concurrency_limited_by", "state_bytes_per_seq", "block_size",
]
STATUS_FILL = {  # fill, font — the HTML palette
    "fits": ("#CDEBD3", "#14532D"),
    "tight": ("#FBE3A8", "#6B4200"),
    "no_fit": ("#F6C9C4", "#7F1D1D"),
    "invalid_layout": ("#ECEEF1", "#6B7280"),
    "unsupported": ("#E2DCF3", "#43307A"),
    "error": ("#3B3F46", "#FFFFFF"),
}
NUMBER_FORMATS = {
    pl.Float64: "0.00",
    "headroom_pct": "0.0",
    "max_concurrency": "#,##0.0",
    "kv_cache_tokens": "#,##0",
    "state_bytes_per_seq": "#,##0",
    "max_model_len_fit": "#,##0",
    "max_model_len": "#,##0",
    "params_total": "#,##0",
    "params_active": "#,##0",
    "kv_bytes_per_token": "#,##0",
    "price_usd_hr": "$#,##0.00",
    "gpu_memory_utilization": "0.00",
}
WIDTHS = {"model": 40, "gpu_name": 18, "reason": 60, "gpu": 12, "status": 14, "weight_scheme": 14}
HEADER = {"bold": True, "bg_color": "#1F4E79", "font_color": "#FFFFFF", "text_wrap": True, "valign": "top"}


def xlsx_skips(n_rows: int) -> list[str]:
    """Which sheets a results table of ``n_rows`` rows leaves out, and why (empty when none).

    The pipeline calls this before rendering so the HTML/PDF can say so too.
    """
    if n_rows <= XLSX_MAX_ROWS:
        return []
    return [f"results.xlsx holds only the About and Cheapest-fit sheets: {n_rows:,} result rows exceed "
            f"its limit of {XLSX_MAX_ROWS:,} (Excel writing speed); every row is in results.csv and results.parquet"]


def _sheet_name(ctx: int, used: set[str]) -> str:
    name = f"ctx {RD.fmt_ctx(ctx)}".replace(",", "")[:31]
    base, i = name, 2
    while name in used:
        name = f"{base[:27]} ({i})"
        i += 1
    used.add(name)
    return name


def _formats(df: pl.DataFrame) -> dict[str, str]:
    out = {}
    for name, dtype in df.schema.items():
        if name in NUMBER_FORMATS:
            out[name] = NUMBER_FORMATS[name]
        elif dtype == pl.Float64:
            out[name] = NUMBER_FORMATS[pl.Float64]
    return out


def _status_rules(df: pl.DataFrame) -> dict:
    """Whole-row fills keyed on the status column (a formula rule per status)."""
    if "status" not in df.columns or not df.height:
        return {}
    from xlsxwriter.utility import xl_col_to_name

    col = xl_col_to_name(df.columns.index("status"))
    rules = [
        {"type": "formula", "criteria": f'=${col}2="{s}"',
         "format": {"bg_color": fill, "font_color": font}}
        for s, (fill, font) in STATUS_FILL.items()
    ]
    return {tuple(df.columns): rules}


def _write_table(wb, df: pl.DataFrame, sheet: str, *, colour: bool, freeze_cols: int = 1) -> None:
    safe = neutralise_formula(df)
    safe.write_excel(
        workbook=wb,
        worksheet=sheet,
        table_style="Table Style Light 1",
        header_format=HEADER,
        column_formats=_formats(safe),
        column_widths={c: WIDTHS.get(c, 11) for c in safe.columns},
        conditional_formats=_status_rules(safe) if colour else None,
        autofilter=True,
        autofit=False,
        freeze_panes=(1, freeze_cols),
        float_precision=2,
    )


def _about(meta: dict | None, res: pl.DataFrame, skipped: list[str]) -> pl.DataFrame:
    meta = meta or {}
    rows: list[tuple[str, str, str]] = [
        ("run", "job", str(meta.get("job_name") or "")),
        ("run", "started (UTC)", str(meta.get("run_started") or "")),
        ("run", "reportgen", str(meta.get("tool_version") or "")),
        ("run", "GPU catalog", str(meta.get("catalog_version") or "")),
        ("run", "vLLM profile", str(meta.get("vllm_version") or "")),
        ("run", "inputs hash", str(meta.get("inputs_hash") or "")),
        ("run", "result rows", f"{res.height:,}"),
    ]
    for k, v in (meta.get("assumptions") or {}).items():
        rows.append(("assumption", str(k), str(v)))
    for note in skipped:
        rows.append(("note", "left out", note))
    for s in R.STATUSES:
        rows.append(("status", s, RD.STATUS_STYLE[s][2]))
    for name, dtype, meaning in R.COLUMNS:
        rows.append(("column", name, f"{meaning} [{dtype}]"))
    return pl.DataFrame(rows, orient="row", schema=["section", "item", "value"])


def _cheapest(res: pl.DataFrame) -> pl.DataFrame:
    scen = ["max_model_len", "weights_as", *RD.split_axes(res)[0]]
    keys = ["model", *scen]
    if not res.height:
        return pl.DataFrame(schema={k: R.SCHEMA[k] for k in keys})
    best = (res.filter(pl.col("status").is_in(["fits", "tight"]))
            .sort(["price_usd_hr", "gpus", "headroom_pct"], descending=[False, False, True], nulls_last=True)
            .group_by(keys, maintain_order=True).first())
    all_keys = res.select(keys).unique(maintain_order=True)
    cols = ["gpu", "gpu_name", "tp", "pp", "dp", "ep", "gpus", "nodes", "status", "headroom_pct",
            "max_concurrency", "kv_cache_tokens", "price_usd_hr"]
    return all_keys.join(best.select(*keys, *cols), on=keys, how="left", nulls_equal=True).with_columns(
        pl.col("status").fill_null("none fits"))


def write_xlsx(path: Path | str, results: pl.DataFrame, meta: dict | None = None) -> list[str]:
    """Write results.xlsx; returns the notes about sheets left out (see ``xlsx_skips``)."""
    import xlsxwriter

    res = R.conform(results) if results.columns != R.COLUMN_NAMES else results
    skipped = xlsx_skips(res.height)
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"strings_to_formulas": False, "strings_to_urls": False,
                                   "strings_to_numbers": False, "nan_inf_to_errors": True})
    try:
        _write_table(wb, _about(meta, res, skipped), "About", colour=False, freeze_cols=0)
        wb.get_worksheet_by_name("About").set_column(0, 1, 18)
        wb.get_worksheet_by_name("About").set_column(2, 2, 110)
        cheapest = _cheapest(res)
        _write_table(wb, cheapest, "Cheapest fit", colour=True)
        if not skipped:
            used = {"About", "Cheapest fit", "results"}
            for ctx in sorted(res["max_model_len"].drop_nulls().unique().to_list()):
                part = res.filter(pl.col("max_model_len") == ctx).select(CONTEXT_COLUMNS)
                _write_table(wb, part, _sheet_name(ctx, used), colour=True)
            _write_table(wb, res, "results", colour=True)
    finally:
        wb.close()
    write_atomic(path, buf.getvalue())
    return skipped
