"""NVFP4 MoE experts: the backend vLLM's ``--moe-backend auto`` picks per GPU, and the bytes of its layout.

vLLM sources read (docs/decisions.md "NVFP4 MoE backend per GPU"):
- ``vllm/model_executor/layers/fused_moe/oracle/nvfp4.py`` @01362014 ``select_nvfp4_moe_backend``: auto order
  FLASHINFER_TRTLLM, FLASHINFER_CUTEDSL(_BATCHED), FLASHINFER_CUTLASS, VLLM_CUTLASS, MARLIN, ...
- ``experts/trtllm_nvfp4_moe.py`` @01f6dc6a: ``is_device_capability_family(100)`` only;
  ``experts/flashinfer_cutedsl_moe.py`` @03a45964: family 100, SiLU only;
  ``experts/flashinfer_cutlass_moe.py`` @03063c09: SM 9.0, families 100 / 120, NVFP4 from 10.0, SILU / RELU2_NO_MUL /
  SWIGLUOAI.
- ``quantization/utils/flashinfer_fp4_moe.py`` @296ce48d ``prepare_nvfp4_moe_layer_for_fi_or_cutlass``: for the
  CUTLASS kernels ``w13_scale = swizzle_blockscale(w13_scale)`` (rows to 128, 16-groups to 4), then
  ``pad_size = w13_scale.size(1) - w13.size(1)``: a non-gated w13 gets ``pad_size`` zero rows, w2 ``pad_size // 2``
  zero bytes per row and w2_scale ``pad_size // 16`` columns; a gated one raises NotImplementedError.  TRT-LLM
  (the RoutedExperts-era copy, search file id 61514964001): ``align_trtllm_fp4_moe_hidden_dim_for_fi`` (hidden to
  256) and ``align_fp4_moe_weights_for_fi`` (intermediate to 64 gated / 128 non-gated), scales interleaved in the
  same 128 x 4 tiles.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from reportgen.arch import build_spec
from reportgen.catalog import load_catalog
from reportgen.estimate.quant.layouts import NVFP4_MOE_BACKENDS, nvfp4_moe_backend
from reportgen.estimate.tables import Component, moe_activation, nvfp4_backend_for, scheme_for
from reportgen.job import Matrix
from reportgen.matrix import ModelEntry, evaluate_matrix
from test_mxfp4_backend import assert_each_gpu_alone, qwen3_8b

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "tests" / "data" / "configs_2026"
GiB = 1 << 30


@pytest.mark.parametrize("cc, version, act, w4a16, backend", [
    ((12, 0), (0, 21), "relu2_no_mul", False, "nvfp4_flashinfer_cutlass"),   # row 166 (Nemotron-H relu2)
    ((12, 0), (0, 21), "silu", False, "nvfp4_flashinfer_cutlass"),
    ((12, 0), (0, 21), "gelu_tanh", False, "nvfp4_cutlass"),      # row 170's Gemma 4: FlashInfer CUTLASS refuses gelu
    ((12, 1), None, "silu", False, "nvfp4_flashinfer_cutlass"),   # GB10 taken as 12.0
    ((10, 0), (0, 25), "relu2_no_mul", False, "nvfp4_flashinfer_trtllm"),
    ((10, 3), None, "gelu_tanh", False, "nvfp4_flashinfer_trtllm"),
    ((11, 0), (0, 25), "silu", False, "nvfp4_cutlass"),           # Thor: FlashInfer CUTLASS excludes SM 11.0
    ((9, 0), (0, 25), "silu", False, "nvfp4_marlin"),             # FlashInferExperts: NVFP4 from 10.0 only
    ((8, 0), (0, 25), "silu", False, "nvfp4_marlin"),
    ((12, 0), (0, 25), "silu", True, "nvfp4_marlin"),             # weight-only NVFP4: Marlin everywhere
    ((12, 0), (0, 14), "silu", False, "nvfp4_cutlass"),           # pre-oracle: VLLM_USE_FLASHINFER_MOE_FP4 off
    ((10, 0), (0, 12), "silu", False, "nvfp4_cutlass"),
    ((12, 0), (0, 15), "silu", False, None),                      # 0.15.0 failed on SM 12.x (vllm#33417)
    (None, (0, 25), "silu", False, None),                         # capability not known: as before
])
def test_auto_choice(cc, version, act, w4a16, backend):
    assert nvfp4_moe_backend(cc, version, act, w4a16) == backend


def nemotron() -> ModelEntry:
    """NVIDIA's Nemotron-3-Nano-30B-A3B-NVFP4 (row 166's proxy) with its ModelOpt side file."""
    mid = "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4"
    stem = CONFIGS / mid.replace("/", "--")
    cfg = json.loads(stem.with_suffix(".json").read_text())
    hq = json.loads(Path(str(stem) + ".hf_quant_config.json").read_text())
    return ModelEntry(mid, build_spec(cfg, mid, extra={"hf_quant_config": hq}), None, "bundled")


def gemma4_moe() -> ModelEntry:
    mid = "nvidia/Gemma-4-26B-A4B-NVFP4"
    return ModelEntry(mid, build_spec(json.loads((CONFIGS / (mid.replace("/", "--") + ".json")).read_text()), mid),
                      None, "bundled")


def test_activation_and_w4a4_of_the_checkpoints():
    nem, gem = nemotron().spec, gemma4_moe().spec
    assert moe_activation(nem) == "relu2_no_mul" and moe_activation(gem) == "gelu_tanh"
    for spec in (nem, gem):
        s = scheme_for(spec, "checkpoint")
        t = next(t for t in spec.tensors if t.component is Component.ROUTED_EXPERTS)
        assert s.layout_for(t).input_scale          # W4A4 (input scales): the FlashInfer / CUTLASS kernels apply
    assert nvfp4_backend_for(nem, ((12, 0), (0, 21))) == "nvfp4_flashinfer_cutlass"
    assert nvfp4_backend_for(gem, ((12, 0), (0, 21))) == "nvfp4_cutlass"
    # an explicit --moe-backend names the backend whatever the GPU
    assert nvfp4_backend_for(gem, None, "cutlass") == "nvfp4_cutlass"
    assert nvfp4_backend_for(nem, ((9, 0), (0, 21)), "flashinfer_trtllm") == "nvfp4_flashinfer_trtllm"
    assert nvfp4_backend_for(nem, ((12, 0), (0, 21)), "triton") is None


def _nemotron_expert_bytes(backend: str, tp: int) -> int:
    """One MoE layer's routed experts on one rank (128 experts, up (1856 x 2688) + down (2688 x 1856), relu2: not
    gated), by hand from the vLLM lines in the module docstring.  fp4 = half a byte, one fp8 scale per 16, two fp32
    scalars (weight_scale_2, input_scale) per expert and matrix."""
    up = lambda x, a: -(-x // a) * a   # noqa: E731
    h, n = 2688, 1856 // tp
    if backend in ("nvfp4_cutlass", "nvfp4_flashinfer_cutlass"):
        n = up(n, 128)                                  # pad_size = swizzled w13_scale rows - w13 rows
        sw = True
    elif backend == "nvfp4_flashinfer_trtllm":
        h, n, sw = up(h, 256), up(n, 128), True         # hidden to 256; non-gated intermediate to 128
    else:
        sw = False                                      # Marlin: the checkpoint's bytes
    scale = (lambda r, g: up(r, 128) * up(g, 4)) if sw else (lambda r, g: r * g)
    w13 = n * h // 2 + scale(n, h // 16) + 8
    w2 = h * n // 2 + scale(h, n // 16) + 8
    return 128 * (w13 + w2)


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_nemotron_expert_bytes_by_hand(tp):
    spec = nemotron().spec
    ex = [t for t in spec.tensors if t.component is Component.ROUTED_EXPERTS and t.layer == 1]
    assert [t.shape for t in ex] == [(1856, 2688), (2688, 1856)]
    for name in NVFP4_MOE_BACKENDS:
        s = scheme_for(spec, "checkpoint", mxfp4_backend=name)
        assert sum(s.expert_rank_bytes(t, tp) for t in ex) == _nemotron_expert_bytes(name, tp), name
    # the real figures at TP 1: +64 rows x 1,512 B (w13) and +36 B on each of 2,688 rows (w2) per expert
    assert _nemotron_expert_bytes("nvfp4_marlin", 1) == 718_407_680
    assert _nemotron_expert_bytes("nvfp4_flashinfer_cutlass", 1) - _nemotron_expert_bytes("nvfp4_marlin", 1) \
        == 128 * (64 * 1512 + 2688 * 36) == 24_772_608
    assert 23 * 24_772_608 / GiB == pytest.approx(0.5306, abs=1e-4)     # row 166's missing 0.54 GiB


NV_GPUS = ("nvidia_b200", "nvidia_rtx_pro_6000_blackwell", "H100")
MIX_NV = Matrix(tp=[1, 2, 4], pp=[1, 2], dp=[1], ep=[False, True], weight_dtype=["checkpoint", "fp8"],
                kv_cache_dtype=["fp8"], max_model_len=[8192, 131072], concurrency=[1, 32],
                gpu_memory_utilization=[0.92], vllm_version="0.25.0")


@pytest.fixture(scope="module")
def mixed():
    cat = load_catalog()
    ents = [nemotron(), gemma4_moe(), qwen3_8b()]
    gpus = [cat.get(g) for g in NV_GPUS]
    return ents, gpus, evaluate_matrix(ents, gpus, MIX_NV)


def test_mixed_job_rows_equal_each_gpu_alone(mixed):
    """B200 (TRT-LLM), RTX PRO 6000 (FlashInfer CUTLASS / vLLM CUTLASS) and H100 (Marlin) in one job: every GPU's
    cells are its one-GPU job's, bit for bit, and the streamed batches are the frame."""
    assert_each_gpu_alone(*mixed[:2], MIX_NV, mixed[2])


