"""The fit matrices: models x (GPU x layout), paged by whole GPUs, concurrency targets folded into a cell."""

from __future__ import annotations

import polars as pl

from reportgen.outputs.report_data.axes import cell_exprs, layout_expr, ordered_unique, scenario_label, str_num
from reportgen.outputs.report_data.fmt import fmt_ctx
from reportgen.outputs.report_data.style import AXIS_LABEL, Cell, LAYOUT_AXES, MISSING_CELL


def fit_matrices(res, models, gpus, scen_axes, layout_axes, medium, max_columns) -> list[dict]:
    model_idx = {m["id"]: i for i, m in enumerate(models)}
    gpu_idx = {g["id"]: i for i, g in enumerate(gpus)}
    show_dp, show_ep = "dp" in layout_axes, "ep" in layout_axes
    df = res.with_columns(layout_expr(show_dp, show_ep).alias("_layout")).with_columns(cell_exprs())
    df = fold_concurrency(df, scen_axes)

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
    wd_order = {v: i for i, v in enumerate(ordered_unique(res["weights_as"]))}
    key_rows = sorted(keys.rows(named=True),
                      key=lambda k: (k["max_model_len"] is None, k["max_model_len"] or 0,
                                     wd_order.get(k["weights_as"], 0), *[str(k[a]) for a in scen_axes[2:]]))
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
            "label": scenario_label(key),
            "parts": parts,
            "n_cells": sum(len(r[1]) for r in rows),
        })
    return out


def fold_concurrency(df: pl.DataFrame, matrix_axes: list[str]) -> pl.DataFrame:
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
        .then(pl.lit(" (headroom ") + str_num(pl.col("headroom_pct"), 1) + pl.lit(" %)"))
        .otherwise(pl.lit("")),
    ])
    folded = (df.with_columns(line.alias("_tline"))
              .sort("concurrency", nulls_last=False)
              .group_by(keys, maintain_order=True)
              .agg(pl.all().exclude("_tline").last(), pl.col("_tline").str.join("\n")))
    return folded.with_columns(
        (pl.col("_tip") + pl.lit("\n— status by concurrency target —\n") + pl.col("_tline")).alias("_tip"))
