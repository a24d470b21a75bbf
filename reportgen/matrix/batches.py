"""Streaming the whole matrix: cutting a job into chunks of models and delivering their cells in batches.

Why a module of its own: the entry points a job calls (``evaluate_matrix``, ``evaluate_matrix_lazy``,
``iter_matrix_batches``, ``iter_cell_batches``) differ only in how they cut the models x GPUs into chunks
(``_chunks``, ``_kind_runs``: DeepSeek-V4 and length-dependent weights apart) and how many cells they hold at once;
each chunk is evaluated by ``reportgen.matrix.cells``.  On two cores ``_runs_ahead`` computes the next batches and
the next run's ``_prepare`` in worker threads (``reportgen.ahead``).  The batch-size constants and the names
``iter_cell_batches`` / ``_runs_ahead`` call (``_prepare``, ``_cell_frame``, ``_length_matrices``) are looked up
here: a test that replaces them patches this module.

Entry points:

- ``evaluate_matrix`` -> DataFrame in ``reportgen.results`` order and types;
- ``iter_cell_batches`` -> the same rows, in the same order and to the bit, as
  successive DataFrames of <= 262,144 cells (by default), each evaluated from the
  (layout, GPU, util) rows and the small axes: the whole matrix never exists and
  each batch reuses the pages the previous one freed (cheaper than faulting in a
  2.8 GB frame: docs/decisions.md "Estimator speed").  Streamed jobs write their
  Parquet parts from it (``run._write_streamed``);
- ``iter_matrix_batches`` -> one DataFrame per chunk of models (then GPUs) of
  <= ``batch_cells`` cells (a GPU split changes the row order; kept for callers);
- ``evaluate_matrix_lazy`` -> a LazyFrame (a vertical concat of batches); note
  that polars 2.1's streaming sink does not bound memory across these cross
  joins (6.5 M cells peaked at 2.8 GB), so prefer the batches for huge jobs.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import polars as pl

from reportgen import ahead
from reportgen.job import Matrix
from reportgen.matrix.cells import _cell_frame, _length_frame, _length_matrices, _plan, _prepare, _Rows
from reportgen.matrix.inputs import ModelEntry, _weights_follow_length, cells_per_model_gpu


DEFAULT_BATCH_CELLS = 1_000_000


def _chunks(models: list[ModelEntry], gpus: list[Any], matrix: Matrix,
            batch_cells: int) -> Iterator[tuple[list[ModelEntry], list[Any]]]:
    """Split models (then GPUs, for a model bigger than a batch) so each chunk has <= batch_cells cells."""
    per_mg = max([cells_per_model_gpu(m, matrix) for m in models] or [matrix.n_cells_per_model_gpu()])
    per_mg = max(per_mg, 1)
    if per_mg * len(gpus) > batch_cells:
        step = max(1, batch_cells // per_mg)
        for m in models:
            for i in range(0, len(gpus), step):
                yield [m], gpus[i:i + step]
        return
    per_model = per_mg * max(len(gpus), 1)
    step = max(1, batch_cells // per_model)
    for run in _kind_runs(models, step, matrix):
        yield run, gpus


def _kind_runs(models: list[ModelEntry], step: int | None = None, matrix: Matrix | None = None) -> list[list[ModelEntry]]:
    """Consecutive runs of at most ``step`` models: a model whose figures depend on max_model_len beyond the
    blocks (DeepSeek-V4: exprs.compressed_lens; weights sized by it: ``_weights_follow_length``) shares a run
    only with its own kind, so the per-length work runs on those rows alone; job order is kept."""
    runs: list[list[ModelEntry]] = []
    kinds: list[int] = []
    for m in models:
        kind = _per_length(m, matrix)
        if runs and (step is None or len(runs[-1]) < step) and kinds[-1] == kind:
            runs[-1].append(m)
        else:
            runs.append([m])
            kinds.append(kind)
    return runs


def _per_length(m: ModelEntry, matrix: Matrix | None = None) -> int:
    """1: the model's KV figures are re-priced per max_model_len (compressed DeepSeek-V4 caches); 2: its weights
    follow the job's max_model_len (``_weights_follow_length``); 0: neither."""
    if any(getattr(l, "compressed", None) is not None for l in getattr(m.spec, "layers_kv", ()) or ()):
        return 1
    return 2 if matrix is not None and _weights_follow_length(m, matrix) else 0


