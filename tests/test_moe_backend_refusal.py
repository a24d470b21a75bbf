"""An explicit ``--moe-backend`` vLLM cannot run on the GPU / the experts' quantization: vLLM refuses the start, so
reportgen answers ``invalid_layout`` with vLLM's exception and the fix (issue 10, "vLLM's flag semantics").

Sources (vllm-project/vllm, read with the search tool's read_file / find_string):

- ``vllm/model_executor/layers/fused_moe/oracle/nvfp4.py`` @01362014 ``select_nvfp4_moe_backend``: for
  ``moe_backend != "auto"``, ``map_nvfp4_backend`` raises ``ValueError(f"moe_backend='{runner_backend}' is not
  supported for NvFP4 MoE. Expected one of {list(mapping.keys())}.")`` and ``_return_or_raise`` raises
  ``ValueError(_make_log_unsupported(backend, reason))`` = "NvFp4 MoE backend '<B>' does not support the
  deployment configuration since <reason>." when no kernel class of the backend ``is_supported_config``.
- ``modular_kernel.py`` ``is_supported_config``: reasons "kernel does not support current device" > "no
  act_and_mul MLP layer" > "<activation> activation" > "quantization scheme", in that order.
- ``fused_moe/oracle/mxfp4.py`` @001eda31 ``select_mxfp4_moe_backend`` (the same ``_return_or_raise``) and
  ``gpt_oss_triton_kernels_moe.py`` ``_triton_kernel_moe_supports_current_device`` ("Keep the original
  ``(9, 0) <= cap < (11, 0)`` window on CUDA").
- vllm#33807 (2026-02, "[UX] Add --moe-backend arg"): "If MoEBackend is specified by the user and isn't valid for
  the given quantization format, it will error".
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import sys
from pathlib import Path

import polars as pl
import pytest

from reportgen.catalog import load_catalog
from reportgen.cli import main
from reportgen.estimate.quant.layouts import NVFP4_BACKEND_OF_FLAG, moe_backend_refusal, nvfp4_moe_backend
from reportgen.job import Matrix
from reportgen.matrix import ModelEntry, evaluate_matrix
from test_mxfp4_backend import _bundled, assert_each_gpu_alone, qwen3_8b
from test_nvfp4_backend import gemma4_moe, nemotron

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "tests" / "data" / "configs_2026"
NEW = (0, 25)


@pytest.mark.parametrize("backend, cc, act, w4a16, quoted", [
    # map_nvfp4_backend: no NVFP4 kernel under that name, on any GPU
    ("triton", (12, 0), "silu", False, "ValueError: moe_backend='triton' is not supported for NvFP4 MoE. Expected"),
    ("deep_gemm", (10, 0), "silu", False, "moe_backend='deep_gemm' is not supported for NvFP4 MoE"),
    ("aiter", (9, 0), "silu", False, "moe_backend='aiter' is not supported for NvFP4 MoE"),
    # TrtLlmNvFp4Experts*._supports_current_device: capability family 100 only (experts/trtllm_nvfp4_moe.py @01f6dc6a)
    ("flashinfer_trtllm", (12, 0), "relu2_no_mul", False,
     "NvFp4 MoE backend 'FLASHINFER_TRTLLM' does not support the deployment configuration since kernel does not "
     "support current device"),
    ("flashinfer_trtllm", (9, 0), "silu", False, "'FLASHINFER_TRTLLM' does not support the deployment configuration "
     "since kernel does not support current device"),
    # FlashInferCuteDSLExperts: family 100, gated SiLU only (experts/flashinfer_cutedsl_moe.py @03a45964)
    ("flashinfer_cutedsl", (12, 0), "silu", False, "'FLASHINFER_CUTEDSL' does not support the deployment "
     "configuration since kernel does not support current device"),
    ("flashinfer_cutedsl", (10, 0), "relu2_no_mul", False, "since kernel does not support no act_and_mul MLP layer"),
    # FlashInferExperts (experts/flashinfer_cutlass_moe.py @03063c09): SM 9.0 / families 100, 120; SILU, RELU2_NO_MUL,
    # SWIGLUOAI; (kNvfp4Static, kNvfp4Dynamic) only from capability 10.0
    ("flashinfer_cutlass", (12, 0), "gelu_tanh", False, "'FLASHINFER_CUTLASS' does not support the deployment "
     "configuration since kernel does not support gelu_tanh activation"),
    ("flashinfer_cutlass", (11, 0), "silu", False, "since kernel does not support current device"),
    ("flashinfer_cutlass", (9, 0), "silu", False, "since kernel does not support quantization scheme"),
    ("flashinfer_cutlass", (12, 0), "silu", True, "since kernel does not support quantization scheme"),
    # CutlassExpertsFp4: families 100 / 110 / 120, the W4A4 scheme only
    ("cutlass", (9, 0), "silu", False, "'VLLM_CUTLASS' does not support the deployment configuration since kernel "
     "does not support current device"),
    ("cutlass", (8, 0), "gelu_tanh", False, "since kernel does not support current device"),
    ("cutlass", (12, 0), "gelu_tanh", True, "since kernel does not support quantization scheme"),
])
def test_nvfp4_refusals_quote_vllm(backend, cc, act, w4a16, quoted):
    """Each case is a raise in vLLM's ``select_nvfp4_moe_backend`` (oracle/nvfp4.py @01362014: ``map_nvfp4_backend``'s
    ``raise ValueError(f"moe_backend='{runner_backend}' is not supported for NvFP4 MoE. ...")`` or
    ``_return_or_raise``'s ``raise ValueError(_make_log_unsupported(backend, reason))``); the reason quotes it and
    names the fix: ``--moe-backend auto`` with what vLLM picks there, and the explicit values that run."""
    why = moe_backend_refusal(backend, "nvfp4", cc, NEW, act, w4a16)
    assert why is not None and quoted in why
    assert why.startswith(f"vLLM refuses --moe-backend {backend} for this model's NVFP4 routed experts on SM "
                          f"{cc[0]}.{cc[1]}")
    auto = nvfp4_moe_backend(cc, NEW, act, w4a16).removeprefix("nvfp4_")
    assert f"use --moe-backend auto (vLLM picks {auto} here)" in why
    assert "marlin" in why.rsplit("use --moe-backend auto", 1)[1]


def test_nvfp4_fix_lists_only_backends_that_run():
    """Row 170's case: Gemma 4 (gelu_tanh) on SM 12.0 -- FlashInfer CUTLASS refuses the activation, TRT-LLM and CuteDSL
    the device; VLLM_CUTLASS (its log: "Using 'VLLM_CUTLASS' NvFp4 MoE backend") and Marlin run."""
    why = moe_backend_refusal("flashinfer_trtllm", "nvfp4", (12, 0), (0, 21), "gelu_tanh")
    assert why.endswith("use --moe-backend auto (vLLM picks cutlass here) or one of --moe-backend cutlass, marlin")
    why = moe_backend_refusal("cutlass", "nvfp4", (9, 0), (0, 21), "relu2_no_mul")
    assert why.endswith("use --moe-backend auto (vLLM picks marlin here) or --moe-backend marlin")


@pytest.mark.parametrize("backend, cc, act, w4a16, version", [
    ("cutlass", (12, 0), "gelu_tanh", False, (0, 21)),          # row 170 as run
    ("flashinfer_cutlass", (12, 0), "relu2_no_mul", False, NEW),  # row 166's auto pick, named
    ("flashinfer_cutlass", (10, 0), "silu", False, NEW),
    ("flashinfer_trtllm", (10, 3), "gelu_tanh", False, NEW),
    ("flashinfer_cutedsl", (10, 0), "silu", False, NEW),
    ("cutlass", (11, 0), "silu", False, NEW),
    ("marlin", (8, 0), "silu", True, NEW),                      # Marlin's own gate was not read: not refused
    ("emulation", (9, 0), "silu", False, NEW),
    ("auto", (8, 0), "silu", False, NEW),
    ("triton", None, "silu", False, NEW),                       # no capability: AMD, memory only -- not decided
    ("triton", (12, 0), "silu", False, (0, 15)),               # before vllm#33807 the flag did not exist
])
def test_nvfp4_not_refused(backend, cc, act, w4a16, version):
    assert moe_backend_refusal(backend, "nvfp4", cc, version, act, w4a16) is None


@pytest.mark.parametrize("cc", [(8, 0), (8, 9), (10, 0), (10, 3), (11, 0), (12, 0), (12, 1), (9, 0)])
@pytest.mark.parametrize("act", ["silu", "relu2_no_mul", "gelu_tanh"])
@pytest.mark.parametrize("w4a16", [False, True])
def test_auto_pick_passes_its_own_gate(cc, act, w4a16):
    """What ``nvfp4_moe_backend`` says vLLM's auto loop picks is, named explicitly, never refused: the auto loop and
    the explicit path call the same ``is_supported_config`` (oracle/nvfp4.py @01362014)."""
    auto = nvfp4_moe_backend(cc, NEW, act, w4a16)
    flag = {v: k for k, v in NVFP4_BACKEND_OF_FLAG.items()}[auto]
    assert moe_backend_refusal(flag, "nvfp4", cc, NEW, act, w4a16) is None


@pytest.mark.parametrize("cc, refused", [((8, 0), True), ((8, 9), True), ((12, 0), True), ((11, 0), True),
                                         ((9, 0), False), ((10, 0), False), ((10, 3), False)])
def test_mxfp4_triton_device_window(cc, refused):
    """gpt-oss (MXFP4 W4A16) with ``--moe-backend triton``: OAITritonExperts' ``_supports_current_device`` is
    ``_triton_kernel_moe_supports_current_device`` (gpt_oss_triton_kernels_moe.py: ``(9, 0) <= cap < (11, 0)`` on
    CUDA), so oracle/mxfp4.py @001eda31 ``_return_or_raise`` raises ``ValueError("Mxfp4 MoE backend 'TRITON' does
    not support the deployment configuration since kernel does not support current device.")``."""
    why = moe_backend_refusal("triton", "mxfp4", cc, NEW)
    assert (why is not None) == refused
    if refused:
        assert "ValueError: Mxfp4 MoE backend 'TRITON' does not support the deployment configuration since kernel " \
               "does not support current device" in why
        assert why.endswith("use --moe-backend auto (vLLM picks marlin here) or --moe-backend marlin")
    assert moe_backend_refusal("triton", "mxfp4", cc, (0, 18)) is None       # before the MXFP4 oracle (vllm#37128)
    assert moe_backend_refusal("marlin", "mxfp4", cc, NEW) is None


# --- the rows as logged: a runnable explicit backend is priced exactly as before ---------------------------------

def _vvl():
    sys.path.insert(0, str(ROOT / "scripts"))
    import validate_vllm_logs as vvl
    return vvl


@pytest.fixture(scope="module")
def rows():
    vvl = _vvl()
    return vvl, {r["row_id"]: r for r in vvl.load_rows()}


def _with(case, backend):
    return dataclasses.replace(case, matrix=dataclasses.replace(case.matrix, moe_backend=backend))


def test_row170_cutlass_still_priced_and_other_explicit_backends_refused(rows):
    """Row 170 (Gemma-4-26B-A4B NVFP4, RTX 5090, 0.20.2 run as 0.21, ``--moe-backend cutlass``; its log "Using
    'VLLM_CUTLASS' NvFp4 MoE backend"): priced as before -- 5.1062 GiB of KV (+11.49 % against the logged 4.58),
    17.894 GiB of weights, 318,586 tokens.  ``flashinfer_cutlass`` / ``flashinfer_trtllm`` on that card: refused
    (gelu_tanh activation / current device), no figures."""
    vvl, by_id = rows
    case = vvl.make_case(by_id["170"])
    assert case.matrix.moe_backend == "cutlass"
    got = vvl.compare(case, vvl.predict(case))
    assert got["kv_pred"] == pytest.approx(5.106246, abs=1e-6) and round(got["kv_err"], 2) == 11.49
    assert got["w_pred"] == pytest.approx(17.894259, abs=1e-6) and got["tok_pred"] == 318_586
    for backend, what in (("flashinfer_cutlass", "gelu_tanh activation"), ("flashinfer_trtllm", "current device")):
        p = vvl.predict(_with(case, backend))
        assert p["status"] == "invalid_layout" and f"kernel does not support {what}" in p["reason"]
        assert p["stage0_kv_cache_gib"] is None and p["kv_cache_tokens"] is None


def test_row166_explicit_auto_pick_equals_auto(rows):
    """Row 166 (Nemotron-Cascade-2-30B-A3B NVFP4, RTX 5090): ``--moe-backend flashinfer_cutlass`` -- what vLLM's auto
    picks there -- gives auto's figures (3.6258 GiB KV, -2.53 %; 18.527 GiB of weights, before the allocator's
    27.73 MiB of unsplit blocks at the row's 0.20.1, branch quantalloc / patchver: tests/test_vllm_logs_rows164.py
    by hand -- 3.5987 GiB KV, -3.26 %, 18.554 GiB); ``triton`` is refused by ``map_nvfp4_backend``."""
    vvl, by_id = rows
    case = vvl.make_case(by_id["166"])
    auto = vvl.compare(case, vvl.predict(case))
    named = vvl.compare(_with(case, "flashinfer_cutlass"), vvl.predict(_with(case, "flashinfer_cutlass")))
    assert (named["kv_pred"], named["w_pred"], named["tok_pred"]) == (auto["kv_pred"], auto["w_pred"],
                                                                      auto["tok_pred"])
    blocks = 27.73046875 / 1024
    assert auto["kv_pred"] == pytest.approx(3.625773 - blocks, abs=1e-6) and round(auto["kv_err"], 2) == -3.26
    assert auto["w_pred"] == pytest.approx(18.527464 + blocks, abs=1e-6)
    p = vvl.predict(_with(case, "triton"))
    assert p["status"] == "invalid_layout" and "moe_backend='triton' is not supported for NvFP4 MoE" in p["reason"]


# --- reportgen estimate: the structured option and a pasted vllm serve line ---------------------------------------

def _estimate(*args) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["estimate", *args, "--json", "--offline"]) == 0
    return json.loads(out.getvalue())


