"""vLLM's flag semantics in `reportgen estimate` and the job file (issue 10).

`--dtype` is vLLM's model / activation dtype and never re-types a pre-quantized checkpoint;
`--quantization fp8` quantizes an unquantized checkpoint at load; `--weights-as` is the what-if
re-quantization; `--enforce-eager` drops CUDA graphs; `--kv-cache-memory-bytes` fixes the KV bytes.
"""

import contextlib
import io
import json
from pathlib import Path

import pytest

from reportgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
AWQ = str(BUNDLED / "Qwen--Qwen3-32B-AWQ.json")
LLAMA = str(BUNDLED / "meta-llama--Llama-3.1-8B-Instruct.json")
GIB = float(1 << 30)


def estimate_json(*args) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["estimate", *args, "--json", "--offline"])
    return rc, json.loads(out.getvalue())


def test_dtype_float16_never_retypes_an_awq_checkpoint():
    """The bug this issue names: `--dtype float16` on an AWQ model priced it as fp16 weights."""
    _, shipped = estimate_json(AWQ, "--gpu", "H100")
    rc, fp16 = estimate_json(AWQ, "--gpu", "H100", "--dtype", "float16")
    assert rc == 0, fp16
    # the AWQ checkpoint's own dtype is float16, so --dtype float16 changes nothing at all
    assert fp16["weights_gib"] == pytest.approx(shipped["weights_gib"], rel=1e-9)
    assert fp16["weight_scheme"] == shipped["weight_scheme"] and fp16["weight_scheme"].startswith("awq")
    # 32.8 B parameters: 4-bit Linear weights + fp16 embeddings / lm_head is ~18 GiB, not 61 GiB at fp16
    assert 15 < fp16["weights_gib"] < 21
    _, whatif = estimate_json(AWQ, "--gpu", "H100", "--weights-as", "fp16")
    assert whatif["weights_gib"] > 3 * fp16["weights_gib"]          # the what-if is the unquantized model


def test_dtype_float32_casts_an_unquantized_checkpoint_and_its_kv():
    """vLLM loads an unquantized checkpoint in --dtype; `auto` KV follows it (Llama-3.1-8B in fp32:
    262,144 B/token in vLLM's log, 4 B x 2 x 8 heads x 128 x 32 layers)."""
    _, bf16 = estimate_json(LLAMA, "--gpu", "H100")
    _, fp32 = estimate_json(LLAMA, "--gpu", "H100", "--dtype", "float32")
    assert fp32["kv_bytes_per_token"] == 262_144 and bf16["kv_bytes_per_token"] == 131_072
    assert fp32["weights_gib"] == pytest.approx(2 * bf16["weights_gib"], rel=1e-9)
    assert fp32["engine"]["dtype"] == "fp32" and fp32["dtype"] == bf16["dtype"]   # `dtype` stays the config's


def test_online_fp8_quantizes_linear_weights_per_tensor():
    """--quantization fp8 on a bf16 checkpoint: each Linear weight 1 B + one fp32 scale; the rest bf16.
    Llama-3.1-8B: 6,979,321,856 Linear parameters in 224 tensors -> bf16 minus fp8 = 6,979,321,856 - 896
    bytes; vLLM 0.19 logged 14.99 GiB (bf16) and 8.49 GiB (fp8) for the two (tests/data/vllm_logs.csv rows
    102, 103)."""
    _, bf16 = estimate_json(LLAMA, "--gpu-memory-gib", "79.19")
    _, fp8 = estimate_json(LLAMA, "--gpu-memory-gib", "79.19", "--quantization", "fp8")
    assert fp8["weight_scheme"] == "fp8-tensor"
    linear = bf16["params_by_component"]["attention"] + bf16["params_by_component"]["dense_mlp"]
    assert linear == 6_979_321_856
    assert (bf16["weights_gib"] - fp8["weights_gib"]) * GIB == pytest.approx(linear - 224 * 4, abs=1)
    assert fp8["weights_gib"] == pytest.approx(8.49, abs=0.01)
    # the what-if fp8 is per channel: one fp32 per output row (4 B x (4096+1024+1024+4096+14336*2+4096) x 32)
    _, whatif = estimate_json(LLAMA, "--gpu-memory-gib", "79.19", "--weights-as", "fp8")
    rows = (4096 + 1024 + 1024 + 4096 + 2 * 14336 + 4096) * 32
    assert (whatif["weights_gib"] - fp8["weights_gib"]) * GIB == pytest.approx(4 * rows - 224 * 4, abs=1)


