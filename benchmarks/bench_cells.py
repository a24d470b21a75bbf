#!/usr/bin/env python
"""Where the cells' time goes: the cell frames of bench_matrix.py's job with String vs Categorical columns.

Why: the cells (``matrix._cell_frame``) copy ~45 columns into 7.5 M rows; the copy is bound by the
bytes written (a String view is 16 B a value, a Categorical code 4 B).  This measures, on the
chunks ``_prepare`` made once (not timed), alternating in one process:

- ``string``: ``_cell_frame`` over every batch, as shipped;
- ``categorical``: the same with the carried String columns, the per-length String column and the
  status / reason tables already Categorical, and the String outputs left Categorical (what the cells
  would cost if the strings arrived dictionary-encoded); the one-off cast of those inputs is timed apart;
- ``parquet``: writing one 1,048,576-cell part (``run.STREAM_PART_CELLS``, zstd as ``outputs.tables``)
  with String columns, with Categorical ones, and with String cast to Categorical at the writer.

CPU time (``time.process_time``, both cores).  Not a timed test; run by hand:
PYTHONPATH=$PWD HF_HUB_OFFLINE=1 python benchmarks/bench_cells.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reportgen import matrix as M  # noqa: E402
from reportgen.matrix import cells as C  # noqa: E402  (_cell_frame looks _conform_exprs up there)
from reportgen.results import COLUMNS  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from check_matrix_identical import _bench  # noqa: E402  (bench_matrix.py's job)


def _cat(x):
    return x.with_columns(pl.col(pl.String).cast(pl.Categorical)) if isinstance(x, pl.DataFrame) else \
        (x.cast(pl.Categorical) if x.dtype == pl.String else x)


def categorical_rows(r):
    """``r`` with its String inputs of the cells Categorical."""
    return dataclasses.replace(r, cu=_cat(r.cu), per_len=_cat(r.per_len), reasons=tuple(_cat(s) for s in r.reasons),
                               const={c: _cat(v) for c, v in r.const.items()})


def run_cells(rows, categorical: bool) -> int:
    conform = C._conform_exprs
    if categorical:     # the String outputs stay Categorical (no cast back)
        C._conform_exprs = lambda: [pl.col(n).cast(pl.Categorical if d == pl.String else d) for n, d, _ in COLUMNS]
    try:
        n = 0
        for r in rows:
            step = max(1, M.DELIVER_CELLS // (r.n_len * r.n_conc))
            for lo in range(0, r.u.height, step):
                n += M._cell_frame(r, lo, lo + step).height
        return n
    finally:
        C._conform_exprs = conform


def cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    b = _bench()
    models, gs, mx = b.bundled_models(), b.gpus(25), b.matrix(2)
    per_mg = max(M.cells_per_model_gpu(m, mx) for m in models)
    runs = M._kind_runs(models, max(1, M.PREP_CELLS // (per_mg * len(gs))))
    rows = [M._prepare(run, gs, mx, False) for run in runs]
    cast = min(cpu(lambda: [categorical_rows(r) for r in rows]) for _ in range(3))
    crows = [categorical_rows(r) for r in rows]
    r = max(rows, key=lambda x: x.u.height)
    step = M.DELIVER_CELLS // (r.n_len * r.n_conc)
    part = pl.concat([M._cell_frame(r, step * k, step * (k + 1)) for k in range(4)]).rechunk()
    cpart = _cat(part)
    times: dict[str, list[float]] = {k: [] for k in ("string", "categorical", "pq string", "pq categorical",
                                                     "pq cast at writer")}
    cells = 0
    for _ in range(a.repeat):
        cells = run_cells(rows, False)
        times["string"].append(cpu(lambda: run_cells(rows, False)))
        times["categorical"].append(cpu(lambda: run_cells(crows, True)))
        times["pq string"].append(cpu(lambda: part.write_parquet(io.BytesIO())))
        times["pq categorical"].append(cpu(lambda: cpart.write_parquet(io.BytesIO())))
        times["pq cast at writer"].append(cpu(lambda: _cat(part).write_parquet(io.BytesIO())))
    print(f"{cells:,} cells in {sum(1 for r in rows for _ in range(0, r.u.height, max(1, M.DELIVER_CELLS // (r.n_len * r.n_conc))))} "
          f"batches; CPU s, sorted, {a.repeat} alternating runs")
    for k, v in times.items():
        what = "all cell batches" if not k.startswith("pq") else f"one {part.height:,}-cell Parquet part"
        print(f"  {k:18s} {what}: {', '.join(f'{x:.3f}' for x in sorted(v))}")
    print(f"  one-off cast of the cells' String inputs to Categorical (all chunks, best of 3): {cast:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