GEMMA4 = str(CONFIGS / "nvidia--Gemma-4-26B-A4B-NVFP4.json")
FLAGS = ["--max-model-len", "256000", "--max-num-seqs", "2", "--max-num-batched-tokens", "16384",
         "--kv-cache-dtype", "fp8_e4m3", "--gpu-memory-utilization", "0.85"]


def test_from_vllm_args_with_an_unrunnable_backend_is_refused():
    """A pasted ``vllm serve`` line whose ``--moe-backend flashinfer_trtllm`` vLLM refuses on an RTX 5090 (SM 12.0):
    the answer is vLLM's -- ``invalid_layout``, the exception quoted, the fix named -- the same as the structured
    option; a GPU given by its memory only (no capability) is not decided and keeps the pricing."""
    line = f"vllm serve {GEMMA4} {' '.join(FLAGS)} --moe-backend flashinfer_trtllm"
    got = _estimate("--gpu", "RTX 5090", "--from-vllm-args", line)
    assert got["status"] == "invalid_layout"
    assert "NvFp4 MoE backend 'FLASHINFER_TRTLLM' does not support the deployment configuration since kernel does " \
           "not support current device" in got["reason"]
    assert "use --moe-backend auto (vLLM picks cutlass here)" in got["reason"]
    assert "vLLM refuses --moe-backend flashinfer_trtllm" in got["moe_backend_note"]
    opt = _estimate("--gpu", "RTX 5090", GEMMA4, *FLAGS, "--moe-backend", "flashinfer_trtllm")
    assert (opt["status"], opt["reason"]) == (got["status"], got["reason"])
    mem = _estimate("--gpu-memory-gib", "31.84", "--from-vllm-args", line)
    assert mem["status"] != "invalid_layout" and mem["kv_cache_gib"] > 0


