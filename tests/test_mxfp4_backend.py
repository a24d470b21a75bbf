"""vLLM's MXFP4 MoE backend per GPU compute capability (issue 10, branch mxfp4be).

Pinned to vLLM ``fused_moe/oracle/mxfp4.py`` @001eda31 (``select_mxfp4_moe_backend``: TRITON only for
``(9, 0) <= capability < (11, 0)``; priority FLASHINFER_TRTLLM_MXFP4_BF16 > CK > TRITON > FLASHINFER_CUTLASS >
TRITON_UNFUSED > MARLIN; ``mxfp4_round_up_hidden_size_and_intermediate_size``: Marlin 128 / 256, TRT-LLM
256 / 256, CUTLASS 128 / 128, else intermediate 64) and ``fused_moe/experts/deep_gemm_moe.py`` @bf1a7d17
(``DeepGemmFP4Experts._supports_current_device``: capability family 100 or 120; weights used as loaded).
"""

import pytest

from reportgen.catalog import _parse, load_catalog
from reportgen.estimate.quant.layouts import (MXFP4_MOE_PADDING, Mxfp4, mxfp4_expert_rank_parts,
                                              mxfp4_moe_backend)


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


@pytest.mark.parametrize("sku,cc", [
    ("A100", (8, 0)), ("H100", (9, 0)), ("nvidia_h200_141gb_sxm", (9, 0)), ("nvidia_h20", (9, 0)),
    ("nvidia_l40s", (8, 9)), ("nvidia_rtx_4090", (8, 9)), ("nvidia_rtx_6000_ada", (8, 9)), ("nvidia_a10", (8, 6)),
    ("nvidia_b200", (10, 0)), ("nvidia_gb200", (10, 0)), ("nvidia_b300", (10, 3)),
    ("nvidia_rtx_pro_6000_blackwell", (12, 0)), ("nvidia_rtx_5090", (12, 0)),
    ("amd_mi300x", None), ("google_tpu_v6e", None)])
def test_catalog_compute_capability(cat, sku, cc):
    assert cat.get(sku).compute_capability == cc


def test_every_nvidia_sku_has_a_capability(cat):
    missing = [s.id for s in cat if s.vendor == "NVIDIA" and s.compute_capability is None]
    assert missing == []


def test_capability_column_validated():
    head = "sku_id,name,usable_memory_gib,compute_capability\n"
    assert _parse(head + "x,X,10,\n", "f")[0][0].compute_capability is None
    with pytest.raises(ValueError, match="compute_capability '9' is not allowed"):
        _parse(head + "x,X,10,9\n", "f")
    with pytest.raises(ValueError, match="compute_capability 'sm90'"):
        _parse(head + "x,X,10,sm90\n", "f")


@pytest.mark.parametrize("cc,version,fp8_act,backend", [
    ((9, 0), (0, 19, 0), False, "triton"),           # H100 0.19.0: "Using 'TRITON' Mxfp4 MoE backend" (row 124)
    ((9, 0), None, False, "triton"),
    ((9, 0), (0, 14, 1), False, "triton_legacy"),    # pip triton_kernels v3.5.0 (row 13, 0.14.1)
    ((10, 0), (0, 25, 0), False, "sm100_flashinfer"),  # FLASHINFER_TRTLLM_MXFP4_BF16 first on SM100 family
    ((10, 3), None, False, "sm100_flashinfer"),
    ((8, 0), (0, 19, 0), False, "marlin"),           # A100: TRITON gated to SM90-SM10x (row 53)
    ((8, 9), None, False, "marlin"),
    ((8, 6), None, False, "marlin"),
    ((12, 0), (0, 25, 0), False, "marlin"),          # SM120 is not < (11, 0)
    ((12, 0), (0, 25, 0), True, "none"),             # DeepSeek-V4: DeepGemmFP4Experts (row 156's log)
    ((10, 0), None, True, "none"),
    ((9, 0), None, True, "triton"),                  # W4A8 on SM90 not read: previous default
    (None, None, False, "triton"),                   # ROCm / unknown: previous default
])
def test_backend_choice(cc, version, fp8_act, backend):
    assert mxfp4_moe_backend(cc, version, fp8_act) == backend
    assert backend in MXFP4_MOE_PADDING


