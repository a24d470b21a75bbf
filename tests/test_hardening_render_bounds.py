"""Issue 14 (10): rendering is bounded whatever the ids look like and however many models fail.

A 10,000-character id is shown shortened (prefix, ellipsis, hash of the full id) in HTML/PDF
while CSV/Parquet keep it whole; in the PDF the errors table and the sections of failed models
are capped, the rest summarised and pointed to errors.csv.  One small PDF only (WeasyPrint is slow).
"""

import json
import shutil
import subprocess
import time

import polars as pl
import pytest

from reportgen.cli import main
from reportgen.outputs.report_data import build_report
from reportgen.outputs.report_data import style
from reportgen.results import ERROR_SCHEMA

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
LONG = "org/" + "x" * 10_000


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("good")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        job = base / "job.toml"
        job.write_text(f'name = "b"\nmodels = ["{MODEL}"]\ngpus = ["H100"]\nformats = ["parquet", "csv"]\n')
        assert main(["run", str(job), "--out", str(base / "run"), "-q"]) == 0
    finally:
        mp.undo()
    return base / "run"


def _hostile_run(good_run, tmp_path, n_failed=2000):
    """The good run with its model renamed to a 10,000-char id, plus n_failed failing models."""
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    res = pl.read_parquet(run / "results.parquet").with_columns(pl.lit(LONG).alias("model"))
    res.write_parquet(run / "results.parquet")
    failed = [f"acme/failing-model-{i:04d}" for i in range(n_failed)]
    errs = pl.DataFrame({"model": [LONG + "-2", *failed], "revision": [None] * (n_failed + 1),
                         "kind": ["gated"] * (n_failed + 1),
                         "message": ["gated or access-restricted repository: set HF_TOKEN"] * (n_failed + 1)},
                        schema=ERROR_SCHEMA)
    errs.write_csv(run / "errors.csv")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["models"] = [{"id": LONG, **{k: v for k, v in manifest["models"][0].items() if k != "id"}},
                          {"id": LONG + "-2", "error": "gated"}, *({"id": m, "error": "gated"} for m in failed)]
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run, res, errs, manifest


def test_long_ids_are_shortened_for_display_only(good_run, tmp_path):
    run, res, errs, meta = _hostile_run(good_run, tmp_path, n_failed=0)
    ctx = build_report(res, errs, meta, medium="html")
    shown = [m["id"] for m in ctx["models"]] + [e["model"] for e in ctx["errors"]]
    assert all(len(s) <= style.MAX_ID_CHARS for s in shown)
    assert shown[0] != shown[1]                       # two long ids with one prefix stay distinct
    assert all("…" in s for s in shown)
    assert pl.read_parquet(run / "results.parquet")["model"][0] == LONG   # the tables keep the full id


def test_pdf_caps_errors_and_failed_model_sections(good_run, tmp_path):
    run, res, errs, meta = _hostile_run(good_run, tmp_path)
    ctx = build_report(res, errs, meta, medium="pdf")
    assert len(ctx["errors"]) <= style.PDF_ERROR_ROWS
    assert len(ctx["models"]) <= style.PDF_FAILED_SECTIONS + 1
    assert any("errors.csv" in n and "2,001" in n for n in ctx["notes"])
    html_ctx = build_report(res, errs, meta, medium="html")      # the HTML lists every error
    assert len(html_ctx["errors"]) == 2001


def test_render_pdf_of_hostile_run_is_small_and_quick(good_run, tmp_path):
    run, *_ = _hostile_run(good_run, tmp_path)
    t = time.monotonic()
    assert main(["render", str(run), "--format", "pdf", "--format", "html", "-q"]) == 0
    elapsed = time.monotonic() - t
    assert elapsed < 180, elapsed            # 13 minutes before (2-core machine shared by other jobs)
    html = (run / "report.html").read_text()
    assert LONG not in html and "x" * 200 not in html
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(run / "report.pdf")], capture_output=True, text=True).stdout
        pages = int(info.split("Pages:")[1].split()[0])
        assert pages <= 15, pages            # 522 pages before
