"""A job mixing hybrids and plain models runs end to end; cells, HTML and XLSX carry the state memory."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl

from reportgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "tests" / "data" / "hybrid_job" / "hybrid_mix.toml"


def test_hybrid_mix_job_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)                       # the job names its local model relative to the repo root
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    rc = main(["run", str(JOB), "--offline", "--out", str(out), "-q"])
    assert rc == 0
    res = pl.read_parquet(out / "results.parquet")
    assert res.height == 3 * 2 * 3 * 2 * 2
    hyb = res.filter(pl.col("model_type").is_in(["qwen3_next", "qwen3_5_text"]) & pl.col("kv_cache_tokens").is_not_null())
    plain = res.filter(pl.col("model_type") == "llama")
    assert hyb.height and (hyb["state_bytes_per_seq"] > 0).all() and (hyb["block_size"] > 16).all()
    assert (plain["state_bytes_per_seq"] == 0).all() and (plain["block_size"] == 16).all()
    # Qwen3.5-27B text at TP1: 48 GDN layers, float32 delta-rule state -> attention block 784 tokens
    q35 = res.filter((pl.col("model_type") == "qwen3_5_text") & (pl.col("tp") == 1))
    assert set(q35["block_size"]) == {784}
    assert q35["state_bytes_per_seq"][0] == 48 * 784 * 4 * 256 * 2 * 2
    fits = res.filter(pl.col("status").is_in(["fits", "tight"]))
    assert fits["concurrency_limited_by"].is_in(["kv_tokens", "state_slots", "max_num_seqs"]).all()
    assert res.filter(pl.col("status") == "invalid_layout")["concurrency_limited_by"].is_null().all()
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header.endswith("state_bytes_per_seq,block_size,concurrency_limited_by,speculative,draft_weights_gib")
    html = (out / "report.html").read_text()
    assert 'class="seg seg-s"' in html and "recurrent state of the target concurrency" in html
    assert "state " in html and "/sequence" in html
    with zipfile.ZipFile(out / "results.xlsx") as z:
        strings = z.read("xl/sharedStrings.xml").decode()
    assert "state_bytes_per_seq" in strings and "concurrency_limited_by" in strings