def test_online_experts_int8_quantizes_only_the_routed_experts():
    """vLLM ExpertsInt8Config: FusedMoE experts int8 + fp32 per-row scales (w13_scale (E, 2I), w2_scale
    (E, H)); Linear layers unquantized.  Qwen3-30B-A3B: 28,991,029,248 routed-expert parameters in 48
    layers x 128 experts, I = 768, H = 2048."""
    qwen = str(BUNDLED / "Qwen--Qwen3-30B-A3B.json")
    _, bf16 = estimate_json(qwen, "--gpu-memory-gib", "79.19")
    _, int8 = estimate_json(qwen, "--gpu-memory-gib", "79.19", "--quantization", "experts_int8")
    assert int8["weight_scheme"] == "experts-int8" and int8["status"] != "unsupported"
    routed = bf16["params_by_component"]["routed_experts"]
    assert routed == 28_991_029_248
    scales = 4 * (2 * 768 + 2048) * 128 * 48
    # the allocator blocks (weights.allocator_unsplit_bytes; branch load29, priced for quantized schemes since
    # branch quantalloc) are the same for both: embedding and lm_head 151,936 x 2,048 x 2 B = 593.5 MiB -> 594 each
    # (bf16 in both); the experts are 2 MiB multiples in both (bf16 128 x 1,536 x 2,048 x 2 = 768 MiB, int8 384 MiB)
    assert (bf16["weights_gib"] - int8["weights_gib"]) * GIB == pytest.approx(routed - scales, abs=1)
    # a dense model has no FusedMoE layer: nothing changes
    _, dense = estimate_json(LLAMA, "--gpu-memory-gib", "79.19")
    _, dense8 = estimate_json(LLAMA, "--gpu-memory-gib", "79.19", "--quantization", "experts_int8")
    assert dense8["weights_gib"] == dense["weights_gib"]


@pytest.mark.parametrize("method,needle", [
    ("bitsandbytes", "in flight to bitsandbytes 4-bit"),
    ("mxfp4", "loads MXFP4 checkpoints"),
    ("awq", "pre-quantized checkpoint's quantization_config"),
])
def test_other_online_methods_are_refused_with_the_reason(method, needle):
    _, r = estimate_json(LLAMA, "--gpu-memory-gib", "79.19", "--quantization", method)
    assert r["status"] == "unsupported" and needle in r["reason"] and "fp8, experts_int8" in r["reason"]


def test_quantization_must_match_a_quantized_checkpoint():
    fp8_ckpt = str(BUNDLED / "Qwen--Qwen3-32B-FP8.json")
    _, shipped = estimate_json(fp8_ckpt, "--gpu", "H100")
    _, same = estimate_json(fp8_ckpt, "--gpu", "H100", "--quantization", "fp8")
    assert same["weights_gib"] == shipped["weights_gib"] and same["status"] == shipped["status"]
    _, awq_kernel = estimate_json(AWQ, "--gpu", "H100", "--quantization", "awq_marlin")
    assert awq_kernel["status"] != "unsupported" and awq_kernel["weight_scheme"].startswith("awq")
    _, wrong = estimate_json(fp8_ckpt, "--gpu", "H100", "--quantization", "awq")
    assert wrong["status"] == "unsupported" and "does not match the checkpoint's quantization method" in wrong["reason"]


@pytest.mark.parametrize("args,needle", [
    (["--dtype", "fp8"], "--weights-as fp8"),
    (["--dtype", "int4"], "--weights-as int4"),
    (["--weights-as", "fp8", "--quantization", "fp8"], "cannot be combined"),
    (["--quantization", "nf5"], "not a vLLM quantization method"),
    (["--kv-cache-memory-bytes", "1.5G"], "decimals are not allowed"),
])
def test_bad_engine_options_are_usage_errors(args, needle, capsys):
    rc = main(["estimate", LLAMA, "--offline", *args])
    assert rc == 2 and needle in capsys.readouterr().err


def test_enforce_eager_drops_cuda_graphs_from_the_budget():
    _, graphs = estimate_json(LLAMA, "--gpu", "H100", "--vllm-version", "0.21")
    _, eager = estimate_json(LLAMA, "--gpu", "H100", "--vllm-version", "0.21", "--enforce-eager")
    assert graphs["cuda_graph_gib"] > 0.3 and eager["cuda_graph_gib"] == 0
    # v0.21+ subtracts the graph estimate (the profile's share of the captured graphs) from the KV
    # budget: eager gets exactly that share back
    from reportgen.estimate.profiles import budget_graph_factor, profile_for

    share = budget_graph_factor(profile_for("0.21")[0], is_moe=False, hybrid=False)
    assert 0 < share <= 1
    assert eager["kv_cache_gib"] - graphs["kv_cache_gib"] == pytest.approx(share * graphs["cuda_graph_gib"], abs=1e-9)


