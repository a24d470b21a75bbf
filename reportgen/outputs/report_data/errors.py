"""The errors table: models that failed to resolve and cells that could not be evaluated."""

from __future__ import annotations

import polars as pl

from reportgen import results as R


def model_error_rows(errs: pl.DataFrame) -> list[dict]:
    if errs is None or not errs.height:
        return []
    cols = [c for c, _, _ in R.ERROR_COLUMNS]
    e = errs.select([(pl.col(c) if c in errs.columns else pl.lit(None)).cast(pl.String).alias(c) for c in cols])
    return e.rows(named=True)


def cell_error_rows(res: pl.DataFrame) -> list[dict]:
    """Cells with status 'error', grouped by model and reason (one line per distinct failure)."""
    if not res.height:
        return []
    e = (res.filter(pl.col("status") == "error")
         .group_by(["model", "reason"], maintain_order=True)
         .agg(pl.len().alias("cells"), pl.col("gpu").unique(maintain_order=True).alias("gpus")))
    return [{"model": m, "reason": r or "", "cells": n, "gpus": ", ".join(g)} for m, r, n, g in e.iter_rows()]
