"""``matrix._GpuClasses``: terms evaluated once per (layout row, GPU class) and gathered are the terms
evaluated per GPU, bit for bit.

GPUs that differ only in memory, price, node size and name share a class (their scheduler limits and
capture sizes are equal), so ``_prepare`` evaluates ``gpu_pass``'s per-slot terms and blocks per request
on (layout row x class) rows (docs/decisions.md "Estimator speed", branch speed5).  A one-GPU matrix has
one class per GPU and nothing is shared: each GPU's rows of the many-GPU matrix must equal its one-GPU
matrix (float bits compared as integers, nulls, order).  Models: the small synthetic mix of
test_matrix plus bundled models whose terms exercise every branch (DeepSeek-V4's per-length terms,
a Gated-DeltaNet hybrid, gpt-oss's own capture size, MLA MoE, AWQ)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import polars as pl
import pytest

from reportgen.arch import build_spec
from reportgen.job import Matrix
from reportgen.matrix import GpuLike, ModelEntry, _GpuClasses, evaluate_matrix, gpu_table, iter_cell_batches
from test_matrix import models
from test_matrix_batches import assert_same_bits

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
PICK = ["deepseek-ai/DeepSeek-V4-Flash", "Qwen/Qwen3-Next-80B-A3B-Instruct", "openai/gpt-oss-20b",
        "deepseek-ai/DeepSeek-V2-Lite", "Qwen/Qwen3-32B-AWQ", "google/gemma-3-12b-it"]
# 8 GPUs, 3 classes at the default vLLM (0.31): >= 160 GiB (16384 batched tokens from 0.28: vllm 0.28.0 sdist
# engine/arg_utils.py:2582-2590, branch versionaudit), large >= 70 GiB, small; odd sizes and node sizes (nodes,
# price, load OOM differ)
GPUS = [GpuLike(f"g{i}", f"G {i}", mem, per_node, 1.0 + i) for i, (mem, per_node) in
        enumerate([(79.19, 8), (22.05, 8), (139.8, 4), (44.42, 8), (94.0, 2), (15.5, 8), (178.4, 8), (31.36, 4)])]
MX = Matrix(tp=[1, 2, 8], pp=[1, 2], dp=[1, 2], ep=[False, True], weight_dtype=["checkpoint", "fp8"],
            kv_cache_dtype=["auto", "fp8"], max_model_len=[4096, 131072], concurrency=[1, 64],
            gpu_memory_utilization=[0.9, 0.95])


def entries() -> list[ModelEntry]:
    out = list(models())
    for mid in PICK:
        p = BUNDLED / (mid.replace("/", "--") + ".json")
        out.append(ModelEntry(mid, build_spec(json.loads(p.read_text()), mid), None, "bundled"))
    return out


def test_gpus_share_classes():
    gc = _GpuClasses(pl.DataFrame({"x": [1, 2, 3]}), gpu_table(GPUS, MX))
    assert gc.classes.height == 3 and list(gc.cls_of_gpu) == [0, 1, 0, 1, 0, 1, 2, 1]
    assert list(gc.take[:8]) == [0, 1, 0, 1, 0, 1, 2, 1] and list(gc.take[8:10]) == [3, 4]
    # before 0.28 the 178 GiB card shares the large class (8192 / 1024)
    mx27 = copy.copy(MX)
    mx27.vllm_version = "0.27"
    old = _GpuClasses(pl.DataFrame({"x": [1, 2, 3]}), gpu_table(GPUS, mx27))
    assert old.classes.height == 2 and list(old.cls_of_gpu) == [0, 1, 0, 1, 0, 1, 0, 1]


def test_class_terms_equal_per_gpu_terms():
    ents = entries()
    whole = evaluate_matrix(ents, GPUS, MX)
    assert set(whole["status"]) >= {"fits", "no_fit", "invalid_layout"}
    for g in GPUS:
        one = evaluate_matrix(ents, [g], MX)
        assert one.height * len(GPUS) == whole.height
        assert_same_bits(whole.filter(pl.col("gpu") == g.id), one)
    # and the batches (DeepSeek-V4 in a run of its own) are the frame
    assert_same_bits(pl.concat(list(iter_cell_batches(ents, GPUS, MX, batch_cells=3_001))), whole)


# one utilization: a one-GPU job's ``_budget`` (util x GPU memory) is then a product of two one-row frames,
# a column polars holds as one repeated value -- and divides by with a reciprocal multiply unless
# ``_prepare`` makes it a full column (docs/decisions.md "headroom_pct bit for bit", branch headroombits)
MX1 = Matrix(tp=[1, 2, 4], pp=[1, 2], dp=[1], ep=[False, True], weight_dtype=["checkpoint", "fp8"],
             kv_cache_dtype=["fp8"], max_model_len=[8192, 131072], concurrency=[1, 32],
             gpu_memory_utilization=[0.92], vllm_version="0.25.0")


@pytest.mark.parametrize("kv_bytes", [None, 12 * 2**30])
def test_one_gpu_headroom_is_the_mixed_jobs_to_the_bit(kv_bytes):
    """Each GPU alone and the same GPU in a 3-GPU job: headroom_pct equal with ``==`` (no tolerance) and
    equal to (kv_cache - kv_needed) / (util x memory) * 100 divided element-wise in numpy (before the fix
    Qwen3-8B's one-GPU H100 cells were x * (1/b): 15 of 96 differed in the last bit, e.g. 64.98657757956447
    vs 64.98657757956445); every other column bit for bit too."""
    mx = copy.copy(MX1)
    mx.kv_cache_memory_bytes = kv_bytes
    ents = [e for e in entries() if e.model in ("Qwen/Qwen3-32B-AWQ", "google/gemma-3-12b-it")]
    p = BUNDLED / "Qwen--Qwen3-8B.json"
    ents.append(ModelEntry("Qwen/Qwen3-8B", build_spec(json.loads(p.read_text()), "Qwen/Qwen3-8B"), None, "bundled"))
    gpus = [GpuLike("h", "H", 79.19, 8, 2.0), GpuLike("b", "B", 178.4, 8, 5.0), GpuLike("r", "R", 94.5, 4, 1.5)]
    whole = evaluate_matrix(ents, gpus, mx)
    fit = whole.filter(pl.col("headroom_pct").is_not_null())
    assert fit.height > 100
    if kv_bytes is None:
        want = ((fit["kv_cache_gib"].to_numpy() - fit["kv_needed_gib"].to_numpy())
                / (fit["gpu_memory_utilization"].to_numpy() * fit["gpu_memory_gib"].to_numpy()) * 100)
        assert (fit["headroom_pct"].to_numpy() == want).all()
    for g in gpus:
        one = evaluate_matrix(ents, [g], mx)
        got = whole.filter(pl.col("gpu") == g.id)
        a, b = got["headroom_pct"], one["headroom_pct"]
        assert a.is_null().equals(b.is_null())
        assert (a.drop_nulls() == b.drop_nulls()).all(), g.id
        assert_same_bits(got, one)


@pytest.mark.parametrize("mid", ["Qwen/Qwen3-8B", "google/gemma-3-12b-it", "deepseek-ai/DeepSeek-V4-Flash"])
def test_one_layout_one_gpu_headroom_is_the_mixed_jobs_to_the_bit(mid):
    """One layout row: a one-GPU job's cells gather ``_budget`` from a single (layout, GPU, util) row, which
    polars also holds as one repeated value (before the fix gemma-3-12b's 131072-token, 16-request cell on
    the 178.4 GiB GPU was 28.901472195530037 alone, 28.901472195530033 in the 3-GPU job)."""
    mx = Matrix(tp=[1], pp=[1], dp=[1], ep=[False], weight_dtype=["checkpoint"], kv_cache_dtype=["fp8"],
                max_model_len=[8192, 131072], concurrency=[1, 16], gpu_memory_utilization=[0.9])
    p = BUNDLED / (mid.replace("/", "--") + ".json")
    ents = [ModelEntry(mid, build_spec(json.loads(p.read_text()), mid), None, "bundled")]
    gpus = [GpuLike("h", "H", 79.19, 8, 2.0), GpuLike("b", "B", 178.4, 8, 5.0), GpuLike("r", "R", 94.5, 4, 1.5)]
    whole = evaluate_matrix(ents, gpus, mx)
    assert whole["headroom_pct"].drop_nulls().len() >= 4
    for g in gpus:
        one = evaluate_matrix(ents, [g], mx)
        got = whole.filter(pl.col("gpu") == g.id)
        assert (got["headroom_pct"].drop_nulls() == one["headroom_pct"].drop_nulls()).all(), g.id
        assert_same_bits(got, one)