def test_estimate_gpt_oss_triton_on_a100_refused_on_h100_priced():
    """gpt-oss-20b (bundled) ``--moe-backend triton``: refused on an A100 (SM 8.0, outside the Triton MoE window);
    on an H100 it is what auto runs (TRITON, row 124's log at 0.19) -- the same figures as auto."""
    a100 = _estimate("openai/gpt-oss-20b", "--gpu", "A100", "--max-model-len", "8192", "--moe-backend", "triton")
    assert a100["status"] == "invalid_layout" and "Mxfp4 MoE backend 'TRITON'" in a100["reason"]
    tri = _estimate("openai/gpt-oss-20b", "--gpu", "H100", "--max-model-len", "8192", "--moe-backend", "triton")
    auto = _estimate("openai/gpt-oss-20b", "--gpu", "H100", "--max-model-len", "8192")
    assert tri["status"] == auto["status"] == "fits"
    assert (tri["weights_gib"], tri["kv_cache_gib"]) == (auto["weights_gib"], auto["kv_cache_gib"])
    # + the bf16 attention / embedding / lm_head blocks at the default release (branch quantalloc; by hand in
    # tests/test_alloc_unsplit_blocks.py::test_mxfp4_experts_not_priced_bf16_rest_is): 83.78125 MiB
    assert tri["weights_gib"] == pytest.approx(13.6343 + 83.78125 / 1024, abs=1e-4)


