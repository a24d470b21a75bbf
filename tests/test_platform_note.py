"""GPUs vLLM does not run on its CUDA / ROCm paths (Intel Gaudi, Google TPU: platform plugins) are priced with CUDA
vLLM's sizing; the estimate, the manifest and the report say so beside those GPUs only, naming the terms the plugin
sizes the KV cache by (read from vllm-gaudi 091bbadd and tpu-inference b8692ff0; docs/decisions.md, "Gaudi / TPU
plugins: how they size the KV cache")."""

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


def test_note_names_the_plugin_terms():
    # vllm-gaudi hpu_worker.py:410-420: free HBM after loading x gpu_memory_utilization x (1 - VLLM_GRAPH_RESERVED_MEM,
    # default '0.1'); platform.py:155-156: block_size 128 when not given
    intel = platform_note("Intel")
    assert "(vllm-gaudi)" in intel and "free after loading the weights" in intel
    assert "(1 - VLLM_GRAPH_RESERVED_MEM, 0.1 by default)" in intel and "128-token blocks" in intel
    # tpu-inference tpu_worker.py:519-520: bytes_limit x gpu_memory_utilization - bytes_in_use; utils.py:231-237: head_dim
    # padded to a multiple of 128 except 64
    google = platform_note("Google")
    assert "(tpu-inference)" in google and "HBM limit x gpu_memory_utilization - the HBM in use" in google
    assert "head_dim to a multiple of 128 (64 excepted)" in google
    # Gaudi's cells are priced the plugin's way (tests/test_gaudi_budget.py), the TPU's still as CUDA; an accelerator
    # whose plugin was not read keeps the generic sentence
    assert "its cells are priced that way" in intel and "vLLM 0.28+ was not read" in intel
    assert "its cells are priced as CUDA vLLM sizes memory" in google
    assert "whose memory accounting reportgen does not read" in platform_note("Huawei")
    assert "whose memory accounting" not in intel + google


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
    assert html.count("a platform plugin (vllm-gaudi)") == 1 and "(tpu-inference)" not in html


def test_plugin_accelerator_totals_are_the_logged_ones():
    """The device totals the plugins size from, as their logs print them (docs/decisions.md, "Gaudi / TPU plugins"):
    Gaudi 2's PyTorch total '94.62' ('15.05/94.62 used', vllm-gaudi docs; vllm-fork #809), a v6e's XLA bytes_limit
    33,550,237,696 B (vLLM PR #16211; 'total_hbm_limit_gb=31.24'), a v5e's 'cap=14.49' at utilization 0.92."""
    cat = load_catalog()
    assert cat.get("intel_gaudi2").usable_memory_gib == 94.62
    assert cat.get("google_tpu_v6e").usable_memory_gib == round(33_550_237_696 / 2**30, 2) == 31.25
    assert round(cat.get("google_tpu_v5e").usable_memory_gib * 0.92, 2) == 14.49
    for sku in ("intel_gaudi2", "google_tpu_v6e", "google_tpu_v5e"):
        assert "docs/decisions.md 'Gaudi / TPU plugins'" in cat.get(sku).memory_source