def test_layout_arithmetic_gpt_oss_shapes():
    """gpt-oss: hidden 2880, intermediate 2880, fused gate_up (out 5760); TP 2 per rank."""
    H, I = 2880, 2880
    # Marlin: intermediate per rank 1440 -> 1536 (128), hidden 2880 -> 3072 (256)
    gu = mxfp4_expert_rank_parts(2 * I, H, 2, down=False, fused_gate_up=True, padding=MXFP4_MOE_PADDING["marlin"])
    assert gu == {"weight": 2 * 1536 * (3072 // 32) * 16, "scale": 2 * 1536 * (3072 // 32)}
    dn = mxfp4_expert_rank_parts(H, I, 2, down=True, fused_gate_up=False, padding=MXFP4_MOE_PADDING["marlin"])
    assert dn == {"weight": 3072 * (1536 // 32) * 16, "scale": 3072 * (1536 // 32)}
    # TRT-LLM (SM100): 256 / 256 -> 1440 -> 1536, 2880 -> 3072: same shapes as Marlin here
    assert mxfp4_expert_rank_parts(2 * I, H, 2, False, True, MXFP4_MOE_PADDING["sm100_flashinfer"]) == gu
    # Triton (SM90): intermediate per rank 1440 -> 1472 (64), hidden kept; the swizzled weight pads rows
    # and packed bytes (90 x 16 = 1440 -> 1472) to 64, the swizzled scales rows to 256, the loaded scales stay
    tr = mxfp4_expert_rank_parts(2 * I, H, 2, False, True, MXFP4_MOE_PADDING["triton"])
    assert tr == {"weight": 2944 * 1472, "scale": 3072 * 90, "loaded_scale": 2944 * 90}


def test_none_is_the_checkpoint_layout():
    """DeepGemmFP4Experts' layout ("none") is the checkpoint's own bytes per rank (DeepSeek-V4-Flash:
    hidden 4096, moe_intermediate_size 2048, TP 2)."""
    H, I, tp = 4096, 2048, 2
    none = MXFP4_MOE_PADDING["none"]
    assert mxfp4_expert_rank_parts(2 * I, H, tp, False, True, none) == Mxfp4().parts(2 * I // tp, H)
    assert mxfp4_expert_rank_parts(H, I, tp, True, False, none) == Mxfp4().parts(H, I // tp)
    # the Triton layout it was priced at: more bytes (swizzled scales + the loaded ones)
    tr = mxfp4_expert_rank_parts(2 * I, H, tp, False, True, MXFP4_MOE_PADDING["triton"])
    assert sum(tr.values()) > sum(Mxfp4().parts(2 * I // tp, H).values())


# ---------------------------------------------------------------- wiring: job GPUs -> scheme
from types import SimpleNamespace  # noqa: E402

from reportgen.arch.spec import ModelSpec  # noqa: E402
from reportgen.estimate.tables import mxfp4_backend_for, scheme_for  # noqa: E402
from reportgen.matrix import mxfp4_gpu  # noqa: E402

GPT_OSS_QC = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn"]}
DSV4_QC = {"quant_method": "fp8", "weight_block_size": [128, 128], "expert_dtype": "fp4"}


def _gpu(cc):
    return SimpleNamespace(compute_capability=cc)


def test_job_gpus_decide_only_when_they_share_a_capability():
    m = SimpleNamespace(vllm_version="0.25.0")
    assert mxfp4_gpu([_gpu((12, 0)), _gpu((12, 0))], m) == ((12, 0), (0, 25))
    assert mxfp4_gpu([_gpu((12, 0)), _gpu((9, 0))], m) is None       # mixed job: the H100 layout for all
    assert mxfp4_gpu([_gpu(None)], m) is None                          # AMD / unknown
    assert mxfp4_gpu([SimpleNamespace()], m) is None                   # a GPU object without the field


@pytest.mark.parametrize("qc,gpu,backend", [
    (GPT_OSS_QC, ((12, 0), (0, 25)), "marlin"), (GPT_OSS_QC, ((9, 0), (0, 19)), "triton"),
    (GPT_OSS_QC, ((9, 0), (0, 11)), "triton_legacy"), (GPT_OSS_QC, ((10, 0), (0, 25)), "sm100_flashinfer"),
    (GPT_OSS_QC, None, "triton"), (DSV4_QC, ((12, 0), (0, 25)), "none"), (DSV4_QC, ((9, 0), (0, 25)), "triton")])
def test_scheme_follows_the_gpu(qc, gpu, backend):
    spec = ModelSpec(model_type="test", dtype="bfloat16", quantization_config=qc, tensors=[])
    assert mxfp4_backend_for(spec, gpu) == backend
    s = scheme_for(spec, "checkpoint", mxfp4_gpu=gpu)
    assert s.moe_padding == MXFP4_MOE_PADDING[backend]
