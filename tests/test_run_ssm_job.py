"""A job mixing attention-free state-space models (mamba, mamba2) with a plain model runs end to end:
cells say "no KV tokens" plainly (block = max_model_len, KV bytes per token 0, capacity in state slots),
and the HTML and XLSX carry them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl

from reportgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "tests" / "data" / "ssm_job" / "ssm_mix.toml"


def test_ssm_mix_job_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)                       # the job names its local models relative to the repo root
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    assert main(["run", str(JOB), "--offline", "--out", str(out), "-q"]) == 0
    res = pl.read_parquet(out / "results.parquet")
    assert res.height == 3 * 3 * 2 * 2
    ssm = res.filter(pl.col("model_type").is_in(["mamba", "mamba2"]))
    assert set(ssm["model_type"]) == {"mamba", "mamba2"}
    assert (ssm["kv_bytes_per_token"] == 0).all() and (ssm["state_bytes_per_seq"] > 0).all()
    assert (ssm["block_size"] == ssm["max_model_len"]).all()
    ok = ssm.filter(pl.col("status").is_in(["fits", "tight"]))
    assert ok.height == 4 * 3 + 4 * 2                     # mamba2 at tp 3: 128 heads do not split
    assert ok["concurrency_limited_by"].is_in(["state_slots", "max_num_seqs"]).all()
    # "GPU KV cache size" = state slots x max_model_len, the same slots at every context length
    assert (ok["kv_cache_tokens"] == ok["max_concurrency"].cast(pl.Int64) * ok["max_model_len"]).all()
    by_len = ok.group_by("model", "tp").agg(pl.col("max_concurrency").n_unique())
    assert (by_len["max_concurrency"] == 1).all()
    # Codestral-shaped mamba2 at TP1: 64 layers x (3 x 10240 + 128 x 64 x 128) x 2 bytes per sequence
    cs = ok.filter((pl.col("model_type") == "mamba2") & (pl.col("tp") == 1))
    assert set(cs["state_bytes_per_seq"]) == {64 * (3 * 10240 + 128 * 64 * 128) * 2}
    bad = ssm.filter(pl.col("status") == "invalid_layout")
    assert bad.height == 4 and bad["reason"].str.contains(r"mamba heads \(128\) % tp \(3\)").all()
    plain = res.filter(pl.col("model_type") == "llama")
    assert (plain["block_size"] == 64).all() and (plain["state_bytes_per_seq"] == 0).all()   # 0.34 default block
    html = (out / "report.html").read_text()
    assert html.count("none (attention-free: a recurrent state per sequence)") == 2
    with zipfile.ZipFile(out / "results.xlsx") as z:
        strings = z.read("xl/sharedStrings.xml").decode()
    assert "state_slots" in strings and "mamba2" in strings
