"""No CUDA-graph estimate on ROCm before vLLM 0.26 (branch platformaudit's audit; issue 10: "the CUDA graph estimate
... whether it is taken from the budget").

vLLM gates ``profile_cudagraph_memory()`` by platform: ``not current_platform.is_rocm()`` (vllm 0.18.0 sdist
v1/worker/gpu_worker.py:398, 0.20.0 :380-385), ``current_platform.is_cuda()`` (0.21.0 :402-407 .. 0.25.1),
``is_cuda_alike()`` from 0.26.0.  So on an AMD GPU through 0.25 the graphs are captured after the cache is sized:
KV is larger by exactly what the estimate would have taken, and the captured graphs count in the after-profiling
out-of-memory check instead.
"""

from __future__ import annotations

import pytest

from cli_support import estimate_line
from reportgen.estimate.overheads import graph_estimate_on_platform

MOE = "vllm serve Qwen/Qwen3-30B-A3B --max-model-len 8192 --gpu-memory-utilization 0.9"


@pytest.mark.parametrize("vendor,version,on", [
    ("AMD", (0, 20, 0), False), ("amd", (0, 25, 1), False), ("AMD", (0, 26, 0), True), ("AMD", None, True),
    ("NVIDIA", (0, 20, 0), True), ("", (0, 22, 0), True), (None, (0, 25, 0), True),
])
def test_platform_gate(vendor, version, on):
    assert graph_estimate_on_platform(vendor, version) is on


def test_mi300x_keeps_the_estimate_out_of_the_budget_before_026():
    """Qwen3-30B-A3B (Model Runner V1 MoE: the 0.20.1-0.25 estimate is 0.89 x the captured graphs).  On an MI300X at
    0.22 the KV memory is what the same line with VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0 gives (no estimate),
    i.e. 0.89 x graphs more than with the estimate; on an H100 the estimate is taken; at 0.26 ROCm takes it too."""
    mi = estimate_line(MOE, "0.22", gpu="MI300X")
    mi_off = estimate_line("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0 " + MOE, "0.22", gpu="MI300X")
    assert mi["kv_cache_gib"] == pytest.approx(mi_off["kv_cache_gib"], abs=1e-9)
    mi_on = estimate_line("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 " + MOE, "0.22", gpu="MI300X")
    assert mi_on["kv_cache_gib"] == pytest.approx(mi["kv_cache_gib"], abs=1e-9)   # vLLM skips it there either way
    h = estimate_line(MOE, "0.22", gpu="H100")
    h_off = estimate_line("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0 " + MOE, "0.22", gpu="H100")
    assert h_off["kv_cache_gib"] - h["kv_cache_gib"] == pytest.approx(0.89 * h["cuda_graph_gib"], abs=0.01)
    mi26 = estimate_line(MOE, "0.26", gpu="MI300X")
    mi26_off = estimate_line("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0 " + MOE, "0.26", gpu="MI300X")
    assert mi26_off["kv_cache_gib"] - mi26["kv_cache_gib"] == pytest.approx(1.64 * mi26["cuda_graph_gib"], abs=0.01)