def test_kv_cache_memory_bytes_fixes_the_kv_and_ignores_utilization():
    """8 GiB of bf16 Llama-3.1-8B KV at TP 1: a 16-token block of 32 layers is 16 x 131,072 B = 2 MiB,
    so 4,096 blocks = 65,536 tokens, whatever --gpu-memory-utilization says."""
    runs = [estimate_json(LLAMA, "--gpu", "H100", "--kv-cache-memory-bytes", "8G", "--max-model-len", "8192",
                          "--gpu-memory-utilization", u)[1] for u in ("0.5", "0.95")]
    for r in runs:
        assert r["kv_cache_gib"] == 8.0 and r["kv_cache_tokens"] == 65_536 and r["status"] == "fits"
        assert r["max_concurrency"] == 8.0 and r["engine"]["kv_cache_memory_bytes"] == 8 << 30
    # 70 GiB of KV + 15 GiB of weights cannot fit an 80 GiB GPU: vLLM runs out of memory at start-up
    _, over = estimate_json(LLAMA, "--gpu", "H100", "--kv-cache-memory", "70G")
    assert over["status"] == "no_fit" and "kv_cache_memory_bytes" in over["reason"]


def test_job_takes_vllm_engine_arg_names():
    from reportgen.job import JobError, parse_job

    job = parse_job({"models": ["a/b"], "gpus": ["H100"], "matrix": {
        "tensor_parallel_size": [2, 4], "pipeline_parallel_size": 2, "data_parallel_size": [1, 2],
        "enable_expert_parallel": [True], "dtype": "half", "quantization": "fp8", "enforce_eager": True,
        "enable_prefix_caching": False, "kv_cache_memory_bytes": "8G", "block_size": 32,
        "max_num_seqs": 64, "max_num_batched_tokens": 4096, "kv_cache_dtype": "fp8"}})
    m = job.matrix
    assert (m.tp, m.pp, m.dp, m.ep) == ([2, 4], [2], [1, 2], [True])
    assert (m.dtype, m.quantization, m.enforce_eager, m.enable_prefix_caching) == ("fp16", "fp8", True, False)
    assert m.kv_cache_memory_bytes == 8 << 30 and m.block_size == 32 and m.weights_as == ["checkpoint"]
    old = parse_job({"models": ["a/b"], "gpus": ["H100"], "matrix": {"weight_dtype": ["bf16", "auto"]}})
    assert old.matrix.weights_as == ["bf16", "checkpoint"] == old.matrix.weight_dtype
    for matrix, field in [({"dtype": "int4"}, "matrix.dtype"), ({"enforce_eager": "yes"}, "matrix.enforce_eager"),
                          ({"tp": [2], "tensor_parallel_size": [4]}, "matrix.tensor_parallel_size"),
                          ({"kv_cache_memory_bytes": "lots"}, "matrix.kv_cache_memory_bytes"),
                          ({"weights_as": ["int4"], "quantization": "fp8"}, "matrix.quantization")]:
        with pytest.raises(JobError, match=field.replace(".", r"\.")):
            parse_job({"models": ["a/b"], "gpus": ["H100"], "matrix": matrix})


def test_matrix_applies_dtype_to_every_cell_without_retyping_awq():
    """The vectorised path: a job `dtype = "half"` on the AWQ checkpoint costs AWQ weights in every cell."""
    from reportgen.arch import build_spec
    from reportgen.job import Matrix
    from reportgen.matrix import GpuLike, ModelEntry, evaluate_matrix

    spec = build_spec(json.loads(Path(AWQ).read_text()), "Qwen/Qwen3-32B-AWQ")
    gpu = [GpuLike("h100", "H100", 79.19)]
    base = evaluate_matrix([ModelEntry("m", spec)], gpu, Matrix(tp=[1, 2], weights_as=["checkpoint", "bf16"]))
    half = evaluate_matrix([ModelEntry("m", spec)], gpu, Matrix(tp=[1, 2], weights_as=["checkpoint", "bf16"],
                                                                  dtype="fp16"))
    assert base["weights_gib"].to_list() == half["weights_gib"].to_list()
    shipped = half.filter(half["weights_as"] == "checkpoint")
    assert shipped["weight_scheme"].str.starts_with("awq").all()


# ------------------------------------------------------------ engine-wide vs per replica ---

def _spec(path):
    from reportgen.arch import build_spec

    return build_spec(json.loads(Path(path).read_text()), Path(path).stem.replace("--", "/"))


