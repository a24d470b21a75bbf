"""The matrix: cross product shape, results schema, lazy == eager, unsupported rows, estimate_one."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from reportgen.catalog import GpuSku
from reportgen.job import Matrix
from reportgen.matrix import ModelEntry, estimate_one, evaluate_matrix, evaluate_matrix_lazy, iter_matrix_batches
from reportgen.results import COLUMN_NAMES, SCHEMA
from test_estimate_specs import dense_spec, mla_spec, moe_spec


def sku(id_, mem, price=None, per_node=8):
    """A GpuSku with only the fields the matrix reads set (the rest None / empty)."""
    given = dict(id=id_, name=id_.upper(), usable_memory_gib=mem, gpus_per_node=per_node, price_usd_hr=price,
                 aliases=())
    return GpuSku(**{f.name: given.get(f.name) for f in dataclasses.fields(GpuSku)})


GPUS = [sku("h100", 79.19, 2.5), sku("l40s", 44.42, 1.0)]


def models():
    bad = dense_spec()
    bad.unsupported_reason = "linear attention is not modelled"
    return [ModelEntry("meta-llama/Llama-3.1-8B", dense_spec(), "main", "bundled"),
            ModelEntry("moe/small", moe_spec(), None, "local"),
            ModelEntry("deepseek/mla", mla_spec(), None, "hub"),
            ModelEntry("x/unsupported", bad, None, "bundled")]


MATRIX = Matrix(tp=[1, 2, 3], pp=[1, 2], dp=[1, 2], ep=[False, True], weight_dtype=["checkpoint", "fp8"],
                kv_cache_dtype=["auto", "fp8"], max_model_len=[4096, 32768], concurrency=[1, 16],
                gpu_memory_utilization=[0.9, 0.95], vllm_version="0.21")


def test_cross_product_and_schema():
    df = evaluate_matrix(models(), GPUS, MATRIX)
    assert df.height == 4 * len(GPUS) * MATRIX.n_cells_per_model_gpu()
    assert df.columns == COLUMN_NAMES
    assert dict(df.schema) == SCHEMA
    assert set(df["status"].unique()) <= {"fits", "tight", "no_fit", "invalid_layout", "unsupported"}
    un = df.filter(pl.col("model") == "x/unsupported")
    assert un.height == len(GPUS) * MATRIX.n_cells_per_model_gpu() and set(un["status"]) == {"unsupported"}
    llama = df.filter(pl.col("model") == "meta-llama/Llama-3.1-8B")
    assert set(llama.filter(pl.col("tp") == 3)["status"]) == {"invalid_layout"}
    assert set(llama.filter(pl.col("ep") & (pl.col("tp") < 3))["reason"]) == {"expert parallel needs a MoE model"}
    assert llama["revision"][0] == "main" and llama["config_source"][0] == "bundled"


def test_lazy_equals_eager_and_prices():
    eager = evaluate_matrix(models()[:1], GPUS, MATRIX)
    lazy = evaluate_matrix_lazy(models()[:1], GPUS, MATRIX).collect()
    assert eager.equals(lazy)
    row = eager.filter((pl.col("gpu") == "h100") & (pl.col("tp") == 2) & (pl.col("pp") == 2)
                       & (pl.col("dp") == 2)).row(0, named=True)
    assert row["gpus"] == 8 and row["nodes"] == 1 and row["price_usd_hr"] == pytest.approx(20.0)


def test_each_cell_matches_estimate_one():
    df = evaluate_matrix(models()[:3], GPUS, MATRIX)
    pick = df.filter(pl.col("status").is_in(["fits", "tight", "no_fit"])).sample(20, seed=1)
    specs = {e.model: e.spec for e in models()}
    gpus = {g.id: g for g in GPUS}
    for r in pick.iter_rows(named=True):
        one = estimate_one(specs[r["model"]], gpus[r["gpu"]], model=r["model"], tp=r["tp"], pp=r["pp"],
                           dp=r["dp"], ep=r["ep"], weight_dtype=r["weights_as"],
                           kv_cache_dtype=r["kv_cache_dtype"], max_model_len=r["max_model_len"],
                           concurrency=r["concurrency"], gpu_memory_utilization=r["gpu_memory_utilization"],
                           vllm_version="0.21")
        for k in ("status", "weights_gib", "kv_cache_gib", "kv_cache_tokens", "max_model_len_fit", "worst_rank"):
            assert one[k] == r[k], k


def test_mla_tokens_do_not_grow_with_tp_but_weights_shrink():
    df = evaluate_matrix(models()[2:3], GPUS[:1], Matrix(tp=[1, 2], max_model_len=[8192],
                                                        gpu_memory_utilization=[0.95], vllm_version="0.19"))
    a, b = df.sort("tp").iter_rows(named=True)
    assert a["kv_bytes_per_token"] == b["kv_bytes_per_token"] == 27 * 576 * 2
    assert b["weights_gib"] < a["weights_gib"]


def test_estimate_one_json_fields_and_memory_override():
    r = estimate_one(dense_spec(), 80.0, model="m", max_model_len=8192)
    for k in ("weights_gib", "activation_gib", "non_torch_gib", "cuda_graph_gib", "kv_cache_gib",
              "kv_cache_tokens", "max_concurrency", "max_model_len_fit", "worst_rank", "gpus", "status", "reason"):
        assert k in r
    from reportgen.job import DEFAULT_VLLM_VERSION
    assert r["gpu_memory_gib"] == 80.0 and r["vllm_version"] == DEFAULT_VLLM_VERSION


def test_empty_axes_give_empty_frame():
    df = evaluate_matrix(models()[:1], GPUS, Matrix(concurrency=[]))
    assert df.height == 0 and df.columns == COLUMN_NAMES


def test_batches_and_chunked_lazy_cover_the_same_cells():
    whole = evaluate_matrix(models(), GPUS, MATRIX)
    per = 2 * MATRIX.n_cells_per_model_gpu()            # one model on both GPUs
    parts = list(iter_matrix_batches(models(), GPUS, MATRIX, batch_cells=per))
    assert [p.height for p in parts] == [per] * 4
    assert pl.concat(parts).equals(whole)
    by_gpu = list(iter_matrix_batches(models()[:1], GPUS, MATRIX, batch_cells=per // 2))
    assert len(by_gpu) == 2 and set(by_gpu[0]["gpu"]) == {"h100"}
    lazy = evaluate_matrix_lazy(models(), GPUS, MATRIX, batch_cells=per).collect()
    assert lazy.equals(whole)


def test_one_layout_over_many_bundled_models_and_gpus():
    """Regression: a one-layout job over 10 bundled models x 6 GPUs panicked in polars 2.1
    ("assertion failed: i < self.len()") when gpu_pass's reasons were formatted on the flagged rows
    (their columns' chunks did not line up after the filter)."""
    import json
    from pathlib import Path

    from reportgen.arch import build_spec

    bundled = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
    paths = [p for p in sorted(bundled.glob("*.json")) if not p.name.endswith(".hf_quant_config.json")][::5][:10]
    entries = [ModelEntry(p.stem.replace("--", "/"), build_spec(json.loads(p.read_text()), p.stem.replace("--", "/")))
               for p in paths]
    gpus = [sku(f"g{i}", m) for i, m in enumerate((79.19, 139.8, 44.42, 39.38, 22.05, 94.0))]
    mx = Matrix(tp=[1], pp=[1], dp=[1], ep=[False], weight_dtype=["checkpoint"], kv_cache_dtype=["auto"],
                max_model_len=[8192], concurrency=[4], gpu_memory_utilization=[0.9])
    df = evaluate_matrix(entries, gpus, mx)
    assert df.height == len(entries) * len(gpus) == 60
    # a model too big for one GPU is refused with the loading reason, per GPU, with its numbers
    big = df.filter(pl.col("reason").str.starts_with("out of memory while loading weights"))
    assert big.height > 0 and (big["weights_gib"] + 0.5 > big["gpu_memory_gib"]).all()
