"""vLLM 0.34's extensible KV cache: the terms of its sizing beyond ``min(requested - non-KV, headroom - margin) - T``
(docs/decisions.md, "vLLM 0.34 extensible KV cache: ROCm floor, non-torch reserve, multimodal IPC reserve").

Read in the vllm 0.34.0 sdist (/work/vllm_src/vllm-0.34.0/vllm):
- v1/worker/extensible_kv_cache.py:64 ``KV_CACHE_MARGIN_FLOOR_BYTES = (3 if current_platform.is_rocm() else 1) << 30``,
  :65 ``KV_CACHE_MARGIN_FRACTION = 0.75``; :613-617 ``margin = max(floor, int(T x 0.75))``, ``available =
  min(requested - non_kv_used, headroom - margin) - max(T, torch reservation growth)``;
- config/vllm.py:3201-3202 (``_resolve_extensible_kv_cache``: unsupported only off ``is_cuda_alike()``, i.e. CUDA and
  ROCm both get it, platforms/interface.py:232-234); platforms/rocm.py:1212-1213 (ROCm runs the same
  gpu_worker.Worker, so the same ``measure_kv_cache_blocks``);
- v1/worker/extensible_kv_cache.py:71 ``KV_CACHE_NON_TORCH_RESERVE_BYTES`` is used only at :684-692 (the cap on torch's
  caching allocator, ``left_free``), after ``available`` is fixed: no KV term;
- :677-681 ``reserve_mm_ipc_gpu_memory`` (multimodal/gpu_ipc_memory.py:155-267): ``mm_ipc_gpu_memory_gb`` (default 0,
  config/multimodal.py:459) plus GPU video decoders only when ``use_gpu_video_backend()`` (config/multimodal.py:741-752;
  default ``VLLM_VIDEO_LOADER_BACKEND`` "opencv", envs.py:1117-1118, a CPU backend): 0 at vLLM's defaults.

Llama-3.1-8B: 32 layers x 8 KV heads x 128 x (K + V) x 2 B = 128 KiB of KV a token; a 64-token block 8 MiB.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.catalog import load_catalog
from reportgen.estimate import overheads as oh
from reportgen.estimate.profiles import profile_for
from reportgen.job import Matrix
from reportgen.matrix import ModelEntry, evaluate_matrix, estimate_one, gpu_table

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen/sources/bundled"
LLAMA = build_spec(json.loads((BUNDLED / "meta-llama--Llama-3.1-8B-Instruct.json").read_text()))
CAT = load_catalog()
H100, MI300X = CAT.get("H100"), CAT.get("MI300X")
GIB = 2**30
BLOCK_BYTES = 64 * 32 * 8 * 128 * 2 * 2        # Llama-3.1-8B, block size 64 (0.34's default)


def _fix(r: dict) -> float:
    """Non-KV used after the sizing steps and graph capture: weights + activation (T) + non-torch + graphs."""
    return r["weights_gib"] + r["activation_gib"] + r["non_torch_gib"] + r["cuda_graph_gib"]


def _tokens(kv_gib: float) -> int:
    return int(kv_gib * GIB // BLOCK_BYTES) * 64


def test_margin_floor_per_vendor():
    assert oh.extensible_margin_floor_gib("AMD") == 3.0 == oh.extensible_margin_floor_gib(" amd ")
    assert oh.extensible_margin_floor_gib("NVIDIA") == 1.0 == oh.extensible_margin_floor_gib("")
    assert oh.extensible_margin_floor_gib(None) == 1.0
    # every AMD Instinct in the catalog runs vLLM on ROCm: 3 GiB; every NVIDIA part 1 GiB
    gt = gpu_table(list(CAT.skus.values()), Matrix(vllm_version="0.34"))
    floor = dict(zip(gt["gpu"], gt["ext_floor"]))
    amd = [s.id for s in CAT.skus.values() if s.vendor == "AMD"]
    assert sorted(amd) == ["amd_mi250x", "amd_mi300x", "amd_mi325x", "amd_mi355x"]
    assert all(floor[g] == 3.0 for g in amd)
    assert all(floor[s.id] == 1.0 for s in CAT.skus.values() if s.vendor == "NVIDIA")


def test_llama_on_one_mi300x_keeps_the_rocm_floor():
    """MI300X (191.45 GiB as vLLM sees it, >= 160 GiB: 16384 batched tokens from 0.28), util 1.0: T ~ 1.96 GiB, so
    0.75 T = 1.47 < 3 and the ROCm floor is the margin: KV = 191.45 - 0.5 (start-up context) - non-KV - 3.  The
    requested side (1.0 x 191.45 - non-KV) is 3.5 GiB looser.  A CUDA GPU of the same memory keeps max(1, 1.47):
    1.53 GiB more KV, 196 more 8-MiB blocks of 64 tokens.  T is the 0.33+ MRV2 sampler pass (1024 x 128256 x
    (2 + 12) B + kept hidden states, tests/test_mrv2_sampler_033.py), charged on every GPU: on ROCm vLLM takes the
    Triton top-k/top-p (4 B; T would be the 1.90 GiB forward) -- a per-GPU term not modelled."""
    r = estimate_one(LLAMA, MI300X, max_model_len=8192, vllm_version="0.34")
    g = r["gpu_memory_gib"]
    assert g == pytest.approx(191.45) and r["max_num_batched_tokens"] == 16384
    assert (r["gpu_memory_utilization"], r["block_size"]) == (1.0, 64)
    t = r["activation_gib"]
    assert 1.9 < t < 2.0 and 0.75 * t < 3.0
    assert r["kv_cache_gib"] == pytest.approx(g - 0.5 - _fix(r) - 3.0)
    assert r["kv_cache_gib"] < 1.0 * g - _fix(r)
    assert r["kv_cache_tokens"] == _tokens(r["kv_cache_gib"])
    cuda = estimate_one(LLAMA, 191.45, max_model_len=8192, vllm_version="0.34")
    assert _fix(cuda) == pytest.approx(_fix(r))
    assert cuda["kv_cache_gib"] == pytest.approx(g - 0.5 - _fix(cuda) - 0.75 * t)
    assert cuda["kv_cache_gib"] - r["kv_cache_gib"] == pytest.approx(3.0 - 0.75 * t)
    assert (cuda["kv_cache_tokens"] - r["kv_cache_tokens"]) // 64 in (195, 196, 197)


def test_llama_on_one_h100_keeps_the_cuda_floor():
    """H100 (NVIDIA, 8192 batched tokens): T ~ 1.84 GiB (the 0.33+ MRV2 sampler pass, tests/test_mrv2_sampler_033.py),
    0.75 T > 1: KV = 79.19 - 0.5 - non-KV - 0.75 T.  With VLLM_USE_FLASHINFER_SAMPLER=0 T is the 0.95 GiB forward,
    0.75 T < 1, and the CUDA floor is the margin: KV = 79.19 - 0.5 - non-KV - 1."""
    r = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34")
    assert 0.75 * r["activation_gib"] > 1.0
    assert r["kv_cache_gib"] == pytest.approx(79.19 - 0.5 - _fix(r) - 0.75 * r["activation_gib"])
    assert r["kv_cache_tokens"] == _tokens(r["kv_cache_gib"])
    r = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34", flashinfer_sampler=False)
    assert 0.75 * r["activation_gib"] < 1.0
    assert r["kv_cache_gib"] == pytest.approx(79.19 - 0.5 - _fix(r) - 1.0)
    assert r["kv_cache_tokens"] == _tokens(r["kv_cache_gib"])


def test_floor_is_a_floor_not_an_addend():
    """65536 batched tokens on an MI300X: T ~ 7.6 GiB, 0.75 T = 5.7 > 3 -- the margin is 0.75 T on ROCm as on CUDA,
    so the MI300X and a CUDA GPU of its memory keep the same KV."""
    r = estimate_one(LLAMA, MI300X, max_model_len=8192, vllm_version="0.34", max_num_batched_tokens=65536)
    cuda = estimate_one(LLAMA, 191.45, max_model_len=8192, vllm_version="0.34", max_num_batched_tokens=65536)
    assert 0.75 * r["activation_gib"] > 3.0
    assert r["kv_cache_gib"] == pytest.approx(191.45 - 0.5 - _fix(r) - 0.75 * r["activation_gib"])
    assert r["kv_cache_gib"] == cuda["kv_cache_gib"] and r["kv_cache_tokens"] == cuda["kv_cache_tokens"]


def test_releases_without_the_extensible_cache_are_unaffected():
    """0.33 (and 0.34 with --no-enable-extensible-kv-cache) size from the profile estimate at 0.92: no margin term,
    so the MI300X and a CUDA GPU of the same memory keep the same KV, 0.92 x 191.45 - non-KV, the graphs as the
    profile's estimate (graph_estimate_scale x the capture)."""
    for kw in ({"vllm_version": "0.33"}, {"vllm_version": "0.34", "enable_extensible_kv_cache": False}):
        r = estimate_one(LLAMA, MI300X, max_model_len=8192, **kw)
        cuda = estimate_one(LLAMA, 191.45, max_model_len=8192, **kw)
        assert r["gpu_memory_utilization"] == 0.92
        assert r["kv_cache_gib"] == cuda["kv_cache_gib"]
        scale = profile_for(kw["vllm_version"])[0].graph_estimate_scale
        assert scale == 1.48
        assert r["kv_cache_gib"] == pytest.approx(0.92 * 191.45 - r["weights_gib"] - r["activation_gib"]
                                                  - r["non_torch_gib"] - scale * r["cuda_graph_gib"])


