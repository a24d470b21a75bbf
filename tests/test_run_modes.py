"""Run modes beyond the plain batch: frozen snapshots (offline, reproducible) and streamed huge jobs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

import reportgen.run as run_mod
from reportgen.job import parse_job
from reportgen.run import prepare, run_job

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "reportgen", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_snapshot_then_run_from_it_gives_the_same_rows(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text('name = "snap"\nmodels = ["Qwen/Qwen3-8B", "deepseek-ai/DeepSeek-V2-Lite-Chat"]\n'
                   'gpus = ["H100", "L4"]\nformats = ["parquet", "csv"]\n[matrix]\ntp = [1, 2]\n')
    r = cli("snapshot", str(job), "--out", str(tmp_path / "snap"), "-q")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    assert "Qwen/Qwen3-8B" in json.dumps(manifest)
    r1 = cli("run", str(job), "--out", str(tmp_path / "plain"), "-q")
    r2 = cli("run", str(job), "--snapshot", str(tmp_path / "snap"), "--out", str(tmp_path / "frozen"), "-q")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    a = pl.read_parquet(tmp_path / "plain" / "results.parquet")
    b = pl.read_parquet(tmp_path / "frozen" / "results.parquet")
    assert set(a["config_source"]) == {"bundled"} and set(b["config_source"]) == {"snapshot"}
    assert a.drop("config_source").equals(b.drop("config_source"))


def test_snapshot_run_never_reaches_for_other_sources(tmp_path):
    """A model missing from the snapshot is an error row, even if it is bundled."""
    job = tmp_path / "job.toml"
    job.write_text('models = ["Qwen/Qwen3-8B"]\ngpus = ["H100"]\nformats = ["parquet", "csv"]\n')
    assert cli("snapshot", str(job), "--out", str(tmp_path / "snap"), "-q").returncode == 0
    job.write_text('models = ["Qwen/Qwen3-8B", "Qwen/Qwen3-4B"]\ngpus = ["H100"]\nformats = ["parquet", "csv"]\n')
    r = cli("run", str(job), "--snapshot", str(tmp_path / "snap"), "--out", str(tmp_path / "run"), "-q")
    assert r.returncode == 1
    errors = pl.read_csv(tmp_path / "run" / "errors.csv")
    assert errors["model"].to_list() == ["Qwen/Qwen3-4B"]


def test_huge_job_streams_partitioned_parquet(tmp_path, monkeypatch):
    monkeypatch.setattr(run_mod, "STREAM_CELLS", 50)
    job = parse_job({"name": "big", "models": ["Qwen/Qwen3-8B", "meta-llama/Llama-3.2-3B", "nobody/missing"],
                     "gpus": ["H100", "L40S"], "formats": ["parquet", "csv", "html"],
                     "matrix": {"tp": [1, 2, 4], "max_model_len": [4096, 8192], "concurrency": [1, 8]}})
    prepared = prepare(job)
    assert prepared.cells == 3 * 2 * 3 * 2 * 2
    res = run_job(prepared, tmp_path / "run", quiet=True, offline=True)
    assert res.exit_code == 1 and res.cells == 2 * 2 * 3 * 2 * 2 + 2   # + one error row per GPU
    df = pl.read_parquet(tmp_path / "run" / "results.parquet" / "*.parquet")
    assert df.height == res.cells
    assert df.filter(pl.col("status") == "error")["model"].unique().to_list() == ["nobody/missing"]
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert files == {"results.parquet", "errors.csv", "manifest.json"}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert "not written at this size" in manifest["skipped_outputs"][0]
    # the in-memory path gives the very same rows
    monkeypatch.setattr(run_mod, "STREAM_CELLS", 10**9)
    res2 = run_job(prepared, tmp_path / "run2", quiet=True, offline=True)
    df2 = pl.read_parquet(tmp_path / "run2" / "results.parquet")
    key = ["model", "gpu", "tp", "max_model_len", "concurrency"]
    assert df.sort(key).equals(df2.sort(key))


def test_scheduled_runs_diff_against_the_previous_run(tmp_path, monkeypatch):
    """Runs in the default output tree write changes.csv against the job's newest earlier run."""
    from datetime import datetime, timezone

    monkeypatch.chdir(tmp_path)
    job = parse_job({"name": "weekly", "models": ["Qwen/Qwen3-8B"], "gpus": ["H100", "L4"],
                     "formats": ["parquet", "csv"], "matrix": {"tp": [1, 2]}})
    first = run_job(prepare(job), quiet=True, offline=True)
    assert not (first.run_dir / "changes.csv").exists()
    job.matrix.tp = [1, 2, 4]                      # next week: one more layout
    second = run_job(prepare(job), quiet=True, offline=True)
    assert second.run_dir != first.run_dir and second.run_dir.parent.resolve() == tmp_path / "output" / "weekly"
    changes = pl.read_csv(second.run_dir / "changes.csv")
    assert set(changes["change"]) == {"added"} and changes.height == 2 and set(changes["tp"]) == {4}
    manifest = json.loads((second.run_dir / "manifest.json").read_text())
    assert manifest["diff"] == {"previous_run": first.run_dir.name, "added": 2, "removed": 0, "status": 0,
                                "kv_tokens": 0}