def _rows(df, model, gpu, tp, weights_as="checkpoint"):
    return df.filter(pl.col("model") == model, pl.col("gpu") == gpu, pl.col("tp") == tp, pl.col("pp") == 1,
                     ~pl.col("ep"), pl.col("weights_as") == weights_as)


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_per_gpu_weights_follow_the_backend(mixed, tp):
    """Weights per rank differ between the GPUs by 23 MoE layers x the by-hand expert bytes; fp8 what-if rows and
    Qwen3-8B do not move."""
    _, gpus, df = mixed
    b200, rtx, h100 = (g.id for g in gpus)
    mid = "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4"
    w = {g.id: _rows(df, mid, g.id, tp)["weights_gib"].unique().to_list() for g in gpus}
    assert all(len(v) == 1 for v in w.values())
    for g, backend in ((b200, "nvfp4_flashinfer_trtllm"), (rtx, "nvfp4_flashinfer_cutlass")):
        extra = 23 * (_nemotron_expert_bytes(backend, tp) - _nemotron_expert_bytes("nvfp4_marlin", tp))
        assert (w[g][0] - w[h100][0]) * GiB == pytest.approx(extra, abs=64)
    for model, wd in ((mid, "fp8"), ("Qwen/Qwen3-8B", "checkpoint")):
        assert len({_rows(df, model, g.id, tp, wd)["weights_gib"].unique().item() for g in gpus}) == 1