def evaluate_matrix_lazy(models: list[ModelEntry], gpus: Iterable[Any], matrix: Matrix,
                         stage0_columns: bool = False, batch_cells: int = DEFAULT_BATCH_CELLS) -> pl.LazyFrame:
    """The whole matrix as a LazyFrame conforming to ``reportgen.results``.

    Large matrices are a vertical concatenation of chunks of at most ``batch_cells``
    cells (models, then GPUs), so a sink processes one chunk at a time.  For the
    tightest memory bound and the best speed on huge jobs, write the chunks of
    ``iter_matrix_batches`` one by one instead (e.g. one Parquet file per chunk).

    ``stage0_columns`` appends the first PP stage's figures (``stage0_weights_gib``,
    ``stage0_activation_gib``, ``stage0_kv_cache_gib``): vLLM logs rank 0, so the
    validation script compares like with like.

    The (layout x GPU x util) rows and the per-cell terms are evaluated when the plan is built
    (small frames: 1/16 of the cells and a few columns); the collect copies them into the cells.
    """
    gpus = list(gpus)
    plans = [_plan(m, g, matrix, stage0_columns) for m, g in _chunks(models, gpus, matrix, batch_cells)]
    if not plans:
        return _plan([], gpus, matrix, stage0_columns)
    return plans[0] if len(plans) == 1 else pl.concat(plans, how="vertical")


DELIVER_CELLS = 262_144
PREP_CELLS = 8_000_000


