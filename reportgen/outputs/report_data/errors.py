"""The errors table: models that failed to resolve and cells that could not be evaluated.

Each model error carries ``action``: what the reader should do about that kind of failure
(issue 14: a report where every model failed must still tell the user how to fix it).
"""

from __future__ import annotations

import polars as pl

from reportgen import results as R

# error kind -> the next step for the reader (errors.csv keeps kind and message; this is report text)
ACTIONS = {
    "gated": "gated: set HF_TOKEN (or run `hf auth login`) and accept the licence on the model page",
    "not_found": "check the model id and revision (a private repo also needs HF_TOKEN)",
    "network": "run again when the Hub is reachable, or offline from the cache or a --snapshot",
    "invalid_id": "fix the id: org/name[@revision], or prefix a local path with ./ or /",
    "malformed_config": "the config.json cannot be used: check the repository or the local file",
    "unsupported_architecture": "this architecture is not modelled (README: supported architectures)",
    "unsupported_cells": "those cells are left out; the other cells of the model are in the report",
    "timeout": "raise --hub-timeout / --deadline, or run from the cache or a --snapshot",
}


def action_for(kind: str | None) -> str:
    return ACTIONS.get(kind or "", "see the message; report a bug if it names an internal error")


def model_error_rows(errs: pl.DataFrame) -> list[dict]:
    if errs is None or not errs.height:
        return []
    cols = [c for c, _, _ in R.ERROR_COLUMNS]
    e = errs.select([(pl.col(c) if c in errs.columns else pl.lit(None)).cast(pl.String).alias(c) for c in cols])
    return [{**r, "action": action_for(r.get("kind"))} for r in e.rows(named=True)]


def cell_error_rows(res: pl.DataFrame) -> list[dict]:
    """Cells with status 'error', grouped by model and reason (one line per distinct failure)."""
    if not res.height:
        return []
    e = (res.filter(pl.col("status") == "error")
         .group_by(["model", "reason"], maintain_order=True)
         .agg(pl.len().alias("cells"), pl.col("gpu").unique(maintain_order=True).alias("gpus")))
    return [{"model": m, "reason": r or "", "cells": n, "gpus": ", ".join(g)} for m, r, n, g in e.iter_rows()]
