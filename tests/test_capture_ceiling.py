"""CUDA-graph capture sizes from vLLM 0.28 / 0.31 (issue 10: "the number of CUDA-graph capture sizes ... follows
max_num_seqs and the compilation config, so graph memory is not a per-model constant").

The counts below are written out from vLLM's ``_set_cudagraph_sizes`` (vllm 0.34.0 sdist config/vllm.py:2371-2502):
sizes ``[1, 2, 4] + range(8, 256, 8) + range(256, max + 1, 16)`` with ``max = min(2 x max_num_seqs, ceiling,
max_num_batched_tokens)``, PIECEWISE graphs for all of them and FULL (uniform decode) graphs for those up to
``max_num_seqs``; the ceiling is 1024 on SM 10.x from 0.28.0 (512 elsewhere and before), and from 0.31.0 an
off-grid ``max_num_seqs`` is one more size.  From 0.34.0 Model Runner V2 takes prefill (token) and decode (request)
graphs apart, and on SM 10.x without a user capture range each gets a wider default grid (config/vllm.py:2604-2665,
config/compilation.py:54-127).
"""

from __future__ import annotations

import pytest

from reportgen.estimate.profiles import (REFERENCE_CAPTURE_SIZES, capture_ceiling, capture_sizes, parse_version,
                                         profile_for)
from reportgen.job import Matrix
from reportgen.matrix.inputs import GpuLike, gpu_table


def _n(version: str, seqs: int, tokens: int, capability=(9, 0)) -> int:
    v = parse_version(version)
    return capture_sizes(profile_for(version)[0], seqs, tokens, ceiling=capture_ceiling(capability, v), version=v)


@pytest.mark.parametrize("capability,version,ceiling", [
    ((10, 0), "0.27.1", 512), ((10, 0), "0.28.0", 1024), ((10, 3), "0.34", 1024),   # B200 / GB200, B300 / GB300
    ((12, 0), "0.34", 512), ((9, 0), "0.34", 512), (None, "0.34", 512),             # RTX PRO 6000 / 5090, H100
])
def test_ceiling_by_capability_family_and_release(capability, version, ceiling):
    assert capture_ceiling(capability, parse_version(version)) == ceiling


def test_data_center_blackwell_captures_up_to_1024_from_028():
    # 3 + 31 + len(range(256, 1025, 16)) = 83 sizes, all of them FULL too at max_num_seqs 1024
    assert _n("0.28.0", 1024, 16384, (10, 0)) == 83 + 83
    assert _n("0.27.1", 1024, 16384, (10, 0)) == 51 + 51 == REFERENCE_CAPTURE_SIZES
    assert _n("0.34", 1024, 16384, (9, 0)) == 102
    # the ceiling is a ceiling: at max_num_seqs 256 the maximum is 512 either way
    assert _n("0.33", 256, 8192, (10, 0)) == _n("0.33", 256, 8192, (9, 0)) == 51 + 35


def test_off_grid_max_num_seqs_is_captured_from_031():
    # max_num_seqs 100: max = 200 -> [1, 2, 4] + 8..200 = 28 sizes, FULL 1, 2, 4, 8..96 = 15; 0.31+ adds 100 to both
    assert _n("0.30", 100, 8192) == 28 + 15
    assert _n("0.31", 100, 8192) == 29 + 16
    # on the grid nothing changes; above max_num_batched_tokens it is not captured
    assert _n("0.31", 96, 8192) == _n("0.30", 96, 8192)
    assert _n("0.31", 100, 64) == _n("0.30", 100, 64)


def test_gpu_table_scales_the_graph_terms_per_gpu():
    gpus = [GpuLike(id="b200", name="B200", usable_memory_gib=178.56, gpus_per_node=8, compute_capability=(10, 0)),
            GpuLike(id="h200", name="H200", usable_memory_gib=139.81, gpus_per_node=8, compute_capability=(9, 0))]
    t = gpu_table(gpus, Matrix(vllm_version="0.33", max_num_seqs=1024, max_num_batched_tokens=16384))
    g_n = dict(zip(t["gpu"], t["g_n"]))
    assert g_n["b200"] == pytest.approx(166 / 102)
    assert g_n["h200"] == pytest.approx(1.0)


def test_grids_as_vllm_034_documents_them():
    from reportgen.estimate.capture_sizes import decode_grid, prefill_grid
    # "54 sizes at 8192" / "64 sizes at 1024" (vllm 0.34.0 sdist config/compilation.py:89-127 docstrings)
    p = prefill_grid(8192)
    assert len(p) == 54 and p[:11] == [1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64] and p[-1] == 8192
    d = decode_grid(1024)
    assert len(d) == 64 and d[:7] == [1, 2, 3, 4, 5, 6, 8] and d[-1] == 1024


def test_034_data_center_blackwell_takes_the_wide_prefill_and_decode_grids():
    from reportgen.estimate.capture_sizes import wide_sm100
    v34, v33 = parse_version("0.34"), parse_version("0.33")
    assert wide_sm100((10, 0), v34, user_set=False) and wide_sm100((10, 3), v34, False)
    assert not wide_sm100((10, 0), v33, False) and not wide_sm100((12, 0), v34, False)
    assert not wide_sm100((10, 0), v34, user_set=True)        # a user capture range keeps the shared list
    p34 = profile_for("0.34")[0]
    # B200 defaults (16384 batched tokens, 1024 sequences): 54 prefill + 64 decode graphs
    assert capture_sizes(p34, 1024, 16384, version=v34, ceiling=1024, wide=True) == 54 + 64
    # 2048 batched tokens: the prefill grid stops there (31 sizes); the decode grid still reaches 1024 requests
    assert capture_sizes(p34, 1024, 2048, version=v34, ceiling=1024, wide=True) == 31 + 64
    gpus = [GpuLike(id="b200", name="B200", usable_memory_gib=178.56, gpus_per_node=8, compute_capability=(10, 0))]
    t = gpu_table(gpus, Matrix(vllm_version="0.34"))
    assert t["g_n"][0] == pytest.approx(118 / 102)
    # gpt-oss's own 1024 maximum is not set on SM 10.x at 0.34 (the wide grids cover it)
    assert t["g_n_big"][0] == t["g_n"][0]
    # 0.33: the shared list up to the 1024 ceiling, gpt-oss's 1024 the same
    t33 = gpu_table(gpus, Matrix(vllm_version="0.33"))
    assert t33["g_n"][0] == t33["g_n_big"][0] == pytest.approx(166 / 102)
