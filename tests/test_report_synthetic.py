"""Synthetic but realistic results tables for the report tests and benchmarks.

Why synthetic: the renderers must be tested (and timed) independently of the
estimator other people are building, on data that looks like a real run —
all six statuses, missing prices, MoE and MLA models, a hostile model id —
and at any size (5 models for tests, 100 for the render benchmark, 1 million
rows for the XLSX benchmark).  Memory terms are computed with polars
expressions from a plausible model of vLLM's budget, so cells are internally
consistent (kv_cache = budget - weights - activation - non_torch - graphs;
headroom and status follow from them) and generation is fast at any size.

The helpers are imported by the other ``test_report*`` modules and by
``benchmarks/bench_render.py``; the tests at the bottom check the generator
itself conforms to the results contract.
"""

from __future__ import annotations

import math

import polars as pl

from reportgen import results

GIB = 2**30
HOSTILE_ID = "<script>alert(1)</script>"
FORMULA_ID = '=HYPERLINK("http://evil.example/","click")'

# id, model_type, params_total, params_active, kv_bytes_per_token (bf16, whole model),
# attention heads, kv heads, layers, unsupported reason
MODELS = [
    ("meta-llama/Llama-3.1-8B-Instruct", "llama", 8_030_261_248, 8_030_261_248, 131_072, 32, 8, 32, None),
    ("Qwen/Qwen3-30B-A3B", "qwen3_moe", 30_532_122_624, 3_340_000_000, 98_304, 32, 4, 48, None),
    ("meta-llama/Meta-Llama-3.1-70B", "llama", 70_553_706_496, 70_553_706_496, 327_680, 64, 8, 80, None),
    ("deepseek-ai/DeepSeek-V3", "deepseek_v3", 671_026_419_200, 37_000_000_000, 70_272, 128, 0, 61, None),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", "qwen3_next", 81_300_000_000, 3_000_000_000, 0, 16, 2, 48,
     "linear attention (Gated DeltaNet) layers are not modelled"),
    (HOSTILE_ID, "llama", 1_235_814_400, 1_235_814_400, 32_768, 32, 8, 16, None),
]

# id, name, usable GiB, $/GPU-hour (None = unknown), GPUs per node
GPUS = [
    ("h100-sxm", "H100 SXM 80GB", 79.19, 2.99, 8),
    ("a100-80gb", "A100 80GB SXM", 79.15, 1.79, 8),
    ("l40s", "L40S 48GB", 44.39, 0.99, 8),
    ("rtx4090", "RTX 4090 24GB", 23.64, None, 4),
]

DTYPE_BYTES = {"checkpoint": 2.0, "bf16": 2.0, "fp8": 1.0, "int4": 0.5625}


def _model_frame(n_models: int) -> pl.DataFrame:
    rows = []
    for i in range(n_models):
        base = MODELS[i % len(MODELS)]
        mid = base[0] if i < len(MODELS) else f"{base[0]}-variant-{i // len(MODELS)}"
        rows.append((mid, *base[1:]))
    return pl.DataFrame(
        rows, orient="row",
        schema=["model", "model_type", "params_total", "params_active", "kv_bpt",
                "n_heads", "n_kv", "layers", "unsupported"],
    ).with_row_index("model_idx")


def _gpu_frame(n_gpus: int) -> pl.DataFrame:
    rows = []
    for i in range(n_gpus):
        gid, name, mem, price, gpn = GPUS[i % len(GPUS)]
        if i >= len(GPUS):
            gid, name = f"{gid}-v{i // len(GPUS)}", f"{name} v{i // len(GPUS)}"
        rows.append((gid, name, mem, price, gpn))
    return pl.DataFrame(rows, orient="row",
                        schema=["gpu", "gpu_name", "gpu_memory_gib", "gpu_price", "gpus_per_node"])