def test_mixed_fleet_matrix_prices_each_gpu_with_its_floor():
    """One matrix over an MI300X and a B200 (both >= 160 GiB: one scheduler class, so the per-class terms are shared)
    and an H100: each row as its own one-GPU estimate."""
    mx = Matrix(vllm_version="0.34", max_model_len=[8192], concurrency=[1])
    df = evaluate_matrix([ModelEntry("meta-llama/Llama-3.1-8B-Instruct", LLAMA)], [MI300X, CAT.get("B200"), H100], mx)
    got = {row["gpu"]: row["kv_cache_gib"] for row in df.iter_rows(named=True)}
    for sku in (MI300X, CAT.get("B200"), H100):
        assert got[sku.id] == pytest.approx(estimate_one(LLAMA, sku, max_model_len=8192)["kv_cache_gib"])
    b200 = df.filter(df["gpu"] == CAT.get("B200").id).row(0, named=True)
    assert b200["kv_cache_gib"] == pytest.approx(b200["gpu_memory_gib"] - 0.5 - _fix(b200)
                                                 - max(1.0, 0.75 * b200["activation_gib"]))


GEMMA3 = build_spec(json.loads((BUNDLED / "google--gemma-3-12b-it.json").read_text()))


@pytest.mark.parametrize("sku, floor", [(H100, 1.0), (MI300X, 3.0)])
def test_multimodal_model_margin_and_no_ipc_reserve(sku, floor):
    """gemma-3-12b-it (SigLIP tower, an image-capable prefix LM) at vLLM's defaults: T is the profile run's peak,
    encoder profile included (gpu_worker.py:945-948), so the margin is max(floor, 0.75 T) of that whole T -- the
    length-dependent encoder term too (exprs.encoder_lens) -- and nothing is reserved for multimodal IPC
    (mm_ipc_gpu_memory_gb 0, opencv video backend): KV = total - 0.5 - non-KV - max(floor, 0.75 T)."""
    for length in (8192, 32768):
        r = estimate_one(GEMMA3, sku, max_model_len=length, vllm_version="0.34")
        t = r["activation_gib"]
        assert 0.75 * t > floor
        assert r["kv_cache_gib"] == pytest.approx(r["gpu_memory_gib"] - 0.5 - _fix(r) - max(floor, 0.75 * t))
        assert r["status"] == "fits"
