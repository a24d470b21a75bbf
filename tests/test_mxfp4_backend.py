"""vLLM's MXFP4 MoE backend per GPU compute capability (issue 10, branches mxfp4be, mxfp4mix).

Each GPU is priced in its own backend's expert layout in any job: a GPU's cells in a job mixing capabilities
(H100 + B200 + RTX PRO 6000 + A100) are its one-GPU job's cells, and the weight differences between GPUs are
the expert bytes computed by hand from vLLM's padding lines (``_expert_bytes``).

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


# ---------------------------------------------------------------- wiring: each GPU -> its backend's layout
import json  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import polars as pl  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from reportgen.arch.spec import ModelSpec  # noqa: E402
from reportgen.estimate.tables import mxfp4_backend_for, scheme_for  # noqa: E402
from reportgen.job import Matrix  # noqa: E402
from reportgen.matrix import ModelEntry, estimate_one, evaluate_matrix, iter_cell_batches, mxfp4_gpus  # noqa: E402
from test_matrix_batches import assert_same_bits  # noqa: E402

GPT_OSS_QC = {"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn"]}
DSV4_QC = {"quant_method": "fp8", "weight_block_size": [128, 128], "expert_dtype": "fp4"}
BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
GiB = 1 << 30


def test_each_gpu_gets_its_capability():
    m = SimpleNamespace(vllm_version="0.25.0")
    assert mxfp4_gpus([SimpleNamespace(compute_capability=(12, 0)), SimpleNamespace(compute_capability=(9, 0)),
                       SimpleNamespace(compute_capability=None), SimpleNamespace()], m) == [
        ((12, 0), (0, 25, 0)), ((9, 0), (0, 25, 0)), (None, (0, 25, 0)), (None, (0, 25, 0))]   # releases carry the patch


@pytest.mark.parametrize("qc,gpu,backend", [
    (GPT_OSS_QC, ((12, 0), (0, 25)), "marlin"), (GPT_OSS_QC, ((9, 0), (0, 19)), "triton"),
    (GPT_OSS_QC, ((9, 0), (0, 11)), "triton_legacy"), (GPT_OSS_QC, ((10, 0), (0, 25)), "sm100_flashinfer"),
    (GPT_OSS_QC, None, "triton"), (GPT_OSS_QC, (None, (0, 25)), "triton"),   # memory-only GPU: the default
    (DSV4_QC, ((12, 0), (0, 25)), "none"), (DSV4_QC, ((9, 0), (0, 25)), "triton")])
def test_scheme_follows_the_gpu(qc, gpu, backend):
    spec = ModelSpec(model_type="test", dtype="bfloat16", quantization_config=qc, tensors=[])
    assert mxfp4_backend_for(spec, gpu) == backend
    s = scheme_for(spec, "checkpoint", mxfp4_backend=mxfp4_backend_for(spec, gpu))
    assert s.moe_padding == MXFP4_MOE_PADDING[backend]


def _bundled(mid: str, **over) -> ModelEntry:
    cfg = json.loads((BUNDLED / (mid.replace("/", "--") + ".json")).read_text())
    cfg.update(over)
    return cfg


def gpt_oss_120b() -> ModelEntry:
    """openai/gpt-oss-120b: the bundled gpt-oss-20b config with its 36 layers and 128 experts (the 120b
    config.json differs from the 20b one in exactly these: num_hidden_layers, num_local_experts and the
    layer_types list, still alternating sliding / full); checked against its published total below."""
    cfg = _bundled("openai/gpt-oss-20b", num_hidden_layers=36, num_local_experts=128,
                   layer_types=["sliding_attention", "full_attention"] * 18)
    return ModelEntry("openai/gpt-oss-120b", build_spec(cfg, "openai/gpt-oss-120b"), None, "derived")


def dsv4_flash() -> ModelEntry:
    mid = "deepseek-ai/DeepSeek-V4-Flash"
    return ModelEntry(mid, build_spec(_bundled(mid), mid), None, "bundled")


def qwen3_8b() -> ModelEntry:
    mid = "Qwen/Qwen3-8B"
    return ModelEntry(mid, build_spec(_bundled(mid), mid), None, "bundled")


# H100 (SM 9.0: Triton), B200 (SM 10.0: TRT-LLM / DeepGemmFP4Experts), RTX PRO 6000 (SM 12.0: Marlin /
# DeepGemmFP4Experts), A100 (SM 8.0: Marlin)
MIXED = ("H100", "nvidia_b200", "nvidia_rtx_pro_6000_blackwell", "A100")
MIX_MX = Matrix(tp=[1, 2, 4], pp=[1, 2], dp=[1], ep=[False, True], weight_dtype=["checkpoint", "fp8"],
                kv_cache_dtype=["fp8"], max_model_len=[8192, 131072], concurrency=[1, 32],
                gpu_memory_utilization=[0.92], vllm_version="0.25.0")


def test_gpt_oss_120b_config_is_the_published_model():
    assert gpt_oss_120b().spec.params_total == 116_829_156_672     # param_truths.md (hfjs), exact


def _same_cells(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Bit for bit, headroom_pct included (it was 1e-13 relative until branch headroombits made a one-GPU job
    divide by ``_budget`` element-wise, as the many-GPU job does: docs/decisions.md "headroom_pct bit for bit")."""
    assert_same_bits(got, want)
    assert (got["headroom_pct"].drop_nulls() == want["headroom_pct"].drop_nulls()).all()


