"""Weights as vLLM holds them after loading, beyond the checkpoint's shapes (issue 10, branch weights29).

Two rules read in vLLM's code, each checked by hand here and on the start-up log it explains:

* NVFP4 routed experts on vLLM's CUTLASS-family NVFP4 MoE backends (SM 12.x; the backend per GPU is
  ``layouts.nvfp4_moe_backend``, branch nvfp4auto, whose tests are tests/test_nvfp4_backend.py):
  ``model_executor/layers/quantization/utils/flashinfer_fp4_moe.py`` @296ce48d
  ``prepare_nvfp4_moe_layer_for_fi_or_cutlass``: ``w13_scale = swizzle_blockscale(w13_scale)`` (rows padded to a
  multiple of 128, the K/16 scale columns to 4: ``M_padded = round_up_multiple(M, 128)``, ``K_padded =
  round_up_multiple(K, 4)``); ``pad_size = w13_scale.size(1) - w13.size(1)``; a non-gated MoE then pads ``w13``
  to those rows, ``w2`` by ``pad_size // 2`` bytes along K and ``w2_scale`` by ``pad_size // 16`` columns;
  ``w2_scale = swizzle_blockscale(w2_scale)``.
  Row 166 (Nemotron-Cascade-2-30B-A3B NVFP4 on an SM 12.0 card, 0.20.1rc1): 18.00 -> 18.53 GiB vs 18.54 logged.
* MLA's quantized ``kv_b_proj`` keeps a model-dtype dequantized copy (``W_UK_T`` / ``W_UV``):
  ``model_executor/layers/attention/mla_attention.py`` @90b0a26e ``process_weights_after_loading`` ->
  ``get_and_maybe_dequant_weights(self.kv_b_proj, out_dtype=act_dtype)`` (``quantization/utils/quant_utils.py``
  @4de0dd6d: the unquantized weight itself, else a new dequantized ``(out, in)`` tensor), whose views the impl
  keeps.  Row 158 (unsloth GLM-4.7-Flash FP8-Dynamic on a GB10, 0.30): +0.40 GiB (listed, not scored).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.catalog import load_catalog
from reportgen.estimate import quant
from reportgen.estimate.layout import Layout
from dataclasses import replace

from reportgen.estimate.quant.checkpoint import checkpoint_scheme
from reportgen.estimate.quant.layouts import NVFP4_MOE_BACKENDS, Nvfp4, nvfp4_expert_rank_parts
from reportgen.estimate.quant.scheme import Scheme
from reportgen.estimate.tables import experts_nvfp4, nvfp4_backend_for, scheme_for
from reportgen.estimate.weights import build_weight_table, stage_weights
from reportgen.matrix import estimate_one

ROOT = Path(__file__).resolve().parents[1]
C26 = ROOT / "tests" / "data" / "configs_2026"
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
GiB = 1 << 30
CUTLASS = NVFP4_MOE_BACKENDS["nvfp4_cutlass"]              # gated; FlashInfer CUTLASS's layout is the same
NON_GATED = replace(NVFP4_MOE_BACKENDS["nvfp4_flashinfer_cutlass"], gated=False)
MARLIN = NVFP4_MOE_BACKENDS["nvfp4_marlin"]                 # the checkpoint's shapes
SCALARS = ("global_scale", "input_scale")                   # per expert and matrix, not in the rank parts


def nano():
    cfg = json.loads((C26 / "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4.json").read_text())
    hq = json.loads((C26 / "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4.hf_quant_config.json").read_text())
    return build_spec(cfg, "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4", {"hf_quant_config": hq})


def qwen3_235b_nvfp4():
    cfg = json.loads((BUNDLED / "nvidia--Qwen3-235B-A22B-NVFP4.json").read_text())
    hq = json.loads((BUNDLED / "nvidia--Qwen3-235B-A22B-NVFP4.hf_quant_config.json").read_text())
    return build_spec(cfg, "nvidia/Qwen3-235B-A22B-NVFP4", {"hf_quant_config": hq})


def _matrix(parts: dict) -> dict:
    return {k: v for k, v in parts.items() if k not in SCALARS}


def test_nvfp4_expert_parts_by_hand():
    """Nemotron-3-Nano's relu2 experts (hidden 2688, intermediate 1856: 14.5 tiles of 128) on the CUTLASS kernels
    (vLLM's or FlashInfer's: one conversion; which one runs is ``layouts.nvfp4_moe_backend``, tests/
    test_nvfp4_backend.py).  The per-tensor float32 scales are ``Nvfp4.parts``' (SCALARS), not the rank parts'."""
    # TP 1: w13 (1856 -> 1920 rows, 1344 bytes, 168 scale columns), w2 (2688 rows, 928 -> 960 bytes, 116 -> 120)
    assert nvfp4_expert_rank_parts(1856, 2688, 1, False, False, NON_GATED) == {"weight": 1920 * 1344,
                                                                                 "scale": 1920 * 168}
    assert nvfp4_expert_rank_parts(2688, 1856, 1, True, False, NON_GATED) == {"weight": 2688 * 960,
                                                                                "scale": 2688 * 120}
    # TP 2: intermediate per rank 928 -> 1024 (pad_size 96: w2 + 48 bytes, w2_scale 58 + 6 = 64 columns)
    assert nvfp4_expert_rank_parts(1856, 2688, 2, False, False, NON_GATED)["weight"] == 1024 * 1344
    assert nvfp4_expert_rank_parts(2688, 1856, 2, True, False, NON_GATED) == {"weight": 2688 * 512,
                                                                                "scale": 2688 * 64}
    # Marlin (the checkpoint's shapes): Nvfp4.parts exactly, less the scalars
    for args in ((1856, 2688, 1, False, False), (2688, 1856, 1, True, False)):
        assert nvfp4_expert_rank_parts(*args, MARLIN) == _matrix(Nvfp4().parts(*args[:2]))
    # gated (Qwen3-235B-A22B: hidden 4096, intermediate 1536): aligned at TP 1 and 8 -> no padding; at TP 16
    # (96 per rank) only the scale tiles would pad (w13 192 -> 256 scale rows, w2's 6 scale columns -> 8) -- a
    # start vLLM refuses there (layouts.nvfp4_layout_refusal, invalid_layout)
    for tp in (1, 8):
        assert nvfp4_expert_rank_parts(3072, 4096, tp, False, True, CUTLASS) == _matrix(Nvfp4().parts(3072 // tp,
                                                                                                      4096))
        assert nvfp4_expert_rank_parts(4096, 1536, tp, True, False, CUTLASS) == _matrix(Nvfp4().parts(4096,
                                                                                                      1536 // tp))
    assert nvfp4_expert_rank_parts(3072, 4096, 16, False, True, CUTLASS) == {"weight": 192 * 2048,
                                                                              "scale": 256 * 256}
    assert nvfp4_expert_rank_parts(4096, 1536, 16, True, False, CUTLASS) == {"weight": 4096 * 48, "scale": 4096 * 8}


def test_nvfp4_experts_detected_and_gatedness():
    n, q = nano(), qwen3_235b_nvfp4()
    assert experts_nvfp4(n, scheme_for(n, "checkpoint")) and experts_nvfp4(q, scheme_for(q, "checkpoint"))
    assert nvfp4_backend_for(n, ((12, 0), (0, 21))) == "nvfp4_flashinfer_cutlass"
    assert nvfp4_backend_for(n, ((9, 0), (0, 21))) == "nvfp4_marlin"
    assert checkpoint_scheme(n, "nvfp4_flashinfer_cutlass").moe_padding == NON_GATED       # relu2: not gated
    assert checkpoint_scheme(q, "nvfp4_cutlass").moe_padding == CUTLASS                    # gated
    assert checkpoint_scheme(n, "triton").moe_padding is None     # any other key: the checkpoint share, the old path
    bf16 = build_spec(json.loads((BUNDLED / "Qwen--Qwen3-30B-A3B.json").read_text()), "Qwen/Qwen3-30B-A3B")
    assert experts_nvfp4(bf16, scheme_for(bf16, "checkpoint")) is None


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def _w(spec, gpu, tp):
    return estimate_one(spec, gpu, tp=tp, max_model_len=8192, vllm_version="0.21")["weights_gib"]


@pytest.mark.parametrize("tp", [1, 2])
def test_nano_weights_follow_the_gpu(cat, tp):
    """Per-rank weights on an RTX 5090 / RTX PRO 6000 (SM 12.0: FlashInfer CUTLASS) exceed the H100's / A100's
    (Marlin: the checkpoint shapes) by 23 MoE layers x 128 experts x the hand-computed padding: TP 1 0.5307 GiB
    (193,536 B an expert), TP 2 per rank (928 -> 1024: w13 96 x (1344 + 168), w2 2688 x (48 + 6)).  The B200
    (TRT-LLM) is tests/test_nvfp4_backend.py's."""
    spec = nano()
    w = {g: _w(spec, cat.get(g), tp) for g in ("nvidia_rtx_5090", "nvidia_rtx_pro_6000_blackwell", "H100", "A100")}
    assert w["nvidia_rtx_5090"] == w["nvidia_rtx_pro_6000_blackwell"] and w["H100"] == w["A100"]
    per_expert = {1: 64 * (1344 + 168) + 2688 * (32 + 4), 2: 96 * (1344 + 168) + 2688 * (48 + 6)}[tp]
    assert per_expert == {1: 193_536, 2: 290_304}[tp]
    assert (w["nvidia_rtx_5090"] - w["H100"]) * GiB == pytest.approx(23 * 128 * per_expert, abs=64)
    # a GPU of unknown capability takes the checkpoint share, whose two float32 per-tensor scales of each matrix
    # are split by TP; a known backend keeps them whole on every rank (vLLM's (E,) weight_scale_2 / input_scale):
    # 16 - 16 / tp bytes an expert
    assert (w["H100"] - _w(spec, 79.19, tp)) * GiB == pytest.approx(23 * 128 * (16 - 16 / tp), abs=64)


