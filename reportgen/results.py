"""The results table: one row per matrix cell, its columns, types and meanings.

This is the contract between the matrix (which fills it) and every output
(Parquet, CSV, XLSX, HTML, PDF, diff).  The CSV column order is this order and
is documented in the README; add columns at the end.  Memory columns are GiB
(2**30 bytes) per GPU on the worst rank.
"""

from __future__ import annotations

import polars as pl

# Cell statuses, best first (PRODUCT.md §3).
STATUSES = ("fits", "tight", "no_fit", "invalid_layout", "unsupported", "error")
TIGHT_HEADROOM_PCT = 10.0

# (name, dtype, meaning)
COLUMNS: list[tuple[str, pl.DataType, str]] = [
    ("model", pl.String, "model id as given in the job (hub id or local path)"),
    ("revision", pl.String, "revision asked for / resolved commit when known"),
    ("config_source", pl.String, "where the config came from: local, hub, cache, bundled, snapshot"),
    ("model_type", pl.String, "config model_type"),
    ("gpu", pl.String, "GPU SKU id from the catalog"),
    ("gpu_name", pl.String, "GPU name"),
    ("gpu_memory_gib", pl.Float64, "usable device memory (what CUDA reports to PyTorch/vLLM), GiB"),
    ("tp", pl.Int32, "tensor-parallel size"),
    ("pp", pl.Int32, "pipeline-parallel size"),
    ("dp", pl.Int32, "data-parallel size"),
    ("ep", pl.Boolean, "expert parallel enabled (--enable-expert-parallel)"),
    ("gpus", pl.Int32, "GPUs used = tp * pp * dp"),
    ("nodes", pl.Int32, "nodes used = ceil(gpus / gpus_per_node)"),
    ("weights_as", pl.String, "weight axis value: 'checkpoint' (as shipped, after vLLM's --dtype / "
                              "--quantization) or a what-if re-quantization (bf16, fp16, fp32, fp8, int8, int4)"),
    ("weight_scheme", pl.String, "storage scheme actually costed (e.g. bf16, fp8, awq-int4-g128)"),
    ("kv_cache_dtype", pl.String, "KV-cache dtype as asked (auto, bf16, fp8, ...)"),
    ("kv_cache_dtype_used", pl.String, "KV-cache dtype vLLM allocates: 'auto' resolved (model dtype, or the "
                                       "checkpoint's fp8 KV), fp8 on DSA models = fp8_ds_mla"),
    ("max_model_len", pl.Int64, "context length (vLLM --max-model-len)"),
    ("concurrency", pl.Int64, "target concurrent requests at max_model_len"),
    ("gpu_memory_utilization", pl.Float64, "vLLM --gpu-memory-utilization"),
    ("max_num_batched_tokens", pl.Int64, "vLLM --max-num-batched-tokens"),
    ("max_num_seqs", pl.Int64, "vLLM --max-num-seqs"),
    ("vllm_version", pl.String, "vLLM release priced (\"0.20\" = 0.20.0; its profile: manifest vllm_profile)"),
    ("status", pl.String, "fits | tight | no_fit | invalid_layout | unsupported | error"),
    ("reason", pl.String, "why (rule broken, what does not fit, unsupported feature); empty when fits"),
    ("weights_gib", pl.Float64, "weights on the worst rank"),
    ("activation_gib", pl.Float64, "activation peak (profile run) on the worst rank"),
    ("non_torch_gib", pl.Float64, "non-torch memory the profile run adds (NCCL buffers, cuBLAS; custom all-reduce is outside the budget)"),
    ("cuda_graph_gib", pl.Float64, "CUDA-graph memory"),
    ("kv_cache_gib", pl.Float64, "KV cache available per GPU (vLLM 'Available KV cache memory')"),
    ("kv_needed_gib", pl.Float64, "KV cache the target concurrency at max_model_len needs per GPU"),
    ("headroom_pct", pl.Float64, "(kv_cache - kv_needed) / (util * usable memory) * 100"),
    ("kv_cache_tokens", pl.Int64, "vLLM 'GPU KV cache size' in tokens: one DP replica (one engine: "
                                  "its TP x PP GPUs, the smallest PP stage), as vLLM logs it"),
    ("max_concurrency", pl.Float64, "requests of max_model_len that fit at once in one DP replica (vLLM's log)"),
    ("max_model_len_fit", pl.Int64, "largest max_model_len one request can have"),
    ("worst_rank", pl.String, "which rank is the tightest, e.g. 'pp0' or 'pp3/ep0'"),
    ("kv_bytes_per_token", pl.Float64, "KV bytes one token occupies on the worst rank's stage"),
    ("params_total", pl.Int64, "parameters loaded for serving"),
    ("params_active", pl.Int64, "parameters active per token (MoE)"),
    ("price_usd_hr", pl.Float64, "catalog price per GPU-hour times gpus, when known"),
    ("weights_source", pl.String, "config (bytes from config shapes + scheme) or safetensors (checkpoint headers)"),
    ("kv_cache_tokens_total", pl.Int64, "KV tokens of the whole deployment: kv_cache_tokens x dp (DP replicas "
                                        "hold separate caches; TP / PP ranks do not add)"),
    ("max_concurrency_total", pl.Float64, "max_concurrency x dp: requests of max_model_len the deployment holds"),
    ("state_bytes_per_seq", pl.Float64, "recurrent-state bytes one sequence holds on the worst rank's stage (hybrid "
                                        "state layers: pages padded to the attention page, x 2 under prefix "
                                        "caching's align mode); 0 without state layers"),
    ("block_size", pl.Int64, "attention block size in tokens vLLM uses (raised for hybrids so a page holds a state)"),
    ("concurrency_limited_by", pl.String, "what bounds max_concurrency: kv_tokens (a request's blocks are mostly KV "
                                          "tokens) | state_slots (mostly recurrent-state blocks, hybrids) | "
                                          "max_num_seqs (the scheduler cap binds first); null when no request fits or the cell "
                                          "is invalid / unsupported"),
    ("speculative", pl.String, "speculative decoding priced (vLLM --speculative-config): method, "
                               "num_speculative_tokens and the draft (MTP layers / draft model, or none for "
                               "ngram / suffix); null without speculative decoding"),
    ("draft_weights_gib", pl.Float64, "draft weights on the worst rank's (last) stage, GiB, included in "
                                      "weights_gib; null without speculative decoding, 0 for ngram / suffix"),
]


