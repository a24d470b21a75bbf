#!/usr/bin/env python
"""Bit-identity check of the estimator output against a reference dump (for speed work).

``dump DIR`` (run on the reference commit) writes, as Parquet:
- ``bench_batches.parquet``: ``iter_cell_batches`` on bench_matrix.py's job (7.5 M cells), concatenated;
- ``bench_stage0.parquet``: the same job's first 4 models through ``evaluate_matrix_lazy(stage0_columns=True)``;
- ``default_frame.parquet``: ``evaluate_matrix`` on the bundled default job (model_lists/default.toml);
- ``default_batches.parquet``: ``iter_cell_batches`` on it with odd batch / chunk sizes.
``compare DIR`` (run on the changed commit) evaluates the same and compares schema, row order, nulls
and float bits (as integers) column by column.  Not a timed test; run by hand.

Usage: PYTHONPATH=$PWD HF_HUB_OFFLINE=1 python benchmarks/check_matrix_identical.py dump|compare DIR
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reportgen.matrix import evaluate_matrix, evaluate_matrix_lazy, iter_cell_batches  # noqa: E402


def _bench():
    spec = importlib.util.spec_from_file_location("bench_matrix", ROOT / "benchmarks" / "bench_matrix.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def frames():
    from reportgen.job import load_job
    from reportgen.models import load_models
    from reportgen.run import prepare

    b = _bench()
    models, gs, mx = b.bundled_models(), b.gpus(25), b.matrix(2)
    yield "bench_batches", lambda: pl.concat(list(iter_cell_batches(models, gs, mx)), how="vertical")
    yield "bench_stage0", lambda: evaluate_matrix_lazy(models[:4], gs, mx, stage0_columns=True).collect()
    job = load_job(ROOT / "model_lists" / "default.toml")
    prepared = prepare(job)
    entries = [o.entry for o in load_models(job.models, quiet=True, offline=True) if o.entry is not None]
    yield "default_frame", lambda: evaluate_matrix(entries, prepared.gpus, job.matrix)
    yield "default_batches", lambda: pl.concat(list(iter_cell_batches(entries, prepared.gpus, job.matrix,
                                                                      batch_cells=4_099, prep_cells=50_000)))


def same_bits(got: pl.DataFrame, want: pl.DataFrame) -> list[str]:
    if got.schema != want.schema:
        return [f"schema {got.schema} != {want.schema}"]
    if got.height != want.height:
        return [f"height {got.height} != {want.height}"]
    bad = []
    for name in want.columns:
        a, b = got[name], want[name]
        if not a.is_null().equals(b.is_null()):
            bad.append(f"{name}: nulls")
        elif b.dtype.is_float():
            x, y = a.fill_null(0).to_numpy(), b.fill_null(0).to_numpy()
            bits = np.uint64 if x.dtype == np.float64 else np.uint32
            if not np.array_equal(x.view(bits), y.view(bits)):
                bad.append(f"{name}: float bits")
        elif not a.equals(b, null_equal=True):
            bad.append(f"{name}: values")
    return bad


def main(argv: list[str]) -> int:
    mode, out = argv[0], Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name, make in frames():
        df = make()
        path = out / f"{name}.parquet"
        if mode == "dump":
            df.write_parquet(path, compression="lz4")
            print(f"{name}: {df.height:,} rows x {df.width} -> {path}")
        else:
            bad = same_bits(df, pl.read_parquet(path))
            failed += bool(bad)
            print(f"{name}: {df.height:,} rows x {df.width}: {'IDENTICAL' if not bad else 'DIFFERENT ' + '; '.join(bad)}")
        del df
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
