"""Render speed against the PRODUCT.md §6 / issue 6 targets, on synthetic results.

    .venv/bin/python benchmarks/bench_render.py            # all three
    .venv/bin/python benchmarks/bench_render.py --only html pdf

Targets: HTML for 100 models < 2 s; PDF for 100 models < 30 s; XLSX for 1 million
rows < 60 s.  "100 models" is the default job's shape per model: 8 GPUs × 8 layouts
(TP 1,2,4,8 × PP 1,2) × 2 weight dtypes × 3 contexts = 384 cells, 38 400 in all.

Where a target cannot be met the writer applies a documented size limit and the
report says what it left out; this script prints which limit applied:
  * PDF: when the PDF would run over report_data.PDF_PAGE_BUDGET pages the fit matrices
    are left out of it (they stay in the HTML); WeasyPrint lays out ~3 pages/s here and
    the full matrices of 100 models are ~130 extra pages.
  * XLSX: above xlsx.XLSX_MAX_ROWS rows only the About and Cheapest-fit sheets are
    written (xlsxwriter writes ~200 k cells/s; 1 M rows × 62 cells would take minutes).
    The run at the limit is timed too, to show the limit keeps the full workbook in budget.

The synthetic data comes from tests/test_report_synthetic.py (the same generator the
tests use), so the numbers are for realistic status mixes and tooltips.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from reportgen.outputs import report_data as RD  # noqa: E402
from reportgen.outputs import xlsx as X  # noqa: E402
from reportgen.outputs.html import write_html  # noqa: E402
from test_report_synthetic import synthetic_errors, synthetic_meta, synthetic_results  # noqa: E402


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def line(name: str, measured: float, target: float, note: str = "") -> bool:
    ok = measured < target
    print(f"{name:<44} {measured:8.2f} s   target < {target:5.0f} s   {'OK  ' if ok else 'MISS'} {note}")
    return ok


def bench_html(out: Path) -> bool:
    res = synthetic_results(n_models=100, n_gpus=8)
    meta, errs = synthetic_meta(res), synthetic_errors()
    write_html(out / "warm.html", res.head(100), errs, meta)         # template compile, imports
    secs, path = timed(write_html, out / "report.html", res, errs, meta)
    size = path.stat().st_size / 2**20
    return line(f"HTML, 100 models ({res.height:,} cells)", secs, 2, f"{size:.1f} MiB")


def bench_pdf(out: Path) -> bool:
    from reportgen.outputs.pdf import write_pdf

    res = synthetic_results(n_models=100, n_gpus=8)
    meta, errs = synthetic_meta(res), synthetic_errors()
    secs, path = timed(write_pdf, out / "report.pdf", res, errs, meta)
    pages = RD.estimate_pdf_pages(res.height, 100, 100, 8)
    note = f"matrices left out (~{pages} pages > {RD.PDF_PAGE_BUDGET})" if pages > RD.PDF_PAGE_BUDGET else ""
    ok = line(f"PDF, 100 models ({res.height:,} cells)", secs, 30, note)
    # the default job's shape (concurrency 1 and 32): the largest common case that keeps its matrices
    small = synthetic_results(n_models=16, n_gpus=8, concurrency=(1, 32))
    secs, _ = timed(write_pdf, out / "report_default.pdf", small, errs, synthetic_meta(small))
    line(f"PDF, default job shape (16 models, {small.height:,} cells)", secs, 30, "with matrices")
    return ok


def bench_xlsx(out: Path) -> bool:
    res = synthetic_results(n_models=209, n_gpus=25, concurrency=(1, 16, 64, 256))
    secs, notes = timed(X.write_xlsx, out / "results.xlsx", res)
    ok = line(f"XLSX, {res.height:,} rows", secs, 60,
              f"sheets left out above {X.XLSX_MAX_ROWS:,} rows" if notes else "full workbook")
    at_limit = res.head(X.XLSX_MAX_ROWS)
    secs, notes = timed(X.write_xlsx, out / "results_limit.xlsx", at_limit)
    line(f"XLSX at the limit ({at_limit.height:,} rows, all sheets)", secs, 60, "full workbook")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=["html", "pdf", "xlsx"], default=["html", "pdf", "xlsx"])
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as d:
        for name in args.only:
            ok &= {"html": bench_html, "pdf": bench_pdf, "xlsx": bench_xlsx}[name](Path(d))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
