"""CUDA graphs captured with speculative decoding on Model Runner V2 (every model from vLLM 0.29).

Each count below is written out by hand from the vLLM code of the release (q = 1 + num_speculative_tokens):

- the size list (``_set_cudagraph_sizes``): ``[1, 2, 4] + range(8, 256, 8) + range(256, top + 1, 16)`` with
  ``M = min(max_num_seqs x q x 2, ceiling)`` and ``top = min(M, max_num_batched_tokens)`` (vllm 0.29.0 sdist
  config/vllm.py:2011-2013, :2093, :2120-2132), max_num_batched_tokens appended when within M (:2133-2138), and the
  uniform decode sizes ``n x q`` for n in ``request_counts(max_num_seqs)`` (``[1, 2, 4] + range(8, 256, 8) +
  range(256, r + 1, 16) + [r]``, r = min(max_num_seqs, ceiling): :2030-2037) with ``n x q <= M`` (:2084-2092) and
  ``<= max_num_batched_tokens`` (:2140-2145); the same lines in 0.30.0-0.33.0, 0.34.0 :2397-2503;
- no rounding to multiples of q on Model Runner V2 (``not use_v2_model_runner``: 0.29.0 config/compilation.py:1481-1496;
  no such call in 0.34.0);
- PIECEWISE: one graph per size; FULL (uniform decode): 0.29-0.33 each size rounded up to a multiple of q, kept when
  ``<= max_num_seqs x q`` and ``<= max`` (v1/worker/gpu/cudagraph_utils.py:252-274 in 0.29.0, :313-335 in 0.31.0),
  de-duplicated; 0.34 the request counts ``min(cdiv(s, q), max_num_seqs)`` (config/vllm.py:2661-2671), each an (n, q)
  graph (cudagraph_utils.py:331-367);
- 0.34 on SM 10.x (no user range): the prefill grid up to min(8192, max_num_batched_tokens) and the decode request
  grid up to max_num_seqs within 8192 // q requests (config/vllm.py:2604-2612, :2634-2660; compilation.py:54-68,
  :89-127).

H100 (SM 9.0): ceiling 512.  B200 (SM 10.0): ceiling 1024 (config/vllm.py:2006-2008 in 0.29.0).
"""

from __future__ import annotations

import pytest

from reportgen.estimate.profiles import (REFERENCE_CAPTURE_SIZES, capture_ceiling, capture_sizes, parse_version,
                                         profile_for, wide_sm100)
from reportgen.job import Matrix
from reportgen.matrix.inputs import GpuLike, gpu_table

H100, B200 = (9, 0), (10, 0)


def _n(version: str, seqs: int, tokens: int, k: int, capability=H100, **kw) -> int:
    v = parse_version(version)
    return capture_sizes(profile_for(version)[0], seqs, tokens, num_spec=k, ceiling=capture_ceiling(capability, v),
                         version=v, wide=wide_sm100(capability, v, False), **kw)


@pytest.mark.parametrize("version", ["0.29", "0.31", "0.34"])
@pytest.mark.parametrize("seqs,tokens", [(256, 8192), (256, 2048), (1024, 8192), (1024, 2048)])
def test_h100_mtp_k1_and_k3(version, seqs, tokens):
    # k=1 (q=2): M = min(seqs x 4, 512) = 512 -> 3 + 31 + len(range(256, 513, 16)) = 51 sizes; the decode sizes 2 x n
    # (n = 1, 2, 4, 8..248, 256: all <= 512) are 2, 4, then multiples of 16 -- all on the list.  PIECEWISE 51.
    # FULL: cdiv(x, 2) for x <= 512 (= min(seqs x 2, 512)): 1 (x = 1, 2), 2 (4), 4..124 (31), 128..256 step 8 (17)
    # = 50.  Model Runner V1 rounded the list to {2, 4} + 31 + 17 = 50 and captured 50 + 50 = 100.
    assert _n(version, seqs, tokens, 1) == 51 + 50
    # k=3 (q=4): M = 512, the same 51 sizes; decode sizes 4 x n for n <= 128: 4, 8, 16, 32..512 step 32, on the list.
    # FULL: cdiv(x, 4) within 512 tokens: 1 (x = 1, 2, 4), 2..62 step 2 (31), 64..128 step 4 (17) = 49.
    # MRV1: multiples of 4 -> {4} + 31 + 17 = 49 sizes, 49 + 49 = 98.
    assert _n(version, seqs, tokens, 3) == 51 + 49


def test_h100_k2_appends_off_grid_decode_sizes():
    # k=2 (q=3), max_num_seqs 256: M = min(1536, 512) = 512, the 51 sizes; decode sizes 3 x n for n <= 170
    # (n = 1, 2, 4, 8..168 step 8): 3, 6, 12 and 24..504 step 24, of which 3, 6, 12 and 264, 312, 360, 408, 456, 504
    # (24 x odd, above 256) are off the list -> 60 PIECEWISE.
    # FULL: cdiv(x, 3) x 3 <= 512: {1, 2, 4} from 1..12; cdiv(8j, 3) for 8..248 (31); cdiv(16i, 3) for 256..496 (16;
    # 512 -> 171 x 3 = 513 > 512); 88, 104, 120, 136, 152, 168 from the six 24 x odd sizes -> 3 + 31 + 16 + 6 = 56.
    # MRV1: multiples of 3 -> {3, 6} + 31 + 16 = 49, 98 graphs.
    for version in ("0.29", "0.31", "0.34"):
        assert _n(version, 256, 8192, 2) == 60 + 56
    assert _n("0.28.0", 256, 8192, 2) == 49 + 49


