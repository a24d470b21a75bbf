"""Issue 14 (1): a job where every model fails still gives a report (exit 1), and `render`
of a run with zero result rows works.

Today a job whose only model is gated (no HF_TOKEN), mistyped or offline-and-uncached must not
crash with exit 3: the user needs errors.csv, the manifest and a report whose errors table
says what to do.
"""

import json

import polars as pl
import pytest

from hubserver import fake_hub  # noqa: F401 - fixture
from reportgen.cli import main


def _job(tmp_path, models, formats=("parquet", "csv", "html")):
    job = tmp_path / "job.toml"
    job.write_text(f"name = \"allfail\"\nmodels = {json.dumps(list(models))}\ngpus = [\"H100\"]\n"
                   f"formats = {json.dumps(list(formats))}\n[matrix]\ntp = [1, 2]\n", encoding="utf-8")
    return job


def test_all_models_fail_offline_gives_exit_1_and_a_full_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = tmp_path / "out"
    code = main(["run", str(_job(tmp_path, ["nobody/not-cached-anywhere"])), "--out", str(out), "-q"])
    assert code == 1
    names = {p.name for p in out.iterdir()}
    assert {"errors.csv", "manifest.json", "results.parquet", "results.csv", "report.html"} <= names
    errors = pl.read_csv(out / "errors.csv")
    assert errors["kind"].to_list() == ["network"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exit_code"] == 1
    html = (out / "report.html").read_text()
    assert "nobody/not-cached-anywhere" in html
    # the errors table says what to do, not only what went wrong
    assert "What to do" in html and "--snapshot" in html


def test_all_models_gated_report_says_set_hf_token(fake_hub, tmp_path):
    fake_hub.add("acme/gated-model", behaviour="gated")
    out = tmp_path / "out"
    code = main(["run", str(_job(tmp_path, ["acme/gated-model"])), "--out", str(out), "-q",
                 "--hub-retries", "0", "--hub-timeout", "5"])
    assert code == 1
    assert pl.read_csv(out / "errors.csv")["kind"].to_list() == ["gated"]
    html = (out / "report.html").read_text()
    row = html[html.index('<tr data-model="acme/gated-model">'):]
    row = row[:row.index("</tr>")]
    assert "gated" in row and "set HF_TOKEN" in row


def test_render_of_a_run_with_zero_result_rows(tmp_path, monkeypatch):
    """Tables only at run time, reports later: the models table is empty, render must still work."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = tmp_path / "out"
    job = tmp_path / "job.toml"
    job.write_text('name = "x"\nmodels = ["./missing-dir"]\ngpus = ["H100"]\nformats = ["parquet", "csv"]\n')
    assert main(["run", str(job), "--out", str(out), "-q"]) == 1
    # a results file with no rows at all (e.g. written by an older tool version)
    from reportgen.results import empty_results

    empty_results().write_parquet(out / "results.parquet")
    assert main(["render", str(out), "--format", "html", "-q"]) == 0
    assert "./missing-dir" in (out / "report.html").read_text()



def test_all_models_fail_pdf(tmp_path, monkeypatch):
    """The one PDF of this module: the all-failed report lays out (WeasyPrint is slow, keep it small)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = tmp_path / "out"
    code = main(["run", str(_job(tmp_path, ["nobody/nope"], ("parquet", "csv", "pdf"))), "--out", str(out), "-q"])
    assert code == 1
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