def test_cells_that_cannot_be_evaluated_are_listed_in_errors(tmp_path):
    """A checkpoint with a quantization method we do not model: as-shipped cells are unsupported
    (named in errors.csv with their count), what-if cells are evaluated; exit 1."""
    cfg = json.loads((ROOT / "reportgen" / "sources" / "bundled" / "Qwen--Qwen3-8B.json").read_text())
    cfg["quantization_config"] = {"quant_method": "hqq", "nbits": 4}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    job = parse_job({"name": "q", "models": [str(tmp_path / "m")], "gpus": ["H100", "L4"],
                     "formats": ["parquet", "csv"], "matrix": {"weights_as": ["checkpoint", "fp8"], "tp": [1, 2]}})
    res = run_job(prepare(job), tmp_path / "run", quiet=True, offline=True)
    assert res.exit_code == 1
    df = pl.read_parquet(tmp_path / "run" / "results.parquet")
    assert set(df.filter(pl.col("weights_as") == "checkpoint")["status"]) == {"unsupported"}
    assert "unsupported" not in set(df.filter(pl.col("weights_as") == "fp8")["status"])
    errors = pl.read_csv(tmp_path / "run" / "errors.csv")
    assert errors["kind"].to_list() == ["unsupported_cells"]
    assert "'hqq'" in errors["message"][0] and errors["message"][0].endswith("(4 cells)")


def test_report_names_the_scheme_of_as_shipped_and_what_if_weights(tmp_path):
    job = parse_job({"name": "schemes", "models": ["Qwen/Qwen3-32B-AWQ", "deepseek-ai/DeepSeek-V3"],
                     "gpus": ["H200"], "formats": ["parquet", "csv", "html"],
                     "matrix": {"tp": [8], "weights_as": ["checkpoint", "fp8"]}})
    run_job(prepare(job), tmp_path / "run", quiet=True, offline=True)
    df = pl.read_parquet(tmp_path / "run" / "results.parquet")
    shipped = dict(df.filter(pl.col("weights_as") == "checkpoint").select("model", "weight_scheme").unique().iter_rows())
    assert shipped["deepseek-ai/DeepSeek-V3"].startswith("fp8-block128")
    assert shipped["Qwen/Qwen3-32B-AWQ"].startswith("awq-int4")
    html = (tmp_path / "run" / "report.html").read_text()
    assert f"as shipped: {shipped['deepseek-ai/DeepSeek-V3']}" in html and "fp8 (what-if)" in html


def test_letter_paper_from_the_job_and_render(tmp_path):
    import subprocess
    import sys

    job = parse_job({"name": "p", "models": ["Qwen/Qwen3-0.6B"], "gpus": ["L4"], "paper": "letter",
                     "formats": ["parquet", "csv", "pdf"]})
    assert job.paper == "Letter"
    run_job(prepare(job), tmp_path / "run", quiet=True, offline=True)
    info = subprocess.run(["pdfinfo", str(tmp_path / "run" / "report.pdf")], capture_output=True, text=True).stdout
    assert "792 x 612 pts" in info                                   # US Letter, landscape
    r = subprocess.run([sys.executable, "-m", "reportgen", "render", str(tmp_path / "run"), "--format", "pdf",
                        "--paper", "A4", "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    info = subprocess.run(["pdfinfo", str(tmp_path / "run" / "report.pdf")], capture_output=True, text=True).stdout
    assert "(A4)" in info and info.index("841.89") < info.index("595.2")   # A4, landscape
