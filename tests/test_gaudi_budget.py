"""Intel Gaudi cells are priced as the vllm-gaudi plugin sizes the KV cache (docs/decisions.md, "Gaudi / TPU plugins:
how they size the KV cache" and "Gaudi priced as vllm-gaudi sizes it").

Read in vllm-project/vllm-gaudi 091bbadd (the same formula in every tag v0.10.0 - v0.27.0rc0):
- vllm_gaudi/v1/worker/hpu_worker.py:399-441: after loading, ``free = mem_get_info()[0]``; the usable memory is
  ``free x gpu_memory_utilization``, of which ``VLLM_GRAPH_RESERVED_MEM`` (default '0.1'; 0 with enforce_eager) is kept
  for HPU graphs; the KV cache gets the rest less one block;
- hpu_model_runner.py:6339-6341: ``profile_run`` returns at once -- no activation, non-torch or graph estimate;
- platform.py:122-137: ``get_device_total_memory`` returns 0, so vLLM's scheduler takes its small-GPU defaults
  (2,048 batched tokens / 256 sequences);
- vLLM 0.34 turns the extensible KV cache off off CUDA / ROCm ("it is only supported on CUDA and ROCm", vllm 0.34.0
  sdist config/vllm.py:3200-3201), so an unset utilization resolves to 0.92 there (config/cache.py:494-500).

The one Gaudi log with these figures (vllm-gaudi docs/configuration/performance_tuning.md:9-17, the fork's V0 worker
on a Gaudi 2, Llama-3.1-8B at utilization 0.9, VLLM_GRAPH_RESERVED_MEM 0.1): 15.05 GiB of weights, "15.05/94.62 used",
79.22 GiB free after its (then still run) profile, usable 71.3, graphs 7.13, KV 64.17 GiB.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.catalog import load_catalog
from reportgen.job import Matrix
from reportgen.matrix import ModelEntry, estimate_one, evaluate_matrix

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen/sources/bundled"
LLAMA = build_spec(json.loads((BUNDLED / "meta-llama--Llama-3.1-8B-Instruct.json").read_text()))
GEMMA3 = build_spec(json.loads((BUNDLED / "google--gemma-3-12b-it.json").read_text()))
CAT = load_catalog()
GAUDI2, GAUDI3, H100 = CAT.get("intel_gaudi2"), CAT.get("intel_gaudi3"), CAT.get("H100")
BLOCK_GIB = 16 * 32 * 8 * 128 * 2 * 2 / 2**30      # one 16-token block of Llama-3.1-8B's bf16 KV


def test_the_docs_log_on_a_gaudi2():
    """(94.62 - weights) x 0.9 x (1 - 0.1) - one block; the log's 64.17 GiB came from 79.22 GiB free after the fork's
    profile (0.35 GiB, which the current plugin no longer runs) and 15.05 GiB of weights: within 0.6 %."""
    r = estimate_one(LLAMA, GAUDI2, max_model_len=8192, vllm_version="0.19", gpu_memory_utilization=0.9)
    w = r["weights_gib"]
    assert GAUDI2.usable_memory_gib == 94.62
    assert r["kv_cache_gib"] == pytest.approx((94.62 - w) * 0.9 * 0.9 - BLOCK_GIB)
    assert r["kv_cache_gib"] == pytest.approx(64.17, rel=0.006)
    assert 79.22 * 0.9 * 0.9 == pytest.approx(64.17, abs=0.01)        # the log's own arithmetic
    # nothing measured by a profile run; the graph reserve is the plugin's 10 % of the usable memory
    assert (r["activation_gib"], r["non_torch_gib"]) == (0.0, 0.0)
    assert r["cuda_graph_gib"] == pytest.approx((94.62 - w) * 0.9 * 0.1)
    assert (r["max_num_batched_tokens"], r["max_num_seqs"]) == (2048, 256)


def test_enforce_eager_drops_the_graph_reserve():
    r = estimate_one(LLAMA, GAUDI3, max_model_len=8192, vllm_version="0.27", enforce_eager=True)
    assert r["cuda_graph_gib"] == 0.0
    assert r["kv_cache_gib"] == pytest.approx((GAUDI3.usable_memory_gib - r["weights_gib"]) * 0.92 - BLOCK_GIB)


def test_0_34_default_runs_without_the_extensible_cache_on_a_gaudi():
    """One 0.34 job over an H100 and a Gaudi 3 at vLLM's defaults: the H100 takes the extensible cache at utilization
    1.0, the Gaudi the plugin's budget at 0.92; an explicit utilization is kept on both."""
    m = Matrix(vllm_version="0.34", max_model_len=[8192], concurrency=[1])
    df = evaluate_matrix([ModelEntry("meta-llama/Llama-3.1-8B-Instruct", LLAMA)], [H100, GAUDI3], m)
    rows = {r["gpu"]: r for r in df.iter_rows(named=True)}
    g, h = rows[GAUDI3.id], rows[H100.id]
    assert (h["gpu_memory_utilization"], g["gpu_memory_utilization"]) == (1.0, 0.92)
    # 0.34's default block is 64 tokens: the one block the plugin keeps back is counted in it (not the plugin's 128)
    assert g["block_size"] == 64
    assert g["kv_cache_gib"] == pytest.approx((GAUDI3.usable_memory_gib - g["weights_gib"]) * 0.92 * 0.9 - 4 * BLOCK_GIB)
    assert h["kv_cache_gib"] == pytest.approx(estimate_one(LLAMA, H100, max_model_len=8192)["kv_cache_gib"])
    assert h["activation_gib"] > 0 and g["activation_gib"] == 0.0
    at = estimate_one(LLAMA, GAUDI3, max_model_len=8192, vllm_version="0.34", gpu_memory_utilization=0.8)
    assert at["gpu_memory_utilization"] == 0.8
    assert at["kv_cache_gib"] == pytest.approx((GAUDI3.usable_memory_gib - at["weights_gib"]) * 0.8 * 0.9 - 4 * BLOCK_GIB)


def test_no_encoder_profile_on_a_gaudi():
    """A multimodal model: on CUDA vLLM profiles the vision encoder and charges it (longer contexts, larger dummy
    items); the plugin profiles nothing, so the KV memory does not move with max_model_len."""
    kv = {n: estimate_one(GEMMA3, GAUDI3, max_model_len=n, vllm_version="0.27")["kv_cache_gib"] for n in (8192, 32768)}
    assert kv[8192] == pytest.approx(kv[32768])
    r = estimate_one(GEMMA3, GAUDI3, max_model_len=32768, vllm_version="0.27")
    assert r["activation_gib"] == 0.0
    assert r["kv_cache_gib"] < (GAUDI3.usable_memory_gib - r["weights_gib"]) * 0.92 * 0.9


def test_only_gaudi_is_priced_the_plugin_way():
    from reportgen.estimate import overheads as oh
    assert oh.is_hpu("Intel", "Gaudi 3 (HL-325L OAM)") and not oh.is_hpu("Intel", "Data Center GPU Max 1550")
    assert not oh.is_hpu("NVIDIA", "H100") and not oh.is_hpu(None, "Gaudi")
    # the TPU is still priced as CUDA vLLM sizes memory: the profile-run terms are there
    r = estimate_one(LLAMA, CAT.get("google_tpu_v6e"), max_model_len=8192, vllm_version="0.27")
    assert r["activation_gib"] > 0 and r["non_torch_gib"] > 0
