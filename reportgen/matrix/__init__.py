"""The fit matrix: models x GPUs x layouts x dtypes x contexts x concurrency x utilization.

Per-model facts are computed once per layout in Python, everything per cell is a polars expression evaluated
at the narrowest level it depends on, and no Python runs per cell (the full account, and why: ``cells``).

The package, one module a stage (inputs -> cells -> batches; ``one`` on top):

- ``inputs``: the per-model / per-GPU / per-layout input tables (``ModelEntry``, ``GpuLike``, ``layout_table``,
  ``gpu_table``, ``kv_block_size``, ``mxfp4_gpus``, ``allow_long_max_model_len`` ...);
- ``cells``: how one chunk of models x GPUs is evaluated into cells as polars expressions (``_prepare``,
  ``_GpuClasses``, ``_special_rows``, ``_cell_frame``, ``_plan``, the per-length path);
- ``batches``: streaming the whole matrix -- the entry points ``evaluate_matrix`` (DataFrame in
  ``reportgen.results`` order and types), ``iter_cell_batches`` (the same rows, to the bit, as successive
  DataFrames of <= 262,144 cells by default: streamed jobs write their Parquet parts from it,
  ``run._write_streamed``; on two cores ``_runs_ahead``), ``iter_matrix_batches`` and ``evaluate_matrix_lazy``
  (docs/decisions.md "Estimator speed");
- ``one``: ``estimate_one``, the one-model ``reportgen estimate`` path: a 1-cell matrix through exactly the same
  code.

Every name callers and tests import from ``reportgen.matrix`` is re-exported here.  Reading one through the
package works; replacing one (a test's monkeypatch) must patch the submodule that looks it up
(``batches`` for the batch-size constants, ``_prepare`` / ``_cell_frame`` / ``_length_matrices`` as
``iter_cell_batches`` calls them; ``cells`` for ``_special_rows`` and ``_conform_exprs``).
"""

from reportgen.matrix.inputs import (ALLOW_LONG_ENV, GpuLike, ModelEntry, allow_long_max_model_len,
                                     cells_per_model_gpu, gpu_table, kv_axis, kv_block_size, layout_table,
                                     matrix_profile, mxfp4_gpus)
from reportgen.matrix.cells import (_cell_frame, _conform_exprs, _GpuClasses, _length_matrices, _prepare, _Rows,
                                    _special_rows)
from reportgen.matrix.batches import (AHEAD_CELLS, DEFAULT_BATCH_CELLS, DELIVER_CELLS, PAIR_PREP_CELLS, PREP_CELLS,
                                      _chunks, _kind_runs, _per_length, _runs_ahead, evaluate_matrix,
                                      evaluate_matrix_lazy, iter_cell_batches, iter_matrix_batches)
from reportgen.matrix.one import estimate_one

__all__ = ["ModelEntry", "GpuLike", "evaluate_matrix", "evaluate_matrix_lazy", "iter_matrix_batches", "iter_cell_batches",
           "estimate_one", "layout_table", "gpu_table"]
