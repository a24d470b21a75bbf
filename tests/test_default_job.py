"""The bundled default job end to end, offline, as `make report` runs it; then render and diff on its output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from reportgen.job import load_job

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("default") / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "reportgen", "run", str(ROOT / "model_lists" / "default.toml"),
                        "--out", str(out)], capture_output=True, text=True, env=env, timeout=900)
    return r, out


def test_default_job_writes_every_file_offline(default_run):
    r, out = default_run
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("results.parquet", "results.csv", "results.xlsx", "report.html", "report.pdf",
                 "errors.csv", "manifest.json"):
        assert (out / name).stat().st_size > 0, name
    # progress went to stderr as plain lines (not a terminal)
    assert "resolving models" in r.stderr and "rendering" in r.stderr
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]   # no temp dir left


def test_default_job_covers_every_model_gpu_and_axis(default_run):
    _, out = default_run
    job = load_job(ROOT / "model_lists" / "default.toml")
    res = pl.read_parquet(out / "results.parquet")
    assert set(res["model"]) == {m.id for m in job.models}
    assert res["gpu"].n_unique() == 8
    assert set(res["tp"]) == {1, 2, 4, 8} and set(res["pp"]) == {1, 2}
    assert set(res["max_model_len"]) == {8192, 32768, 131072}
    assert res.filter(pl.col("status") == "error").height == 0
    assert {"fits", "no_fit", "invalid_layout"} <= set(res["status"])
    html = (out / "report.html").read_text()
    for m in job.models:
        assert m.id in html
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cells"] == res.height and manifest["exit_code"] == 0


def test_default_job_prices_deepseek_v4_flash_at_its_fp8_kv_axis(default_run):
    """default.toml gives DeepSeek-V4-Flash its own KV axis (["fp8"]: vLLM's DeepseekV4 attention asserts an fp8
    cache, deepseek_v4_attention.py @0a291a2e), so its cells are priced, not invalid_layout; the cell count and
    the report follow the per-model axis (no KV-dtype scenario split: each model has one KV dtype)."""
    from reportgen.job import check_size

    _, out = default_run
    job = load_job(ROOT / "model_lists" / "default.toml")
    res = pl.read_parquet(out / "results.parquet")
    d = res.filter(pl.col("model") == "deepseek-ai/DeepSeek-V4-Flash")
    # 8 layouts x 2 weights x 1 KV dtype x 3 lengths x 2 targets x 8 GPUs
    assert d.height == 8 * 2 * 1 * 3 * 2 * 8 == 768
    assert set(d["kv_cache_dtype"]) == {"fp8"} and set(d["kv_cache_dtype_used"].drop_nulls()) == {"fp8_ds_mla"}
    assert not d.filter(pl.col("reason").fill_null("").str.contains("only supports fp8")).height
    assert d.filter(pl.col("status").is_in(["fits", "tight"])).height > 0
    assert (d["kv_cache_tokens"].drop_nulls() > 0).any()
    assert set(res.filter(pl.col("model") != "deepseek-ai/DeepSeek-V4-Flash")["kv_cache_dtype"]) == {"auto"}
    assert json.loads((out / "manifest.json").read_text())["cells"] == res.height == check_size(job, 8)


def test_render_rebuilds_reports_without_recomputing(default_run, tmp_path):
    _, out = default_run
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.html").unlink()
    r = subprocess.run([sys.executable, "-m", "reportgen", "render", str(copy), "--format", "html", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (copy / "report.html").read_text().count("meta-llama/Llama-3.1-8B-Instruct") >= 1


def test_diff_of_a_run_with_itself_is_empty_and_sees_a_change(default_run, tmp_path):
    _, out = default_run
    r = subprocess.run([sys.executable, "-m", "reportgen", "diff", str(out), str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and "status 0" in r.stdout and "added 0" in r.stdout
    res = pl.read_parquet(out / "results.parquet")
    flipped = res.with_columns(
        pl.when((pl.col("model") == "Qwen/Qwen3-8B") & (pl.col("status") == "fits"))
        .then(pl.lit("no_fit")).otherwise(pl.col("status")).alias("status"))
    flipped.write_parquet(tmp_path / "results.parquet")
    n = res.filter((pl.col("model") == "Qwen/Qwen3-8B") & (pl.col("status") == "fits")).height
    r = subprocess.run([sys.executable, "-m", "reportgen", "diff", str(out), str(tmp_path)],
                       capture_output=True, text=True)
    assert f"status {n:,}" in r.stdout and "fits -> no_fit" in r.stdout