def test_dp_replicas_add_tokens_tp_and_pp_ranks_do_not():
    """kv_cache_tokens / max_concurrency are one DP replica's (vLLM logs them per DP engine);
    the *_total columns are dp x that.  A dense model's replica does not change with dp."""
    from reportgen.matrix import estimate_one

    spec = _spec(LLAMA)
    one = estimate_one(spec, 79.19, tp=2)
    four = estimate_one(spec, 79.19, tp=2, dp=4)
    assert four["gpus"] == 8
    assert four["kv_cache_tokens"] == one["kv_cache_tokens"] == one["kv_cache_tokens_total"]
    assert four["kv_cache_tokens_total"] == 4 * one["kv_cache_tokens"]
    assert four["max_concurrency_total"] == pytest.approx(4 * one["max_concurrency"])
    pp2 = estimate_one(spec, 79.19, tp=2, pp=2)
    assert pp2["kv_cache_tokens_total"] == pp2["kv_cache_tokens"]          # PP stages share one cache


def test_pp_reports_the_smallest_stage_as_vllm_does():
    """vLLM keeps min over workers of avail // bytes_per_block.  Llama-3.1-8B at PP 2: 16 layers a stage,
    a block is 16 tokens x 16 layers x 4,096 B = 1 MiB; the last stage also holds lm_head and (0.19, Model
    Runner V1) the sampler peak, so it is the smaller one and sets the tokens.  (On Model Runner V2 the
    sampler's 6 bytes per logit stay below the forward peak: the stages tie within the final norm.)"""
    from reportgen.job import Matrix
    from reportgen.matrix import GpuLike, ModelEntry, evaluate_matrix_lazy

    spec = _spec(LLAMA)
    row = evaluate_matrix_lazy([ModelEntry("m", spec)], [GpuLike("g", "g", 79.19)],
                               Matrix(pp=[2], max_model_len=[8192], vllm_version="0.19"),
                               stage0_columns=True).collect().row(0, named=True)
    assert row["worst_rank"] == "pp1"
    assert row["kv_cache_gib"] < row["stage0_kv_cache_gib"]
    assert row["kv_cache_tokens"] == int(row["kv_cache_gib"] * 1024) * 16
    assert int(row["stage0_kv_cache_gib"] * 1024) * 16 > row["kv_cache_tokens"]


def test_dp_attention_for_mla_multiplies_deployment_kv():
    """DeepSeek-V3 on 8 x B200: TP 8 replicates the whole MLA latent cache on every rank (one engine);
    DP 8 + EP gives each rank its own cache for its own requests but replicates the attention weights,
    so the deployment holds between 6x and 8x the tokens (vLLM issue #51454: 7.7x for the smaller
    DeepSeek-V4-Flash, 156.9x vs 20.43x max concurrency at 1M context)."""
    from reportgen.catalog import load_catalog
    from reportgen.matrix import estimate_one

    spec = _spec(BUNDLED / "deepseek-ai--DeepSeek-V3.json")
    b200 = load_catalog().get("B200")
    tp8 = estimate_one(spec, b200, tp=8, ep=True, max_model_len=131072)
    dp8 = estimate_one(spec, b200, dp=8, ep=True, max_model_len=131072)
    assert tp8["status"] == dp8["status"] == "fits"
    assert tp8["kv_cache_tokens_total"] == tp8["kv_cache_tokens"]
    assert dp8["weights_gib"] > tp8["weights_gib"] + 10       # attention, embeddings, dense layers whole per rank
    ratio = dp8["kv_cache_tokens_total"] / tp8["kv_cache_tokens_total"]
    assert 6 < ratio < 8
    assert dp8["max_concurrency_total"] / tp8["max_concurrency_total"] == pytest.approx(ratio, rel=0.01)


def test_job_reads_human_readable_lengths_like_vllm():
    from reportgen.job import JobError, parse_matrix

    m = parse_matrix({"max_model_len": ["32K", "8k", 4096], "max_num_batched_tokens": "16K"})
    assert m.max_model_len == [4096, 8000, 32768] and m.max_num_batched_tokens == 16384
    with pytest.raises(JobError, match=r"matrix\.max_model_len.*decimals"):
        parse_matrix({"max_model_len": "1.5K"})


# vLLM --moe-backend: KernelConfig.moe_backend, vllm/config/kernel.py @00634b8a (MoEBackend literal, normalised
# by value.lower().replace("-", "_"))
GEMMA4_NVFP4 = str(ROOT / "tests" / "data" / "configs_2026" / "nvidia--Gemma-4-26B-A4B-NVFP4.json")
GEMMA4_BF16 = str(ROOT / "tests" / "data" / "configs_2026" / "google--gemma-4-26B-A4B.json")


