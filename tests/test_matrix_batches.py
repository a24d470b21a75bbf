"""``iter_cell_batches``: the matrix delivered in bounded batches is the materialised matrix, bit for bit.

The batches are evaluated per run of (layout, GPU, utilization) rows instead of in one cross join
(docs/decisions.md "Estimator speed"); concatenated they must give exactly ``evaluate_matrix``:
the same columns and types, the same float bits (compared as integers, so -0.0 / NaN payloads
count), the same nulls, in the same order.  Checked on the benchmark's mix (every bundled model,
hybrids and flagships, the benchmark's axes, its ten distinct GPU sizes) and on the bundled default
job, with batch and chunk sizes that do not line up with any axis.  Not a timed test.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from reportgen.job import Matrix
from reportgen.matrix import (evaluate_matrix, evaluate_matrix_lazy, iter_cell_batches,
                              iter_matrix_batches)
from reportgen.results import COLUMN_NAMES
from test_matrix import GPUS, MATRIX, models

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_matrix", ROOT / "benchmarks" / "bench_matrix.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def assert_same_bits(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.schema == want.schema and got.height == want.height
    for name in want.columns:
        a, b = got[name], want[name]
        assert a.is_null().equals(b.is_null()), name
        if b.dtype.is_float():
            x, y = a.fill_null(0).to_numpy(), b.fill_null(0).to_numpy()
            bits = np.uint64 if x.dtype == np.float64 else np.uint32
            assert np.array_equal(x.view(bits), y.view(bits)), name
        else:
            assert a.equals(b, null_equal=True), name


def check_batches(entries, gpus, mx, batch_cells, prep_cells=None, stage0=False) -> int:
    """Every batch against the same rows of the whole matrix; returns the number of batches."""
    gpus = list(gpus)
    if stage0:
        whole = evaluate_matrix_lazy(entries, gpus, mx, stage0_columns=True).collect()
    else:
        whole = evaluate_matrix(entries, gpus, mx)
    kw = {} if prep_cells is None else {"prep_cells": prep_cells}
    per_row = len(mx.max_model_len) * len(mx.concurrency)
    at, n = 0, 0
    for batch in iter_cell_batches(entries, gpus, mx, batch_cells=batch_cells, stage0_columns=stage0, **kw):
        assert 0 < batch.height <= max(batch_cells, per_row)
        assert_same_bits(batch, whole.slice(at, batch.height))
        at, n = at + batch.height, n + 1
    assert at == whole.height
    return n


@pytest.fixture(scope="module")
def bench():
    mod = _bench()
    entries = mod.bundled_models()          # parsed once for the module
    mod.bundled_models = lambda: list(entries)
    return mod


def test_benchmark_mix_in_default_batches_is_the_materialised_matrix(bench):
    entries = bench.bundled_models()
    assert any(any(l.state is not None for l in m.spec.layers_kv) for m in entries)      # hybrids
    assert any(m.model in bench.FLAGSHIPS for m in entries)
    gpus = bench.gpus(10)                      # every distinct memory size of the benchmark's 25
    mx = bench.matrix(2)
    n = check_batches(entries, gpus, mx, batch_cells=262_144)
    # one partly filled last batch per run of models (DeepSeek-V4 runs apart: matrix._kind_runs)
    from reportgen.matrix import _kind_runs
    runs = _kind_runs(entries, max(1, 8_000_000 // (mx.n_cells_per_model_gpu() * 10)))
    assert len(runs) >= 2
    assert n == sum(-(-mx.n_cells_per_model_gpu() * len(r) * 10 // 262_144) for r in runs)


def test_benchmark_mix_with_odd_batch_and_chunk_sizes(bench):
    entries = bench.bundled_models()
    pick = [m for m in entries if m.model in bench.FLAGSHIPS or m.model.startswith("Qwen/Qwen3.5")][:4]
    pick += entries[::9]
    mx = bench.matrix(2)
    # 9,991 cells: 624 rows of 16 cells a batch, so batches end mid-GPU and mid-layout; model chunks
    # of <= 40,000 cells: a new _prepare every two models (18,432 cells each on 3 GPUs)
    assert check_batches(pick, bench.gpus(3), mx, batch_cells=9_991, prep_cells=40_000) >= 15
    # one model bigger than a chunk: a chunk of its own (never split by GPU: the order would change)
    assert check_batches(pick[:2], bench.gpus(3), mx, batch_cells=1_000, prep_cells=1_000) >= 36


def test_default_job_in_batches_is_the_materialised_matrix():
    from reportgen.job import load_job
    from reportgen.models import load_models
    from reportgen.run import prepare

    job = load_job(ROOT / "model_lists" / "default.toml")
    prepared = prepare(job)
    entries = [o.entry for o in load_models(job.models, quiet=True, offline=True) if o.entry is not None]
    assert len(entries) == len(job.models)
    check_batches(entries, prepared.gpus, job.matrix, batch_cells=262_144)
    check_batches(entries, prepared.gpus, job.matrix, batch_cells=4_099, prep_cells=50_000)


@pytest.mark.parametrize("change", [
    {},
    {"kv_cache_memory_bytes": 20 * 2**30},           # fixed KV size: the lens pass's other branch
    {"enforce_eager": True, "max_model_len": [4096, 32768, 10**7]},    # above every max_pos
    {"concurrency": [1], "max_model_len": [8192]},   # one cell per row
])
def test_small_matrices_and_stage0_columns(change):
    mx = Matrix(**{**{f: getattr(MATRIX, f) for f in ("tp", "pp", "dp", "ep", "weights_as", "kv_cache_dtype",
                                                          "max_model_len", "concurrency", "gpu_memory_utilization",
                                                          "vllm_version")}, **change})
    check_batches(models(), GPUS, mx, batch_cells=397)
    check_batches(models(), GPUS, mx, batch_cells=500, prep_cells=200, stage0=True)


def test_empty_matrix_gives_no_batch_and_parts_keep_the_columns():
    assert list(iter_cell_batches(models(), GPUS, Matrix(concurrency=[]))) == []
    assert list(iter_cell_batches([], GPUS, MATRIX)) == []
    (one,) = list(iter_matrix_batches(models()[:1], GPUS, MATRIX))
    assert one.columns == COLUMN_NAMES
    assert_same_bits(pl.concat(list(iter_cell_batches(models()[:1], GPUS, MATRIX, batch_cells=10))), one)
