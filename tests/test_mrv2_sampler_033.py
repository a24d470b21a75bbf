"""Model Runner V2's profile-run sampler per release: no fp32 copy in 0.28-0.32, the second ("warmup-param") pass and
its FlashInfer copies from 0.33.0.

Read in the release sdists (/work/vllm_src/vllm-X.Y.Z):
- 0.33.0 / 0.34.0 v1/worker/gpu/model_runner.py ``_dummy_sampler_run`` (0.34.0 :1039-1062): after the default pass
  the dummy batch is sampled again with ``SamplingParams.for_sampler_warmup()`` on every row ("warmup_kernels (run
  after the KV cache is sized) pays for the fp32 logits pipeline, so the profiled peak must too"); the 0.32.0 sdist
  samples once, with the default params, which take ``apply_sampling_params``' early return (no fp32 copy: no row
  of the dummy batch needs logits processing; sample/sampler.py 0.28.0 :192, 0.29.0 :218, 0.32.0 :238); 0.27.1
  copies to fp32 on every pass (:158-159): 4 B, the form fitted on rows 35 / N05.
- sampling_params.py ``for_sampler_warmup``: temperature 0.9, top_p 0.9, top_k 50, penalties, logit bias, min_p, ...
- v1/worker/gpu/sample/sampler.py: ``apply_sampling_params`` copies the logits to a new fp32 tensor (4 B a logit);
  the fused sampler is eligible (top-k and top-p set, no greedy row, no seed, raw logprobs), so on CUDA with the
  FlashInfer sampler (default on) ``flashinfer_sample`` (v1/sample/ops/topk_topp_sampler.py) calls
  ``top_k_top_p_sampling_from_logits(processed, k, p)`` with k a per-row GPU tensor, whose "top_k_first" path holds
  ``top_k_mask_logits`` (fp32) and ``softmax`` (fp32) at once: 12 B a logit beyond the bf16 logits in all;
- with VLLM_USE_FLASHINFER_SAMPLER=0 the Triton top-k/top-p masks the fp32 copy in place (topk_topp_triton.py,
  one per-program buffer): 4 B, the form reportgen used for every MRV2 release (overheads.MRV2_SAMPLER_BYTES).

Llama-3.1-8B on one H100 (79.19 GiB, API-server defaults 8192 batched tokens / 1024 sequences, vocab 128256, bf16):
the profile run's sampler branch is the kept hidden states (overheads.HIDDEN_KEPT x h x 2 B x T) plus 1024 x 128256
x (2 + 12) B = 1.7124 GiB; the forward (0.952 GiB) no longer sets the peak.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.catalog import load_catalog
from reportgen.estimate import overheads as oh
from reportgen.matrix import estimate_one

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen/sources/bundled"
LLAMA = build_spec(json.loads((BUNDLED / "meta-llama--Llama-3.1-8B-Instruct.json").read_text()))
H100 = load_catalog().get("H100")
GIB = float(1 << 30)
ROWS, VOCAB, HIDDEN, T = 1024, 128256, 4096, 8192
HIDDEN_KEPT_GIB = oh.HIDDEN_KEPT * HIDDEN * 2 * T / GIB            # 0.1234: the dummy batch's hidden states
SAMPLER_033_GIB = ROWS * VOCAB * (2 + 4 + 4 + 4) / GIB             # bf16 logits + fp32 copy + masked + probs
SAMPLER_032_GIB = ROWS * VOCAB * 2 / GIB                           # 0.28-0.32: the bf16 logits only
FORWARD_GIB = 0.952                                                # the profile run's forward at T = 8192 (fitted form)


def test_bytes_per_logit_by_release_and_sampler():
    assert oh.mrv2_sampler_bytes((0, 25, 0)) == 4.0 and oh.mrv2_sampler_bytes((0, 27, 1)) == 4.0
    assert oh.mrv2_sampler_bytes((0, 28, 0)) == 0.0 and oh.mrv2_sampler_bytes((0, 30)) == 0.0
    assert oh.mrv2_sampler_bytes((0, 32, 0)) == 0.0 and oh.mrv2_sampler_bytes((0, 32), False) == 0.0
    assert oh.mrv2_sampler_bytes((0, 33, 0)) == 12.0
    assert oh.mrv2_sampler_bytes((0, 34)) == 12.0 and oh.mrv2_sampler_bytes(None) == 12.0
    assert oh.mrv2_sampler_bytes((0, 34, 0), True) == 12.0
    assert oh.mrv2_sampler_bytes((0, 34, 0), False) == 4.0      # VLLM_USE_FLASHINFER_SAMPLER=0: Triton, in place


def test_llama_h100_activation_before_and_from_0_33():
    assert SAMPLER_033_GIB == pytest.approx(1.7124, abs=1e-4) and HIDDEN_KEPT_GIB == pytest.approx(0.1234, abs=1e-4)
    a32 = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.32")
    a33 = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.33")
    off = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.33", flashinfer_sampler=False)
    for r in (a32, a33, off):
        assert (r["max_num_batched_tokens"], r["max_num_seqs"]) == (T, ROWS)
    # 0.32: the forward binds (sampler branch 0.12 + 0.24 = 0.37 < 0.95)
    assert HIDDEN_KEPT_GIB + SAMPLER_032_GIB < FORWARD_GIB
    assert a32["activation_gib"] == pytest.approx(FORWARD_GIB, abs=1e-3)
    assert off["activation_gib"] == pytest.approx(a32["activation_gib"])
    # 0.33: the warmup-param pass binds
    assert a33["activation_gib"] == pytest.approx(HIDDEN_KEPT_GIB + SAMPLER_033_GIB)
    assert a33["activation_gib"] == pytest.approx(1.8358, abs=1e-4)
    # the 0.29-0.33 budget: 0.92 x total - non-KV, so the KV cache loses exactly the activation's growth
    assert a32["kv_cache_gib"] - a33["kv_cache_gib"] == pytest.approx(a33["activation_gib"] - a32["activation_gib"])
    assert a32["kv_cache_gib"] - a33["kv_cache_gib"] == pytest.approx(0.884, abs=1e-3)
    assert off["kv_cache_gib"] == pytest.approx(a32["kv_cache_gib"])


def test_llama_h100_extensible_margin_grows_with_t():
    """0.34 (extensible cache, util 1.0): KV = 79.19 - 0.5 - non-KV - max(1, 0.75 T) with T the profile run's peak:
    1.836 GiB now, so the margin is 0.75 T = 1.377 (the 1 GiB floor before) and the KV cache loses 0.884 + 0.377."""
    r = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34")
    off = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34", flashinfer_sampler=False)
    t = r["activation_gib"]
    assert t == pytest.approx(HIDDEN_KEPT_GIB + SAMPLER_033_GIB)
    non_kv = r["weights_gib"] + t + r["non_torch_gib"] + r["cuda_graph_gib"]
    assert r["kv_cache_gib"] == pytest.approx(79.19 - 0.5 - non_kv - 0.75 * t)
    assert off["activation_gib"] == pytest.approx(FORWARD_GIB, abs=1e-3) and 0.75 * off["activation_gib"] < 1.0
    assert off["kv_cache_gib"] - r["kv_cache_gib"] == pytest.approx(
        (t - off["activation_gib"]) + (0.75 * t - 1.0), abs=1e-6)
    assert off["kv_cache_gib"] - r["kv_cache_gib"] == pytest.approx(1.261, abs=1e-3)
    # whole 64-token blocks of 128 KiB a token
    per_token = 32 * 8 * 128 * 2 * 2
    assert r["kv_cache_tokens"] == int(r["kv_cache_gib"] * GIB // (64 * per_token)) * 64


def test_qwen25_05b_sampler_binds_in_every_release():
    """Qwen2.5-0.5B (hidden 896, vocab 151936) on a 24 GiB GPU (small tier: 2048 batched tokens, 256 sequences): the
    sampler branch sets the profile-run peak, so the activation is the kept hidden states + 256 x 151936 x (2 + b) B
    with b = 4 (0.27.1: one fp32 copy), 0 (0.28-0.32: none), 12 (0.33+: the FlashInfer pass)."""
    qwen = build_spec(json.loads((BUNDLED / "Qwen--Qwen2.5-0.5B.json").read_text()))
    hid = oh.HIDDEN_KEPT * 896 * 2 * 2048 / GIB
    for version, b in (("0.27.1", 4), ("0.28", 0), ("0.30", 0), ("0.32", 0), ("0.33", 12), ("0.34", 12)):
        r = estimate_one(qwen, 24.0, max_model_len=8192, vllm_version=version)
        assert (r["max_num_batched_tokens"], r["max_num_seqs"]) == (2048, 256)
        assert r["activation_gib"] == pytest.approx(hid + 256 * 151936 * (2 + b) / GIB), version
    assert hid + 256 * 151936 * 2 / GIB == pytest.approx(0.0792, abs=1e-4)
