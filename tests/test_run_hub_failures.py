"""Issue 5's batch: bundled, local, cached, hub, a 404, a gated repo, a malformed config and a slow
endpoint in one job against a local fake hub -> correct rows for the good ones, one clear error row
per bad one, exit 1; the token never reaches any output."""

import contextlib
import io
import json
from pathlib import Path

import polars as pl
from hubserver import fake_hub, prefill_cache  # noqa: F401 - fixture

from reportgen.cli import main

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
QWEN = json.loads((BUNDLED / "Qwen--Qwen3-0.6B.json").read_text())
TOKEN = "hf_SeCrEtToKeN1234567890abcdef"


def test_mixed_job_against_a_failing_hub(fake_hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    fake_hub.add("acme/good", {"config.json": QWEN})
    fake_hub.add("acme/cached", {"config.json": QWEN}, behaviour="error500")
    prefill_cache(fake_hub.cache_dir, "acme/cached", {"config.json": QWEN})
    fake_hub.add("acme/gated", {"config.json": QWEN}, behaviour="gated")
    fake_hub.add("acme/broken", {"config.json": b'{"model_type": "llama", '})
    fake_hub.add("acme/slow", {"config.json": QWEN}, behaviour="slow", delay=5)
    fake_hub.add("meta-llama/Llama-3.2-3B", behaviour="error500")          # hub down -> bundled copy
    local = tmp_path / "local-model"
    local.mkdir()
    (local / "config.json").write_text(json.dumps(QWEN))
    job = tmp_path / "job.toml"
    models = ["acme/good", "acme/cached", "meta-llama/Llama-3.2-3B", str(local), "acme/missing", "acme/gated",
              "acme/broken", "acme/slow"]
    job.write_text(f"models = {json.dumps(models)}\ngpus = [\"H100\"]\nformats = [\"parquet\", \"csv\", \"html\"]\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["run", str(job), "--out", str(tmp_path / "run"), "--hub-timeout", "0.5", "--hub-retries", "1"])
    assert rc == 1
    res = pl.read_parquet(tmp_path / "run" / "results.parquet")
    sources = dict(res.filter(pl.col("status") != "error").select("model", "config_source").unique().iter_rows())
    assert sources == {"acme/good": "hub", "acme/cached": "cache", "meta-llama/Llama-3.2-3B": "bundled",
                       str(local): "local"}
    errors = pl.read_csv(tmp_path / "run" / "errors.csv")
    kinds = dict(zip(errors["model"], errors["kind"]))
    assert kinds == {"acme/missing": "not_found", "acme/gated": "gated", "acme/broken": "malformed_config",
                     "acme/slow": "network"}
    assert "HF_TOKEN" in dict(zip(errors["model"], errors["message"]))["acme/gated"]
    for path in (tmp_path / "run").iterdir():
        assert TOKEN not in path.read_text(errors="ignore"), path.name
    assert TOKEN not in err.getvalue()
