"""Unquantized (bf16) routed experts on SM 10.x: vLLM's FlashInfer TRT-LLM MoE pads the rank's intermediate to 128.

vLLM release sdists read (docs/decisions.md "Architecture-conditional memory paths in vLLM 0.20-0.34 (audit)"):
- ``model_executor/layers/fused_moe/oracle/unquantized.py`` ``_get_priority_backends``: FLASHINFER_TRTLLM first on
  CUDA (0.20.0 :67-68 .. 0.34.0 :69-74), moved behind Triton on SM 9.x from 0.23.0 (:73; 0.34.0 :78-80).
- ``experts/trtllm_bf16_moe.py``: ``is_device_capability_family(100)`` only (0.34.0 :122), SiLU (gated) or
  RELU2_NO_MUL (0.24+), routing DeepSeekV3 / Llama4 / Renormalize / RenormalizeNaive / SigmoidRenorm / Sigmoid
  (+ MiniMax2 from 0.32.0) -- not ``Default`` (softmax top-k without renormalisation).
- ``convert_to_unquantized_kernel_format``: ``align_moe_weights_for_fi(..., min_alignment=128)`` -- for non-gated
  experts only in 0.24.0-0.28.0 (0.24.0 :274-281 ``if not is_act_and_mul``), for every expert from 0.29.0
  (:351-352; 0.34.0 :444-445); ``align_moe_weights_for_fi`` (quantization/utils/flashinfer_utils.py:294-330 in
  0.24.0): ``padded = round_up(intermediate, 128)``, new (E, 2 x padded, H) / (E, H, padded) zero tensors.
- the routing: ``fused_moe/config.py`` ``get_routing_method_type`` -- softmax with ``renormalize`` ->
  RenormalizeNaive, without -> Default; mixtral.py ``renormalize=True``, qwen2_moe.py / qwen3_moe.py
  ``renormalize=config.norm_topk_prob``, qwen3_next.py ``getattr(config, "norm_topk_prob", True)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import Component
from reportgen.catalog import load_catalog
from reportgen.estimate.quant.layouts import BF16_TRTLLM_BACKEND, unquantized_moe_backend
from reportgen.estimate.tables import scheme_for
from reportgen.job import Matrix
from reportgen.matrix import ModelEntry, evaluate_matrix

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
GiB = 1 << 30
T = BF16_TRTLLM_BACKEND


def entry(mid: str) -> ModelEntry:
    cfg = json.loads((BUNDLED / (mid.replace("/", "--") + ".json")).read_text())
    return ModelEntry(mid, build_spec(cfg, mid), None, "bundled")


@pytest.mark.parametrize("cc, version, routing, act, flag, want", [
    ((10, 0), (0, 29), "RenormalizeNaive", "silu", "auto", T),       # B200, first release padding gated experts
    ((10, 3), (0, 34), "RenormalizeNaive", "silu", "auto", T),       # B300: the 10.x family
    ((10, 0), None, "DeepSeekV3", "silu", "auto", T),                # newest release
    ((10, 0), (0, 28), "RenormalizeNaive", "silu", "auto", None),    # gated experts unpadded before 0.29
    ((10, 0), (0, 24), "DeepSeekV3", "relu2_no_mul", "auto", T),     # non-gated padded from 0.24
    ((10, 0), (0, 23), "DeepSeekV3", "relu2_no_mul", "auto", None),
    ((10, 0), (0, 34), "Default", "silu", "auto", None),             # softmax without renormalize: Triton
    ((10, 0), (0, 31), "MiniMax2", "silu", "auto", None),            # MiniMax2 routing from 0.32
    ((10, 0), (0, 32), "MiniMax2", "silu", "auto", T),
    ((10, 0), (0, 34), "RenormalizeNaive", "gelu_tanh", "auto", None),   # the kernel takes SiLU / relu2 only
    ((10, 0), (0, 34), "RenormalizeNaive", "silu", "triton", None),      # an explicit other backend
    ((10, 0), (0, 34), "RenormalizeNaive", "silu", "flashinfer_trtllm", T),
    ((10, 0), (0, 34), "", "silu", "auto", None),                    # routing not worked out for the family
    ((9, 0), (0, 34), "RenormalizeNaive", "silu", "auto", None),     # H100: Triton
    ((12, 0), (0, 34), "RenormalizeNaive", "silu", "auto", None),    # RTX 5090 / PRO 6000: FlashInfer CUTLASS
    ((8, 0), (0, 34), "RenormalizeNaive", "silu", "auto", None),     # A100: Triton
    (None, (0, 34), "RenormalizeNaive", "silu", "auto", None),       # capability not known: as before
])
def test_choice(cc, version, routing, act, flag, want):
    assert unquantized_moe_backend(cc, version, routing, act, flag) == want


def test_routing_per_family():
    """The configs' norm_topk_prob as vLLM's model files pass it (Qwen1.5-MoE: false; Qwen3.5: absent -> True)."""
    got = {m: entry(m).spec.moe_routing for m in ("Qwen/Qwen3-30B-A3B", "Qwen/Qwen1.5-MoE-A2.7B-Chat",
                                                  "mistralai/Mixtral-8x7B-v0.1", "Qwen/Qwen3-Next-80B-A3B-Instruct",
                                                  "Qwen/Qwen3.5-35B-A3B")}
    assert got == {"Qwen/Qwen3-30B-A3B": "RenormalizeNaive", "Qwen/Qwen1.5-MoE-A2.7B-Chat": "Default",
                   "mistralai/Mixtral-8x7B-v0.1": "RenormalizeNaive",
                   "Qwen/Qwen3-Next-80B-A3B-Instruct": "RenormalizeNaive", "Qwen/Qwen3.5-35B-A3B": "RenormalizeNaive"}


def _qwen3_30b_layer_bytes(tp: int, padded: bool) -> int:
    """One MoE layer of Qwen3-30B-A3B on one rank, by hand: 128 experts, hidden 2048, moe_intermediate 768 split
    tp ways (vLLM's intermediate_size_per_partition), w13 = 2 x I x H, w2 = H x I, bf16; padded = rounded up to
    128 as ``align_moe_weights_for_fi`` does."""
    i = 768 // tp
    if padded:
        i = -(-i // 128) * 128
    return 128 * (2 * i * 2048 + 2048 * i) * 2


@pytest.mark.parametrize("tp, extra_per_layer", [(1, 0), (2, 0), (4, 128 * 3 * 2048 * 64 * 2),
                                                  (8, 128 * 3 * 2048 * 32 * 2)])
def test_expert_bytes_by_hand(tp, extra_per_layer):
    spec = entry("Qwen/Qwen3-30B-A3B").spec
    ex = [t for t in spec.tensors if t.component is Component.ROUTED_EXPERTS and t.layer == 0]
    assert sorted(t.shape for t in ex) == [(1536, 2048), (2048, 768)]
    padded = scheme_for(spec, "checkpoint", mxfp4_backend=T)
    plain = scheme_for(spec, "checkpoint")
    assert sum(padded.expert_rank_bytes(t, tp) for t in ex) == _qwen3_30b_layer_bytes(tp, True)
    assert sum(plain.expert_rank_bytes(t, tp) for t in ex) == _qwen3_30b_layer_bytes(tp, False)
    assert _qwen3_30b_layer_bytes(tp, True) - _qwen3_30b_layer_bytes(tp, False) == extra_per_layer


GPUS = ("nvidia_b200", "H100", "nvidia_rtx_pro_6000_blackwell")


def _weights(version: str) -> pl.DataFrame:
    cat = load_catalog()
    m = Matrix(tp=[2, 4, 8], pp=[1], dp=[1], ep=[False], weight_dtype=["checkpoint", "fp8"],
               kv_cache_dtype=["auto"], max_model_len=[8192], concurrency=[1], gpu_memory_utilization=[0.9],
               vllm_version=version)
    df = evaluate_matrix([entry("Qwen/Qwen3-30B-A3B"), entry("Qwen/Qwen1.5-MoE-A2.7B-Chat")],
                         [cat.get(g) for g in GPUS], m)
    return df.group_by(["model", "gpu", "tp", "weights_as"]).agg(pl.col("weights_gib").unique())


@pytest.mark.parametrize("version, padded", [("0.34.0", True), ("0.29.0", True), ("0.28.0", False)])
def test_b200_weights_per_rank(version, padded):
    """Qwen3-30B-A3B's 48 MoE layers on a B200 carry the padding from 0.29 (TP 4: 192 -> 256, +4.5 GiB a rank;
    TP 8: 96 -> 128, +2.25 GiB); H100 and RTX PRO 6000 keep the checkpoint split; Qwen1.5-MoE (no
    renormalisation: Triton) and the fp8 what-if rows do not move."""
    w = _weights(version)

    def one(model, gpu, tp, wd="checkpoint"):
        v = w.filter(pl.col("model") == model, pl.col("gpu") == gpu, pl.col("tp") == tp,
                     pl.col("weights_as") == wd)["weights_gib"].item().to_list()
        assert len(v) == 1
        return v[0]

    cat = load_catalog()
    b200, h100, rtx = (cat.get(g).id for g in GPUS)
    for tp in (2, 4, 8):
        q = "Qwen/Qwen3-30B-A3B"
        extra = 48 * (_qwen3_30b_layer_bytes(tp, True) - _qwen3_30b_layer_bytes(tp, False)) if padded else 0
        assert (one(q, b200, tp) - one(q, h100, tp)) * GiB == pytest.approx(extra, abs=64)
        assert one(q, rtx, tp) == one(q, h100, tp)
        assert one(q, b200, tp, "fp8") == one(q, h100, tp, "fp8")
        q15 = "Qwen/Qwen1.5-MoE-A2.7B-Chat"
        assert one(q15, b200, tp) == one(q15, h100, tp)
    if padded:
        assert 48 * (_qwen3_30b_layer_bytes(4, True) - _qwen3_30b_layer_bytes(4, False)) == int(4.5 * GiB)


def test_mixed_job_rows_equal_each_gpu_alone():
    """B200 (padded experts), H100 and RTX PRO 6000 in one job: each GPU's cells are its one-GPU job's."""
    from test_mxfp4_backend import assert_each_gpu_alone

    cat = load_catalog()
    m = Matrix(tp=[4, 8], pp=[1, 2], dp=[1], ep=[False, True], weight_dtype=["checkpoint"], kv_cache_dtype=["auto"],
               max_model_len=[8192], concurrency=[1, 32], gpu_memory_utilization=[0.9], vllm_version="0.34.0")
    ents, gpus = [entry("Qwen/Qwen3-30B-A3B")], [cat.get(g) for g in GPUS]
    assert_each_gpu_alone(ents, gpus, m, evaluate_matrix(ents, gpus, m))