def test_gated_aligned_nvfp4_moe_unchanged(cat):
    """Qwen3-235B-A22B NVFP4 (gated, 2 x 1536 rows = 24 tiles; 94 MoE layers x 128 experts; hidden 4096 = 16 x 256):
    no padding at TP 4 / 8 on any backend -- B200 (TRT-LLM), RTX PRO 6000 (FlashInfer CUTLASS) and H100 (Marlin)
    hold the same bytes, which differ from the checkpoint share (unknown GPU) only by the per-tensor float32 scales
    kept whole on every rank (16 - 16 / tp bytes an expert)."""
    spec = qwen3_235b_nvfp4()
    for tp in (4, 8):
        w = {g: _w(spec, cat.get(g), tp) for g in ("nvidia_b200", "nvidia_rtx_pro_6000_blackwell", "H100")}
        assert w["nvidia_b200"] == w["H100"] == w["nvidia_rtx_pro_6000_blackwell"]
        assert (w["H100"] - _w(spec, 79.19, tp)) * GiB == pytest.approx(94 * 128 * (16 - 16 / tp), abs=64)


# ---------------------------------------------------------------- MLA's dequantized kv_b_proj

class _NoCopy(Scheme):
    def load_copy_bytes(self, t):
        return 0


def _no_copy(s: Scheme) -> Scheme:
    return _NoCopy(**{f: getattr(s, f) for f in Scheme.__dataclass_fields__})