@pytest.fixture(scope="module")
def mixed(cat):
    ents = [gpt_oss_120b(), dsv4_flash(), qwen3_8b()]
    gpus = [cat.get(g) for g in MIXED]
    return ents, gpus, evaluate_matrix(ents, gpus, MIX_MX)


def assert_each_gpu_alone(ents, gpus, matrix, whole: pl.DataFrame) -> None:
    """Every GPU's cells in the many-GPU job ``whole`` are its one-GPU job's (same bits), and the streamed
    batches are the frame."""
    for g in gpus:
        one = evaluate_matrix(ents, [g], matrix)
        assert one.height * len(gpus) == whole.height
        _same_cells(whole.filter(pl.col("gpu") == g.id), one)
    _same_cells(pl.concat(list(iter_cell_batches(ents, gpus, matrix, batch_cells=997))), whole)


def test_mixed_job_rows_equal_each_gpu_alone(mixed):
    """Every GPU's cells in the mixed job are its one-GPU job's cells (same layout rows, same bits), for the
    two MXFP4 models and a model without MXFP4 experts; and the streamed batches are the frame."""
    assert_each_gpu_alone(*mixed[:2], MIX_MX, mixed[2])


def _w(df, model, gpu, tp, weights_as="checkpoint"):
    return df.filter(pl.col("model") == model, pl.col("gpu") == gpu, pl.col("tp") == tp, pl.col("pp") == 1,
                     ~pl.col("ep"), pl.col("weights_as") == weights_as)["weights_gib"].unique().to_list()


