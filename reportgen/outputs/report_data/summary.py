"""The "cheapest layout that fits" pivot (model x context/scenario) and its PDF-sized tables."""

from __future__ import annotations

import polars as pl

from reportgen.outputs.report_data.axes import ordered_unique
from reportgen.outputs.report_data.fmt import fmt_conc, fmt_ctx, fmt_num, fmt_price, layout_label
from reportgen.outputs.report_data.style import AXIS_LABEL, STATUS_STYLE


def cheapest_fit_rows(res: pl.DataFrame, models: list[dict], scen_axes: list[str]) -> list[dict]:
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
    wd_order = {v: i for i, v in enumerate(ordered_unique(res["weights_as"]))}
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
            "_order": (order.get(r["model"], 1 << 30), r["max_model_len"] or 0, wd_order.get(r["weights_as"], 0),
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


def cheapest_fit_tables(rows: list[dict], models: list[dict], scen_axes: list[str], medium: str,
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
