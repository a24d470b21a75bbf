"""A multimodal model through the batch: the job's limit_mm_per_prompt, and the report's section split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from reportgen.job import JobError, parse_matrix

ROOT = Path(__file__).resolve().parents[1]
QWEN3_VL = ROOT / "tests" / "data" / "configs_2026" / "Qwen--Qwen3-VL-8B-Instruct.json"


def _run(tmp_path: Path, name: str, extra: str = "") -> subprocess.CompletedProcess:
    model_dir = tmp_path / "Qwen3-VL-8B"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "config.json").write_text(QWEN3_VL.read_text())
    job = tmp_path / f"{name}.toml"
    job.write_text(f'name = "{name}"\nmodels = ["{model_dir.as_posix()}"]\ngpus = ["H100"]\n'
                   f'formats = ["parquet", "html"]\n[matrix]\n{extra}')
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "reportgen", "run", str(job), "--out", str(tmp_path / name), "-q"],
                          capture_output=True, text=True, env=env, timeout=600)


def test_report_shows_tower_and_projector_apart_and_text_only_drops_them(tmp_path):
    r = _run(tmp_path, "full")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "full" / "report.html").read_text()
    assert "Weights by section" in page
    # Qwen3-VL-8B: tower 1152 wide x 27 blocks; projector = merger + 3 deepstack mergers (bf16)
    for label in ("text stack", "vision tower", "projector"):
        assert label in page
    r = _run(tmp_path, "text", 'limit_mm_per_prompt = {image = 0, video = 0}\n')
    assert r.returncode == 0, r.stderr
    full = pl.read_parquet(tmp_path / "full" / "results.parquet").row(0, named=True)
    text = pl.read_parquet(tmp_path / "text" / "results.parquet").row(0, named=True)
    # the tower + projector's bf16 bytes, plus PyTorch's allocator rounding of their blocks (vLLM 0.21+: a
    # parameter of >= 20 MiB keeps its whole 2 MiB-rounded block, weights.allocator_unsplit_bytes): at most 2 MiB
    # a parameter, here 6 MiB over the 1.0736 GiB of tensors
    extra = (full["weights_gib"] - text["weights_gib"]) * 2**30 - 576_388_336 * 2
    assert 0 <= extra < 2 * 2**20 * 10 and extra % 2**10 == 0
    assert text["activation_gib"] < full["activation_gib"]
    assert text["kv_cache_tokens"] > full["kv_cache_tokens"]


def test_job_limit_mm_per_prompt_is_validated():
    assert parse_matrix({"limit_mm_per_prompt": {"image": 2}}).limit_mm_per_prompt == {"image": 2}
    assert parse_matrix({"limit_mm_per_prompt": "image=0"}).limit_mm_per_prompt == {"image": 0}
    with pytest.raises(JobError, match="matrix.limit_mm_per_prompt.image"):
        parse_matrix({"limit_mm_per_prompt": {"image": -1}})


def test_section_bytes_of_a_shipped_checkpoint():
    from reportgen.arch import build_spec
    from reportgen.estimate.sections import weight_sections

    secs = weight_sections(build_spec(json.loads(QWEN3_VL.read_text())))
    assert secs["text stack"]["params"] == 8_190_735_360
    assert secs["vision tower"]["params"] + secs["projector"]["params"] == 576_388_336
    assert secs["projector"]["bytes"] == 2 * secs["projector"]["params"]     # bf16, unquantized


def test_trimmed_checkpoint_says_its_tower_came_from_defaults(tmp_path):
    cfg = json.loads(QWEN3_VL.read_text())
    cfg.pop("vision_config")
    model_dir = tmp_path / "trimmed"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(cfg))
    job = tmp_path / "t.toml"
    job.write_text(f'name = "t"\nmodels = ["{model_dir.as_posix()}"]\ngpus = ["H100"]\nformats = ["html"]\n')
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "reportgen", "run", str(job), "--out", str(tmp_path / "out"), "-q"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "vision tower is transformers&#39; class default" in (tmp_path / "out" / "report.html").read_text()


def test_estimate_fields_split_tower_and_projector():
    from reportgen.arch import build_spec
    from reportgen.estimate_cmd import arch_fields

    out = arch_fields("m", build_spec(json.loads(QWEN3_VL.read_text())), "checkpoint", "auto")
    assert out["params_vision_tower"] + out["params_projector"] == 576_388_336
    assert out["params_text"] == 8_190_735_360