def test_moe_backend_values_are_vllms_and_bad_ones_are_usage_errors(capsys):
    from reportgen.vllm_args import MOE_BACKENDS, VllmArgsError, moe_backend

    assert moe_backend("CUTLASS") == "cutlass" and moe_backend("flashinfer-cutlass") == "flashinfer_cutlass"
    assert moe_backend(None) == "auto" and len(MOE_BACKENDS) == 11
    with pytest.raises(VllmArgsError, match="not a vLLM MoE backend"):
        moe_backend("cutlas")
    rc = main(["estimate", LLAMA, "--offline", "--moe-backend", "fast"])
    assert rc == 2 and "--moe-backend" in capsys.readouterr().err


def _gemma4(path, *extra):
    return estimate_json(path, "--gpu-memory-gib", "31.84", "--vllm-version", "0.21", "--max-model-len", "256000",
                         "--max-num-seqs", "2", "--max-num-batched-tokens", "16384", "--kv-cache-dtype", "fp8_e4m3",
                         "--gpu-memory-utilization", "0.85", *extra)[1]


def test_moe_backend_cutlass_prices_the_nvfp4_moe_step_only():
    """``--moe-backend cutlass`` on NVFP4 experts (Gemma-4-26B-A4B-NVFP4: K = h 2816, N 704, topk 8, a = 2,
    T 16,384): the step a T (4.088 K + 25 K) = 2.4998 GiB replaces the dense forward F = a T (1.591 x 4224 +
    4.088 x 2816) = 0.5564 GiB, and the workspaces a T (8 (2816 + 704) + 2816) = 0.9453 GiB replace
    0.768 x 8 x (2112 + 2816) a T = 0.9240 GiB: +1.9647 GiB of activation, as much KV less.  Other backends and
    the bf16 checkpoint (no NVFP4 experts) are unchanged."""
    auto = _gemma4(GEMMA4_NVFP4)
    cut = _gemma4(GEMMA4_NVFP4, "--moe-backend", "cutlass")
    t, a = 16384, 2
    step = a * t * (4.088 * 2816 + 25 * 2816) / GIB
    fwd = a * t * (1.591 * 4224 + 4.088 * 2816) / GIB
    ws_delta = a * t * ((8 * (2816 + 704) + 2816) - 0.768 * 8 * (2112 + 2816)) / GIB
    assert step == pytest.approx(2.4998, abs=1e-4) and fwd == pytest.approx(0.5564, abs=1e-4)
    assert cut["activation_gib"] - auto["activation_gib"] == pytest.approx(step - fwd + ws_delta, abs=2e-3)
    assert cut["activation_gib"] - auto["activation_gib"] == pytest.approx(1.965, abs=0.003)
    assert auto["kv_cache_gib"] - cut["kv_cache_gib"] == pytest.approx(1.965, abs=0.003)
    assert cut["engine"]["moe_backend"] == "cutlass" and auto["engine"]["moe_backend"] == "auto"
    for backend in ("auto", "triton", "flashinfer_cutlass", "marlin"):
        assert _gemma4(GEMMA4_NVFP4, "--moe-backend", backend)["activation_gib"] == auto["activation_gib"]
    bf16 = _gemma4(GEMMA4_BF16)
    assert _gemma4(GEMMA4_BF16, "--moe-backend", "cutlass")["activation_gib"] == bf16["activation_gib"]


def test_job_moe_backend_key():
    from reportgen.job import JobError, parse_job

    base = {"models": ["a/b"], "gpus": ["H100"]}
    job = parse_job({**base, "matrix": {"moe_backend": "CUTLASS"}})
    assert job.matrix.moe_backend == "cutlass"
    # vLLM's default leaves the inputs hash of a job that never named the key unchanged
    assert parse_job({**base, "matrix": {"moe_backend": "auto"}}).inputs_hash() == parse_job(base).inputs_hash()
    assert job.inputs_hash() != parse_job(base).inputs_hash()
    with pytest.raises(JobError, match=r"matrix\.moe_backend"):
        parse_job({**base, "matrix": {"moe_backend": "cutlas"}})


def test_moe_backend_note_says_what_is_modelled():
    cut = _gemma4(GEMMA4_NVFP4, "--moe-backend", "cutlass")
    assert any("CUTLASS MoE call" in n for n in cut["notes"])
    tri = _gemma4(GEMMA4_NVFP4, "--moe-backend", "triton")
    assert any("--moe-backend triton: accepted" in n for n in tri["notes"])
    assert not any("moe-backend" in n for n in _gemma4(GEMMA4_NVFP4).get("notes", []))