def test_gemma4_gated_padding_is_refused_where_vllm_refuses(mixed):
    """Gemma-4-26B-A4B at TP 4: 704 / 4 = 176 intermediate per rank, w13 352 rows -- not a multiple of the 128 the
    CUTLASS kernels' swizzled scales need, and gated, so vLLM's conversion raises on the RTX PRO 6000 (its auto
    backend there is VLLM_CUTLASS); TRT-LLM on B200 pads it to 192 and starts; Marlin on H100 keeps it."""
    _, gpus, df = mixed
    b200, rtx_id, h100 = (g.id for g in gpus)
    mid = "nvidia/Gemma-4-26B-A4B-NVFP4"
    rtx = _rows(df, mid, rtx_id, 4)
    assert set(rtx["status"]) == {"invalid_layout"}
    assert "NotImplementedError" in rtx["reason"][0] and "352 rows" in rtx["reason"][0]
    for g in (b200, h100):
        assert "invalid_layout" not in set(_rows(df, mid, g, 4)["status"])
    assert "invalid_layout" not in set(_rows(df, mid, rtx_id, 1)["status"])
    # with expert parallelism the experts are whole (1408 rows): it loads
    ep = df.filter(pl.col("model") == mid, pl.col("gpu") == rtx_id, pl.col("tp") == 4,
                   pl.col("ep"), pl.col("weights_as") == "checkpoint")
    assert "invalid_layout" not in set(ep["status"])


