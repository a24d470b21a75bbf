"""GPUs vLLM does not run on its CUDA / ROCm paths (Intel Gaudi, Google TPU: platform plugins reportgen has not read)
are priced with CUDA vLLM's sizing; the estimate, the manifest and the report say so beside those GPUs only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from reportgen.catalog import load_catalog, platform_note
from reportgen.job import parse_job
from reportgen.run import prepare, run_job


def test_note_by_vendor_over_the_catalog():
    cat = load_catalog()
    noted = {g.id for g in cat.skus.values() if platform_note(g.vendor)}
    assert noted == {g.id for g in cat.skus.values() if g.vendor in ("Intel", "Google")}
    assert {"intel_gaudi2", "google_tpu_v6e"} <= noted
    assert not platform_note("NVIDIA") and not platform_note("AMD") and not platform_note(None)
    assert platform_note("Google").startswith("Google accelerator: vLLM serves it through a platform plugin")


def test_estimate_json_carries_it_for_a_tpu_only():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def est(gpu):
        r = subprocess.run([sys.executable, "-m", "reportgen", "estimate", "Qwen/Qwen3-8B", "--gpu", gpu, "--offline",
                            "--json"], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert "platform plugin" in est("google_tpu_v5p")["platform_note"]
    assert "platform_note" not in est("H100")


def test_run_manifest_and_report(tmp_path):
    job = parse_job({"name": "plat", "models": ["Qwen/Qwen3-8B"], "gpus": ["H100", "intel_gaudi3"],
                     "formats": ["parquet", "html"], "matrix": {"tp": [1]}})
    run_job(prepare(job), tmp_path / "run", quiet=True, offline=True)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    notes = {g["id"]: g["platform_note"] for g in manifest["gpus"]}
    assert notes["nvidia_h100_80gb_sxm"] == "" and notes["intel_gaudi3"].startswith("Intel accelerator:")
    html = (tmp_path / "run" / "report.html").read_text()
    assert html.count("platform plugin whose memory accounting reportgen does not read") == 1