def synthetic_results(
    n_models: int = len(MODELS),
    n_gpus: int = len(GPUS),
    tp: tuple[int, ...] = (1, 2, 4, 8),
    pp: tuple[int, ...] = (1, 2),
    weight_dtypes: tuple[str, ...] = ("checkpoint", "fp8"),
    contexts: tuple[int, ...] = (8192, 32768, 131072),
    concurrency: tuple[int, ...] = (16,),
) -> pl.DataFrame:
    """A results table conforming to ``results.SCHEMA`` with every status present.

    Rows = models x GPUs x tp x pp x weight dtypes x contexts x concurrency.
    """
    axes = [
        pl.DataFrame({"tp": list(tp)}, schema={"tp": pl.Int32}),
        pl.DataFrame({"pp": list(pp)}, schema={"pp": pl.Int32}),
        pl.DataFrame({"weights_as": list(weight_dtypes)}),
        pl.DataFrame({"max_model_len": list(contexts)}, schema={"max_model_len": pl.Int64}),
        pl.DataFrame({"concurrency": list(concurrency)}, schema={"concurrency": pl.Int64}),
    ]
    df = _model_frame(n_models).join(_gpu_frame(n_gpus), how="cross")
    for a in axes:
        df = df.join(a, how="cross")

    util = 0.92
    gpus = pl.col("tp") * pl.col("pp")
    is_mla = pl.col("n_kv") == 0
    bytes_w = pl.col("weights_as").replace_strict(DTYPE_BYTES, default=2.0)
    weights = pl.col("params_total") * bytes_w / gpus / GIB
    act = 0.6 + pl.col("max_model_len").log(2) * 0.02
    non_torch = pl.when(pl.col("tp") > 1).then(0.55).otherwise(0.12)
    graphs = 0.35 + pl.col("tp").cast(pl.Float64) * 0.02
    budget = pl.col("gpu_memory_gib") * util
    kv_avail = budget - pl.sum_horizontal("weights_gib", "activation_gib", "non_torch_gib", "cuda_graph_gib")
    kv_rank = pl.when(is_mla).then(pl.col("kv_bpt").cast(pl.Float64) / pl.col("pp")).otherwise(
        pl.col("kv_bpt").cast(pl.Float64) / pl.min_horizontal(pl.col("tp"), pl.col("n_kv")) / pl.col("pp"))

    invalid = (
        pl.when(pl.col("n_heads") % pl.col("tp") != 0)
        .then(pl.format("num_attention_heads ({}) % tp ({}) != 0", "n_heads", "tp"))
        .when(gpus > pl.col("gpus_per_node"))
        .then(pl.format("tp x pp x dp = {} GPUs exceeds 1 node x {} GPUs", gpus, "gpus_per_node"))
    )
    df = df.with_columns(
        gpus=gpus.cast(pl.Int32),
        dp=pl.lit(1, pl.Int32),
        ep=pl.lit(False),
        nodes=((gpus + pl.col("gpus_per_node") - 1) // pl.col("gpus_per_node")).cast(pl.Int32),
        weight_scheme=pl.when(pl.col("weights_as") == "checkpoint").then(pl.lit("bf16"))
        .otherwise(pl.col("weights_as")),
        kv_cache_dtype=pl.lit("auto"),
        gpu_memory_utilization=pl.lit(util),
        max_num_batched_tokens=pl.lit(8192, pl.Int64),
        max_num_seqs=pl.lit(1024, pl.Int64),
        vllm_version=pl.lit("0.21"),
        weights_gib=weights,
        activation_gib=act,
        non_torch_gib=non_torch,
        cuda_graph_gib=graphs,
        kv_bytes_per_token=kv_rank,
        invalid_reason=invalid,
        revision=pl.lit(None, pl.String),
        config_source=pl.lit("bundled"),
        worst_rank=pl.when(pl.col("pp") > 1).then(pl.format("pp{}", pl.col("pp") - 1)).otherwise(pl.lit("pp0")),
        price_usd_hr=pl.col("gpu_price") * gpus,
    ).with_columns(kv_cache_gib=kv_avail)
    df = df.with_columns(
        kv_needed_gib=pl.col("concurrency") * pl.col("max_model_len") * pl.col("kv_bytes_per_token") / GIB,
        kv_cache_tokens=pl.when((pl.col("kv_cache_gib") > 0) & (pl.col("kv_bytes_per_token") > 0))
        .then((pl.col("kv_cache_gib") * GIB / pl.col("kv_bytes_per_token") / 16).floor() * 16)
        .otherwise(0).cast(pl.Int64),
    ).with_columns(
        headroom_pct=(pl.col("kv_cache_gib") - pl.col("kv_needed_gib")) / budget * 100,
        max_concurrency=pl.col("kv_cache_tokens") / pl.col("max_model_len"),
        max_model_len_fit=pl.col("kv_cache_tokens"),
    )
    is_error = (pl.col("model_type") == "deepseek_v3") & (pl.col("weights_as") == "fp8") & (pl.col("gpu") == "l40s")
    status = (
        pl.when(pl.col("unsupported").is_not_null()).then(pl.lit("unsupported"))
        .when(pl.col("invalid_reason").is_not_null()).then(pl.lit("invalid_layout"))
        .when(is_error).then(pl.lit("error"))
        .when(pl.col("kv_cache_gib") <= 0).then(pl.lit("no_fit"))
        .when(pl.col("headroom_pct") < 0).then(pl.lit("no_fit"))
        .when(pl.col("headroom_pct") < results.TIGHT_HEADROOM_PCT).then(pl.lit("tight"))
        .otherwise(pl.lit("fits"))
    )
    reason = (
        pl.when(pl.col("status") == "unsupported").then(pl.col("unsupported"))
        .when(pl.col("status") == "invalid_layout").then(pl.col("invalid_reason"))
        .when(pl.col("status") == "error")
        .then(pl.lit("estimator error: fp8 what-if of an fp8 block-quantized checkpoint is undefined"))
        .when((pl.col("status") == "no_fit") & (pl.col("kv_cache_gib") <= 0))
        .then(pl.format("weights + activations exceed the budget by {} GiB", (-pl.col("kv_cache_gib")).round(1)))
        .when(pl.col("status") == "no_fit")
        .then(pl.format("KV cache {} GiB < {} GiB needed",
                        pl.col("kv_cache_gib").round(1), pl.col("kv_needed_gib").round(1)))
        .when(pl.col("status") == "tight").then(pl.lit("headroom below 10 %"))
        .otherwise(pl.lit(""))
    )
    df = df.with_columns(status=status).with_columns(reason=reason)
    blank = ["weights_gib", "activation_gib", "non_torch_gib", "cuda_graph_gib", "kv_cache_gib",
             "kv_needed_gib", "headroom_pct", "kv_cache_tokens", "max_concurrency", "max_model_len_fit"]
    df = df.with_columns(
        [pl.when(pl.col("status").is_in(["unsupported", "invalid_layout", "error"])).then(None)
         .otherwise(pl.col(c)).alias(c) for c in blank]
    ).with_columns(
        [pl.when(pl.col("status") == "no_fit").then(pl.max_horizontal(pl.col(c), 0)).otherwise(pl.col(c)).alias(c)
         for c in ("kv_cache_gib", "kv_cache_tokens", "max_concurrency", "max_model_len_fit")]
    )
    return results.conform(df)


def synthetic_errors() -> pl.DataFrame:
    return pl.DataFrame(
        [
            ("meta-llama/Llama-3.3-405B-Typo", None, "not_found", "no such repository on the hub and no local path"),
            ("meta-llama/Llama-Guard-4-12B", "main", "gated", "gated repository: set HF_TOKEN with access"),
            (FORMULA_ID, None, "malformed_config", "config.json: hidden_size is -1"),
        ],
        orient="row", schema=results.ERROR_SCHEMA,
    )


def synthetic_meta(res: pl.DataFrame) -> dict:
    """The ``meta`` dict the pipeline passes to the renderers, consistent with ``res``."""
    models = (
        res.group_by("model", maintain_order=True)
        .agg(pl.col("model_type", "params_total", "params_active", "config_source", "revision").first(),
             pl.col("kv_bytes_per_token").max(), pl.col("reason").filter(pl.col("status") == "unsupported").first())
    )
    by_id = {m[0]: m for m in MODELS}
    model_list = []
    for r in models.iter_rows(named=True):
        base = next((b for k, b in by_id.items() if r["model"].startswith(k)), None)
        model_list.append({
            "id": r["model"], "model_type": r["model_type"], "params_total": r["params_total"],
            "params_active": r["params_active"],
            "kv_bytes_per_token": base[4] if base else r["kv_bytes_per_token"],
            "config_source": r["config_source"], "revision": r["revision"],
            "unsupported_reason": r["reason"],
            "architecture": None if not base else (
                f"{base[7]} layers, {base[5]} attention heads, "
                + ("MLA (latent KV)" if base[6] == 0 else f"{base[6]} KV heads (GQA)")),
        })
    gpus = res.select("gpu", "gpu_name", "gpu_memory_gib").unique(maintain_order=True)
    gpn = {g[0]: g for g in GPUS}
    gpu_list = []
    for g in gpus.iter_rows(named=True):
        base = gpn.get(g["gpu"].split("-v")[0], GPUS[0])
        gpu_list.append({"id": g["gpu"], "name": g["gpu_name"], "usable_memory_gib": g["gpu_memory_gib"],
                         "price_usd_hr": base[3], "gpus_per_node": base[4]})
    return {
        "job_name": "weekly-fleet-fit",
        "run_started": "2026-11-26T02:00:00Z",
        "tool_version": "0.1.0",
        "catalog_version": "2026.11",
        "vllm_version": "0.21",
        "inputs_hash": "3f9a0c1d2e4b5a67",
        "assumptions": {
            "gpu_memory_utilization": 0.92, "max_num_batched_tokens": 8192, "max_num_seqs": 1024,
            "kv_cache_dtype": "auto", "block_size": 16, "max_nodes": 1,
        },
        "models": model_list,
        "gpus": gpu_list,
    }


# --- the generator's own checks -------------------------------------------------------------

def test_synthetic_conforms_and_covers_every_status():
    res = synthetic_results()
    assert res.schema == pl.Schema(results.SCHEMA)
    assert set(res["status"].unique()) == set(results.STATUSES)
    assert res.height == len(MODELS) * len(GPUS) * 8 * 2 * 3
    fits = res.filter(pl.col("status") == "fits")
    total = fits.select(pl.sum_horizontal("weights_gib", "activation_gib", "non_torch_gib",
                                          "cuda_graph_gib", "kv_cache_gib"))
    budget = fits["gpu_memory_gib"] * 0.92
    assert ((total.to_series() - budget).abs() < 1e-6).all()


def test_synthetic_scales():
    res = synthetic_results(n_models=12, n_gpus=6)
    assert res["model"].n_unique() == 12 and res["gpu"].n_unique() == 6
    assert math.isclose(res.height, 12 * 6 * 8 * 2 * 3)
