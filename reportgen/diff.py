"""`reportgen diff OLD NEW`: what changed between two scheduled runs.

Cells are matched on their key (model, GPU, layout, dtypes, context,
concurrency, utilization).  Reported: cells added and removed, status changes
(e.g. fits -> no_fit), and KV-token capacity changes beyond 1 %.
"""

from __future__ import annotations

from pathlib import Path

KEY = ["model", "gpu", "tp", "pp", "dp", "ep", "weights_as", "kv_cache_dtype",
       "max_model_len", "concurrency", "gpu_memory_utilization"]
KV_CHANGE = 0.01


def diff_frames(old, new):
    import polars as pl

    from reportgen.results import upgrade_legacy

    old, new = upgrade_legacy(old), upgrade_legacy(new)      # runs written before weight_dtype -> weights_as
    keep = KEY + ["status", "kv_cache_tokens", "weights_gib"]
    o = old.select(keep).unique(subset=KEY, keep="first")
    n = new.select(keep).unique(subset=KEY, keep="first")
    joined = o.join(n, on=KEY, how="full", suffix="_new", coalesce=True, nulls_equal=True)
    change = (
        pl.when(pl.col("status").is_null()).then(pl.lit("added"))
        .when(pl.col("status_new").is_null()).then(pl.lit("removed"))
        .when(pl.col("status") != pl.col("status_new")).then(pl.lit("status"))
        .when(((pl.col("kv_cache_tokens_new") - pl.col("kv_cache_tokens")).abs()
               > KV_CHANGE * pl.col("kv_cache_tokens").abs().clip(lower_bound=1))).then(pl.lit("kv_tokens"))
        .otherwise(None)
    )
    return joined.with_columns(change.alias("change")).filter(pl.col("change").is_not_null()).sort(KEY, nulls_last=True)


def diff_command(args, UsageError) -> int:
    import polars as pl

    from reportgen.outputs.run_reader import read_results

    old = read_results(args.old)      # a damaged or foreign file is a RunDirError: exit 2
    new = read_results(args.new)
    d = diff_frames(old, new)
    counts = dict(d.group_by("change").len().iter_rows())
    print(f"{old.height:,} -> {new.height:,} cells; changed: "
          + ", ".join(f"{k} {counts.get(k, 0):,}" for k in ("added", "removed", "status", "kv_tokens")))
    status = d.filter(pl.col("change") == "status")
    if status.height:
        print("\nstatus changes:")
        for r in status.head(50).iter_rows(named=True):
            print(f"  {r['model']} on {r['gpu']} tp{r['tp']} pp{r['pp']} dp{r['dp']} {r['weights_as']} "
                  f"ctx {r['max_model_len']} x{r['concurrency']}: {r['status']} -> {r['status_new']}")
        if status.height > 50:
            print(f"  ... {status.height - 50:,} more")
    if args.csv:
        from reportgen.outputs.tables import write_csv

        write_csv(d, Path(args.csv))
    return 0