def _stage0(spec, scheme, tp):
    return stage_weights(build_weight_table(spec, scheme, 2), Layout(tp=tp))[0].bytes


def glm47_flash():
    return build_spec(json.loads((C26 / "zai-org--GLM-4.7-Flash.json").read_text()), "zai-org/GLM-4.7-Flash")


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_mla_quantized_kv_b_proj_keeps_a_bf16_copy(tp):
    """GLM-4.7-Flash fp8 (row 158's proxy): 47 layers x kv_b_proj (20 heads x (192 nope + 256 v) = 8960 rows,
    kv_lora 512) x 2 bytes, split by TP like the column-parallel weight: 0.4016 GiB at TP 1."""
    spec = glm47_flash()
    fp8 = quant.whatif_scheme("fp8")
    copy = 47 * 8960 * 512 * 2
    assert copy / GiB == pytest.approx(0.4016, abs=1e-4)
    assert _stage0(spec, fp8, tp) - _stage0(spec, _no_copy(fp8), tp) == pytest.approx(copy / tp, abs=1)
    kvb = [t for t in spec.tensors if t.name.endswith("kv_b_proj.weight")]
    assert len(kvb) == 47 and all(fp8.load_copy_bytes(t) == 8960 * 512 * 2 for t in kvb)
    assert sum(fp8.load_copy_bytes(t) for t in spec.tensors) == copy          # nothing else is copied
    bf16 = quant.whatif_scheme("bf16")                                         # unquantized: the weight itself
    assert all(bf16.load_copy_bytes(t) == 0 for t in spec.tensors)


def test_mla_copy_on_a_fp8_checkpoint_and_its_headers():
    """DeepSeek-V3's fp8 block checkpoint at TP 8: 61 layers x (128 / 8 heads x 256) x 512 x 2 bytes a rank; the
    stored bytes (tensor_bytes, the safetensors header comparison) do not include it."""
    spec = build_spec(json.loads((BUNDLED / "deepseek-ai--DeepSeek-V3.json").read_text()), "deepseek-ai/DeepSeek-V3")
    s = checkpoint_scheme(spec)
    assert _stage0(spec, s, 8) - _stage0(spec, _no_copy(s), 8) == pytest.approx(61 * 16 * 256 * 512 * 2, abs=1)
    kvb = next(t for t in spec.tensors if t.name.endswith("kv_b_proj.weight"))
    assert s.tensor_bytes(kvb) == sum(s.breakdown(kvb).values()) == 32768 * 512 + 256 * 4 * 4   # fp8 + block scales