# --- the matrix: one decision per (model row, GPU), the mixed job = each GPU alone ---------------------------------

MIX = Matrix(tp=[1, 2], pp=[1], dp=[1], ep=[False], weight_dtype=["checkpoint", "fp8"], kv_cache_dtype=["fp8"],
             max_model_len=[8192], concurrency=[1], gpu_memory_utilization=[0.92], vllm_version="0.25.0",
             moe_backend="triton")
GPUS = ("H100", "nvidia_b200", "nvidia_rtx_pro_6000_blackwell", "A100")


def gpt_oss_20b() -> ModelEntry:
    from reportgen.arch import build_spec
    mid = "openai/gpt-oss-20b"
    return ModelEntry(mid, build_spec(_bundled(mid), mid), None, "bundled")


@pytest.fixture(scope="module")
def job():
    cat = load_catalog()
    ents, gpus = [gpt_oss_20b(), nemotron(), qwen3_8b()], [cat.get(g) for g in GPUS]
    return ents, gpus, evaluate_matrix(ents, gpus, MIX)


def test_job_refuses_per_gpu_and_equals_each_gpu_alone(job):
    """Job ``moe_backend: triton`` over H100, B200, RTX PRO 6000, A100: gpt-oss's as-shipped cells are refused on the
    RTX PRO 6000 and the A100 and priced on H100 / B200; Nemotron NVFP4's on every GPU (``map_nvfp4_backend``); its
    fp8 what-if rows and Qwen3-8B (no NVFP4 / MXFP4 experts) are not touched; every GPU's cells are its one-GPU
    job's, bit for bit."""
    ents, gpus, df = job
    ck = df.filter(pl.col("weights_as") == "checkpoint")
    oss = ck.filter(pl.col("model") == "openai/gpt-oss-20b")
    for g, refused in zip(GPUS, (False, False, True, True)):
        st = set(oss.filter(pl.col("gpu") == gpus[GPUS.index(g)].id)["status"])
        assert (st == {"invalid_layout"}) == refused, g
    nem = ck.filter(pl.col("model") == nemotron().model)
    assert set(nem["status"]) == {"invalid_layout"}
    assert nem["reason"].str.contains("moe_backend='triton' is not supported for NvFP4 MoE", literal=True).all()
    assert "invalid_layout" not in set(df.filter(pl.col("weights_as") == "fp8", pl.col("model") == nemotron().model)
                                       ["status"])
    assert "invalid_layout" not in set(df.filter(pl.col("model") == "Qwen/Qwen3-8B")["status"])
    assert_each_gpu_alone(ents, gpus, MIX, df)


