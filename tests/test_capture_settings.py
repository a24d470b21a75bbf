"""The CUDA-graph capture set as the deployment sets it: ``--max-cudagraph-capture-size``, ``--cudagraph-capture-sizes``
and ``--compilation-config`` ``{cudagraph_capture_sizes, max_cudagraph_capture_size, cudagraph_mode}`` (issue 10: "the
number of CUDA-graph capture sizes (it follows max_num_seqs and the compilation config ...)").

Counts written out from vLLM's ``_set_cudagraph_sizes`` (vllm 0.11.1 sdist config/vllm.py:846-918, 0.34.0
:2371-2521): a user maximum M gives ``[1, 2, 4] + range(8, min(M + 1, 256), 8) + range(256, M + 1, 16)`` capped at
max_num_batched_tokens; a user list is de-duplicated and filtered to max_num_batched_tokens; FULL (uniform decode)
graphs for the sizes up to max_num_seqs; a maximum that differs from the list's largest size stops vLLM.
"""

from __future__ import annotations


import pytest
from cli_support import estimate_line

from reportgen.estimate import overheads as oh
from reportgen.estimate.profiles import capture_sizes, profile_for
from reportgen.job import JobError, Matrix, parse_matrix
from reportgen.matrix.inputs import GpuLike, gpu_table
from reportgen.vllm_args import VllmArgsError, parse_vllm_command

P27 = profile_for("0.27")[0]


def test_counts_follow_the_user_range():
    # max 64 at max_num_seqs 1024: [1, 2, 4, 8, ..., 64] = 11 sizes, all FULL too
    assert capture_sizes(P27, 1024, 8192, max_capture=64) == 11 + 11
    # a list: de-duplicated, above max_num_batched_tokens dropped, FULL up to max_num_seqs
    assert capture_sizes(P27, 1024, 8192, sizes_given=(1, 2, 4, 8, 16, 16)) == 5 + 5
    assert capture_sizes(P27, 8, 8192, sizes_given=(1, 2, 4, 8, 16)) == 5 + 4
    assert capture_sizes(P27, 1024, 100, sizes_given=(1, 64, 128)) == 2 + 2
    # speculative decoding (K = 1): rounded up to multiples of 2 under the largest size
    assert capture_sizes(P27, 1024, 8192, sizes_given=(1, 3, 8), num_spec=1) == 3 + 3


def test_user_range_replaces_a_models_own_maximum():
    """gpt-oss's config class raises the maximum to 1024 only when the user sets neither (``g_n_big``)."""
    gpu = [GpuLike(id="h100", name="H100", usable_memory_gib=79.19, gpus_per_node=8, compute_capability=(9, 0))]
    default = gpu_table(gpu, Matrix(vllm_version="0.27"))
    assert default["g_n_big"][0] == pytest.approx(166 / 102)         # 83 + 83 at max_num_seqs 1024
    user = gpu_table(gpu, Matrix(vllm_version="0.27", max_cudagraph_capture_size=64))
    assert user["g_n"][0] == user["g_n_big"][0] == pytest.approx(22 / 102)


def test_pasted_flags_and_compilation_config():
    cmd = parse_vllm_command("vllm serve m --max-cudagraph-capture-size 64 --cudagraph-capture-sizes 1 2 4 8 64")
    assert cmd.engine["max_cudagraph_capture_size"] == 64
    assert cmd.engine["cudagraph_capture_sizes"] == [1, 2, 4, 8, 64]
    cmd = parse_vllm_command("""vllm serve m --compilation-config '{"cudagraph_mode": "none", "cudagraph_capture_sizes": [4, 1]}'""")
    assert cmd.engine["cudagraph_mode"] == "NONE" and cmd.engine["cudagraph_capture_sizes"] == [1, 4]
    cmd = parse_vllm_command("vllm serve m --compilation-config.max_cudagraph_capture_size 32")
    assert cmd.engine["max_cudagraph_capture_size"] == 32
    with pytest.raises(VllmArgsError, match="level: compilation settings reportgen does not model"):
        parse_vllm_command("""vllm serve m --compilation-config '{"level": 3}'""")
    with pytest.raises(VllmArgsError, match="optimisation level"):
        parse_vllm_command("vllm serve m --compilation-config 3")
    with pytest.raises(VllmArgsError, match="does not model"):
        parse_vllm_command("vllm serve m --cuda-graph-sizes 8")     # 0.10 / 0.11's list: another meaning by release


def test_job_keys_and_what_vllm_refuses():
    m = parse_matrix({"vllm_version": "0.27", "cudagraph_capture_sizes": [8, 1, 8], "cudagraph_mode": "full_and_piecewise"})
    assert m.cudagraph_capture_sizes == [1, 8] and m.cudagraph_mode == "FULL_AND_PIECEWISE"
    with pytest.raises(JobError, match="should be consistent"):
        parse_matrix({"vllm_version": "0.27", "cudagraph_capture_sizes": [1, 64], "max_cudagraph_capture_size": 32})
    with pytest.raises(JobError, match="another rule"):
        parse_matrix({"vllm_version": "0.11.0", "max_cudagraph_capture_size": 32})
    with pytest.raises(JobError, match="CUDA-graph memory is priced for FULL_AND_PIECEWISE and NONE only"):
        parse_matrix({"vllm_version": "0.27", "cudagraph_mode": "PIECEWISE"})
    with pytest.raises(JobError, match="whole number"):
        parse_matrix({"vllm_version": "0.27", "max_cudagraph_capture_size": 0})


def _estimate(line: str, version: str = "0.27") -> dict:
    return estimate_line(line, version)


MOE = "vllm serve Qwen/Qwen3-30B-A3B --max-model-len 8192 --gpu-memory-utilization 0.9 "


def test_graph_memory_and_kv_follow_the_count():
    """0.27, a MoE (Model Runner V1: 1.64 x the captured graphs estimated in the budget).  The fitted graph memory's
    per-layer part scales with the number of graphs (51 + 51 fitted), the base stays: at max 64 (22 graphs)
    G = base + (G_default - base) x 22 / 102; the KV cache gets 1.64 x the difference back."""
    base = _estimate(MOE)
    small = _estimate(MOE + "--max-cudagraph-capture-size 64")
    expected = oh.G_BASE + (base["cuda_graph_gib"] - oh.G_BASE) * 22 / 102
    assert small["cuda_graph_gib"] == pytest.approx(expected, abs=1e-6)
    assert small["kv_cache_gib"] - base["kv_cache_gib"] == pytest.approx(
        1.64 * (base["cuda_graph_gib"] - small["cuda_graph_gib"]), abs=0.01)
    none = _estimate(MOE + """--compilation-config '{"cudagraph_mode": "NONE"}'""")
    eager = _estimate(MOE + "--enforce-eager")
    assert none["cuda_graph_gib"] == 0 and none["kv_cache_gib"] == eager["kv_cache_gib"]


def test_034_decode_graphs_are_request_counts_of_the_list():
    """0.34 (q = 1): decode request counts min(s, max_num_seqs) over the list (config/vllm.py:2659-2667) -- a list
    reaching past an off-list max_num_seqs captures it too; 0.33 counted the sizes up to max_num_seqs."""
    from reportgen.estimate.profiles import parse_version
    p34, p33 = profile_for("0.34")[0], profile_for("0.33")[0]
    given = (1, 64, 128)
    assert capture_sizes(p34, 100, 8192, sizes_given=given, version=parse_version("0.34")) == 3 + 3   # 1, 64, 100
    assert capture_sizes(p33, 100, 8192, sizes_given=given, version=parse_version("0.33")) == 3 + 2   # 1, 64