def iter_cell_batches(models: list[ModelEntry], gpus: Iterable[Any], matrix: Matrix,
                      batch_cells: int = DELIVER_CELLS, prep_cells: int = PREP_CELLS,
                      stage0_columns: bool = False) -> Iterator[pl.DataFrame]:
    """The cells as successive DataFrames of about ``batch_cells`` cells, never one big frame.

    Concatenated, the batches are exactly ``evaluate_matrix`` (same values to the bit, nulls and
    order).  Each chunk of models (about ``prep_cells`` cells, see ``_chunks``) is evaluated up to
    its (layout, GPU, utilization) rows once (``_prepare``); the batches are then runs of those rows,
    each crossed with the small axes (contexts x targets) and its per-cell terms evaluated on its
    own.  A batch is at most ``batch_cells`` cells unless one row alone has more (contexts x
    targets > batch_cells: then one row per batch).  Why: a consumer that writes and drops each
    batch (Parquet parts, a socket) never holds the whole matrix, and each batch is built in the
    pages the previous one freed -- faulting in fresh pages for a materialised 7.5 M-cell frame
    costs as much CPU as the estimate itself (docs/decisions.md "Estimator speed")."""
    gpus = list(gpus)
    # chunks of whole models (never split by GPU as ``_chunks`` does: that would change the order),
    # DeepSeek-V4 apart from the others as in ``_kind_runs``;
    # one model's (layout, GPU, util) rows are few (9,600 for 48 layouts x 4 dtypes x 25 GPUs x 2)
    per_mg = max([cells_per_model_gpu(m, matrix) for m in models] or [matrix.n_cells_per_model_gpu()])
    per_chunk = max(1, max(prep_cells, batch_cells) // max(per_mg * len(gpus), 1))
    runs = _kind_runs(models, per_chunk, matrix)
    if ahead.workers() >= 2 and runs:
        # two cores: the batches and the next run's ``_prepare`` computed in worker threads, delivered in order
        # (``_runs_ahead``; docs/decisions.md "Estimator on both cores")
        yield from _runs_ahead(runs, gpus, matrix, batch_cells, prep_cells, stage0_columns)
        return
    for run in runs:
        # ``del`` after each run: the next chunk is prepared with this one released, so a job of several chunks
        # peaks at one prepared chunk (held, two 8 M-cell chunks peaked at 2,043 MiB RSS instead of 1,584, and
        # 3,959 instead of 2,517 on the per-length path: benchmark in tests/test_arch_minimax.py, branch review21)
        mats = _length_matrices(run, matrix)
        if mats is not None:        # weights per max_model_len: one chunk per length, cells interleaved
            rs = [_prepare(run, gpus, mx, stage0_columns) for mx in mats]
            if rs[0].n_cells:
                rows = max(1, batch_cells // (len(rs) * rs[0].n_conc))
                for lo in range(0, rs[0].u.height, rows):
                    yield _length_frame(rs, lo, lo + rows)
            del rs
            continue
        r = _prepare(run, gpus, matrix, stage0_columns)
        if r.n_cells:
            rows = max(1, batch_cells // (r.n_len * r.n_conc))
            for lo in range(0, r.u.height, rows):
                yield _cell_frame(r, lo, lo + rows)
        del r


# work ahead of the consumer on two cores (``_runs_ahead``): cells in batches computed or queued but not yet
# delivered, and the cells the prepared chunks alive may hold together (runs prepared ahead beside the batches of
# earlier runs), besides ``prep_cells``
AHEAD_CELLS = 786_432
PAIR_PREP_CELLS = 2_000_000


def _batch_of(rs: list[_Rows], one_length: bool, lo: int, hi: int) -> pl.DataFrame:
    return _cell_frame(rs[0], lo, hi) if one_length else _length_frame(rs, lo, hi)


def _runs_ahead(runs: list[list[ModelEntry]], gpus: list[Any], matrix: Matrix, batch_cells: int, prep_cells: int,
                stage0_columns: bool) -> Iterator[pl.DataFrame]:
    """``iter_cell_batches``' loop on two worker threads (``reportgen.ahead``): the same batches, in the same order,
    from the same calls.  polars releases the GIL inside its operations, so batch *k+1* is built while batch *k* is,
    and the next runs' ``_prepare`` (a per-length run's one-length chunks side by side) while this run's batches are.
    Bounded: at most ``AHEAD_CELLS // batch_cells`` (>= 1) batches not yet delivered; the runs alive (from the oldest
    whose batches are not all delivered to the last one prepared) hold <= max(``prep_cells``, ``PAIR_PREP_CELLS``)
    cells together, so a run is prepared ahead only within that budget, else after every earlier run's last batch was
    delivered and dropped (one prepared chunk at a time, as the serial loop).  An exception is raised at its turn
    (after the batches before it); closing the generator cancels the queued work."""
    plan = [(run, _length_matrices(run, matrix)) for run in runs]
    cells = [sum(cells_per_model_gpu(m, matrix) for m in run) * len(gpus) for run in runs]
    budget = max(prep_cells, PAIR_PREP_CELLS)
    with ahead.Ordered(workers=2, depth=max(1, AHEAD_CELLS // max(batch_cells, 1))) as q:
        preps: dict[int, list] = {}
        nxt = 0                 # the next run to prepare

        def prepare(j: int) -> list:
            run, mats = plan[j]
            return [q.side(_prepare, run, gpus, mx, stage0_columns) for mx in (mats or [matrix])]

        def ahead_of(i: int) -> None:
            # the runs alive -- from the oldest with batches not yet delivered (or run i) to the last one prepared
            # -- and the next together hold <= budget cells: prepare the next beside them
            nonlocal nxt
            lo = min(q.oldest(i), i)
            while nxt < len(plan) and sum(cells[lo:nxt + 1]) <= budget:
                preps[nxt] = prepare(nxt)
                nxt += 1

        for i, (run, mats) in enumerate(plan):
            if i not in preps:
                # too big beside the runs before it: prepared once their batches are delivered (and their chunks gone)
                yield from q.drain()
                preps[i] = prepare(i)
                nxt = i + 1
            ahead_of(i)
            futs = preps.pop(i)
            yield from q.until_done(futs)       # the earlier runs' batches, delivered while this run is prepared
            rs = [f.result() for f in futs]
            del futs
            if rs[0].n_cells:
                n_conc = rs[0].n_conc
                rows = max(1, batch_cells // ((len(rs) if mats else rs[0].n_len) * n_conc))
                for lo in range(0, rs[0].u.height, rows):
                    yield from q.room()
                    q.submit(i, _batch_of, rs, mats is None, lo, lo + rows)
                    ahead_of(i)
            del rs
        yield from q.drain()


def iter_matrix_batches(models: list[ModelEntry], gpus: Iterable[Any], matrix: Matrix,
                        batch_cells: int = DEFAULT_BATCH_CELLS) -> Iterator[pl.DataFrame]:
    """The matrix as successive DataFrames of at most ``batch_cells`` cells (models in job order).

    Peak memory is one batch (~0.4 GB per million cells), whatever the job size.
    """
    gpus = list(gpus)
    for m, g in _chunks(models, gpus, matrix, batch_cells):
        yield _plan(m, g, matrix, False).collect()


def evaluate_matrix(models: list[ModelEntry], gpus: Iterable[Any], matrix: Matrix) -> pl.DataFrame:
    """Evaluate every cell; one row per cell in ``reportgen.results`` order and types (in memory:
    about 0.4 GB per million cells; use ``iter_matrix_batches`` beyond a few million)."""
    gpus = list(gpus)
    runs = _kind_runs(models, matrix=matrix)
    if len(runs) <= 1:
        return _plan(models, gpus, matrix, False).collect()
    return pl.concat([_plan(r, gpus, matrix, False).collect() for r in runs], how="vertical")