def _cli(*args) -> dict:
    out = subprocess.run([sys.executable, "-m", "reportgen", "estimate", *args, "--json"], capture_output=True,
                         text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": ""})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cli_names_the_backend():
    cfg = str(CONFIGS / "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4.json")
    rtx = _cli("--gpu", "RTX-PRO-6000", cfg, "--max-model-len", "32768")
    note = rtx["moe_backend_note"]
    assert "flashinfer_cutlass backend" in note and "FlashInfer assumed installed" in note
    unknown = _cli("--gpu-memory-gib", "96", cfg, "--max-model-len", "32768")
    assert "not known" in unknown["moe_backend_note"]
    qwen = _cli("--gpu", "RTX-PRO-6000", str(ROOT / "reportgen" / "sources" / "bundled" / "Qwen--Qwen3-8B.json"),
                "--max-model-len", "32768")
    assert "moe_backend_note" not in qwen
    assert rtx["weights_gib"] - unknown["weights_gib"] == pytest.approx(23 * 24_772_608 / GiB, abs=1e-6)


def test_rows_166_and_M15_same_checkpoint_two_backends():
    """The row-166 checkpoint also started on a 94 GB H100 (row M15, vLLM 0.19.1, its log: MARLIN): the H100 gets
    Marlin here (SM 9.0) and the checkpoint's bytes, the RTX 5090 FlashInfer CUTLASS's padded layout.  Logged
    weights 18.54 vs 18.03 GiB = +0.51; predicted +0.531 (23 x 24,772,608 B) -- the padding, checked across two
    independent starts of one checkpoint."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import validate_vllm_logs as vvl

    rows = {r["row_id"]: r for r in vvl.load_rows()}
    got = {}
    for rid in ("166", "M15"):
        case = vvl.make_case(rows[rid])
        got[rid] = vvl.compare(case, vvl.predict(case))
    assert vvl.gpu_capability(rows["M15"]["gpu"]) == (9, 0) and vvl.gpu_capability(rows["166"]["gpu"]) == (12, 0)
    assert nvfp4_moe_backend((9, 0), (0, 19), "relu2_no_mul") == "nvfp4_marlin"
    logged = got["166"]["w_meas"] - got["M15"]["w_meas"]
    predicted = got["166"]["w_pred"] - got["M15"]["w_pred"]
    assert logged == pytest.approx(0.51, abs=0.005)
    # the allocator blocks (branch quantalloc) are the same in both: 166 runs at 0.20.1 (its 0.20.1rc1 nightly, branch
    # patchver), M15 at 0.19.1 -- both before 0.21's max_split scope (tests/test_vllm_logs_rows164.py::
    # test_row166_scored_with_the_nano_nvfp4_layout), so the padding alone differs
    assert predicted == pytest.approx(23 * 24_772_608 / GiB, abs=1e-6)
    assert abs(predicted - logged) < 0.03
