"""results.xlsx: sheets, colours, frozen header, autofilter, number formats, formula safety, size limit."""

from __future__ import annotations

import re
import zipfile

import polars as pl
import pytest

from reportgen import results as R
from reportgen.outputs import xlsx as X
from test_report_synthetic import FORMULA_ID, HOSTILE_ID, synthetic_meta, synthetic_results


def _book(path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml")}


def _sheets(book: dict[str, str]) -> dict[str, str]:
    """sheet name -> its worksheet XML."""
    names = re.findall(r'<sheet name="([^"]+)" sheetId="(\d+)"', book["xl/workbook.xml"])
    return {name: book[f"xl/worksheets/sheet{i}.xml"] for name, i in names}


@pytest.fixture(scope="module")
def hostile():
    res = synthetic_results()
    res = res.with_columns(
        pl.when(pl.col("model") == HOSTILE_ID).then(pl.lit(FORMULA_ID)).otherwise(pl.col("model")).alias("model"),
        pl.when(pl.col("status") == "error").then(pl.lit("@SUM(1+1)*cmd|' /C calc'!A0")).otherwise(pl.col("reason"))
        .alias("reason"),
    )
    return res


@pytest.fixture(scope="module")
def book(tmp_path_factory, hostile):
    path = tmp_path_factory.mktemp("xlsx") / "results.xlsx"
    assert X.write_xlsx(path, hostile, synthetic_meta(hostile)) == []
    return _book(path)


def test_sheets_per_context_plus_raw(book):
    assert list(_sheets(book)) == ["About", "Cheapest fit", "ctx 8k", "ctx 32k", "ctx 128k", "results"]


def test_formulas_are_neutralised(book):
    strings = book["xl/sharedStrings.xml"]
    assert "'=HYPERLINK(&quot;http://evil.example/" in strings or "'=HYPERLINK(\"http://evil.example/" in strings
    assert not re.search(r"<t[^>]*>=HYPERLINK", strings)
    assert "<t>'@SUM(1+1)" in strings
    for xml in _sheets(book).values():
        assert "<f>" not in xml                             # no cell is a formula
    assert "hyperlink" not in "".join(n for n in book).lower()


def test_frozen_header_autofilter_and_number_formats(book):
    sheets = _sheets(book)
    for name in ("ctx 8k", "results", "Cheapest fit"):
        assert 'state="frozen"' in sheets[name] and 'ySplit="1"' in sheets[name]
    tables = [x for n, x in book.items() if n.startswith("xl/tables/")]
    assert len(tables) == 6 and all("<autoFilter" in t for t in tables)
    styles = book["xl/styles.xml"]
    for code in ("0.0", "#,##0", "0.00", "$#,##0.00"):
        assert f'formatCode="{code.replace("$", "&quot;$&quot;")}"' in styles or f'formatCode="{code}"' in styles, code


def test_rows_coloured_by_status(book, hostile):
    sheets = _sheets(book)
    status_col = "N"                                         # CONTEXT_COLUMNS index 13
    assert X.CONTEXT_COLUMNS.index("status") == 13
    for s in R.STATUSES:
        assert f"<formula>${status_col}2=\"{s}\"</formula>" in sheets["ctx 8k"]
    n8k = hostile.filter(pl.col("max_model_len") == 8192).height
    last = chr(ord("A") + len(X.CONTEXT_COLUMNS) - 1)             # one letter while < 27 columns
    assert f'<conditionalFormatting sqref="A2:{last}{n8k + 1}">' in sheets["ctx 8k"]
    fills = book["xl/styles.xml"]
    for fill, _ in X.STATUS_FILL.values():
        assert fill.lstrip("#") in fills


def test_raw_sheet_has_every_row_and_column(book, hostile):
    raw = _sheets(book)["results"]
    assert f'<dimension ref="A1:{_col(len(R.COLUMNS))}{hostile.height + 1}"/>' in raw


def _col(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def test_about_sheet_documents_columns_and_run(book):
    strings = book["xl/sharedStrings.xml"]
    assert "weekly-fleet-fit" in strings and "gpu_memory_utilization" in strings
    for name, _, meaning in R.COLUMNS[:5]:
        assert meaning.split(" (")[0].replace("&", "&amp;")[:30] in strings


def test_size_limit_leaves_big_sheets_out_and_says_so(tmp_path, monkeypatch):
    res = synthetic_results(n_models=2, n_gpus=1)
    monkeypatch.setattr(X, "XLSX_MAX_ROWS", 10)
    notes = X.write_xlsx(tmp_path / "r.xlsx", res)
    assert notes == X.xlsx_skips(res.height) and "exceed its limit of 10" in notes[0]
    book = _book(tmp_path / "r.xlsx")
    assert list(_sheets(book)) == ["About", "Cheapest fit"]
    assert "exceed its limit of 10" in book["xl/sharedStrings.xml"]