@pytest.mark.parametrize("version", ["0.29", "0.31"])
def test_b200_before_034(version):
    # k=1: M = min(seqs x 4, 1024) = 1024 -> 3 + 31 + len(range(256, 1025, 16)) = 83 sizes (decode sizes 2 x n on the
    # list).  FULL within min(seqs x 2, 1024): seqs 256 -> x <= 512: 50 (as on an H100); seqs 1024 -> all 83 sizes:
    # 1 (x = 1, 2), 2 (4), 31, 49 = 82.  MRV1: 82 even sizes, FULL 50 / 82 -> 132 / 164.
    assert _n(version, 256, 8192, 1, B200) == 83 + 50
    assert _n(version, 1024, 8192, 1, B200) == 83 + 82
    # k=3: M = 1024, 83 sizes (decode sizes 4 x n, n <= 256: 4, 8, 16, 32..1024 step 32, on the list); FULL within
    # 1024 tokens: 1, 2..62 step 2 (31), 64..256 step 4 (49) = 81.  MRV1: 81 multiples of 4, 162.
    assert _n(version, 256, 8192, 3, B200) == _n(version, 1024, 2048, 3, B200) == 83 + 81


def test_b200_small_batched_tokens_appends_them():
    # 0.31, k=3, max_num_seqs 256, max_num_batched_tokens 600: M = min(2048, 1024) = 1024, top = 600 ->
    # 3 + 31 + len(range(256, 601, 16)) = 56 sizes + 600 (off the grid, <= M) = 57; decode sizes 4 x n for n <= 150
    # (<= 600 tokens) are on the list.  FULL within min(1024, 600) tokens: 1, 2..62 step 2 (31), 64..148 step 4 (22),
    # 150 (600 / 4) = 55.
    assert _n("0.31", 256, 600, 3, B200) == 57 + 55


def test_034_b200_wide_grids_with_spec_decode():
    # prefill grid: 54 sizes at 8192 tokens, 31 at 2048 (compilation.py:89-101); decode grid up to max_num_seqs
    # requests (compilation.py:122-127): 37 at 256 (1..6, 8..14 step 2, 16..44 step 4, 48..120 step 8, 128..240
    # step 16, 256), 64 at 1024; the limit min(max_num_seqs, min(8192, tokens) // q) (compilation.py:54-68)
    assert _n("0.34", 256, 8192, 1, B200) == 54 + 37
    assert _n("0.34", 1024, 8192, 3, B200) == 54 + 64            # limit min(1024, 8192 // 4)
    # 2048 tokens, q = 4: limit 512 requests -> the decode grid's sizes up to 512: 6 + 4 + 8 + 10 + 14 (128..336
    # step 16) + 6 (352..512 step 32) = 48
    assert _n("0.34", 1024, 2048, 3, B200) == 31 + 48


def test_before_029_the_v1_rounding_is_kept():
    # 0.28 (and 0.25: row 156): MRV1's rule, 50 + 50 / 49 + 49 on an H100
    assert _n("0.28.0", 256, 8192, 1) == 100 and _n("0.25.0", 1024, 8192, 3) == 98
    # forcing mrv2 on a pre-0.29 release does not apply 0.29's request-count rule
    assert _n("0.28.0", 256, 8192, 1, mrv2=True) == 100


def test_user_sizes_on_mrv2_are_not_rounded():
    # cudagraph_capture_sizes [1, 2048] at max_num_seqs 256, k=1: PIECEWISE 2 (no rounding, no decode sizes appended
    # to a user list: config/vllm.py:2101-2112 in 0.29.0).  FULL: 0.29-0.33 cdiv(1, 2) = 1 kept, cdiv(2048, 2) = 1024
    # requests > 256 dropped -> 1; 0.34 min(1024, 256) = 256 kept -> 2.  MRV1 (0.28): {2, 2048}, FULL {2} -> 3.
    assert _n("0.31", 256, 8192, 1, sizes_given=(1, 2048)) == 2 + 1
    assert _n("0.34", 256, 8192, 1, sizes_given=(1, 2048)) == 2 + 2
    assert _n("0.28.0", 256, 8192, 1, sizes_given=(1, 2048)) == 2 + 1


def test_gpu_table_passes_mrv2_from_the_release():
    gpus = [GpuLike(id="h200", name="H200", usable_memory_gib=139.81, gpus_per_node=8, compute_capability=(9, 0))]
    mtp1 = {"method": "mtp", "num_speculative_tokens": 1}
    t31 = gpu_table(gpus, Matrix(vllm_version="0.31", max_num_seqs=256, max_num_batched_tokens=8192,
                                 speculative_config=mtp1))
    t28 = gpu_table(gpus, Matrix(vllm_version="0.28", max_num_seqs=256, max_num_batched_tokens=8192,
                                 speculative_config=mtp1))
    assert t31["g_n"][0] == pytest.approx(101 / REFERENCE_CAPTURE_SIZES)
    assert t28["g_n"][0] == pytest.approx(100 / REFERENCE_CAPTURE_SIZES)