# columns renamed since earlier runs (old name -> new name): `render` / `diff` read old runs through this
RENAMED_COLUMNS = {"weight_dtype": "weights_as"}


def upgrade_legacy(df: pl.DataFrame) -> pl.DataFrame:
    """A results table written before a column rename, with today's names (nothing else changes)."""
    return df.rename({o: n for o, n in RENAMED_COLUMNS.items() if o in df.columns and n not in df.columns})

COLUMN_NAMES = [c[0] for c in COLUMNS]
SCHEMA = {name: dtype for name, dtype, _ in COLUMNS}

# errors.csv: one row per model (or cell) that could not be estimated.
ERROR_COLUMNS: list[tuple[str, pl.DataType, str]] = [
    ("model", pl.String, "model id as given"),
    ("revision", pl.String, "revision asked for"),
    ("kind", pl.String, "not_found | gated | network | invalid_id | malformed_config | unsupported_architecture | "
                        "unsupported_cells (some cells of a resolved model: reason and cell count) | error"),
    ("message", pl.String, "one line a user can act on"),
]
ERROR_SCHEMA = {name: dtype for name, dtype, _ in ERROR_COLUMNS}


def empty_results() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Cast and order a frame to the results schema (missing columns become nulls)."""
    if df.height == 0:
        return empty_results()
    exprs = [
        (pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype, _ in COLUMNS
    ]
    return df.select(exprs)