def _expert_bytes(backend: str, H: int, I: int, tp: int, bias: bool, model_dtype_bytes: int = 2) -> int:
    """One expert's bytes on one rank (gate_up fused + down, with biases), by hand from vLLM @001eda31
    ``oracle/mxfp4.py`` ``mxfp4_round_up_hidden_size_and_intermediate_size``:
      Marlin:   ``intermediate_size = round_up(intermediate_size, 128)``, ``hidden_size = round_up(hidden_size, 256)``
      TRT-LLM:  ``intermediate_size = round_up(intermediate_size, 256)``, ``hidden_size = round_up(hidden_size, 256)``
      else (Triton): ``intermediate_size = round_up(intermediate_size, 64)``
    fp4 = half a byte, one e8m0 scale byte per 32 inputs; the Triton conversion (``_swizzle_mxfp4``,
    HopperMXValueLayout / HopperMXScaleLayout) re-tiles the weight to 64 rows x 64 packed bytes and the
    scales to 256 rows x 2 groups, and keeps the loaded scales; Triton and TRT-LLM hold the biases in fp32.
    DeepGemmFP4Experts ("none", deep_gemm_moe.py @bf1a7d17) uses the loaded (E, N, K/2) weights as they are."""
    up = lambda x, a: -(-x // a) * a   # noqa: E731
    i = I // tp
    if backend == "none":
        ip, hp = i, H
    elif backend == "marlin":
        ip, hp = up(i, 128), up(H, 256)
    elif backend == "sm100_flashinfer":
        ip, hp = up(i, 256), up(H, 256)
    else:
        ip, hp = up(i, 64), H
    if backend == "triton":
        gu = 2 * ip * up(hp // 2, 64) + up(2 * ip, 256) * up(hp // 32, 2) + 2 * ip * (hp // 32)
        dn = up(hp, 64) * up(ip // 2, 64) + up(hp, 256) * up(ip // 32, 2) + hp * (ip // 32)
    else:
        gu = 2 * ip * hp // 2 + 2 * ip * hp // 32
        dn = hp * ip // 2 + hp * ip // 32
    b = (4 if backend in ("triton", "sm100_flashinfer") else model_dtype_bytes) * (2 * ip + hp) if bias else 0
    return gu + dn + b


def test_expert_bytes_by_hand():
    # gpt-oss TP 2 (H = I = 2880, intermediate per rank 1440)
    assert _expert_bytes("marlin", 2880, 2880, 2, True) == (2 * 1536 * 1536 + 2 * 1536 * 96 + 3072 * 768
                                                           + 3072 * 48 + 2 * (3072 + 3072)) == 7_532_544
    assert _expert_bytes("sm100_flashinfer", 2880, 2880, 2, True) == 7_532_544 + 2 * (3072 + 3072)
    assert _expert_bytes("triton", 2880, 2880, 2, True) == (2944 * 1472 + 3072 * 90 + 2944 * 90
                                                           + 2880 * 768 + 3072 * 46 + 2880 * 46
                                                           + 4 * (2944 + 2880)) == 7_383_936
    # DeepSeek-V4-Flash TP 2 (hidden 4096, moe_intermediate_size 2048): no padding; Triton only adds the
    # kept loaded scales (the swizzled weight and scale tiles are already aligned)
    assert _expert_bytes("triton", 4096, 2048, 2, False) - _expert_bytes("none", 4096, 2048, 2, False) \
        == 2048 * 128 + 4096 * 32


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_per_gpu_weights_follow_the_backend(mixed, tp):
    """Per-rank weights of each GPU in the mixed job differ from H100's (Triton) by exactly the routed
    experts' layout difference (layers x experts x ``_expert_bytes``): gpt-oss-120b on B200 (TRT-LLM),
    RTX PRO 6000 and A100 (Marlin); DeepSeek-V4-Flash on B200 / RTX PRO 6000 (DeepGemmFP4Experts: the
    checkpoint's bytes) and A100 (Triton default, as H100); Qwen3-8B the same on all four."""
    ents, gpus, whole = mixed
    h100, b200, rtx, a100 = (g.id for g in gpus)
    n = 36 * 128
    oss = {g: _w(whole, "openai/gpt-oss-120b", g, tp) for g in (h100, b200, rtx, a100)}
    assert all(len(v) == 1 for v in oss.values())
    tri = _expert_bytes("triton", 2880, 2880, tp, True)
    for g, backend in ((b200, "sm100_flashinfer"), (rtx, "marlin"), (a100, "marlin")):
        assert (oss[g][0] - oss[h100][0]) * GiB == pytest.approx(n * (_expert_bytes(backend, 2880, 2880, tp, True)
                                                                       - tri), abs=64)
    dsv4 = {g: _w(whole, "deepseek-ai/DeepSeek-V4-Flash", g, tp) for g in (h100, b200, rtx, a100)}
    assert dsv4[b200] == dsv4[rtx] and dsv4[a100] == dsv4[h100]
    delta = (dsv4[h100][0] - dsv4[b200][0]) * GiB
    per = _expert_bytes("triton", 4096, 2048, tp, False) - _expert_bytes("none", 4096, 2048, tp, False)
    assert delta == pytest.approx(DSV4_MOE_LAYERS * DSV4_EXPERTS * per, abs=64)
    assert len({_w(whole, "Qwen/Qwen3-8B", g, tp)[0] for g in (h100, b200, rtx, a100)}) == 1
    # what-if weights (fp8) hold no MXFP4 experts: one value on every GPU
    assert len({_w(whole, "openai/gpt-oss-120b", g, tp, "fp8")[0] for g in (h100, b200, rtx, a100)}) == 1


DSV4_MOE_LAYERS, DSV4_EXPERTS = 43, 256     # DeepSeek-V4-Flash config.json: num_hidden_layers, n_routed_experts


def test_estimate_one_uses_the_gpu(cat):
    """``reportgen estimate --gpu SKU`` (and --from-vllm-args, the same call) prices the SKU's backend; a GPU
    given only by memory gets the H100 (Triton) layout, the documented default."""
    e = gpt_oss_120b()
    got = {g: estimate_one(e.spec, cat.get(g), tp=2, max_model_len=8192, vllm_version="0.25")["weights_gib"]
           for g in MIXED}
    assert got["H100"] == estimate_one(e.spec, 79.19, tp=2, max_model_len=8192, vllm_version="0.25")["weights_gib"]
    assert got["A100"] == got["nvidia_rtx_pro_6000_blackwell"] != got["H100"]
    assert (got["nvidia_b200"] - got["A100"]) * GiB == pytest.approx(36 * 128 * 2 * (3072 + 3072), abs=64)


def _cli(*args) -> dict:
    import contextlib
    import io

    from reportgen.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["estimate", *args, "--json", "--offline"]) == 0
    return json.loads(out.getvalue())


def test_cli_estimate_and_from_vllm_args_use_the_gpu():
    """`reportgen estimate --gpu SKU` and `--from-vllm-args` price the SKU's backend (gpt-oss-20b TP 2,
    bundled): Marlin on A100 and RTX PRO 6000, TRT-LLM on B200, Triton on H100 and for `--gpu-memory-gib`."""
    w = {g: _cli("openai/gpt-oss-20b", "--gpu", g, "-tp", "2", "--max-model-len", "8192")["weights_gib"]
         for g in ("H100", "A100", "RTX-PRO-6000", "B200")}
    n = 24 * 32
    tri, mar = _expert_bytes("triton", 2880, 2880, 2, True), _expert_bytes("marlin", 2880, 2880, 2, True)
    assert (w["A100"] - w["H100"]) * GiB == pytest.approx(n * (mar - tri), abs=64)
    assert w["RTX-PRO-6000"] == w["A100"]
    assert (w["B200"] - w["A100"]) * GiB == pytest.approx(n * 2 * (3072 + 3072), abs=64)   # fp32 biases
    assert _cli("openai/gpt-oss-20b", "--gpu-memory-gib", "90", "-tp", "2",
                "--max-model-len", "8192")["weights_gib"] == w["H100"]
    line = "vllm serve openai/gpt-oss-20b --tensor-parallel-size 2 --max-model-len 8192"
    for g in ("A100", "B200"):
        assert _cli("--gpu", g, "--from-vllm-args", line)["weights_gib"] == w[g]


def test_only_mxfp4_rows_of_mixed_backends_split(cat):
    """Extra layout rows only where a row holds MXFP4 experts as shipped and the GPUs' backends differ: a
    non-MXFP4 model, what-if weights and a job whose GPUs share a backend keep one row (``pick`` None)."""
    from reportgen.matrix import layout_table

    mixed = mxfp4_gpus([cat.get(g) for g in MIXED], MIX_MX)
    same = mxfp4_gpus([cat.get("A100"), cat.get("nvidia_rtx_pro_6000_blackwell")], MIX_MX)   # both Marlin
    n = len(MIX_MX.tp) * len(MIX_MX.pp) * len(MIX_MX.dp) * len(MIX_MX.ep)     # layouts x kv dtype (1)
    assert layout_table([qwen3_8b()], MIX_MX, mixed)[3] is None
    assert layout_table([gpt_oss_120b()], MIX_MX, same)[3] is None
    fp8 = Matrix(tp=MIX_MX.tp, pp=MIX_MX.pp, dp=MIX_MX.dp, ep=MIX_MX.ep, weights_as=["fp8"],
                 kv_cache_dtype=["fp8"], vllm_version="0.25.0")
    assert layout_table([gpt_oss_120b()], fp8, mixed)[3] is None
    lt, _, _, pick = layout_table([gpt_oss_120b(), qwen3_8b()], MIX_MX, mixed)
    # gpt-oss checkpoint rows: 3 backends (Triton, TRT-LLM, Marlin x2); its fp8 rows and Qwen3-8B's: one each
    assert pick.shape == (2 * 2 * n, 4) and lt.height == 2 * 2 * n + 2 * n
    first = pick[0]
    assert list(first - first[0]) == [0, 1, 2, 2]