def test_job_runnable_backend_prices_as_auto(job):
    """The same job under ``auto``: gpt-oss's H100 / B200 cells (TRITON / TRT-LLM under auto; ``triton`` named runs
    on both) are bit-identical to the ``triton`` job's, and Gemma 4 NVFP4 under ``cutlass`` on the RTX PRO 6000 (its
    auto pick) equals auto."""
    ents, gpus, df = job
    auto = evaluate_matrix(ents, gpus, dataclasses.replace(MIX, moe_backend="auto"))
    for g in gpus[:2]:
        pick = lambda d: d.filter(pl.col("gpu") == g.id, pl.col("model") == "openai/gpt-oss-20b")   # noqa: E731
        assert pick(df).select("weights_gib", "kv_cache_gib", "status").equals(
            pick(auto).select("weights_gib", "kv_cache_gib", "status"))
    cat = load_catalog()
    rtx = [cat.get("nvidia_rtx_pro_6000_blackwell")]
    g4 = [gemma4_moe()]
    a = evaluate_matrix(g4, rtx, dataclasses.replace(MIX, moe_backend="auto"))
    c = evaluate_matrix(g4, rtx, dataclasses.replace(MIX, moe_backend="cutlass"))
    assert a.select("weights_gib", "kv_cache_gib", "status").equals(c.select("weights_gib", "kv_cache_gib", "status"))
