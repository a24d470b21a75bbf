"""Parquet and CSV writers for the results and errors tables.

Parquet keeps the typed columns plus run metadata (tool version, inputs hash,
catalog version, time) in the file's key-value metadata, so a results file
found alone still says where it came from.  CSV is for spreadsheets: the
documented column order (reportgen.results), ISO dates, UTF-8, and text cells
that could start a formula neutralised.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from reportgen.outputs.safety import neutralise_formula

META_KEY = "reportgen"


def write_parquet(df: pl.DataFrame, path: Path, meta: dict) -> None:
    df.write_parquet(path, metadata={META_KEY: json.dumps(meta, sort_keys=True, default=str)})


def read_parquet_meta(path: Path) -> dict:
    raw = pl.read_parquet_metadata(path)
    return json.loads(raw.get(META_KEY, "{}"))


def write_csv(df: pl.DataFrame, path: Path) -> None:
    neutralise_formula(df).write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%SZ", float_precision=4)
